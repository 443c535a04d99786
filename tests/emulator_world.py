"""The test workspace the shared `emulator` fixture serves: ids, keys, URLs, plus helpers for faults and blobs.

Import it in tests (`from tests.emulator_world import EmulatorWorld`) or take the `emulator_world`
session fixture from tests/conftest.py, which returns a ready `EmulatorWorld`.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import requests
from azure.core.exceptions import ResourceExistsError
from azure.storage.blob import (BlobSasPermissions, BlobServiceClient, ContainerSasPermissions, generate_blob_sas,
                                generate_container_sas)

WORKSPACE_ID = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
WORKSPACE_TOKEN = "test-workspace-token"
ARM_TOKEN = "test-arm-token"
ARM_API_VERSION = "2017-01-01"
BES_API_VERSION = "2.0"
TRAINED_MODEL = "Census Model [trained model]"
STORAGE_ENV = "EMULATOR_TEST_STORAGE"


@dataclass(frozen=True)
class TrainingService:
    """A training web service in the test workspace."""

    id: str
    key: str
    task: str
    label: str
    input: str | None = "input1"
    model_output: str = "output1"
    evaluation_output: str = "output2"
    data_parameter: str | None = None  # the global parameter carrying the data location, if any
    status_codes: str = "names"
    baseline_parameter: str = "Baseline model"


@dataclass(frozen=True)
class PredictiveService:
    id: str
    key: str
    secondary_key: str
    trained_model: str = TRAINED_MODEL


@dataclass(frozen=True)
class ArmService:
    subscription: str
    resource_group: str
    name: str
    api_key: str
    trained_model: str = TRAINED_MODEL


BINARY = TrainingService("census-train", "train-key-binary", "binary", "label")
REGRESSION = TrainingService("price-train", "train-key-regression", "regression", "target",
                             model_output="model", evaluation_output="evaluation")
FROM_PARAMETER = TrainingService("census-train-gp", "train-key-gp", "binary", "label", input=None,
                                 data_parameter="Data source")
NUMERIC = TrainingService("census-train-numeric", "train-key-numeric", "binary", "label", status_codes="numbers")
PREDICTIVE = PredictiveService("census-predict", "predict-key", "predict-key-2")
ARM = ArmService("00000000-0000-0000-0000-00000000cafe", "retrain-rg", "census-arm", "arm-score-key")
# Mutated by tests/emulator/test_arm.py only, so `ARM` stays as configured for everyone else.
ARM_SCRATCH = ArmService(ARM.subscription, ARM.resource_group, "census-arm-scratch", "arm-scratch-key")


def workspace_config(initial_model: Path) -> dict:
    """The emulator config document for this workspace (storage comes from ${EMULATOR_TEST_STORAGE})."""
    binary_recipe = {"task": "binary", "label": "label", "learner": "logistic_regression",
                     "hyperparameters": {"C": 1.0}, "holdout": 0.25, "seed": 42}
    seed_params = {"Random seed": {"sets": "seed"}, "Regularization": {"sets": "hyperparameters.C"}}
    return {
        "storage": {"connection_string": "${%s}" % STORAGE_ENV},
        "results_sas_minutes": 30,
        "workspaces": [{
            "id": WORKSPACE_ID,
            "token": WORKSPACE_TOKEN,
            "training_services": [
                {"id": BINARY.id, "api_key": BINARY.key, "recipe": binary_recipe, "global_parameters": seed_params},
                {"id": REGRESSION.id, "api_key": REGRESSION.key,
                 "outputs": {"model": "model", "evaluation": "evaluation"},
                 "recipe": {"task": "regression", "label": "target", "learner": "linear_regression"}},
                {"id": FROM_PARAMETER.id, "api_key": FROM_PARAMETER.key, "input": None, "recipe": binary_recipe,
                 "global_parameters": {"Data source": {"sets": "data"}}},
                {"id": NUMERIC.id, "api_key": NUMERIC.key, "recipe": binary_recipe, "status_codes": "numbers"},
            ],
            "predictive_services": [
                {"id": PREDICTIVE.id, "api_key": PREDICTIVE.key, "secondary_key": PREDICTIVE.secondary_key,
                 "trained_model": PREDICTIVE.trained_model, "initial_model": str(initial_model)},
            ],
        }],
        "arm": {"token": ARM_TOKEN, "provisioning_seconds": 0.3, "web_services": [
            {"subscription": ARM.subscription, "resource_group": ARM.resource_group, "name": ARM.name,
             "trained_model": ARM.trained_model, "api_key": ARM.api_key, "initial_model": str(initial_model)},
            {"subscription": ARM_SCRATCH.subscription, "resource_group": ARM_SCRATCH.resource_group,
             "name": ARM_SCRATCH.name, "trained_model": ARM_SCRATCH.trained_model, "api_key": ARM_SCRATCH.api_key,
             "initial_model": str(initial_model)},
        ]},
    }


def write_workspace(directory: Path, initial_model: bytes) -> Path:
    """Write the initial model and the config file into `directory`; returns the config path."""
    directory.mkdir(parents=True, exist_ok=True)
    model_path = directory / "initial.ilearner"
    model_path.write_bytes(initial_model)
    config = directory / "workspace.json"
    config.write_text(json.dumps(workspace_config(model_path), indent=2))
    return config


class FaultsClient:
    """The emulator's /_admin routes: arm faults, reset them, read the request log."""

    def __init__(self, url: str):
        self.url = url

    def inject(self, type: str = "response", **spec) -> dict:
        """E.g. inject(route="bes.status", status=503, count=2) or inject("fail_job", details="...")."""
        r = requests.post(f"{self.url}/_admin/faults", json={"type": type, **spec}, timeout=10)
        r.raise_for_status()
        return r.json()

    def reset(self) -> None:
        """Disarm every fault and clear the request log."""
        requests.delete(f"{self.url}/_admin/faults", timeout=10).raise_for_status()
        requests.delete(f"{self.url}/_admin/requests", timeout=10).raise_for_status()

    def active(self) -> list[dict]:
        return requests.get(f"{self.url}/_admin/faults", timeout=10).json()["faults"]

    def requests(self, route: str | None = None, method: str | None = None) -> list[dict]:
        """Requests served (oldest first): {seq, time, method, path, route, status, injected}."""
        params = {k: v for k, v in (("route", route), ("method", method)) if v}
        r = requests.get(f"{self.url}/_admin/requests", params=params, timeout=10)
        r.raise_for_status()
        return r.json()["requests"]

    def count(self, route: str, status: int | None = None) -> int:
        return sum(1 for e in self.requests(route) if status is None or e["status"] == status)


