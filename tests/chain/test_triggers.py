"""What blob and timer triggers do with what they are given: start a run, or record and skip."""

import pytest

from retrain import api
from retrain.runs import Status, Trigger
from retrain.triggers import BlobEvent, on_blob, on_schedule

from .conftest import good_data


def test_a_blob_under_no_models_prefix_is_skipped_and_recorded_once(world, caplog):
    world.register(endpoints=[])
    event = world.upload("other/x.csv", good_data())
    assert on_blob(world.ctx, event) is None and on_blob(world.ctx, event) is None
    assert "matches no registered model" in caplog.text
    [skipped] = world.ctx.skipped.recent()
    assert (skipped.name, skipped.etag) == ("other/x.csv", event.etag)
    listed = api.handle(world.ctx, api.skipped, api.ApiRequest("GET")).body["skipped"]
    assert listed[0]["reason"] == "matches no registered model's data_prefix"


@pytest.mark.parametrize("name, data, fragment", [
    ("census/empty.csv", b"", "is empty"),
    ("census/readme.txt", b"hello", "not a CSV/TSV"),
    ("census/model.ilearner", b"\x00\x01", "not a CSV/TSV"),
])
def test_unusable_blobs_are_recorded_as_failed_runs_once(world, name, data, fragment):
    world.register(endpoints=[])
    event = world.upload(name, data)
    first, second = on_blob(world.ctx, event), on_blob(world.ctx, event)
    assert first.run.status is Status.FAILED and fragment in first.run.reason
    assert second.run.run_id == first.run.run_id and not second.created


@pytest.mark.parametrize("name", ["census/../x.csv", "census//x.csv", "census/a\x07b.csv"])
def test_odd_blob_names_are_skipped_with_a_log_line_and_a_record(world, name, caplog):
    world.register(endpoints=[])
    event = BlobEvent(world.ctx.settings.training_container, name, '"0x1"', 10)
    assert on_blob(world.ctx, event) is None
    assert "skipped" in caplog.text
    [skipped] = world.ctx.skipped.recent()
    assert "\x07" not in skipped.name and skipped.reason


def test_a_blob_from_another_container_is_ignored(world):
    world.register(endpoints=[])
    assert on_blob(world.ctx, BlobEvent("elsewhere", "census/x.csv", '"0x1"', 10)) is None


def test_the_longest_matching_prefix_owns_the_blob(world):
    world.register(endpoints=[])
    world.model = "census-eu"
    world.register(endpoints=[], data_prefix="census/eu/")
    result = on_blob(world.ctx, world.upload("census/eu/2024.csv", good_data()))
    assert result.run.model == "census-eu"


def test_the_timer_retrains_scheduled_models_on_their_newest_data_once(world):
    world.register(endpoints=[], schedule=True)
    world.upload("census/1.csv", good_data(seed=1))
    world.upload("census/2.csv", good_data(seed=2))
    [outcome] = on_schedule(world.ctx)
    assert outcome.started.run.trigger is Trigger.TIMER and outcome.started.run.data.name == "census/2.csv"
    [again] = on_schedule(world.ctx)
    assert again.started is None and again.message.startswith("no new data since run")


def test_the_timer_leaves_unscheduled_models_alone_and_reports_missing_data(world):
    world.register(endpoints=[], schedule=False)
    assert on_schedule(world.ctx) == []
    world.model = "census-b"
    world.register(endpoints=[], schedule=True, data_prefix="b/")
    [outcome] = on_schedule(world.ctx)
    assert outcome.started is None and "no CSV/TSV blob" in outcome.message


def test_one_blob_version_is_one_run_by_blob_trigger_http_and_timer_and_it_trains(world, pump):
    world.register(schedule=True)
    by_blob = world.land("census/1.csv", good_data())
    by_http = api.handle(world.ctx, api.retrain, api.ApiRequest("POST", route={"model": "census"}))
    [by_timer] = on_schedule(world.ctx)
    assert by_http.status == 200 and by_http.body["run"]["run_id"] == by_blob.run_id
    assert by_timer.started is None and by_blob.run_id in by_timer.message
    pump.run()
    assert world.run(by_blob.run_id).status is Status.PROMOTED
    assert [r.run_id for r in world.ctx.runs.list("census")] == [by_blob.run_id]


def test_the_timer_first_then_the_blob_trigger_is_still_one_run(world, pump):
    world.register(endpoints=[], schedule=True)
    world.upload("census/1.csv", good_data())
    [by_timer] = on_schedule(world.ctx)
    event = BlobEvent.from_client(world.ctx.storage.blobs.get_blob_client(
        world.ctx.settings.training_container, "census/1.csv"))
    again = on_blob(world.ctx, event)
    assert again.run.run_id == by_timer.started.run.run_id and not again.created
    pump.run()
    assert world.run(again.run.run_id).status is Status.PROMOTED
