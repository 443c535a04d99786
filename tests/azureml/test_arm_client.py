"""retrain.azureml.arm against the real local Azure ML service over HTTPS (no mocks; the static token stands in for Azure AD)."""

from __future__ import annotations

import uuid

import pytest

from retrain.azureml.arm import ArmClient
from retrain.azureml.workspace import WorkspaceId
from retrain.errors import DestinationNotAllowed, PermanentServiceError, TransientServiceError
from retrain.http import RetryPolicy
from retrain.identity import StaticTokenCredential
from retrain.outbound import OutboundRules
from tests.azureml.conftest import RG, SUB, TOKEN, WS

SLEEPY = "python sleepy.py 30"


def client(azureml, allowed: str | None = None, **kw) -> ArmClient:
    host = azureml.url.split("//", 1)[1]
    env = {"ALLOWED_SERVICE_HOSTS": host if allowed is None else allowed}
    ws = WorkspaceId(SUB, RG, WS, azureml.url)
    return ArmClient(ws, StaticTokenCredential(TOKEN), base_url=azureml.url, rules=lambda: OutboundRules.from_env(env),
                     retry=RetryPolicy(attempts=2, backoff=0.05, budget=5), poll_interval=0.1, timeout=30, **kw)


def _job_body(azureml, command: str = SLEEPY) -> dict:
    return {"properties": {"jobType": "Command", "command": command, "experimentName": "arm-client",
                           "codeId": f"{azureml.ws_path}/codes/tools/versions/1",
                           "environmentId": f"{azureml.ws_path}/environments/sklearn-env/versions/1",
                           "computeId": f"{azureml.ws_path}/computes/cpu-cluster"}}


def test_the_workspace_names_its_tracking_uri_as_https(azureml):
    assert client(azureml).tracking_uri() == azureml.tracking_uri


def test_a_missing_resource_reads_as_none_only_when_asked(azureml):
    arm = client(azureml)
    assert arm.get("jobs/no-such-job", missing_ok=True) is None
    with pytest.raises(PermanentServiceError, match="Azure ML: GET .*jobs/no-such-job -> 404"):
        arm.get("jobs/no-such-job")


def test_a_job_put_twice_is_one_job_and_cancel_waits_for_its_end(azureml):
    arm, name = client(azureml), f"arm-{uuid.uuid4().hex[:8]}"
    first = arm.put(f"jobs/{name}", _job_body(azureml))
    again = arm.put(f"jobs/{name}", _job_body(azureml))
    assert (first.status, again.status) == (201, 200)
    written = arm.post(f"jobs/{name}/cancel")
    assert written.operation is not None and written.operation.location
    arm.wait(written.operation)
    assert arm.get(f"jobs/{name}")["properties"]["status"] == "Canceled"


def test_a_busy_409_is_retried_until_the_entity_is_free(azureml):
    azureml.faults("DELETE")
    azureml.faults("POST", {"type": "response", "route": "jobs.put", "status": 409, "count": 2, "body": {
        "error": {"code": "Conflict", "message": "job is in Updating provisioning state; another operation "
                                                 "on the same entity is already running"}}})
    arm, name = client(azureml, conflict_retry=RetryPolicy(attempts=5, backoff=0.05, budget=5)), f"arm-{uuid.uuid4().hex[:8]}"
    assert arm.put(f"jobs/{name}", _job_body(azureml, "python -c 1")).status == 201


def test_a_409_that_stays_busy_is_handed_back_as_transient(azureml):
    azureml.faults("DELETE")
    azureml.faults("POST", {"type": "response", "route": "jobs.put", "status": 409, "count": 5, "body": {
        "error": {"code": "Conflict", "message": "endpoint is in Updating provisioning state"}}})
    arm = client(azureml, conflict_retry=RetryPolicy(attempts=3, backoff=0.05, budget=5))
    with pytest.raises(TransientServiceError, match="still busy after 3 tries"):
        arm.put(f"jobs/arm-{uuid.uuid4().hex[:8]}", _job_body(azureml))
    azureml.faults("DELETE")


def test_a_409_for_another_reason_is_permanent(azureml):
    arm, name = client(azureml), f"arm-{uuid.uuid4().hex[:8]}"
    arm.put(f"jobs/{name}", _job_body(azureml, "python -c 1"))
    with pytest.raises(PermanentServiceError, match="409"):
        arm.put(f"jobs/{name}", _job_body(azureml, "python -c 2"))


def test_no_call_goes_to_a_host_the_outbound_rule_does_not_allow(azureml):
    with pytest.raises(DestinationNotAllowed, match="ALLOWED_SERVICE_HOSTS"):
        client(azureml, allowed="").get("")


def test_workspace_ids_are_parsed_with_their_shape_explained():
    ws = WorkspaceId.parse(f"https://127.0.0.1:9/subscriptions/{SUB}/resourceGroups/{RG}/providers/"
                           f"Microsoft.MachineLearningServices/workspaces/{WS}")
    assert (ws.subscription, ws.resource_group, ws.name, ws.base_url) == (SUB, RG, WS, "https://127.0.0.1:9")
    assert "ARM id" in WorkspaceId.problem("/subscriptions/x/workspaces/y", "training.workspace")
    assert WorkspaceId.parse(ws.path).base_url == ""
