"""What a BES training job does: read the dataset, fit the recipe's pipeline, evaluate on a hold-out, write an .ilearner.

This module is the import surface for the rest of studio_emulator; the parts live in
`tabular` (reading), `schema` (feature schema), `learners` (estimators, pipeline),
`evaluate` (metrics) and `ilearner` (the model file and scoring).

Positive class (binary): the recipe's `hyperparameters["positive_label"]` if given (matched
as text against the label values), else the second of the two label values in sorted order
(numeric order for numeric labels, text order otherwise): 0/1 -> 1, False/True -> True,
no/yes -> yes, <=50K/>50K -> >50K.
"""

from __future__ import annotations

import datetime as _dt
import math
import time
from dataclasses import dataclass, field, replace
from typing import Any, Callable

import numpy as np
import pandas as pd
import skops
import sklearn
from sklearn.model_selection import train_test_split

from studio_emulator import evaluate
from studio_emulator.ilearner import (
    Prediction,
    ScoredTable,
    TrainedModel,
    dumps,
    load_model,
    to_python,
)
from studio_emulator.learners import make_estimator, make_pipeline
from studio_emulator.schema import CoercionError, FeatureSpec, infer_feature, prepare_training_column, studio_type_of
from studio_emulator.tabular import read_table
from studio_emulator.training_errors import (
    InvalidModelFile,
    RecipeError,
    ScoringInputError,
    TrainingCancelled,
    TrainingDataError,
)

try:  # sklearn's own "bad hyperparameter value" error
    from sklearn.utils._param_validation import InvalidParameterError
except ImportError:  # pragma: no cover - future sklearn
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

CLASSIFICATION = ("binary", "multiclass")


@dataclass
class Recipe:
    """How to train: task, label column, learner and its hyperparameters, hold-out fraction and seed."""

    task: str
    label: str
    learner: str
    hyperparameters: dict = field(default_factory=dict)
    holdout: float = 0.25
    seed: int = 42


@dataclass
class TrainResult:
    """A finished training: the .ilearner bytes, the Evaluate Model CSV, and the numbers behind it."""

    model: bytes
    evaluation: str
    metrics: dict[str, float]
    rows: int
    columns: int
    seconds: float
    baseline_metrics: dict[str, float] | None = None  # row 2 of the evaluation, when a baseline was given
    phase_seconds: dict[str, float] = field(default_factory=dict)  # read / fit / evaluate / save


@dataclass
class _Labels:
    """The label column validated for the task."""

    values: np.ndarray
    classes: list = field(default_factory=list)
    positive: Any = None
    studio_type: str = "Double"


