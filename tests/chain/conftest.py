"""The chain against a real Azurite and a real emulators.studio; step messages delivered by a small pump.

The pump plays the Functions host's queue trigger (receive, call the step, delete; on an exception the
message becomes visible again), so crash and duplicate-delivery tests can interleave at will. The full
host behaviour is exercised separately through devhost in the end-to-end tests.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from urllib.parse import urlsplit
from dataclasses import dataclass, field
from typing import Callable

import pytest
import requests

from devhost.world import Emulator
from retrain import steps
from retrain.context import Context
from retrain.http import RetryPolicy
from retrain.models import ModelDefinition
from retrain.queues import Step
from retrain.runs import Run
from retrain.triggers import BlobEvent, on_blob
from tests import datasets

WS, TRAIN, PREDICT, ARM_NAME = "chainws", "census-train", "census-predict", "census-arm"
WS_TOKEN, TRAIN_KEY, PREDICT_KEY, ARM_TOKEN = "ws-token-1", "train-key-1", "predict-key-1", "arm-token-1"
RESOURCE = "Census Model [trained model]"
SUB, RG = "00000000-0000-0000-0000-000000000001", "retrain-rg"


def write_chain_config(root, azurite):
    """The chain's workspace: one binary training service, a predictive service and an ARM web service."""
    config = {
        "storage": {"connection_string": azurite.connection_string},
        "workspaces": [{
            "id": WS, "token": WS_TOKEN,
            "training_services": [{"id": TRAIN, "api_key": TRAIN_KEY, "name": "Census Model",
                                   "recipe": {"task": "binary", "label": "label", "learner": "logistic_regression",
                                              "holdout": 0.3, "seed": 7}}],
            "predictive_services": [{"id": PREDICT, "api_key": PREDICT_KEY, "trained_model": RESOURCE}],
        }],
        "arm": {"token": ARM_TOKEN, "provisioning_seconds": 0.1,
                "web_services": [{"subscription": SUB, "resource_group": RG, "name": ARM_NAME,
                                  "trained_model": RESOURCE, "api_key": "arm-score-key"}]},
    }
    path = root / "workspace.json"
    path.write_text(json.dumps(config))
    return path


@pytest.fixture(scope="session")
def chain_emulator(tmp_path_factory, azurite):
    """The emulator every chain test shares (faults enabled, 2 workers)."""
    root = tmp_path_factory.mktemp("chain-emulator")
    server = Emulator.start(write_chain_config(root, azurite), root / "data", faults=True, workers=2)
    yield server
    server.stop()


@dataclass
class World:
    """One test's slice of the world: its own tables and containers, shared servers."""

    ctx: Context
    emulator: Emulator
    model: str = "census"
    endpoints: list[str] = field(default_factory=list)

    @property
    def bes_url(self) -> str:
        return f"{self.emulator.url}/workspaces/{WS}/services/{TRAIN}"

    def endpoint_url(self, name: str) -> str:
        return f"{self.emulator.url}/workspaces/{WS}/webservices/{PREDICT}/endpoints/{name}"

    def create_endpoint(self, name: str) -> str:
        response = requests.put(self.endpoint_url(name), json={"Description": "chain test", "ThrottleLevel": "Low"},
                                headers={"Authorization": f"Bearer {WS_TOKEN}"}, timeout=10)
        assert response.status_code in (200, 201, 204), response.text
        return self.endpoint_url(name)

    def register(self, policy: dict | None = None, endpoints: list[dict] | None = None, **extra) -> ModelDefinition:
        if endpoints is None:
            name = f"ep{uuid.uuid4().hex[:8]}"
            endpoints = [{"kind": "classic", "url": self.create_endpoint(name), "key_setting": "RETRAIN_SECRET_CHAIN_WS_TOKEN",
                          "resource_name": RESOURCE}]
        body = {"training": {"url": self.bes_url, "key_setting": "RETRAIN_SECRET_CHAIN_BES_KEY"}, "endpoints": endpoints,
                "policy": policy if policy is not None else {"rules": [{"metric": "AUC", "min": 0.7}]}, **extra}
        definition = ModelDefinition.from_json(self.model, body)
        self.ctx.models.put(definition)
        return definition

    def upload(self, name: str, data: bytes) -> BlobEvent:
        client = self.ctx.storage.blobs.get_blob_client(self.ctx.settings.training_container, name)
        client.upload_blob(data, overwrite=True)
        return BlobEvent.from_client(client)

    def land(self, name: str, data: bytes) -> Run:
        """Upload a blob and fire the blob trigger for it, as the host would."""
        result = on_blob(self.ctx, self.upload(name, data))
        assert result is not None
        return result.run

    def run(self, run_id: str) -> Run:
        return self.ctx.runs.get(self.model, run_id)

    def served_model(self, endpoint_url: str) -> str | None:
        body = requests.get(endpoint_url, headers={"Authorization": f"Bearer {WS_TOKEN}"}, timeout=10).json()
        resources = body.get("Resources") or []
        if not resources or not resources[0].get("Location"):
            return None
        loc = resources[0]["Location"]
        return (loc.get("BaseLocation") or "") + (loc.get("RelativeLocation") or "")

    # --- the emulator's admin routes ---------------------------------------------------------
    def inject(self, **fault) -> None:
        r = requests.post(f"{self.emulator.url}/_admin/faults", json=fault, timeout=10)
        assert r.status_code < 300, r.text

    def requests_to(self, method: str, path_pattern: str) -> list[dict]:
        """Requests the emulator served (its admin request log), by method and path regex."""
        log = requests.get(f"{self.emulator.url}/_admin/requests", timeout=10).json()["requests"]
        return [e for e in log if e["method"] == method and re.search(path_pattern, e["path"])]


