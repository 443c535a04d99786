"""One running app with a history an operator looks at: two promoted runs (approved), one awaiting approval."""

from __future__ import annotations

import time
from dataclasses import dataclass

import requests

from devhost.host import DevHost
from devhost.world import REPO
from retrain.context import set_context

from .conftest import World, good_data

MODEL = "census"


def wait_for(predicate, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError("condition not reached in time")


@dataclass
class Operated:
    world: World
    host: DevHost
    promoted: list[str]  # oldest first
    awaiting: str

    @property
    def api(self) -> str:
        return f"{self.host.url}/api/models/{MODEL}"

    def run(self, run_id: str) -> dict:
        return requests.get(f"{self.api}/runs/{run_id}", timeout=10).json()

    def land_and_wait(self, name: str, data: bytes, status: str = "awaiting_approval") -> dict:
        self.world.upload(name, data)

        def found():
            runs = requests.get(f"{self.api}/runs", timeout=10).json()["runs"]
            return next((r for r in runs if r["data"]["name"] == name and r["status"] == status), None)
        return wait_for(found)


def start_host(world: World) -> DevHost:
    settings = {**world.ctx.env, "AzureWebJobsStorage": world.ctx.env["RETRAIN_STORAGE"],
                "RETRAIN_SCHEDULE": "0 0 2 * * *", "SWEEP_SCHEDULE": "0 */5 * * * *", "CHECK_MAX_DELAY_SECONDS": "1",
                "RETRAIN_SECRET_DASHBOARD_KEY": "test-dashboard-key",
                # App Service Authentication on; callers without a principal (the scenario, the CLI) hold both roles
                "RETRAIN_EASY_AUTH": "true", "RETRAIN_FUNCTION_KEY_ROLES": "Retrain.Approver,Retrain.Admin"}
    set_context(None)  # the host's functions build their context from the app settings
    return DevHost("function_app", REPO, settings=settings, port=0, poll_interval=0.1, max_polling_interval=0.3)


def operate(world: World, host: DevHost) -> Operated:
    """Register a model that needs approval, promote two runs through approval, leave a third waiting."""
    world.model = MODEL
    endpoint = world.create_endpoint(f"op{world.ctx.settings.table_prefix[-6:]}")
    definition = {"training": {"url": world.bes_url, "key_setting": "RETRAIN_SECRET_CHAIN_BES_KEY"},
                  "endpoints": [{"kind": "classic", "url": endpoint, "key_setting": "RETRAIN_SECRET_CHAIN_WS_TOKEN",
                                 "resource_name": "Census Model [trained model]"}],
                  "policy": {"rules": [{"metric": "AUC", "min": 0.6, "min_improvement": None}],
                             "approval": {"required": True}}}
    answer = requests.put(f"{host.url}/api/models/{MODEL}", json=definition, timeout=10)
    assert answer.status_code == 201, answer.text
    operated = Operated(world, host, [], "")
    for i, seed in enumerate((1, 3)):
        run = operated.land_and_wait(f"census/{i}.csv", good_data(rows=300 + 100 * i, seed=seed))
        answer = requests.post(f"{operated.api}/runs/{run['run_id']}/approve", json={"comment": "looks right"},
                               timeout=10)
        assert answer.status_code == 200, answer.text
        wait_for(lambda: operated.run(run["run_id"])["status"] == "promoted")
        operated.promoted.append(run["run_id"])
    operated.awaiting = operated.land_and_wait("census/2.csv", good_data(rows=500, seed=5))["run_id"]
    return operated