def train(
    data: bytes,
    recipe: Recipe,
    *,
    file_format: str = "csv",
    baseline: bytes | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> TrainResult:
    """Train and evaluate; raises TrainingDataError (bad data/recipe) or TrainingCancelled (should_stop)."""
    clock = _Clock(should_stop)
    clock.phase("read")
    recipe = _checked_recipe(recipe)
    estimator = make_estimator(recipe.task, recipe.learner, recipe.hyperparameters, recipe.seed)
    frame = read_table(data, file_format)
    rows, columns = frame.shape
    labels = _check_label(frame, recipe)
    specs, features = _features(frame, recipe.label)
    train_index, test_index = _split(labels, recipe)
    champion = _load_baseline(baseline, recipe, frame, labels) if baseline is not None else None
    holdout_frame = frame.iloc[test_index]
    del frame

    clock.phase("fit")
    pipeline = make_pipeline(specs, estimator)
    _fit(pipeline, features.iloc[train_index], labels.values[train_index])
    del features

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
    actual = labels.values[test_index]
    prior = _prior(labels, train_index)
    metrics = _metrics(recipe.task, model, _prepared(model, holdout_frame, "new"), actual, labels, prior)
    baseline_metrics = None
    if champion is not None:
        baseline_metrics = _metrics(
            recipe.task, champion, _prepared(champion, holdout_frame, "baseline"), actual, labels, prior
        )
    evaluation = evaluate.render_csv(recipe.task, [metrics] + ([baseline_metrics] if baseline_metrics else []))

    clock.phase("save")
    model.metadata = _metadata(recipe, file_format, rows, columns, len(train_index), len(test_index), labels, metrics)
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
        raise RecipeError(2, f'Failed to parse parameter "holdout": cannot convert "{recipe.holdout}" to Double.', "Split Data") from None
    if not isinstance(holdout, (int, float)) or isinstance(holdout, bool) or not 0 < holdout < 1:
        raise RecipeError(8, f'Parameter "holdout" value should be in the range of (0, 1) exclusive; got {recipe.holdout!r}.', "Split Data")
    try:
        seed = int(str(recipe.seed).strip()) if not isinstance(recipe.seed, int) else recipe.seed
    except ValueError:
        raise RecipeError(2, f'Failed to parse parameter "seed": cannot convert "{recipe.seed}" to Int32.', "Split Data") from None
    if not 0 <= seed < 2**32:
        raise RecipeError(8, f'Parameter "seed" value should be in the range of [0, 4294967295]; got {seed}.', "Split Data")
    if not isinstance(recipe.hyperparameters, dict):
        raise RecipeError(2, 'Parameter "hyperparameters" must be a JSON object of name -> value.')
    return replace(recipe, holdout=float(holdout), seed=seed)


def _check_label(frame: pd.DataFrame, recipe: Recipe) -> _Labels:
    label = recipe.label
    if label not in frame.columns:
        shown = ", ".join(f'"{c}"' for c in list(frame.columns)[:20]) + (", ..." if frame.shape[1] > 20 else "")
        raise TrainingDataError(1, f'Column with name or index "{label}" does not exist in "Dataset"; its columns are {shown}.')
    if frame.shape[1] < 2:
        raise TrainingDataError(20, f'Number of columns in input dataset "Dataset" is less than allowed minimum of 2: only the label column "{label}" is present, no features.')
    if frame.shape[0] == 0:
        raise TrainingDataError(21, 'Number of rows in input dataset "Dataset" is less than allowed minimum: the file has a header row but no data rows.')
    column = frame[label]
    missing = column.isna().to_numpy()
    if missing.any():
        first = int(np.flatnonzero(missing)[0]) + 1
        raise TrainingDataError(23, f'Target column "{label}" is not valid: {int(missing.sum())} row(s) have no label value (first at data row {first}). Remove or fill them before training.')
    if recipe.task == "regression":
        return _regression_labels(column, label)
    return _class_labels(column, recipe)


def _regression_labels(column: pd.Series, label: str) -> _Labels:
    if pd.api.types.is_numeric_dtype(column.dtype) and not pd.api.types.is_bool_dtype(column.dtype):
        values = column.to_numpy(dtype=np.float64)
    else:
        parsed = pd.to_numeric(column.astype(object), errors="coerce")
        bad = parsed.isna().to_numpy()
        if bad.any() or pd.api.types.is_bool_dtype(column.dtype):
            position = int(np.flatnonzero(bad)[0]) if bad.any() else 0
            raise TrainingDataError(23, f'Target column "{label}" is not valid for regression: it must be numeric, but the value "{column.iloc[position]}" at data row {position + 1} is not a number.')
        values = parsed.to_numpy(dtype=np.float64)
    infinite = np.isinf(values)
    if infinite.any():
        position = int(np.flatnonzero(infinite)[0])
        raise TrainingDataError(33, f'Argument must be finite: target column "{label}" has an infinite value at data row {position + 1}.')
    return _Labels(values=values)


def _class_labels(column: pd.Series, recipe: Recipe) -> _Labels:
    label = recipe.label
    if pd.api.types.is_numeric_dtype(column.dtype):
        values = column.to_numpy()
        counts = pd.Series(values).value_counts()
        classes = sorted(counts.index.tolist())
    else:
        values = column.astype(str).to_numpy(dtype=object)
        counts = pd.Series(values).value_counts()
        classes = sorted(counts.index.tolist(), key=str)
    classes = [to_python(c) for c in classes]
    if len(classes) < 2:
        raise TrainingDataError(23, f'Target column "{label}" is not valid for {recipe.task} classification: every row has the same label "{classes[0]}"; at least 2 classes are needed.')
    if recipe.task == "binary" and len(classes) > 2:
        shown = ", ".join(f'"{c}"' for c in classes[:10]) + (", ..." if len(classes) > 10 else "")
        raise TrainingDataError(23, f'Target column "{label}" is not valid for binary classification: it has {len(classes)} distinct values ({shown}); use task "multiclass".')
    positive = None
    if recipe.task == "binary":
        positive = classes[1]
        wanted = recipe.hyperparameters.get("positive_label")
        if wanted is not None:
            matches = [c for c in classes if str(c) == str(wanted)]
            if not matches:
                raise RecipeError(8, f'Parameter "positive_label" value "{wanted}" is not one of the label values ({", ".join(str(c) for c in classes)}).')
            positive = matches[0]
            classes = [c for c in classes if c != positive] + [positive]
    rare = counts[counts < 2]
    if len(rare):
        raise TrainingDataError(21, f'Number of rows is too small for label "{to_python(rare.index[0])}" in column "{label}": it occurs in only 1 row; each class needs at least 2 rows so the stratified hold-out split can keep it on both sides.', "Split Data")
    return _Labels(values=values, classes=classes, positive=positive, studio_type=studio_type_of(column))


def _features(frame: pd.DataFrame, label: str) -> tuple[list[FeatureSpec], pd.DataFrame]:
    features = frame.drop(columns=[label])
    specs = [infer_feature(str(name), features[name]) for name in features.columns]
    for spec in specs:
        if spec.kind == "numeric":
            values = features[spec.name].to_numpy()
            infinite = np.isinf(values) if values.dtype.kind == "f" else np.zeros(0, dtype=bool)
            if infinite.any():
                position = int(np.flatnonzero(infinite)[0])
                raise TrainingDataError(33, f'Argument must be finite: column "{spec.name}" has an infinite value at data row {position + 1}.')
        else:
            features[spec.name] = prepare_training_column(spec, features[spec.name])
    return specs, features


def _split(labels: _Labels, recipe: Recipe) -> tuple[np.ndarray, np.ndarray]:
    rows = len(labels.values)
    test = math.ceil(recipe.holdout * rows)
    train_rows = rows - test
    need = max(2, len(labels.classes))
    if test < need or train_rows < need:
        raise TrainingDataError(
            21,
            f'Number of rows in input dataset "Dataset" is less than allowed minimum: {rows} row(s) with holdout {recipe.holdout} '
            f"leave {train_rows} for training and {test} for evaluation; each side needs at least {need}.",
            "Split Data",
        )
    stratify = labels.values if recipe.task in CLASSIFICATION else None
    try:
        train_index, test_index = train_test_split(
            np.arange(rows), test_size=recipe.holdout, stratify=stratify, random_state=recipe.seed
        )
    except ValueError as exc:
        raise TrainingDataError(21, f"The hold-out split is not possible: {exc}", "Split Data") from None
    return np.sort(train_index), np.sort(test_index)


def _fit(pipeline, features: pd.DataFrame, labels: np.ndarray) -> None:
    try:
        pipeline.fit(features, labels)
    except InvalidParameterError as exc:
        raise RecipeError(8, f"Parameter is not in range: {exc}") from None
    except (ValueError, TypeError, MemoryError) as exc:
        raise TrainingDataError(1000, f"AFx Library library exception: {type(exc).__name__}: {exc}") from None


def _prepared(model: TrainedModel, holdout_frame: pd.DataFrame, which: str) -> pd.DataFrame:
    """The hold-out rows coerced to a model's schema (the new model's own, or the baseline's)."""
    try:
        return model.prepare({name: holdout_frame[name] for name in model.features})
    except CoercionError as exc:
        raise TrainingDataError(
            16,
            f'Input datasets should have compatible column types: the {which} model expects column "{exc.column}" to hold '
            f'{exc.kind} values, but the dataset has "{exc.value}".',
            "Evaluate Model",
        ) from None


def _prior(labels: _Labels, train_index: np.ndarray) -> float:
    if labels.positive is None:
        return float("nan")
    return float(np.mean(labels.values[train_index] == labels.positive))


def _metrics(task: str, model: TrainedModel, frame: pd.DataFrame, actual: np.ndarray, labels: _Labels, prior: float) -> dict[str, float]:
    """Score the hold-out rows with `model` (new or baseline) against the dataset's own labels."""
    prediction: Prediction = model.predict(frame)
    if task == "regression":
        return evaluate.regression_metrics(actual, prediction.labels)
    if task == "binary":
        # A baseline's classes match this dataset's as text (checked on load), so column 1 is P(positive) for both.
        return evaluate.binary_metrics(actual == labels.positive, prediction.probabilities[:, 1], prior)
    return evaluate.multiclass_metrics(actual, prediction.labels, model.classes)


def _load_baseline(blob: bytes, recipe: Recipe, frame: pd.DataFrame, labels: _Labels) -> TrainedModel:
    """The champion to score on the same hold-out rows; it must fit this dataset and task."""
    try:
        champion = load_model(blob)
    except InvalidModelFile as exc:
        raise TrainingDataError(49, f"Failed to read the baseline model: {exc}", "Evaluate Model") from None
    if champion.task != recipe.task or champion.label != recipe.label:
        raise TrainingDataError(
            62,
            f'Cannot compare models trained for different tasks: the baseline predicts "{champion.label}" ({champion.task}), '
            f'this job trains "{recipe.label}" ({recipe.task}).',
            "Evaluate Model",
        )
    missing = [f for f in champion.features if f not in frame.columns]
    if missing:
        raise TrainingDataError(
            10,
            "Input datasets have column names that do not match: the baseline model needs column(s) "
            + ", ".join(f'"{m}"' for m in missing)
            + ' which the dataset does not have.',
            "Evaluate Model",
        )
    if recipe.task == "binary" and [str(c) for c in champion.classes] != [str(c) for c in labels.classes]:
        raise TrainingDataError(
            62,
            f"Cannot compare the models: the baseline's classes (negative, positive) are "
            f"{[str(c) for c in champion.classes]}, this dataset's are {[str(c) for c in labels.classes]}.",
            "Evaluate Model",
        )
    return champion


def _metadata(
    recipe: Recipe, file_format: str, rows: int, columns: int, train_rows: int, holdout_rows: int, labels: _Labels, metrics: dict
) -> dict:
    return {
        "rows": int(rows),
        "columns": int(columns),
        "train_rows": int(train_rows),
        "holdout_rows": int(holdout_rows),
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
