"""Helpers for devhost tests: the sample app's script root, unique storage names per test, waiting."""

from __future__ import annotations

import base64
import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from azure.storage.blob import BlobServiceClient
from azure.storage.queue import QueueClient

HERE = Path(__file__).parent
HOST_JSON = {"version": "2.0",
             "extensions": {"queues": {"maxDequeueCount": 3, "visibilityTimeout": "00:00:00",
                                       "maxPollingInterval": "00:00:02"}}}


def make_script_root(root: Path, host_json: dict | None = None) -> Path:
    """A script root like a real app's: host.json next to the app module."""
    root.mkdir(parents=True, exist_ok=True)
    shutil.copy(HERE / "sample_app.py", root / "sample_app.py")
    (root / "host.json").write_text(json.dumps(host_json or HOST_JSON))
    return root


def wait_for(condition: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> Any:
    """Poll until `condition()` is truthy; return its value."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


@dataclass
class Sample:
    """Unique queue/container names for one test, and the storage calls tests make around the host."""

    connection_string: str
    suffix: str

    @property
    def settings(self) -> dict[str, str]:
        s = self.suffix
        return {"AzureWebJobsStorage": self.connection_string, "SAMPLE_QUEUE": f"work-{s}",
                "SAMPLE_FAIL_QUEUE": f"fails-{s}", "SAMPLE_FORWARD_IN": f"fwd-{s}",
                "SAMPLE_CONTAINER": f"data-{s}", "SAMPLE_STREAM_CONTAINER": f"stream-{s}",
                "SAMPLE_RESULTS": f"results-{s}", "SAMPLE_SCHEDULE": "0 0 0 1 1 *"}

    def name(self, key: str) -> str:
        return self.settings[key]

    def queue(self, name: str) -> QueueClient:
        return QueueClient.from_connection_string(self.connection_string, name)

    def send(self, queue_key: str, text: str, base64_encode: bool = True) -> None:
        """Send as a producer would: base64 (the host's default messageEncoding) unless told otherwise."""
        q = self.queue(self.name(queue_key))
        try:
            q.create_queue()
        except Exception:
            pass
        q.send_message(base64.b64encode(text.encode()).decode() if base64_encode else text)

    def peek(self, queue_name: str) -> list[str]:
        try:
            return [m.content for m in self.queue(queue_name).peek_messages(max_messages=32)]
        except Exception:
            return []

    @property
    def blobs(self) -> BlobServiceClient:
        return BlobServiceClient.from_connection_string(self.connection_string)

    def upload(self, container_key: str, name: str, data: bytes) -> str:
        """Upload (overwrite) and return the new ETag."""
        container = self.blobs.get_container_client(self.name(container_key))
        if not container.exists():
            container.create_container()
        client = container.get_blob_client(name)
        return client.upload_blob(data, overwrite=True)["etag"]

    def results(self, kind: str) -> list[dict]:
        """Every record the sample app wrote for `kind`, in no particular order."""
        container = self.blobs.get_container_client(self.name("SAMPLE_RESULTS"))
        if not container.exists():
            return []
        items = list(container.list_blobs(name_starts_with=f"{kind}/"))
        return [json.loads(container.download_blob(b.name).readall()) for b in items]
