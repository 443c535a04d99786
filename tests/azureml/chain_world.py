"""The chain on the local Azure ML service and Azurite: a model defined with `kind: azureml`, steps pumped as the host would."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from urllib.parse import urlsplit

import requests

from retrain.context import Context
from retrain.http import RetryPolicy
from retrain.models import ModelDefinition
from retrain.runs import Run
from retrain.triggers import on_blob
from tests.azureml.conftest import TOKEN
from tests.chain.conftest import Pump

TRAIN = ("python train.py --data ${{inputs.data}} --label label --model ${{outputs.model}} "
         "$[[--baseline ${{inputs.baseline}}]]")
METRICS = {"auc": "AUC", "accuracy": "Accuracy"}


def azureml_training(azureml, command: str = TRAIN, code: str = "retrain-src") -> dict:
    """The `training` section of a definition against the local service (its URL before the ARM id)."""
    return {"kind": "azureml", "workspace": azureml.url + azureml.ws_path,
            "job": {"properties": {"jobType": "Command", "command": command, "experimentName": "chain",
                                   "codeId": f"azureml:{code}:1", "environmentId": "azureml:sklearn-env:1",
                                   "computeId": "azureml:cpu-cluster",
                                   "outputs": {"model": {"jobOutputType": "custom_model"}}}},
            "data_input": "data", "baseline_input": "baseline", "model_output": "model", "metrics": METRICS}


@dataclass
class AzureMLChain:
    """One test's tables, containers and queues; the shared Azurite and Azure ML service."""

    ctx: Context
    azureml: object
    pump: Pump
    model: str

    def register(self, policy: dict | None = None, **training) -> ModelDefinition:
        body = {"training": {**azureml_training(self.azureml), **training}, "endpoints": [],
                "policy": policy or {"rules": [{"metric": "AUC", "min": 0.6}]}}
        definition = ModelDefinition.from_json(self.model, body)
        self.ctx.models.put(definition)
        return definition

    def land(self, name: str, data: bytes) -> Run:
        from retrain.triggers import BlobEvent

        client = self.ctx.storage.blobs.get_blob_client(self.ctx.settings.training_container, f"{self.model}/{name}")
        client.upload_blob(data, overwrite=True)
        result = on_blob(self.ctx, BlobEvent.from_client(client))
        assert result is not None
        return result.run

    def run(self, run_id: str) -> Run:
        return self.ctx.runs.get(self.model, run_id)

    def jobs_of(self, run_id: str) -> list[dict]:
        """The workspace's jobs tagged with this run (what the service really holds)."""
        jobs = self.azureml.rest("GET", "/jobs").json()["value"]
        return [j for j in jobs if (j["properties"].get("tags") or {}).get("retrain.run") == run_id]

    def job_puts(self, name: str) -> int:
        log = requests.get(f"{self.azureml.url}/_admin/requests", verify=str(self.azureml.ca), timeout=10).json()["requests"]
        return sum(1 for e in log if e["method"] == "PUT" and e["path"].endswith(f"/jobs/{name}"))


def new_chain(azurite, azureml) -> AzureMLChain:
    suffix = uuid.uuid4().hex[:8]
    env = {"RETRAIN_STORAGE": azurite.connection_string, "RETRAIN_TABLE_PREFIX": f"a{suffix}",
           "TRAINING_CONTAINER": f"train-{suffix}", "OUTPUT_CONTAINER": f"out-{suffix}",
           "CHECK_INITIAL_DELAY_SECONDS": "0", "ARM_ACCESS_TOKEN": TOKEN,
           "ALLOWED_SERVICE_HOSTS": urlsplit(azureml.url).netloc}
    ctx = Context.from_env(env, retry=RetryPolicy(attempts=2, backoff=0.05, max_backoff=0.2, budget=2.0)).ensure()
    azureml.faults("DELETE")
    pump = Pump(ctx)
    pump.drain()
    return AzureMLChain(ctx, azureml, pump, f"m{suffix}")
