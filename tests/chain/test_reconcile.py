"""No data left behind: the sweeper starts a run for a model's newest blob when its trigger never fired."""

from retrain import api, sweeper
from retrain.runs import Status, Trigger

from .conftest import good_data


def test_a_blob_whose_trigger_never_fired_is_trained_after_the_next_sweep(world, pump, caplog):
    world.register()
    world.upload("census/lost-event.csv", good_data())  # uploaded, but no trigger ever fires for it
    report = sweeper.sweep(world.ctx)
    [found] = report.reconciled
    assert found.blob.endswith("census/lost-event.csv") and "reconciled 1" in str(report)
    assert "had no run" in caplog.text
    pump.run()
    run = world.run(found.run_id)
    assert run.status is Status.PROMOTED and run.trigger is Trigger.RECONCILE
    listed = api.handle(world.ctx, api.list_runs, api.ApiRequest("GET", {"model": world.model})).body["runs"]
    assert listed[0]["trigger"] == "reconcile"


def test_data_whose_trigger_fired_is_not_started_again(world, pump):
    world.register()
    world.land("census/a.csv", good_data())
    assert sweeper.sweep(world.ctx).reconciled == []
    pump.run()
    assert sweeper.sweep(world.ctx).reconciled == []
    assert len(world.ctx.runs.list(world.model)) == 1


def test_only_the_newest_version_is_reconciled_and_older_untrained_blobs_are_not(world, pump):
    world.register()
    world.upload("census/1.csv", good_data(seed=1))
    world.upload("census/2.csv", good_data(seed=2))
    [found] = sweeper.sweep(world.ctx).reconciled
    assert found.blob.endswith("census/2.csv")
    assert sweeper.sweep(world.ctx).reconciled == []  # the run exists now, whatever its state
