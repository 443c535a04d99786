"""State layout 3 on a real Azurite: O(page) listings, the open-run index, the prefix index, run-ended records,
tolerant reads of stored rows, and the migration of tables written by the previous release."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta

import pytest
from azure.core import MatchConditions
from azure.core.exceptions import HttpResponseError
from azure.data.tables import UpdateMode

from retrain import api, chain, migrate, sweeper, triggers
from retrain.errors import BadRequest
from retrain.locations import BlobLocation
from retrain.model_rows import PARTITION, BrokenModel
from retrain.principal import Actor
from retrain.promotions import Promotion, Reason
from retrain.runs import BY_STATUS, OPEN, TIME, Run, Status, Trigger, index_rows, iso, status_key
from retrain.triggers import on_schedule
from tests.state_kit import T0, counting_context, finished_run, seed_promotions, seed_runs

from .conftest import good_data


def call(world, handler, method="GET", body=None, query=None, **route):
    raw = json.dumps(body).encode() if body is not None else b""
    route.setdefault("model", world.model)
    response = api.handle(world.ctx, handler, api.ApiRequest(method, route, query or {}, raw))
    json.dumps(response.body)
    return response


def ended_records(world, run_id: str) -> list:
    return [r for r in world.ctx.runs.ended(world.model, limit=1000).items if r.run_id == run_id]


def history(world, count: int, status_of=lambda i: Status.REJECTED) -> list[Run]:
    runs = [finished_run(world.model, i, status=status_of(i)) for i in range(count)]
    seed_runs(world.ctx, runs)
    return runs


# --- paging -------------------------------------------------------------------------------------

def test_runs_are_listed_newest_first_a_page_at_a_time_with_a_continuation(world):
    world.register()
    runs = history(world, 23)
    seen, token = [], None
    while True:
        page = world.ctx.runs.page(world.model, limit=10, continuation=token)
        seen += [r.run_id for r in page.items]
        token = page.continuation
        if token is None:
            break
    assert seen == [r.run_id for r in reversed(runs)]


@pytest.mark.parametrize("finished", [10, 300])
def test_a_page_costs_one_index_query_and_a_point_read_per_run_whatever_the_history(world, finished):
    world.register()
    history(world, finished)
    ctx, count = counting_context(world.ctx.env)
    before = count.snapshot()
    assert len(ctx.runs.page(world.model, limit=10).items) == 10
    used = count.snapshot() - before
    runs_table = ctx.runs.table.table_name
    # No `RowKey eq a or RowKey eq b` query: Table storage answers it by scanning the whole partition.
    assert (used[("table", runs_table, "query")], used[("table", runs_table, "read")], used["table"]) == (1, 10, 11)


def test_the_status_filter_reads_only_runs_of_that_status(world):
    world.register()
    history(world, 30, status_of=lambda i: Status.PROMOTED if i % 10 == 0 else Status.REJECTED)
    page = world.ctx.runs.page(world.model, limit=50, status=Status.PROMOTED)
    assert [r.data.name for r in page.items] == ["census/0000020.csv", "census/0000010.csv", "census/0000000.csv"]
    assert page.continuation is None


def test_the_runs_api_links_the_next_page_until_the_last(world):
    world.register()
    history(world, 5)
    first = call(world, api.list_runs, query={"limit": "2", "status": "rejected"}).body
    assert len(first["runs"]) == 2 and first["next"].startswith("/api/models/census/runs?")
    assert "status=rejected" in first["next"]
    second = call(world, api.list_runs, query={"limit": "2", "status": "rejected",
                                               "continuation": first["continuation"]}).body
    third = call(world, api.list_runs, query={"limit": "2", "continuation": second["continuation"],
                                              "status": "rejected"}).body
    names = [r["data"]["name"] for r in first["runs"] + second["runs"] + third["runs"]]
    assert names == [f"census/{i:07d}.csv" for i in (4, 3, 2, 1, 0)] and third["next"] is None


def test_a_continuation_from_another_listing_is_a_400(world):
    world.register()
    token = call(world, api.list_runs, query={"limit": "1"}).body["continuation"]
    history(world, 2)
    token = call(world, api.list_runs, query={"limit": "1"}).body["continuation"]
    response = call(world, api.list_runs, query={"status": "promoted", "continuation": token})
    assert response.status == 400 and response.body["error"]["code"] == "BadRequest"
    assert call(world, api.list_runs, query={"continuation": "%%%"}).status == 400


def test_promotions_are_paged_newest_first(world):
    world.register()
    seed_promotions(world.ctx, world.model, 7)
    first = call(world, api.promotions, query={"limit": "4"}).body
    rest = call(world, api.promotions, query={"limit": "4", "continuation": first["continuation"]}).body
    assert [p["id"] for p in first["promotions"] + rest["promotions"]] == [f"p{i:07d}" for i in range(6, -1, -1)]
    assert rest["next"] is None


def test_skipped_blobs_are_paged_newest_first_and_recorded_once(world):
    for i in range(3):
        event = world.upload(f"nobody/{i}.csv", b"a,b\n1,2\n")
        triggers.on_blob(world.ctx, event)
        triggers.on_blob(world.ctx, event)  # the host fired twice
    first = call(world, api.skipped, query={"limit": "2"}).body
    rest = call(world, api.skipped, query={"limit": "2", "continuation": first["continuation"]}).body
    assert [s["name"] for s in first["skipped"] + rest["skipped"]] == ["nobody/2.csv", "nobody/1.csv", "nobody/0.csv"]


def status_rows(world) -> list[str]:
    """The status index rows of the model's partition, by status (`s~<status>`)."""
    rows = world.ctx.runs.table.query_entities("PartitionKey eq @pk and RowKey ge @low and RowKey lt @high",
                                               parameters={"pk": world.model, "low": BY_STATUS,
                                                           "high": BY_STATUS + "~"}, select=["RowKey"])
    return sorted(e["RowKey"].split("~")[1] for e in rows)


