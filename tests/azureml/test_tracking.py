"""The MLflow tracking subset through mlflow-skinny's own client (outside a job) and its REST errors."""

from __future__ import annotations

import uuid

import pytest
import requests


@pytest.fixture
def client(azureml, monkeypatch):
    from mlflow.tracking import MlflowClient

    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", "test-azureml-token")
    return MlflowClient(tracking_uri=azureml.tracking_uri)


def test_experiments_are_created_and_found_by_name(client):
    name = f"exp-{uuid.uuid4().hex[:6]}"
    experiment_id = client.create_experiment(name)
    assert client.get_experiment_by_name(name).experiment_id == experiment_id
    assert client.get_experiment_by_name("no-such-experiment") is None


def test_a_run_logs_params_metrics_tags_in_a_batch_and_is_found_by_search(client):
    from mlflow.entities import Metric, Param, RunTag

    experiment_id = client.create_experiment(f"exp-{uuid.uuid4().hex[:6]}")
    run = client.create_run(experiment_id, run_name="manual")
    client.log_batch(run.info.run_id, metrics=[Metric("auc", 0.7, 1, 0), Metric("auc", 0.8, 2, 1)],
                     params=[Param("lr", "0.1")], tags=[RunTag("team", "ml")])
    client.log_param(run.info.run_id, "depth", "3")
    client.set_tag(run.info.run_id, "stage", "test")
    client.set_terminated(run.info.run_id)
    got = client.get_run(run.info.run_id)
    assert got.data.metrics == {"auc": 0.8} and got.data.params == {"lr": "0.1", "depth": "3"}
    assert got.data.tags["team"] == "ml" and got.info.status == "FINISHED"
    assert [m.value for m in client.get_metric_history(run.info.run_id, "auc")] == [0.7, 0.8]
    found = client.search_runs([experiment_id], filter_string="metrics.auc > 0.75 and params.lr = '0.1'")
    assert [r.info.run_id for r in found] == [run.info.run_id]
    assert client.search_runs([experiment_id], filter_string="metrics.auc > 0.9") == []


def test_an_unknown_run_is_404_resource_does_not_exist(azureml):
    r = requests.get(f"{azureml.tracking_uri}/api/2.0/mlflow/runs/get", params={"run_uuid": "nope"},
                     headers={"Authorization": "Bearer test-azureml-token"}, verify=str(azureml.ca), timeout=10)
    assert r.status_code == 404 and r.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"


def test_a_bad_metric_value_is_400(azureml, client):
    run = client.create_run("0")
    r = requests.post(f"{azureml.tracking_uri}/api/2.0/mlflow/runs/log-metric",
                      json={"run_id": run.info.run_id, "key": "auc", "value": "high"},
                      headers={"Authorization": "Bearer test-azureml-token"}, verify=str(azureml.ca), timeout=10)
    assert r.status_code == 400 and r.json()["error_code"] == "INVALID_PARAMETER_VALUE"


def test_tracking_needs_the_token(azureml):
    r = requests.get(f"{azureml.tracking_uri}/api/2.0/mlflow/runs/get", params={"run_id": "x"},
                     verify=str(azureml.ca), timeout=10)
    assert r.status_code == 401