@dataclass
class Blobs:
    """Test-side blob helpers on the shared Azurite account: upload data, mint SAS URLs, read outputs."""

    connection_string: str
    _service: BlobServiceClient = field(init=False, repr=False)

    def __post_init__(self):
        self._service = BlobServiceClient.from_connection_string(self.connection_string)

    @property
    def base_location(self) -> str:
        return self._service.url if self._service.url.endswith("/") else self._service.url + "/"

    def container(self, prefix: str = "t") -> str:
        """A fresh container (unique name) so tests do not see each other's blobs."""
        name = f"{prefix}-{uuid.uuid4().hex[:12]}"
        try:
            self._service.create_container(name)
        except ResourceExistsError:
            pass
        return name

    def upload(self, container: str, name: str, data: bytes) -> str:
        """Upload and return the RelativeLocation `container/name`."""
        self._service.get_blob_client(container, name).upload_blob(data, overwrite=True)
        return f"{container}/{name}"

    def download(self, relative_location: str) -> bytes:
        container, name = relative_location.lstrip("/").split("/", 1)
        return self._service.get_blob_client(container, name).download_blob().readall()

    def exists(self, relative_location: str) -> bool:
        container, name = relative_location.lstrip("/").split("/", 1)
        return self._service.get_blob_client(container, name).exists()

    def sas(self, relative_location: str, *, write: bool = False, minutes: int = 30) -> str:
        """A blob SAS token ("?sv=...") for one blob, read-only unless `write`."""
        container, name = relative_location.lstrip("/").split("/", 1)
        now = datetime.now(timezone.utc)
        token = generate_blob_sas(self._service.account_name, container, name,
                                  account_key=self._service.credential.account_key,
                                  permission=BlobSasPermissions(read=True, write=write, create=write),
                                  start=now - timedelta(minutes=5), expiry=now + timedelta(minutes=minutes))
        return "?" + token

    def container_sas(self, container: str, *, write: bool = False, minutes: int = 30) -> str:
        now = datetime.now(timezone.utc)
        token = generate_container_sas(self._service.account_name, container,
                                       account_key=self._service.credential.account_key,
                                       permission=ContainerSasPermissions(read=True, list=True, write=write,
                                                                          create=write),
                                       start=now - timedelta(minutes=5), expiry=now + timedelta(minutes=minutes))
        return "?" + token

    def sas_url(self, relative_location: str, **kw) -> str:
        return self.base_location + relative_location.lstrip("/") + self.sas(relative_location, **kw)

    def sas_reference(self, relative_location: str, **kw) -> dict:
        """A BES blob reference in the SAS form."""
        return {"BaseLocation": self.base_location, "RelativeLocation": relative_location,
                "SasBlobToken": self.sas(relative_location, **kw)}

    def connection_reference(self, relative_location: str) -> dict:
        """A BES blob reference in the connection-string form."""
        return {"ConnectionString": self.connection_string, "RelativeLocation": relative_location}


