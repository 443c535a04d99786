"""Runs: one row per retraining attempt on one piece of data, with its status, step times and decision.

Layout of the runs table (PartitionKey = model, so a run and its index rows change in one
entity-group transaction, one request):

* `RowKey = <run id>`: the run; insert-only creation is the dedup;
* `t~<inverted created time>~<run id>`: newest-first listing, written with the run;
* `s~<status>~<inverted created time>~<run id>`: the same, per *ended* status, written in the
  transaction that ends the run (or creates it ended) and removed if the run is revived; a run moving
  between open statuses writes only its own row. Runs of an open status are listed from the `~open`
  partition instead (a model has at most a few open runs: its active, pending and awaiting ones);
  layout 2 also kept `s~` rows of open statuses: they are never read, and migration deletes them;
* `e~<inverted ended time>~<run id>`: the run-ended record (outbox), written in the transaction that
  ends the run, once per ending (`RunEnded`);
* `o~<event id>`: an event not yet handed to its subscribers (retrain.events outbox), written in the
  transaction of the change it announces, removed once the sender has fanned it out;
* and in partition `~open`, `RowKey = <model>~<run id>` for every run not ended: the sweeper's
  worklist. Written before the run exists (or is revived), removed after it ended, so every open
  run has one; a leftover row is cleared by the sweeper.
"""

from __future__ import annotations

import hashlib
import json
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from enum import Enum
from typing import Any, Callable, Iterator

from azure.core import MatchConditions
from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import TableClient, UpdateMode

from .errors import ConcurrentUpdate, UnknownRun
from .etags import canonical
from .tables import Page, TransactionFailed, decode_token, encode_token, inverted, key_range_page, transact

log = logging.getLogger("retrain")

Outbox = Callable[["Run"], list]  # the outbox rows announcing a change, built from the run as it is written

MAX_TEXT = 8000  # characters kept of a service's error text (a table property holds ~32K)
FETCH_THREADS = 8  # point reads of one listing page in flight at once (the SDK's clients are thread-safe)


class Status(str, Enum):
    PENDING = "pending"  # waiting for the model's active run to end
    QUEUED = "queued"  # admitted; the submit step is due
    RUNNING = "running"  # the BES job is submitted; status checks are due
    EVALUATING = "evaluating"  # the job finished; the gate is due
    AWAITING_APPROVAL = "awaiting_approval"  # the gate passed; a person must approve
    PROMOTING = "promoting"  # approved; the endpoint update is due
    PROMOTED = "promoted"
    REJECTED = "rejected"
    FAILED = "failed"
    CANCELLED = "cancelled"
    SUPERSEDED = "superseded"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL


TERMINAL = frozenset({Status.PROMOTED, Status.REJECTED, Status.FAILED, Status.CANCELLED, Status.SUPERSEDED})


class Trigger(str, Enum):
    BLOB = "blob"
    HTTP = "http"
    TIMER = "timer"
    RECONCILE = "reconcile"  # the sweeper found data whose trigger never fired


def iso(moment: datetime | None) -> str:
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds") if moment else ""


