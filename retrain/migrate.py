"""Tables written by earlier releases are migrated in place, once, when the app starts.

Layout 1 had no index rows: runs were listed by reading a model's whole partition, the sweeper
filtered every run by status, blob events listed every model, promotions and skipped blobs were
read whole. Layout 2 added index rows beside the same rows, which keep their keys and shape, and
kept a status index row (`s~<status>~...`) for every status, moved with each status change.
Layout 3 (the docstrings of `models`, `runs`, `promotions` and `skipped`) keeps status index rows
only for ended statuses (open ones are listed from the `~open` partition), so a run's working
steps write no index row.

From layout 1, migration writes the missing index rows with idempotent upserts, in transactions of
up to 100 per partition; from layout 2, it deletes the status rows of open statuses (never read by
this release, so deleting them is only tidying). Then it records the layout in the models table
(`RowKey = ~layout`). It is safe to run twice or in two processes at once, and code of this release
already running beside it keeps working (a status move tolerates a missing index row; a listing
drops an index row that no longer matches its run).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import TableClient, UpdateMode

from .model_rows import PARTITION, ModelState
from .models import MODEL_ROWS_END, prefix_row
from .promotions import Promotion
from .runs import BY_STATUS, END, OPEN, Run, index_rows, is_open_status_row, open_key
from .skipped import Skipped
from .tables import TransactionFailed, transact_all

if TYPE_CHECKING:
    from .context import Context

log = logging.getLogger("retrain")

LAYOUT = 3
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
    """Bring tables of `layout` to this one: the index rows layout 1 lacks, then no open status rows (idempotent)."""
    counts = {"model prefixes": 0, "runs": 0, "promotions": 0, "skipped blobs": 0, "open status rows": 0}
    if layout < 2:
        _add_index_rows(ctx, counts)
    counts["open status rows"] = _drop_open_status_rows(ctx.runs.table)
    return counts


def _drop_open_status_rows(table: TableClient) -> int:
    """Delete layout 2's status rows of open statuses (a one-off scan of the status rows, keys only)."""
    rows = [(e["PartitionKey"], e["RowKey"]) for e in table.query_entities(
        "RowKey ge @low and RowKey lt @high", parameters={"low": BY_STATUS, "high": BY_STATUS + END},
        select=["PartitionKey", "RowKey"]) if is_open_status_row(e["RowKey"])]
    try:
        transact_all(table, (("delete", {"PartitionKey": pk, "RowKey": rk}) for pk, rk in rows))
    except TransactionFailed:  # another instance deleted some first, or the run moved on: one by one
        for pk, rk in rows:
            try:
                table.delete_entity(pk, rk)
            except ResourceNotFoundError:
                pass
    return len(rows)


def _add_index_rows(ctx: "Context", counts: dict[str, int]) -> None:
    """Write every index row for the rows layout 1 stored (idempotent upserts)."""
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

    run_ops, open_ops = [], []
    for entity in ctx.runs.table.list_entities():
        if "~" in entity["RowKey"] or entity["PartitionKey"].startswith("~"):
            continue  # an index row (layout 2 already)
        run = Run.from_entity(entity)
        run_ops += [("upsert", row) for row in index_rows(run)]
        if not run.terminal:
            open_ops.append(("upsert", {"PartitionKey": OPEN, "RowKey": open_key(run.model, run.run_id),
                                        "Model": run.model, "RunId": run.run_id}))
        counts["runs"] += 1
    transact_all(ctx.runs.table, run_ops + open_ops)

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
