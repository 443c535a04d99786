"""The chain's promote step and rollback on an Azure ML online endpoint: real emulators.azureml (HTTPS), real Azurite.

Two models are trained once by the shipped `train.py` as real emulator jobs (the second on inverted
labels, so its answers differ). Each test gives a fresh endpoint a live `blue` deployment of the first,
puts a run of the second in `promoting` with its job output, and delivers the step messages with the
chain tests' pump (at least once; delayed messages wait their delay). The Azure AD token is the only
stand-in (a static token the local service accepts).
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import timedelta
from urllib.parse import urlsplit

import pytest

from retrain import rollback, steps
from retrain.web import dashboard
from retrain.artifacts import AzureMLModel
from retrain.context import Context
from retrain.http import RetryPolicy
from retrain.models import ModelDefinition
from retrain.queues import Step, StepMessage
from retrain.runs import DataRef, Run, Status, Trigger, iso
from retrain.serving.azureml_online import deployment_name
from tests.azureml.conftest import TOKEN
from tests.azureml.test_end_to_end import ROW, _train
from tests.azureml.test_rest_errors import _wait
from tests.chain.conftest import Pump
from tests.datasets import binary_csv

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def jobs(azureml) -> dict[str, str]:
    """Job names of two trained models: `old` (true labels) and `new` (inverted: every answer flips)."""
    return {"old": _train(azureml, binary_csv(300, seed=3)), "new": _train(azureml, binary_csv(300, seed=4, invert=True))}


class Chain:
    """One test's app state (own tables and queues) against the shared emulator, plus its endpoint."""

    def __init__(self, azurite, azureml, jobs):
        suffix = uuid.uuid4().hex[:8]
        env = {"RETRAIN_STORAGE": azurite.connection_string, "RETRAIN_TABLE_PREFIX": f"t{suffix}",
               "TRAINING_CONTAINER": f"train-{suffix}", "OUTPUT_CONTAINER": f"out-{suffix}",
               "ARM_ACCESS_TOKEN": TOKEN, "ALLOWED_SERVICE_HOSTS": urlsplit(azureml.url).netloc}
        self.ctx = Context.from_env(env, retry=RetryPolicy(attempts=2, backoff=0.05, max_backoff=0.2,
                                                           budget=2.0)).ensure()
        self.azureml, self.jobs = azureml, jobs
        self.pump = Pump(self.ctx)
        self.endpoint = f"ep-{suffix}"
        self.model_name = f"census-{suffix}"
        self.path = f"/onlineEndpoints/{self.endpoint}"

    @property
    def workspace(self) -> str:
        return f"{self.azureml.url}{self.azureml.ws_path}"

    def create_endpoint(self, code: str = "retrain-src", script: str = "score.py", name: str | None = None,
                        env: dict | None = None) -> None:
        """The team's endpoint as it is before this app: `blue` (the old model, scored by `script`) takes 100%."""
        az = self.azureml
        name = name or self.endpoint
        path = f"/onlineEndpoints/{name}"
        assert az.rest("PUT", path, json={"location": "westeurope", "properties": {"authMode": "Key"}}) \
            .status_code == 201
        _wait(az, path)
        r = az.rest("PUT", f"/models/blue-{name}/versions/1", json={"properties": {
            "modelType": "custom_model", "modelUri": f"azureml://jobs/{self.jobs['old']}/outputs/model"}})
        assert r.status_code in (200, 201), r.text
        r = az.rest("PUT", f"{path}/deployments/blue", json={
            "location": "westeurope", "sku": {"name": "Default", "capacity": 1},
            "properties": {"model": f"{az.ws_path}/models/blue-{name}/versions/1",
                           "codeConfiguration": {"codeId": f"{az.ws_path}/codes/{code}/versions/1",
                                                 "scoringScript": script},
                           **({"environmentVariables": env} if env else {})}})
        assert r.status_code == 201, r.text
        assert _wait(az, f"{path}/deployments/blue")["properties"]["provisioningState"] == "Succeeded"
        assert az.rest("PUT", path, json={"location": "westeurope", "properties": {
            "authMode": "Key", "traffic": {"blue": 100}}}).status_code == 200
        _wait(az, path)

    def register(self, rollout: dict | None = None) -> ModelDefinition:
        body = {"training": {"url": "https://ussouthcentral.services.azureml.net/workspaces/w/services/s",
                             "key_setting": "RETRAIN_SECRET_UNUSED"},
                "endpoints": [{"kind": "azureml_online", "name": "live", "model_name": self.model_name,
                               "url": f"{self.workspace}{self.path}"}],
                "rollout": rollout}
        definition = ModelDefinition.from_json("census", {k: v for k, v in body.items() if v is not None})
        self.ctx.models.put(definition)
        return definition

    def promoting(self, job: str) -> Run:
        """A run that passed the gate with the model `job` trained, its promote message sent."""
        now = self.ctx.clock()
        run_id = uuid.uuid4().hex[:20]
        model = AzureMLModel(self.workspace, job, "model")
        run = Run("census", run_id, Trigger.HTTP, DataRef("training-data", f"{run_id}.csv", '"0x1"', 10),
                  Status.PROMOTING, "passed the gate; updating endpoints", iso(now), iso(now + timedelta(hours=1)),
                  outputs={"model": model.to_record()}, metrics={"AUC": 0.9},
                  decision={"passed": True, "summary": "AUC 0.9 meets the minimum 0.7."},
                  step_times={"promoting": iso(now)})
        created, _ = self.ctx.runs.create(run)
        self.ctx.queues.send(StepMessage("census", run_id, Step.PROMOTE, created.polls))
        return created

    def settle(self, run: Run, timeout: float = 90) -> Run:
        self.pump.run(until=lambda: self.ctx.runs.get("census", run.run_id).terminal, timeout=timeout,
                      only=(Step.PROMOTE,))
        return self.ctx.runs.get("census", run.run_id)

    def traffic(self) -> dict:
        return self.azureml.rest("GET", self.path).json()["properties"]["traffic"]

    def deployments(self) -> list[str]:
        return sorted(d["name"] for d in self.azureml.rest("GET", f"{self.path}/deployments").json()["value"])

    def versions(self) -> list[dict]:
        return self.azureml.rest("GET", f"/models/{self.model_name}/versions").json()["value"]

    def score(self, rows: list[dict], deployment: str) -> int:
        """One scoring request sent to `deployment` (the azureml-model-deployment header); its status."""
        import requests
        props = self.azureml.rest("GET", self.path).json()["properties"]
        key = self.azureml.rest("POST", f"{self.path}/listKeys").json()["primaryKey"]
        r = requests.post(props["scoringUri"], json={"data": rows}, verify=str(self.azureml.ca), timeout=30,
                          headers={"Authorization": f"Bearer {key}", "azureml-model-deployment": deployment})
        return r.status_code

    def answer(self) -> str:
        import requests
        props = self.azureml.rest("GET", self.path).json()["properties"]
        key = self.azureml.rest("POST", f"{self.path}/listKeys").json()["primaryKey"]
        r = requests.post(props["scoringUri"], json=ROW, headers={"Authorization": f"Bearer {key}"},
                          verify=str(self.azureml.ca), timeout=30)
        assert r.status_code == 200, r.text
        return str(r.json()["predictions"][0])


