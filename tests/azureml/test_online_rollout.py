"""The Azure ML online endpoint serving target against the real emulators.azureml over HTTPS (no mocks).

Each test makes its own endpoint with a live `blue` deployment (the scoring script `answer_score.py`
answers the word in its model's answer.txt), then drives the target phase by phase as the chain's
delayed messages would, reading the endpoint back between calls. The only stand-in is the Azure AD
credential: a static token the local service accepts (Azure AD cannot exist here).
"""

from __future__ import annotations

import time
import uuid
from datetime import datetime, timezone

import pytest
import requests

from retrain.azureml.arm import ArmClient
from retrain.http import RetryPolicy, new_session
from retrain.identity import StaticTokenCredential
from retrain.outbound import OutboundRules
from retrain.serving.azureml_online import KIND, AzureMLEndpointSpec, deployment_name, model_version
from retrain.serving.base import Release, ServingDeps
from retrain.serving.rollout import RolloutPolicy
from tests.azureml.conftest import TOKEN
from tests.azureml.test_rest_errors import _wait

FAST = RetryPolicy(attempts=2, backoff=0.05, max_backoff=0.2, budget=5.0)


class Endpoint:
    """One endpoint of the emulator with helpers to read it as a test must (REST, the scoring URI, metrics)."""

    def __init__(self, azureml, name: str):
        self.azureml, self.name = azureml, name

    @property
    def path(self) -> str:
        return f"/onlineEndpoints/{self.name}"

    @property
    def url(self) -> str:
        return f"{self.azureml.url}{self.azureml.ws_path}{self.path}"

    def get(self) -> dict:
        return self.azureml.rest("GET", self.path).json()

    def traffic(self) -> dict:
        return self.get()["properties"]["traffic"]

    def deployments(self) -> list[str]:
        return sorted(d["name"] for d in self.azureml.rest("GET", f"{self.path}/deployments").json()["value"])

    def score(self, rows: list[dict], deployment: str | None = None) -> requests.Response:
        uri = self.get()["properties"]["scoringUri"]
        key = self.azureml.rest("POST", f"{self.path}/listKeys").json()["primaryKey"]
        headers = {"Authorization": f"Bearer {key}"}
        if deployment:
            headers["azureml-model-deployment"] = deployment
        return requests.post(uri, json={"data": rows}, headers=headers, verify=str(self.azureml.ca), timeout=30)


def _model_folder(azureml, word: str) -> str:
    """A model folder in the workspace's datastore holding answer.txt; its azureml:// URI."""
    folder = f"models/{uuid.uuid4().hex[:8]}"
    azureml.upload(word.encode(), f"{folder}/answer.txt", container="azureml")
    return f"azureml://datastores/workspaceblobstore/paths/{folder}/"


def _register(azureml, name: str, word: str) -> str:
    r = azureml.rest("PUT", f"/models/{name}/versions/1", json={"properties": {
        "modelType": "custom_model", "modelUri": _model_folder(azureml, word)}})
    assert r.status_code in (200, 201), r.text
    return f"{azureml.ws_path}/models/{name}/versions/1"


@pytest.fixture
def endpoint(azureml) -> Endpoint:
    """A new endpoint whose `blue` deployment (capacity 2, an env var, the answer script) serves 100%."""
    ep = Endpoint(azureml, f"ep-{uuid.uuid4().hex[:8]}")
    assert azureml.rest("PUT", ep.path, json={"location": "westeurope", "properties": {"authMode": "Key"}}) \
        .status_code == 201
    _wait(azureml, ep.path)
    model = _register(azureml, f"blue-{ep.name}", "blue")
    r = azureml.rest("PUT", f"{ep.path}/deployments/blue", json={
        "location": "westeurope", "sku": {"name": "Default", "capacity": 2},
        "properties": {"model": model, "instanceType": "Standard_F2s_v2", "environmentVariables": {"WHO": "blue"},
                       "codeConfiguration": {"codeId": f"{azureml.ws_path}/codes/tools/versions/1",
                                             "scoringScript": "answer_score.py"},
                       "livenessProbe": {"period": "PT7S", "initialDelay": "PT3S", "timeout": "PT2S",
                                         "failureThreshold": 4, "successThreshold": 1}}})
    assert r.status_code == 201, r.text
    assert _wait(azureml, f"{ep.path}/deployments/blue")["properties"]["provisioningState"] == "Succeeded"
    r = azureml.rest("PUT", ep.path, json={"location": "westeurope", "properties": {"authMode": "Key",
                                                                                       "traffic": {"blue": 100}}})
    assert r.status_code == 200, r.text
    _wait(azureml, ep.path)
    return ep


