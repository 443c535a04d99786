"""One rollback of a model at a time, across instances: a blob lease, the storage account's own mutex."""

from __future__ import annotations

import contextlib
import threading
from typing import Iterator

from azure.core.exceptions import HttpResponseError, ResourceExistsError

from .context import Context
from .errors import Conflict

LOCK_PREFIX = "_locks"  # in OUTPUT_CONTAINER, never the watched one
LEASE_SECONDS = 60  # a holder that crashed frees the lock within a minute
RENEW_EVERY = 15.0


@contextlib.contextmanager
def holding(ctx: Context, model: str, what: str) -> Iterator[None]:
    """Hold the model's `what` lock for the block (renewed while held); Conflict at once if someone holds it."""
    blob = ctx.storage.blobs.get_blob_client(ctx.settings.output_container, f"{LOCK_PREFIX}/{model}/{what}")
    with contextlib.suppress(ResourceExistsError):
        blob.upload_blob(b"", overwrite=False)
    try:
        lease = blob.acquire_lease(lease_duration=LEASE_SECONDS)
    except HttpResponseError as e:
        if e.status_code == 409:
            raise Conflict(f"another {what} of model {model!r} is in progress; look at the model again "
                           "when it has ended") from None
        raise
    done = threading.Event()

    def renew() -> None:
        while not done.wait(RENEW_EVERY):
            with contextlib.suppress(HttpResponseError):
                lease.renew()

    renewer = threading.Thread(target=renew, name=f"lock-{model}-{what}", daemon=True)
    renewer.start()
    try:
        yield
    finally:
        done.set()
        renewer.join()
        with contextlib.suppress(HttpResponseError):
            lease.release()
