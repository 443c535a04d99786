"""Azure ML online-deployment scoring script: `init()` loads the model, `run(raw_data)` scores JSON rows.

Input: `{"data": [{"column": value, ...}, ...]}` or `{"input_data": {"columns": [...], "data": [[...]]}}`.
Output: `{"predictions": [...]}`, plus `probabilities` (P(positive) for binary, one list per row for
multiclass). The model is the `model.skops` under `AZUREML_MODEL_DIR`, loaded with skops' allow-list.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from emulators.training.training import ScoringInputError, load_model

model = None


def init() -> None:
    global model
    root = Path(os.environ["AZUREML_MODEL_DIR"])
    found = sorted(root.rglob("model.skops"))
    if not found:
        raise FileNotFoundError(f"no model.skops under AZUREML_MODEL_DIR ({root})")
    model = load_model(found[0].read_bytes())


def _rows(raw_data: str) -> tuple[list[str], list[list]]:
    try:
        body = json.loads(raw_data)
    except json.JSONDecodeError as e:
        raise ValueError(f"the request body is not JSON: {e}") from None
    if isinstance(body, dict) and isinstance(body.get("input_data"), dict):
        table = body["input_data"]
        return list(table.get("columns") or []), list(table.get("data") or [])
    records = body.get("data") if isinstance(body, dict) else None
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise ValueError('expected {"data": [{column: value}, ...]} or {"input_data": {"columns", "data"}}')
    columns = list(dict.fromkeys(k for r in records for k in r))
    return columns, [[r.get(c) for c in columns] for r in records]


def run(raw_data: str) -> dict:
    columns, rows = _rows(raw_data)
    try:
        table = model.score(columns, rows)
    except ScoringInputError as e:
        raise ValueError(str(e)) from None
    names = table.column_names
    labels = [row[names.index("Scored Labels")] for row in table.values]
    out: dict = {"predictions": labels}
    if model.task == "binary":
        out["probabilities"] = [float(row[names.index("Scored Probabilities")]) for row in table.values]
    elif model.task == "multiclass":
        cols = [names.index(f'Scored Probabilities for Class "{c}"') for c in model.classes]
        out["probabilities"] = [[float(row[i]) for i in cols] for row in table.values]
    return out
