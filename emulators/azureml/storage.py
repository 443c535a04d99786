"""Datastore paths (`azureml://datastores/<ds>/paths/...`, `azureml://jobs/<job>/outputs/<name>`, SAS URLs) on blobs."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from azure.core.exceptions import AzureError, ResourceExistsError
from azure.storage.blob import BlobClient, BlobServiceClient, ContainerClient

from .errors import BadRequest, InputError, NotFound

_OPTIONS = {"retry_total": 2, "connection_timeout": 10, "read_timeout": 120}
DATASTORE_URI = re.compile(r"^azureml://(?:subscriptions/[^/]+/resourcegroups/[^/]+/workspaces/[^/]+/)?"
                           r"datastores/(?P<ds>[^/]+)/paths/(?P<path>.*)$", re.IGNORECASE)
JOB_OUTPUT_URI = re.compile(r"^azureml://jobs/(?P<job>[^/]+)/outputs/(?P<output>[^/]+)(?:/paths/(?P<path>.*))?/?$")


@dataclass(frozen=True)
class BlobPlace:
    """A blob or a folder (prefix) in a container, reached with the service's account or a SAS URL."""

    container: str
    path: str  # blob name or prefix, no leading "/"
    connection_string: str | None = None
    sas_url: str | None = None  # https://account/container/blob?sas

    def __repr__(self) -> str:  # keep SAS tokens out of logs
        return f"BlobPlace({self.container!r}, {self.path!r})"


def account_of(connection_string: str) -> tuple[str, str]:
    """(account name, blob endpoint) of a connection string."""
    service = BlobServiceClient.from_connection_string(connection_string)
    return service.account_name or "devstoreaccount1", service.url.split("?", 1)[0].rstrip("/")


def resolve_uri(ctx, w, uri: str) -> BlobPlace:
    """Where a data or model URI lives; BadRequest for unknown forms or datastores, NotFound for unknown jobs."""
    match = DATASTORE_URI.match(uri)
    if match:
        container = w.datastores.get(match.group("ds"))
        if container is None:
            raise BadRequest(f"The datastore '{match.group('ds')}' in '{uri}' does not exist in workspace "
                             f"'{w.name}'.", code="InvalidDatastore")
        return BlobPlace(container, unquote(match.group("path")).lstrip("/"), ctx.config.storage.connection_string)
    match = JOB_OUTPUT_URI.match(uri)
    if match:
        job = ctx.store.get("job", f"{w.arm_id}/{match.group('job')}")
        if job is None:
            raise NotFound(f"The job '{match.group('job')}' in '{uri}' does not exist.", code="JobNotFound")
        output = (job["properties"].get("outputs") or {}).get(match.group("output"))
        if not output or not output.get("uri"):
            raise BadRequest(f"The job '{match.group('job')}' has no output '{match.group('output')}'.",
                             code="InvalidJobOutput")
        place = resolve_uri(ctx, w, output["uri"])
        if match.group("path"):
            place = BlobPlace(place.container, place.path.rstrip("/") + "/" + match.group("path"),
                              place.connection_string)
        return place
    parts = urlsplit(uri)
    if parts.scheme in ("http", "https") and parts.netloc:
        try:
            client = BlobClient.from_blob_url(uri)
        except (ValueError, AzureError):
            raise BadRequest(f"'{uri.split('?', 1)[0]}' is not a blob URL.", code="InvalidUri") from None
        return BlobPlace(client.container_name, client.blob_name, sas_url=uri)
    raise BadRequest(f"'{uri.split('?', 1)[0]}' is not a supported data URI (azureml://datastores/<ds>/paths/..., "
                     "azureml://jobs/<job>/outputs/<name>, or an https blob URL with SAS).", code="InvalidUri")


def _container(place: BlobPlace) -> ContainerClient:
    if place.connection_string:
        return BlobServiceClient.from_connection_string(place.connection_string, **_OPTIONS) \
            .get_container_client(place.container)
    parts = urlsplit(place.sas_url or "")
    base = parts.path.split("/")
    container_path = "/".join(base[: base.index(place.container) + 1]) if place.container in base else ""
    return ContainerClient.from_container_url(f"{parts.scheme}://{parts.netloc}{container_path}?{parts.query}",
                                              **_OPTIONS)


def download(place: BlobPlace, dest: Path, *, folder: bool) -> Path:
    """A blob into `dest/<name>` (returns that file), or every blob under a prefix into `dest` (returns dest)."""
    dest.mkdir(parents=True, exist_ok=True)
    try:
        container = _container(place)
        if not folder:
            name = place.path.rsplit("/", 1)[-1] or "data"
            target = dest / name
            blob = BlobClient.from_blob_url(place.sas_url, **_OPTIONS) if place.sas_url and not \
                place.connection_string else container.get_blob_client(place.path)
            with target.open("wb") as out:
                blob.download_blob(max_concurrency=2).readinto(out)
            return target
        prefix = place.path.rstrip("/") + "/" if place.path.strip("/") else ""
        count = 0
        for item in container.list_blobs(name_starts_with=prefix):
            relative = item.name[len(prefix):]
            if not relative or relative.endswith("/") or ".." in relative.split("/"):
                continue
            target = dest / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            with target.open("wb") as out:
                container.get_blob_client(item.name).download_blob().readinto(out)
            count += 1
        if count == 0:
            raise InputError(f"no blobs under '{place.container}/{prefix}'")
        return dest
    except InputError:
        raise
    except AzureError as e:
        status = getattr(e, "status_code", None)
        what = "does not exist" if status == 404 else f"cannot be read (HTTP {status or type(e).__name__})"
        raise InputError(f"'{place.container}/{place.path}' {what}") from None


def upload_folder(folder: Path, place: BlobPlace) -> int:
    """Every file under `folder` to `place.path/<relative>`; the number of blobs written."""
    container = _container(place)
    try:
        container.create_container()
    except ResourceExistsError:
        pass
    count = 0
    for root, _, files in os.walk(folder):
        for name in files:
            path = Path(root) / name
            blob = place.path.rstrip("/") + "/" + path.relative_to(folder).as_posix()
            with path.open("rb") as data:
                container.upload_blob(blob, data, overwrite=True, max_concurrency=2)
            count += 1
    return count