@dataclass
class EmulatorWorld:
    """The running emulator and its test workspace, with URL builders and auth headers."""

    url: str
    storage_connection_string: str
    faults: FaultsClient
    blobs: Blobs
    workspace_id: str = WORKSPACE_ID
    workspace_token: str = WORKSPACE_TOKEN
    arm_token: str = ARM_TOKEN
    binary: TrainingService = BINARY
    regression: TrainingService = REGRESSION
    from_parameter: TrainingService = FROM_PARAMETER
    numeric: TrainingService = NUMERIC
    predictive: PredictiveService = PREDICTIVE
    arm: ArmService = ARM
    arm_scratch: ArmService = ARM_SCRATCH

    def bes_url(self, service: TrainingService | str) -> str:
        """The service's base URL, `{base}/jobs?api-version=2.0` submits."""
        sid = service if isinstance(service, str) else service.id
        return f"{self.url}/workspaces/{self.workspace_id}/services/{sid}"

    def jobs_url(self, service: TrainingService | str, job_id: str | None = None) -> str:
        return self.bes_url(service) + "/jobs" + (f"/{job_id}" if job_id else "")

    def rrs_url(self, service: PredictiveService | str | None = None) -> str:
        """The scoring URL (with api-version and details=true) of a service (default: the predictive one)."""
        sid = (service or self.predictive) if not isinstance(service, str) else service
        sid = sid if isinstance(sid, str) else sid.id
        return f"{self.url}/workspaces/{self.workspace_id}/services/{sid}/execute?api-version=2.0&details=true"

    def endpoint_url(self, service: PredictiveService | str | None = None, endpoint: str | None = None) -> str:
        sid = service if isinstance(service, str) else (service or self.predictive).id
        base = f"{self.url}/workspaces/{self.workspace_id}/webservices/{sid}/endpoints"
        return base + (f"/{endpoint}" if endpoint else "")

    def arm_url(self, name: str | None = None, resource_group: str | None = None) -> str:
        """The ARM resource URL (no query; add `?api-version=2017-01-01`)."""
        return (f"{self.url}/subscriptions/{self.arm.subscription}/resourceGroups/"
                f"{resource_group or self.arm.resource_group}/providers/Microsoft.MachineLearning/webServices/"
                f"{name or self.arm.name}")

    def arm_rrs_url(self, name: str | None = None) -> str:
        return (f"{self.url}/subscriptions/{self.arm.subscription}/services/{name or self.arm.name}"
                f"/execute?api-version=2.0&details=true")

    @staticmethod
    def auth(key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {key}"}

    # --- BES shortcuts (assert success; use `requests` directly to test error answers) --------

    def submit(self, service: TrainingService, body: dict) -> str:
        r = requests.post(self.jobs_url(service), params={"api-version": BES_API_VERSION}, json=body,
                          headers=self.auth(service.key), timeout=30)
        assert r.status_code == 200, r.text
        return r.json()

    def start(self, service: TrainingService, job_id: str) -> None:
        r = requests.post(self.jobs_url(service, job_id) + "/start", params={"api-version": BES_API_VERSION},
                          headers=self.auth(service.key), timeout=30)
        assert r.status_code == 204, r.text

    def status(self, service: TrainingService, job_id: str) -> dict:
        r = requests.get(self.jobs_url(service, job_id), params={"api-version": BES_API_VERSION},
                         headers=self.auth(service.key), timeout=30)
        assert r.status_code == 200, r.text
        return r.json()

    def wait(self, service: TrainingService, job_id: str, timeout: float = 90) -> dict:
        """Poll until the job is Finished, Failed or Cancelled (names or numbers); returns the last status."""
        deadline = time.monotonic() + timeout
        while True:
            status = self.status(service, job_id)
            if status["StatusCode"] in ("Finished", "Failed", "Cancelled", 2, 3, 4):
                return status
            if time.monotonic() > deadline:
                raise AssertionError(f"job {job_id} still {status['StatusCode']} after {timeout}s")
            time.sleep(0.1)

    def train(self, service: TrainingService, data: bytes, **body) -> dict:
        """Upload `data`, submit with it as the input (connection-string form), start, wait; the final status."""
        container = self.blobs.container("in")
        location = self.blobs.upload(container, "train.csv", data)
        job_id = self.submit(service, {"Inputs": {service.input: self.blobs.connection_reference(location)}, **body})
        self.start(service, job_id)
        return {"JobId": job_id, **self.wait(service, job_id)}
