"""The API's public views: documented shapes built from stored rows, internals left out."""

from dataclasses import replace

from retrain.evaluation import Evaluation
from retrain.policy import Champion, Policy, decide
from retrain.runs import DataRef, Run, Status, Trigger
from retrain.views import decision_view, run_view

DATA = DataRef("training-data", "census/2024-06.csv", '"0x8DC1"', 1234)
RUN = Run("census", "r1", Trigger.BLOB, DATA, Status.RUNNING, "training job j1 is running",
          "2026-01-01T00:00:00.000+00:00", "2026-01-01T02:00:00.000+00:00", polls=3, transient_failures=2,
          job_started=True, next_action_at="2026-01-01T00:05:00.000+00:00", job_id="j1",
          outputs={"model": {"base_location": "https://a/", "relative_location": "c/m"}})


def test_a_run_view_leaves_the_chain_bookkeeping_out():
    view = run_view(RUN)
    assert not {"polls", "transient_failures", "job_started", "next_action_at", "outputs", "etag"} & set(view)
    assert view["status"] == "running" and view["job_id"] == "j1" and view["links"]["self"] == "/api/models/census/runs/r1"


def test_a_decision_is_shown_with_each_checks_sentence():
    policy = Policy.from_json({"rules": [{"metric": "AUC", "min": 0.75, "min_relative_improvement": 0.01}]})
    decision = decide(policy, Evaluation({"AUC": 0.866}, {"AUC": 0.861}), Champion("c1", {"AUC": 0.8}))
    view = decision_view(decision.to_record())
    [rule] = view["rules"]
    assert view["summary"] == decision.summary and not view["passed"]
    assert [c["kind"] for c in rule["checks"]] == ["minimum", "relative_improvement"]
    assert all(c["text"] for c in rule["checks"]) and "0.75" in rule["checks"][0]["text"]


def test_a_decision_record_that_cannot_be_rebuilt_still_shows_its_summary():
    view = run_view(replace(RUN, decision={"passed": True, "summary": "Promoted: ok"}))
    assert view["decision"]["summary"] == "Promoted: ok" and view["decision"]["rules"] == []