class Pump:
    """Delivers step messages like the host's queue trigger, at-least-once, until the chain is quiet."""

    def __init__(self, ctx: Context):
        self.ctx = ctx
        self.errors: list[BaseException] = []
        self.delivered: list[tuple[Step, str]] = []

    def once(self, step: Step) -> int:
        client = self.ctx.queues.clients[step]
        count = 0
        for message in client.receive_messages(messages_per_page=16, max_messages=16, visibility_timeout=30):
            count += 1
            self.delivered.append((step, message.content))
            try:
                steps.handle(self.ctx, step, message.content)
            except Exception as e:  # the host would log it and redeliver the message
                self.errors.append(e)
                client.update_message(message, visibility_timeout=0)
                continue
            client.delete_message(message)
        return count

    def run(self, until: Callable[[], bool] | None = None, timeout: float = 90,
            only: tuple[Step, ...] = tuple(Step)) -> None:
        """Deliver (the `only` steps) until `until()` holds, or until no message is left (visible or delayed)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            delivered = sum(self.once(step) for step in only)
            if until is not None and until():
                return
            if not delivered:
                if until is None and self.pending() == 0:
                    return
                time.sleep(0.2)
        raise AssertionError(f"chain did not settle in {timeout}s; errors: {self.errors[-3:]}")

    def pending(self) -> int:
        return sum(c.get_queue_properties().approximate_message_count for c in self.ctx.queues.clients.values())

    def drain(self) -> None:
        for client in self.ctx.queues.clients.values():
            client.clear_messages()


@pytest.fixture
def world(azurite, chain_emulator):
    yield new_world(azurite, chain_emulator)


def new_world(azurite, chain_emulator) -> World:
    """Fresh tables, containers and queues on the shared servers."""
    suffix = uuid.uuid4().hex[:8]
    env = {"RETRAIN_STORAGE": azurite.connection_string, "RETRAIN_TABLE_PREFIX": f"t{suffix}",
           "TRAINING_CONTAINER": f"train-{suffix}", "OUTPUT_CONTAINER": f"out-{suffix}",
           "CHECK_INITIAL_DELAY_SECONDS": "0", "RETRAIN_SECRET_CHAIN_BES_KEY": TRAIN_KEY, "RETRAIN_SECRET_CHAIN_WS_TOKEN": WS_TOKEN,
           "ARM_ACCESS_TOKEN": ARM_TOKEN, "ALLOWED_SERVICE_HOSTS": urlsplit(chain_emulator.url).netloc}
    ctx = Context.from_env(env, retry=RetryPolicy(attempts=2, backoff=0.05, max_backoff=0.2, budget=2.0)).ensure()
    requests.delete(f"{chain_emulator.url}/_admin/faults", timeout=10)
    world = World(ctx, chain_emulator)
    Pump(ctx).drain()
    return world


@pytest.fixture(scope="module")
def operated(azurite, chain_emulator):
    """One app per test module (devhost) with two approved promotions and a run awaiting approval."""
    from .operator_world import operate, start_host

    world = new_world(azurite, chain_emulator)
    with start_host(world) as host:
        yield operate(world, host)


@pytest.fixture
def pump(world) -> Pump:
    return Pump(world.ctx)


def good_data(rows: int = 300, seed: int = 1) -> bytes:
    return datasets.binary_csv(rows=rows, seed=seed, noise=0.03)


def corrupted_data(rows: int = 300, seed: int = 2) -> bytes:
    """Labels partly flipped: a model trained on it is clearly worse."""
    return datasets.binary_csv(rows=rows, seed=seed, noise=0.45)


