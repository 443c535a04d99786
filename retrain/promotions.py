"""Append-only history of what served when: every promotion and rollback, per model."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import Enum

from azure.core.exceptions import ResourceExistsError
from azure.data.tables import TableClient

from .locations import BlobLocation


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
    location: BlobLocation
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

    @classmethod
    def from_entity(cls, e: dict) -> "Promotion":
        return cls(e["PartitionKey"], e["RowKey"], e.get("FromRun") or None, e["ToRun"],
                   BlobLocation.from_record(json.loads(e["Location"])), Reason(e["Reason"]), e["At"],
                   e.get("By", ""), e.get("Note", ""), json.loads(e.get("Endpoints") or "{}"),
                   json.loads(e.get("Actor") or "{}"))

    def to_public(self) -> dict:
        return {"id": self.key, "from_run": self.from_run, "to_run": self.to_run, "model_uri": self.location.uri,
                "reason": self.reason.value, "at": self.at, "by": self.by, "note": self.note,
                "endpoints": self.endpoints, "actor": self.actor or None}


class PromotionLog:
    """Insert-only: a redelivered promotion finds its row already there and appends nothing."""

    def __init__(self, table: TableClient):
        self.table = table

    def append(self, promotion: Promotion) -> bool:
        """True if this call added the row, False if it was already recorded."""
        try:
            self.table.create_entity(promotion.to_entity())
            return True
        except ResourceExistsError:
            return False

    def history(self, model: str) -> list[Promotion]:
        """Newest first."""
        rows = self.table.query_entities("PartitionKey eq @model", parameters={"model": model})
        return sorted((Promotion.from_entity(e) for e in rows), key=lambda p: p.at, reverse=True)
