"""What state costs as history and model count grow: each operation's wall time and storage requests.

Run: `.venv/bin/python benchmarks/scale_bench.py [--quick] [--repeat 15] [--history 0,1000,10000]`
(`--quick`: N = 0, 1,000, 5,000, under two minutes on 2 idle cores; without it N reaches 100,000,
which Azurite takes about 10 minutes to seed: ~2 ms per row, in transactions of 100).

It starts its own in-memory Azurite (`devhost.world.Azurite`) and, for each size, a fresh set of
tables (own prefix) seeded in this release's layout (`tests/state_kit.py`: entity-group
transactions of 100 rows):

* history axis, N = 0, 1,000, 10,000 (, 100,000) finished runs of one model, older than a constant
  working set that every size has: 50 recent runs (25 promoted, 25 rejected), 5 open runs and 50
  recent promotions (plus N/10 older ones). A page therefore holds the same rows at every size, and
  what grows is only the history behind it;
* model axis, M = 1, 100, 1,000 registered models (each with its own data prefix).

Operations, each measured `--repeat` times after one warm-up (median wall time; storage requests
counted at the SDK transport, every attempt):

* `runs page`: `GET /api/models/{m}/runs?limit=20` (the API handler, views included);
* `runs page by status`: the same with `status=promoted`;
* `sweep`: `retrain.sweeper.sweep` (nothing is overdue: it reads the open runs);
* `owner lookup`: `ModelRegistry.owner_of` for a blob of the last model registered;
* `model GET`: `GET /api/models/{m}`;
* `promotions page`: `GET /api/models/{m}/promotions?limit=20`.

Then the ratio of each figure to its value at the smallest size, and a last line
`worst ratio: <x>` (the largest of them; goal: every ratio <= 1.5).
"""

from __future__ import annotations

import argparse
import signal
import statistics
import sys
import time
import uuid
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from devhost.world import Azurite  # noqa: E402
from retrain import api, sweeper  # noqa: E402
from retrain.definitions import ModelDefinition  # noqa: E402
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


def seed_history(ctx, n: int) -> None:
    """N finished runs, then the constant working set (newer than all of them)."""
    old = [finished_run(MODEL, i, status=Status.PROMOTED if i % 10 == 0 else Status.REJECTED) for i in range(n)]
    start = T0 + timedelta(days=400)
    recent = [finished_run(MODEL, n + i, status=Status.PROMOTED if i % 2 else Status.REJECTED,
                           at=start + timedelta(minutes=i)) for i in range(50)]
    opened = []
    for i in range(5):
        run = finished_run(MODEL, n + 50 + i, status=Status.RUNNING, at=start + timedelta(hours=2, minutes=i))
        opened.append(replace(run, next_action_at=iso(start + timedelta(days=30)),
                              deadline=iso(start + timedelta(days=31)), stored_status=None))
    seed_runs(ctx, old, records=False)
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


def measure(count, repeat: int, operation) -> tuple[float, float]:
    """(median ms, table requests per call)."""
    operation()  # warm-up (connections, first-use paths)
    times, before = [], count.snapshot()["table"]
    for _ in range(repeat):
        t0 = time.perf_counter()
        operation()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times), (count.snapshot()["table"] - before) / repeat


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
        for name, op in ops.items():
            results.setdefault(name, []).append((f"N={n:,}", *measure(count, repeat, op)))
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
        for name, op in ops.items():
            results.setdefault(name, []).append((f"M={m:,}", *measure(count, repeat, op)))
        print(f"  M={m:>7,}: seeded in {seeded:6.1f} s", flush=True)


def report(results) -> float:
    worst_ms = worst_req = 0.0
    print(f"\n{'operation':<22}{'size':>10}{'median ms':>11}{'requests':>10}{'ms ratio':>10}{'req ratio':>10}")
    for name, rows in results.items():
        base_ms, base_req = rows[0][1], rows[0][2]
        for size, ms, req in rows:
            ms_ratio, req_ratio = ms / base_ms, (req / base_req if base_req else 1.0)
            worst_ms, worst_req = max(worst_ms, ms_ratio), max(worst_req, req_ratio)
            print(f"{name:<22}{size:>10}{ms:>11.2f}{req:>10.1f}{ms_ratio:>10.2f}{req_ratio:>10.2f}")
    print(f"\nworst ratio of storage requests: {worst_req:.2f}; of wall time: {worst_ms:.2f}")
    print("(Azurite answers every query by scanning the table's whole collection, and a point read by scanning\n"
          " the partition: LokiTableMetadataStore.queryTableEntities is `.chain().where(predicate)`. Table storage\n"
          " serves key-range queries and point reads from its index, so there the request count is the cost.)")
    return max(worst_ms, worst_req)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="N = 0, 1,000, 5,000 (under two minutes)")
    p.add_argument("--history", help="comma-separated history sizes instead (e.g. 0,1000,10000)")
    p.add_argument("--repeat", type=int, default=15, help="calls per operation and size (default 15)")
    args = p.parse_args()
    history = ([int(n) for n in args.history.split(",")] if args.history
               else [0, 1_000, 5_000] if args.quick else [0, 1_000, 10_000, 100_000])
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
        worst = report(results)
    finally:
        azurite.stop()
    print(f"\n(total {time.perf_counter() - started:.0f} s; Azurite stopped)")
    print(f"worst ratio: {worst:.2f}")


if __name__ == "__main__":
    main()
