"""Which scikit-learn estimator each recipe learner means, its hyperparameters, and the preprocessing pipeline."""

from __future__ import annotations

from typing import Any, Callable

from sklearn.base import BaseEstimator
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import (
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from emulators.training.schema import CATEGORICAL, FeatureSpec
from emulators.training.training_errors import RecipeError

TASKS = ("binary", "multiclass", "regression")
# Recipe-level keys that may sit in `hyperparameters` but are not the estimator's.
RESERVED = ("positive_label",)
# One-hot columns per categorical feature are capped (rarer levels share one column) when a
# column has more levels than this, so an ID-like column cannot make one column per row.
MAX_ONE_HOT_LEVELS = 100

_CLASSIFIERS: dict[str, Callable[[], BaseEstimator]] = {
    "logistic_regression": lambda: LogisticRegression(max_iter=1000),
    "boosted_trees": HistGradientBoostingClassifier,
    "random_forest": RandomForestClassifier,
}
_REGRESSORS: dict[str, Callable[[], BaseEstimator]] = {
    "linear_regression": LinearRegression,
    "ridge_regression": Ridge,
    "boosted_trees": HistGradientBoostingRegressor,
    "random_forest": RandomForestRegressor,
}
LEARNERS: dict[str, dict[str, Callable[[], BaseEstimator]]] = {
    "binary": _CLASSIFIERS,
    "multiclass": _CLASSIFIERS,
    "regression": _REGRESSORS,
}
_DENSE_ONLY = (HistGradientBoostingClassifier, HistGradientBoostingRegressor)


def make_estimator(task: str, learner: str, hyperparameters: dict[str, Any], seed: int) -> BaseEstimator:
    """The unfitted estimator with validated, type-coerced hyperparameters and the recipe's seed."""
    if task not in LEARNERS:
        raise RecipeError(13, f'Task "{task}" is not supported; use one of {", ".join(TASKS)}.')
    factories = LEARNERS[task]
    if learner not in factories:
        raise RecipeError(
            13, f'Learner "{learner}" has invalid type for task "{task}"; use one of {", ".join(sorted(factories))}.'
        )
    estimator = factories[learner]()
    defaults = estimator.get_params(deep=False)
    chosen: dict[str, Any] = {}
    for name, value in hyperparameters.items():
        if name in RESERVED:
            continue
        if name not in defaults:
            raise RecipeError(
                2,
                f'Parameter "{name}" is not a hyperparameter of learner "{learner}"; '
                f'valid names: {", ".join(sorted(defaults))}.',
            )
        chosen[name] = coerce_hyperparameter(name, value, defaults[name])
    if "random_state" in defaults and "random_state" not in chosen:
        chosen["random_state"] = seed
    estimator.set_params(**chosen)
    return estimator


def coerce_hyperparameter(name: str, value: Any, default: Any) -> Any:
    """GlobalParameters arrive as strings: parse them to the default's type (or the obvious literal)."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    try:
        if isinstance(default, bool):
            lowered = text.lower()
            if lowered not in ("true", "false"):
                raise ValueError(text)
            return lowered == "true"
        if isinstance(default, int):
            number = float(text)
            return int(number) if number.is_integer() else number
        if isinstance(default, float):
            return float(text)
    except ValueError:
        kind = "Boolean" if isinstance(default, bool) else type(default).__name__
        raise RecipeError(2, f'Failed to parse parameter "{name}": cannot convert "{value}" to {kind}.') from None
    if default is None or isinstance(default, str):
        return _literal(text)
    return value


def _literal(text: str) -> Any:
    """A string hyperparameter whose default is None or text: the JSON-ish literal it spells."""
    if text.lower() in ("none", "null"):
        return None
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    for parse in (int, float):
        try:
            return parse(text)
        except ValueError:
            pass
    return text


def make_pipeline(features: list[FeatureSpec], estimator: BaseEstimator) -> Pipeline:
    """Mean-impute and scale numeric/boolean columns; one-hot categorical ones (missing is a level, unknown ignored)."""
    numeric = [f.name for f in features if f.kind != CATEGORICAL]
    categorical = [f.name for f in features if f.kind == CATEGORICAL]
    branches = []
    if numeric:
        branches.append(
            (
                "numeric",
                # The imputer's output is a fresh array, so the scaler may work in place (one copy fewer).
                Pipeline([("impute", SimpleImputer(strategy="mean")), ("scale", StandardScaler(copy=False))]),
                numeric,
            )
        )
    if categorical:
        # OneHotEncoder keeps NaN as a level of its own, so categorical columns need no imputer.
        # Rare-level grouping (max_categories) counts levels in Python: enable it only when needed.
        wide = any(f.distinct > MAX_ONE_HOT_LEVELS for f in features if f.kind == CATEGORICAL)
        one_hot = OneHotEncoder(handle_unknown="ignore", max_categories=MAX_ONE_HOT_LEVELS if wide else None)
        branches.append(("categorical", one_hot, categorical))
    dense = isinstance(estimator, _DENSE_ONLY)
    prepare = ColumnTransformer(branches, remainder="drop", sparse_threshold=0.0 if dense else 0.3)
    return Pipeline([("prepare", prepare), ("learner", estimator)])
