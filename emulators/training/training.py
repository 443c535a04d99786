"""What a BES training job does: read the data, fit the recipe's pipeline, evaluate on a hold-out, write an .ilearner.

This is the import surface for both emulators. The parts: `tabular` (reading
CSV/TSV/ARFF), `trainset` (label, features, hold-out split), `schema` (feature schema and
coercion), `learners` (estimators and pipeline), `evaluate` (Studio's metrics) and
`ilearner` (the model file, loading with an allow-list, RRS scoring).

Positive class (binary): `hyperparameters["positive_label"]` if the recipe gives it (matched
as text against the label values), else the second of the two label values in sorted order
(numeric order for numbers, text order otherwise): 0/1 -> 1, False/True -> True, no/yes -> yes,
<=50K/>50K -> >50K.

Phases (each polls `should_stop` first): read (parse, check label and features, split,
load the baseline), fit, evaluate (new model and baseline on the same hold-out rows), save.
"""

from __future__ import annotations

import datetime as _dt
import time
from dataclasses import dataclass, field, replace
from typing import Callable

import numpy as np
import pandas as pd
import sklearn
import skops

from emulators.training import evaluate
from emulators.training.ilearner import ScoredTable, TrainedModel, dumps, load_model, to_python
from emulators.training.learners import make_estimator, make_pipeline
from emulators.training.schema import CoercionError
from emulators.training.tabular import read_table
from emulators.training.trainset import Labels, check_features, check_labels, split
from emulators.training.training_errors import (
    InvalidModelFile,
    RecipeError,
    ScoringInputError,
    TrainingCancelled,
    TrainingDataError,
)

try:  # scikit-learn's "bad hyperparameter value" error (private module, public behaviour)
    from sklearn.utils._param_validation import InvalidParameterError
except ImportError:  # pragma: no cover - a future scikit-learn
    InvalidParameterError = ValueError  # type: ignore[misc,assignment]

__all__ = [
    "Recipe",
    "TrainResult",
    "TrainedModel",
    "ScoredTable",
    "TrainingDataError",
    "RecipeError",
    "TrainingCancelled",
    "InvalidModelFile",
    "ScoringInputError",
    "train",
    "load_model",
]
EVALUATE = "Evaluate Model"


@dataclass
class Recipe:
    """How to train: task, label column, learner and its hyperparameters, hold-out fraction and seed."""

    task: str  # "binary" | "multiclass" | "regression"
    label: str
    learner: str  # see learners.LEARNERS
    hyperparameters: dict = field(default_factory=dict)  # the estimator's own names, plus "positive_label"
    holdout: float = 0.25
    seed: int = 42


@dataclass
class TrainResult:
    """A finished training: the .ilearner bytes, the Evaluate Model CSV, and the numbers behind it."""

    model: bytes
    evaluation: str  # header + row 1 (new model) [+ row 2 (baseline on the same hold-out rows)]
    metrics: dict[str, float]
    rows: int
    columns: int
    seconds: float
    baseline_metrics: dict[str, float] | None = None
    phase_seconds: dict[str, float] = field(default_factory=dict)  # read / fit / evaluate / save


