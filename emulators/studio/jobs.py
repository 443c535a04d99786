"""BES job records and the bounded pool that runs each started job in its own child process."""

from __future__ import annotations

import logging
import multiprocessing
import queue
import threading
import time
from dataclasses import asdict, dataclass, field

from . import worker
from .errors import InvalidOperation, NotFound, module_error
from .store import Store

log = logging.getLogger("emulators.studio.jobs")

KIND = "job"
# Internal states; "Queued" (started, waiting for a worker) is reported as NotStarted, as BES does.
NOT_STARTED, QUEUED, RUNNING, FAILED, CANCELLED, FINISHED = (
    "NotStarted", "Queued", "Running", "Failed", "Cancelled", "Finished")
ACTIVE = (NOT_STARTED, QUEUED, RUNNING)
RESTARTED_DETAILS = ("The job was interrupted because the service restarted while it was {state}; "
                     "submit it again.")


@dataclass
class Job:
    """One BES job as stored: its spec (with credentials), state, failure Details, outputs and metadata."""

    id: str
    workspace: str
    service: str
    state: str
    spec: dict
    outputs: dict[str, dict]  # output name -> BlobRef fields (credentials included)
    details: str | None = None
    started: bool = False
    meta: dict = field(default_factory=dict)

    @property
    def status_code(self) -> str:
        return NOT_STARTED if self.state == QUEUED else self.state

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Job":
        return cls(**d)


