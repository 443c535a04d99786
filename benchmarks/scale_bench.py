"""What state costs as history and model count grow: each operation's storage requests and wall time.

Run: `.venv/bin/python benchmarks/scale_bench.py [--quick] [--repeat 15] [--history 0,1000,10000]`
(`--quick`: N = 0, 1,000, 10,000, under a minute on 2 shared cores; without it N also reaches
100,000: about 25 minutes on 2 shared cores, nearly all of it seeding 99,000 rows into one partition).

It starts its own in-memory Azurite (`devhost.world.Azurite`) and, for each size, a fresh set of
tables (own prefix) seeded in this release's layout (`tests/state_kit.py`: insert-only entity-group
transactions of 100 rows):

* history axis, N = 0, 1,000, 10,000 (, 100,000) finished runs of one model, older than a constant
  working set that every size has: 50 recent runs (25 promoted, 25 rejected), 5 open runs and 50
  recent promotions (plus N/10 older ones). A page therefore holds the same rows at every size, and
  what grows is only the history behind it. The 1,000 newest runs of that history have their index
  rows (a listing that read past its page would meet them, and its request count would grow from
  N = 0 to 1,000); older ones are stored as their run rows only: no listing reaches them, and each
  insert into an Azurite partition scans the partition, so 100,000 runs with three rows each would
  take hours to seed;
* model axis, M = 1, 100, 1,000 registered models (each with its own data prefix).

Operations, each measured `--repeat` times after one warm-up (median wall time; storage requests
counted at the SDK transport, every attempt, by table and shape: query, point read, write):

* `runs page`: `GET /api/models/{m}/runs?limit=20` (the API handler, views included);
* `runs page by status`: the same with `status=promoted`;
* `sweep`: `retrain.sweeper.sweep` (nothing is overdue: it reads the open runs);
* `owner lookup`: `ModelRegistry.owner_of` for a blob of the last model registered;
* `model GET`: `GET /api/models/{m}`;
* `promotions page`: `GET /api/models/{m}/promotions?limit=20`.

**Azurite's floor.** Azurite answers every query by scanning the table's whole collection and sorting
what matched (`LokiTableMetadataStore.queryTableEntities`: `.chain().where(predicate).sort(...)`),
and a point read by scanning the partition, whatever the keys; Azure Table storage serves key-range
queries and point reads from its index. So at each size the bench also times Azurite's floor on
every table an operation touches: one key-range query that returns nothing and one point read of a
one-row probe (`~~~~floor`, outside every listing's range). Each operation is then shown as its wall
time, its floor (its requests, each at its table's floor, summed: a page's point reads run 8 at once,
so there the sum overstates) and the rest, `net` = wall - floor: the app's own cost plus Azurite's
work on the rows returned. Net ratios are taken against at least 5 ms (below that, noise).

Then the ratio of each figure to its value at the smallest size, and the worst ratios: of storage
requests, the **design figure** (goal: every ratio <= 1.5): on Table storage a key-range query or point
read costs the same whatever the table holds, so requests per operation are what the cost is; of
wall time on Azurite (grows with the table, because of the scan above); and of the wall time net of
the floor. The last line is `worst ratio: <x>`, of storage requests.
"""

from __future__ import annotations

import argparse
import signal
import statistics
import sys
import time
import uuid
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from devhost.world import Azurite  # noqa: E402
from retrain import api, sweeper  # noqa: E402
from retrain.definitions import ModelDefinition  # noqa: E402
from retrain.model_rows import PARTITION as MODEL_PARTITION  # noqa: E402
from retrain.models import prefix_row  # noqa: E402
from retrain.runs import Status, iso  # noqa: E402
from retrain.tables import transact_all  # noqa: E402
from tests.state_kit import T0, counting_context, finished_run, seed_promotions, seed_runs  # noqa: E402

MODEL = "census"
DEFINITION = {"training": {"url": "https://ussouthcentral.services.azureml.net/workspaces/w/services/s",
                           "key_setting": "BENCH_BES_KEY"},
              "policy": {"rules": [{"metric": "AUC", "min": 0.7}]}}


def environment(azurite: Azurite) -> dict[str, str]:
    suffix = uuid.uuid4().hex[:8]
    return {"RETRAIN_STORAGE": azurite.connection_string, "RETRAIN_TABLE_PREFIX": f"s{suffix}",
            "TRAINING_CONTAINER": f"train-{suffix}", "OUTPUT_CONTAINER": f"out-{suffix}"}


INDEXED_HISTORY = 1_000  # the newest runs of the history seeded with their index rows
PROBE_KEY = "~~~~floor"  # the floor's point-read row: after every key any listing reads ("t~", "s~", "~open", ...)
NOISE_MS = 5.0  # net times below this are noise on a shared machine: a net ratio is taken against at least this


