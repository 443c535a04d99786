"""State under --data-dir survives a restart: endpoints and their models, ARM definitions, jobs (running ones fail)."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

import pytest
import requests

from devhost.world import Emulator
from tests.datasets import BINARY_FEATURES, binary_csv, binary_features
from tests.emulator_world import ARM_SCRATCH, STORAGE_ENV, Blobs, EmulatorWorld, FaultsClient

ARM_API = {"api-version": "2017-01-01"}


@dataclass
class Before:
    """What the first emulator process left behind, to compare with after the restart."""

    world: EmulatorWorld
    endpoint: dict
    labels: list[str]
    rows: list[list]
    model_location: str
    waiting_job: str
    running_job: str
    finished_job: str
    arm_uri: str


def _labels(w, api_location: str, key: str, rows) -> list[str]:
    body = {"Inputs": {"input1": {"ColumnNames": BINARY_FEATURES, "Values": rows}}}
    r = requests.post(api_location + "/execute?api-version=2.0&details=true", json=body, headers=w.auth(key))
    assert r.status_code == 200, r.text
    return [row[-2] for row in r.json()["Results"]["output1"]["value"]["Values"]]


def _world(server: Emulator, connection_string: str) -> EmulatorWorld:
    return EmulatorWorld(url=server.url, storage_connection_string=connection_string,
                         faults=FaultsClient(server.url), blobs=Blobs(connection_string))


@pytest.fixture(scope="module")
def before(azurite, emulator_config, tmp_path_factory):
    """Build state in a private emulator, restart it, and yield what it had before."""
    server = Emulator.start(emulator_config, tmp_path_factory.mktemp("restart-data"), faults=True, workers=1,
                            env={STORAGE_ENV: azurite.connection_string})
    try:
        w = _world(server, azurite.connection_string)
        finished = w.train(w.binary, binary_csv(80, seed=1))
        assert finished["StatusCode"] == "Finished", finished["Details"]
        trained = w.train(w.binary, binary_csv(150, seed=2, invert=True))["Results"]["output1"]
        name = f"ep-{uuid.uuid4().hex[:8]}"
        endpoint = requests.put(w.endpoint_url(endpoint=name), json={}, headers=w.auth(w.workspace_token)).json()
        patch = {"Resources": [{"Name": w.predictive.trained_model, "Location": trained}]}
        assert requests.patch(w.endpoint_url(endpoint=name), json=patch,
                              headers=w.auth(w.workspace_token)).status_code == 204
        endpoint = requests.get(w.endpoint_url(endpoint=name), headers=w.auth(w.workspace_token)).json()
        rows = binary_features(20, seed=50)
        labels = _labels(w, endpoint["ApiLocation"], endpoint["PrimaryKey"], rows)

        definition = requests.get(w.arm_url(ARM_SCRATCH.name), params=ARM_API, headers=w.auth(w.arm_token)).json()
        asset = next(a for a in definition["properties"]["assets"].values() if a["type"] == "Resource")
        asset["locationInfo"] = {"uri": trained["BaseLocation"] + trained["RelativeLocation"],
                                 "credentials": trained["SasBlobToken"]}
        put = requests.put(w.arm_url(ARM_SCRATCH.name), params=ARM_API, json=definition, headers=w.auth(w.arm_token))
        while requests.get(put.headers["Azure-AsyncOperation"], headers=w.auth(w.arm_token)).json()["status"] \
                == "InProgress":
            time.sleep(0.1)

        location = w.blobs.upload(w.blobs.container("restart"), "train.csv", binary_csv(60))
        reference = {"Inputs": {"input1": w.blobs.connection_reference(location)}}
        waiting = w.submit(w.binary, reference)
        w.faults.inject("slow_job", seconds=120)
        running = w.submit(w.binary, reference)
        w.start(w.binary, running)
        while w.status(w.binary, running)["StatusCode"] != "Running":
            time.sleep(0.05)

        server = server.restart()
        yield Before(_world(server, azurite.connection_string), endpoint, labels, rows,
                     trained["BaseLocation"] + trained["RelativeLocation"], waiting, running, finished["JobId"],
                     asset["locationInfo"]["uri"])
    finally:
        server.stop()


def test_an_endpoint_keeps_its_keys_version_and_location(before):
    w = before.world
    got = requests.get(w.endpoint_url(endpoint=before.endpoint["Name"]), headers=w.auth(w.workspace_token)).json()
    for field in ("PrimaryKey", "SecondaryKey", "ApiLocation", "Version", "Resources"):
        assert got[field] == before.endpoint[field]


def test_an_endpoint_serves_its_patched_model_after_a_restart(before):
    w = before.world
    assert _labels(w, before.endpoint["ApiLocation"], before.endpoint["PrimaryKey"], before.rows) == before.labels


def test_an_arm_web_service_keeps_its_model_uri(before):
    w = before.world
    definition = requests.get(w.arm_url(ARM_SCRATCH.name), params=ARM_API, headers=w.auth(w.arm_token)).json()
    asset = next(a for a in definition["properties"]["assets"].values() if a["type"] == "Resource")
    assert asset["locationInfo"]["uri"] == before.arm_uri
    assert definition["properties"]["provisioningState"] == "Succeeded"


def test_a_finished_job_still_reports_its_results(before):
    w = before.world
    status = w.status(w.binary, before.finished_job)
    assert status["StatusCode"] == "Finished" and set(status["Results"]) == {"output1", "output2"}


def test_a_job_running_at_shutdown_is_failed_as_restarted(before):
    w = before.world
    status = w.status(w.binary, before.running_job)
    assert status["StatusCode"] == "Failed"
    assert "restarted" in status["Details"]


def test_a_submitted_job_can_still_be_started(before):
    w = before.world
    assert w.status(w.binary, before.waiting_job)["StatusCode"] == "NotStarted"
    w.start(w.binary, before.waiting_job)
    assert w.wait(w.binary, before.waiting_job)["StatusCode"] == "Finished"