def parse_iso(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


@dataclass(frozen=True)
class DataRef:
    """A training blob by reference: the app passes this around, never the data."""

    container: str
    name: str
    etag: str
    size: int
    last_modified: str = ""
    snapshot: str = ""  # the pinned version the training job reads (set at submit, deleted when the run ends)

    def __post_init__(self):
        object.__setattr__(self, "etag", canonical(self.etag))  # listing and properties spell it differently

    @property
    def path(self) -> str:
        return f"{self.container}/{self.name}"


def run_id_for(model: str, data: DataRef) -> str:
    """Same model, blob and ETag give the same run: a double-fired trigger or repeated call is one run."""
    etag = canonical(data.etag)  # the quoted form: ids made before ETags were normalised stay the same
    digest = hashlib.sha256(f"{model}\n{data.container}/{data.name}\n{etag}".encode()).hexdigest()
    return digest[:20]


@dataclass(frozen=True)
class Run:
    """A run as stored; `etag` is what it was read at, for compare-and-swap writes."""

    model: str
    run_id: str
    trigger: Trigger
    data: DataRef
    status: Status
    reason: str  # why the run is where it is, in words a user understands
    created_at: str
    deadline: str
    updated_at: str = ""
    next_action_at: str = ""  # when the current step is due; the sweeper re-drives it when overdue
    attempt: int = 1  # BES submission attempt (a lost job is resubmitted to fresh output blobs)
    job_id: str = ""
    job_started: bool = False
    polls: int = 0  # status checks done; check messages carry the number they expect
    transient_failures: int = 0  # consecutive transient service errors in the current step
    outputs: dict[str, Any] = field(default_factory=dict)  # {"model": loc record, "evaluation": ...}
    metrics: dict[str, float] = field(default_factory=dict)
    decision: dict[str, Any] = field(default_factory=dict)
    baseline_run: str = ""  # the champion whose model was sent as the baseline
    endpoints: dict[str, Any] = field(default_factory=dict)  # endpoint name -> outcome record
    error: str = ""  # the service's own message when a step failed
    step_times: dict[str, str] = field(default_factory=dict)  # status -> when it was entered
    approval_expires_at: str = ""
    decided_by: str = ""  # who approved/rejected/cancelled, when a person did
    trace_id: str = ""  # the OpenTelemetry trace all of this run's steps belong to (32 hex digits)
    decision_comment: str = ""  # what they said why
    etag: str | None = None
    stored_status: Status | None = field(default=None, compare=False, repr=False)  # as read: moves its index row

    @property
    def terminal(self) -> bool:
        return self.status.terminal

    def moved(self, status: Status, reason: str, *, at: datetime, **changes) -> "Run":
        """The same run in a new status, with the time (from the context's clock) it got there."""
        now = iso(at)
        times = dict(self.step_times)
        times.setdefault(status.value, now)
        return replace(self, status=status, reason=reason, step_times=times, transient_failures=0, **changes)

    def to_entity(self) -> dict:
        entity = {"PartitionKey": self.model, "RowKey": self.run_id, "Trigger": self.trigger.value,
                  "DataContainer": self.data.container, "DataName": self.data.name, "DataEtag": self.data.etag,
                  "DataSize": self.data.size, "DataLastModified": self.data.last_modified,
                  "DataSnapshot": self.data.snapshot,
                  "Status": self.status.value, "Reason": self.reason[:MAX_TEXT], "CreatedAt": self.created_at,
                  "Deadline": self.deadline, "UpdatedAt": self.updated_at, "NextActionAt": self.next_action_at,
                  "Attempt": self.attempt, "JobId": self.job_id, "JobStarted": self.job_started,
                  "Polls": self.polls, "TransientFailures": self.transient_failures,
                  "BaselineRun": self.baseline_run, "Error": self.error[:MAX_TEXT],
                  "ApprovalExpiresAt": self.approval_expires_at, "DecidedBy": self.decided_by,
                  "TraceId": self.trace_id, "DecisionComment": self.decision_comment[:MAX_TEXT]}
        for name in ("outputs", "metrics", "decision", "endpoints", "step_times"):
            entity[_camel(name)] = json.dumps(getattr(self, name), separators=(",", ":"))
        return entity

    @classmethod
    def from_entity(cls, e: dict) -> "Run":
        data = DataRef(e["DataContainer"], e["DataName"], e["DataEtag"], int(e.get("DataSize", 0)),
                       e.get("DataLastModified", ""), e.get("DataSnapshot", ""))
        blobs = {name: json.loads(e.get(_camel(name)) or "{}")
                 for name in ("outputs", "metrics", "decision", "endpoints", "step_times")}
        return cls(model=e["PartitionKey"], run_id=e["RowKey"], trigger=Trigger(e["Trigger"]), data=data,
                   status=Status(e["Status"]), reason=e.get("Reason", ""), created_at=e["CreatedAt"],
                   deadline=e["Deadline"], updated_at=e.get("UpdatedAt", ""),
                   next_action_at=e.get("NextActionAt", ""), attempt=int(e.get("Attempt", 1)),
                   job_id=e.get("JobId", ""), job_started=bool(e.get("JobStarted", False)),
                   polls=int(e.get("Polls", 0)), transient_failures=int(e.get("TransientFailures", 0)),
                   baseline_run=e.get("BaselineRun", ""), error=e.get("Error", ""),
                   approval_expires_at=e.get("ApprovalExpiresAt", ""), decided_by=e.get("DecidedBy", ""),
                   trace_id=e.get("TraceId", ""), decision_comment=e.get("DecisionComment", ""),
                   etag=e.metadata.get("etag"), stored_status=Status(e["Status"]), **blobs)

    def to_public(self) -> dict:
        from .views import run_view  # the API's shape lives with the other public views
        return run_view(self)

    @property
    def ended_at(self) -> str:
        """When the run last ended (a retried promotion can end a run twice): the write that ended it."""
        return (self.updated_at or self.step_times.get(self.status.value, "")) if self.terminal else ""


def _camel(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))


