"""Runs function invocations on a bounded pool of daemon threads and logs one line per invocation, like Core Tools."""

from __future__ import annotations

import asyncio
import collections
import logging
import queue
import threading
import time
import traceback
import uuid
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import azure.functions as func

from .app import CONTEXT_PARAM, FunctionSpec
from .connections import StorageClients
from .outputs import OutValue, QueueOutput

log = logging.getLogger("devhost")


@dataclass(frozen=True)
class InvocationResult:
    """What happened in one invocation: the trigger's outcome is decided from this."""

    function: str
    trigger: str
    invocation_id: str
    reason: str
    started: float
    duration: float
    return_value: Any = None
    error: BaseException | None = None
    timed_out: bool = False

    @property
    def succeeded(self) -> bool:
        return self.error is None and not self.timed_out

    @property
    def outcome(self) -> str:
        return "Succeeded" if self.succeeded else ("TimedOut" if self.timed_out else "Failed")


class _Context(func.Context):
    """The func.Context the worker passes to a parameter named `context`."""

    def __init__(self, invocation_id: str, function_name: str, directory: str) -> None:
        self._id, self._name, self._dir = invocation_id, function_name, directory
        self._tls = threading.local()
        self._tls.invocation_id = invocation_id

    @property
    def invocation_id(self) -> str:
        return self._id

    @property
    def thread_local_storage(self) -> Any:
        return self._tls

    @property
    def function_name(self) -> str:
        return self._name

    @property
    def function_directory(self) -> str:
        return self._dir

    @property
    def trace_context(self) -> Any:
        return None

    @property
    def retry_context(self) -> Any:
        return None


class WorkerPool:
    """A fixed number of daemon threads: a stuck function cannot keep the process from exiting."""

    def __init__(self, workers: int, name: str = "devhost-worker") -> None:
        self._work: queue.SimpleQueue[tuple[Future, Callable[[], Any]] | None] = queue.SimpleQueue()
        self._cond = threading.Condition()
        self._outstanding = 0
        self._running = 0
        self.completed = 0                      # work items finished (or cancelled) so far
        self.last_finished = float("-inf")      # monotonic time the last one finished
        self._threads = [threading.Thread(target=self._loop, name=f"{name}-{i}", daemon=True) for i in range(workers)]
        for t in self._threads:
            t.start()

    def submit(self, fn: Callable[[], Any]) -> Future:
        fut: Future = Future()
        with self._cond:
            self._outstanding += 1
        self._work.put((fut, fn))
        return fut

    @property
    def outstanding(self) -> int:
        """Submitted and not finished (queued or running)."""
        with self._cond:
            return self._outstanding

    @property
    def running(self) -> int:
        with self._cond:
            return self._running

    def wait_idle(self, timeout: float | None) -> bool:
        """True once nothing is queued or running; False if `timeout` passed first."""
        with self._cond:
            return self._cond.wait_for(lambda: self._outstanding == 0, timeout)

    def cancel_queued(self) -> int:
        """Cancel work not started yet (their done-callbacks run, so triggers can release what they hold)."""
        cancelled = []
        while True:
            try:
                item = self._work.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                cancelled.append(item[0])
        for fut in cancelled:
            fut.cancel()
            self._finished(running=False)
        return len(cancelled)

    def shutdown(self) -> None:
        for _ in self._threads:
            self._work.put(None)

    def _finished(self, running: bool) -> None:
        with self._cond:
            self._outstanding -= 1
            if running:
                self._running -= 1
            self.completed += 1
            self.last_finished = time.monotonic()
            self._cond.notify_all()

    def _loop(self) -> None:
        while True:
            item = self._work.get()
            if item is None:
                return
            fut, fn = item
            if not fut.set_running_or_notify_cancel():
                self._finished(running=False)
                continue
            with self._cond:
                self._running += 1
            try:
                result = fn()
            except BaseException as e:  # noqa: BLE001 - handed to the future's owner
                fut.set_exception(e)
            else:
                fut.set_result(result)
            finally:
                self._finished(running=True)


@dataclass
class Invoker:
    """Calls a user function with its trigger value, output bindings and context; never raises for user errors."""

    clients: StorageClients
    queue_outputs: Mapping[str, list[QueueOutput]]
    message_encoding: str = "base64"
    function_timeout: float | None = None
    function_directory: str = "."
    history: collections.deque = field(default_factory=lambda: collections.deque(maxlen=10_000))

    def invoke(self, spec: FunctionSpec, bind: Callable[[], Any], reason: str) -> InvocationResult:
        """Bind the trigger value and run the function in this thread; send outputs on success; log and record.

        `bind` builds the trigger parameter's value; if it raises, that is a failed invocation, as in the host.
        """
        invocation_id = str(uuid.uuid4())
        outs = {o.param: o for o in self.queue_outputs.get(spec.name, [])}
        out_values = {name: OutValue() for name in outs if name != "$return"}
        started = time.time()
        t0 = time.monotonic()
        error: BaseException | None = None
        value: Any = None
        try:
            kwargs: dict[str, Any] = {spec.trigger["name"]: bind(), **out_values}
            if any(p.name == CONTEXT_PARAM for p in spec.parameters) and CONTEXT_PARAM not in kwargs:
                kwargs[CONTEXT_PARAM] = _Context(invocation_id, spec.name, self.function_directory)
            value = asyncio.run(spec.func(**kwargs)) if spec.is_async else spec.func(**kwargs)
        except Exception as e:  # noqa: BLE001 - a user error is an outcome, not a host crash
            error = e
        duration = time.monotonic() - t0
        timed_out = self.function_timeout is not None and duration > self.function_timeout
        if error is None and not timed_out:
            try:
                for name, target in outs.items():
                    target.send(self.clients, value if name == "$return" else out_values[name].get(),
                                self.message_encoding)
            except Exception as e:  # noqa: BLE001
                error = e
        result = InvocationResult(function=spec.name, trigger=spec.trigger_type, invocation_id=invocation_id,
                                  reason=reason, started=started, duration=duration, return_value=value,
                                  error=error, timed_out=timed_out)
        self._log(result)
        self.history.append(result)
        return result

    def _log(self, r: InvocationResult) -> None:
        line = (f"Executed 'Functions.{r.function}' ({r.outcome}, Trigger={r.trigger}, Reason={r.reason!r}, "
                f"Id={r.invocation_id}, Duration={r.duration * 1000:.0f}ms)")
        if r.succeeded:
            log.info(line)
        elif r.timed_out:
            log.error("%s: exceeded functionTimeout of %.0fs; the real host would abandon it and count a failure",
                      line, self.function_timeout)
        else:
            tb = "".join(traceback.format_exception(r.error)).rstrip()
            log.error("%s: %s: %s\n%s", line, type(r.error).__name__, r.error, tb)
