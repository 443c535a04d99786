"""The event model: CloudEvents 1.0 with a stable id, `source` the model, `subject` the run, and thin data."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from ..runs import Run, Status

SPEC_VERSION = "1.0"
MAX_EVENT = 30000  # characters of one event kept in a table property


class EventType(str, Enum):
    PROMOTED = "retrain.run.promoted"
    REJECTED = "retrain.run.rejected"
    FAILED = "retrain.run.failed"
    CANCELLED = "retrain.run.cancelled"
    SUPERSEDED = "retrain.run.superseded"
    AWAITING_APPROVAL = "retrain.run.awaiting_approval"
    ROLLED_BACK = "retrain.model.rolled_back"
    TEST = "retrain.test"  # sent only by the "send test event" action


RUN_EVENTS = {Status.PROMOTED: EventType.PROMOTED, Status.REJECTED: EventType.REJECTED,
              Status.FAILED: EventType.FAILED, Status.CANCELLED: EventType.CANCELLED,
              Status.SUPERSEDED: EventType.SUPERSEDED, Status.AWAITING_APPROVAL: EventType.AWAITING_APPROVAL}


@dataclass(frozen=True)
class Event:
    """One CloudEvent; `id` is the same on every delivery and retry (receivers dedupe on it)."""

    id: str
    type: EventType
    source: str  # /models/{model}
    subject: str  # runs/{run}
    time: str
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def model(self) -> str | None:
        return self.source.removeprefix("/models/") if self.source.startswith("/models/") else None

    def to_json(self) -> dict[str, Any]:
        return {"specversion": SPEC_VERSION, "id": self.id, "type": self.type.value, "source": self.source,
                "subject": self.subject, "time": self.time, "datacontenttype": "application/json",
                "data": self.data}

    def body(self) -> str:
        """The exact bytes sent and signed."""
        return json.dumps(self.to_json(), separators=(",", ":"), sort_keys=True)

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> "Event":
        return cls(body["id"], EventType(body["type"]), body["source"], body["subject"], body["time"],
                   body.get("data") or {})


def event_id(*parts: str) -> str:
    """Stable: the same state change always gives the same id."""
    return "evt_" + hashlib.sha256("\n".join(parts).encode()).hexdigest()[:32]


def links(model: str, run_id: str | None = None) -> dict[str, str]:
    if run_id is None:
        return {"api": f"/api/models/{model}", "dashboard": f"/api/dashboard/models/{model}"}
    return {"api": f"/api/models/{model}/runs/{run_id}", "dashboard": f"/api/dashboard/models/{model}/runs/{run_id}"}


def run_event(run: Run) -> Event | None:
    """The event a run's current status announces (terminal or awaiting approval); None for the others."""
    kind = RUN_EVENTS.get(run.status)
    if kind is None:
        return None
    at = run.ended_at if run.terminal else run.step_times.get(run.status.value, run.updated_at)
    decision = run.decision or {}
    data = {"model": run.model, "run_id": run.run_id, "status": run.status.value, "reason": run.reason,
            "trigger": run.trigger.value, "data": run.data.path, "created_at": run.created_at,
            "decision": {"passed": decision.get("passed"), "summary": decision.get("summary", "")} if decision
            else None, "metrics": dict(run.metrics), "decided_by": run.decided_by or None,
            "trace_id": run.trace_id or None, "links": links(run.model, run.run_id)}
    if run.status is Status.AWAITING_APPROVAL:
        data["approval_expires_at"] = run.approval_expires_at
    return Event(event_id(run.model, run.run_id, run.status.value, at), kind, f"/models/{run.model}", f"runs/{run.run_id}",
                 at, data)


def rollback_event(model: str, key: str, from_run: str | None, to_run: str, at: str, by: str,
                   note: str) -> Event:
    data = {"model": model, "from_run": from_run, "to_run": to_run, "by": by, "note": note,
            "reason": f"rolled back from run {from_run} to run {to_run} by {by}", "links": links(model)}
    return Event(event_id(model, "rollback", key), EventType.ROLLED_BACK, f"/models/{model}", f"runs/{to_run}", at, data)


def test_event(subscription: str, at: str, nonce: str) -> Event:
    data = {"subscription": subscription, "message": "a test event sent on request; nothing happened to a model"}
    return Event(event_id("test", subscription, at, nonce), EventType.TEST, "/subscriptions", subscription,
                 at, data)
