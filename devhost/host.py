"""DevHost: the local stand-in for the Functions host, assembled from the trigger modules; usable in-process or by CLI."""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from azure.functions.queue import QueueMessage

from .app import FunctionSpec, find_app, import_app_module, read_functions
from .blobs import BlobListener, BlobTrigger
from .connections import StorageClients
from .errors import BindingError, DevHostError, DrainTimeout, UnknownFunctionError
from .hostconfig import HostConfig
from .httpserver import FrontEnd, HttpFunction, LoopbackServer, Router, serve
from .invoker import InvocationResult, Invoker, WorkerPool
from .outputs import QueueOutput
from .polling import Backoff, Poller
from .queues import QueueListener, QueueTrigger
from .settings import AppliedSettings, LocalSettings, apply_settings
from .timers import TimerScheduler, TimerTrigger

log = logging.getLogger("devhost")

LOOPBACK = "127.0.0.1"
DEFAULT_PORT = 7071
LOCAL_MAX_POLLING_INTERVAL = 2.0   # seconds; the host's default is 1 min, too slow for a developer loop


@dataclass(frozen=True)
class Triggers:
    """Every function's trigger, resolved (%SETTING%, schedules, routes) before anything starts."""

    http: list[HttpFunction]
    queues: list[QueueTrigger]
    blobs: list[BlobTrigger]
    timers: list[TimerTrigger]
    outputs: dict[str, list[QueueOutput]]

    @classmethod
    def resolve(cls, specs: tuple[FunctionSpec, ...]) -> "Triggers":
        kinds: dict[str, list[Any]] = {"httpTrigger": [], "queueTrigger": [], "blobTrigger": [], "timerTrigger": []}
        makers = {"httpTrigger": HttpFunction.of, "queueTrigger": QueueTrigger.of,
                  "blobTrigger": BlobTrigger.of, "timerTrigger": TimerTrigger.of}
        for spec in specs:
            kinds[spec.trigger_type].append(makers[spec.trigger_type](spec))
        outputs = {spec.name: QueueOutput.of(spec) for spec in specs}
        return cls(kinds["httpTrigger"], kinds["queueTrigger"], kinds["blobTrigger"], kinds["timerTrigger"], outputs)


def _disabled(name: str) -> bool:
    """`AzureWebJobs.<name>.Disabled` = true keeps the host from triggering a function (admin calls still work)."""
    return os.environ.get(f"AzureWebJobs.{name}.Disabled", "").strip().lower() in ("true", "1")


def _default_host_id(script_root: Path) -> str:
    slug = re.sub(r"[^a-z0-9-]+", "-", script_root.resolve().name.lower()).strip("-") or "app"
    return f"devhost-{slug}"[:32].rstrip("-")