@pytest.fixture
def chain(azurite, azureml, jobs) -> Chain:
    c = Chain(azurite, azureml, jobs)
    c.create_endpoint()
    azureml.faults("DELETE")
    yield c
    azureml.faults("DELETE")


CANARY = {"strategy": "canary", "steps": [25, 100], "dwell_seconds": 1, "smoke_test": {"rows": ROW["data"]}}


def test_a_run_is_promoted_blue_green_and_the_answers_change(chain):
    chain.register()
    before = chain.answer()
    run = chain.settle(chain.promoting(chain.jobs["new"]))
    assert run.status is Status.PROMOTED, run.reason
    dep = deployment_name(run.run_id)
    assert chain.traffic() == {dep: 100} and chain.answer() != before
    outcome = run.endpoints["live"]
    assert outcome["ok"] and outcome["deployment"] == dep and outcome["previous"] == "blue"
    champion = chain.ctx.models.get("census").champion
    assert champion.location.registered and champion.location.model_name == chain.model_name


def test_a_canary_promotion_walks_its_steps_as_delayed_messages(chain):
    chain.register(CANARY)
    run = chain.promoting(chain.jobs["new"])
    seen, pages = [], []
    deadline = time.monotonic() + 90
    while not chain.ctx.runs.get("census", run.run_id).terminal and time.monotonic() < deadline:
        chain.pump.once(Step.PROMOTE)
        traffic = chain.traffic()
        if not seen or seen[-1] != traffic:
            seen.append(traffic)
            live = dashboard.handle(chain.ctx, dashboard.WebRequest("GET", f"models/census/runs/{run.run_id}/live"))
            pages.append(live.body.decode())
        time.sleep(0.2)
    run = chain.ctx.runs.get("census", run.run_id)
    dep = deployment_name(run.run_id)
    assert run.status is Status.PROMOTED, run.reason
    assert seen == [{"blue": 100}, {dep: 25, "blue": 75}, {dep: 100}]
    history = chain.ctx.promotions.history("census")
    assert history[0].endpoints["live"]["traffic"] == {dep: 100}
    assert any(f"rolling out: {dep} takes 25%" in page for page in pages)
    overview = dashboard.handle(chain.ctx, dashboard.WebRequest("GET", "")).body.decode()
    assert f"(traffic {dep} 100%)" in overview


