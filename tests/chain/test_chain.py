"""The retraining chain end to end (trigger -> submit -> check -> evaluate -> promote) on real services."""

import json
import logging

from devhost.world import DEV_KEY
from retrain.runs import Status

from .conftest import TRAIN_KEY, WS_TOKEN, corrupted_data, good_data


def test_first_good_data_is_trained_evaluated_and_promoted(world, pump):
    world.register()
    endpoint = world.model and world.ctx.models.get(world.model).definition.endpoints[0].url
    run = world.land("census/2024-01.csv", good_data())
    pump.run()
    run = world.run(run.run_id)
    assert run.status is Status.PROMOTED, run.reason
    assert run.decision["passed"] and run.metrics["AUC"] > 0.7
    champion = world.ctx.models.get(world.model).champion
    assert champion.run_id == run.run_id
    assert world.served_model(endpoint) == champion.location.uri
    assert [s for s in ("pending", "queued", "running", "evaluating", "promoting", "promoted")
            if s in run.step_times] == ["pending", "queued", "running", "evaluating", "promoting", "promoted"]


def test_worse_data_is_rejected_and_the_endpoint_keeps_its_model(world, pump):
    world.register(policy={"rules": [{"metric": "AUC", "min": 0.6, "min_improvement": 0.0}]})
    endpoint = world.ctx.models.get(world.model).definition.endpoints[0].url
    first = world.land("census/a.csv", good_data())
    pump.run()
    served = world.served_model(endpoint)
    second = world.land("census/b.csv", corrupted_data())
    pump.run()
    second = world.run(second.run_id)
    assert second.status is Status.REJECTED, second.reason
    assert second.decision["passed"] is False and second.reason == second.decision["summary"]
    assert world.ctx.models.get(world.model).champion.run_id == first.run_id
    assert world.served_model(endpoint) == served


def test_the_same_blob_twice_is_one_run(world, pump):
    world.register()
    event = world.upload("census/once.csv", good_data())
    from retrain.triggers import on_blob
    a, b = on_blob(world.ctx, event), on_blob(world.ctx, event)
    assert a.run.run_id == b.run.run_id and a.created and not b.created
    pump.run()
    assert len(world.ctx.runs.list(world.model)) == 1


def test_data_arriving_while_a_run_is_active_waits_and_latest_wins(world, pump):
    world.register()
    first = world.land("census/1.csv", good_data(seed=1))
    second = world.land("census/2.csv", good_data(seed=2))
    third = world.land("census/3.csv", good_data(seed=3))
    assert world.run(second.run_id).status is Status.SUPERSEDED
    assert world.run(third.run_id).status is Status.PENDING
    assert world.ctx.models.get(world.model).pending_run == third.run_id
    pump.run()
    assert world.run(first.run_id).status is Status.PROMOTED
    assert world.run(third.run_id).terminal
    model = world.ctx.models.get(world.model)
    assert model.active_run is None and model.pending_run is None


def test_no_secret_reaches_table_storage_or_the_logs(world, pump, caplog):
    caplog.set_level(logging.DEBUG)
    world.register(policy={"rules": [{"metric": "AUC", "min": 0.6, "min_improvement": None}]})
    world.land("census/s1.csv", good_data(seed=1))
    pump.run()
    world.land("census/s2.csv", good_data(seed=2))  # carries the champion as a baseline SAS URL
    pump.run()
    ctx = world.ctx
    stored = json.dumps([dict(e) for t in (ctx.models.table, ctx.runs.table, ctx.promotions.table)
                         for e in t.list_entities()], default=str)
    for secret in (TRAIN_KEY, WS_TOKEN, "sig=", "AccountKey", DEV_KEY):
        assert secret not in stored, secret
        assert secret not in caplog.text, secret


def test_the_job_gets_least_privilege_sas_that_end_with_the_run(world, pump):
    """Read for the input and the champion, create/write for this attempt's outputs, all until the deadline."""
    from urllib.parse import parse_qs

    from retrain.runs import parse_iso

    world.register()
    first = world.land("census/one.csv", good_data())
    pump.run()
    assert world.run(first.run_id).status is Status.PROMOTED
    second = world.land("census/two.csv", good_data(seed=5))
    run, model = world.run(second.run_id), world.ctx.models.get(world.model)
    request, _, baseline = world.ctx.training(model.definition).job_request(run, model)
    deadline = parse_iso(run.deadline).strftime("%Y-%m-%dT%H:%M:%SZ")

    def sas(location) -> dict:
        return {k: v[0] for k, v in parse_qs(location.sas_token.lstrip("?")).items()}

    [data] = request.inputs.values()
    champion = request.global_parameters["Baseline model"]
    reads = [sas(data), {k: v[0] for k, v in parse_qs(champion.split("?", 1)[1]).items()}]
    writes = [sas(o) for o in request.outputs.values()]
    assert baseline == first.run_id and len(writes) == 2
    assert all(s["sp"] == "r" and s["sr"] == "b" and s["se"] == deadline for s in reads)
    assert all(s["sp"] == "cw" and s["sr"] == "b" and s["se"] == deadline for s in writes)
    assert {o.relative_location for o in request.outputs.values()} == {
        f"{world.ctx.settings.output_container}/{world.model}/{run.run_id}/{run.attempt}/{n}"
        for n in ("model.ilearner", "evaluation.csv")}
