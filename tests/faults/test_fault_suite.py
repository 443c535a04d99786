"""A short seeded run of the fault suite: separate processes, SIGKILLs and injected faults; every invariant holds."""

import pytest

from benchmarks import fault_bench

MUST_BE_ZERO = ["stuck runs (not terminal)", "duplicate runs (same blob version)",
                "PATCHes applied - promotions x endpoints", "newest data not trained or rejected",
                "champion != what the endpoint serves"]


@pytest.mark.parametrize("seed", [7])
def test_a_short_seeded_fault_run_keeps_every_invariant(seed, tmp_path):
    figures, done, settled = fault_bench.run(seed, seconds=12, settle=90, models=1, root=tmp_path)
    assert figures["runs"] > 0, done.actions
    assert {name: figures[name] for name in MUST_BE_ZERO} == dict.fromkeys(MUST_BE_ZERO, 0), done.actions
    assert figures.get("BES jobs started beyond run attempts", 0) == 0, done.actions
