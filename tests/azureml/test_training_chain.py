"""The chain's submit, check and evaluate on the local Azure ML service (HTTPS) and Azurite: no mocks.

The one stand-in is the token: Azure AD cannot exist here, so the app's credential is the static token the
local service checks (ARM_ACCESS_TOKEN). States the local service never reaches by itself (NotResponding,
Paused, ...) are answered by its own fault injection on `jobs.get`, the way a real gateway would answer.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from retrain.artifacts import AzureMLModel
from retrain.queues import Step, StepMessage
from retrain.runs import Status
from retrain.training.azureml import STATES, job_name
from tests.azureml.chain_world import azureml_training, new_chain
from tests.datasets import binary_csv

pytestmark = pytest.mark.slow


def good(seed: int = 1) -> bytes:
    return binary_csv(rows=300, seed=seed, noise=0.03)


@pytest.fixture
def chain(azurite, azureml):
    world = new_chain(azurite, azureml)
    yield world
    azureml.faults("DELETE")


def settle(chain, run_id: str, timeout: float = 120) -> None:
    chain.pump.run(until=lambda: chain.run(run_id).status.terminal, timeout=timeout)


def test_a_first_run_trains_in_the_workspace_and_becomes_champion(chain):
    chain.register()
    run = chain.land("one.csv", good())
    settle(chain, run.run_id)
    done = chain.run(run.run_id)
    assert done.status is Status.PROMOTED, done.reason
    assert done.job_id == job_name(chain.model, run.run_id, 1)
    assert set(done.metrics) == {"AUC", "Accuracy"} and done.metrics["AUC"] > 0.8  # read through MLflow
    champion = chain.ctx.models.get(chain.model).champion
    assert champion.location == AzureMLModel(chain.ctx.models.get(chain.model).definition.training.workspace.reference,
                                             done.job_id, "model")


def test_the_next_run_is_scored_against_the_champion_on_the_same_holdout_and_rejected(chain):
    chain.register(policy={"rules": [{"metric": "AUC", "min": 0.5, "min_improvement": 0.05}]})
    first = chain.land("one.csv", good())
    settle(chain, first.run_id)
    second = chain.land("two.csv", good(seed=5))  # as good as the champion, not 0.05 better
    settle(chain, second.run_id)
    done = chain.run(second.run_id)
    [job] = chain.jobs_of(second.run_id)
    assert job["properties"]["inputs"]["baseline"]["uri"] == f"azureml://jobs/{chain.run(first.run_id).job_id}/outputs/model"
    assert done.status is Status.REJECTED, done.reason
    assert done.baseline_run == first.run_id and "same hold-out" in done.decision["summary"]


def test_a_redelivered_submit_makes_one_job(chain):
    chain.register()
    run = chain.land("one.csv", good())
    chain.ctx.queues.send(StepMessage(chain.model, run.run_id, Step.SUBMIT), 0)  # the message delivered twice
    settle(chain, run.run_id)
    assert chain.run(run.run_id).status is Status.PROMOTED
    assert len(chain.jobs_of(run.run_id)) == 1 and chain.job_puts(job_name(chain.model, run.run_id, 1)) == 1


def test_a_crash_after_the_job_put_before_the_run_is_saved_reuses_that_job(chain):
    chain.register()
    run = chain.land("one.csv", good())
    model = chain.ctx.models.get(chain.model)
    from retrain import pinning

    pinned = pinning.pin(chain.ctx, run)
    chain.ctx.training(model.definition).submit(pinned, model)  # the PUT happened; the process died before the save
    settle(chain, run.run_id)
    assert chain.run(run.run_id).status is Status.PROMOTED
    assert len(chain.jobs_of(run.run_id)) == 1 and chain.job_puts(job_name(chain.model, run.run_id, 1)) == 1


def test_every_state_that_is_not_an_ending_keeps_the_run_polling(chain, azureml):
    chain.register()
    run = chain.land("one.csv", good())
    chain.azureml.faults("POST", {"type": "slow_job", "seconds": 60})
    chain.pump.run(until=lambda: chain.run(run.run_id).status is Status.RUNNING, only=(Step.SUBMIT,))
    seen = []
    for state in (s for s, phase in STATES.items() if phase.value == "active"):
        azureml.faults("POST", {"type": "response", "route": "jobs.get", "status": 200, "count": 1,
                                "body": {"name": chain.run(run.run_id).job_id, "properties": {"status": state}}})
        chain.pump.run(until=lambda: chain.run(run.run_id).polls > len(seen), only=(Step.CHECK,), timeout=30)
        current = chain.run(run.run_id)
        assert current.status is Status.RUNNING
        seen.append(current.reason)
    assert "training job" in seen[0] and seen[seen.index(next(r for r in seen if "not responding" in r))]
    assert any(r.endswith("is paused") for r in seen) and any(r.endswith("is cancel requested") for r in seen)
    chain.ctx.training(chain.ctx.models.get(chain.model).definition).cancel(chain.run(run.run_id).job_id)


def test_not_responding_then_completed_goes_on_to_evaluate(chain, azureml):
    chain.register()
    run = chain.land("one.csv", good())
    chain.pump.run(until=lambda: chain.run(run.run_id).status is Status.RUNNING, only=(Step.SUBMIT,))
    azureml.faults("POST", {"type": "response", "route": "jobs.get", "status": 200, "count": 2,
                            "body": {"name": "x", "properties": {"status": "NotResponding"}}})
    chain.pump.run(until=lambda: chain.run(run.run_id).polls >= 1, only=(Step.CHECK,), timeout=30)
    assert chain.run(run.run_id).reason.endswith("is not responding")
    settle(chain, run.run_id)
    assert chain.run(run.run_id).status is Status.PROMOTED


def test_a_job_failing_on_its_data_fails_the_run_at_once_with_the_logs_reason(chain):
    chain.register()
    run = chain.land("one.csv", b"x1,x2\n1,2\n3,4\n")  # no label column
    settle(chain, run.run_id)
    done = chain.run(run.run_id)
    assert done.status is Status.FAILED and done.attempt == 1
    assert done.reason.startswith("the training job failed: The command exited with code 1. The log ends: Training failed")
    assert "label" in done.reason


def test_a_system_error_resubmits_under_a_new_job_name(chain, azureml):
    chain.register()
    azureml.faults("POST", {"type": "fail_job", "details": "Infrastructure error: node lost"})
    run = chain.land("one.csv", good())
    settle(chain, run.run_id, timeout=180)
    done = chain.run(run.run_id)
    assert done.status is Status.PROMOTED and done.attempt == 2, done.reason
    assert [j["name"] for j in sorted(chain.jobs_of(run.run_id), key=lambda j: j["name"])] == [
        job_name(chain.model, run.run_id, 1), job_name(chain.model, run.run_id, 2)]


def test_the_deadline_cancels_the_job(chain, azureml):
    chain.register()
    azureml.faults("POST", {"type": "slow_job", "seconds": 60})
    run = chain.land("one.csv", good())
    chain.pump.run(until=lambda: chain.run(run.run_id).status is Status.RUNNING, only=(Step.SUBMIT,))
    job = chain.run(run.run_id).job_id
    later = chain.ctx.clock() + chain.ctx.settings.run_timeout + timedelta(minutes=1)
    chain.ctx.clock = lambda: later
    chain.pump.run(until=lambda: chain.run(run.run_id).status.terminal, only=(Step.CHECK,), timeout=30)
    done = chain.run(run.run_id)
    assert done.status is Status.FAILED and "its training job was cancelled" in done.reason
    final = azureml.wait_job(job, timeout=30)
    assert final["properties"]["status"] == "Canceled"


def test_a_job_that_logged_none_of_the_metrics_fails_the_run_saying_what_it_logged(chain):
    chain.register(metrics={"rmse": "Root Mean Squared Error"},
                   policy={"rules": [{"metric": "Root Mean Squared Error", "max": 1.0}]})
    run = chain.land("one.csv", good())
    settle(chain, run.run_id)
    done = chain.run(run.run_id)
    assert done.status is Status.FAILED
    assert "logged none of rmse to MLflow (it logged: accuracy, auc, f1, log_loss)" in done.reason


def test_without_a_baseline_input_the_champions_recorded_metrics_are_compared_and_the_decision_says_so(chain):
    chain.register(baseline_input=None, policy={"rules": [{"metric": "AUC", "min": 0.5, "min_improvement": 0.05}]},
                   job={"properties": {**azureml_training(chain.azureml)["job"]["properties"],
                                       "command": "python train.py --data ${{inputs.data}} --label label "
                                                  "--model ${{outputs.model}}"}})
    first = chain.land("one.csv", good())
    settle(chain, first.run_id)
    second = chain.land("two.csv", good(seed=5))
    settle(chain, second.run_id)
    done = chain.run(second.run_id)
    assert done.status is Status.REJECTED and not done.baseline_run
    assert f"Compared with the champion's recorded metrics (run {first.run_id})" in done.decision["summary"]
    assert "baseline" not in chain.jobs_of(second.run_id)[0]["properties"]["inputs"]
