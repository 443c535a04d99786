"""Evaluate Model: metrics on the hold-out rows, named and defined as Studio (classic) names them.

Definitions (y = actual, p = predicted, over the hold-out rows only):

binary (positive class: see `training.positive_label`; predicted positive when P(positive) >= 0.5)
- Accuracy = correct / rows; Precision = TP / (TP + FP); Recall = TP / (TP + FN);
  F-Score = 2PR / (P + R) (0 when undefined); AUC = area under the ROC curve of P(positive).
- Average Log Loss = mean of -log P(actual class) (probabilities clipped to [1e-15, 1 - 1e-15]).
- Training Log Loss = 100 * (L_prior - L_model) / L_prior: the relative improvement, in percent, of
  the model's average log loss over a predictor that always answers the class prior (the positive
  fraction of the *training* rows), both measured on the hold-out rows. 0 = no better than the
  prior, 100 = perfect, negative = worse than the prior. (Studio documents it as "a single score
  that represents the advantage of the classifier over a random prediction".)

regression (ybar = mean of the hold-out actuals)
- Mean Absolute Error = mean |y - p|; Root Mean Squared Error = sqrt(mean (y - p)^2)
- Relative Absolute Error = sum |y - p| / sum |y - ybar|
- Relative Squared Error = sum (y - p)^2 / sum (y - ybar)^2
- Coefficient of Determination = 1 - Relative Squared Error (R^2)

multiclass (K classes; per-class counts are one-vs-rest)
- Overall accuracy = correct / rows
- Average accuracy = mean over classes of (TP_k + TN_k) / rows
- Micro-averaged precision / recall = from TP, FP, FN summed over classes (both equal overall accuracy)
- Macro-averaged precision / recall = unweighted mean of per-class precision / recall (0 where undefined)
"""

from __future__ import annotations

import csv
import io
from typing import Sequence

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    f1_score,
    log_loss,
    mean_absolute_error,
    precision_score,
    recall_score,
    roc_auc_score,
)

COLUMNS: dict[str, tuple[str, ...]] = {
    "binary": ("Accuracy", "Precision", "Recall", "F-Score", "AUC", "Average Log Loss", "Training Log Loss"),
    "regression": (
        "Mean Absolute Error",
        "Root Mean Squared Error",
        "Relative Absolute Error",
        "Relative Squared Error",
        "Coefficient of Determination",
    ),
    "multiclass": (
        "Overall accuracy",
        "Average accuracy",
        "Micro-averaged precision",
        "Macro-averaged precision",
        "Micro-averaged recall",
        "Macro-averaged recall",
    ),
}
_EPS = 1e-15


def binary_metrics(actual_is_positive: np.ndarray, probability: np.ndarray, prior: float) -> dict[str, float]:
    """Studio's binary metrics from booleans (actual == positive) and P(positive)."""
    y = np.asarray(actual_is_positive, dtype=bool)
    prob = np.clip(np.asarray(probability, dtype=np.float64), _EPS, 1 - _EPS)
    predicted = prob >= 0.5
    model_loss = float(log_loss(y, prob, labels=[False, True]))
    prior = float(np.clip(prior, _EPS, 1 - _EPS))
    prior_loss = float(log_loss(y, np.full(len(y), prior), labels=[False, True]))
    auc = float(roc_auc_score(y, prob)) if 0 < y.sum() < len(y) else float("nan")
    return {
        "Accuracy": float(accuracy_score(y, predicted)),
        "Precision": float(precision_score(y, predicted, zero_division=0)),
        "Recall": float(recall_score(y, predicted, zero_division=0)),
        "F-Score": float(f1_score(y, predicted, zero_division=0)),
        "AUC": auc,
        "Average Log Loss": model_loss,
        "Training Log Loss": 100.0 * (prior_loss - model_loss) / prior_loss if prior_loss > 0 else 0.0,
    }


def regression_metrics(actual: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """Studio's regression metrics; relative errors against the hold-out mean."""
    y = np.asarray(actual, dtype=np.float64)
    p = np.asarray(predicted, dtype=np.float64)
    deviation = y - y.mean()
    abs_total, sq_total = float(np.abs(deviation).sum()), float((deviation**2).sum())
    abs_error, sq_error = float(np.abs(y - p).sum()), float(((y - p) ** 2).sum())
    rae = abs_error / abs_total if abs_total > 0 else float("nan")
    rse = sq_error / sq_total if sq_total > 0 else float("nan")
    return {
        "Mean Absolute Error": float(mean_absolute_error(y, p)),
        "Root Mean Squared Error": float(np.sqrt(sq_error / len(y))),
        "Relative Absolute Error": rae,
        "Relative Squared Error": rse,
        "Coefficient of Determination": 1.0 - rse,
    }


def multiclass_metrics(actual: Sequence, predicted: Sequence, classes: Sequence) -> dict[str, float]:
    """Studio's multiclass metrics over the union of the model's classes (one-vs-rest per class)."""
    y = np.asarray(actual).astype(str)
    p = np.asarray(predicted).astype(str)
    labels = list(dict.fromkeys([str(c) for c in classes] + sorted(set(y.tolist()))))
    per_class_accuracy = [float(np.mean((y == k) == (p == k))) for k in labels]
    return {
        "Overall accuracy": float(accuracy_score(y, p)),
        "Average accuracy": float(np.mean(per_class_accuracy)),
        "Micro-averaged precision": float(precision_score(y, p, labels=labels, average="micro", zero_division=0)),
        "Macro-averaged precision": float(precision_score(y, p, labels=labels, average="macro", zero_division=0)),
        "Micro-averaged recall": float(recall_score(y, p, labels=labels, average="micro", zero_division=0)),
        "Macro-averaged recall": float(recall_score(y, p, labels=labels, average="macro", zero_division=0)),
    }


def render_csv(task: str, rows: list[dict[str, float]]) -> str:
    """Header + one row per scored input (row 1 the new model, row 2 the baseline), full float precision."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS[task])
    for metrics in rows:
        writer.writerow([format_number(metrics[name]) for name in COLUMNS[task]])
    return out.getvalue()


def format_number(value: float) -> str:
    """Shortest round-trip text; NaN as Studio writes it."""
    if value != value:
        return "NaN"
    return repr(float(value))
