"""Blob triggers: scan the container, fire once per blob ETag, keep receipts in azure-webjobs-hosts, poison after retries."""

from __future__ import annotations

import base64
import json
import logging
import re
import threading
import time
from dataclasses import dataclass
from typing import Any

from azure.core.exceptions import AzureError, ResourceExistsError, ResourceNotFoundError
from azure.functions.blob import InputStream
from azure.storage.blob import BlobClient, BlobProperties, ContainerClient

from .annotations import blob_kind
from .app import FunctionSpec
from .connections import DEFAULT_CONNECTION, StorageClients
from .errors import BindingError
from .hostconfig import QueueOptions
from .invoker import InvocationResult, Invoker, WorkerPool
from .polling import Backoff, Poller
from .settings import resolve

log = logging.getLogger("devhost")

HOSTS_CONTAINER = "azure-webjobs-hosts"
RECEIPTS_DIR = "blobreceipts"
POISON_QUEUE = "webjobs-blobtrigger-poison"
_CONTAINER_NAME = re.compile(r"^(?!.*--)[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")
_PARAM = re.compile(r"\{([^{}]+)\}")


@dataclass(frozen=True)
class BlobPath:
    """A trigger path `container/pattern`; `{x}` in the pattern matches any text, slashes included."""

    container: str
    pattern: str
    regex: re.Pattern[str]

    @property
    def prefix(self) -> str:
        """The literal start of the blob name, to list only candidates."""
        return self.pattern.split("{", 1)[0]

    def matches(self, blob_name: str) -> bool:
        return self.regex.match(blob_name) is not None

    @classmethod
    def parse(cls, path: str, where: str) -> "BlobPath":
        container, _, pattern = path.strip("/").partition("/")
        if not _CONTAINER_NAME.match(container):
            raise BindingError(f"{where}: {container!r} in path {path!r} is not a valid container name "
                               "(3-63 lowercase letters, digits, single hyphens; not a {parameter})")
        names = _PARAM.findall(pattern)
        if len(set(names)) != len(names):
            raise BindingError(f"{where}: path {path!r} repeats a parameter name")
        regex, pos = "^", 0
        for m in _PARAM.finditer(pattern):
            regex += re.escape(pattern[pos:m.start()]) + r"(.+?)"
            pos = m.end()
        regex += re.escape(pattern[pos:]) + ("$" if pattern else "")
        if not pattern:
            regex = r"^(.+)$"
        return cls(container=container, pattern=pattern, regex=re.compile(regex, re.S))


@dataclass(frozen=True)
class BlobTrigger:
    """A blob trigger with its path resolved and its parameter type known."""

    spec: FunctionSpec
    path: BlobPath
    connection: str | None
    kind: str
    source: str | None

    @classmethod
    def of(cls, spec: FunctionSpec) -> "BlobTrigger":
        where = f"function {spec.name!r} blob trigger"
        path = BlobPath.parse(resolve(spec.trigger["path"], where), where)
        return cls(spec=spec, path=path, connection=spec.trigger.get("connection"), kind=blob_kind(spec),
                   source=spec.trigger.get("source"))

    def argument(self, client: BlobClient, container: ContainerClient) -> Any:
        """What the parameter receives: an SDK client (nothing downloaded) or the whole blob, as the worker does."""
        if self.kind == "client":
            return client
        if self.kind == "container":
            return container
        if self.kind == "downloader":
            return client.download_blob()
        data = client.download_blob().readall()
        if self.kind == "bytes":
            return data
        if self.kind == "str":
            return data.decode("utf-8")
        return InputStream(data=data, name=f"{self.path.container}/{client.blob_name}", uri=client.url,
                           length=len(data))


def normalize_etag(etag: str | None) -> str:
    """Azure quotes ETags and Azurite does not; receipts use the bare value."""
    return (etag or "").strip('"')


