"""A real Azurite and a real emulators.azureml (HTTPS, provisioning time 0) for the session, plus clients."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from azure.storage.blob import BlobServiceClient

REPO = Path(__file__).resolve().parents[2]
TOKEN = "test-azureml-token"
SUB, RG, WS = "00000000-0000-0000-0000-0000000000aa", "rg-test", "ws-test"
CONTAINER, DATA_CONTAINER = "azureml", "training-data"


@dataclass
class AzureMLWorld:
    """Coordinates, a REST session (token, CA), blob upload, and the MLClient built once."""

    url: str
    ca: Path
    storage: str
    server: object
    _ml: object = None

    @property
    def ws_path(self) -> str:
        return f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.MachineLearningServices/workspaces/{WS}"

    @property
    def tracking_uri(self) -> str:
        return f"{self.url}/mlflow/v1.0{self.ws_path}"

    def rest(self, method: str, path: str, token: str | None = TOKEN, **kw) -> requests.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        headers.update(kw.pop("headers", {}))
        url = path if path.startswith("http") else f"{self.url}{self.ws_path}{path}"
        params = kw.pop("params", {"api-version": "2024-10-01"})
        return requests.request(method, url, headers=headers, params=params, verify=str(self.ca), timeout=60, **kw)

    def upload(self, data: bytes, name: str | None = None, container: str = DATA_CONTAINER) -> str:
        """Upload a blob; its azureml:// datastore URI."""
        name = name or f"{uuid.uuid4().hex}.csv"
        service = BlobServiceClient.from_connection_string(self.storage)
        try:
            service.create_container(container)
        except Exception:  # noqa: BLE001 - exists already
            pass
        service.get_blob_client(container, name).upload_blob(data, overwrite=True)
        store = "training" if container == DATA_CONTAINER else "workspaceblobstore"
        return f"azureml://datastores/{store}/paths/{name}"

    def put_job(self, command: str, inputs: dict | None = None, outputs: dict | None = None,
                code: str = "retrain-src", name: str | None = None, **props) -> tuple[str, requests.Response]:
        name = name or f"job-{uuid.uuid4().hex[:10]}"
        body = {"properties": {"jobType": "Command", "command": command, "experimentName": "tests",
                               "codeId": f"{self.ws_path}/codes/{code}/versions/1",
                               "environmentId": f"{self.ws_path}/environments/sklearn-env/versions/1",
                               "computeId": f"{self.ws_path}/computes/cpu-cluster",
                               "inputs": inputs or {}, "outputs": outputs or {}, **props}}
        return name, self.rest("PUT", f"/jobs/{name}", json=body)

    def wait_job(self, name: str, timeout: float = 120, until=("Completed", "Failed", "Canceled")) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            job = self.rest("GET", f"/jobs/{name}").json()
            if job["properties"]["status"] in until or time.monotonic() > deadline:
                return job
            time.sleep(0.1)

    def faults(self, method: str, body: dict | None = None) -> requests.Response:
        return requests.request(method, f"{self.url}/_admin/faults", json=body, verify=str(self.ca), timeout=10)

    @property
    def ml(self):
        """azure-ai-ml's MLClient pointed at this server (sovereign-cloud metadata, static token)."""
        if self._ml is None:
            from azure.ai.ml import MLClient
            from azure.core.credentials import AccessToken

            class StaticToken:  # Azure AD cannot exist here: a credential that returns the configured token
                def get_token(self, *scopes, **kwargs):
                    return AccessToken(TOKEN, int(time.time()) + 3600)

            port = self.url.rsplit(":", 1)[1]
            self._ml = MLClient(StaticToken(), SUB, RG, WS, cloud=f"LocalAzureML{port}", enable_telemetry=False,
                                cloud_metadata={"resource_manager": self.url + "/", "azure_portal": self.url + "/",
                                                "active_directory": self.url + "/", "aml_resource_id": self.url + "/",
                                                "storage_endpoint": "core.windows.net",
                                                "registry_discovery_endpoint": self.url + "/"})
        return self._ml


def write_config(folder: Path) -> Path:
    config = {"token": TOKEN, "storage": {"connection_string": "${AZUREML_STORAGE}"},
              "provisioning_seconds": "${AZUREML_PROVISIONING_SECONDS:-0}",
              "workspaces": [{"subscription": SUB, "resource_group": RG, "name": WS, "location": "westeurope",
                              "datastores": {"workspaceblobstore": CONTAINER, "training": DATA_CONTAINER},
                              "code": {"retrain-src": str(REPO / "examples" / "azureml" / "src"),
                                       "tools": str(Path(__file__).parent / "tools")},
                              "environments": ["sklearn-env"], "computes": ["cpu-cluster"]}]}
    path = folder / "workspace.json"
    path.write_text(json.dumps(config))
    return path


@pytest.fixture(scope="session")
def azureml_config(tmp_path_factory) -> Path:
    return write_config(tmp_path_factory.mktemp("azureml-config"))


@pytest.fixture(scope="session")
def azureml(azurite, azureml_config, tmp_path_factory, monkeypatch_session) -> AzureMLWorld:
    """One emulators.azureml (faults on, 2 job workers, provisioning 0) for the session."""
    from devhost.world import AzureML

    server = AzureML.start(azureml_config, tmp_path_factory.mktemp("azureml-data"), faults=True, workers=2,
                           env={"AZUREML_STORAGE": azurite.connection_string})
    monkeypatch_session.setenv("REQUESTS_CA_BUNDLE", str(server.ca))  # how Azure's clients trust the local CA
    yield AzureMLWorld(server.url, server.ca, azurite.connection_string, server)
    server.stop()


@pytest.fixture(scope="session")
def monkeypatch_session():
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()