def test_a_run_writes_a_status_index_row_only_when_it_ends(world, pump):
    world.register()
    run = world.land("census/a.csv", good_data())
    seen = set()
    pump.run(until=lambda: seen.add(tuple(status_rows(world))) or world.run(run.run_id).terminal)
    assert seen - {(), ("promoted",)} == set() and status_rows(world) == ["promoted"]


def test_runs_of_an_open_status_are_listed_from_the_open_run_index_whatever_the_history(world):
    world.register()
    costs = []
    for finished in (0, 200):
        history(world, finished)
        ctx, count = counting_context(world.ctx.env)
        before = count.snapshot()["table"]
        page = ctx.runs.page(world.model, limit=10, status=Status.RUNNING)
        costs.append(count.snapshot()["table"] - before)
        if not finished:
            opened = [open_run(world, i) for i in range(3)]
    everything = world.ctx.runs.list(world.model, limit=1000)
    assert [r.run_id for r in page.items] == [r.run_id for r in everything if r.status is Status.RUNNING]
    # The model's open-run rows, then one read per open run:
    assert len(page.items) == len(opened) and costs == [1, 1 + len(opened)]


def test_an_open_status_is_paged_with_a_continuation(world):
    world.register()
    opened = [open_run(world, i) for i in range(3)]
    first = call(world, api.list_runs, query={"limit": "2", "status": "running"}).body
    rest = call(world, api.list_runs, query={"limit": "2", "status": "running",
                                             "continuation": first["continuation"]}).body
    assert sorted(r["run_id"] for r in first["runs"] + rest["runs"]) == sorted(r.run_id for r in opened)
    assert [r["run_id"] for r in first["runs"] + rest["runs"]] == [r.run_id for r in world.ctx.runs.list(world.model)]
    assert "status=running" in first["next"] and rest["next"] is None
    other = call(world, api.list_runs, query={"status": "queued", "continuation": first["continuation"]})
    assert other.status == 400


