"""The outbox: an event row written in the transaction of the change it announces, then handed to the sender.

Rows live beside the state they announce (`o~<event id>` in the model's partition of the runs or
promotions table), so the change and its event are one entity-group transaction: a change that
did not happen has no event, and one that did always has its row until the sender has fanned it out.
After the write, the change's writer asks the sender to dispatch it; if that message is lost (a
crash in between), the sweeper finds the row and dispatches it.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Iterator

from azure.core.exceptions import AzureError

from ..runs import Run
from .model import MAX_EVENT, Event, run_event

if TYPE_CHECKING:
    from ..context import Context

log = logging.getLogger("retrain")
OUTBOX = "o~"
RUNS, PROMOTIONS = "runs", "promotions"  # the tables holding outbox rows


def row(model: str, event: Event) -> dict:
    return {"PartitionKey": model, "RowKey": f"{OUTBOX}{event.id}", "Event": event.body()[:MAX_EVENT]}


def for_run(run: Run) -> list[dict]:
    """The outbox rows of a run written as it is now: its status's event, if that status announces one."""
    event = run_event(run)
    return [row(run.model, event)] if event else []


def table_of(ctx: "Context", source: str):
    return {RUNS: ctx.runs.table, PROMOTIONS: ctx.promotions.table}[source]


def announce(ctx: "Context", model: str, event: Event | None, source: str = RUNS) -> None:
    """Ask the sender to dispatch an event just written; a lost message is made up by the sweeper."""
    if event is None:
        return
    from .sender import dispatch_message
    try:
        ctx.event_queue.send(dispatch_message(source, model, f"{OUTBOX}{event.id}"))
    except AzureError as e:
        log.warning("event %s of %r written but not handed to the sender (%s); the sweeper will send it",
                    event.id, model, type(e).__name__)


def read(ctx: "Context", source: str, model: str, key: str) -> Event | None:
    """The outbox row's event, None when it was dispatched already."""
    from azure.core.exceptions import ResourceNotFoundError
    try:
        entity = table_of(ctx, source).get_entity(model, key)
    except ResourceNotFoundError:
        return None
    return Event.from_json(json.loads(entity["Event"]))


def remove(ctx: "Context", source: str, model: str, key: str) -> None:
    from azure.core.exceptions import ResourceNotFoundError
    try:
        table_of(ctx, source).delete_entity(model, key)
    except ResourceNotFoundError:
        pass


def waiting(ctx: "Context", model: str) -> Iterator[tuple[str, str, object]]:
    """(source, row key, when written) of every outbox row of a model: one query per table."""
    for source in (RUNS, PROMOTIONS):
        rows = table_of(ctx, source).query_entities(
            "PartitionKey eq @pk and RowKey ge @low and RowKey lt @high",
            parameters={"pk": model, "low": OUTBOX, "high": OUTBOX + "~"}, select=["RowKey"])
        for entity in rows:
            yield source, entity["RowKey"], entity.metadata.get("timestamp")
