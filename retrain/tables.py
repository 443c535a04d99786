"""Small Table-storage helpers the stores share: entity-group transactions and O(page) newest-first pages."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Iterable

from azure.core.exceptions import HttpResponseError
from azure.data.tables import TableClient, TableTransactionError

from .errors import BadRequest

MAX_BATCH = 100  # operations per entity-group transaction
_EPOCH_END = datetime(9999, 12, 31, tzinfo=timezone.utc)


class TransactionFailed(Exception):
    """One operation of a transaction failed (nothing was written); `index` and `code` say which and why."""

    def __init__(self, index: int, code: str, message: str):
        self.index, self.code = index, code
        super().__init__(f"operation {index}: {code}: {message[:300]}")

    @property
    def exists(self) -> bool:
        return "alreadyexists" in self.code.lower()

    @property
    def missing(self) -> bool:
        return "notfound" in self.code.lower()


def transact(table: TableClient, operations: list) -> list[dict]:
    """Submit one entity-group transaction (one request); TransactionFailed names the operation that failed."""
    try:
        return list(table.submit_transaction(operations))
    except TableTransactionError as e:
        raise TransactionFailed(e.index, str(e.error_code or ""), e.message or str(e)) from None


def insert_once(table: TableClient, row: dict, *others: dict) -> bool:
    """Insert-only `row` plus rows that go with it, atomically; False (nothing written) if `row` exists."""
    try:
        transact(table, [("create", row), *(("upsert", other) for other in others)])
        return True
    except TransactionFailed as e:
        if e.index == 0 and e.exists:
            return False
        raise


def transact_all(table: TableClient, operations: Iterable) -> int:
    """Batched upserts and the like, grouped by partition in transactions of up to 100 (seeding, migration)."""
    by_partition: dict[str, list] = {}
    done = 0
    for op in operations:
        group = by_partition.setdefault(op[1]["PartitionKey"], [])
        group.append(op)
        if len(group) == MAX_BATCH:
            done += len(transact(table, group))
            group.clear()
    for group in by_partition.values():
        if group:
            done += len(transact(table, group))
    return done


def inverted(moment: str) -> str:
    """A RowKey fragment that sorts newest first: milliseconds until the year 9999, zero-padded."""
    at = datetime.fromisoformat(moment) if moment else _EPOCH_END
    return f"{int((_EPOCH_END - at).total_seconds() * 1000):015d}"


@dataclass(frozen=True)
class Page:
    """One page of a listing and the token for the next one (None on the last page)."""

    items: list[Any]
    continuation: str | None


def encode_token(row_key: str) -> str:
    return base64.urlsafe_b64encode(row_key.encode()).decode().rstrip("=")


def decode_token(token: str, low: str, high: str) -> str:
    """The RowKey a continuation token stands for; BadRequest if it is not one of this listing's."""
    try:
        key = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        raise BadRequest("continuation is not a token this API gave out") from None
    if not low <= key < high:
        raise BadRequest("continuation belongs to another listing")
    return key


def key_range_page(table: TableClient, partition: str, low: str, high: str, limit: int,
                   continuation: str | None, convert: Callable[[dict], Any], *,
                   select: list[str] | None = None) -> Page:
    """Rows with low <= RowKey < high in one partition, in key order, one request: `limit` rows and a token."""
    after = decode_token(continuation, low, high) if continuation else None
    query = "PartitionKey eq @pk and RowKey " + ("gt @low" if after else "ge @low") + " and RowKey lt @high"
    params = {"pk": partition, "low": after or low, "high": high}
    pages = table.query_entities(query, parameters=params, results_per_page=limit + 1, select=select).by_page()
    rows = list(next(pages, []))
    # The service may end a response early (its size limits; rows that carry a run are bigger): more follow.
    more = len(rows) > limit or (bool(rows) and pages.continuation_token is not None)
    rows = rows[:limit]
    token = encode_token(rows[-1]["RowKey"]) if more and rows else None
    return Page([convert(e) for e in rows], token)


def storage_failure(e: HttpResponseError) -> str:
    """A storage error told briefly, without request details (which may carry a SAS)."""
    return f"{type(e).__name__} {getattr(e, 'status_code', '') or ''} {getattr(e, 'error_code', '') or ''}".strip()