def train(
    data: bytes,
    recipe: Recipe,
    *,
    file_format: str = "csv",
    baseline: bytes | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> TrainResult:
    """Train and evaluate; raises TrainingDataError (bad data or recipe) or TrainingCancelled (should_stop)."""
    clock = _Clock(should_stop)
    clock.phase("read")
    recipe = _checked_recipe(recipe)
    estimator = make_estimator(recipe.task, recipe.learner, recipe.hyperparameters, recipe.seed)
    frame = read_table(data, file_format)
    rows, columns = frame.shape
    labels = check_labels(frame, recipe.task, recipe.label, recipe.hyperparameters.get("positive_label"))
    specs, features, ignored = check_features(frame, recipe.label)
    train_rows, test_rows = split(labels, recipe.task, recipe.holdout, recipe.seed)
    champion = _baseline(baseline, recipe, frame, labels) if baseline is not None else None
    holdout = frame.iloc[test_rows]
    del frame

    clock.phase("fit")
    pipeline = make_pipeline(specs, estimator)
    train_features = features.iloc[train_rows]
    del features  # with `frame` gone too, this frees the full-size columns before the fit makes its copies
    _fit(pipeline, train_features, labels.values[train_rows])
    del train_features

    clock.phase("evaluate")
    model = TrainedModel(
        features=[s.name for s in specs],
        label=recipe.label,
        task=recipe.task,
        metadata={},
        specs=specs,
        classes=labels.classes,
        positive_label=labels.positive,
        label_type=labels.studio_type,
        pipeline=pipeline,
    )
    actual, prior = labels.values[test_rows], labels.prior(train_rows)
    metrics = _metrics(model, _prepared(model, holdout, "new"), actual, labels, prior)
    baseline_metrics = None
    if champion is not None:
        baseline_metrics = _metrics(champion, _prepared(champion, holdout, "baseline"), actual, labels, prior)
    evaluation = evaluate.render_csv(recipe.task, [metrics] + ([baseline_metrics] if baseline_metrics else []))

    clock.phase("save")
    model.metadata = {
        **_metadata(recipe, file_format, (rows, columns), (len(train_rows), len(test_rows)), labels, metrics),
        "ignored_columns": ignored,  # entirely empty in the training data, so not features
    }
    blob = dumps(model)
    clock.phase(None)
    return TrainResult(
        model=blob,
        evaluation=evaluation,
        metrics=metrics,
        rows=rows,
        columns=columns,
        seconds=clock.total(),
        baseline_metrics=baseline_metrics,
        phase_seconds=clock.seconds,
    )


class _Clock:
    """Polls should_stop at each phase boundary and times the phases."""

    def __init__(self, should_stop: Callable[[], bool] | None) -> None:
        self.should_stop = should_stop
        self.seconds: dict[str, float] = {}
        self.started = self.mark = time.perf_counter()
        self.current: str | None = None

    def phase(self, name: str | None) -> None:
        """End the current phase's timer, ask should_stop, start the next (None: the end)."""
        now = time.perf_counter()
        if self.current is not None:
            self.seconds[self.current] = now - self.mark
        self.current, self.mark = name, now
        if name is not None and self.should_stop is not None and self.should_stop():
            raise TrainingCancelled(f"Training was cancelled before the {name} phase.")

    def total(self) -> float:
        return time.perf_counter() - self.started


def _checked_recipe(recipe: Recipe) -> Recipe:
    """The recipe with seed and holdout as numbers (GlobalParameters send strings), range-checked."""
    try:
        holdout = float(recipe.holdout) if isinstance(recipe.holdout, str) else recipe.holdout
    except ValueError:
        raise RecipeError(
            2, f'Failed to parse parameter "holdout": cannot convert "{recipe.holdout}" to Double.', "Split Data"
        ) from None
    if not isinstance(holdout, (int, float)) or isinstance(holdout, bool) or not 0 < holdout < 1:
        raise RecipeError(
            8, f'Parameter "holdout" value should be in the range of (0, 1) exclusive; got {recipe.holdout!r}.',
            "Split Data",
        )
    try:
        seed = recipe.seed if isinstance(recipe.seed, int) else int(str(recipe.seed).strip())
    except ValueError:
        raise RecipeError(
            2, f'Failed to parse parameter "seed": cannot convert "{recipe.seed}" to Int32.', "Split Data"
        ) from None
    if not 0 <= seed < 2**32:
        raise RecipeError(
            8, f'Parameter "seed" value should be in the range of [0, 4294967295]; got {seed}.', "Split Data"
        )
    if not isinstance(recipe.hyperparameters, dict):
        raise RecipeError(2, 'Parameter "hyperparameters" must be a JSON object of name -> value.')
    return replace(recipe, holdout=float(holdout), seed=seed)


def _fit(pipeline, features: pd.DataFrame, labels: np.ndarray) -> None:
    """Fit, turning scikit-learn's refusals into Studio-style errors (bad values are the recipe's fault)."""
    try:
        pipeline.fit(features, labels)
    except InvalidParameterError as exc:
        raise RecipeError(8, f"Parameter is not in range: {exc}") from None
    except (ValueError, TypeError, MemoryError) as exc:
        raise TrainingDataError(1000, f"AFx Library library exception: {type(exc).__name__}: {exc}") from None


def _prepared(model: TrainedModel, holdout: pd.DataFrame, which: str) -> pd.DataFrame:
    """The hold-out rows coerced to a model's schema (the new model's own, or the baseline's)."""
    try:
        return model.prepare({name: holdout[name] for name in model.features})
    except CoercionError as exc:
        raise TrainingDataError(
            16,
            f'Input datasets should have compatible column types: the {which} model expects column "{exc.column}" '
            f'to hold {exc.kind} values, but the dataset has "{exc.value}".',
            EVALUATE,
        ) from None


def _metrics(model: TrainedModel, frame: pd.DataFrame, actual: np.ndarray, labels: Labels, prior: float) -> dict:
    """Score the hold-out rows with `model` (new or baseline) against the dataset's own labels."""
    prediction = model.predict(frame)
    if model.task == "regression":
        return evaluate.regression_metrics(actual, prediction.labels)
    if model.task == "binary":
        # A baseline's classes equal this dataset's as text (checked on load): column 1 is P(positive) for both.
        return evaluate.binary_metrics(actual == labels.positive, prediction.probabilities[:, 1], prior)
    return evaluate.multiclass_metrics(actual, prediction.labels, model.classes)


def _baseline(blob: bytes, recipe: Recipe, frame: pd.DataFrame, labels: Labels) -> TrainedModel:
    """The champion to score on the same hold-out rows; it must suit this dataset, label and task."""
    try:
        champion = load_model(blob)
    except InvalidModelFile as exc:
        raise TrainingDataError(49, f"Failed to read the baseline model: {exc}", EVALUATE) from None
    if champion.task != recipe.task or champion.label != recipe.label:
        raise TrainingDataError(
            62,
            "Cannot compare models trained for different tasks: the baseline predicts "
            f'"{champion.label}" ({champion.task}), this job trains "{recipe.label}" ({recipe.task}).',
            EVALUATE,
        )
    missing = [f for f in champion.features if f not in frame.columns]
    if missing:
        names = ", ".join(f'"{m}"' for m in missing)
        raise TrainingDataError(
            10,
            "Input datasets have column names that do not match: the baseline model needs column(s) "
            f"{names} which the dataset does not have.",
            EVALUATE,
        )
    theirs, ours = [str(c) for c in champion.classes], [str(c) for c in labels.classes]
    if recipe.task == "binary" and theirs != ours:
        raise TrainingDataError(
            62,
            f"Cannot compare the models: the baseline's classes (negative, positive) are {theirs}, "
            f"this dataset's are {ours}.",
            EVALUATE,
        )
    return champion


def _metadata(
    recipe: Recipe, file_format: str, shape: tuple[int, int], split_rows: tuple[int, int], labels: Labels, metrics: dict
) -> dict:
    """Training facts stored in the .ilearner (plain values only, so skops needs no extra trusted types)."""
    return {
        "rows": int(shape[0]),
        "columns": int(shape[1]),
        "train_rows": int(split_rows[0]),
        "holdout_rows": int(split_rows[1]),
        "task": recipe.task,
        "label": recipe.label,
        "learner": recipe.learner,
        "hyperparameters": dict(recipe.hyperparameters),
        "seed": int(recipe.seed),
        "holdout": float(recipe.holdout),
        "file_format": file_format,
        "classes": [to_python(c) for c in labels.classes],
        "positive_label": to_python(labels.positive),
        "sklearn_version": sklearn.__version__,
        "skops_version": skops.__version__,
        "trained_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "metrics": {k: float(v) for k, v in metrics.items()},
    }
