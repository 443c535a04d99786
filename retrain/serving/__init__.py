"""Serving targets: one module per kind of endpoint, and the loop that promotes, retries and rolls back through them."""

from __future__ import annotations

import re
from datetime import datetime

from retrain.artifacts import Artifact, AzureMLModel
from retrain.azureml.workspace import WorkspaceId

from .base import Progress, Release, ServingTarget  # noqa: F401
from .loop import Pass, advance, drive, reopen  # noqa: F401

_VERSION = re.compile(r"/models/([^/]+)/versions/([^/?]+)$")


def release(ctx, run_id: str, artifact: Artifact, *, expiry: datetime, record: dict | None = None) -> Release:
    """What a run's model is to an endpoint: a located blob (Studio classic) or an Azure ML job output / version."""
    if isinstance(artifact, AzureMLModel):
        model_id = None
        if artifact.registered:
            model_id = f"{WorkspaceId.parse(artifact.workspace).path}/models/{artifact.model_name}/versions/" \
                       f"{artifact.model_version}"
        return Release(run_id, job_output=artifact.uri, model_id=model_id, record=record or {})
    located = ctx.storage.located(artifact.container, artifact.blob_name, expiry=expiry)
    return Release(run_id, blob=located, record=record or {})


def served_artifact(artifact: Artifact, outcomes: dict[str, dict]) -> Artifact:
    """The champion to record: an Azure ML job output becomes the model version an endpoint registered for it."""
    if not isinstance(artifact, AzureMLModel) or artifact.registered:
        return artifact
    for outcome in outcomes.values():
        match = _VERSION.search(str(outcome.get("model_id") or ""))
        if outcome.get("ok") and match:
            return artifact.with_version(match.group(1), match.group(2))
    return artifact


def progress_reason(outcomes: dict[str, dict], done: Pass) -> str:
    """The run's reason while a rollout is under way: where each waiting endpoint is."""
    notes = [f"{name}: {outcomes[name].get('note') or outcomes[name].get('phase') or 'in progress'}"
             for name in done.waiting]
    return "rolling out: " + "; ".join(notes)
