"""Promotion you can trust: fair comparison, approval, rollback, ARM web services, many endpoints."""

from dataclasses import replace
from datetime import timedelta

import pytest
import requests

from retrain import api, chain, sweeper
from retrain.errors import Conflict
from retrain.queues import Step
from retrain.rollback import rollback
from retrain.runs import Status

from .conftest import ARM_NAME, ARM_TOKEN, RESOURCE, RG, SUB, corrupted_data, good_data


def arm_url(world) -> str:
    return (f"{world.emulator.url}/subscriptions/{SUB}/resourceGroups/{RG}/providers/"
            f"Microsoft.MachineLearning/webServices/{ARM_NAME}")


def arm_served(world) -> str | None:
    body = requests.get(arm_url(world), params={"api-version": "2017-01-01"},
                        headers={"Authorization": f"Bearer {ARM_TOKEN}"}, timeout=10).json()
    for asset in body["properties"]["assets"].values():
        if asset.get("type") == "Resource":
            return (asset.get("locationInfo") or {}).get("uri")
    return None


def promote_first(world, pump, name="census/first.csv", seed=1):
    run = world.land(name, good_data(seed=seed))
    pump.run()
    run = world.run(run.run_id)
    assert run.status is Status.PROMOTED, run.reason
    return run


# --- fair comparison -----------------------------------------------------------------------

def test_the_champion_is_scored_on_the_challengers_hold_out(world, pump):
    world.register(policy={"rules": [{"metric": "AUC", "min": 0.6, "min_improvement": 0.0}]})
    first = promote_first(world, pump)
    second = world.land("census/second.csv", good_data(seed=2))
    pump.run()
    second = world.run(second.run_id)
    assert second.baseline_run == first.run_id
    assert second.decision["basis"] == "same_holdout"
    auc = next(r for r in second.decision["rules"] if r["metric"] == "AUC")
    assert auc["champion"] is not None and auc["champion"] != first.metrics["AUC"]  # re-scored, not recalled


def test_a_service_that_cannot_score_a_baseline_is_compared_on_recorded_metrics_and_says_so(world, pump):
    world.register(policy={"rules": [{"metric": "AUC", "min": 0.6, "min_improvement": None}]})
    definition = world.ctx.models.get(world.model).definition
    world.ctx.models.put(replace(definition, training=replace(definition.training, baseline_parameter=None)))
    first = promote_first(world, pump)
    second = world.land("census/second.csv", good_data(seed=2))
    pump.run()
    second = world.run(second.run_id)
    assert second.baseline_run == "" and second.decision["basis"] == "champion_recorded"
    assert second.decision["rules"][0]["champion"] == pytest.approx(first.metrics["AUC"])


# --- approval ------------------------------------------------------------------------------

APPROVAL = {"rules": [{"metric": "AUC", "min": 0.6}], "approval": {"required": True, "expires_after_hours": 1}}


def test_a_passing_run_waits_for_approval_then_promotes_when_approved(world, pump):
    world.register(policy=APPROVAL)
    run = world.land("census/a.csv", good_data())
    pump.run()
    waiting = world.run(run.run_id)
    assert waiting.status is Status.AWAITING_APPROVAL and waiting.approval_expires_at
    assert world.ctx.models.get(world.model).active_run is None  # newer data is not blocked meanwhile
    chain.approve(world.ctx, world.model, run.run_id, by="carol")
    pump.run()
    done = world.run(run.run_id)
    assert done.status is Status.PROMOTED and done.decided_by == "carol"
    [promotion] = world.ctx.promotions.history(world.model)
    assert promotion.reason.value == "approval" and promotion.by == "carol"


def test_a_rejected_approval_ends_the_run_and_keeps_the_champion(world, pump):
    world.register(policy=APPROVAL)
    run = world.land("census/a.csv", good_data())
    pump.run()
    rejected = chain.reject(world.ctx, world.model, run.run_id, by="dave")
    assert rejected.status is Status.REJECTED and "dave" in rejected.reason
    assert world.ctx.models.get(world.model).champion is None
    with pytest.raises(Conflict):
        chain.approve(world.ctx, world.model, run.run_id, by="dave")


def test_an_approval_that_expires_rejects_the_run(world, pump):
    world.register(policy=APPROVAL)
    run = world.land("census/a.csv", good_data())
    pump.run()
    world.ctx.clock = lambda: _later(hours=2)
    sweeper.sweep(world.ctx)
    expired = world.run(run.run_id)
    assert expired.status is Status.REJECTED and expired.reason.startswith("approval expired")


def test_a_newer_passing_run_supersedes_an_older_one_waiting_for_approval(world, pump):
    world.register(policy=APPROVAL)
    older = world.land("census/a.csv", good_data(seed=1))
    pump.run()
    newer = world.land("census/b.csv", good_data(seed=2))
    pump.run()
    assert world.run(newer.run_id).status is Status.AWAITING_APPROVAL
    assert world.run(older.run_id).status is Status.SUPERSEDED


def _later(hours: float):
    from datetime import datetime, timezone
    return datetime.now(timezone.utc) + timedelta(hours=hours)


# --- rollback ------------------------------------------------------------------------------