def test_a_revived_run_leaves_the_ended_listing_until_it_ends_again(world, pump):
    world.register()
    run = world.land("census/a.csv", good_data())
    pump.run()
    endpoint = world.ctx.models.get(world.model).definition.endpoints[0].name
    chain.finish(world.ctx, replace(world.run(run.run_id), endpoints={endpoint: {"ok": False, "error": "no"}}),
                 Status.FAILED, f"promotion failed on endpoint(s) {endpoint}")
    assert [r.run_id for r in world.ctx.runs.list(world.model, status=Status.FAILED)] == [run.run_id]
    chain.retry_promotion(world.ctx, world.model, run.run_id, by="ops")
    assert world.ctx.runs.list(world.model, status=Status.FAILED) == []
    assert [r.run_id for r in world.ctx.runs.list(world.model, status=Status.PROMOTING)] == [run.run_id]
    pump.run()
    assert status_rows(world) == ["promoted"]


def test_the_audit_log_is_paged_newest_first_in_one_request_a_page(world):
    world.register()
    ops = Actor("user", "u1", "ops@contoso.com", "aad")
    for i in range(5):
        world.ctx.audit.record(world.model, "cancel", ops, T0 + timedelta(minutes=i), target=f"run{i}")
    ctx, count = counting_context(world.ctx.env)
    before = count.snapshot()["table"]
    first = call(replace(world, ctx=ctx), api.audit, query={"limit": "3"}).body
    assert count.snapshot()["table"] - before == 2  # the model's row, then one page of the audit partition
    rest = call(world, api.audit, query={"limit": "3", "continuation": first["continuation"]}).body
    assert [e["target"] for e in first["audit"] + rest["audit"]] == ["run4", "run3", "run2", "run1", "run0"]
    assert first["next"].startswith("/api/models/census/audit?") and rest["next"] is None
    assert call(world, api.audit, query={"continuation": first["continuation"][:-2] + "zz"}).status == 400


def test_audit_rows_of_the_previous_release_are_read_as_they_are(world):
    world.register()
    world.ctx.audit.record(world.model, "approve", Actor("user", "u1", "ops", "aad"), T0 + timedelta(days=1))
    old_key = f"{10 ** 13 - int(T0.timestamp() * 1000):013d}-0a1b2c3d"  # the key the previous release wrote
    world.ctx.audit.table.create_entity({"PartitionKey": world.model, "RowKey": old_key, "Action": "rollback",
                                         "At": T0.isoformat(), "Target": "p1",
                                         "Actor": json.dumps({"kind": "function_key", "name": "function key"})})
    first = call(world, api.audit, query={"limit": "1"}).body
    rest = call(world, api.audit, query={"continuation": first["continuation"]}).body
    assert [e["action"] for e in first["audit"] + rest["audit"]] == ["approve", "rollback"]
    assert rest["audit"][0]["by"]["name"] == "function key"


# --- the sweeper reads only open runs -------------------------------------------------------------

def open_run(world, i: int) -> Run:
    """A running run whose next check is not due yet: the sweeper only looks at it."""
    run = finished_run(world.model, 100_000 + i, status=Status.RUNNING, at=T0 + timedelta(days=3650))
    run = replace(run, next_action_at=iso(T0 + timedelta(days=3651)), deadline=iso(T0 + timedelta(days=3652)),
                  stored_status=None)
    created, _ = world.ctx.runs.create(run)
    return created


@pytest.mark.parametrize("finished", [0, 300])
def test_a_sweep_reads_the_open_run_index_and_each_open_run_only(world, finished):
    world.register()
    history(world, finished)
    opened = [open_run(world, i) for i in range(3)]
    ctx, count = counting_context(world.ctx.env, clock=lambda: T0 + timedelta(days=3650, minutes=1))
    before = count.snapshot()["table"]
    report = sweeper.sweep(ctx)
    # The index query + one read per open run; the data reconciliation's model list; then the events
    # outbox: the model list + one query per model in each of the runs and promotions tables (O(models)).
    assert count.snapshot()["table"] - before == 1 + len(opened) + 1 + 1 + 2
    assert not (report.redriven or report.expired or report.released)