def _target(azureml, endpoint: Endpoint, rollout: RolloutPolicy, model_name: str | None = None):
    spec = AzureMLEndpointSpec("azureml_online", endpoint.url, model_name or f"m-{endpoint.name}", name="live")
    session = new_session()

    def client(ws, **options):
        return ArmClient(ws, StaticTokenCredential(TOKEN), base_url=ws.base_url, session=session, retry=FAST,
                         rules=lambda: OutboundRules.from_env({"ALLOWED_SERVICE_HOSTS": "127.0.0.1"}), **options)

    deps = ServingDeps(secret=lambda name: "", credential=lambda: StaticTokenCredential(TOKEN), session=session,
                       retry=FAST, clock=lambda: datetime.now(timezone.utc), rollout=rollout, azureml=client)
    return KIND.target(spec, deps)


def _release(azureml, word: str, run_id: str | None = None) -> Release:
    return Release(run_id or uuid.uuid4().hex[:20], job_output=_model_folder(azureml, word))


def _drive(target, release: Release, state: dict | None = None, *, restore: bool = False, limit: float = 60,
           on_wait=None):
    """Call the target as the chain's messages would until it is done or failed; the states seen, in order."""
    state, seen = dict(state or {}), []
    deadline = time.monotonic() + limit
    while True:
        progress = (target.restore if restore else target.promote)(release, state)
        state = progress.state
        seen.append(progress)
        if not progress.waiting or time.monotonic() > deadline:
            return progress, seen
        if on_wait:
            on_wait(progress)
        time.sleep(min(progress.wait or 0, 2.0))


# --- blue/green ------------------------------------------------------------------------------

def test_blue_green_moves_all_traffic_to_a_deployment_named_for_the_run(azureml, endpoint):
    release = _release(azureml, "green")
    progress, _ = _drive(_target(azureml, endpoint, RolloutPolicy()), release)
    dep = deployment_name(release.run_id)
    assert progress.done, progress.failed
    assert endpoint.traffic() == {dep: 100}
    assert endpoint.score([{"x": 1}]).json()["answer"] == "green"
    assert progress.state["previous"] == "blue" and progress.state["previous_traffic"] == {"blue": 100}


def test_the_new_deployment_copies_the_live_ones_settings_with_the_new_model(azureml, endpoint):
    release = _release(azureml, "green")
    progress, _ = _drive(_target(azureml, endpoint, RolloutPolicy()), release)
    new = azureml.rest("GET", f"{endpoint.path}/deployments/{deployment_name(release.run_id)}").json()
    blue = azureml.rest("GET", f"{endpoint.path}/deployments/blue").json()
    assert new["sku"]["capacity"] == 2
    for setting in ("instanceType", "environmentVariables", "codeConfiguration", "livenessProbe"):
        assert new["properties"][setting] == blue["properties"][setting], setting
    assert new["properties"]["model"].endswith(f"/models/m-{endpoint.name}/versions/{model_version(release.run_id)}")


def test_the_model_version_is_registered_tagged_with_the_run(azureml, endpoint):
    release = _release(azureml, "green")
    _drive(_target(azureml, endpoint, RolloutPolicy()), release)
    version = azureml.rest("GET", f"/models/m-{endpoint.name}/versions/{model_version(release.run_id)}").json()
    assert version["properties"]["tags"]["retrain.run"] == release.run_id
    assert version["properties"]["modelUri"] == release.job_output


def test_the_previous_deployment_is_kept_at_zero_percent(azureml, endpoint):
    _drive(_target(azureml, endpoint, RolloutPolicy()), _release(azureml, "green"))
    assert "blue" in endpoint.deployments()
    assert endpoint.score([{"x": 1}], deployment="blue").json()["answer"] == "blue"


def test_deployments_older_than_the_retention_count_are_deleted(azureml, endpoint):
    policy = RolloutPolicy(retain=1)
    runs = [uuid.uuid4().hex[:20] for _ in range(3)]
    for i, run in enumerate(runs):
        progress, _ = _drive(_target(azureml, endpoint, policy), _release(azureml, f"v{i}", run))
        assert progress.done, progress.failed
    time.sleep(0.3)  # deletes are long-running operations too
    names = endpoint.deployments()
    assert deployment_name(runs[2]) in names and deployment_name(runs[1]) in names
    assert deployment_name(runs[0]) not in names  # made by this app, older than the one kept
    assert "blue" in names  # not made by this app: never deleted


# --- canary ----------------------------------------------------------------------------------