def test_rollback_after_two_promotions_serves_the_first_model_again(world, pump):
    world.register(policy={"rules": [{"metric": "AUC", "min": 0.6, "min_improvement": None}]})
    endpoint = world.ctx.models.get(world.model).definition.endpoints[0].url
    first = promote_first(world, pump, "census/1.csv", seed=1)
    first_uri = world.served_model(endpoint)
    second = promote_first(world, pump, "census/2.csv", seed=2)
    assert world.served_model(endpoint) != first_uri
    result = rollback(world.ctx, world.model, by="erin", note="bad predictions")
    assert result.promotion.to_run == first.run_id and result.promotion.from_run == second.run_id
    assert world.served_model(endpoint) == first_uri
    assert world.ctx.models.get(world.model).champion.run_id == first.run_id
    history = world.ctx.promotions.history(world.model)
    assert [p.reason.value for p in history] == ["rollback", "policy", "policy"]


def test_rollback_to_a_named_run(world, pump):
    world.register(policy={"rules": [{"metric": "AUC", "min": 0.6, "min_improvement": None}]})
    first = promote_first(world, pump, "census/1.csv", seed=1)
    promote_first(world, pump, "census/2.csv", seed=2)
    promote_first(world, pump, "census/3.csv", seed=3)
    assert rollback(world.ctx, world.model, to_run=first.run_id).promotion.to_run == first.run_id


def test_rollback_with_nothing_to_roll_back_to_is_refused(world, pump):
    world.register()
    with pytest.raises(Conflict, match="no champion"):
        rollback(world.ctx, world.model)
    promote_first(world, pump)
    with pytest.raises(Conflict, match="no earlier model"):
        rollback(world.ctx, world.model)
    with pytest.raises(Conflict, match="never served"):
        rollback(world.ctx, world.model, to_run="0" * 20)


def test_rollback_is_refused_while_a_run_is_promoting(world, pump):
    world.register(policy={"rules": [{"metric": "AUC", "min": 0.6, "min_improvement": None}]})
    promote_first(world, pump, "census/1.csv", seed=1)
    promote_first(world, pump, "census/2.csv", seed=2)
    run = world.land("census/3.csv", good_data(seed=3))
    pump.run(until=lambda: world.run(run.run_id).status is Status.PROMOTING,
             only=(Step.SUBMIT, Step.CHECK, Step.EVALUATE))
    response = api.handle(world.ctx, api.rollback, api.ApiRequest("POST", {"model": world.model}))
    assert response.status == 409 and "promoting" in response.body["error"]["message"]
    pump.run()


# --- ARM web services and many endpoints ---------------------------------------------------

def test_an_arm_web_service_is_repointed_to_the_new_model(world, pump):
    world.register(endpoints=[{"kind": "arm", "url": arm_url(world), "resource_name": RESOURCE}])
    run = promote_first(world, pump)
    assert arm_served(world) == world.ctx.models.get(world.model).champion.location.uri
    assert run.endpoints[ARM_NAME]["ok"]


def test_a_failed_arm_provisioning_fails_the_promotion_and_keeps_the_champion(world, pump):
    world.register(endpoints=[{"kind": "arm", "url": arm_url(world), "resource_name": RESOURCE}])
    before = arm_served(world)
    world.inject(type="fail_provisioning", message="The model could not be loaded: quota exceeded")
    run = world.land("census/a.csv", good_data())
    pump.run()
    run = world.run(run.run_id)
    assert run.status is Status.FAILED and "quota exceeded" in run.reason
    assert world.ctx.models.get(world.model).champion is None
    assert arm_served(world) == before


def test_three_endpoints_one_failing_then_recovering_on_retry(world, pump):
    urls = [world.create_endpoint(f"cust{i}") for i in range(2)]
    world.register(endpoints=[{"kind": "classic", "url": u, "key_setting": "RETRAIN_SECRET_CHAIN_WS_TOKEN", "resource_name": RESOURCE}
                              for u in urls] + [{"kind": "arm", "url": arm_url(world), "resource_name": RESOURCE}])
    world.ctx.settings = replace(world.ctx.settings, transient_retry_limit=1)
    world.inject(method="PATCH", path="/endpoints/cust1$", status=503, count=200)
    run = world.land("census/a.csv", good_data())
    pump.run()
    run = world.run(run.run_id)
    assert run.status is Status.FAILED and "cust1" in run.reason and "cust0" in run.reason.split("updated:")[1]
    assert run.endpoints["cust0"]["ok"] and run.endpoints[ARM_NAME]["ok"] and not run.endpoints["cust1"]["ok"]
    assert world.ctx.models.get(world.model).champion is None
    requests.delete(f"{world.emulator.url}/_admin/faults", timeout=10)
    patches_before = len(world.requests_to("PATCH", "/endpoints/cust0$"))
    chain.retry_promotion(world.ctx, world.model, run.run_id, by="ops")
    pump.run()
    run = world.run(run.run_id)
    assert run.status is Status.PROMOTED and all(o["ok"] for o in run.endpoints.values())
    assert len(world.requests_to("PATCH", "/endpoints/cust0$")) == patches_before  # only the failed one retried
    assert world.served_model(urls[1]) == world.ctx.models.get(world.model).champion.location.uri


def test_promotions_history_over_http(world, pump):
    world.register()
    run = promote_first(world, pump)
    body = api.handle(world.ctx, api.promotions, api.ApiRequest("GET", {"model": world.model})).body
    [row] = body["promotions"]
    assert row["to_run"] == run.run_id and row["reason"] == "policy" and row["by"] == "policy"
    assert "sig=" not in row["model_uri"]


def test_a_worse_model_is_rejected_on_the_same_hold_out(world, pump):
    world.register(policy={"rules": [{"metric": "AUC", "min": 0.5, "min_improvement": 0.0}]})
    promote_first(world, pump)
    worse = world.land("census/worse.csv", corrupted_data())
    pump.run()
    worse = world.run(worse.run_id)
    assert worse.status is Status.REJECTED and worse.decision["basis"] == "same_holdout"