def test_a_failing_smoke_test_fails_the_run_with_the_reason_and_traffic_stays(chain):
    chain.register({**CANARY, "smoke_test": {"rows": [{"x1": "not a number"}]}})
    run = chain.settle(chain.promoting(chain.jobs["new"]))
    assert run.status is Status.FAILED
    assert "smoke test of deployment" in run.reason and "the champion did not change" in run.reason
    assert chain.traffic() == {"blue": 100}
    assert chain.ctx.models.get("census").champion is None


def test_rollback_moves_traffic_back_without_a_new_deployment(chain):
    chain.register()
    first = chain.settle(chain.promoting(chain.jobs["old"]))
    second = chain.settle(chain.promoting(chain.jobs["new"]))
    assert first.status is second.status is Status.PROMOTED
    deployments = chain.deployments()
    started = time.monotonic()
    result = rollback.rollback(chain.ctx, "census", by="test")
    assert time.monotonic() - started < 10
    assert result.promotion.to_run == first.run_id
    assert chain.traffic() == {deployment_name(first.run_id): 100}
    assert chain.deployments() == deployments  # nothing deployed, nothing deleted
    assert chain.ctx.models.get("census").champion.run_id == first.run_id


@pytest.mark.parametrize("route", ["models.versions.put", "online.deployments.put", "online.endpoints.put"])
@pytest.mark.parametrize("after", [False, True], ids=["before", "after"])
def test_a_crash_at_an_external_call_still_ends_with_one_version_one_deployment_and_the_traffic(chain, route, after):
    """The call fails (refused: before; applied, then 503: after); the step is redelivered and goes on."""
    chain.register({"strategy": "canary", "steps": [50, 100], "dwell_seconds": 0})
    chain.azureml.faults("POST", {"type": "response", "route": route, "status": 503, "count": 1, "after": after})
    run = chain.settle(chain.promoting(chain.jobs["new"]))
    assert run.status is Status.PROMOTED, run.reason
    dep = deployment_name(run.run_id)
    assert len(chain.versions()) == 1
    assert [d for d in chain.deployments() if d != "blue"] == [dep]
    assert chain.traffic() == {dep: 100}


