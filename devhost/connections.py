"""Storage clients for a binding's `connection`, resolved by the host's rules (connection string or identity prefix)."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from typing import Any, Mapping

from azure.storage.blob import BlobServiceClient
from azure.storage.queue import QueueServiceClient

from .errors import StorageConnectionError

DEFAULT_CONNECTION = "AzureWebJobsStorage"


@dataclass(frozen=True)
class StorageConnection:
    """Where one connection setting points: a connection string, or service URIs plus an identity."""

    name: str
    connection_string: str | None = None
    blob_uri: str | None = None
    queue_uri: str | None = None
    credential_kind: str | None = None   # "managedidentity" or None (DefaultAzureCredential)
    client_id: str | None = None

    @classmethod
    def resolve(cls, name: str | None, environ: Mapping[str, str] | None = None) -> "StorageConnection":
        """An exact `<NAME>` (or `AzureWebJobs<NAME>`) setting wins; else `<NAME>__blobServiceUri` and friends."""
        env = os.environ if environ is None else environ
        name = name or DEFAULT_CONNECTION
        for candidate in (name, f"AzureWebJobs{name}"):
            value = env.get(candidate)
            if value:
                return cls(name=candidate, connection_string=value)

        def prop(key: str) -> str | None:
            return env.get(f"{name}__{key}") or env.get(f"{name}:{key}")

        account = prop("accountName")
        blob = prop("blobServiceUri") or prop("serviceUri") or (account and f"https://{account}.blob.core.windows.net")
        queue = prop("queueServiceUri") or (account and f"https://{account}.queue.core.windows.net")
        if not (blob or queue):
            raise StorageConnectionError(
                f"storage connection {name!r}: set app setting {name!r} to a connection string "
                f"(locally: \"UseDevelopmentStorage=true\" or Azurite's full connection string), or set "
                f"{name}__blobServiceUri / {name}__queueServiceUri for an identity-based connection")
        return cls(name=name, blob_uri=blob, queue_uri=queue,
                   credential_kind=(prop("credential") or "").lower() or None, client_id=prop("clientId"))

    def credential(self) -> Any:
        """azure-identity credential for identity-based connections (needs HTTPS, so never against Azurite)."""
        from azure.identity import DefaultAzureCredential, ManagedIdentityCredential
        if self.credential_kind == "managedidentity":
            return ManagedIdentityCredential(client_id=self.client_id) if self.client_id else ManagedIdentityCredential()
        return DefaultAzureCredential(managed_identity_client_id=self.client_id) if self.client_id else DefaultAzureCredential()


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
