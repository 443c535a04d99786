"""The training dataset made fit for a task: the label checked, the features typed, the hold-out split drawn."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from emulators.training.schema import NUMERIC, FeatureSpec, infer_feature, prepare_training_column, studio_type_of
from emulators.training.training_errors import RecipeError, TrainingDataError

CLASSIFICATION = ("binary", "multiclass")
SPLIT = "Split Data"


@dataclass
class Labels:
    """The label column validated for the task; for binary, `classes` is (negative, positive)."""

    values: np.ndarray
    classes: list = field(default_factory=list)
    positive: Any = None
    studio_type: str = "Double"

    def prior(self, rows: np.ndarray) -> float:
        """The positive fraction among `rows` (NaN unless binary): the no-skill predictor's answer."""
        if self.positive is None:
            return float("nan")
        return float(np.mean(self.values[rows] == self.positive))


def check_labels(frame: pd.DataFrame, task: str, label: str, positive_label: Any = None) -> Labels:
    """The label column must exist, be complete, and suit the task; errors say the value and row."""
    if label not in frame.columns:
        shown = ", ".join(f'"{c}"' for c in list(frame.columns)[:20]) + (", ..." if frame.shape[1] > 20 else "")
        raise TrainingDataError(
            1, f'Column with name or index "{label}" does not exist in "Dataset"; its columns are {shown}.'
        )
    if frame.shape[1] < 2:
        raise TrainingDataError(
            20,
            'Number of columns in input dataset "Dataset" is less than allowed minimum of 2: '
            f'only the label column "{label}" is present, no features.',
        )
    if frame.shape[0] == 0:
        raise TrainingDataError(
            21,
            'Number of rows in input dataset "Dataset" is less than allowed minimum: '
            "the file has a header row but no data rows.",
        )
    column = frame[label]
    missing = column.isna().to_numpy()
    if missing.any():
        raise TrainingDataError(
            23,
            f'Target column "{label}" is not valid: {int(missing.sum())} row(s) have no label value '
            f"(first at data row {_first(missing)}). Remove or fill them before training.",
        )
    if task == "regression":
        return _regression_labels(column, label)
    return _class_labels(column, task, label, positive_label)


def _first(mask: np.ndarray) -> int:
    """The 1-based data row of the first True."""
    return int(np.flatnonzero(mask)[0]) + 1


def _regression_labels(column: pd.Series, label: str) -> Labels:
    """Numbers, finite; a text value names its row."""
    if pd.api.types.is_numeric_dtype(column.dtype) and not pd.api.types.is_bool_dtype(column.dtype):
        values = column.to_numpy(dtype=np.float64)
    else:
        bad = pd.to_numeric(column.astype(object), errors="coerce").isna().to_numpy()
        if bad.any() or pd.api.types.is_bool_dtype(column.dtype):
            row = _first(bad) if bad.any() else 1
            raise TrainingDataError(
                23,
                f'Target column "{label}" is not valid for regression: it must be numeric, but the value '
                f'"{column.iloc[row - 1]}" at data row {row} is not a number.',
            )
        values = pd.to_numeric(column.astype(object)).to_numpy(dtype=np.float64)
    infinite = np.isinf(values)
    if infinite.any():
        raise TrainingDataError(
            33,
            f'Argument must be finite: target column "{label}" has an infinite value at data row {_first(infinite)}.',
        )
    return Labels(values=values)