def test_a_canary_walks_its_steps_and_each_step_is_read_back(azureml, endpoint):
    policy = RolloutPolicy(strategy="canary", steps=(10, 50, 100), dwell_seconds=1)
    release = _release(azureml, "green")
    dep = deployment_name(release.run_id)
    seen: list[dict] = []

    def look(progress):
        if progress.state.get("phase") == "traffic" and "since" in progress.state:
            seen.append(endpoint.traffic())

    progress, _ = _drive(_target(azureml, endpoint, policy), release, on_wait=look)
    assert progress.done, progress.failed
    steps = [t for i, t in enumerate(seen) if i == 0 or t != seen[i - 1]]
    assert steps == [{dep: 10, "blue": 90}, {dep: 50, "blue": 50}, {dep: 100}]


def test_each_canary_step_waits_its_dwell_as_a_delay_not_a_sleep(azureml, endpoint):
    policy = RolloutPolicy(strategy="canary", steps=(50, 100), dwell_seconds=30)
    target = _target(azureml, endpoint, policy)
    state: dict = {}
    release = _release(azureml, "green")
    for _ in range(40):
        progress = target.promote(release, state)
        state = progress.state
        if state.get("phase") == "traffic" and "since" in state:
            break
        time.sleep(min(progress.wait or 0, 1.0))
    assert progress.waiting and 25 < progress.wait <= 30
    assert endpoint.traffic() == {deployment_name(release.run_id): 50, "blue": 50}


def test_a_failing_smoke_test_fails_the_promotion_before_any_traffic_moves(azureml, endpoint):
    policy = RolloutPolicy(strategy="canary", steps=(10, 100), dwell_seconds=1, smoke_rows=({"x": 1},))
    progress, _ = _drive(_target(azureml, endpoint, policy), _release(azureml, "broken"))
    assert progress.failed and "smoke test" in progress.failed and "cannot score anything" in progress.failed
    assert endpoint.traffic() == {"blue": 100}


def test_an_error_rate_above_the_threshold_during_a_dwell_moves_traffic_back(azureml, endpoint):
    policy = RolloutPolicy(strategy="canary", steps=(50, 100), dwell_seconds=3, max_error_rate=0.1, min_requests=4)
    release = _release(azureml, "flaky")
    dep = deployment_name(release.run_id)

    def send_traffic(progress):
        if progress.state.get("phase") == "traffic" and "since" in progress.state:
            for _ in range(4):
                endpoint.score([{"boom": True}], deployment=dep)

    progress, _ = _drive(_target(azureml, endpoint, policy), release, on_wait=send_traffic)
    assert progress.failed and "above the allowed 10.0%" in progress.failed
    assert "traffic moved back to blue 100%" in progress.failed
    assert endpoint.traffic() == {"blue": 100}


def test_a_mirror_phase_copies_live_traffic_before_the_new_deployment_goes_live(azureml, endpoint):
    from retrain.serving.rollout import Mirror
    policy = RolloutPolicy(mirror=Mirror(50, 2))
    release = _release(azureml, "green")
    dep = deployment_name(release.run_id)
    mirrored: list[dict] = []

    def look(progress):
        if progress.state.get("phase") == "mirror" and "since" in progress.state:
            mirrored.append(endpoint.get()["properties"]["mirrorTraffic"])

    progress, _ = _drive(_target(azureml, endpoint, policy), release, on_wait=look)
    assert progress.done and mirrored and mirrored[0] == {dep: 50}
    assert endpoint.get()["properties"]["mirrorTraffic"] == {} and endpoint.traffic() == {dep: 100}


# --- crash safety and conflicts --------------------------------------------------------------

@pytest.mark.parametrize("phase", ["register", "deploy", "provision", "traffic", "retire"])
def test_a_redelivered_call_after_a_lost_save_makes_nothing_twice(azureml, endpoint, phase):
    """Crash after the external call, before the run saved its state: the next call starts from the old state."""
    policy = RolloutPolicy(strategy="canary", steps=(50, 100), dwell_seconds=0, retain=0)
    target = _target(azureml, endpoint, policy)
    release = _release(azureml, "green")
    state: dict = {}
    for _ in range(60):
        before = dict(state)
        progress = target.promote(release, state)
        if before.get("phase", "register") == phase:
            progress = target.promote(release, before)  # the saved state was lost: the same call again
        state = progress.state
        if not progress.waiting:
            break
        time.sleep(min(progress.wait or 0, 0.5))
    assert progress.done, progress.failed
    dep = deployment_name(release.run_id)
    versions = azureml.rest("GET", f"/models/m-{endpoint.name}/versions").json()["value"]
    assert len(versions) == 1
    assert [d for d in endpoint.deployments() if d.startswith("r")] == [dep]
    assert endpoint.traffic() == {dep: 100}


def test_a_409_while_the_endpoint_is_updating_is_a_wait_not_a_failure(azureml, endpoint):
    azureml.faults("POST", {"type": "response", "route": "online.endpoints.put", "status": 409, "count": 2})
    try:
        progress, seen = _drive(_target(azureml, endpoint, RolloutPolicy()), _release(azureml, "green"))
    finally:
        azureml.faults("DELETE")
    assert progress.done, progress.failed
    assert any("busy" in (p.state.get("note") or "") for p in seen)


