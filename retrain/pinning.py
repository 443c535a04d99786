"""The data a run trains on is the data it records: pin the blob version at submit, let it go when the run ends.

A blob snapshot is taken with `If-Match` on the run's ETag, so the snapshot is exactly the version the run
was made for; the training job gets a read SAS to that snapshot only. An overwrite during training is
new data with its own run. While a snapshot exists, deleting the base blob needs `delete_snapshots`
(Azure's rule); the snapshot is deleted as soon as its run ends.
"""

from __future__ import annotations

import logging
from dataclasses import replace

from azure.core import MatchConditions
from azure.core.exceptions import HttpResponseError, ResourceModifiedError, ResourceNotFoundError

from .context import Context
from .errors import ConcurrentUpdate, DataNotFound, InvalidDataRef, TransientServiceError
from .runs import Run

log = logging.getLogger("retrain")


class DataOverwritten(InvalidDataRef):
    """The blob no longer has the version the run was made for (the new version has its own run)."""


def pin(ctx: Context, run: Run) -> Run:
    """The run with its data pinned to a snapshot (taken once, saved); DataNotFound / DataOverwritten if gone."""
    if run.data.snapshot:
        return run
    blob = ctx.storage.blobs.get_blob_client(run.data.container, run.data.name)
    try:
        snapshot = blob.create_snapshot(etag=run.data.etag, match_condition=MatchConditions.IfNotModified)
    except ResourceNotFoundError:
        raise DataNotFound(f"the training blob {run.data.path} was deleted before training") from None
    except ResourceModifiedError:
        raise DataOverwritten(f"the training blob {run.data.path} was overwritten before training; the new "
                              "version has its own run") from None
    except HttpResponseError as e:
        raise TransientServiceError(f"could not pin {run.data.path}: {e.reason or e.status_code}",
                                    status=e.status_code) from None
    try:
        return ctx.runs.save(replace(run, data=replace(run.data, snapshot=snapshot["snapshot"])))
    except ConcurrentUpdate:
        _delete(ctx, run.data.container, run.data.name, snapshot["snapshot"])
        raise


def unpin(ctx: Context, run: Run) -> None:
    """Best effort: delete the run's snapshot (a leftover costs storage, never correctness)."""
    if run.data.snapshot:
        _delete(ctx, run.data.container, run.data.name, run.data.snapshot)


def _delete(ctx: Context, container: str, name: str, snapshot: str) -> None:
    try:
        ctx.storage.blobs.get_blob_client(container, name, snapshot=snapshot).delete_blob()
    except ResourceNotFoundError:
        pass
    except HttpResponseError as e:
        log.warning("could not delete snapshot %s of %s/%s: %s", snapshot, container, name, e.reason)
