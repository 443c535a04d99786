"""One storage connection setting, resolved the way the Functions host resolves it, for blobs, queues and tables."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Callable, Mapping
from urllib.parse import quote

from azure.core.credentials import TokenCredential
from azure.core.pipeline.transport import HttpTransport
from azure.data.tables import TableServiceClient
from azure.storage.blob import (BlobSasPermissions, BlobServiceClient, UserDelegationKey,
                                generate_blob_sas)
from azure.storage.queue import (QueueClient, QueueServiceClient, TextBase64DecodePolicy,
                                 TextBase64EncodePolicy)

from .errors import SettingsError
from .locations import BlobLocation

# Azurite's documented development account; `UseDevelopmentStorage=true` stands for it.
_DEV_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
DEVELOPMENT_STORAGE = (
    "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=" + _DEV_KEY + ";"
    "BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;"
    "QueueEndpoint=http://127.0.0.1:10001/devstoreaccount1;"
    "TableEndpoint=http://127.0.0.1:10002/devstoreaccount1;"
)


def parse_connection_string(value: str) -> dict[str, str]:
    """`Key=Value;...` into a dict (values may contain `=`, as account keys do)."""
    parts = {}
    for item in value.split(";"):
        if item.strip():
            key, sep, val = item.partition("=")
            if not sep:
                raise SettingsError("storage connection string is malformed (expected Key=Value pairs)")
            parts[key.strip()] = val.strip()
    return parts


@dataclass(frozen=True)
class Connection:
    """Either a connection string or identity-based service URIs (`<NAME>__blobServiceUri`, ...)."""

    name: str
    connection_string: str | None = None
    blob_uri: str | None = None
    queue_uri: str | None = None
    table_uri: str | None = None
    credential_kind: str | None = None  # "managedidentity" or None (DefaultAzureCredential)
    client_id: str | None = None

    @classmethod
    def from_env(cls, name: str, env: Mapping[str, str]) -> "Connection":
        value = env.get(name, "").strip()
        if value:  # an exact setting wins over the identity prefix, as in the host
            if value.lower().replace(" ", "") == "usedevelopmentstorage=true":
                value = DEVELOPMENT_STORAGE
            parts = parse_connection_string(value)
            if "AccountName" not in parts or "AccountKey" not in parts:
                if "SharedAccessSignature" not in parts:
                    raise SettingsError(f"{name}: connection string needs AccountName and AccountKey")
            return cls(name, connection_string=value)
        prefix = name + "__"
        account = env.get(prefix + "accountName", "").strip()

        def uri(kind: str, service: str) -> str | None:
            explicit = env.get(f"{prefix}{kind}ServiceUri", "").strip()
            if kind == "blob":
                explicit = explicit or env.get(prefix + "serviceUri", "").strip()
            return explicit or (f"https://{account}.{service}.core.windows.net" if account else None)

        blob, queue, table = uri("blob", "blob"), uri("queue", "queue"), uri("table", "table")
        if not (blob and queue and table):
            raise SettingsError(
                f"Storage connection {name!r} is not configured: set {name} to a connection string "
                f"(UseDevelopmentStorage=true for Azurite), or set {prefix}accountName, or all of "
                f"{prefix}blobServiceUri, {prefix}queueServiceUri and {prefix}tableServiceUri for managed identity")
        return cls(name, blob_uri=blob, queue_uri=queue, table_uri=table,
                   credential_kind=(env.get(prefix + "credential", "").strip().lower() or None),
                   client_id=env.get(prefix + "clientId", "").strip() or None)

    @property
    def account_key(self) -> tuple[str, str] | None:
        if not self.connection_string:
            return None
        parts = parse_connection_string(self.connection_string)
        if "AccountKey" in parts:
            return parts["AccountName"], parts["AccountKey"]
        return None

    def credential(self) -> TokenCredential:
        from azure.identity import DefaultAzureCredential, ManagedIdentityCredential

        if self.credential_kind == "managedidentity":
            return ManagedIdentityCredential(client_id=self.client_id)
        return DefaultAzureCredential(managed_identity_client_id=self.client_id)


class Storage:
    """SDK clients for one connection, created once and shared (they pool connections)."""

    def __init__(self, connection: Connection, *, transport: Callable[[], HttpTransport] | None = None):
        """`transport` makes one HTTP transport per service client (a benchmark counts requests there)."""
        self.connection = connection

        def kw() -> dict:
            return {"transport": transport()} if transport else {}

        if connection.connection_string:
            cs = connection.connection_string
            self.blobs = BlobServiceClient.from_connection_string(cs, **kw())
            self.queues = QueueServiceClient.from_connection_string(cs, **kw())
            self.tables = TableServiceClient.from_connection_string(cs, **kw())
        else:
            credential = connection.credential()
            self.blobs = BlobServiceClient(connection.blob_uri, credential=credential, **kw())
            self.queues = QueueServiceClient(connection.queue_uri, credential=credential, **kw())
            self.tables = TableServiceClient(connection.table_uri, credential=credential, **kw())
        self._delegation: tuple[UserDelegationKey, datetime] | None = None
        self._lock = threading.Lock()

    def queue(self, name: str) -> QueueClient:
        """A queue client that speaks base64, as the Functions host expects by default."""
        return self.queues.get_queue_client(
            name, message_encode_policy=TextBase64EncodePolicy(),
            message_decode_policy=TextBase64DecodePolicy())

    @property
    def blob_base(self) -> str:
        """`BaseLocation` for blobs of this account (ends with "/")."""
        url = self.blobs.url
        return url if url.endswith("/") else url + "/"

    def location(self, container: str, blob: str) -> BlobLocation:
        return BlobLocation.of_blob(self.blob_base, container, blob)

    def sas(self, container: str, blob: str, *, expiry: datetime, write: bool = False, snapshot: str = "") -> str:
        """A SAS for one blob or snapshot: read-only, or create+write (no read) for a job output; never stored."""
        permission = BlobSasPermissions(read=not write, create=write, write=write)
        start = datetime.now(timezone.utc) - timedelta(minutes=5)  # clock skew
        key = self.connection.account_key
        if key:
            token = generate_blob_sas(key[0], container, blob, snapshot=snapshot or None, account_key=key[1],
                                      permission=permission, expiry=expiry, start=start)
        else:
            token = generate_blob_sas(self.blobs.account_name, container, blob, snapshot=snapshot or None,
                                      user_delegation_key=self._delegation_key(expiry),
                                      permission=permission, expiry=expiry, start=start)
        return "?" + (f"snapshot={quote(snapshot)}&" if snapshot else "") + token

    def located(self, container: str, blob: str, *, expiry: datetime, write: bool = False,
                snapshot: str = "") -> BlobLocation:
        """The blob's URL with its SAS; with `snapshot`, the URL of that pinned version only."""
        sas = self.sas(container, blob, expiry=expiry, write=write, snapshot=snapshot)
        return self.location(container, blob).with_sas(sas)

    def _delegation_key(self, expiry: datetime) -> UserDelegationKey:
        """Identity-based SAS: one user delegation key (max 7 days) reused while it outlives the SAS."""
        with self._lock:
            if self._delegation and self._delegation[1] >= expiry:
                return self._delegation[0]
            now = datetime.now(timezone.utc)
            key_expiry = min(now + timedelta(days=7), max(expiry, now + timedelta(days=1)))
            key = self.blobs.get_user_delegation_key(now - timedelta(minutes=5), key_expiry)
            self._delegation = (key, key_expiry)
            return key