def test_failed_provisioning_fails_the_promotion_with_the_services_reason(azureml, endpoint):
    azureml.faults("POST", {"type": "fail_provisioning", "message": "Quota exceeded for Standard_F2s_v2"})
    try:
        progress, _ = _drive(_target(azureml, endpoint, RolloutPolicy()), _release(azureml, "green"))
    finally:
        azureml.faults("DELETE")
    assert progress.failed and "failed to provision" in progress.failed and "Quota exceeded" in progress.failed
    assert endpoint.traffic() == {"blue": 100}


def test_a_second_promotion_of_the_same_run_finds_its_deployment_and_changes_nothing(azureml, endpoint):
    release = _release(azureml, "green")
    first, _ = _drive(_target(azureml, endpoint, RolloutPolicy()), release)
    second, _ = _drive(_target(azureml, endpoint, RolloutPolicy()), release, first.state)
    assert second.done and second.state.get("traffic_puts") == first.state.get("traffic_puts")


# --- rollback --------------------------------------------------------------------------------

def test_rollback_moves_traffic_back_to_the_kept_deployment(azureml, endpoint):
    target = _target(azureml, endpoint, RolloutPolicy())
    promoted, _ = _drive(target, _release(azureml, "green"))
    record = {"deployment": "blue", "settings": promoted.state["previous_settings"]}
    started = time.monotonic()
    restored, _ = _drive(target, Release("earlier", record=record), restore=True)
    assert restored.done and time.monotonic() - started < 10
    assert endpoint.traffic() == {"blue": 100}
    assert endpoint.score([{"x": 1}]).json()["answer"] == "blue"


def test_rollback_recreates_a_deleted_deployment_from_its_recorded_settings(azureml, endpoint):
    target = _target(azureml, endpoint, RolloutPolicy(retain=0))
    first = _release(azureml, "first")
    one, _ = _drive(target, first)
    two, _ = _drive(target, _release(azureml, "second"))
    assert two.done and deployment_name(first.run_id) not in endpoint.deployments()  # retain 0: deleted
    record = {"deployment": one.state["deployment"], "settings": one.state["settings"],
              "model_id": one.state["model_id"]}
    restored, _ = _drive(target, Release(first.run_id, record=record), restore=True)
    assert restored.done and restored.state.get("recreated")
    assert endpoint.traffic() == {deployment_name(first.run_id): 100}
    assert endpoint.score([{"x": 1}]).json()["answer"] == "first"


# --- the emulator's Azure Monitor metrics ----------------------------------------------------

def _metrics(azureml, endpoint: Endpoint, filter_: str, **params) -> requests.Response:
    now = datetime.now(timezone.utc)
    query = {"metricnames": "RequestsPerMinute", "aggregation": "Total", "interval": "PT1M",
             "timespan": f"{(now.replace(microsecond=0)).isoformat()}/{now.isoformat()}", "$filter": filter_,
             "api-version": "2023-10-01", **params}
    return azureml.rest("GET", f"{endpoint.path}/providers/Microsoft.Insights/metrics", params=query)


def test_the_metrics_count_each_deployments_answers_by_status_class(azureml, endpoint):
    started = datetime.now(timezone.utc)
    for rows in ([{"x": 1}], [{"x": 2}]):
        assert endpoint.score(rows).status_code == 200
    assert endpoint.score([], deployment="nope").status_code == 404
    timespan = f"{started.isoformat()}/{datetime.now(timezone.utc).isoformat()}"
    body = _metrics(azureml, endpoint, "deployment eq 'blue' and statusCodeClass eq '*'", timespan=timespan).json()
    series = body["value"][0]["timeseries"]
    totals = {s["metadatavalues"][0]["value"]: sum(p["total"] for p in s["data"]) for s in series}
    assert totals == {"2xx": 2.0}
    everything = _metrics(azureml, endpoint, "deployment eq '*'", timespan=timespan).json()["value"][0]["timeseries"]
    assert {s["metadatavalues"][0]["value"] for s in everything} == {"blue", "nope"}


def test_an_unknown_metric_is_a_400_naming_what_is_offered(azureml, endpoint):
    r = _metrics(azureml, endpoint, "deployment eq 'blue'", metricnames="CpuUtilizationPercentage")
    assert r.status_code == 400 and "RequestsPerMinute" in r.json()["error"]["message"]


def test_a_filter_on_an_unknown_dimension_is_a_400(azureml, endpoint):
    r = _metrics(azureml, endpoint, "colour eq 'red'")
    assert r.status_code == 400 and "statusCodeClass" in r.json()["error"]["message"]