def test_an_ended_run_leaves_the_open_run_index(world, pump):
    world.register()
    run = world.land("census/one.csv", good_data())
    assert [(m, r) for m, r, _ in world.ctx.runs.open_entries()] == [(world.model, run.run_id)]
    pump.run()
    assert world.run(run.run_id).terminal and list(world.ctx.runs.open_entries()) == []


def test_a_run_ended_without_freeing_its_model_is_freed_by_the_sweeper(world, monkeypatch):
    world.register()
    started = triggers.retrain_now(world.ctx, world.model, world.upload("census/a.csv", good_data()).name).run
    monkeypatch.setattr(chain, "release", lambda *a, **k: None)  # the worker died right after the ending
    chain.cancel(world.ctx, world.model, started.run_id)
    monkeypatch.undo()
    assert world.ctx.models.get(world.model).active_run == started.run_id
    world.ctx.runs.table.upsert_entity({"PartitionKey": OPEN, "RowKey": f"{world.model}~{started.run_id}",
                                        "Model": world.model, "RunId": started.run_id})  # as if the delete died too
    later = replace(world.ctx, clock=lambda: world.ctx.clock() + timedelta(hours=1))
    report = sweeper.sweep(later)
    assert report.released == [started.run_id] and world.ctx.models.get(world.model).active_run is None
    assert list(world.ctx.runs.open_entries()) == []


# --- the blob event's owner ----------------------------------------------------------------------

def test_the_owner_lookup_costs_the_same_with_one_model_or_thirty(world):
    world.register(data_prefix="census/eu/")
    ctx, count = counting_context(world.ctx.env)

    def cost() -> int:
        before = count.snapshot()["table"]
        assert ctx.models.owner_of("census/eu/2026/06.csv").name == "census"
        return count.snapshot()["table"] - before

    alone = cost()
    base = world.ctx.models.get(world.model).definition
    for i in range(30):
        world.ctx.models.put(replace(base, name=f"other{i}", data_prefix=f"other{i}/"))
    assert cost() == alone == 2  # one index query, one read of the model found


def test_a_model_registered_a_moment_ago_owns_its_next_blob(world):
    world.register(data_prefix="fresh/")
    assert triggers.on_blob(world.ctx, world.upload("fresh/1.csv", good_data())).run.model == world.model


def test_the_longest_prefix_wins_and_a_redefined_prefix_moves_ownership(world):
    definition = world.register(data_prefix="census/")
    world.ctx.models.put(replace(definition, name="census-eu", data_prefix="census/eu/"))
    assert world.ctx.models.owner_of("census/eu/a.csv").name == "census-eu"
    assert world.ctx.models.owner_of("census/us/a.csv").name == "census"
    world.ctx.models.put(replace(definition, name="census-eu", data_prefix="europe/"))
    assert world.ctx.models.owner_of("census/eu/a.csv").name == "census"
    assert world.ctx.models.owner_of("europe/a.csv").name == "census-eu"


# --- tolerant reads ------------------------------------------------------------------------------

def break_model(world, name: str) -> None:
    """Rewrite a stored definition the way an older release's rules might have let it through."""
    row = world.ctx.models.table.get_entity(PARTITION, name)
    body = json.loads(row["Definition"])
    body["training"]["url"] = "ftp://old.example/service"
    world.ctx.models.table.update_entity({"PartitionKey": PARTITION, "RowKey": name, "Definition": json.dumps(body)},
                                         mode=UpdateMode.MERGE, etag=row.metadata["etag"],
                                         match_condition=MatchConditions.IfNotModified)


def test_a_stored_row_that_no_longer_validates_is_listed_with_its_problems(world):
    definition = world.register(schedule=True)
    world.ctx.models.put(replace(definition, name="healthy", data_prefix="healthy/"))
    break_model(world, world.model)
    listed = {m["name"]: m for m in call(world, api.list_models).body["models"]}
    assert listed["healthy"]["valid"] and not listed["census"]["valid"]
    assert "training.url" in listed["census"]["problems"][0]
    shown = call(world, api.model)
    assert shown.status == 200 and shown.body["problems"]
    assert isinstance(world.ctx.models.read(world.model), BrokenModel)


