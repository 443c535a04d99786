"""Queue triggers: peek-lock polling with lease renewal, base64 decoding, retries and the `<queue>-poison` queue."""

from __future__ import annotations

import base64
import binascii
import logging
import re
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from azure.core.exceptions import AzureError, ResourceExistsError, ResourceNotFoundError
from azure.functions.queue import QueueMessage
from azure.storage.queue import QueueClient
from azure.storage.queue import QueueMessage as StorageMessage

from .annotations import queue_kind
from .app import FunctionSpec
from .connections import StorageClients
from .errors import BindingError
from .hostconfig import QueueOptions
from .invoker import InvocationResult, Invoker, WorkerPool
from .polling import Backoff, Poller
from .settings import resolve

log = logging.getLogger("devhost")

_QUEUE_NAME = re.compile(r"^(?!.*--)[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")
POISON_SUFFIX = "-poison"
MAX_POISONABLE_NAME = 63 - len(POISON_SUFFIX)


def check_queue_name(name: str, where: str) -> str:
    """Queue names are 3-63 lowercase letters, digits and single hyphens; say so before polling a bad one."""
    if not _QUEUE_NAME.match(name):
        raise BindingError(f"{where}: {name!r} is not a valid queue name "
                           "(3-63 characters: lowercase letters, digits, single hyphens; no leading/trailing hyphen)")
    return name


@dataclass(frozen=True)
class QueueTrigger:
    """A queue trigger with its queue name resolved and its parameter type known."""

    spec: FunctionSpec
    queue_name: str
    connection: str | None
    kind: str

    @classmethod
    def of(cls, spec: FunctionSpec) -> "QueueTrigger":
        where = f"function {spec.name!r} queue trigger"
        name = check_queue_name(resolve(spec.trigger["queueName"], where).lower(), where)
        return cls(spec=spec, queue_name=name, connection=spec.trigger.get("connection"), kind=queue_kind(spec))

    def argument(self, message: QueueMessage) -> Any:
        """What the function's parameter receives for this message."""
        if self.kind == "str":
            return message.get_body().decode("utf-8")
        if self.kind == "bytes":
            return message.get_body()
        return message


def decode_body(content: str, encoding: str) -> bytes:
    """The message body as bytes; raises binascii.Error if base64 was expected and this is not base64."""
    if encoding == "base64":
        return base64.b64decode(content, validate=True)
    return content.encode("utf-8")


def to_function_message(m: StorageMessage, body: bytes) -> QueueMessage:
    """The azure.functions QueueMessage the worker builds from a storage message."""
    return QueueMessage(id=m.id, body=body, dequeue_count=m.dequeue_count, expiration_time=m.expires_on,
                        insertion_time=m.inserted_on, time_next_visible=m.next_visible_on, pop_receipt=m.pop_receipt)


@dataclass
class _Lease:
    """A received message this host is working on; its pop receipt changes on every visibility update."""

    message: StorageMessage
    pop_receipt: str
    renew_at: float
    lock: threading.Lock = field(default_factory=threading.Lock)
    settled: bool = False


