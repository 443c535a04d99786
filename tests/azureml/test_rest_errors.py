"""REST-level errors of emulators.azureml: ARM's envelope, the right status, nothing changed by a refusal."""

from __future__ import annotations

import time
import uuid

import pytest

from tests.datasets import binary_csv, ragged_csv

TRAIN = "python train.py --data ${{inputs.data}} --label label --model ${{outputs.model}}"


def _envelope(response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["message"] and "details" in error
    if code:
        assert error["code"] == code
    return error


def test_a_wrong_token_is_401(azureml):
    _envelope(azureml.rest("GET", "", token="wrong"), 401, "InvalidAuthenticationToken")


def test_no_token_is_401(azureml):
    _envelope(azureml.rest("GET", "", token=None), 401, "AuthenticationFailed")


def test_any_api_version_is_accepted(azureml):
    for version in ("2022-02-01-preview", "2025-01-01-preview", "1999-01-01"):
        assert azureml.rest("GET", "", params={"api-version": version}).status_code == 200


def test_the_workspace_names_this_server_as_its_tracking_uri(azureml):
    body = azureml.rest("GET", "").json()
    assert body["location"] == "westeurope"
    assert body["properties"]["mlFlowTrackingUri"] == azureml.tracking_uri


def test_an_unknown_workspace_is_404(azureml):
    r = azureml.rest("GET", azureml.url + azureml.ws_path.replace("ws-test", "nope"))
    _envelope(r, 404, "ResourceNotFound")


@pytest.mark.parametrize("path", ["/jobs/nope", "/models/nope/versions/1", "/onlineEndpoints/nope",
                                  "/batchEndpoints/nope", "/datastores/nope", "/codes/nope/versions/1"])
def test_unknown_names_are_404(azureml, path):
    _envelope(azureml.rest("GET", path), 404)


@pytest.mark.parametrize("body", [b"", b"{not json", b"[1, 2]", b"[" * 100000])
def test_bad_bodies_are_400(azureml, body):
    r = azureml.rest("PUT", f"/jobs/j-{uuid.uuid4().hex[:8]}", data=body,
                     headers={"Content-Type": "application/json"})
    _envelope(r, 400)


def test_a_command_naming_an_unknown_input_is_400(azureml):
    _, r = azureml.put_job("python train.py --data ${{inputs.missing}}")
    assert "inputs.missing" in _envelope(r, 400, "InvalidCommand")["message"]


def test_an_input_on_an_unknown_datastore_is_400(azureml):
    _, r = azureml.put_job("cat ${{inputs.d}}", inputs={"d": {"jobInputType": "uri_file",
                                                             "uri": "azureml://datastores/nope/paths/x.csv"}})
    _envelope(r, 400, "InvalidDatastore")


def test_an_unconfigured_code_asset_is_400(azureml):
    _, r = azureml.put_job("echo hi", code="not-configured")
    _envelope(r, 400, "InvalidCodeAsset")


def test_a_model_from_an_unknown_job_is_404(azureml):
    r = azureml.rest("PUT", "/models/m-nojob/versions/1",
                     json={"properties": {"modelUri": "azureml://jobs/no-such-job/outputs/model"}})
    _envelope(r, 404)


def test_a_job_on_bad_data_fails_with_the_reason_and_the_log_tail(azureml):
    data = azureml.upload(ragged_csv(50))
    name, r = azureml.put_job(TRAIN, inputs={"data": {"jobInputType": "uri_file", "uri": data}},
                              outputs={"model": {"jobOutputType": "custom_model"}})
    assert r.status_code == 201
    job = azureml.wait_job(name)
    assert job["properties"]["status"] == "Failed"
    error = job["properties"]["error"]
    assert error["category"] == "UserError"
    assert "exited with code 1" in error["message"] and "All rows must have same number of elements" in error["message"]
    assert "Training failed" in azureml.rest("GET", f"/jobs/{name}/logs").text


def test_a_missing_input_blob_fails_the_job_as_a_user_error(azureml):
    name, _ = azureml.put_job("cat ${{inputs.d}}", code="tools", inputs={
        "d": {"jobInputType": "uri_file", "uri": "azureml://datastores/training/paths/missing.csv"}})
    job = azureml.wait_job(name)
    assert job["properties"]["status"] == "Failed"
    assert "does not exist" in job["properties"]["error"]["message"]


def test_job_status_moves_through_the_documented_sequence(azureml):
    name, r = azureml.put_job("echo done", code="tools", outputs={"o": {"jobOutputType": "uri_folder"}})
    assert r.status_code == 201 and r.json()["properties"]["status"] == "NotStarted"
    azureml.wait_job(name)
    history = [status for status, _ in _history(azureml, name)]
    assert history == ["Queued", "Starting", "Preparing", "Running", "Finalizing", "Completed"]


def _history(azureml, name: str) -> list:
    """The job's recorded status changes (read from the server's store: GET shows only the latest)."""
    import json
    import sqlite3

    db = sqlite3.connect(azureml.server.data_dir / "azureml.sqlite3")
    body = db.execute("SELECT body FROM docs WHERE kind='job' AND key LIKE ?", (f"%/{name}",)).fetchone()[0]
    return json.loads(body)["_history"]


# --- endpoints -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def echo_model(azureml):
    """A registered model (any folder will do for the echo scoring script)."""
    uri = azureml.upload(b"{}", name=f"models/{uuid.uuid4().hex}/m.json", container="azureml")
    folder = uri.rsplit("/", 1)[0] + "/"
    name = f"echo-{uuid.uuid4().hex[:6]}"
    r = azureml.rest("PUT", f"/models/{name}/versions/1", json={"properties": {"modelUri": folder}})
    assert r.status_code == 200, r.text
    return name


def _deployment(azureml, model: str, who: str = "x", capacity: int = 1, env: dict | None = None) -> dict:
    return {"location": "westeurope", "sku": {"name": "Default", "capacity": capacity},
            "properties": {"model": f"{azureml.ws_path}/models/{model}/versions/1",
                           "codeConfiguration": {"codeId": f"{azureml.ws_path}/codes/tools/versions/1",
                                                 "scoringScript": "echo_score.py"},
                           "environmentVariables": {"WHO": who, **(env or {})}}}


def _wait(azureml, path: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        body = azureml.rest("GET", path).json()
        if body["properties"]["provisioningState"] not in ("Creating", "Updating") or time.monotonic() > deadline:
            return body
        time.sleep(0.05)


@pytest.fixture(scope="module")
def echo_endpoint(azureml, echo_model):
    name = f"echo-{uuid.uuid4().hex[:6]}"
    r = azureml.rest("PUT", f"/onlineEndpoints/{name}", json={"location": "westeurope",
                                                               "properties": {"authMode": "Key"}})
    assert r.status_code == 201 and "Azure-AsyncOperation" in r.headers and "Retry-After" in r.headers
    _wait(azureml, f"/onlineEndpoints/{name}")
    for dep in ("blue", "green"):
        azureml.rest("PUT", f"/onlineEndpoints/{name}/deployments/{dep}", json=_deployment(azureml, echo_model, dep))
        assert _wait(azureml, f"/onlineEndpoints/{name}/deployments/{dep}")["properties"]["provisioningState"] \
            == "Succeeded"
    return name


@pytest.mark.parametrize("traffic, mirror, code", [
    ({"blue": 60, "green": 30}, {}, "InvalidTrafficSum"),
    ({"blue": 100, "nope": 0}, {}, None),
    ({"blue": 100, "ghost": 10}, {}, "InvalidTraffic"),
    ({"blue": 100}, {"green": 60}, "InvalidMirrorTraffic"),
    ({"blue": 50, "green": 50}, {"green": 10}, "InvalidMirrorTraffic"),
    ({"blue": 100.5}, {}, "InvalidTraffic"),
])
def test_traffic_must_add_up_and_mirror_is_bounded(azureml, echo_endpoint, traffic, mirror, code):
    r = azureml.rest("PUT", f"/onlineEndpoints/{echo_endpoint}",
                     json={"properties": {"authMode": "Key", "traffic": traffic, "mirrorTraffic": mirror}})
    if code is None:
        assert r.status_code == 200
        _wait(azureml, f"/onlineEndpoints/{echo_endpoint}")
    else:
        _envelope(r, 400, code)


def test_scoring_needs_a_key(azureml, echo_endpoint):
    uri = azureml.rest("GET", f"/onlineEndpoints/{echo_endpoint}").json()["properties"]["scoringUri"]
    r = azureml.rest("POST", uri, token="wrong", json={"data": []}, params={})
    _envelope(r, 401)


def test_the_deployment_header_routes_and_an_unknown_one_is_404(azureml, echo_endpoint):
    uri = azureml.rest("GET", f"/onlineEndpoints/{echo_endpoint}").json()["properties"]["scoringUri"]
    key = azureml.rest("POST", f"/onlineEndpoints/{echo_endpoint}/listKeys").json()["primaryKey"]
    r = azureml.rest("POST", uri, token=key, json={"data": [{}]}, params={},
                     headers={"azureml-model-deployment": "green"})
    assert r.json() == {"who": "green", "rows": 1} and r.headers["azureml-model-deployment"] == "green"
    r = azureml.rest("POST", uri, token=key, json={"data": []}, params={}, headers={"azureml-model-deployment": "x"})
    _envelope(r, 404, "DeploymentNotFound")


def test_a_second_operation_while_updating_is_409(azureml, echo_model):
    name = f"slow-{uuid.uuid4().hex[:6]}"
    azureml.faults("POST", {"type": "slow_provisioning", "seconds": 30})
    first = azureml.rest("PUT", f"/onlineEndpoints/{name}", json={"properties": {"authMode": "Key"}})
    assert first.status_code == 201
    assert azureml.rest("GET", f"/onlineEndpoints/{name}").json()["properties"]["provisioningState"] == "Creating"
    _envelope(azureml.rest("PUT", f"/onlineEndpoints/{name}/deployments/d1", json=_deployment(azureml, echo_model)),
              409, "Conflict")
    _envelope(azureml.rest("PUT", f"/onlineEndpoints/{name}", json={"properties": {"authMode": "Key"}}),
              409, "Conflict")
    op = azureml.rest("GET", first.headers["Azure-AsyncOperation"], params={}).json()
    assert op["status"] == "InProgress"


def test_a_failed_provisioning_says_why_and_keeps_the_old_deployment_serving(azureml, echo_endpoint, echo_model):
    assert azureml.faults("POST", {"type": "fail_provisioning", "message": "quota exceeded (injected)"}).status_code \
        == 201
    r = azureml.rest("PUT", f"/onlineEndpoints/{echo_endpoint}/deployments/blue",
                     json=_deployment(azureml, echo_model, "blue2"))
    assert r.status_code == 200
    op = azureml.rest("GET", r.headers["Azure-AsyncOperation"], params={})
    deadline = time.monotonic() + 30
    while op.json()["status"] == "InProgress" and time.monotonic() < deadline:
        time.sleep(0.05)
        op = azureml.rest("GET", r.headers["Azure-AsyncOperation"], params={})
    assert op.json()["status"] == "Failed" and "quota exceeded" in op.json()["error"]["message"]
    dep = azureml.rest("GET", f"/onlineEndpoints/{echo_endpoint}/deployments/blue").json()
    assert dep["properties"]["provisioningState"] == "Failed"


def test_a_scoring_script_whose_init_fails_fails_the_provisioning(azureml, echo_endpoint, echo_model):
    r = azureml.rest("PUT", f"/onlineEndpoints/{echo_endpoint}/deployments/broken",
                     json=_deployment(azureml, echo_model, env={"FAIL_INIT": "1"}))
    assert r.status_code == 201
    dep = _wait(azureml, f"/onlineEndpoints/{echo_endpoint}/deployments/broken")
    assert dep["properties"]["provisioningState"] == "Failed"
    op = azureml.rest("GET", r.headers["Azure-AsyncOperation"], params={}).json()
    assert "init failed on purpose" in op["error"]["message"]


def test_a_capacity_out_of_range_is_400(azureml, echo_endpoint, echo_model):
    r = azureml.rest("PUT", f"/onlineEndpoints/{echo_endpoint}/deployments/huge",
                     json=_deployment(azureml, echo_model, capacity=500))
    _envelope(r, 400, "InvalidInstanceCount")


def test_an_injected_429_carries_retry_after(azureml):
    azureml.faults("POST", {"type": "response", "route": "jobs.get", "status": 429, "count": 1})
    r = azureml.rest("GET", "/jobs/anything")
    assert r.status_code == 429 and r.headers["Retry-After"] == "1"
    assert azureml.rest("GET", "/jobs/anything").status_code == 404


def test_an_injected_failure_fails_the_next_job(azureml):
    azureml.faults("POST", {"type": "fail_job", "details": "node lost (injected)"})
    name, _ = azureml.put_job("echo fine", code="tools")
    job = azureml.wait_job(name)
    assert job["properties"]["status"] == "Failed" and "node lost" in job["properties"]["error"]["message"]
