"""Runs: one row per retraining attempt on one piece of data, with its status, step times and decision."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import datetime, timezone
from enum import Enum
from typing import Any, Iterator

from azure.core import MatchConditions
from azure.core.exceptions import (ResourceExistsError, ResourceModifiedError,
                                   ResourceNotFoundError)
from azure.data.tables import TableClient, UpdateMode

from .errors import ConcurrentUpdate, UnknownRun
from .etags import canonical

MAX_TEXT = 8000  # characters kept of a service's error text (a table property holds ~32K)


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


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


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
    etag: str | None = None

    @property
    def terminal(self) -> bool:
        return self.status.terminal

    def moved(self, status: Status, reason: str, *, at: datetime | None = None, **changes) -> "Run":
        """The same run in a new status, with the time it got there."""
        now = iso(at or utcnow())
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
                  "ApprovalExpiresAt": self.approval_expires_at, "DecidedBy": self.decided_by}
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
                   etag=e.metadata.get("etag"), **blobs)

    def to_public(self) -> dict:
        """The run as the HTTP API shows it (no ETag, nothing secret is ever in a run)."""
        body = asdict(self)
        body.pop("etag")
        body["trigger"] = self.trigger.value
        body["status"] = self.status.value
        body["terminal"] = self.terminal
        return body


def _camel(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))


_LIST_FIELDS = [f.name for f in fields(Run)]


class RunStore:
    """The runs table: insert-only creation (dedup) and If-Match writes."""

    def __init__(self, table: TableClient):
        self.table = table

    def create(self, run: Run) -> tuple[Run, bool]:
        """Insert the run, or return the one already stored under its id; (run, created)."""
        try:
            meta = self.table.create_entity(run.to_entity())
            return replace(run, etag=meta.get("etag")), True
        except ResourceExistsError:
            return self.get(run.model, run.run_id), False

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

    def save(self, run: Run) -> Run:
        """Write with If-Match on the ETag it was read at; ConcurrentUpdate if someone else wrote first."""
        run = replace(run, updated_at=iso(utcnow()))
        try:
            meta = self.table.update_entity(run.to_entity(), mode=UpdateMode.REPLACE, etag=run.etag,
                                            match_condition=MatchConditions.IfNotModified)
        except (ResourceModifiedError, ResourceNotFoundError):
            raise ConcurrentUpdate(f"run {run.run_id} of {run.model!r} changed since it was read") from None
        return replace(run, etag=meta.get("etag"))

    def list(self, model: str, *, limit: int = 50, status: Status | None = None) -> list[Run]:
        """Newest first."""
        query, params = "PartitionKey eq @model", {"model": model}
        if status:
            query += " and Status eq @status"
            params["status"] = status.value
        runs = [Run.from_entity(e) for e in self.table.query_entities(query, parameters=params)]
        runs.sort(key=lambda r: r.created_at, reverse=True)
        return runs[:limit]

    def unfinished(self) -> Iterator[Run]:
        """Every non-terminal run of every model (the sweeper's worklist)."""
        open_states = [s for s in Status if not s.terminal]
        query = " or ".join(f"Status eq @s{i}" for i in range(len(open_states)))
        params = {f"s{i}": s.value for i, s in enumerate(open_states)}
        for entity in self.table.query_entities(query, parameters=params):
            yield Run.from_entity(entity)
