"""End to end through devhost, as the demo runs it: blob upload -> host -> chain -> endpoint serves the new model."""

import pytest
import requests

from devhost.host import DevHost
from devhost.world import REPO
from retrain.context import set_context

from .conftest import WS_TOKEN, corrupted_data, good_data
from .operator_world import wait_for
from tests import datasets


@pytest.fixture
def host(world):
    settings = {**world.ctx.env, "AzureWebJobsStorage": world.ctx.env["RETRAIN_STORAGE"],
                "RETRAIN_SCHEDULE": "0 0 2 * * *", "SWEEP_SCHEDULE": "0 */5 * * * *",
                "CHECK_MAX_DELAY_SECONDS": "1"}
    set_context(None)  # the host's functions build their context from the app settings
    with DevHost("function_app", REPO, settings=settings, port=0, poll_interval=0.1,
                 max_polling_interval=0.3) as running:
        yield running
    set_context(None)


def test_a_promoted_and_a_rejected_retrain_change_predictions_only_when_promoted(world, host):
    api = f"{host.url}/api/models/{world.model}"
    endpoint = world.create_endpoint("e2e")
    definition = {"training": {"url": world.bes_url, "key_setting": "RETRAIN_SECRET_CHAIN_BES_KEY"},
                  "endpoints": [{"kind": "classic", "url": endpoint, "key_setting": "RETRAIN_SECRET_CHAIN_WS_TOKEN",
                                 "resource_name": "Census Model [trained model]"}],
                  "policy": {"rules": [{"metric": "AUC", "min": 0.7, "min_improvement": 0.0}]}}
    assert requests.put(api, json=definition, timeout=10).status_code == 201
    info = requests.get(endpoint, headers={"Authorization": f"Bearer {WS_TOKEN}"}, timeout=10).json()
    rows = datasets.binary_features(20, seed=99)

    def predict():
        body = {"Inputs": {"input1": {"ColumnNames": datasets.BINARY_FEATURES, "Values": rows}}}
        r = requests.post(info["ApiLocation"] + "/execute?api-version=2.0&details=true", json=body,
                          headers={"Authorization": f"Bearer {info['PrimaryKey']}"}, timeout=10)
        return [row[-1] for row in r.json()["Results"]["output1"]["value"]["Values"]] if r.ok else None

    def ended(name):
        runs = requests.get(f"{api}/runs", timeout=10).json()["runs"]
        return next((r for r in runs if r["data"]["name"] == name and r["terminal"]), None)

    assert predict() is None  # nothing served yet
    world.upload("census/first.csv", datasets.binary_csv(rows=300, seed=1, noise=0.02, invert=True))
    first = wait_for(lambda: ended("census/first.csv"))
    assert first["status"] == "promoted", first["reason"]
    before = predict()
    world.upload("census/noisy.csv", corrupted_data())
    assert wait_for(lambda: ended("census/noisy.csv"))["status"] == "rejected"
    assert predict() == before
    world.upload("census/second.csv", good_data(rows=600, seed=3))
    second = wait_for(lambda: ended("census/second.csv"))
    assert second["status"] == "promoted", second["reason"]
    assert predict() != before
    assert [p["to_run"] for p in requests.get(f"{api}/promotions", timeout=10).json()["promotions"]] == \
        [second["run_id"], first["run_id"]]


def test_devhost_passes_the_principal_header_through_to_the_app(world):
    """Easy Auth's front end cannot run here: the test sends the header it would set."""
    from retrain.principal import encode_principal

    settings = {**world.ctx.env, "AzureWebJobsStorage": world.ctx.env["RETRAIN_STORAGE"],
                "RETRAIN_SCHEDULE": "0 0 2 * * *", "SWEEP_SCHEDULE": "0 */5 * * * *", "RETRAIN_EASY_AUTH": "true"}
    definition = {"training": {"url": world.bes_url, "key_setting": "RETRAIN_SECRET_CHAIN_BES_KEY"}}
    admin = encode_principal([("oid", "oid-ada"), ("preferred_username", "ada@contoso.com"),
                              ("roles", "Retrain.Admin")])
    set_context(None)
    try:
        with DevHost("function_app", REPO, settings=settings, port=0, poll_interval=0.1) as running:
            api = f"{running.url}/api/models/{world.model}"
            refused = requests.put(api, json=definition, timeout=10)
            assert refused.status_code == 403 and refused.json()["error"]["role"] == "Retrain.Admin"
            accepted = requests.put(api, json=definition, headers={"X-MS-CLIENT-PRINCIPAL": admin}, timeout=10)
            assert accepted.status_code == 201, accepted.text
            [entry] = requests.get(f"{api}/audit", timeout=10).json()["audit"]
            assert entry["by"]["name"] == "ada@contoso.com" and entry["action"] == "create"
    finally:
        set_context(None)
