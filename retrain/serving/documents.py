"""Deployment settings a rollout records, kept as blobs beside the run: a table property holds at most 64 KiB.

An Azure ML deployment's settings (1-2 KB, far more with many environment variables) are written here,
in OUTPUT_CONTAINER under `deployment-settings/<run>/<endpoint>/<what>.json`, before the run that names
them is saved; the run's endpoint record keeps only the blob's name, and a rollback reads them back to
re-create a deleted deployment.
"""

from __future__ import annotations

import json

from azure.core.exceptions import ResourceNotFoundError

PREFIX = "deployment-settings"


def document_name(run_id: str, endpoint: str, what: str) -> str:
    return f"{PREFIX}/{run_id}/{endpoint}/{what}.json"


class BlobDocuments:
    """JSON documents by name in one container; writing the same name again is harmless (at-least-once)."""

    def __init__(self, blobs, container: str):
        self.blobs, self.container = blobs, container

    def put(self, name: str, doc: dict) -> None:
        data = json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()
        self.blobs.get_blob_client(self.container, name).upload_blob(data, overwrite=True)

    def get(self, name: str) -> dict | None:
        try:
            return json.loads(self.blobs.get_blob_client(self.container, name).download_blob().readall())
        except ResourceNotFoundError:
            return None
