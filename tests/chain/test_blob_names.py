"""Blob names are the user's: every character Azure allows trains and promotes, because every URL is encoded."""

import pytest

from retrain.runs import Status

from .conftest import good_data

LONG = "census/" + "x" * (1024 - len("census/") - len(".csv")) + ".csv"


@pytest.mark.parametrize("name", [
    "census/with space.csv",
    "census/hash#1.csv",
    "census/what?.csv",
    "census/percent%41%2F.csv",
    "census/données-日本語-✓.csv",
    "census/a+b&c=d;e'f.csv",
    LONG,
], ids=["space", "hash", "question", "percent", "unicode", "punctuation", "1024-chars"])
def test_odd_but_legal_blob_names_train_and_promote(world, pump, name):
    world.register()
    first = world.land(name, good_data())
    pump.run()
    run = world.run(first.run_id)
    assert run.status is Status.PROMOTED, (run.reason, run.error)
    assert run.data.name == name
    champion = world.ctx.models.get("census").champion
    assert champion.run_id == run.run_id


def test_a_second_run_on_an_odd_name_gets_the_champion_as_its_baseline(world, pump):
    world.register()
    first = world.land("census/q?#%.csv", good_data(seed=1))
    pump.run()
    second = world.land("census/q?#% 2.csv", good_data(seed=3))
    pump.run()
    run = world.run(second.run_id)
    assert run.status in (Status.PROMOTED, Status.REJECTED), run.reason
    assert run.baseline_run == first.run_id and run.decision["basis"] == "same_holdout"