def test_a_blob_of_a_model_that_no_longer_validates_is_skipped_with_the_reason(world):
    world.register()
    break_model(world, world.model)
    assert triggers.on_blob(world.ctx, world.upload("census/new.csv", good_data())) is None
    [skipped] = world.ctx.skipped.recent()
    assert "no longer validates" in skipped.reason and "training.url" in skipped.reason


def test_the_schedule_and_the_sweeper_go_on_past_a_model_that_no_longer_validates(world):
    world.register(schedule=True)
    world.upload("census/a.csv", good_data())
    break_model(world, world.model)
    assert on_schedule(world.ctx) == []
    sweeper.sweep(world.ctx)  # does not raise


def test_a_run_of_a_model_that_no_longer_validates_waits_and_ends_at_its_deadline(world, pump):
    world.register()
    run = triggers.retrain_now(world.ctx, world.model, world.upload("census/a.csv", good_data()).name).run
    break_model(world, world.model)
    pump.run()
    assert world.run(run.run_id).status is Status.QUEUED and not pump.errors
    sweeper.sweep(replace(world.ctx, clock=lambda: world.ctx.clock() + timedelta(hours=5)))
    [record] = ended_records(world, run.run_id)
    assert record.status is Status.FAILED and record.reason.startswith("timed out")


def test_putting_the_definition_again_repairs_the_row_and_keeps_its_live_state(world):
    definition = world.register()
    world.ctx.models.update(world.model, lambda m: replace(m, pending_run="abc"))
    break_model(world, world.model)
    world.ctx.models.put(definition)
    repaired = world.ctx.models.get(world.model)
    assert repaired.definition == definition and repaired.pending_run == "abc"


# --- one way out of a run: the run-ended record ---------------------------------------------------

def test_a_run_cannot_be_ended_except_through_chain_finish(world):
    world.register()
    run = triggers.retrain_now(world.ctx, world.model, world.upload("census/a.csv", good_data()).name).run
    with pytest.raises(ValueError, match="chain.finish"):
        world.ctx.runs.save(run.moved(Status.FAILED, "quietly", at=world.ctx.clock()))


def test_a_promoted_run_has_exactly_one_run_ended_record(world, pump):
    world.register()
    run = world.land("census/a.csv", good_data())
    pump.run()
    [record] = ended_records(world, run.run_id)
    assert record.status is Status.PROMOTED and record.to_json()["type"] == "run.ended"
    assert record.passed is True and record.decision_summary


def test_cancelling_twice_writes_one_record(world):
    world.register()
    run = triggers.retrain_now(world.ctx, world.model, world.upload("census/a.csv", good_data()).name).run
    assert call(world, api.run_action, "POST", run=run.run_id, action="cancel").status == 200
    assert call(world, api.run_action, "POST", run=run.run_id, action="cancel").status == 409
    [record] = ended_records(world, run.run_id)
    assert record.status is Status.CANCELLED and record.reason.startswith("cancelled by ")


def test_a_skipped_blob_of_a_known_model_writes_one_record_however_often_it_fires(world):
    world.register()
    event = world.upload("census/notes.txt", b"hello")
    first, again = triggers.on_blob(world.ctx, event), triggers.on_blob(world.ctx, event)
    assert first.created and not again.created
    [record] = ended_records(world, first.run.run_id)
    assert record.status is Status.FAILED and "not a CSV/TSV" in record.reason


def test_superseded_pending_runs_write_one_record_each(world):
    world.register()
    first = triggers.retrain_now(world.ctx, world.model, world.upload("census/1.csv", good_data()).name).run
    second = triggers.retrain_now(world.ctx, world.model, world.upload("census/2.csv", good_data()).name).run
    third = triggers.retrain_now(world.ctx, world.model, world.upload("census/3.csv", good_data()).name).run
    assert (world.run(second.run_id).status, world.run(third.run_id).status) == (Status.SUPERSEDED, Status.PENDING)
    [record] = ended_records(world, second.run_id)
    assert record.status is Status.SUPERSEDED and not ended_records(world, first.run_id)