class JobRunner:
    """Keeps jobs in the store and runs started ones, at most `workers` at a time, FIFO."""

    def __init__(self, store: Store, workers: int):
        self.store = store
        self.workers = max(1, workers)
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._cancel: set[str] = set()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._procs: dict[str, multiprocessing.Process] = {}
        self._closing = threading.Event()
        self._ctx = multiprocessing.get_context("forkserver")
        self._ctx.set_forkserver_preload(["emulators.studio.worker"])

    # --- lifecycle -------------------------------------------------------------------------

    def open(self) -> None:
        """Fail jobs a previous run left queued or running, then start the worker threads."""
        for key, body in self.store.all(KIND):
            if body["state"] in (QUEUED, RUNNING):
                shown = NOT_STARTED if body["state"] == QUEUED else RUNNING
                self.store.update(KIND, key, lambda d, s=shown: {
                    **d, "state": FAILED, "details": RESTARTED_DETAILS.format(state=s),
                    "meta": {**d["meta"], "ended_at": time.time()}})
        for i in range(self.workers):
            t = threading.Thread(target=self._work, name=f"bes-worker-{i}", daemon=True)
            t.start()
            self._threads.append(t)
        threading.Thread(target=self._warm_up, name="forkserver-warm-up", daemon=True).start()

    def close(self) -> None:
        """Stop the workers and terminate running children (they are failed as 'restarted' on next open)."""
        self._closing.set()
        for _ in self._threads:
            self._queue.put(None)
        with self._lock:
            procs = list(self._procs.values())
        for p in procs:
            p.terminate()
        for p in procs:
            p.join(5)

    def _warm_up(self) -> None:
        try:
            p = self._ctx.Process(target=worker.warm_up, name="bes-warm-up")
            p.start()
            p.join(120)
        except Exception:  # only an optimisation
            log.exception("fork server warm-up failed")

    # --- the BES operations ----------------------------------------------------------------

    def submit(self, job: Job) -> None:
        job.meta.setdefault("submitted_at", time.time())
        self.store.put(KIND, job.id, job.to_dict())

    def get(self, job_id: str, workspace: str, service: str) -> Job:
        body = self.store.get(KIND, job_id)
        if body is None or body["workspace"] != workspace or body["service"] != service:
            raise NotFound("JobNotFound", f"The job '{job_id}' does not exist for this web service.")
        return Job.from_dict(body)

    def start(self, job_id: str, workspace: str, service: str, faults: dict | None = None) -> None:
        """NotStarted -> queued; a job already queued is left as it is (idempotent); others are refused."""
        job = self.get(job_id, workspace, service)
        if job.state == QUEUED:
            return
        if job.state != NOT_STARTED:
            raise InvalidOperation("CannotStartJob", f"The job cannot be started because it is in {job.state} state.")

        def queue_it(d: dict) -> dict | None:
            if d["state"] != NOT_STARTED:
                return None
            spec = {**d["spec"], **(faults or {})}
            return {**d, "state": QUEUED, "started": True, "spec": spec,
                    "meta": {**d["meta"], "queued_at": time.time()}}

        new = self.store.update(KIND, job_id, queue_it)
        if new and new["state"] == QUEUED:
            self._queue.put(job_id)
        elif new:
            raise InvalidOperation("CannotStartJob",
                                   f"The job cannot be started because it is in {new['state']} state.")

    def cancel(self, job_id: str, workspace: str, service: str) -> None:
        """Active jobs end Cancelled (a running child is terminated); finished ones are left unchanged."""
        self.get(job_id, workspace, service)

        def cancel_it(d: dict) -> dict | None:
            if d["state"] not in ACTIVE:
                return None
            return {**d, "state": CANCELLED, "meta": {**d["meta"], "ended_at": time.time(),
                                                      "cancelled_from": d["state"]}}

        new = self.store.update(KIND, job_id, cancel_it)
        if new and new["meta"].get("cancelled_from") == RUNNING:
            with self._lock:
                self._cancel.add(job_id)

    def metadata(self, job_id: str) -> dict:
        """State and measurements (timings, rows, peak RSS) for the debug route; no credentials."""
        body = self.store.get(KIND, job_id)
        if body is None:
            raise NotFound("JobNotFound", f"The job '{job_id}' does not exist.")
        return {"id": job_id, "workspace": body["workspace"], "service": body["service"],
                "state": body["state"], "details": body["details"], **body["meta"]}

    # --- the pool --------------------------------------------------------------------------

    def _work(self) -> None:
        while True:
            job_id = self._queue.get()
            if job_id is None:
                return
            try:
                self._run(job_id)
            except Exception:
                log.exception("job %s: worker failed", job_id)
                self._end(job_id, FAILED, details="Error 0000: the emulator failed to run the job (see its log).")

    def _run(self, job_id: str) -> None:
        if self._closing.is_set():
            return  # left Queued: failed as "restarted" on next open
        won = []

        def claim(d: dict) -> dict | None:
            if d["state"] != QUEUED:
                return None  # cancelled while it waited
            won.append(True)
            return {**d, "state": RUNNING, "meta": {**d["meta"], "started_at": time.time()}}

        claimed = self.store.update(KIND, job_id, claim)
        if not won:
            return
        receiver, sender = self._ctx.Pipe(duplex=False)
        proc = self._ctx.Process(target=worker.run, args=(claimed["spec"], sender), name=f"bes-job-{job_id}")
        proc.start()
        sender.close()
        with self._lock:
            self._procs[job_id] = proc
        self.store.update(KIND, job_id, lambda d: {**d, "meta": {**d["meta"], "pid": proc.pid}})
        report, cancelled = self._wait(job_id, proc, receiver)
        with self._lock:
            self._procs.pop(job_id, None)
            self._cancel.discard(job_id)
        receiver.close()
        if cancelled or self._closing.is_set():
            return  # cancelled: already recorded; closing: left Running, failed as "restarted" on next open
        if report is None:
            self._end(job_id, FAILED, details=module_error(
                0, f"The job's process ended unexpectedly (exit code {proc.exitcode}).", "Execute"),
                exit_code=proc.exitcode)
            return
        if report.get("traceback"):
            log.error("job %s failed in the emulator:\n%s", job_id, report["traceback"])
        measured = {k: report[k] for k in ("start_rss_bytes", "peak_rss_bytes", "metrics", "rows", "columns",
                                           "train_seconds") if k in report}
        if report["ok"]:
            self._end(job_id, FINISHED, **measured)
        else:
            self._end(job_id, FAILED, details=report["details"], **measured)

    def _wait(self, job_id: str, proc, receiver) -> tuple[dict | None, bool]:
        while True:
            with self._lock:
                cancelled = job_id in self._cancel
            if cancelled:
                proc.terminate()
                proc.join(5)
                if proc.is_alive():
                    proc.kill()
                    proc.join(5)
                return None, True
            try:
                if receiver.poll(0.05):
                    report = receiver.recv()
                    proc.join(10)
                    return report, False
            except (EOFError, OSError):
                proc.join(5)
                return None, False
            if not proc.is_alive() and not receiver.poll(0):
                return None, False

    def _end(self, job_id: str, state: str, details: str | None = None, **meta) -> None:
        """Running -> a final state; a job cancelled meanwhile stays Cancelled."""
        self.store.update(KIND, job_id, lambda d: {
            **d, "state": state, "details": details,
            "meta": {**d["meta"], **meta, "ended_at": time.time()}} if d["state"] == RUNNING else None)
