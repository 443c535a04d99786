"""A job interrupted by the service is resubmitted; a job that fails on its data fails the run at once."""

from urllib.parse import urlsplit

import pytest
import requests

from devhost.world import Emulator
from retrain.context import Context
from retrain.http import RetryPolicy
from retrain.job_failures import MAX_ATTEMPTS
from retrain.runs import Status
from tests import datasets

from .conftest import Pump, World, good_data, write_chain_config


def test_a_job_failing_on_its_data_fails_the_run_at_once_with_the_module_error(world, pump):
    world.register()
    run = world.land("census/bad.csv", datasets.binary_csv(rows=100).replace(b"label", b"labl", 1))
    pump.run()
    run = world.run(run.run_id)
    assert run.status is Status.FAILED and run.attempt == 1
    assert run.reason.startswith("the training job failed: Error 0001: ")
    assert "{" not in run.reason and run.error.startswith('{"error"')  # the whole envelope stays in `error`


def test_a_job_that_failed_without_a_data_error_is_resubmitted_to_fresh_outputs(world, pump):
    world.register()
    world.inject(type="fail_job", details="Error 0000: The job's process ended unexpectedly (exit code -9).")
    first = world.land("census/a.csv", good_data())
    pump.run()
    run = world.run(first.run_id)
    assert run.status is Status.PROMOTED and run.attempt == 2
    assert "/2/model.ilearner" in run.outputs["model"]["relative_location"]


def test_interruptions_beyond_the_attempt_budget_fail_the_run_saying_so(world, pump):
    world.register()
    world.inject(type="fail_job", count=MAX_ATTEMPTS, details="The job was interrupted; submit it again.")
    first = world.land("census/a.csv", good_data())
    pump.run()
    run = world.run(first.run_id)
    assert run.status is Status.FAILED and run.attempt == MAX_ATTEMPTS
    assert f"failed {MAX_ATTEMPTS} times without a data error" in run.reason


@pytest.fixture
def own_emulator(tmp_path, azurite):
    """An emulator this test may restart (the shared one must stay up)."""
    server = Emulator.start(write_chain_config(tmp_path, azurite), tmp_path / "data", faults=True, workers=1)
    yield server
    server.stop()


def test_a_job_cut_off_by_a_service_restart_is_resubmitted_and_the_run_promotes(world, own_emulator):
    env = dict(world.ctx.env, ALLOWED_SERVICE_HOSTS=urlsplit(own_emulator.url).netloc)
    ctx = Context.from_env(env, retry=RetryPolicy(attempts=2, backoff=0.05, max_backoff=0.2, budget=2.0))
    world = World(ctx, own_emulator)
    pump = Pump(ctx)
    world.register()
    requests.post(f"{own_emulator.url}/_admin/faults", json={"type": "slow_job", "seconds": 60}, timeout=10)
    first = world.land("census/a.csv", good_data())
    pump.run(until=lambda: world.run(first.run_id).status is Status.RUNNING)
    restarted = own_emulator.restart()
    try:
        pump.run(until=lambda: world.run(first.run_id).terminal, timeout=120)
    finally:
        own_emulator.process = restarted.process  # so the fixture stops the live process
    run = world.run(first.run_id)
    assert run.status is Status.PROMOTED and run.attempt == 2, run.reason