def test_a_timed_out_run_writes_one_record(world):
    world.register()
    run = triggers.retrain_now(world.ctx, world.model, world.upload("census/a.csv", good_data()).name).run
    later = replace(world.ctx, clock=lambda: world.ctx.clock() + timedelta(hours=5))
    sweeper.sweep(later)
    sweeper.sweep(later)
    [record] = ended_records(world, run.run_id)
    assert record.status is Status.FAILED and record.reason.startswith("timed out")


def test_a_failed_promotion_retried_to_its_end_has_a_record_per_ending(world, pump):
    world.register()
    run = world.land("census/a.csv", good_data())
    pump.run()
    endpoint = world.ctx.models.get(world.model).definition.endpoints[0].name
    failed = chain.finish(world.ctx, replace(world.run(run.run_id), endpoints={endpoint: {"ok": False, "error": "no"}}),
                          Status.FAILED, f"promotion failed on endpoint(s) {endpoint}")
    chain.retry_promotion(world.ctx, world.model, failed.run_id, by="ops")
    assert [m for m, _, _ in world.ctx.runs.open_entries()] == [world.model]  # revived: open again
    pump.run()
    records = ended_records(world, run.run_id)
    assert [r.status for r in records] == [Status.PROMOTED, Status.FAILED, Status.PROMOTED]


# --- errors and the clock ------------------------------------------------------------------------

def test_a_storage_error_that_escapes_becomes_a_json_envelope(world):
    def broken(ctx, request):
        raise HttpResponseError(message="The server is busy. sig=SECRET")

    response = api.handle(world.ctx, broken, api.ApiRequest("GET"))
    assert response.status == 503 and response.body["error"]["code"] == "StorageUnavailable"
    assert "SECRET" not in json.dumps(response.body)


def test_errors_carry_their_status():
    assert api.error_response(BadRequest("x")).status == 400


def test_every_stored_time_comes_from_the_context_clock(world):
    frozen = T0 + timedelta(days=7)
    ctx = replace(world.ctx, clock=lambda: frozen)
    world.register()
    ctx.models.update(world.model, lambda m: replace(m, pending_run="p"))
    run = triggers.retrain_now(ctx, world.model, world.upload("census/a.csv", good_data()).name, Trigger.HTTP).run
    stamps = {run.created_at, run.updated_at, *run.step_times.values(), ctx.models.get(world.model).updated_at}
    assert {s[:19] for s in stamps} == {frozen.isoformat()[:19]}


# --- migration of tables written by the previous release ------------------------------------------

def test_tables_in_the_previous_layout_are_migrated_and_then_listed_paged_and_swept(world):
    definition = world.register()
    old_runs = [finished_run(world.model, i) for i in range(5)]
    waiting = replace(finished_run(world.model, 9, status=Status.QUEUED), next_action_at=iso(T0))
    table = world.ctx.runs.table
    for entity in list(table.list_entities()):  # layout 1: only the run rows, no index rows
        table.delete_entity(entity["PartitionKey"], entity["RowKey"])
    for run in old_runs + [waiting]:
        table.create_entity(run.to_entity())
    for entity in list(world.ctx.models.table.list_entities()):
        if entity["RowKey"].startswith("~"):
            world.ctx.models.table.delete_entity(entity["PartitionKey"], entity["RowKey"])
    world.ctx.skipped.table.create_entity({"PartitionKey": world.ctx.settings.training_container, "RowKey": "h1",
                                           "Name": "odd/x.csv", "Etag": "e", "Reason": "no model", "At": iso(T0)})
    location = BlobLocation("https://a.blob.core.windows.net/", "out/m.ilearner")
    world.ctx.promotions.table.create_entity(  # layout 1: the row as the previous release wrote it, no copy
        Promotion(world.model, "run1", None, "run1", location, Reason.POLICY, iso(T0), "policy").to_entity())
    assert migrate.layout_of(world.ctx) == 1 and world.ctx.models.owner_of("census/a.csv") is None

    assert migrate.ensure_layout(world.ctx) and not migrate.ensure_layout(world.ctx)
    assert [r.run_id for r in world.ctx.runs.list(world.model)] == [waiting.run_id] + [
        r.run_id for r in reversed(old_runs)]
    assert [r.run_id for r in world.ctx.runs.list(world.model, status=Status.QUEUED)] == [waiting.run_id]
    assert world.ctx.models.owner_of("census/a.csv").definition == definition
    assert [p.to_run for p in world.ctx.promotions.page(world.model).items] == ["run1"]
    assert [s.name for s in world.ctx.skipped.recent()] == ["odd/x.csv"]
    assert [r for _, r, _ in world.ctx.runs.open_entries()] == [waiting.run_id]
    moved = world.ctx.runs.save(replace(world.ctx.runs.get(world.model, waiting.run_id), status=Status.RUNNING))
    assert [r.run_id for r in world.ctx.runs.list(world.model, status=Status.RUNNING)] == [moved.run_id]
    assert status_rows(world) == ["rejected"] * len(old_runs)  # open statuses have no status rows


