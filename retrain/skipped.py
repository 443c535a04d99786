"""Blobs the trigger could not attribute to any model: recorded once per ETag so a user can find them.

PartitionKey = container; `RowKey = <sha256(name, ETag)>` is the insert-only dedup row and
`t~<inverted time>~<hash>` a copy for newest-first pages, written in the same transaction.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from azure.data.tables import TableClient

from .tables import Page, insert_once, inverted, key_range_page

TIME = "t~"


@dataclass(frozen=True)
class Skipped:
    container: str
    name: str  # as the trigger saw it (control characters escaped)
    etag: str
    reason: str
    at: str

    @property
    def key(self) -> str:
        return hashlib.sha256(f"{self.name}\n{self.etag}".encode()).hexdigest()[:32]

    def to_entity(self) -> dict:
        return {"PartitionKey": self.container, "RowKey": self.key, "Name": self.name, "Etag": self.etag,
                "Reason": self.reason[:2000], "At": self.at}

    def index_entity(self) -> dict:
        return {**self.to_entity(), "RowKey": f"{TIME}{inverted(self.at)}~{self.key}"}

    @classmethod
    def from_entity(cls, e: dict) -> "Skipped":
        return cls(e["PartitionKey"], e["Name"], e["Etag"], e["Reason"], e["At"])

    def to_public(self) -> dict:
        return {"container": self.container, "name": self.name, "etag": self.etag, "reason": self.reason,
                "at": self.at}


class SkippedLog:
    """Insert-only per (blob name, ETag): a redelivered trigger records nothing new."""

    def __init__(self, table: TableClient, container: str = "training-data"):
        self.table = table
        self.container = container  # the watched container: the only one skips are recorded for

    def record(self, skipped: Skipped) -> bool:
        """True if this call recorded it, False if it was already recorded."""
        return insert_once(self.table, skipped.to_entity(), skipped.index_entity())

    def page(self, *, limit: int = 100, continuation: str | None = None) -> Page:
        """Newest first, one request per page."""
        return key_range_page(self.table, self.container, TIME, TIME + "~", limit, continuation,
                              Skipped.from_entity)

    def recent(self, limit: int = 100) -> list[Skipped]:
        return self.page(limit=limit).items
