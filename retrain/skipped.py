"""Blobs the trigger could not attribute to any model: recorded once per ETag so a user can find them."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from azure.data.tables import TableClient, UpdateMode


@dataclass(frozen=True)
class Skipped:
    container: str
    name: str  # as the trigger saw it (control characters escaped)
    etag: str
    reason: str
    at: str

    def to_public(self) -> dict:
        return {"container": self.container, "name": self.name, "etag": self.etag, "reason": self.reason,
                "at": self.at}


class SkippedLog:
    """Upserts keyed by (blob name, ETag): a redelivered trigger records nothing new."""

    def __init__(self, table: TableClient):
        self.table = table

    def record(self, skipped: Skipped) -> None:
        key = hashlib.sha256(f"{skipped.name}\n{skipped.etag}".encode()).hexdigest()[:32]
        self.table.upsert_entity({"PartitionKey": skipped.container, "RowKey": key, "Name": skipped.name,
                                  "Etag": skipped.etag, "Reason": skipped.reason[:2000], "At": skipped.at},
                                 mode=UpdateMode.REPLACE)

    def recent(self, limit: int = 100) -> list[Skipped]:
        rows = [Skipped(e["PartitionKey"], e["Name"], e["Etag"], e["Reason"], e["At"])
                for e in self.table.list_entities()]
        return sorted(rows, key=lambda s: s.at, reverse=True)[:limit]
