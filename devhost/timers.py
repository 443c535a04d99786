"""Timer triggers: six-field NCRONTAB schedules in UTC (or a TimeSpan), run_on_startup, and firing on demand."""

from __future__ import annotations

import logging
import threading
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from azure.functions.timer import TimerRequest
from croniter import croniter

from .app import FunctionSpec
from .errors import HostConfigError, ScheduleError
from .hostconfig import parse_timespan
from .invoker import InvocationResult, Invoker, WorkerPool
from .settings import resolve

log = logging.getLogger("devhost")

PAST_DUE_AFTER = timedelta(seconds=1)   # later than this past its occurrence, an invocation is past due


@dataclass(frozen=True)
class Schedule:
    """When a timer fires: an NCRONTAB expression (seconds first, UTC) or a fixed TimeSpan interval."""

    expression: str
    interval: float | None = None

    @classmethod
    def parse(cls, expression: str, where: str) -> "Schedule":
        text = expression.strip()
        if ":" in text and len(text.split()) == 1:
            try:
                seconds = parse_timespan(text, where)
            except HostConfigError as e:
                raise ScheduleError(f"{where}: {expression!r} is not a TimeSpan ({e})") from None
            if not seconds:
                raise ScheduleError(f"{where}: TimeSpan schedule {expression!r} must be positive")
            return cls(expression=text, interval=seconds)
        fields = text.split()
        if len(fields) != 6:
            raise ScheduleError(f"{where}: {expression!r} has {len(fields)} fields; an NCRONTAB schedule has six, "
                                "seconds first: {second} {minute} {hour} {day} {month} {day-of-week}, "
                                "e.g. \"0 */5 * * * *\"")
        if not croniter.is_valid(text, second_at_beginning=True):
            raise ScheduleError(f"{where}: {expression!r} is not a valid NCRONTAB expression")
        return cls(expression=text)

    def next_after(self, moment: datetime) -> datetime:
        """The first occurrence strictly after `moment` (UTC)."""
        if self.interval is not None:
            return moment + timedelta(seconds=self.interval)
        return croniter(self.expression, moment, second_at_beginning=True).get_next(datetime)


@dataclass(frozen=True)
class TimerTrigger:
    """A timer trigger with its schedule resolved and parsed."""

    spec: FunctionSpec
    schedule: Schedule
    run_on_startup: bool

    @classmethod
    def of(cls, spec: FunctionSpec) -> "TimerTrigger":
        where = f"function {spec.name!r} timer schedule"
        schedule = Schedule.parse(resolve(spec.trigger["schedule"], where), where)
        return cls(spec=spec, schedule=schedule, run_on_startup=bool(spec.trigger.get("runOnStartup", False)))


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class TimerScheduler:
    """One thread for all timers; an occurrence does not start while the previous one still runs (as in the host)."""

    def __init__(self, timers: list[TimerTrigger], invoker: Invoker, pool: WorkerPool, stop: threading.Event) -> None:
        self.timers = {t.spec.name: t for t in timers}
        self.invoker = invoker
        self.pool = pool
        self.stop = stop
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._next: dict[str, datetime] = {}
        self._running: set[str] = set()
        self._last: dict[str, datetime] = {}
        self._thread: threading.Thread | None = None

    def start(self, schedule: bool = True) -> None:
        """Compute first occurrences, run the run_on_startup ones, and start the clock if `schedule`."""
        now = utcnow()
        for name, timer in self.timers.items():
            self._next[name] = timer.schedule.next_after(now)
            log.info("function %s: timer %r, next occurrence %s", name, timer.schedule.expression,
                     self._next[name].isoformat())
        for name, timer in self.timers.items():
            if timer.run_on_startup:
                self.fire(name, reason="Timer fired at startup (runOnStartup)")
        if schedule and self.timers:
            self._thread = threading.Thread(target=self._run, name="devhost-timers", daemon=True)
            self._thread.start()

    def join(self, timeout: float | None = None) -> None:
        self._wake.set()
        if self._thread:
            self._thread.join(timeout)

    def fire(self, name: str, past_due: bool = False, reason: str = "Timer fired on request") -> Future:
        """Invoke a timer function now (admin route, fire_timer, run_on_startup)."""
        timer = self.timers[name]
        with self._lock:
            self._running.add(name)
            status = {"Last": self._last.get(name, datetime.min.replace(tzinfo=timezone.utc)).isoformat(),
                      "Next": self._next.get(name, utcnow()).isoformat(), "LastUpdated": utcnow().isoformat()}
        request = TimerRequest(past_due=past_due, schedule_status=status, schedule={"AdjustForDST": True})

        def work() -> InvocationResult:
            try:
                return self.invoker.invoke(timer.spec, lambda: request, reason)
            finally:
                now = utcnow()
                with self._lock:
                    self._running.discard(name)
                    self._last[name] = now
                    if name in self._next and self._next[name] <= now:   # missed while running: skip it
                        self._next[name] = timer.schedule.next_after(now)
                self._wake.set()

        future = self.pool.submit(work)
        future.add_done_callback(lambda f: f.cancelled() and self._discard(name))
        return future

    def _discard(self, name: str) -> None:
        with self._lock:
            self._running.discard(name)

    def _run(self) -> None:
        while not self.stop.is_set():
            now = utcnow()
            due = []
            with self._lock:
                for name, when in self._next.items():
                    if when <= now and name not in self._running:
                        due.append((name, when))
                        self._next[name] = self.timers[name].schedule.next_after(max(now, when))
                waits = [(when - now).total_seconds() for name, when in self._next.items()
                         if name not in self._running]
            for name, when in due:
                self.fire(name, past_due=now - when > PAST_DUE_AFTER, reason=f"Timer fired at {when.isoformat()}")
            self._wake.wait(min([1.0, *waits]) if waits else 1.0)
            self._wake.clear()