@dataclass(frozen=True)
class RunEnded:
    """The run-ended record (outbox): appended once per ending, in the transaction that ends the run.

    Later consumers (notifications, webhooks, trends) read these; `to_json` is the event payload.
    """

    model: str
    run_id: str
    status: Status
    reason: str
    ended_at: str
    trigger: Trigger
    data_path: str
    created_at: str
    decision_summary: str = ""
    passed: bool | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    decided_by: str = ""
    key: str = ""

    @classmethod
    def of(cls, run: Run) -> "RunEnded":
        decision = run.decision or {}
        return cls(run.model, run.run_id, run.status, run.reason, run.ended_at, run.trigger, run.data.path,
                   run.created_at, decision.get("summary", ""), decision.get("passed"), dict(run.metrics),
                   run.decided_by, ended_key(run))

    def to_json(self) -> dict:
        return {"type": "run.ended", "model": self.model, "run_id": self.run_id, "status": self.status.value,
                "reason": self.reason, "ended_at": self.ended_at, "trigger": self.trigger.value,
                "data": self.data_path, "created_at": self.created_at, "decision_summary": self.decision_summary,
                "passed": self.passed, "metrics": self.metrics, "decided_by": self.decided_by}

    def to_entity(self) -> dict:
        return {"PartitionKey": self.model, "RowKey": self.key, "Event": json.dumps(self.to_json())[:30000]}

    @classmethod
    def from_entity(cls, e: dict) -> "RunEnded":
        body = json.loads(e["Event"])
        return cls(body["model"], body["run_id"], Status(body["status"]), body.get("reason", ""),
                   body.get("ended_at", ""), Trigger(body.get("trigger", "http")), body.get("data", ""),
                   body.get("created_at", ""), body.get("decision_summary", ""), body.get("passed"),
                   body.get("metrics") or {}, body.get("decided_by", ""), e["RowKey"])


OPEN = "~open"  # partition of the open-run index
TIME, BY_STATUS, ENDED = "t~", "s~", "e~"
END = "~"  # every index range [X~, X~~)


def time_key(run: Run) -> str:
    return f"{TIME}{inverted(run.created_at)}~{run.run_id}"


def status_key(run: Run, status: Status) -> str:
    return f"{BY_STATUS}{status.value}~{inverted(run.created_at)}~{run.run_id}"


def ended_key(run: Run) -> str:
    return f"{ENDED}{inverted(run.ended_at)}~{run.run_id}"


def open_key(model: str, run_id: str) -> str:
    return f"{model}~{run_id}"


def _pointer(model: str, key: str, run_id: str) -> dict:
    return {"PartitionKey": model, "RowKey": key, "RunId": run_id}


def index_rows(run: Run) -> list[dict]:
    """The listing rows a stored run has (time; status once ended), as migration and creation write them."""
    rows = [_pointer(run.model, time_key(run), run.run_id)]
    if run.terminal:
        rows.append(_pointer(run.model, status_key(run, run.status), run.run_id))
    return rows


def status_moves(run: Run, before: Status | None) -> list[tuple]:
    """The status index operations of a change from `before` (as stored) to `run.status`: only ended statuses
    have rows, so a move between open statuses needs none (the first, a delete, may find its row missing)."""
    if before is None or before is run.status:
        return []
    moves = []
    if before.terminal:
        moves.append(("delete", {"PartitionKey": run.model, "RowKey": status_key(run, before)}))
    if run.terminal:
        moves.append(("upsert", _pointer(run.model, status_key(run, run.status), run.run_id)))
    return moves


def is_open_status_row(row_key: str) -> bool:
    """A layout-2 status index row of an open status (this layout writes none; migration deletes them)."""
    if not row_key.startswith(BY_STATUS):
        return False
    try:
        return not Status(row_key[len(BY_STATUS):].split("~", 1)[0]).terminal
    except ValueError:
        return False


