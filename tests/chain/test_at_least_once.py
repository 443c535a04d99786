"""Crashes between a side effect and its state write, lost enqueues and duplicate deliveries.

Whatever happens, each run ends correctly, an endpoint is PATCHed exactly once per promoted run,
and no BES job is started beyond the one in flight.
"""

from dataclasses import replace
from datetime import timedelta
import time

import pytest

from retrain import sweeper
from retrain.queues import Step
from retrain.runs import Status
from retrain.triggers import on_blob

from .conftest import good_data


class Crash(Exception):
    """The worker died here (the host redelivers the message)."""


def crash_once(monkeypatch, obj, name, when):
    """Make `obj.name(...)` raise Crash the first time `when(*args)` holds, before or after calling through."""
    original = getattr(obj, name)
    state = {"fired": False}

    def wrapper(*args, **kwargs):
        if not state["fired"] and when(*args, **kwargs):
            state["fired"] = True
            raise Crash(name)
        return original(*args, **kwargs)

    monkeypatch.setattr(obj, name, wrapper)
    return state


def crash_after(monkeypatch, obj, name, when):
    """Call through, then raise Crash the first time `when(*args)` holds: the side effect happened."""
    original = getattr(obj, name)
    state = {"fired": False}

    def wrapper(*args, **kwargs):
        result = original(*args, **kwargs)
        if not state["fired"] and when(*args, **kwargs):
            state["fired"] = True
            raise Crash(name)
        return result

    monkeypatch.setattr(obj, name, wrapper)
    return state


def saving(status):
    return lambda run, *a, **k: run.status is status


def patches(world):
    return [r for r in world.requests_to("PATCH", "/endpoints/") if r.get("status", 200) < 300]


def jobs_started(world):
    return [r for r in world.requests_to("POST", "/jobs/[^/]+/start$") if r.get("status", 204) < 300]


@pytest.fixture
def endpoint(world):
    world.register()
    return world.ctx.models.get(world.model).definition.endpoints[0].url


def finish_and_check(world, pump, run_id):
    pump.run()
    run = world.run(run_id)
    assert run.status is Status.PROMOTED, run.reason
    assert len(patches(world)) == 1, patches(world)
    return run


@pytest.mark.parametrize("status", [Status.QUEUED, Status.RUNNING, Status.EVALUATING, Status.PROMOTING,
                                    Status.PROMOTED])
def test_a_crash_before_each_state_write_is_recovered_by_redelivery(world, pump, endpoint, monkeypatch, status):
    before = len(patches(world))
    writer = "end" if status.terminal else "save"  # an ending is written by RunStore.end (chain.finish)
    state = crash_once(monkeypatch, world.ctx.runs, writer, saving(status))
    event = world.upload("census/crash.csv", good_data())
    try:
        result = on_blob(world.ctx, event)
    except Crash:  # admission itself crashed: the host retries the blob trigger with the same blob
        result = on_blob(world.ctx, event)
    run = result.run
    pump.run()
    assert state["fired"]
    run = world.run(run.run_id)
    assert run.status is Status.PROMOTED, run.reason
    assert len(patches(world)) - before == 1


def test_a_crash_after_the_bes_submit_leaves_no_second_running_job(world, pump, endpoint, monkeypatch):
    starts = len(jobs_started(world))
    bes_class = type(world.ctx.bes(world.ctx.models.get(world.model).definition))
    crash_after(monkeypatch, bes_class, "submit", lambda *a, **k: True)
    run = world.land("census/submit.csv", good_data())
    pump.run()
    assert world.run(run.run_id).status is Status.PROMOTED
    assert len(jobs_started(world)) - starts == 1  # the orphan job from the crashed try was never started


def test_a_crash_after_the_endpoint_patch_does_not_patch_twice(world, pump, endpoint, monkeypatch):
    before = len(patches(world))
    crash_once(monkeypatch, world.ctx.promotions, "append", lambda *a, **k: True)
    run = world.land("census/patch.csv", good_data())
    pump.run()
    run = world.run(run.run_id)
    assert run.status is Status.PROMOTED, run.reason
    assert len(patches(world)) - before == 1
    assert len(world.ctx.promotions.history(world.model)) == 1


