"""The data a run trains on is exactly the blob version it records, whatever happens to the blob meanwhile."""

from retrain.queues import Step
from retrain.runs import Status
from tests import datasets

from .conftest import good_data


def _snapshots(world, name):
    container = world.ctx.storage.blobs.get_container_client(world.ctx.settings.training_container)
    return [b.snapshot for b in container.list_blobs(name_starts_with=name, include=["snapshots"]) if b.snapshot]


def test_an_overwrite_while_the_job_trains_is_new_data_with_its_own_run(world, pump):
    world.register()
    world.inject(type="slow_job", seconds=3)
    first = world.land("census/a.csv", good_data())
    pump.run(until=lambda: world.run(first.run_id).status is Status.RUNNING, only=(Step.SUBMIT,))
    pinned = world.run(first.run_id)
    assert pinned.data.snapshot and _snapshots(world, "census/a.csv") == [pinned.data.snapshot]
    unusable = datasets.binary_csv(rows=100).replace(b"label", b"labl", 1)  # would fail with Error 0001
    second = world.land("census/a.csv", unusable)
    assert second.run_id != first.run_id and second.status is Status.PENDING
    pump.run()
    trained = world.run(first.run_id)
    assert trained.status is Status.PROMOTED, trained.reason  # it read the pinned version 1
    assert trained.data.etag == first.data.etag
    overwritten = world.run(second.run_id)
    assert overwritten.status is Status.FAILED and "Error 0001" in overwritten.reason
    assert _snapshots(world, "census/a.csv") == []  # each run's snapshot went when the run ended


def test_an_overwrite_before_submit_supersedes_the_old_version_which_is_never_trained(world, pump):
    world.register()
    first = world.land("census/a.csv", good_data(seed=1))
    world.upload("census/a.csv", good_data(seed=2))  # the trigger for it is late
    pump.run()
    run = world.run(first.run_id)
    assert run.status is Status.SUPERSEDED and "overwritten" in run.reason and not run.data.snapshot
    assert _snapshots(world, "census/a.csv") == []


def test_a_resubmitted_job_reads_the_same_pinned_version(world, pump):
    world.register()
    world.inject(type="fail_job", details="The job was interrupted; submit it again.")
    first = world.land("census/a.csv", good_data())
    pump.run(until=lambda: world.run(first.run_id).status is Status.RUNNING, only=(Step.SUBMIT,))
    snapshot = world.run(first.run_id).data.snapshot
    pump.run()
    run = world.run(first.run_id)
    assert run.status is Status.PROMOTED and run.attempt == 2 and run.data.snapshot == snapshot