def test_a_crash_at_the_old_deployment_delete_still_retires_it(chain):
    chain.register({"retain": 0})
    chain.azureml.faults("POST", {"type": "response", "route": "online.deployments.delete", "status": 503,
                                  "count": 1, "after": True})
    first = chain.settle(chain.promoting(chain.jobs["old"]))
    second = chain.settle(chain.promoting(chain.jobs["new"]))
    assert first.status is second.status is Status.PROMOTED, (first.reason, second.reason)
    time.sleep(0.5)
    assert deployment_name(first.run_id) not in chain.deployments()
    assert chain.traffic() == {deployment_name(second.run_id): 100}


def test_every_message_delivered_twice_changes_nothing_twice(chain, monkeypatch):
    chain.register(CANARY)
    real = steps.handle

    def twice(ctx, step, body):
        real(ctx, step, body)
        real(ctx, step, body)

    monkeypatch.setattr(steps, "handle", twice)
    run = chain.settle(chain.promoting(chain.jobs["new"]))
    assert run.status is Status.PROMOTED, run.reason
    dep = deployment_name(run.run_id)
    assert len(chain.versions()) == 1 and [d for d in chain.deployments() if d != "blue"] == [dep]
    assert chain.traffic() == {dep: 100}
    assert len(chain.ctx.promotions.history("census")) == 1


def test_failed_provisioning_fails_the_run_with_the_services_reason(chain):
    chain.register()
    chain.azureml.faults("POST", {"type": "fail_provisioning", "message": "Not enough quota for Standard_DS3_v2"})
    run = chain.settle(chain.promoting(chain.jobs["new"]))
    assert run.status is Status.FAILED
    assert "failed to provision" in run.reason and "Not enough quota" in run.reason
    assert chain.traffic() == {"blue": 100}


def test_a_failed_promotion_retried_sends_the_deployment_again_and_goes_live(chain):
    from retrain import chain as runs_chain

    chain.register()
    chain.azureml.faults("POST", {"type": "fail_provisioning", "message": "Not enough quota for Standard_DS3_v2"})
    failed = chain.settle(chain.promoting(chain.jobs["new"]))
    assert failed.status is Status.FAILED
    chain.azureml.faults("DELETE")
    runs_chain.retry_promotion(chain.ctx, "census", failed.run_id, by="test")
    run = chain.settle(failed)
    dep = deployment_name(run.run_id)
    assert run.status is Status.PROMOTED, run.reason
    assert [d for d in chain.deployments() if d != "blue"] == [dep] and chain.traffic() == {dep: 100}
    assert len(chain.versions()) == 1


def test_the_api_view_shows_each_endpoints_deployment_and_traffic(chain):
    import jsonschema

    from retrain.schemas import SCHEMAS

    chain.register()
    run = chain.settle(chain.promoting(chain.jobs["new"]))
    view = run.to_public()["endpoints"]["live"]
    assert view["deployment"] == deployment_name(run.run_id) and view["traffic"] == {view["deployment"]: 100}
    assert view["previous"] == "blue" and view["previous_traffic"] == {"blue": 100} and view["phase"] == "done"
    assert "settings" not in view
    schema = {**SCHEMAS["EndpointOutcome"], "components": {"schemas": SCHEMAS}}
    jsonschema.validate(view, schema)


# --- batch endpoints -----------------------------------------------------------------------

