"""Serving targets: one module per kind of endpoint, and the loop that promotes, retries and rolls back through them."""

from __future__ import annotations

from datetime import datetime

from .base import Progress, Release, ServingTarget  # noqa: F401
from .loop import Pass, advance, drive, reopen  # noqa: F401


def release(ctx, run_id: str, output: dict, *, expiry: datetime, record: dict | None = None) -> Release:
    """What a run's model output is to an endpoint: a located blob (Studio classic) or an Azure ML job output."""
    from retrain.locations import BlobLocation

    if output.get("job_output") or output.get("model_id"):
        return Release(run_id, job_output=output.get("job_output"), model_id=output.get("model_id"),
                       record=record or {})
    target = BlobLocation.from_record(output)
    located = ctx.storage.located(target.container, target.blob_name, expiry=expiry)
    return Release(run_id, blob=located, record=record or {})


def progress_reason(outcomes: dict[str, dict], done: Pass) -> str:
    """The run's reason while a rollout is under way: where each waiting endpoint is."""
    notes = [f"{name}: {outcomes[name].get('note') or outcomes[name].get('phase') or 'in progress'}"
             for name in done.waiting]
    return "rolling out: " + "; ".join(notes)
