"""Small generated training data (CSV bytes), good and deliberately bad, shared by every test that trains.

All generators are deterministic for a given seed and need only the standard library.
Good data has a learnable signal, so a trained model beats chance clearly:
- `binary_csv`: features x1, x2 (floats), age (int), color (text); label `label` in {0, 1}.
  `invert=True` flips the rule, so a model trained on it predicts the opposite.
- `regression_csv`: features x1, x2, x3, color; label `target` (float).
- `multiclass_csv`: features x1, x2; label `label` in {a, b, c}.
"""

from __future__ import annotations

import csv
import io
import math
import random

BINARY_LABEL = "label"
BINARY_FEATURES = ["x1", "x2", "age", "color"]
REGRESSION_LABEL = "target"
REGRESSION_FEATURES = ["x1", "x2", "x3", "color"]
COLORS = ["red", "green", "blue"]


def _csv(header: list[str], rows: list[list]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode()


def binary_features(rows: int, seed: int = 0) -> list[list]:
    """Feature rows (x1, x2, age, color) without labels: input for RRS scoring."""
    rng = random.Random(seed)
    return [[round(rng.uniform(-3, 3), 4), round(rng.uniform(-3, 3), 4), rng.randint(18, 80), rng.choice(COLORS)]
            for _ in range(rows)]


def binary_rule(x1: float, x2: float, age: int, color: str) -> int:
    """The true class of a row: 1 when 2*x1 - 1.5*x2 (+0.5 for red) is positive."""
    return int(2 * x1 - 1.5 * x2 + (0.5 if color == "red" else 0.0) > 0)


def binary_csv(rows: int = 200, seed: int = 0, noise: float = 0.05, invert: bool = False) -> bytes:
    """A binary dataset; `noise` is the fraction of labels flipped at random, `invert` flips the rule."""
    rng = random.Random(seed + 1_000_003)
    data = []
    for x1, x2, age, color in binary_features(rows, seed):
        label = binary_rule(x1, x2, age, color)
        if invert:
            label = 1 - label
        if rng.random() < noise:
            label = 1 - label
        data.append([x1, x2, age, color, label])
    return _csv(BINARY_FEATURES + [BINARY_LABEL], data)


def regression_csv(rows: int = 200, seed: int = 0, noise: float = 0.1) -> bytes:
    """target = 3*x1 - 2*x2 + 0.5*x3 (+1 for red) + gaussian noise of sd `noise`."""
    rng = random.Random(seed)
    data = []
    for _ in range(rows):
        x1, x2, x3 = (round(rng.uniform(-2, 2), 4) for _ in range(3))
        color = rng.choice(COLORS)
        target = 3 * x1 - 2 * x2 + 0.5 * x3 + (1.0 if color == "red" else 0.0) + rng.gauss(0, noise)
        data.append([x1, x2, x3, color, round(target, 5)])
    return _csv(REGRESSION_FEATURES + [REGRESSION_LABEL], data)


def multiclass_csv(rows: int = 150, seed: int = 0) -> bytes:
    """Three classes by the angle of (x1, x2)."""
    rng = random.Random(seed)
    data = []
    for _ in range(rows):
        x1, x2 = rng.uniform(-1, 1), rng.uniform(-1, 1)
        angle = math.atan2(x2, x1) % (2 * math.pi)
        data.append([round(x1, 4), round(x2, 4), "abc"[int(angle / (2 * math.pi / 3)) % 3]])
    return _csv(["x1", "x2", "label"], data)


# --- bad variants: each fails training with a TrainingDataError ------------------------------

def missing_label_csv(rows: int = 50, seed: int = 0) -> bytes:
    """A binary dataset without its `label` column."""
    return _csv(BINARY_FEATURES, binary_features(rows, seed))


def empty_csv() -> bytes:
    """Zero bytes."""
    return b""


def header_only_csv() -> bytes:
    """A header row and no data."""
    return _csv(BINARY_FEATURES + [BINARY_LABEL], [])


def ragged_csv(rows: int = 50, seed: int = 0, bad_row: int = 10) -> bytes:
    """A binary dataset whose data row `bad_row` (1-based) has one field too many."""
    lines = binary_csv(rows, seed).decode().splitlines()
    lines[bad_row] += ",extra"
    return ("\n".join(lines) + "\n").encode()


def one_class_csv(rows: int = 50, seed: int = 0) -> bytes:
    """A binary dataset where every label is 1."""
    return _csv(BINARY_FEATURES + [BINARY_LABEL], [r + [1] for r in binary_features(rows, seed)])


def non_numeric_label_regression_csv(rows: int = 50, seed: int = 0) -> bytes:
    """A regression dataset whose `target` column holds words."""
    lines = regression_csv(rows, seed).decode().splitlines()
    body = [line.rsplit(",", 1)[0] + ",lots" for line in lines[1:]]
    return ("\n".join([lines[0], *body]) + "\n").encode()
