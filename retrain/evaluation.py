"""Read the Evaluate Model output (a run's metrics dataset) into numbers the promotion policy can judge."""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass

from retrain.errors import EvaluationFormatError

_ROLES = {1: "the new model", 2: "the baseline"}


@dataclass(frozen=True)
class Evaluation:
    """Row 1 scores the new model; row 2, when the champion was scored on the same hold-out, the baseline."""

    challenger: dict[str, float]  # column name as the header spells it -> finite value
    baseline: dict[str, float] | None = None
    challenger_missing: tuple[str, ...] = ()  # columns whose row-1 cell was not a finite number ("NaN", "", "Infinity")
    baseline_missing: tuple[str, ...] = ()


def parse_evaluation(text: str) -> Evaluation:
    """Parse the CSV (or TSV) Evaluate Model emits: tolerant of how real files differ, strict where it is ambiguous."""
    rows = _read_rows(text)
    if not rows:
        raise EvaluationFormatError("evaluation output is empty: expected a header of metric names and a row of values")
    header = _header(rows[0])
    data = rows[1:]
    if not data:
        raise EvaluationFormatError(
            f"evaluation output has a header ({', '.join(n for n in header if n)}) but no data row")
    if len(data) > 2:
        raise EvaluationFormatError(
            f"evaluation output has {len(data)} data rows; expected 1 (the new model) or 2 "
            "(the new model, then the baseline scored on the same hold-out)")
    parsed = [_values(header, row, number) for number, row in enumerate(data, start=1)]
    challenger, challenger_missing = parsed[0]
    baseline, baseline_missing = parsed[1] if len(parsed) == 2 else (None, ())
    return Evaluation(challenger, baseline, challenger_missing, baseline_missing)


def _read_rows(text: str) -> list[list[str]]:
    """Split into rows of stripped cells, dropping the BOM and blank lines, with the delimiter the header uses."""
    text = text.removeprefix("\ufeff")
    first_line = next((line for line in text.splitlines() if line.strip()), "")
    delimiter = "\t" if first_line.count("\t") > first_line.count(",") else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, skipinitialspace=True)
    rows = [[cell.strip() for cell in row] for row in reader]
    return [row for row in rows if any(row)]


def _header(cells: list[str]) -> list[str]:
    """Metric names by column; an empty name marks a column to ignore (e.g. a pandas index column)."""
    names = [cell.strip().strip('"').strip() for cell in cells]
    while names and not names[-1]:
        names.pop()
    if all(_finite(name) is not None for name in names if name):
        raise EvaluationFormatError(
            "the first line of the evaluation output holds numbers, not a header of metric names")
    seen: set[str] = set()
    for name in names:
        if name and name in seen:
            raise EvaluationFormatError(f"column {name!r} appears twice in the evaluation header")
        seen.add(name)
    return names


def _values(header: list[str], row: list[str], number: int) -> tuple[dict[str, float], tuple[str, ...]]:
    """One data row as finite numbers by metric name, plus the names whose cell was not a finite number."""
    cells = list(row)
    while len(cells) > len(header) and not cells[-1]:
        cells.pop()  # a trailing delimiter
    role = _ROLES[number]
    if len(cells) != len(header):
        raise EvaluationFormatError(
            f"data row {number} ({role}) has {len(cells)} cells but the header has {len(header)} columns")
    values: dict[str, float] = {}
    missing: list[str] = []
    for name, cell in zip(header, cells):
        if not name:
            continue
        value = _finite(cell)
        if value is None:
            missing.append(name)
        else:
            values[name] = value
    if not values:
        raise EvaluationFormatError(
            f"data row {number} ({role}) has no numeric metric (cells: {', '.join(repr(c) for c in cells)})")
    return values, tuple(missing)


def _finite(cell: str) -> float | None:
    """The cell as a finite float, or None for "NaN", "Infinity", "" and text."""
    try:
        value = float(cell)
    except ValueError:
        return None
    return value if math.isfinite(value) else None
