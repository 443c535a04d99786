"""End to end through devhost on the local Azure ML service: data lands -> a job trains -> MLflow metrics -> the gate ->
a canary rollout on an online endpoint -> promoted; the next run is scored against the registered champion and rejected.

Real Azurite, real emulators.azureml over HTTPS, the real Functions app under devhost; the Azure AD token is the one
stand-in (a static token the local service checks).
"""

from __future__ import annotations

import uuid

import pytest
import requests

from devhost.host import DevHost
from devhost.world import REPO
from retrain.context import set_context
from tests.azureml.chain_world import azureml_training, new_chain
from tests.azureml.test_end_to_end import ROW
from tests.azureml.test_rest_errors import _wait
from tests.chain.operator_world import wait_for
from tests.datasets import binary_csv

pytestmark = pytest.mark.slow


@pytest.fixture
def chain(azurite, azureml):
    world = new_chain(azurite, azureml)
    settings = {**world.ctx.env, "AzureWebJobsStorage": world.ctx.env["RETRAIN_STORAGE"],
                "RETRAIN_SCHEDULE": "0 0 2 * * *", "SWEEP_SCHEDULE": "0 */5 * * * *", "CHECK_MAX_DELAY_SECONDS": "1"}
    set_context(None)  # the host's functions build their context from the app settings
    with DevHost("function_app", REPO, settings=settings, port=0, poll_interval=0.1,
                 max_polling_interval=0.3) as host:
        world.host = host
        yield world
    set_context(None)


def test_trained_promoted_by_canary_then_rejected_against_the_registered_champion(chain, azureml):
    endpoint = f"ep-{uuid.uuid4().hex[:8]}"
    path = f"/onlineEndpoints/{endpoint}"
    assert azureml.rest("PUT", path, json={"location": "westeurope", "properties": {"authMode": "Key"}}).status_code == 201
    _wait(azureml, path)
    model_name = f"{chain.model}-model"
    definition = {
        "training": azureml_training(azureml),
        "endpoints": [{"kind": "azureml_online", "name": "live", "model_name": model_name,
                       "url": f"{azureml.url}{azureml.ws_path}{path}",
                       "deployment": {"sku": {"name": "Default", "capacity": 1}, "properties": {
                           "codeConfiguration": {"codeId": f"{azureml.ws_path}/codes/retrain-src/versions/1",
                                                 "scoringScript": "score.py"}}}}],
        "rollout": {"strategy": "canary", "steps": [50, 100], "dwell_seconds": 1, "smoke_test": {"rows": ROW["data"]}},
        "policy": {"rules": [{"metric": "AUC", "min": 0.7, "min_improvement": 0.0}]},
    }
    api = f"{chain.host.url}/api/models/{chain.model}"
    answer = requests.put(api, json=definition, timeout=10)
    assert answer.status_code == 201, answer.text

    def ended(name):
        runs = requests.get(f"{api}/runs", timeout=10).json()["runs"]
        return next((r for r in runs if r["data"]["name"] == f"{chain.model}/{name}" and r["terminal"]), None)

    def land(name, data):
        chain.ctx.storage.blobs.get_blob_client(chain.ctx.settings.training_container, f"{chain.model}/{name}") \
            .upload_blob(data, overwrite=True)
        return wait_for(lambda: ended(name), timeout=240)

    first = land("first.csv", binary_csv(rows=300, seed=1, noise=0.02))
    assert first["status"] == "promoted", first["reason"]
    props = azureml.rest("GET", path).json()["properties"]
    [live] = props["traffic"]
    assert props["traffic"] == {live: 100}
    champion = requests.get(api, timeout=10).json()["champion"]
    assert champion["run_id"] == first["run_id"] and champion["model_uri"].startswith("azureml://jobs/")

    second = land("second.csv", binary_csv(rows=300, seed=2, noise=0.45))  # labels mostly noise
    assert second["status"] == "rejected", second["reason"]
    assert second["reason"].startswith("Rejected: AUC")
    assert chain.run(second["run_id"]).decision["basis"] == "same_holdout"  # the champion scored on this hold-out
    [job] = chain.jobs_of(second["run_id"])
    assert job["properties"]["inputs"]["baseline"]["uri"].startswith(f"azureml:{model_name}:")  # the registered champion
    assert azureml.rest("GET", path).json()["properties"]["traffic"] == {live: 100}  # nothing moved
    promotions = requests.get(f"{api}/promotions", timeout=10).json()["promotions"]
    assert [p["to_run"] for p in promotions] == [first["run_id"]]