def test_a_batch_endpoint_gets_a_new_deployment_made_its_default(chain):
    az = chain.azureml
    path = f"/batchEndpoints/b-{chain.endpoint[3:]}"
    assert az.rest("PUT", path, json={"location": "westeurope", "properties": {"authMode": "AADToken"}}) \
        .status_code == 201
    _wait(az, path)
    r = az.rest("PUT", f"/models/batch-{chain.endpoint}/versions/1", json={"properties": {
        "modelType": "custom_model", "modelUri": f"azureml://jobs/{chain.jobs['old']}/outputs/model"}})
    assert r.status_code in (200, 201), r.text
    r = az.rest("PUT", f"{path}/deployments/first", json={"location": "westeurope", "properties": {
        "model": {"referenceType": "Id", "assetId": f"{az.ws_path}/models/batch-{chain.endpoint}/versions/1"},
        "compute": f"{az.ws_path}/computes/cpu-cluster", "resources": {"instanceCount": 2}, "miniBatchSize": 5}})
    assert r.status_code == 201, r.text
    _wait(az, f"{path}/deployments/first")
    assert az.rest("PUT", path, json={"location": "westeurope", "properties": {
        "authMode": "AADToken", "defaults": {"deploymentName": "first"}}}).status_code == 200
    _wait(az, path)
    definition = {"training": {"url": "https://ussouthcentral.services.azureml.net/workspaces/w/services/s",
                               "key_setting": "RETRAIN_SECRET_UNUSED"},
                  "endpoints": [{"kind": "azureml_batch", "name": "nightly", "model_name": chain.model_name,
                                 "url": f"{chain.workspace}{path}"}]}
    chain.ctx.models.put(ModelDefinition.from_json("census", definition))
    run = chain.settle(chain.promoting(chain.jobs["new"]))
    assert run.status is Status.PROMOTED, run.reason
    dep = deployment_name(run.run_id)
    endpoint = az.rest("GET", path).json()
    assert endpoint["properties"]["defaults"]["deploymentName"] == dep
    new = az.rest("GET", f"{path}/deployments/{dep}").json()["properties"]
    assert new["model"]["assetId"].endswith(f"/models/{chain.model_name}/versions/{run.run_id[:16]}")
    assert new["resources"]["instanceCount"] == 2 and new["miniBatchSize"] == 5  # copied from the default
    assert run.endpoints["nightly"]["previous"] == "first"


def test_changes_to_one_endpoint_wait_while_another_change_holds_it(chain):
    from retrain import model_lock
    from retrain.serving.loop import LOCK_BUSY_WAIT, endpoint_lock

    definition = chain.register()
    run = chain.promoting(chain.jobs["new"])
    with model_lock.holding(chain.ctx, endpoint_lock(definition.endpoints[0]), "change"):
        chain.pump.once(Step.PROMOTE)
        waiting = chain.ctx.runs.get("census", run.run_id)
        assert waiting.status is Status.PROMOTING
        assert waiting.endpoints["live"]["waiting"] and waiting.endpoints["live"]["wait"] == LOCK_BUSY_WAIT
        assert chain.traffic() == {"blue": 100}
    done = chain.settle(run)
    assert done.status is Status.PROMOTED, done.reason


def _answer_job(azureml, word: str) -> str:
    """A job whose model output is an answer.txt holding `word` (the model of tests/azureml/tools/answer_score.py)."""
    out = "${{outputs.model}}"
    name, r = azureml.put_job(f"mkdir -p {out} && echo {word} > {out}/answer.txt", code="tools",
                              outputs={"model": {"jobOutputType": "custom_model"}})
    assert r.status_code == 201, r.text
    assert azureml.wait_job(name)["properties"]["status"] == "Completed"
    return name


