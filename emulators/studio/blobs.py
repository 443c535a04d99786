"""Blob references as BES speaks them (connection string or SAS), and reading/writing through them."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any
from datetime import datetime, timedelta, timezone
from urllib.parse import quote, unquote, urlsplit

from azure.core.exceptions import AzureError, HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.storage.blob import (BlobClient, BlobSasPermissions, BlobServiceClient, ContentSettings,
                                generate_blob_sas)

from .errors import BadArgument, BlobError

_CLIENT_OPTIONS = {"retry_total": 2, "connection_timeout": 10, "read_timeout": 60}


@dataclass(frozen=True)
class BlobRef:
    """One blob: `BaseLocation + RelativeLocation`, reached with a connection string or a SAS token."""

    base_location: str  # "http://127.0.0.1:10000/devstoreaccount1/" (ends with "/")
    relative_location: str  # "container/path/blob.csv" (no leading "/"), decoded: the blob's own name
    connection_string: str | None = None
    sas_token: str = ""  # "?sv=..." or ""

    @property
    def uri(self) -> str:
        """The address without credentials (URL-encoded): safe to store and show."""
        return self.base_location + quote(self.relative_location, safe="/")

    @property
    def url(self) -> str:
        return self.uri + self.sas_token

    @property
    def container(self) -> str:
        return self.relative_location.split("/", 1)[0]

    @property
    def blob_name(self) -> str:
        return self.relative_location.split("/", 1)[1] if "/" in self.relative_location else ""

    @property
    def extension(self) -> str:
        """Lower-case extension without the dot ("" when the name has none)."""
        name = self.relative_location.rsplit("/", 1)[-1]
        return name.rsplit(".", 1)[1].lower() if "." in name else ""

    def redacted(self) -> "BlobRef":
        return replace(self, connection_string=None, sas_token="")

    def __repr__(self) -> str:  # keep credentials out of logs and tracebacks
        return f"BlobRef({self.uri!r})"

    __str__ = __repr__

    # --- construction --------------------------------------------------------------------

    @classmethod
    def in_account(cls, connection_string: str, relative_location: str) -> "BlobRef":
        """A blob in the account a connection string opens; raises ValueError if the string is unusable."""
        try:
            service = BlobServiceClient.from_connection_string(connection_string)
        except (ValueError, AzureError) as e:
            raise ValueError(f"the connection string cannot be used: {e}") from None
        base = service.url if service.url.endswith("/") else service.url + "/"
        base = base.split("?", 1)[0]
        return cls(base, _clean(relative_location), connection_string=connection_string)

    @classmethod
    def from_sas_parts(cls, base_location: str, relative_location: str, sas_token: str) -> "BlobRef":
        base = base_location if base_location.endswith("/") else base_location + "/"
        token = sas_token or ""
        if token and not token.startswith("?"):
            token = "?" + token
        # Base + Relative + SAS is a URL, so the relative part arrives URL-encoded ("a%20b.csv").
        return cls(base, unquote(_clean(relative_location)), sas_token=token)

    @classmethod
    def from_url(cls, url: str) -> "BlobRef":
        """A blob URL (with its SAS query, if any); Azurite's path-style account is kept in the base."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"not a blob URL: {url.split('?', 1)[0]!r}")
        try:
            client = BlobClient.from_blob_url(url)
        except (ValueError, AzureError) as e:
            raise ValueError(f"not a blob URL: {url.split('?', 1)[0]!r} ({e})") from None
        path = unquote(parts.path).lstrip("/")
        relative = f"{client.container_name}/{client.blob_name}"
        prefix = path[: len(path) - len(relative)] if path.endswith(relative) else ""
        base = f"{parts.scheme}://{parts.netloc}/{prefix}"
        return cls(base, relative, sas_token=("?" + parts.query) if parts.query else "")

    # --- I/O ------------------------------------------------------------------------------

    def client(self) -> BlobClient:
        if self.connection_string:
            service = BlobServiceClient.from_connection_string(self.connection_string, **_CLIENT_OPTIONS)
            return service.get_blob_client(self.container, self.blob_name)
        return BlobClient.from_blob_url(self.url, **_CLIENT_OPTIONS)

    def read(self) -> bytes:
        try:
            return self.client().download_blob().readall()
        except ResourceNotFoundError:
            raise BlobError(f"The blob '{self.uri}' does not exist.", missing=True) from None
        except HttpResponseError as e:
            raise BlobError(f"The blob '{self.uri}' cannot be read: {_reason(e)}") from None
        except (AzureError, ValueError) as e:
            raise BlobError(f"The blob '{self.uri}' cannot be read: {e.__class__.__name__}") from None

    def exists(self) -> bool:
        """True if the blob is there; BlobError if the answer is neither yes nor no (denied, unreachable)."""
        try:
            self.client().get_blob_properties()
            return True
        except ResourceNotFoundError:
            return False
        except HttpResponseError as e:
            raise BlobError(f"The blob '{self.uri}' cannot be read: {_reason(e)}") from None
        except (AzureError, ValueError) as e:
            raise BlobError(f"The blob '{self.uri}' cannot be reached: {e.__class__.__name__}") from None

    def write(self, data: bytes, content_type: str = "application/octet-stream") -> None:
        """Overwrite the blob; with a connection string the container is created if missing."""
        client = self.client()
        try:
            if self.connection_string:
                try:
                    BlobServiceClient.from_connection_string(self.connection_string, **_CLIENT_OPTIONS) \
                        .get_container_client(self.container).create_container()
                except ResourceExistsError:
                    pass
            client.upload_blob(data, overwrite=True, content_settings=ContentSettings(content_type=content_type))
        except HttpResponseError as e:
            raise BlobError(f"The blob '{self.uri}' cannot be written: {_reason(e)}") from None
        except (AzureError, ValueError) as e:
            raise BlobError(f"The blob '{self.uri}' cannot be written: {e.__class__.__name__}") from None

    def read_sas(self, minutes: int) -> str:
        """A read-only SAS for this blob (minted when the account key is known, else the caller's own token)."""
        if not self.connection_string:
            return self.sas_token
        service = BlobServiceClient.from_connection_string(self.connection_string)
        key = getattr(service.credential, "account_key", None)
        if not key:
            return self.sas_token
        now = datetime.now(timezone.utc)
        token = generate_blob_sas(service.account_name, self.container, self.blob_name, account_key=key,
                                  permission=BlobSasPermissions(read=True),
                                  start=now - timedelta(minutes=5), expiry=now + timedelta(minutes=minutes))
        return "?" + token

    def to_result(self, minutes: int) -> dict:
        """The read-only reference BES returns in a finished job's `Results`."""
        return {"ConnectionString": None, "RelativeLocation": quote(self.relative_location, safe="/"),
                "BaseLocation": self.base_location, "SasBlobToken": self.read_sas(minutes)}


