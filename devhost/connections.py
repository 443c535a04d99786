"""Storage clients for a binding's `connection`, resolved by the host's rules (connection string or identity prefix)."""

from __future__ import annotations

import os
import threading
from dataclasses import fields
from typing import Mapping

from azure.storage.blob import BlobServiceClient
from azure.storage.queue import QueueServiceClient

from retrain.connections import DEFAULT_CONNECTION, Connection, resolve
from retrain.errors import SettingsError

from .errors import StorageConnectionError

__all__ = ["DEFAULT_CONNECTION", "StorageClients", "StorageConnection"]


class StorageConnection(Connection):
    """The app's connection (retrain.connections): devhost resolves bindings by the very same rules."""

    @classmethod
    def resolve(cls, name: str | None, environ: Mapping[str, str] | None = None) -> "StorageConnection":
        """An exact `<NAME>` (or `AzureWebJobs<NAME>`) setting wins; else `<NAME>__blobServiceUri` and friends."""
        try:
            found = resolve(name, os.environ if environ is None else environ)
        except SettingsError as e:
            raise StorageConnectionError(str(e)) from None
        return cls(**{f.name: getattr(found, f.name) for f in fields(Connection)})


class StorageClients:
    """One BlobServiceClient / QueueServiceClient per connection name for the host's lifetime (SDK clients are reusable)."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self._environ = environ
        self._lock = threading.Lock()
        self._blob: dict[str, BlobServiceClient] = {}
        self._queue: dict[str, QueueServiceClient] = {}

    def connection(self, name: str | None) -> StorageConnection:
        return StorageConnection.resolve(name, self._environ)

    def blob_service(self, name: str | None) -> BlobServiceClient:
        conn = self.connection(name)
        with self._lock:
            if conn.name not in self._blob:
                if conn.connection_string:
                    self._blob[conn.name] = BlobServiceClient.from_connection_string(conn.connection_string)
                elif conn.blob_uri:
                    self._blob[conn.name] = BlobServiceClient(conn.blob_uri, credential=conn.credential())
                else:
                    raise StorageConnectionError(f"storage connection {conn.name!r}: no blob service URI "
                                                 f"(set {conn.name}__blobServiceUri)")
            return self._blob[conn.name]

    def queue_service(self, name: str | None) -> QueueServiceClient:
        conn = self.connection(name)
        with self._lock:
            if conn.name not in self._queue:
                if conn.connection_string:
                    self._queue[conn.name] = QueueServiceClient.from_connection_string(conn.connection_string)
                elif conn.queue_uri:
                    self._queue[conn.name] = QueueServiceClient(conn.queue_uri, credential=conn.credential())
                else:
                    raise StorageConnectionError(f"storage connection {conn.name!r}: no queue service URI "
                                                 f"(set {conn.name}__queueServiceUri)")
            return self._queue[conn.name]

    def close(self) -> None:
        """Close the transports (each holds a connection pool)."""
        with self._lock:
            for client in [*self._blob.values(), *self._queue.values()]:
                try:
                    client.close()
                except Exception:
                    pass
            self._blob.clear()
            self._queue.clear()
