"""Tables written by the previous release (layout 1) are migrated in place, once, when the app starts.

Layout 1 had no index rows: runs were listed by reading a model's whole partition, the sweeper
filtered every run by status, blob events listed every model, promotions and skipped blobs were
read whole. Layout 2 (the docstrings of `models`, `runs`, `promotions` and `skipped`) adds index rows
beside the same rows, which keep their keys and shape. Migration writes the missing index rows
with idempotent upserts, in transactions of up to 100 per partition, then records the layout in the
models table (`RowKey = ~layout`). It is safe to run twice or in two processes at once, and code of
this release already running beside it keeps working (a status move tolerates a missing index row;
a listing drops an index row that no longer matches its run).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import UpdateMode

from .model_rows import PARTITION, ModelState
from .models import MODEL_ROWS_END, prefix_row
from .promotions import Promotion
from .runs import OPEN, Run, index_rows, open_key
from .skipped import Skipped
from .tables import transact_all

if TYPE_CHECKING:
    from .context import Context

log = logging.getLogger("retrain")

LAYOUT = 2
LAYOUT_KEY = "~layout"


def layout_of(ctx: "Context") -> int:
    try:
        return int(ctx.models.table.get_entity(PARTITION, LAYOUT_KEY).get("Version", 1))
    except ResourceNotFoundError:
        return 1


def ensure_layout(ctx: "Context") -> bool:
    """Migrate if the tables are older than this release (one read when they are not); True if it migrated."""
    if layout_of(ctx) >= LAYOUT:
        return False
    counts = migrate(ctx)
    ctx.models.table.upsert_entity({"PartitionKey": PARTITION, "RowKey": LAYOUT_KEY, "Version": LAYOUT},
                                   mode=UpdateMode.REPLACE)
    if any(counts.values()):
        log.warning("tables migrated to layout %d: %s", LAYOUT,
                    ", ".join(f"{n} {what}" for what, n in counts.items()))
    return True


def migrate(ctx: "Context") -> dict[str, int]:
    """Write every index row layout 2 needs for the rows already stored (idempotent)."""
    counts = {"model prefixes": 0, "runs": 0, "promotions": 0, "skipped blobs": 0}

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
    return counts