class RunStore:
    """The runs table: insert-only creation (dedup), If-Match writes, O(page) listings, the open-run index."""

    def __init__(self, table: TableClient, *, clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)):
        self.table = table
        self.clock = clock

    # --- writing -------------------------------------------------------------------------

    def create(self, run: Run, *, outbox: Outbox | None = None) -> tuple[Run, bool]:
        """Insert the run with its index rows (one transaction), or return the stored one; (run, created).

        A run created already ended (a skipped blob) gets its run-ended record in the same transaction.
        """
        if not run.terminal:
            self._open(run.model, run.run_id)
        operations = [("create", run.to_entity())] + [("upsert", row) for row in index_rows(run)]
        if run.terminal:
            operations.append(("create", RunEnded.of(run).to_entity()))
        operations += [("upsert", row) for row in (outbox(run) if outbox else [])]
        try:
            results = transact(self.table, operations)
        except TransactionFailed as e:
            if e.index == 0 and e.exists:
                return self.get(run.model, run.run_id), False
            raise
        return replace(run, etag=results[0].get("etag"), stored_status=run.status), True

    def save(self, run: Run, *, outbox: Outbox | None = None) -> Run:
        """Write with If-Match on the ETag it was read at; ConcurrentUpdate if someone else wrote first.

        Ending a run is `end`'s job (chain.finish), so that every ending writes its record.
        """
        if run.terminal and not (run.stored_status and run.stored_status.terminal):
            raise ValueError(f"run {run.run_id}: a run ends only through chain.finish (RunStore.end)")
        return self._write(run, outbox=outbox)

    def end(self, run: Run, *, outbox: Outbox | None = None) -> Run:
        """Write a run's ending with its run-ended record (and outbox rows), atomically; the open-run index row goes after."""
        assert run.terminal, run.status
        saved = self._write(run, ended=True, outbox=outbox)
        self._close(run.model, run.run_id)
        return saved

    def _write(self, run: Run, *, ended: bool = False, outbox: Outbox | None = None) -> Run:
        run = replace(run, updated_at=iso(self.clock()))
        update = ("update", run.to_entity(), {"mode": UpdateMode.REPLACE, "etag": run.etag,
                                              "match_condition": MatchConditions.IfNotModified})
        before = run.stored_status
        if before is not None and before.terminal and not run.terminal:
            self._open(run.model, run.run_id)  # revived (a promotion retried): open again first
        moves = status_moves(run, before)
        extra: list = list(moves)
        if ended:
            extra.append(("create", RunEnded.of(run).to_entity()))
        extra += [("upsert", row) for row in (outbox(run) if outbox else [])]
        try:
            if not extra:
                meta = self.table.update_entity(update[1], **update[2])
                return replace(run, etag=meta.get("etag"), stored_status=run.status)
            try:
                results = transact(self.table, [update, *extra])
            except TransactionFailed as e:
                if not (e.index == 1 and e.missing and moves and moves[0][0] == "delete"):
                    raise
                # A row stored before its status index existed (a migration still under way): move without it.
                results = transact(self.table, [update, *extra[1:]])
        except TransactionFailed as e:
            raise ConcurrentUpdate(f"run {run.run_id} of {run.model!r} changed since it was read ({e.code})") from None
        except Exception as e:
            if getattr(e, "status_code", None) in (404, 412):
                raise ConcurrentUpdate(f"run {run.run_id} of {run.model!r} changed since it was read") from None
            raise
        return replace(run, etag=results[0].get("etag"), stored_status=run.status)

    def _open(self, model: str, run_id: str) -> None:
        self.table.upsert_entity({"PartitionKey": OPEN, "RowKey": open_key(model, run_id), "Model": model,
                                  "RunId": run_id}, mode=UpdateMode.REPLACE)

    def _close(self, model: str, run_id: str) -> None:
        try:
            self.table.delete_entity(OPEN, open_key(model, run_id))
        except ResourceNotFoundError:
            pass
        except Exception as e:  # the sweeper clears a leftover row; the run has ended either way
            log.warning("run %s: open-run index row not removed yet (%s)", run_id, type(e).__name__)

    # --- reading -------------------------------------------------------------------------

    def get(self, model: str, run_id: str) -> Run:
        try:
            return Run.from_entity(self.table.get_entity(model, run_id))
        except ResourceNotFoundError:
            raise UnknownRun(f"model {model!r} has no run {run_id!r}") from None

    def find(self, model: str, run_id: str) -> Run | None:
        try:
            return self.get(model, run_id)
        except UnknownRun:
            return None

    def page(self, model: str, *, limit: int = 50, status: Status | None = None,
             continuation: str | None = None) -> Page:
        """Newest first, `limit` runs: one index query plus a point read per run, whatever the history."""
        if status is not None and not status.terminal:
            return self._open_page(model, status, limit, continuation)
        low = f"{BY_STATUS}{status.value}~" if status else TIME
        index = key_range_page(self.table, model, low, low + END, limit, continuation,
                               lambda e: (e["RowKey"], e["RunId"]), select=["RowKey", "RunId"])
        runs = self._fetch(model, [run_id for _, run_id in index.items])
        items = []
        for key, run_id in index.items:
            run = runs.get(run_id)
            if run is None or (status is not None and run.status is not status):
                self._drop(model, key)  # left by an interrupted migration or a lost clean-up
                continue
            items.append(run)
        return Page(items, index.continuation)

    def _open_page(self, model: str, status: Status, limit: int, continuation: str | None) -> Page:
        """Runs of an open status from the model's `~open` rows (a handful, whatever the history), newest first.

        One query, then a point read per open run; the token is the status key of the last run given, as for
        ended statuses.
        """
        low = f"{BY_STATUS}{status.value}~"
        after = decode_token(continuation, low, low + END) if continuation else None
        entries = self.table.query_entities("PartitionKey eq @pk and RowKey ge @low and RowKey lt @high",
                                            parameters={"pk": OPEN, "low": f"{model}~", "high": f"{model}~{END}"},
                                            select=["RunId"])
        runs = [run for run in self._fetch(model, [e["RunId"] for e in entries]).values() if run.status is status]
        keyed = sorted(((status_key(run, status), run) for run in runs), key=lambda pair: pair[0])
        keyed = [(key, run) for key, run in keyed if after is None or key > after]
        chosen = keyed[:limit]
        token = encode_token(chosen[-1][0]) if len(keyed) > limit and chosen else None
        return Page([run for _, run in chosen], token)

    def list(self, model: str, *, limit: int = 50, status: Status | None = None) -> list[Run]:
        """Newest first (the first page)."""
        return self.page(model, limit=limit, status=status).items

    def _fetch(self, model: str, run_ids: list[str]) -> dict[str, Run]:
        """The runs by point reads, a few at once: Table storage serves `RowKey eq a or RowKey eq b` as a scan
        of the whole partition (its query design guide), a point read from its index."""
        def read(run_id: str) -> Run | None:
            return self.find(model, run_id)

        if len(run_ids) > 1:
            with ThreadPoolExecutor(max_workers=min(FETCH_THREADS, len(run_ids))) as pool:
                found = list(pool.map(read, run_ids))
        else:
            found = [read(run_id) for run_id in run_ids]
        return {run.run_id: run for run in found if run}

    def _drop(self, model: str, key: str) -> None:
        try:
            self.table.delete_entity(model, key)
        except ResourceNotFoundError:
            pass

    def open_entries(self) -> Iterator[tuple[str, str, datetime | None]]:
        """(model, run id, when the entry was written) of every run not ended, from the open-run index."""
        for entity in self.table.query_entities("PartitionKey eq @pk", parameters={"pk": OPEN},
                                                select=["Model", "RunId"]):
            yield entity["Model"], entity["RunId"], entity.metadata.get("timestamp")

    def unfinished(self) -> Iterator[Run]:
        """Every non-terminal run of every model (the sweeper's worklist), one read per open run."""
        for model, run_id, _ in self.open_entries():
            run = self.find(model, run_id)
            if run is not None and not run.terminal:
                yield run

    def forget_open(self, model: str, run_id: str) -> None:
        """The sweeper found the run ended (or gone): its open-run index row is a leftover."""
        self._close(model, run_id)

    def ended(self, model: str, *, limit: int = 50, continuation: str | None = None) -> Page:
        """Run-ended records, newest first, in O(page)."""
        return key_range_page(self.table, model, ENDED, ENDED + END, limit, continuation, RunEnded.from_entity)