def seed_history(ctx, n: int) -> None:
    """N finished runs, then the constant working set (newer than all of them)."""
    old = [finished_run(MODEL, i, status=Status.PROMOTED if i % 10 == 0 else Status.REJECTED) for i in range(n)]
    bare, indexed = old[:max(0, n - INDEXED_HISTORY)], old[max(0, n - INDEXED_HISTORY):]
    start = T0 + timedelta(days=400)
    recent = [finished_run(MODEL, n + i, status=Status.PROMOTED if i % 2 else Status.REJECTED,
                           at=start + timedelta(minutes=i)) for i in range(50)]
    opened = []
    for i in range(5):
        run = finished_run(MODEL, n + 50 + i, status=Status.RUNNING, at=start + timedelta(hours=2, minutes=i))
        opened.append(replace(run, next_action_at=iso(start + timedelta(days=30)),
                              deadline=iso(start + timedelta(days=31)), stored_status=None))
    seed_runs(ctx, bare, records=False, index=False)
    seed_runs(ctx, indexed, records=False)
    seed_runs(ctx, recent)
    for run in opened:
        ctx.runs.create(run)
    seed_promotions(ctx, MODEL, n // 10 + 50)


def seed_models(ctx, m: int) -> str:
    """M models with their prefix rows, batched; returns the name of the last one."""
    base = ModelDefinition.from_json(MODEL, DEFINITION)
    ctx.models.put(base)
    operations = []
    names = [MODEL] + [f"model-{i:05d}" for i in range(1, m)]
    for name in names[1:]:
        definition = replace(base, name=name, data_prefix=f"{name}/")
        state = ctx.models.get(MODEL)
        entity = {**replace(state, definition=definition, etag=None).to_entity(), "RowKey": name}
        operations += [("upsert", entity), ("upsert", prefix_row(definition.data_prefix, name))]
    transact_all(ctx.models.table, operations)
    return names[-1]


@dataclass(frozen=True)
class Figure:
    size: str
    ms: float  # median wall time
    requests: float  # storage requests per call (table, blob, queue)
    floor: float  # Azurite's floor for those requests (ms)

    @property
    def net(self) -> float:
        return max(self.ms - self.floor, 0.0)


def timed(repeat: int, call) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        call()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


class Floors:
    """Azurite's cost of a request that reads nothing, per table and shape, at the current size."""

    def __init__(self, ctx, repeat: int):
        self.ctx, self.repeat, self.ms = ctx, repeat, {}

    def of(self, table: str, shape: str) -> float:
        if (table, shape) not in self.ms:
            client = self.ctx.storage.tables.get_table_client(table)
            partition = MODEL_PARTITION if table.endswith("models") else MODEL  # where its reads go
            if shape == "query":  # a key range past every key of the partition: it returns nothing
                def nothing():
                    list(client.query_entities("PartitionKey eq @pk and RowKey ge @low and RowKey lt @high",
                                               parameters={"pk": partition, "low": "~~~~", "high": "~~~~~"}))
            else:  # a point read of a tiny row outside every listing's key range; a write costs about as much
                client.upsert_entity({"PartitionKey": partition, "RowKey": PROBE_KEY})

                def nothing():
                    client.get_entity(partition, PROBE_KEY)
            nothing()
            self.ms[(table, shape)] = timed(self.repeat, nothing)
        return self.ms[(table, shape)]


def measure(floors: Floors, count, repeat: int, size: str, operation) -> Figure:
    """The operation's median wall time, its storage requests per call and their floor."""
    operation()  # warm-up (connections, first-use paths)
    before = count.snapshot()
    ms = timed(repeat, operation)
    used = count.snapshot() - before
    requests = sum(n for key, n in used.items() if isinstance(key, str)) / repeat
    floor = sum(n / repeat * floors.of(key[1], "query" if key[2] == "query" else "read")
                for key, n in used.items() if isinstance(key, tuple))
    return Figure(size, ms, requests, floor)


def call(ctx, handler, query=None, **route):
    response = api.handle(ctx, handler, api.ApiRequest("GET", {"model": MODEL, **route}, query or {}))
    assert response.status == 200, response.body
    return response.body


def history_axis(azurite, sizes, repeat, results) -> None:
    for n in sizes:
        ctx, count = counting_context(environment(azurite), clock=lambda: T0 + timedelta(days=401))
        ctx.models.put(ModelDefinition.from_json(MODEL, DEFINITION))
        t0 = time.perf_counter()
        seed_history(ctx, n)
        seeded = time.perf_counter() - t0
        page = call(ctx, api.list_runs, {"limit": "20"})
        assert len(page["runs"]) == 20 and page["next"], "the working set fills a page"
        ops = {
            "runs page": lambda: call(ctx, api.list_runs, {"limit": "20"}),
            "runs page by status": lambda: call(ctx, api.list_runs, {"limit": "20", "status": "promoted"}),
            "sweep": lambda: sweeper.sweep(ctx),
            "promotions page": lambda: call(ctx, api.promotions, {"limit": "20"}),
        }
        floors = Floors(ctx, repeat)
        for name, op in ops.items():
            results.setdefault(name, []).append(measure(floors, count, repeat, f"N={n:,}", op))
        print(f"  N={n:>7,}: seeded in {seeded:6.1f} s", flush=True)


def model_axis(azurite, sizes, repeat, results) -> None:
    for m in sizes:
        ctx, count = counting_context(environment(azurite))
        t0 = time.perf_counter()
        last = seed_models(ctx, m)
        seeded = time.perf_counter() - t0
        blob = f"{last}/2026/06.csv" if last != MODEL else f"{MODEL}/2026/06.csv"
        assert ctx.models.owner_of(blob).name == last
        ops = {"owner lookup": lambda: ctx.models.owner_of(blob),
               "model GET": lambda: call(ctx, api.model)}
        floors = Floors(ctx, repeat)
        for name, op in ops.items():
            results.setdefault(name, []).append(measure(floors, count, repeat, f"M={m:,}", op))
        print(f"  M={m:>7,}: seeded in {seeded:6.1f} s", flush=True)


def ratio(value: float, base: float) -> float:
    return value / base if base else 1.0


def report(results: dict[str, list[Figure]]) -> tuple[float, float, float]:
    """The table; (worst ratio of requests, of wall time, of wall time net of Azurite's floor)."""
    worst = {"req": 0.0, "ms": 0.0, "net": 0.0}
    print(f"\n{'operation':<20}{'size':>10}{'requests':>9}{'wall ms':>9}{'floor ms':>9}{'net ms':>8}"
          f"{'x floor':>8}{'req ratio':>10}{'ms ratio':>9}{'net ratio':>10}")
    for name, rows in results.items():
        base = rows[0]
        for f in rows:
            ratios = {"req": ratio(f.requests, base.requests), "ms": ratio(f.ms, base.ms),
                      "net": f.net / max(base.net, NOISE_MS)}
            for key, value in ratios.items():
                worst[key] = max(worst[key], value)
            print(f"{name:<20}{f.size:>10}{f.requests:>9.1f}{f.ms:>9.1f}{f.floor:>9.1f}{f.net:>8.1f}"
                  f"{ratio(f.ms, f.floor):>8.2f}{ratios['req']:>10.2f}{ratios['ms']:>9.2f}{ratios['net']:>10.2f}")
    print(f"\nworst ratio of storage requests (the design figure): {worst['req']:.2f}")
    print(f"worst ratio of wall time on Azurite: {worst['ms']:.2f}; net of Azurite's floor: {worst['net']:.2f}")
    print(f"(floor: each request of the operation at the time Azurite takes, on the same table at the same size,\n"
          f" for a key-range query that returns nothing or a point read of a one-row probe; net ratios are taken\n"
          f" against at least {NOISE_MS:g} ms; a page's point reads run 8 at once, so its summed floor overstates.\n"
          " Azurite scans the table's whole collection for every query (LokiTableMetadataStore.queryTableEntities:\n"
          " `.chain().where(...).sort(...)`) and the partition for a point read; Table storage serves both from its\n"
          " index, so there the request count is the cost.)")
    return worst["req"], worst["ms"], worst["net"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="N = 0, 1,000, 10,000 (under two minutes)")
    p.add_argument("--history", help="comma-separated history sizes instead (e.g. 0,1000,10000)")
    p.add_argument("--repeat", type=int, default=15, help="calls per operation and size (default 15)")
    args = p.parse_args()
    history = ([int(n) for n in args.history.split(",")] if args.history
               else [0, 1_000, 10_000] if args.quick else [0, 1_000, 10_000, 100_000])
    models = [1, 100, 1_000]
    started = time.perf_counter()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # a `timeout` still stops Azurite (finally below)
    azurite = Azurite.start()
    try:
        results: dict[str, list] = {}
        print(f"history axis (one model), N = {', '.join(f'{n:,}' for n in history)} finished runs:")
        history_axis(azurite, history, args.repeat, results)
        print(f"model axis, M = {', '.join(f'{m:,}' for m in models)} models:")
        model_axis(azurite, models, args.repeat, results)
        requests, wall, net = report(results)
    finally:
        azurite.stop()
    print(f"\n(total {time.perf_counter() - started:.0f} s; Azurite stopped)")
    print(f"worst ratio: {requests:.2f} (storage requests; wall time {wall:.2f}, net of Azurite's floor {net:.2f})")


if __name__ == "__main__":
    main()
