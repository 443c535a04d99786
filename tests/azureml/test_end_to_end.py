"""End to end: train, register, deploy green at 0%, score it through the header, move traffic, answers change."""

from __future__ import annotations

import time
import uuid

import pytest

from tests.azureml.test_rest_errors import _wait
from tests.datasets import binary_csv

pytestmark = pytest.mark.slow
TRAIN = "python train.py --data ${{inputs.data}} --label label --model ${{outputs.model}}"
ROW = {"data": [{"x1": 0.9, "x2": -0.7, "age": 30, "color": "red"}]}


def _train(azureml, data: bytes, baseline: str | None = None) -> str:
    inputs = {"data": {"jobInputType": "uri_file", "uri": azureml.upload(data)}}
    command = TRAIN
    if baseline:
        inputs["baseline"] = {"jobInputType": "custom_model", "uri": f"azureml:{baseline}:1"}
        command += " --baseline ${{inputs.baseline}}"
    name, r = azureml.put_job(command, inputs=inputs, outputs={"model": {"jobOutputType": "custom_model"}})
    assert r.status_code == 201, r.text
    job = azureml.wait_job(name)
    assert job["properties"]["status"] == "Completed", job["properties"].get("error")
    return name


def _register(azureml, job: str) -> str:
    model = f"e2e-{job}"
    r = azureml.rest("PUT", f"/models/{model}/versions/1", json={"properties": {
        "modelType": "custom_model", "modelUri": f"azureml://jobs/{job}/outputs/model"}})
    assert r.status_code == 200, r.text
    return model


def _deploy(azureml, endpoint: str, dep: str, model: str) -> None:
    r = azureml.rest("PUT", f"/onlineEndpoints/{endpoint}/deployments/{dep}", json={
        "location": "westeurope", "sku": {"name": "Default", "capacity": 1},
        "properties": {"model": f"{azureml.ws_path}/models/{model}/versions/1",
                       "codeConfiguration": {"codeId": f"{azureml.ws_path}/codes/retrain-src/versions/1",
                                             "scoringScript": "score.py"}}})
    assert r.status_code == 201, r.text
    assert _wait(azureml, f"/onlineEndpoints/{endpoint}/deployments/{dep}")["properties"]["provisioningState"] \
        == "Succeeded"


def _traffic(azureml, endpoint: str, traffic: dict) -> None:
    r = azureml.rest("PUT", f"/onlineEndpoints/{endpoint}", json={"location": "westeurope", "properties": {
        "authMode": "Key", "traffic": traffic}})
    assert r.status_code == 200, r.text
    assert _wait(azureml, f"/onlineEndpoints/{endpoint}")["properties"]["traffic"] == \
        {k: v for k, v in traffic.items() if v}


def test_a_retrained_model_goes_live_through_green_and_the_answers_change(azureml, monkeypatch):
    from mlflow.tracking import MlflowClient

    blue_job = _train(azureml, binary_csv(300, seed=3))
    blue = _register(azureml, blue_job)
    green_job = _train(azureml, binary_csv(300, seed=4, invert=True), baseline=blue)
    green = _register(azureml, green_job)

    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", "test-azureml-token")
    metrics = MlflowClient(tracking_uri=azureml.tracking_uri).get_run(green_job).data.metrics
    assert metrics["auc"] > 0.8 and metrics["baseline_auc"] < 0.2  # the old model is wrong on the new data

    endpoint = f"e2e-{uuid.uuid4().hex[:6]}"
    assert azureml.rest("PUT", f"/onlineEndpoints/{endpoint}", json={"properties": {"authMode": "Key"}}) \
        .status_code == 201
    _wait(azureml, f"/onlineEndpoints/{endpoint}")
    _deploy(azureml, endpoint, "blue", blue)
    _traffic(azureml, endpoint, {"blue": 100})
    _deploy(azureml, endpoint, "green", green)  # a new deployment gets 0% until traffic moves
    _traffic(azureml, endpoint, {"blue": 100, "green": 0})

    uri = azureml.rest("GET", f"/onlineEndpoints/{endpoint}").json()["properties"]["scoringUri"]
    key = azureml.rest("POST", f"/onlineEndpoints/{endpoint}/listKeys").json()["primaryKey"]

    def score(**headers):
        r = azureml.rest("POST", uri, token=key, json=ROW, params={}, headers=headers)
        assert r.status_code == 200, r.text
        return r.headers["azureml-model-deployment"], r.json()["predictions"]

    before = score()
    assert before[0] == "blue"
    through_header = score(**{"azureml-model-deployment": "green"})
    assert through_header[0] == "green" and through_header[1] != before[1]

    _traffic(azureml, endpoint, {"green": 100})
    time.sleep(0)  # traffic applies from the next request on
    after = score()
    assert after == through_header
