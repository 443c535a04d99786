"""State at scale for tests and benchmarks/scale_bench.py: a context that counts its storage requests, and seeding.

Seeding writes rows in this release's layout through its own row builders (`Run.to_entity`,
`runs.index_rows`, `Promotion.to_entity`/`index_entity`), insert-only, in entity-group transactions of 100
(Azurite's upsert costs more as a partition grows than its insert does).
"""

from __future__ import annotations

import threading
from collections import Counter
from datetime import datetime, timedelta, timezone
from typing import Mapping
from urllib.parse import unquote, urlsplit

from azure.core.pipeline.transport import RequestsTransport

from retrain.context import Context
from retrain.locations import BlobLocation
from retrain.promotions import Promotion, Reason
from retrain.runs import DataRef, Run, RunEnded, Status, Trigger, index_rows, iso
from retrain.settings import Settings
from retrain.storage import Connection, Storage
from retrain.tables import transact_all

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


class RequestCount:
    """Storage requests by service ("table", "queue", "blob"), every attempt, as sent by the SDK transport.

    Table requests are also counted by table and shape, `("table", <table>, "query" | "read" | "write")`:
    what Azurite's cost per request depends on (scale_bench's floor).
    """

    def __init__(self):
        self.lock = threading.Lock()
        self.by_kind: Counter = Counter()
        self.ports: dict[int, str] = {}

    def record(self, method: str, url: str) -> None:
        parts = urlsplit(url)
        kind = self.ports.get(parts.port, "other")
        with self.lock:
            self.by_kind[kind] += 1
            if kind == "table":
                self.by_kind[("table", *table_request_shape(method, parts.path))] += 1

    def snapshot(self) -> Counter:
        with self.lock:
            return Counter(self.by_kind)


class CountingTransport(RequestsTransport):
    def __init__(self, count: RequestCount, **kwargs):
        super().__init__(**kwargs)
        self.count = count

    def send(self, request, **kwargs):  # noqa: D102
        self.count.record(request.method, request.url)
        return super().send(request, **kwargs)


def table_request_shape(method: str, path: str) -> tuple[str, str]:
    """(table, shape) of a Table service request: a query, a point read (both keys in the path), or a write."""
    resource = unquote(path).strip("/").split("/")[-1]
    table, _, keys = resource.partition("(")
    if method != "GET":
        return table, "write"
    return table, "read" if "RowKey=" in keys else "query"


def counting_context(env: Mapping[str, str], **kw) -> tuple[Context, RequestCount]:
    """A Context (tables etc. created) whose every storage request is counted, by service."""
    settings = Settings.from_env(env)
    connection = Connection.from_env(settings.connection, env)
    count = RequestCount()
    storage = Storage(connection, transport=lambda: CountingTransport(count))
    for kind, client in (("blob", storage.blobs), ("queue", storage.queues), ("table", storage.tables)):
        count.ports[urlsplit(client.url).port] = kind
    return Context(settings, storage, env, **kw).ensure(), count


def finished_run(model: str, i: int, *, status: Status = Status.REJECTED, at: datetime | None = None) -> Run:
    """The i-th run of a model's history, ended `status`, created `i` minutes after T0."""
    created = at or T0 + timedelta(minutes=i)
    data = DataRef("training-data", f"{model}/{i:07d}.csv", f'"0x{i:012X}"', 1000 + i)
    times = {Status.QUEUED.value: iso(created), status.value: iso(created + timedelta(seconds=30))}
    return Run(model=model, run_id=f"r{i:07d}{model.replace('-', '')[:8]}", trigger=Trigger.BLOB, data=data,
               status=status, reason=f"seeded {status.value}", created_at=iso(created),
               deadline=iso(created + timedelta(hours=2)), updated_at=iso(created + timedelta(seconds=30)),
               step_times=times, stored_status=status)


def seed_runs(ctx: Context, runs: list[Run], *, records: bool = True, index: bool = True) -> None:
    """Rows as the chain would have left them (run, time and status index, run-ended record), batched, new rows.

    `records=False` leaves out the run-ended records, `index=False` the index rows too (history no
    listing reaches: fewer rows to seed).
    """
    operations = []
    for run in runs:
        operations.append(("create", run.to_entity()))
        operations += [("create", row) for row in index_rows(run)] if index else []
        if run.terminal and records:
            operations.append(("create", RunEnded.of(run).to_entity()))
    transact_all(ctx.runs.table, operations)


def seed_promotions(ctx: Context, model: str, count: int) -> None:
    location = BlobLocation(ctx.storage.blob_base, f"retrain-outputs/{model}/x/1/model.ilearner")
    operations = []
    for i in range(count):
        promotion = Promotion(model, f"p{i:07d}", f"p{i - 1:07d}" if i else None, f"p{i:07d}", location,
                              Reason.POLICY, iso(T0 + timedelta(minutes=i)), "policy", "seeded")
        operations += [("create", promotion.to_entity()), ("create", promotion.index_entity())]
    transact_all(ctx.promotions.table, operations)