def test_a_crash_after_moving_the_champion_still_ends_the_run(world, pump, endpoint, monkeypatch):
    crash_after(monkeypatch, world.ctx.models, "update",
                lambda name, change, *a, **k: getattr(change, "__name__", "") == "<lambda>"
                and world.ctx.models.get(name).champion is not None)
    run = world.land("census/champ.csv", good_data())
    pump.run()
    assert world.run(run.run_id).status is Status.PROMOTED
    assert world.ctx.models.get(world.model).active_run is None


@pytest.mark.parametrize("step", list(Step))
def test_a_lost_enqueue_is_re_driven_by_the_sweeper(world, pump, endpoint, monkeypatch, step):
    world.ctx.settings = replace(world.ctx.settings, sweep_grace=timedelta(0))
    original = world.ctx.queues.send
    lost = {"n": 0}

    def send(message, delay=0):
        if message.step is step and not lost["n"]:
            lost["n"] += 1
            return  # state was written, then the worker died before enqueueing
        original(message, delay)

    monkeypatch.setattr(world.ctx.queues, "send", send)
    run = world.land("census/lost.csv", good_data())
    pump.run()
    assert lost["n"] == 1 and not world.run(run.run_id).terminal
    report = sweeper.sweep(world.ctx)
    assert run.run_id in report.redriven
    pump.run()
    assert world.run(run.run_id).status is Status.PROMOTED


def test_every_message_delivered_twice_still_gives_one_job_and_one_patch(world, pump, endpoint):
    starts, before = len(jobs_started(world)), len(patches(world))
    original = pump.once

    def twice(step):
        client = world.ctx.queues.clients[step]
        messages = list(client.receive_messages(max_messages=16, visibility_timeout=30))
        for message in messages:
            from retrain import steps
            steps.handle(world.ctx, step, message.content)
            steps.handle(world.ctx, step, message.content)  # the duplicate delivery
            client.delete_message(message)
        return len(messages)

    pump.once = twice
    run = world.land("census/twice.csv", good_data())
    pump.run()
    pump.once = original
    assert world.run(run.run_id).status is Status.PROMOTED
    assert len(jobs_started(world)) - starts == 1
    assert len(patches(world)) - before == 1


def test_the_sweeper_ends_a_stalled_run_past_its_deadline_and_starts_the_pending_one(world, pump, endpoint,
                                                                                      monkeypatch):
    monkeypatch.setattr(world.ctx.queues, "send", lambda message, delay=0: None)  # every enqueue is lost
    stalled = world.land("census/stalled.csv", good_data(seed=1))
    waiting = world.land("census/waiting.csv", good_data(seed=2))
    monkeypatch.undo()
    world.ctx.clock = lambda: _in(hours=3)  # past the two-hour deadline of both
    report = sweeper.sweep(world.ctx)
    assert stalled.run_id in report.expired
    stalled = world.run(stalled.run_id)
    assert stalled.status is Status.FAILED and stalled.reason.startswith("timed out")
    assert world.ctx.models.get(world.model).active_run == waiting.run_id
    pump.run()
    assert world.run(waiting.run_id).status is Status.PROMOTED  # its deadline started when it was admitted


def test_the_sweeper_admits_a_pending_run_that_a_crash_left_unreferenced(world, pump, endpoint, monkeypatch):
    crash_once(monkeypatch, world.ctx.models, "update", lambda *a, **k: True)
    event = world.upload("census/orphan.csv", good_data())
    with pytest.raises(Crash):
        on_blob(world.ctx, event)  # the run row exists, the model row never heard of it
    [orphan] = world.ctx.runs.list(world.model)
    assert orphan.status is Status.PENDING
    assert orphan.run_id in sweeper.sweep(world.ctx).admitted
    pump.run()
    assert world.run(orphan.run_id).status is Status.PROMOTED


def _in(hours: float):
    from datetime import datetime, timezone
    return datetime.now(timezone.utc) + timedelta(hours=hours)


def test_a_fractional_delay_is_rounded_up_so_a_message_never_comes_back_before_its_time(world):
    """A rollout's wait (a dwell's remainder, 0.5 s) is a delayed message: cut to 0 s, it would spin until due."""
    from retrain.queues import StepMessage

    world.ctx.queues.send(StepMessage("m", "r", Step.PROMOTE, 0), 0.6)
    client = world.ctx.queues.clients[Step.PROMOTE]
    assert list(client.receive_messages(max_messages=1)) == []
    deadline = time.monotonic() + 5
    while not (got := list(client.receive_messages(max_messages=1))) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(got) == 1
