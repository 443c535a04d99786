"""Who did what to a model, append-only: every approve, reject, cancel, retry, rollback and model change.

The `{prefix}audit` table: PartitionKey = model, `RowKey = <inverted milliseconds, 13 digits>-<8 hex>`, so
a partition reads newest first and a page is one key-range query. The previous release wrote the same
keys (it only read the first page), so its rows are read as they are: nothing to migrate.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime

from azure.data.tables import TableClient

from .principal import Actor
from .tables import Page, key_range_page

_NEVER = 10 ** 13  # inverted milliseconds keep the newest row first in the partition
_LOW, _HIGH = "0", ":"  # every key starts with a digit (":" sorts right after "9")


@dataclass(frozen=True)
class AuditEntry:
    model: str
    action: str  # "define", "approve", "reject", "cancel", "retry", "rollback"
    actor: Actor
    at: str
    target: str = ""  # the run id, or the promotion id of a rollback
    key: str = ""

    def to_public(self) -> dict:
        return {"action": self.action, "at": self.at, "target": self.target or None, "by": self.actor.to_record()}


class AuditLog:
    """The `{prefix}audit` table, one partition per model, newest first."""

    def __init__(self, table: TableClient):
        self.table = table

    def record(self, model: str, action: str, actor: Actor, at: datetime, target: str = "") -> None:
        key = f"{_NEVER - int(at.timestamp() * 1000):013d}-{uuid.uuid4().hex[:8]}"
        self.table.create_entity({"PartitionKey": model, "RowKey": key, "Action": action, "At": at.isoformat(),
                                  "Target": target, "Actor": json.dumps(actor.to_record(), separators=(",", ":"))})

    def page(self, model: str, *, limit: int = 100, continuation: str | None = None) -> Page:
        """Newest first, `limit` entries in one request, whatever the length of the log."""
        return key_range_page(self.table, model, _LOW, _HIGH, limit, continuation, _entry)

    def recent(self, model: str, limit: int = 100) -> list[AuditEntry]:
        return self.page(model, limit=limit).items


def _entry(row: dict) -> AuditEntry:
    actor = json.loads(row.get("Actor") or "{}")
    return AuditEntry(row["PartitionKey"], row.get("Action", ""), Actor(
        actor.get("kind", ""), actor.get("id", ""), actor.get("name", ""), actor.get("provider", ""),
        frozenset(actor.get("roles") or ()), actor.get("note", "")), row.get("At", ""), row.get("Target", ""),
        row["RowKey"])