class DevHost:
    """Runs a v2-model Functions app's triggers against storage (Azurite) the way the Functions host would."""

    def __init__(self, app_module: str = "function_app", script_root: Path | str = ".",
                 settings: Mapping[str, str] | None = None, port: int | None = None, *,
                 settings_file: Path | str | None = None, poll_interval: float = 0.1,
                 max_polling_interval: float | None = None, workers: int | None = None,
                 queue_lease: float = 30.0, shutdown_timeout: float = 10.0, host_id: str | None = None,
                 run_timers: bool = True) -> None:
        self.app_module = app_module
        self.script_root = Path(script_root).resolve()
        self.settings = dict(settings or {})
        self.settings_file = Path(settings_file) if settings_file else None
        self.requested_port = port
        self.poll_interval = poll_interval
        self.max_polling_interval = max_polling_interval
        self.workers = workers or min(32, (os.cpu_count() or 1) + 4)
        self.queue_lease = queue_lease
        self.shutdown_timeout = shutdown_timeout
        self.host_id = host_id
        self.run_timers = run_timers
        self.functions: tuple[FunctionSpec, ...] = ()
        self.config: HostConfig | None = None
        self._applied: AppliedSettings | None = None
        self._stop = threading.Event()    # take no new work
        self._exit = threading.Event()    # listener threads end (after in-flight work settled)
        self._pool: WorkerPool | None = None
        self._invoker: Invoker | None = None
        self._clients: StorageClients | None = None
        self._triggers: Triggers | None = None
        self._queue_listeners: list[QueueListener] = []
        self._blob_listeners: list[BlobListener] = []
        self._pollers: list[Poller] = []
        self._timers: TimerScheduler | None = None
        self._server: LoopbackServer | None = None
        self._router: Router | None = None
        self._started = False

    # ---- lifecycle -------------------------------------------------------------------------------------------

    def start(self) -> "DevHost":
        """Load settings, host.json and the app; resolve every binding; start listeners and HTTP. Returns when listening."""
        if self._started:
            raise DevHostError("this DevHost is already started")
        default_file = self.script_root / "local.settings.json"
        local = LocalSettings.load(self.settings_file or default_file, required=self.settings_file is not None)
        self._applied = apply_settings(local.values, self.settings)
        try:
            self._start(local)
        except BaseException:
            self._teardown()
            raise
        self._started = True
        return self

    def _start(self, local: LocalSettings) -> None:
        self.config = HostConfig.load(self.script_root)
        module = import_app_module(self.app_module, self.script_root)
        self.functions = read_functions(find_app(module))
        self._triggers = triggers = Triggers.resolve(self.functions)
        self.host_id = self.host_id or os.environ.get("AzureFunctionsWebHost__hostid") or \
            _default_host_id(self.script_root)
        options = self.config.queues
        self._clients = StorageClients()
        self._pool = WorkerPool(self.workers)
        self._invoker = Invoker(self._clients, triggers.outputs, options.message_encoding,
                                self.config.function_timeout, str(self.script_root))
        cap = self.max_polling_interval if self.max_polling_interval is not None else \
            min(options.max_polling_interval, LOCAL_MAX_POLLING_INTERVAL)
        for t in triggers.queues:
            if not _disabled(t.spec.name):
                self._queue_listeners.append(QueueListener(t, self._clients, options, self._invoker, self._pool,
                                                           self._poller(), Backoff(self.poll_interval, cap),
                                                           self.queue_lease))
        for b in triggers.blobs:
            if not _disabled(b.spec.name):
                self._blob_listeners.append(BlobListener(b, self._clients, options, self._invoker, self._pool,
                                                         self._poller(), Backoff(self.poll_interval, cap),
                                                         self.host_id))
        self._timers = TimerScheduler([t for t in triggers.timers if not _disabled(t.spec.name)],
                                      self._invoker, self._pool, self._stop)
        self._router = Router(triggers.http, self.config.route_prefix)
        port = self.requested_port if self.requested_port is not None else (local.local_http_port or DEFAULT_PORT)
        front = FrontEnd(self._router, self._invoker, self._pool, self)
        self._server, _ = serve(front, port, LOOPBACK)
        for listener in [*self._queue_listeners, *self._blob_listeners]:
            listener.start()
        self._timers.start(schedule=self.run_timers)
        self._log_functions()

    def _poller(self) -> Poller:
        poller = Poller(self._stop, self._exit)
        self._pollers.append(poller)
        return poller

    def stop(self, timeout: float | None = None) -> bool:
        """Stop polling and HTTP, wait (bounded) for running invocations; True if none was left running."""
        if not self._started:
            return True
        self._started = False
        grace = self.shutdown_timeout if timeout is None else timeout
        log.info("devhost: stopping (waiting up to %.0fs for running invocations)", grace)
        self._stop.set()
        self.nudge()
        if self._server:
            self._server.shutdown()
        if self._timers:
            self._timers.join(5)
        clean = True
        if self._pool:
            self._pool.cancel_queued()           # not started: their messages are released at once
            clean = self._pool.wait_idle(grace)  # queue leases keep being renewed meanwhile
            if not clean:
                log.warning("devhost: %d invocation(s) still running after %.0fs; leaving them", self._pool.running,
                            grace)
        self._exit.set()
        self.nudge()
        for listener in [*self._queue_listeners, *self._blob_listeners]:
            listener.join(5)
        for listener in self._queue_listeners:
            listener.release_all()
        self._teardown()
        return clean

    def _teardown(self) -> None:
        if self._server:
            self._server.server_close()
            self._server = None
        if self._pool:
            self._pool.shutdown()
        if self._clients:
            self._clients.close()
        if self._applied:
            self._applied.restore()
            self._applied = None

    def __enter__(self) -> "DevHost":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # ---- observing and driving -------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        if not self._server:
            raise DevHostError("the host is not started")
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        """Base URL of the HTTP front end, e.g. http://127.0.0.1:7071 (routes are under /{routePrefix}/)."""
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def invocations(self) -> list[InvocationResult]:
        """Every invocation so far (most recent last), for tests and the demo."""
        return list(self._invoker.history) if self._invoker else []

    def nudge(self) -> None:
        """Make every listener poll now instead of finishing its back-off sleep."""
        for poller in self._pollers:
            poller.nudge()

    def fire_timer(self, name: str, wait: bool = True, timeout: float | None = 60.0) -> InvocationResult | Future:
        """Run a timer function now (past_due=False); with `wait`, return its InvocationResult."""
        spec = self._spec(name)
        if spec.trigger_type != "timerTrigger":
            raise UnknownFunctionError(f"function {name!r} is a {spec.trigger_type}, not a timer")
        future = self._scheduler().fire(spec.name)
        return future.result(timeout) if wait else future

    def invoke_admin(self, name: str, payload: str) -> Future:
        """What `POST /admin/functions/{name}` does: timer -> fire; queue -> the input as the message body."""
        spec = self._spec(name)
        if spec.trigger_type == "timerTrigger":
            return self._scheduler().fire(spec.name, reason="Timer fired via the admin API")
        if spec.trigger_type == "queueTrigger":
            trigger = next(t for t in self._require(self._triggers).queues if t.spec is spec)
            message = QueueMessage(id="admin", body=payload.encode("utf-8"), dequeue_count=1)
            invoker = self._require(self._invoker)
            return self._require(self._pool).submit(
                lambda: invoker.invoke(spec, lambda: trigger.argument(message), "Invoked via the admin API"))
        raise BindingError(f"function {name!r}: the admin API invokes timer and queue functions only here "
                           f"(this one is a {spec.trigger_type})")

    def describe_functions(self) -> list[dict[str, Any]]:
        """Name, trigger and where it listens, for `GET /admin/functions`."""
        out = []
        for spec in self.functions:
            item: dict[str, Any] = {"name": spec.name, "trigger": spec.trigger_type,
                                    "disabled": _disabled(spec.name)}
            if spec.trigger_type == "httpTrigger" and self._router:
                f = next(h for h in self._require(self._triggers).http if h.spec is spec)
                item["invoke_url_template"] = self.url + self._router.url_path(f)
                item["methods"] = sorted(f.methods) if f.methods else None
            out.append(item)
        return out

    def drain(self, timeout: float = 30.0) -> None:
        """Return once watched queues are empty (visible and invisible), blobs are handled and nothing runs.

        Raises DrainTimeout naming what is still pending. Timers are not waited for (they never end), but a
        timer invocation that is running counts as work.
        """
        start = time.monotonic()
        deadline = start + timeout
        self.nudge()
        while True:
            pending = self._pending(start)
            if not pending:
                return
            if time.monotonic() > deadline:
                raise DrainTimeout(f"not drained after {timeout:.1f}s: {'; '.join(pending)}")
            time.sleep(0.05)

    def _pending(self, since: float) -> list[str]:
        pool = self._require(self._pool)
        pending = []
        marker = pool.completed
        if pool.outstanding:
            pending.append(f"{pool.outstanding} invocation(s) queued or running")
        for q in self._queue_listeners:
            count = q.approximate_count()
            if count or q.in_flight:
                pending.append(f"queue {q.trigger.queue_name}: {count} message(s)")
        last_activity = max(since, pool.last_finished)
        for b in self._blob_listeners:
            if b.last_clean_scan < last_activity or b.in_flight:
                pending.append(f"blob trigger {b.name}: container {b.trigger.path.container} not yet scanned clean")
                b.poller.nudge()
        if not pending and (pool.completed != marker or pool.outstanding):
            pending.append("invocations finished while checking")
        return pending

    # ---- helpers ---------------------------------------------------------------------------------------------

    def _spec(self, name: str) -> FunctionSpec:
        for spec in self.functions:
            if spec.name.lower() == name.lower():
                return spec
        raise UnknownFunctionError(f"no function named {name!r} (functions: "
                                   f"{', '.join(s.name for s in self.functions) or 'none'})")

    def _scheduler(self) -> TimerScheduler:
        return self._require(self._timers)

    @staticmethod
    def _require(value: Any) -> Any:
        if value is None:
            raise DevHostError("the host is not started")
        return value

    def _log_functions(self) -> None:
        triggers = self._require(self._triggers)
        lines = ["Functions:"]
        for f in triggers.http:
            methods = ",".join(sorted(f.methods)) if f.methods else "ALL"
            lines.append(f"    {f.spec.name}: [{methods}] {self.url}{self._require(self._router).url_path(f)}")
        for q in triggers.queues:
            lines.append(f"    {q.spec.name}: queueTrigger on {q.queue_name}")
        for b in triggers.blobs:
            lines.append(f"    {b.spec.name}: blobTrigger on {b.path.container}/{b.path.pattern}"
                         f"{' (source EventGrid: polled locally)' if b.source == 'EventGrid' else ''}")
        for t in triggers.timers:
            lines.append(f"    {t.spec.name}: timerTrigger {t.schedule.expression!r} (UTC)"
                         f"{'' if self.run_timers else ' (schedule off: fire via admin API)'}")
        disabled = [s.name for s in self.functions if _disabled(s.name)]
        if disabled:
            lines.append(f"    disabled by AzureWebJobs.<name>.Disabled: {', '.join(disabled)}")
        log.info("\n".join(lines))
        if any(f.auth_level != "ANONYMOUS" for f in triggers.http):
            log.info("devhost: function keys are not checked locally (as with `func start`); Azure enforces them")