def test_an_error_rate_above_the_threshold_during_a_canary_dwell_fails_the_run_and_moves_traffic_back(
        azurite, azureml):
    jobs = {"old": _answer_job(azureml, "blue"), "good": _answer_job(azureml, "green"),
            "flaky": _answer_job(azureml, "flaky")}  # flaky: its scoring process dies on rows with {"boom": true}
    chain = Chain(azurite, azureml, jobs)
    chain.create_endpoint(code="tools", script="answer_score.py")
    chain.register({"strategy": "canary", "steps": [50, 100], "dwell_seconds": 3, "max_error_rate": 0.1,
                    "min_requests": 4})
    champion = chain.settle(chain.promoting(jobs["good"]))  # no requests in its dwells: the rate is not judged
    assert champion.status is Status.PROMOTED, champion.reason
    live = deployment_name(champion.run_id)
    run = chain.promoting(jobs["flaky"])
    dep, answers = deployment_name(run.run_id), []
    deadline = time.monotonic() + 90
    while not chain.ctx.runs.get("census", run.run_id).terminal and time.monotonic() < deadline:
        chain.pump.once(Step.PROMOTE)
        state = chain.ctx.runs.get("census", run.run_id).endpoints.get("live", {})
        if not answers and state.get("phase") == "traffic" and "since" in state:  # the 50% step's dwell is watched
            answers = [chain.score([{"boom": True}], dep) for _ in range(4)]
        time.sleep(0.2)
    run = chain.ctx.runs.get("census", run.run_id)
    assert answers and all(status >= 500 for status in answers), answers
    assert run.status is Status.FAILED
    assert f"at 50%: deployment {dep} failed 4 of 4 requests (100.0%), above the allowed 10.0%" in run.reason
    assert f"traffic moved back to {live} 100%" in run.reason and "the champion did not change" in run.reason
    assert chain.traffic() == {live: 100}
    assert chain.ctx.models.get("census").champion.run_id == champion.run_id


def test_large_deployment_settings_on_many_endpoints_are_kept_in_blobs_and_a_rollback_recreates_from_them(
        azurite, azureml, jobs):
    from retrain.serving.documents import document_name

    env = {f"SETTING_{i:03d}": "v" * 100 for i in range(250)}  # about 27 KB of settings per deployment
    names = ["live", "second"]
    chain = Chain(azurite, azureml, jobs)
    chain.create_endpoint(env=env)
    chain.create_endpoint(name=f"{chain.endpoint}-second", env=env)
    paths = {"live": chain.path, "second": f"/onlineEndpoints/{chain.endpoint}-second"}
    chain.ctx.models.put(ModelDefinition.from_json("census", {
        "training": {"url": "https://ussouthcentral.services.azureml.net/workspaces/w/services/s",
                     "key_setting": "RETRAIN_SECRET_UNUSED"},
        "endpoints": [{"kind": "azureml_online", "name": n, "model_name": f"{chain.model_name}-{n}",
                       "url": f"{chain.workspace}{paths[n]}"} for n in names],
        "rollout": {"retain": 0}}))
    first = chain.settle(chain.promoting(chain.jobs["old"]))
    second = chain.settle(chain.promoting(chain.jobs["new"]))
    assert first.status is second.status is Status.PROMOTED, (first.reason, second.reason)

    table = chain.ctx.storage.tables.get_table_client(f"{chain.ctx.settings.table_prefix}runs")
    stored = table.get_entity("census", second.run_id)["Endpoints"]
    assert len(stored) < 8000 and "SETTING_" not in stored  # inline, 4 x 27 KB would pass the 64 KiB property
    blobs = chain.ctx.storage.blobs
    for n in names:
        record = second.endpoints[n]
        assert "settings" not in record and "previous_settings" not in record
        name = document_name(second.run_id, n, "settings")
        assert record["settings_blob"] == name
        kept = json.loads(blobs.get_blob_client(chain.ctx.settings.output_container, name).download_blob().readall())
        assert kept["properties"]["environmentVariables"] == env
        assert deployment_name(first.run_id) not in chain.azureml.rest("GET", f"{paths[n]}/deployments").text

    result = rollback.rollback(chain.ctx, "census", by="test")  # retain 0: the first run's deployments are gone
    assert result.promotion.to_run == first.run_id
    dep = deployment_name(first.run_id)
    for n in names:
        assert result.endpoints[n]["ok"] and result.endpoints[n].get("recreated"), result.endpoints[n]
        found = chain.azureml.rest("GET", f"{paths[n]}/deployments/{dep}").json()
        assert found["properties"]["environmentVariables"] == env
        assert chain.azureml.rest("GET", paths[n]).json()["properties"]["traffic"] == {dep: 100}
