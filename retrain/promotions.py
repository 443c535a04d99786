"""Append-only history of what served when: every promotion and rollback, per model.

PartitionKey = model; `RowKey = <key>` is the insert-only dedup row (a run id, or a rollback's own
key) and `t~<inverted time>~<key>` a copy of it for newest-first pages, written in the same
transaction. Rows are never changed, so the copy never goes stale.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import Enum

from azure.data.tables import TableClient

from .artifacts import Artifact, artifact_from_record
from .tables import Page, insert_once, inverted, key_range_page

TIME = "t~"


class Reason(str, Enum):
    POLICY = "policy"  # the gate passed and no approval was needed
    APPROVAL = "approval"  # the gate passed and a person approved
    ROLLBACK = "rollback"  # a person re-pointed the endpoints to an earlier model


@dataclass(frozen=True)
class Promotion:
    model: str
    key: str  # RowKey: the run id for policy/approval promotions (one per run, ever), unique per rollback
    from_run: str | None
    to_run: str
    location: Artifact
    reason: Reason
    at: str
    by: str = ""
    note: str = ""
    endpoints: dict = field(default_factory=dict)
    actor: dict = field(default_factory=dict)  # a rollback's caller (principal.Actor.to_record()); all in audit

    def to_entity(self) -> dict:
        return {"PartitionKey": self.model, "RowKey": self.key, "FromRun": self.from_run or "",
                "ToRun": self.to_run, "Location": json.dumps(self.location.to_record()),
                "Reason": self.reason.value, "At": self.at, "By": self.by, "Note": self.note[:4000],
                "Endpoints": json.dumps(self.endpoints, separators=(",", ":")),
                "Actor": json.dumps(self.actor, separators=(",", ":"))}

    def index_entity(self) -> dict:
        return {**self.to_entity(), "RowKey": f"{TIME}{inverted(self.at)}~{self.key}", "Key": self.key}

    @classmethod
    def from_entity(cls, e: dict) -> "Promotion":
        return cls(e["PartitionKey"], e.get("Key") or e["RowKey"], e.get("FromRun") or None, e["ToRun"],
                   artifact_from_record(json.loads(e["Location"])), Reason(e["Reason"]), e["At"],
                   e.get("By", ""), e.get("Note", ""), json.loads(e.get("Endpoints") or "{}"),
                   json.loads(e.get("Actor") or "{}"))

    def to_public(self) -> dict:
        from .views import promotion_view  # the API's shape lives with the other public views
        return promotion_view(self)


class PromotionLog:
    """Insert-only: a redelivered promotion finds its row already there and appends nothing."""

    def __init__(self, table: TableClient):
        self.table = table

    def append(self, promotion: Promotion, *, outbox: list[dict] = ()) -> bool:
        """True if this call added the row (with its outbox rows, one transaction), False if it was already recorded."""
        return insert_once(self.table, promotion.to_entity(), promotion.index_entity(), *outbox)

    def page(self, model: str, *, limit: int = 50, continuation: str | None = None) -> Page:
        """Newest first, one request per page, whatever the length of the history."""
        return key_range_page(self.table, model, TIME, TIME + "~", limit, continuation, Promotion.from_entity)

    def history(self, model: str) -> list[Promotion]:
        """The whole history, newest first (rollback looks through it; promotions are few)."""
        rows = self.table.query_entities("PartitionKey eq @pk and RowKey ge @low and RowKey lt @high",
                                         parameters={"pk": model, "low": TIME, "high": TIME + "~"})
        return [Promotion.from_entity(e) for e in rows]
