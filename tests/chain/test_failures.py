"""Every run reaches a terminal state with a reason a user can read, whatever the services do."""

from dataclasses import replace
from datetime import timedelta

from retrain import chain
from retrain.runs import Status
from tests import datasets

from .conftest import TRAIN_KEY, good_data


def test_a_job_on_bad_data_fails_the_run_with_the_services_details(world, pump):
    world.register()
    run = world.land("census/bad.csv", datasets.binary_csv(rows=100).replace(b"label", b"labl", 1))
    pump.run()
    run = world.run(run.run_id)
    assert run.status is Status.FAILED
    assert run.reason.startswith("the training job failed:") and "label" in run.error
    assert world.ctx.models.get(world.model).active_run is None


def test_a_job_that_outlives_the_deadline_is_cancelled_and_the_run_fails(world, pump):
    world.register()
    world.ctx.settings = replace(world.ctx.settings, run_timeout=timedelta(seconds=3))
    world.inject(type="slow_job", seconds=30)
    run = world.land("census/slow.csv", good_data())
    pump.run(until=lambda: world.run(run.run_id).terminal, timeout=60)
    run = world.run(run.run_id)
    assert run.status is Status.FAILED and run.reason.startswith("timed out")
    assert "cancelled" in run.reason
    assert any(r["path"].endswith(run.job_id) for r in world.requests_to("DELETE", "/jobs/[^/]+$"))


def test_throttling_and_server_errors_are_retried_until_the_run_succeeds(world, pump):
    world.register()
    world.inject(method="POST", path="/jobs$", status=429, retry_after=1, count=1)
    world.inject(method="GET", path="/jobs/[^/]+$", status=503, count=3)
    world.inject(method="PATCH", path="/endpoints/", status=500, count=1)
    run = world.land("census/flaky.csv", good_data())
    pump.run()
    assert world.run(run.run_id).status is Status.PROMOTED


def test_a_service_that_keeps_failing_fails_the_run_after_the_retry_budget(world, pump):
    world.register()
    world.ctx.settings = replace(world.ctx.settings, transient_retry_limit=2)
    world.inject(method="POST", path="/jobs$", status=500, count=50)
    run = world.land("census/down.csv", good_data())
    pump.run(until=lambda: world.run(run.run_id).terminal, timeout=60)
    run = world.run(run.run_id)
    assert run.status is Status.FAILED and "kept failing" in run.reason


def test_a_garbled_answer_is_not_taken_for_a_result(world, pump):
    world.register()
    world.inject(method="GET", path="/jobs/[^/]+$", status=200, malformed=True, count=2)
    run = world.land("census/garbled.csv", good_data())
    pump.run()
    assert world.run(run.run_id).status is Status.PROMOTED


def test_a_wrong_api_key_fails_the_run_without_revealing_any_key(world, pump):
    world.register()
    world.ctx.env = {**world.ctx.env, "RETRAIN_SECRET_CHAIN_BES_KEY": "not-the-key"}
    run = world.land("census/key.csv", good_data())
    pump.run()
    run = world.run(run.run_id)
    assert run.status is Status.FAILED
    assert "not-the-key" not in run.reason + run.error and TRAIN_KEY not in run.reason + run.error
    assert "nauthori" in run.reason


def test_a_missing_key_setting_is_named_in_the_failure(world, pump):
    world.register()
    world.ctx.env = {k: v for k, v in world.ctx.env.items() if k != "RETRAIN_SECRET_CHAIN_BES_KEY"}
    run = world.land("census/nokey.csv", good_data())
    pump.run()
    run = world.run(run.run_id)
    assert run.status is Status.FAILED and "RETRAIN_SECRET_CHAIN_BES_KEY" in run.reason


def test_an_endpoint_with_a_wrong_resource_name_fails_the_promotion_and_keeps_the_champion(world, pump):
    url = world.create_endpoint("wrongname")
    world.register(endpoints=[{"kind": "classic", "url": url, "key_setting": "RETRAIN_SECRET_CHAIN_WS_TOKEN",
                               "resource_name": "No Such Model [trained model]"}])
    run = world.land("census/wrong.csv", good_data())
    pump.run()
    run = world.run(run.run_id)
    assert run.status is Status.FAILED and "wrongname" in run.reason
    assert world.ctx.models.get(world.model).champion is None
    assert world.served_model(url) is None


def test_cancelling_a_running_run_cancels_its_job(world, pump):
    world.register()
    world.inject(type="slow_job", seconds=20)
    run = world.land("census/cancel.csv", good_data())
    pump.run(until=lambda: world.run(run.run_id).status is Status.RUNNING)
    cancelled = chain.cancel(world.ctx, world.model, run.run_id, by="alice")
    assert cancelled.status is Status.CANCELLED and cancelled.reason == "cancelled by alice"
    assert any(r["path"].endswith(cancelled.job_id) for r in world.requests_to("DELETE", "/jobs/[^/]+$"))
    pump.run()
    assert world.run(run.run_id).status is Status.CANCELLED


def test_an_overwritten_blob_supersedes_the_run_made_for_its_old_version(world, pump):
    world.register()
    old = world.land("census/over.csv", good_data(seed=4))  # active, not yet submitted
    new = world.land("census/over.csv", good_data(seed=5))  # same name, new ETag: pending
    pump.run()
    assert world.run(old.run_id).status is Status.SUPERSEDED
    assert "overwritten" in world.run(old.run_id).reason
    assert world.run(new.run_id).status is Status.PROMOTED
