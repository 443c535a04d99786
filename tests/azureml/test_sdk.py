"""Microsoft's own clients, unchanged, against emulators.azureml: azure-ai-ml's MLClient and mlflow-skinny.

The only stand-in is the credential (Azure AD cannot exist here): it returns the configured static token.
"""

from __future__ import annotations

import json
import time

import pytest

from tests.datasets import binary_csv

pytestmark = [pytest.mark.slow,
              pytest.mark.filterwarnings("ignore::marshmallow.warnings.RemovedInMarshmallow4Warning")]
TRAIN = "python train.py --data ${{inputs.data}} --label label --model ${{outputs.model}}"


def _command_job(azureml, data_uri: str, command: str = TRAIN, code: str = "retrain-src"):
    from azure.ai.ml import Input, Output, command as make_command

    return make_command(command=command, code=f"{azureml.ws_path}/codes/{code}/versions/1",
                        environment="azureml:sklearn-env:1", compute="cpu-cluster", experiment_name="sdk",
                        inputs={"data": Input(type="uri_file", path=data_uri)},
                        outputs={"model": Output(type="custom_model")})


def _follow(ml, name: str, timeout: float = 180) -> str:
    deadline = time.monotonic() + timeout
    while True:
        status = ml.jobs.get(name).status
        if status in ("Completed", "Failed", "Canceled") or time.monotonic() > deadline:
            return status
        time.sleep(0.2)


@pytest.fixture(scope="module")
def trained(azureml):
    """A command job submitted with MLClient that trained the example script; its name."""
    job = azureml.ml.jobs.create_or_update(_command_job(azureml, azureml.upload(binary_csv(300, seed=1))))
    assert _follow(azureml.ml, job.name) == "Completed", azureml.rest("GET", f"/jobs/{job.name}/logs").text
    return job.name


@pytest.fixture(scope="module")
def model(azureml, trained):
    """The job's model output registered as m-<job> version 1."""
    from azure.ai.ml.entities import Model

    return azureml.ml.models.create_or_update(Model(name=f"m-{trained}", version="1", type="custom_model",
                                                    path=f"azureml://jobs/{trained}/outputs/model"))


def test_a_command_job_submitted_with_mlclient_completes(azureml, trained):
    job = azureml.ml.jobs.get(trained)
    assert job.status == "Completed"
    assert job.experiment_name == "sdk"


def test_mlflow_client_reads_the_jobs_metrics(azureml, trained, monkeypatch):
    from mlflow.tracking import MlflowClient

    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", "test-azureml-token")

    client = MlflowClient(tracking_uri=azureml.tracking_uri)
    run = client.get_run(trained)  # the run id is the job name
    assert run.info.status == "FINISHED"
    assert {"auc", "accuracy", "f1", "log_loss"} <= set(run.data.metrics)
    assert 0.5 < run.data.metrics["auc"] <= 1.0
    assert [m.value for m in client.get_metric_history(trained, "auc")] == [run.data.metrics["auc"]]


def test_mlclient_cancels_a_running_job(azureml):
    ml = azureml.ml
    job = ml.jobs.create_or_update(_command_job(azureml, azureml.upload(b"x\n1\n"),
                                                command="python sleepy.py 60 ${{inputs.data}}", code="tools"))
    deadline = time.monotonic() + 60
    while ml.jobs.get(job.name).status != "Running" and time.monotonic() < deadline:
        time.sleep(0.1)
    ml.jobs.begin_cancel(job.name).result()
    assert ml.jobs.get(job.name).status == "Canceled"


def test_the_job_output_registers_as_a_model(azureml, model, trained):
    got = azureml.ml.models.get(model.name, version="1")
    assert got.path.endswith(f"jobs/{trained}/outputs/model") or "azureml/" + trained in got.path


@pytest.fixture(scope="module")
def endpoint(azureml, model):
    """An online endpoint (key auth) with blue and green deployments of the registered model, blue at 100%."""
    from azure.ai.ml.entities import CodeConfiguration, ManagedOnlineDeployment, ManagedOnlineEndpoint

    ml = azureml.ml
    name = f"ep-{model.name[-8:]}"
    ml.online_endpoints.begin_create_or_update(ManagedOnlineEndpoint(name=name, auth_mode="key")).result()
    for dep in ("blue", "green"):
        ml.online_deployments.begin_create_or_update(ManagedOnlineDeployment(
            name=dep, endpoint_name=name, model=f"azureml:{model.name}:1", instance_type="Standard_DS3_v2",
            instance_count=1, environment="azureml:sklearn-env:1",
            code_configuration=CodeConfiguration(code=f"{azureml.ws_path}/codes/retrain-src/versions/1",
                                                 scoring_script="score.py"))).result()
    ep = ml.online_endpoints.get(name)
    ep.traffic = {"blue": 100}
    ml.online_endpoints.begin_create_or_update(ep).result()
    return name


def test_deployments_reach_succeeded(azureml, endpoint):
    deps = {d.name: d.provisioning_state for d in azureml.ml.online_deployments.list(endpoint)}
    assert deps == {"blue": "Succeeded", "green": "Succeeded"}


def test_invoke_with_and_without_a_deployment_name(azureml, endpoint, tmp_path):
    request = tmp_path / "request.json"
    request.write_text(json.dumps({"data": [{"x1": 0.5, "x2": -0.2, "age": 40, "color": "red"}]}))
    answer = json.loads(azureml.ml.online_endpoints.invoke(endpoint, request_file=str(request)))
    assert answer["predictions"] in (["0"], ["1"])
    answer = json.loads(azureml.ml.online_endpoints.invoke(endpoint, request_file=str(request),
                                                           deployment_name="green"))
    assert len(answer["probabilities"]) == 1


def test_keys_are_listed(azureml, endpoint):
    keys = azureml.ml.online_endpoints.get_keys(endpoint)
    assert keys.primary_key and keys.secondary_key and keys.primary_key != keys.secondary_key


def test_traffic_and_mirror_traffic_update(azureml, endpoint):
    ml = azureml.ml
    ep = ml.online_endpoints.get(endpoint)
    ep.traffic = {"blue": 90, "green": 10}
    ml.online_endpoints.begin_create_or_update(ep).result()
    assert ml.online_endpoints.get(endpoint).traffic == {"blue": 90, "green": 10}
    ep = ml.online_endpoints.get(endpoint)
    ep.traffic = {"blue": 100}
    ep.mirror_traffic = {"green": 20}
    ml.online_endpoints.begin_create_or_update(ep).result()
    got = ml.online_endpoints.get(endpoint)
    assert (got.traffic, got.mirror_traffic) == ({"blue": 100}, {"green": 20})


def test_batch_deployment_and_default_switch(azureml, model):
    from azure.ai.ml.entities import BatchEndpoint, ModelBatchDeployment

    ml = azureml.ml
    name = f"b-{model.name[-8:]}"
    ml.batch_endpoints.begin_create_or_update(BatchEndpoint(name=name)).result()
    for dep in ("b1", "b2"):
        ml.batch_deployments.begin_create_or_update(ModelBatchDeployment(
            name=dep, endpoint_name=name, model=f"azureml:{model.name}:1", compute="cpu-cluster")).result()
    for dep in ("b1", "b2"):
        ep = ml.batch_endpoints.get(name)
        ep.defaults = {"deployment_name": dep}
        ml.batch_endpoints.begin_create_or_update(ep).result()
        assert ml.batch_endpoints.get(name).defaults.deployment_name == dep