def _class_labels(column: pd.Series, task: str, label: str, positive_label: Any) -> Labels:
    """Two or more classes (exactly two for binary), each with 2+ rows for the stratified split."""
    if pd.api.types.is_numeric_dtype(column.dtype):
        values = column.to_numpy()
    else:
        values = column.astype(str).to_numpy(dtype=object)
    counts = pd.Series(values).value_counts()
    classes = sorted(_plain(c) for c in counts.index)  # all numbers, all booleans, or all text
    if len(classes) < 2:
        raise TrainingDataError(
            23,
            f'Target column "{label}" is not valid for {task} classification: every row has the same label '
            f'"{classes[0]}"; at least 2 classes are needed.',
        )
    if task == "binary" and len(classes) > 2:
        shown = ", ".join(f'"{c}"' for c in classes[:10]) + (", ..." if len(classes) > 10 else "")
        raise TrainingDataError(
            23,
            f'Target column "{label}" is not valid for binary classification: it has {len(classes)} distinct '
            f'values ({shown}); use task "multiclass".',
        )
    positive = None
    if task == "binary":
        positive = _positive(classes, positive_label)
        classes = [c for c in classes if c != positive] + [positive]
    rare = counts[counts < 2]
    if len(rare):
        raise TrainingDataError(
            21,
            f'Number of rows is too small for label "{_plain(rare.index[0])}" in column "{label}": it occurs in '
            "only 1 row; each class needs at least 2 rows so the stratified hold-out split can keep it on both sides.",
            SPLIT,
        )
    return Labels(values=values, classes=classes, positive=positive, studio_type=studio_type_of(column))


def _positive(classes: list, wanted: Any) -> Any:
    """`positive_label` if given (matched as text), else the second of the sorted classes."""
    if wanted is None:
        return classes[1]
    matches = [c for c in classes if str(c) == str(wanted)]
    if not matches:
        raise RecipeError(
            8,
            f'Parameter "positive_label" value "{wanted}" is not one of the label values '
            f'({", ".join(str(c) for c in classes)}).',
        )
    return matches[0]


def _plain(value: Any) -> Any:
    """numpy scalars as Python values."""
    return value.item() if isinstance(value, np.generic) else value


def check_features(frame: pd.DataFrame, label: str) -> tuple[list[FeatureSpec], pd.DataFrame, list[str]]:
    """Every other column with any value is a feature: its schema, the column as the pipeline sees it; and the rest."""
    empty = [str(c) for c in frame.columns if c != label and frame[c].isna().all()]  # nothing to learn from
    features = frame.drop(columns=[label, *empty])
    if features.shape[1] == 0:
        raise TrainingDataError(
            20,
            'Number of columns in input dataset "Dataset" is less than allowed minimum of 2: '
            f"every feature column is empty ({', '.join(empty)}).",
        )
    specs = [infer_feature(str(name), features[name]) for name in features.columns]
    for spec in specs:
        if spec.kind == NUMERIC:
            values = features[spec.name].to_numpy()
            infinite = np.isinf(values) if values.dtype.kind == "f" else None
            if infinite is not None and infinite.any():
                raise TrainingDataError(
                    33,
                    f'Argument must be finite: column "{spec.name}" has an infinite value at data row '
                    f"{_first(infinite)}.",
                )
        else:
            features[spec.name] = prepare_training_column(spec, features[spec.name])
    return specs, features, empty


def split(labels: Labels, task: str, holdout: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Sorted (train, hold-out) row positions; stratified by class for classification, seeded."""
    rows = len(labels.values)
    test = math.ceil(holdout * rows)
    need = max(2, len(labels.classes))
    if test < need or rows - test < need:
        raise TrainingDataError(
            21,
            f'Number of rows in input dataset "Dataset" is less than allowed minimum: {rows} row(s) with holdout '
            f"{holdout} leave {rows - test} for training and {test} for evaluation; each side needs at least {need}.",
            SPLIT,
        )
    # Stratify on integer codes (same classes in the same order, so the same split) to avoid sorting strings.
    stratify = pd.factorize(labels.values, sort=True)[0] if task in CLASSIFICATION else None
    try:
        train_rows, test_rows = train_test_split(
            np.arange(rows), test_size=holdout, stratify=stratify, random_state=seed
        )
    except ValueError as exc:
        raise TrainingDataError(21, f"The hold-out split is not possible: {exc}", SPLIT) from None
    return np.sort(train_rows), np.sort(test_rows)