def layout_2_rows(run: Run) -> list[dict]:
    """The index rows layout 2 wrote: the time row and a status row for every status, open ones included."""
    status_row = {"PartitionKey": run.model, "RowKey": status_key(run, run.status), "RunId": run.run_id}
    return [row for row in index_rows(run) if row["RowKey"].startswith(TIME)] + [status_row]


def test_tables_in_layout_2_lose_their_open_status_rows_and_keep_listing_and_moving(world):
    world.register()
    ended = [finished_run(world.model, i) for i in range(3)]
    queued = replace(finished_run(world.model, 9, status=Status.QUEUED), next_action_at=iso(T0), stored_status=None)
    table = world.ctx.runs.table
    for run in ended + [queued]:
        table.upsert_entity(run.to_entity())
        for row in layout_2_rows(run):
            table.upsert_entity(row)
    table.upsert_entity({"PartitionKey": OPEN, "RowKey": f"{world.model}~{queued.run_id}", "Model": world.model,
                         "RunId": queued.run_id})
    world.ctx.models.table.upsert_entity({"PartitionKey": PARTITION, "RowKey": migrate.LAYOUT_KEY, "Version": 2})
    assert status_rows(world) == ["queued", "rejected", "rejected", "rejected"]
    # A run of the old layout moves and ends before the migration ran: its open status row is never read.
    stored = world.ctx.runs.get(world.model, queued.run_id)
    running = world.ctx.runs.save(stored.moved(Status.RUNNING, "training", at=world.ctx.clock()))
    assert [r.run_id for r in world.ctx.runs.list(world.model, status=Status.QUEUED)] == []
    assert [r.run_id for r in world.ctx.runs.list(world.model, status=Status.RUNNING)] == [running.run_id]

    assert migrate.ensure_layout(world.ctx) and migrate.layout_of(world.ctx) == migrate.LAYOUT
    assert status_rows(world) == ["rejected"] * 3
    assert [r.run_id for r in world.ctx.runs.list(world.model)] == [queued.run_id] + [
        r.run_id for r in reversed(ended)]
    chain.finish(world.ctx, running, Status.CANCELLED, "cancelled by test")
    assert status_rows(world) == ["cancelled"] + ["rejected"] * 3
    assert [r.run_id for r in world.ctx.runs.list(world.model, status=Status.CANCELLED)] == [queued.run_id]


def test_migrating_from_layout_2_twice_is_harmless(world):
    world.register()
    run = replace(finished_run(world.model, 1, status=Status.RUNNING), stored_status=None)
    for row in [run.to_entity(), *layout_2_rows(run)]:
        world.ctx.runs.table.upsert_entity(row)
    assert migrate.migrate(world.ctx, 2)["open status rows"] == 1
    assert migrate.migrate(world.ctx, 2)["open status rows"] == 0 and status_rows(world) == []