@dataclass
class Receipts:
    """Blob receipts where the host keeps them: `blobreceipts/<hostId>/<functionId>/<etag>/<container>/<blob>`."""

    hosts: ContainerClient
    host_id: str
    function_id: str

    @property
    def prefix(self) -> str:
        return f"{RECEIPTS_DIR}/{self.host_id}/{self.function_id}/"

    def name(self, etag: str, container: str, blob: str) -> str:
        return f"{self.prefix}{etag}/{container}/{blob}"

    def load(self, container: str) -> set[tuple[str, str]]:
        """Every (blob name, etag) already handled for this function and container."""
        done: set[tuple[str, str]] = set()
        try:
            for item in self.hosts.list_blobs(name_starts_with=self.prefix, include=["metadata"]):
                etag, _, rest = item.name[len(self.prefix):].partition("/")
                receipt_container, _, blob = rest.partition("/")
                if receipt_container == container and (item.metadata or {}).get("Incomplete") != "true":
                    done.add((blob, etag))
        except ResourceNotFoundError:
            pass
        return done

    def exists(self, etag: str, container: str, blob: str) -> bool:
        try:
            props = self.hosts.get_blob_client(self.name(etag, container, blob)).get_blob_properties()
        except ResourceNotFoundError:
            return False
        return (props.metadata or {}).get("Incomplete") != "true"

    def write(self, etag: str, container: str, blob: str, outcome: str) -> None:
        client = self.hosts.get_blob_client(self.name(etag, container, blob))
        metadata = {"Incomplete": "false", "Outcome": outcome}
        try:
            client.upload_blob(b"", overwrite=True, metadata=metadata)
        except ResourceNotFoundError:
            try:
                self.hosts.create_container()
            except ResourceExistsError:
                pass
            client.upload_blob(b"", overwrite=True, metadata=metadata)


@dataclass
class _Failure:
    attempts: int
    retry_at: float


