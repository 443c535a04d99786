"""The Functions host's rules for a binding's `connection` name, shared by the app and devhost.

For a connection named NAME the host looks up, in order: an exact setting `NAME` (a connection
string), then `AzureWebJobsNAME`; failing both, the identity-based collection `NAME__<key>` (or
`NAME:<key>`, the configuration-section spelling): `blobServiceUri` (or `serviceUri`),
`queueServiceUri`, `tableServiceUri`, `accountName`, `credential`, `clientId`. A value setting wins
over the collection.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from .errors import SettingsError

DEFAULT_CONNECTION = "AzureWebJobsStorage"
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


def is_development_storage(value: str) -> bool:
    return value.lower().replace(" ", "") == "usedevelopmentstorage=true"


@dataclass(frozen=True)
class Connection:
    """Where one connection setting points: a connection string, or service URIs plus an identity."""

    name: str  # the setting that was found (NAME or AzureWebJobsNAME), or NAME for a collection
    connection_string: str | None = None
    blob_uri: str | None = None
    queue_uri: str | None = None
    table_uri: str | None = None
    credential_kind: str | None = None  # "managedidentity" or None (DefaultAzureCredential)
    client_id: str | None = None

    @classmethod
    def from_env(cls, name: str, env: Mapping[str, str]) -> "Connection":
        """Resolve `name` for the app, which needs blobs, queues and tables from one connection."""
        found = resolve(name, env)
        if found.connection_string:
            value = found.full_connection_string
            parts = parse_connection_string(value)
            if ("AccountName" not in parts or "AccountKey" not in parts) and "SharedAccessSignature" not in parts:
                raise SettingsError(f"{found.name}: connection string needs AccountName and AccountKey")
            return cls(found.name, connection_string=value)
        missing = [f"{name}__{kind}ServiceUri" for kind, uri in
                   (("blob", found.blob_uri), ("queue", found.queue_uri), ("table", found.table_uri)) if not uri]
        if missing:
            raise SettingsError(f"Storage connection {name!r} is incomplete for this app: set {', '.join(missing)} "
                                f"(or {name}__accountName)")
        return found

    @property
    def account_key(self) -> tuple[str, str] | None:
        if not self.connection_string:
            return None
        parts = parse_connection_string(self.full_connection_string)
        if "AccountKey" in parts:
            return parts["AccountName"], parts["AccountKey"]
        return None

    @property
    def full_connection_string(self) -> str:
        """The connection string with `UseDevelopmentStorage=true` spelled out."""
        value = self.connection_string or ""
        return DEVELOPMENT_STORAGE if is_development_storage(value) else value

    def credential(self):
        """azure-identity credential for identity-based connections (needs HTTPS, so never against Azurite)."""
        from azure.identity import DefaultAzureCredential, ManagedIdentityCredential

        if self.credential_kind == "managedidentity":
            return ManagedIdentityCredential(client_id=self.client_id)
        return DefaultAzureCredential(managed_identity_client_id=self.client_id)


def resolve(name: str | None, env: Mapping[str, str]) -> Connection:
    """The connection `name` stands for, by the host's rules; SettingsError naming both forms if neither is set."""
    name = name or DEFAULT_CONNECTION
    for candidate in (name, f"AzureWebJobs{name}"):
        value = (env.get(candidate) or "").strip()
        if value:
            return Connection(candidate, connection_string=value)

    def prop(key: str) -> str | None:
        return ((env.get(f"{name}__{key}") or env.get(f"{name}:{key}") or "").strip()) or None

    account = prop("accountName")

    def uri(kind: str) -> str | None:
        explicit = prop(f"{kind}ServiceUri") or (prop("serviceUri") if kind == "blob" else None)
        return explicit or (f"https://{account}.{kind}.core.windows.net" if account else None)

    blob, queue, table = uri("blob"), uri("queue"), uri("table")
    if not (blob or queue or table):
        raise SettingsError(
            f"Storage connection {name!r} is not configured: set {name} to a connection string "
            f"(UseDevelopmentStorage=true for Azurite), or set {name}__accountName, or "
            f"{name}__blobServiceUri, {name}__queueServiceUri and {name}__tableServiceUri for an identity")
    return Connection(name, blob_uri=blob, queue_uri=queue, table_uri=table,
                      credential_kind=(prop("credential") or "").lower() or None, client_id=prop("clientId"))