class QueueListener:
    """Polls one queue for one function and settles each message: delete, release for retry, or poison."""

    def __init__(self, trigger: QueueTrigger, clients: StorageClients, options: QueueOptions, invoker: Invoker,
                 pool: WorkerPool, poller: Poller, backoff: Backoff, lease_seconds: float) -> None:
        self.trigger = trigger
        self.options = options
        self.invoker = invoker
        self.pool = pool
        self.poller = poller
        self.backoff = backoff
        self.lease_seconds = lease_seconds
        service = clients.queue_service(trigger.connection)
        self.queue: QueueClient = service.get_queue_client(trigger.queue_name)
        self.poison: QueueClient = service.get_queue_client(trigger.queue_name + POISON_SUFFIX)
        self._leases: dict[str, _Lease] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._last_error_log = 0.0

    @property
    def name(self) -> str:
        return self.trigger.spec.name

    @property
    def in_flight(self) -> int:
        with self._lock:
            return len(self._leases)

    def approximate_count(self) -> int:
        """Visible plus invisible messages (Azurite and Azure count both), for drain()."""
        try:
            return self.queue.get_queue_properties().approximate_message_count or 0
        except ResourceNotFoundError:
            return 0

    def start(self) -> None:
        self._ensure_queue()
        self._thread = threading.Thread(target=self._run, name=f"devhost-queue-{self.name}", daemon=True)
        self._thread.start()

    def join(self, timeout: float | None = None) -> None:
        if self._thread:
            self._thread.join(timeout)

    def release_all(self) -> None:
        """On shutdown: make messages this host holds but has not settled visible again at once."""
        with self._lock:
            leases = list(self._leases.values())
        for lease in leases:
            self._settle(lease, "release", visibility=0)

    def _ensure_queue(self) -> None:
        try:
            self.queue.create_queue()
        except ResourceExistsError:
            pass

    def _run(self) -> None:
        """Receive until the host stops; keep renewing leases of running invocations until it exits."""
        while not self.poller.exit.is_set():
            try:
                self._renew_due()
                got = 0 if self.poller.stop.is_set() else self._poll_once()
            except AzureError as e:
                self._log_storage_error(e)
                got = 0
            if got:
                self.backoff.reset()
                delay = 0.0 if self.in_flight < self.options.batch_size else self.backoff.minimum
            else:
                delay = self.backoff.idle()
            self.poller.sleep(min(delay, self._until_next_renewal()))

    def _poll_once(self) -> int:
        free = self.options.batch_size - self.in_flight
        if free <= 0:
            return 0
        try:
            batch = min(free, 32)  # one request for the whole batch, as the host does
            messages = list(self.queue.receive_messages(messages_per_page=batch, max_messages=batch,
                                                        visibility_timeout=max(1, round(self.lease_seconds))))
        except ResourceNotFoundError:
            self._ensure_queue()  # deleted while we ran: the host recreates it
            return 0
        for m in messages:
            self._accept(m)
        return len(messages)

    def _accept(self, m: StorageMessage) -> None:
        lease = _Lease(message=m, pop_receipt=m.pop_receipt, renew_at=time.monotonic() + self.lease_seconds / 2)
        with self._lock:
            self._leases[m.id] = lease
        if m.dequeue_count > self.options.max_dequeue_count:
            self._settle(lease, "poison", why=f"dequeue count {m.dequeue_count} is over maxDequeueCount "
                                              f"{self.options.max_dequeue_count}")
            return
        try:
            body = decode_body(m.content or "", self.options.message_encoding)
        except (binascii.Error, ValueError):
            self._settle(lease, "poison", why="the message is not valid base64 (messageEncoding is base64)")
            return
        message = to_function_message(m, body)
        reason = f"New queue message detected on '{self.trigger.queue_name}'."

        def work() -> InvocationResult | None:
            result = None
            try:
                result = self.invoker.invoke(self.trigger.spec, lambda: self.trigger.argument(message), reason)
            finally:
                if result is None:  # the host itself failed here: let the message come back
                    self._settle(lease, "release", visibility=self.options.visibility_timeout)
                else:
                    self._complete(lease, result)
            return result

        future = self.pool.submit(work)
        future.add_done_callback(lambda f: self._on_cancel(f, lease))

    def _on_cancel(self, future: Future, lease: _Lease) -> None:
        if future.cancelled():
            self._settle(lease, "release", visibility=0)

    def _complete(self, lease: _Lease, result: InvocationResult) -> None:
        if result.succeeded:
            self._settle(lease, "delete")
        elif lease.message.dequeue_count >= self.options.max_dequeue_count:
            self._settle(lease, "poison", why=f"failed {lease.message.dequeue_count} times "
                                              f"(maxDequeueCount {self.options.max_dequeue_count})")
        else:
            self._settle(lease, "release", visibility=self.options.visibility_timeout)
        self.poller.nudge()

    def _settle(self, lease: _Lease, action: str, visibility: float = 0, why: str = "") -> None:
        """Delete, release (visible again after `visibility` s) or poison a held message, exactly once."""
        with lease.lock:
            if lease.settled:
                return
            lease.settled = True
            m = lease.message
            try:
                if action == "delete":
                    self.queue.delete_message(m.id, lease.pop_receipt)
                elif action == "release":
                    self.queue.update_message(m.id, lease.pop_receipt, visibility_timeout=round(visibility))
                else:
                    self._poison(m, lease.pop_receipt, why)
            except ResourceNotFoundError:
                log.warning("queue %s: message %s was gone before it could be settled (%s); its lease had expired",
                            self.trigger.queue_name, m.id, action)
            except AzureError as e:
                self._log_storage_error(e)
            finally:
                with self._lock:
                    self._leases.pop(m.id, None)

    def _poison(self, m: StorageMessage, pop_receipt: str, why: str) -> None:
        if len(self.trigger.queue_name) > MAX_POISONABLE_NAME:
            log.error("queue %s: message %s dropped, %s; the queue name is too long for a '-poison' queue",
                      self.trigger.queue_name, m.id, why)
        else:
            try:
                self.poison.create_queue()
            except ResourceExistsError:
                pass
            self.poison.send_message(m.content)
            log.warning("queue %s: message %s moved to %s: %s", self.trigger.queue_name, m.id,
                        self.poison.queue_name, why)
        self.queue.delete_message(m.id, pop_receipt)

    def _renew_due(self) -> None:
        now = time.monotonic()
        with self._lock:
            due = [lease for lease in self._leases.values() if lease.renew_at <= now]
        for lease in due:
            with lease.lock:
                if lease.settled:
                    continue
                updated = self.queue.update_message(lease.message.id, lease.pop_receipt,
                                                    visibility_timeout=max(1, round(self.lease_seconds)))
                lease.pop_receipt = updated.pop_receipt
                lease.renew_at = time.monotonic() + self.lease_seconds / 2

    def _until_next_renewal(self) -> float:
        with self._lock:
            if not self._leases:
                return float("inf")
            return max(0.0, min(lease.renew_at for lease in self._leases.values()) - time.monotonic())

    def _log_storage_error(self, e: Exception) -> None:
        now = time.monotonic()
        if now - self._last_error_log > 10:
            self._last_error_log = now
            log.warning("queue %s: storage error (will keep polling): %s", self.trigger.queue_name,
                        str(e).splitlines()[0] if str(e) else type(e).__name__)