class BlobListener:
    """Scans one container for one function; each blob version (ETag) is handled once, retried, then poisoned."""

    def __init__(self, trigger: BlobTrigger, clients: StorageClients, options: QueueOptions, invoker: Invoker,
                 pool: WorkerPool, poller: Poller, backoff: Backoff, host_id: str) -> None:
        self.trigger = trigger
        self.options = options
        self.invoker = invoker
        self.pool = pool
        self.poller = poller
        self.backoff = backoff
        self.container = clients.blob_service(trigger.connection).get_container_client(trigger.path.container)
        host_conn = DEFAULT_CONNECTION if _resolvable(clients, DEFAULT_CONNECTION) else trigger.connection
        self.receipts = Receipts(clients.blob_service(host_conn).get_container_client(HOSTS_CONTAINER),
                                 host_id=host_id, function_id=self.function_id)
        self.poison = clients.queue_service(host_conn).get_queue_client(POISON_QUEUE)
        self._lock = threading.Lock()
        self._done: set[tuple[str, str]] = set()
        self._running: set[str] = set()
        self._failures: dict[tuple[str, str], _Failure] = {}
        self._thread: threading.Thread | None = None
        self._last_error_log = 0.0
        self.last_clean_scan: float = float("-inf")   # monotonic start of the last scan that found nothing to do

    @property
    def name(self) -> str:
        return self.trigger.spec.name

    @property
    def function_id(self) -> str:
        return f"Host.Functions.{self.trigger.spec.name}"

    @property
    def in_flight(self) -> int:
        with self._lock:
            return len(self._running)

    def start(self) -> None:
        if self.trigger.source == "EventGrid":
            log.info("function %s: blob trigger source is EventGrid; devhost polls container %s instead "
                     "(the real host would be driven by Event Grid blob-created events)", self.name,
                     self.trigger.path.container)
        self._done = self.receipts.load(self.trigger.path.container)
        self._thread = threading.Thread(target=self._run, name=f"devhost-blob-{self.name}", daemon=True)
        self._thread.start()

    def join(self, timeout: float | None = None) -> None:
        if self._thread:
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self.poller.stop.is_set() and not self.poller.exit.is_set():
            try:
                busy = self._scan()
            except AzureError as e:
                self._log_storage_error(e)
                busy = True
            if busy:
                self.backoff.reset()
                delay = self.backoff.minimum
            else:
                delay = self.backoff.idle()
            self.poller.sleep(delay)

    def _scan(self) -> bool:
        """Start work for each new blob version; True if anything is (still) to do."""
        started = time.monotonic()
        busy = False
        try:
            blobs = list(self.container.list_blobs(name_starts_with=self.trigger.path.prefix or None))
        except ResourceNotFoundError:
            blobs = []   # the container does not exist yet: nothing to trigger on
        for blob in blobs:
            if self.poller.stop.is_set():
                return True
            if not self.trigger.path.matches(blob.name):
                continue
            key = (blob.name, normalize_etag(blob.etag))
            with self._lock:
                if key in self._done:
                    continue
                if blob.name in self._running:
                    busy = True
                    continue
                failure = self._failures.get(key)
            if failure and failure.retry_at > time.monotonic():
                busy = True
                continue
            if self.receipts.exists(key[1], self.trigger.path.container, blob.name):
                with self._lock:
                    self._done.add(key)
                continue
            self._submit(blob, key)
            busy = True
        if not busy and self.in_flight == 0:
            self.last_clean_scan = started
        return busy

    def _submit(self, blob: BlobProperties, key: tuple[str, str]) -> None:
        with self._lock:
            self._running.add(blob.name)
        client = self.container.get_blob_client(blob.name)
        reason = f"New blob detected({self.trigger.source or 'LogsAndContainerScan'}): " \
                 f"{self.trigger.path.container}/{blob.name}"

        def work() -> InvocationResult | None:
            result = None
            try:
                result = self.invoker.invoke(self.trigger.spec,
                                             lambda: self.trigger.argument(client, self.container), reason)
                self._complete(blob, key, result)
            finally:
                with self._lock:
                    self._running.discard(blob.name)
                    if result is None:   # the host failed, not the function: try again on a later scan
                        self._failures.setdefault(key, _Failure(0, 0.0))
                self.poller.nudge()
            return result

        future = self.pool.submit(work)
        future.add_done_callback(lambda f: self._on_cancel(f, blob.name))

    def _on_cancel(self, future: Any, name: str) -> None:
        if future.cancelled():
            with self._lock:
                self._running.discard(name)

    def _complete(self, blob: BlobProperties, key: tuple[str, str], result: InvocationResult) -> None:
        container = self.trigger.path.container
        if result.succeeded:
            self.receipts.write(key[1], container, blob.name, "Succeeded")
            with self._lock:
                self._done.add(key)
                self._failures.pop(key, None)
            return
        with self._lock:
            failure = self._failures.setdefault(key, _Failure(0, 0.0))
            failure.attempts += 1
            failure.retry_at = time.monotonic() + self.options.visibility_timeout
            attempts = failure.attempts
        if attempts < self.options.max_dequeue_count:
            return
        self._send_poison(blob, key[1])
        self.receipts.write(key[1], container, blob.name, "Poisoned")
        with self._lock:
            self._done.add(key)
            self._failures.pop(key, None)
        log.warning("function %s: blob %s/%s (ETag %s) failed %d times; message sent to %s", self.name, container,
                    blob.name, key[1], attempts, POISON_QUEUE)

    def _send_poison(self, blob: BlobProperties, etag: str) -> None:
        """The host's poison message: base64 JSON naming the function and the blob version."""
        body = {"Type": "BlobTrigger", "FunctionId": self.function_id,
                "BlobType": _blob_type(blob), "ContainerName": self.trigger.path.container,
                "BlobName": blob.name, "ETag": etag}
        try:
            self.poison.create_queue()
        except ResourceExistsError:
            pass
        self.poison.send_message(base64.b64encode(json.dumps(body).encode()).decode("ascii"))

    def _log_storage_error(self, e: Exception) -> None:
        now = time.monotonic()
        if now - self._last_error_log > 10:
            self._last_error_log = now
            log.warning("blob trigger %s: storage error (will keep scanning): %s", self.name,
                        str(e).splitlines()[0] if str(e) else type(e).__name__)


def _blob_type(blob: BlobProperties) -> str:
    kind = str(getattr(blob.blob_type, "value", blob.blob_type) or "BlockBlob")
    return kind


def _resolvable(clients: StorageClients, name: str) -> bool:
    try:
        clients.connection(name)
        return True
    except Exception:
        return False