def _clean(relative_location: str) -> str:
    return (relative_location or "").strip().lstrip("/")


def _reason(e: HttpResponseError) -> str:
    code = getattr(e, "error_code", None) or ""
    status = getattr(e, "status_code", None)
    return f"HTTP {status} {code}".strip()


def parse_reference(raw: Any, what: str) -> BlobRef:
    """`{ConnectionString, RelativeLocation}` or `{BaseLocation, RelativeLocation, SasBlobToken}`."""
    if not isinstance(raw, dict):
        raise BadArgument("RequestBodyInvalid", f"The blob reference for {what} must be a JSON object.")
    relative = raw.get("RelativeLocation")
    if not relative or not isinstance(relative, str) or "/" not in relative.strip("/"):
        raise BadArgument("InvalidBlobReference",
                          f"The blob reference for {what} needs RelativeLocation 'container/blob'.")
    if raw.get("ConnectionString"):
        try:
            return BlobRef.in_account(raw["ConnectionString"], relative)
        except ValueError as e:
            raise BadArgument("InvalidBlobReference", f"The blob reference for {what}: {e}.") from None
    if raw.get("BaseLocation"):
        base = raw["BaseLocation"]
        if not isinstance(base, str) or not base.lower().startswith(("http://", "https://")):
            raise BadArgument("InvalidBlobReference", f"The BaseLocation for {what} must be an http(s) URL.")
        return BlobRef.from_sas_parts(base, relative, raw.get("SasBlobToken") or "")
    raise BadArgument("InvalidBlobReference",
                      f"The blob reference for {what} needs ConnectionString, or BaseLocation and SasBlobToken.")
