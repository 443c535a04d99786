"""People racing each other and the chain: exactly one wins, every loser hears 409 with what happened."""

import threading

from retrain import api, chain
from retrain.promotions import Reason
from retrain.queues import Step
from retrain.runs import Status

from .conftest import good_data
from .test_promotion import promote_first

APPROVAL = {"rules": [{"metric": "AUC", "min": 0.6}], "approval": {"required": True}}
LENIENT = {"rules": [{"metric": "AUC", "min": 0.6, "min_improvement": None}]}


def at_once(*calls):
    """Run the calls in threads released together; their answers in order."""
    barrier = threading.Barrier(len(calls))
    answers = [None] * len(calls)

    def go(i, call):
        barrier.wait()
        answers[i] = call()

    threads = [threading.Thread(target=go, args=(i, c)) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return answers


def action(world, run_id, name, by):
    return lambda: api.handle(world.ctx, api.run_action, api.ApiRequest(
        "POST", {"model": world.model, "run": run_id, "action": name}, {}, f'{{"by": "{by}"}}'.encode()))


def test_approve_and_reject_at_once_one_wins_and_the_other_hears_409(world, pump):
    world.register(policy=APPROVAL)
    run = world.land("census/a.csv", good_data())
    pump.run()
    assert world.run(run.run_id).status is Status.AWAITING_APPROVAL
    approved, rejected = at_once(action(world, run.run_id, "approve", "ann"),
                                 action(world, run.run_id, "reject", "bob"))
    assert sorted([approved.status, rejected.status]) == [200, 409]
    loser = approved if approved.status == 409 else rejected
    assert world.run(run.run_id).status.value in loser.body["error"]["message"]  # what happened instead
    pump.run()
    assert world.run(run.run_id).status in ((Status.PROMOTED,) if approved.status == 200 else (Status.REJECTED,))


def test_a_cancel_that_loses_to_the_promotion_hears_409_and_the_run_promotes(world, pump, monkeypatch):
    world.register()
    run = world.land("census/a.csv", good_data())
    pump.run(until=lambda: world.run(run.run_id).status is Status.EVALUATING, only=(Step.SUBMIT, Step.CHECK))
    cancel_job = chain.cancel_job_quietly

    def evaluate_meanwhile(ctx, **kw):  # the race window: after cancel read the run, before it writes
        pump.run(until=lambda: world.run(run.run_id).status is Status.PROMOTING, only=(Step.EVALUATE,))
        cancel_job(ctx, **kw)

    monkeypatch.setattr(chain, "cancel_job_quietly", evaluate_meanwhile)
    answer = action(world, run.run_id, "cancel", "carol")()
    assert answer.status == 409
    assert "changed while cancelling: it is now promoting" in answer.body["error"]["message"]
    pump.run()
    assert world.run(run.run_id).status is Status.PROMOTED


def test_two_rollbacks_at_once_write_one_history_row_and_one_hears_409(world, pump):
    world.register(policy=LENIENT)
    first = promote_first(world, pump, "census/1.csv", seed=1)
    promote_first(world, pump, "census/2.csv", seed=2)
    call = lambda: api.handle(world.ctx, api.rollback, api.ApiRequest("POST", {"model": world.model}))  # noqa: E731
    answers = at_once(call, call, call)
    assert sorted(a.status for a in answers) == [200, 409, 409], [a.body for a in answers]
    assert all("in progress" in a.body["error"]["message"] or "already" in a.body["error"]["message"]
               for a in answers if a.status == 409)
    rollbacks = [p for p in world.ctx.promotions.history(world.model) if p.reason is Reason.ROLLBACK]
    assert len(rollbacks) == 1 and world.ctx.models.get(world.model).champion.run_id == first.run_id


def test_a_rollback_after_another_has_ended_proceeds(world, pump):
    world.register(policy=LENIENT)
    promote_first(world, pump, "census/1.csv", seed=1)
    promote_first(world, pump, "census/2.csv", seed=2)
    call = lambda: api.handle(world.ctx, api.rollback, api.ApiRequest("POST", {"model": world.model}))  # noqa: E731
    assert call().status == 200 and call().status == 200  # the lock is released after each
