"""Tables written by earlier releases are migrated in place, once, when the app starts.

Layout 1 had no index rows: runs were listed by reading a model's whole partition, the sweeper
filtered every run by status, blob events listed every model, promotions and skipped blobs were
read whole. Layout 2 added index rows beside the same rows, which keep their keys and shape, and
kept a status index row (`s~<status>~...`) for every status, moved with each status change.
Layout 3 (the docstrings of `models`, `runs`, `promotions` and `skipped`) keeps status index rows
only for ended statuses (open ones were listed from the `~open` partition), so a run's working
steps write no index row. Layout 4 (`runs`) moves the open rows into the model's partition (`u~`,
written and removed in the run's own transactions) and gives the time and status rows a copy of the run.

From layout 1, migration writes the missing index rows of models, promotions and skipped blobs. From
layouts 1 to 3 it reads every run row once and upserts its index rows as this layout has them (with
copies; an open row for each run not ended), in transactions of up to 100 per partition, then deletes
layout 2's status rows of open statuses and layout 3's `~open` partition (neither is read by this
release, so deleting them is only tidying). Then it records the layout in the models table
(`RowKey = ~layout`). It is safe to run twice or in two processes at once, and code of this release
already running beside it keeps working (a status move or an ending tolerates a missing index row; a
listing point-reads a row without a terminal copy and drops one that no longer matches its run; the
sweeper frees a model whose run ended without its open row and clears an open row whose run ended).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import TableClient, UpdateMode

from .model_rows import PARTITION, ModelState
from .models import MODEL_ROWS_END, prefix_row
from .promotions import Promotion
from .runs import BY_STATUS, END, OPEN_PARTITION, Run, index_rows, is_open_status_row
from .skipped import Skipped
from .tables import TransactionFailed, transact_all

if TYPE_CHECKING:
    from .context import Context

log = logging.getLogger("retrain")

LAYOUT = 4
LAYOUT_KEY = "~layout"


def layout_of(ctx: "Context") -> int:
    try:
        return int(ctx.models.table.get_entity(PARTITION, LAYOUT_KEY).get("Version", 1))
    except ResourceNotFoundError:
        return 1


def ensure_layout(ctx: "Context") -> bool:
    """Migrate if the tables are older than this release (one read when they are not); True if it migrated."""
    layout = layout_of(ctx)
    if layout >= LAYOUT:
        return False
    counts = migrate(ctx, layout)
    ctx.models.table.upsert_entity({"PartitionKey": PARTITION, "RowKey": LAYOUT_KEY, "Version": LAYOUT},
                                   mode=UpdateMode.REPLACE)
    if any(counts.values()):
        log.warning("tables migrated to layout %d: %s", LAYOUT,
                    ", ".join(f"{n} {what}" for what, n in counts.items()))
    return True


def migrate(ctx: "Context", layout: int = 1) -> dict[str, int]:
    """Bring tables of `layout` to this one: the index rows layout 1 lacks, the runs' rows of this layout, then
    no open status rows and no `~open` partition (idempotent)."""
    counts = {"model prefixes": 0, "runs": 0, "promotions": 0, "skipped blobs": 0, "open status rows": 0,
              "layout 3 open rows": 0}
    if layout < 2:
        _add_index_rows(ctx, counts)
    if layout < 4:
        counts["runs"] = _write_run_rows(ctx.runs.table)
    counts["open status rows"] = _delete_all(ctx.runs.table, [
        (e["PartitionKey"], e["RowKey"]) for e in ctx.runs.table.query_entities(
            "RowKey ge @low and RowKey lt @high", parameters={"low": BY_STATUS, "high": BY_STATUS + END},
            select=["PartitionKey", "RowKey"]) if is_open_status_row(e["RowKey"])])
    counts["layout 3 open rows"] = _delete_all(ctx.runs.table, [
        (e["PartitionKey"], e["RowKey"]) for e in ctx.runs.table.query_entities(
            "PartitionKey eq @pk", parameters={"pk": OPEN_PARTITION}, select=["PartitionKey", "RowKey"])])
    return counts


def _write_run_rows(table: TableClient) -> int:
    """Upsert every run's index rows as this layout has them (a one-off read of the run rows); how many runs."""
    operations, runs = [], 0
    for entity in table.list_entities():
        if "~" in entity["RowKey"] or entity["PartitionKey"].startswith("~"):
            continue  # an index row, a record or an outbox row
        operations += [("upsert", row) for row in index_rows(Run.from_entity(entity))]
        runs += 1
    transact_all(table, operations)
    return runs


def _delete_all(table: TableClient, rows: list[tuple[str, str]]) -> int:
    """Delete rows no reader of this layout reads, batched; one by one if another instance deleted some first."""
    try:
        transact_all(table, (("delete", {"PartitionKey": pk, "RowKey": rk}) for pk, rk in rows))
    except TransactionFailed:
        for pk, rk in rows:
            try:
                table.delete_entity(pk, rk)
            except ResourceNotFoundError:
                pass
    return len(rows)


def _add_index_rows(ctx: "Context", counts: dict[str, int]) -> None:
    """Write the model prefix, promotion and skipped-blob index rows layout 1 lacked (idempotent upserts)."""
    models = ctx.models.table.query_entities("PartitionKey eq @pk and RowKey lt @end",
                                             parameters={"pk": PARTITION, "end": MODEL_ROWS_END})
    prefix_ops = []
    for entity in models:
        try:
            state = ModelState.from_entity(entity)
        except Exception:  # a row that no longer validates has no usable prefix; it is shown as broken
            continue
        prefix_ops.append(("upsert", prefix_row(state.definition.data_prefix, state.name)))
    counts["model prefixes"] = transact_all(ctx.models.table, prefix_ops)

    promotion_ops = []
    for entity in ctx.promotions.table.list_entities():
        if not entity["RowKey"].startswith("t~"):
            promotion_ops.append(("upsert", Promotion.from_entity(entity).index_entity()))
    counts["promotions"] = transact_all(ctx.promotions.table, promotion_ops)

    skipped_ops = []
    for entity in ctx.skipped.table.list_entities():
        if not entity["RowKey"].startswith("t~"):
            skipped_ops.append(("upsert", Skipped.from_entity(entity).index_entity()))
    counts["skipped blobs"] = transact_all(ctx.skipped.table, skipped_ops)
