"""SDK clients for one storage connection (resolved by `retrain.connections`), and SAS for single blobs."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone
from typing import Callable
from urllib.parse import quote

from azure.core.pipeline.transport import HttpTransport
from azure.data.tables import TableServiceClient
from azure.storage.blob import (BlobSasPermissions, BlobServiceClient, UserDelegationKey,
                                generate_blob_sas)
from azure.storage.queue import (QueueClient, QueueServiceClient, TextBase64DecodePolicy,
                                 TextBase64EncodePolicy)

from .connections import DEVELOPMENT_STORAGE, Connection, parse_connection_string  # noqa: F401 (re-exported)
from .locations import BlobLocation


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
