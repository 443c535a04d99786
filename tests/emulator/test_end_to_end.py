"""The retraining tutorial, end to end against the emulator: train via BES, read both outputs, PATCH, predictions change."""

from __future__ import annotations

import csv
import io
import uuid

import requests

from emulators.training.training import load_model
from tests.datasets import BINARY_FEATURES, binary_csv, binary_features, binary_rule


def _download(ref: dict) -> bytes:
    r = requests.get(ref["BaseLocation"] + ref["RelativeLocation"] + ref["SasBlobToken"], timeout=30)
    assert r.status_code == 200, r.text
    return r.content


def _labels(w, api_location: str, key: str, rows) -> list[int]:
    body = {"Inputs": {"input1": {"ColumnNames": BINARY_FEATURES, "Values": rows}}, "GlobalParameters": {}}
    r = requests.post(api_location + "/execute?api-version=2.0&details=true", json=body, headers=w.auth(key))
    assert r.status_code == 200, r.text
    return [int(row[-2]) for row in r.json()["Results"]["output1"]["value"]["Values"]]


def test_a_retrained_model_patched_onto_an_endpoint_changes_its_predictions(emulator_world):
    w = emulator_world
    name = f"e2e-{uuid.uuid4().hex[:8]}"
    endpoint = requests.put(w.endpoint_url(endpoint=name), json={"Description": "retrained"},
                            headers=w.auth(w.workspace_token)).json()
    rows = binary_features(40, seed=77)
    truth = [binary_rule(*row) for row in rows]
    before = _labels(w, endpoint["ApiLocation"], endpoint["PrimaryKey"], rows)
    assert sum(b == t for b, t in zip(before, truth)) >= 34  # serves the initial model

    # New labelled data arrives (here: the opposite rule) and is retrained through BES.
    status = w.train(w.binary, binary_csv(300, seed=78, invert=True), GlobalParameters={"Random seed": "5"})
    assert status["StatusCode"] == "Finished", status["Details"]

    model = load_model(_download(status["Results"]["output1"]))
    assert model.features == BINARY_FEATURES
    metrics = list(csv.DictReader(io.StringIO(_download(status["Results"]["output2"]).decode())))
    assert float(metrics[0]["AUC"]) > 0.9

    new_model = status["Results"]["output1"]
    patch = {"Resources": [{"Name": w.predictive.trained_model, "Location": {
        "BaseLocation": new_model["BaseLocation"], "RelativeLocation": new_model["RelativeLocation"],
        "SasBlobToken": new_model["SasBlobToken"]}}]}
    assert requests.patch(w.endpoint_url(endpoint=name), json=patch,
                          headers=w.auth(w.workspace_token)).status_code == 204

    got = requests.get(w.endpoint_url(endpoint=name), headers=w.auth(w.workspace_token)).json()
    assert got["Resources"][0]["Location"] == {"BaseLocation": new_model["BaseLocation"],
                                               "RelativeLocation": new_model["RelativeLocation"]}
    after = _labels(w, endpoint["ApiLocation"], endpoint["PrimaryKey"], rows)
    assert sum(a != t for a, t in zip(after, truth)) >= 34  # now serves the retrained (inverted) model
    assert _labels(w, f"{w.url}/workspaces/{w.workspace_id}/services/{w.predictive.id}", w.predictive.key,
                   rows) == before  # the default endpoint is untouched
