"""Events: each change announced once per subscriber, signed (Standard Webhooks), retried on schedule, Event Grid too.

A real Azurite and emulator, a local receiver that verifies every signature with `standardwebhooks`;
step and event messages delivered twice each (at-least-once), crashes between a change and its send.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections import Counter
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from azure.core.exceptions import ServiceRequestError

from retrain import api, chain, steps, sweeper
from retrain.context import Context
from retrain.errors import ConcurrentUpdate
from retrain.events import sender
from retrain.events.sender import MAX_ATTEMPTS, SCHEDULE
from retrain.events.store import DeliveryStatus
from retrain.http import RetryPolicy
from retrain.queues import Step
from retrain.rollback import rollback
from retrain.runs import Status
from tests.receiver import start_receiver

from .conftest import ARM_TOKEN, TRAIN_KEY, WS_TOKEN, World, corrupted_data, good_data

SECRET = "whsec_" + base64.b64encode(b"a-test-signing-secret-of-32-bytes").decode()
PASSING = {"rules": [{"metric": "AUC", "min": 0.6, "min_improvement": None}]}
APPROVAL = {"rules": [{"metric": "AUC", "min": 0.6}], "approval": {"required": True, "expires_after_hours": 1}}


@pytest.fixture(scope="module")
def receiver():
    server = start_receiver()
    yield server
    server.stop()


def make_world(azurite, emulator, receiver, **extra) -> World:
    suffix = uuid.uuid4().hex[:8]
    env = {"RETRAIN_STORAGE": azurite.connection_string, "RETRAIN_TABLE_PREFIX": f"t{suffix}",
           "TRAINING_CONTAINER": f"train-{suffix}", "OUTPUT_CONTAINER": f"out-{suffix}",
           "CHECK_INITIAL_DELAY_SECONDS": "0", "RETRAIN_SECRET_CHAIN_BES_KEY": TRAIN_KEY,
           "RETRAIN_SECRET_CHAIN_WS_TOKEN": WS_TOKEN, "ARM_ACCESS_TOKEN": ARM_TOKEN, "RETRAIN_SECRET_HOOK": SECRET,
           "ALLOWED_SERVICE_HOSTS": f"{receiver.host},{urlsplit(emulator.url).netloc}",
           **extra}
    ctx = Context.from_env(env, retry=RetryPolicy(attempts=2, backoff=0.05, max_backoff=0.2, budget=2.0)).ensure()
    return World(ctx, emulator)


class Twice:
    """Delivers every step and events message twice (at-least-once), recording each events delay."""

    def __init__(self, ctx: Context):
        self.ctx = ctx
        self.delays: list[tuple[dict, float]] = []
        send = ctx.event_queue.send

        def spy(body, delay=0):  # the real queue, no waiting: the delay a message asked for is recorded
            self.delays.append((body, delay))
            send(body, 0)
        ctx.event_queue.send = spy

    def steps(self) -> int:
        count = 0
        for step in Step:
            client = self.ctx.queues.clients[step]
            for message in client.receive_messages(max_messages=32, visibility_timeout=30):
                count += 1
                for _ in range(2):
                    steps.handle(self.ctx, step, message.content)
                client.delete_message(message)
        return count

    def events(self) -> int:
        count = 0
        client = self.ctx.event_queue.client
        for message in client.receive_messages(max_messages=32, visibility_timeout=30):
            count += 1
            for _ in range(2):
                sender.handle(self.ctx, message.content)
            client.delete_message(message)
        return count

    def settle(self, rounds: int = 400) -> None:
        import time
        for _ in range(rounds):
            if not (self.steps() + self.events()):
                props = [c.get_queue_properties().approximate_message_count
                         for c in [*self.ctx.queues.clients.values(), self.ctx.event_queue.client]]
                if not sum(props):
                    return
                time.sleep(0.2)
        raise AssertionError("messages did not settle")


def subscribe(world: World, receiver, name: str, path: str, **body):
    request = api.ApiRequest("PUT", {"name": name}, {}, json.dumps(
        {"url": receiver.url(path, SECRET), "secret_setting": "RETRAIN_SECRET_HOOK", **body}).encode())
    response = api.handle(world.ctx, api.subscription, request)
    assert response.status in (200, 201), response.body
    return response.body


# --- one model's life, announced ---------------------------------------------------------------

@pytest.fixture(scope="module")
def story(azurite, chain_emulator, receiver):
    """Promoted twice, rolled back, rejected, awaiting approval then rejected, cancelled, superseded (newer data;
    a blob deleted before training), failed (an empty blob)."""
    world = make_world(azurite, chain_emulator, receiver)
    world.register(policy=PASSING)
    tag = uuid.uuid4().hex[:6]
    everything, promotions = f"/{tag}/all", f"/{tag}/promotions"
    subscribe(world, receiver, "everything", everything)
    subscribe(world, receiver, "promotions", promotions, model="census", event_types=["retrain.run.promoted"])
    subscribe(world, receiver, "other-model", f"/{tag}/other", model="someone-else")
    pump = Twice(world.ctx)
    ctx = world.ctx
    first = world.land("census/a.csv", good_data(seed=1))
    pump.settle()
    second = world.land("census/b.csv", good_data(seed=2))
    pump.settle()
    rollback(ctx, "census", by="tester")
    bad = world.land("census/c.csv", corrupted_data())
    pump.settle()
    # Three blobs at once: the first is active, the second waits and is displaced by the third.
    active = world.land("census/d.csv", good_data(seed=4))
    displaced = world.land("census/e.csv", good_data(seed=5))
    newest = world.land("census/f.csv", good_data(seed=6))
    ctx.storage.blobs.get_blob_client(ctx.settings.training_container, "census/f.csv").delete_blob()
    chain.cancel(ctx, "census", active.run_id, by="tester")  # releases the model: f is queued, finds no blob
    pump.settle()
    empty = world.land("census/empty.csv", b"")  # unusable data of a known model: a run born failed
    world.register(policy=APPROVAL)
    waiting = world.land("census/g.csv", good_data(seed=7))
    pump.settle()
    chain.reject(ctx, "census", waiting.run_id, by="tester")
    pump.settle()
    runs = {name: world.run(r.run_id) for name, r in
            {"first": first, "second": second, "bad": bad, "active": active, "displaced": displaced,
             "newest": newest, "empty": empty, "waiting": waiting}.items()}
    return {"world": world, "everything": receiver.at(everything), "promotions": receiver.at(promotions),
            "other": receiver.at(f"/{tag}/other"), "runs": runs, "pump": pump}


def types(received) -> Counter:
    return Counter(r.json["type"] for r in received)


def test_the_story_ends_each_run_as_expected(story):
    statuses = {name: run.status for name, run in story["runs"].items()}
    assert statuses == {"first": Status.PROMOTED, "second": Status.PROMOTED, "bad": Status.REJECTED,
                        "active": Status.CANCELLED, "displaced": Status.SUPERSEDED, "newest": Status.SUPERSEDED,
                        "empty": Status.FAILED,
                        "waiting": Status.REJECTED}


def test_every_event_type_reaches_a_global_subscriber_exactly_once(story):
    assert types(story["everything"]) == {"retrain.run.promoted": 2, "retrain.model.rolled_back": 1,
                                          "retrain.run.rejected": 2, "retrain.run.cancelled": 1,
                                          "retrain.run.superseded": 2, "retrain.run.failed": 1,
                                          "retrain.run.awaiting_approval": 1}
    ids = [r.headers["webhook-id"] for r in story["everything"]]
    assert len(ids) == len(set(ids))


def test_every_delivery_is_signed_per_standard_webhooks(story):
    assert story["everything"] and all(r.verified for r in story["everything"] + story["promotions"])


def test_a_filtered_subscription_gets_only_its_model_and_types(story):
    assert types(story["promotions"]) == {"retrain.run.promoted": 2}
    assert story["other"] == []


def test_an_event_is_a_cloudevent_with_a_thin_payload_and_links(story):
    promoted = next(r for r in story["everything"] if r.json["type"] == "retrain.run.promoted")
    event, run = promoted.json, story["runs"]["first"]
    assert event["specversion"] == "1.0" and event["source"] == "/models/census"
    assert event["subject"] == f"runs/{run.run_id}" and event["id"] == promoted.headers["webhook-id"]
    assert event["time"] == run.ended_at
    data = event["data"]
    assert data["status"] == "promoted" and data["reason"] == run.reason and data["metrics"] == run.metrics
    assert data["decision"]["passed"] is True and data["decision"]["summary"]
    assert data["links"] == {"api": f"/api/models/census/runs/{run.run_id}",
                             "dashboard": f"/api/dashboard/models/census/runs/{run.run_id}"}
    assert promoted.headers["content-type"] == "application/json"


def test_deliveries_are_listed_per_subscription_with_their_answers(story):
    ctx = story["world"].ctx
    response = api.handle(ctx, api.deliveries, api.ApiRequest("GET", {"name": "everything"}, {"limit": "5"}))
    assert response.status == 200
    body = response.body
    assert len(body["deliveries"]) == 5 and body["next"]
    first = body["deliveries"][0]
    assert first["status"] == "delivered" and first["attempts"] == 1 and first["last_answer"]["status"] == 200
    rest = api.handle(ctx, api.deliveries, api.ApiRequest("GET", {"name": "everything"},
                                                          {"limit": "50", "continuation": body["continuation"]}))
    assert len(body["deliveries"]) + len(rest.body["deliveries"]) == len(story["everything"])


def test_no_outbox_row_is_left_behind(story):
    ctx = story["world"].ctx
    assert list(sender.outbox.waiting(ctx, "census")) == []


# --- crashes between the change and the send ------------------------------------------------------

def test_an_event_whose_dispatch_message_was_lost_is_sent_by_the_sweeper_once(azurite, chain_emulator, receiver):
    world = make_world(azurite, chain_emulator, receiver, SWEEP_GRACE_SECONDS="10")
    world.register()
    path = f"/{uuid.uuid4().hex[:6]}/crash"
    subscribe(world, receiver, "crash", path)
    pump = Twice(world.ctx)
    run = world.land("census/a.csv", good_data())
    lost = world.ctx.event_queue.send

    def crash(body, delay=0):
        raise ServiceRequestError("the process died before the dispatch message was sent")
    world.ctx.event_queue.send = crash
    chain.cancel(world.ctx, "census", run.run_id, by="tester")  # the state change and its outbox row are written
    world.ctx.event_queue.send = lost
    pump.settle()
    assert receiver.at(path) == []
    later = world.ctx.clock
    world.ctx.clock = lambda: later() + timedelta(minutes=1)  # past the sweeper's grace
    assert sweeper.sweep(world.ctx).events == 1
    pump.settle()
    assert sweeper.sweep(world.ctx).events == 0
    pump.settle()
    assert types(receiver.at(path)) == {"retrain.run.cancelled": 1}


def test_a_change_that_lost_its_race_announces_nothing(azurite, chain_emulator, receiver):
    world = make_world(azurite, chain_emulator, receiver)
    world.register()
    path = f"/{uuid.uuid4().hex[:6]}/race"
    subscribe(world, receiver, "race", path)
    run = world.land("census/a.csv", good_data())
    stale = world.run(run.run_id)
    chain.cancel(world.ctx, "census", run.run_id, by="first")
    with pytest.raises(ConcurrentUpdate):
        chain.finish(world.ctx, stale, Status.FAILED, "a late worker")  # If-Match fails: no write, no event
    Twice(world.ctx).settle()
    assert types(receiver.at(path)) == {"retrain.run.cancelled": 1}


# --- retries, 410, dead letters (test events: no run needed) ---------------------------------------

@pytest.fixture
def hooks(azurite, chain_emulator, receiver):
    world = make_world(azurite, chain_emulator, receiver)
    return world, Twice(world.ctx)


def fire_test_event(world, receiver, *answers):
    path = f"/{uuid.uuid4().hex[:8]}"
    receiver.answer(path, *answers)
    subscribe(world, receiver, "hook", path)
    response = api.handle(world.ctx, api.test_subscription, api.ApiRequest("POST", {"name": "hook"}))
    assert response.status == 202, response.body
    return path, response.body["id"]


def retry_delays(pump) -> list[float]:
    return [delay for body, delay in pump.delays if body["kind"] == "deliver" and body["attempt"] > 1]


def test_a_500_is_retried_on_the_schedule_with_the_same_event_id(hooks, receiver):
    world, pump = hooks
    path, key = fire_test_event(world, receiver, (500, {}), (503, {}))
    pump.settle()
    attempts = receiver.at(path)
    assert len(attempts) == 3 and len({a.headers["webhook-id"] for a in attempts}) == 1
    assert all(a.verified for a in attempts)
    first, second = retry_delays(pump)
    assert SCHEDULE[0] <= first <= SCHEDULE[0] * 1.1 and SCHEDULE[1] <= second <= SCHEDULE[1] * 1.1
    delivery = world.ctx.events.delivery("hook", key)
    assert delivery.status is DeliveryStatus.DELIVERED and delivery.attempts == 3 and delivery.last_status == 200


def test_a_429_waits_as_long_as_retry_after_says(hooks, receiver):
    world, pump = hooks
    path, key = fire_test_event(world, receiver, (429, {"Retry-After": "42"}))
    pump.settle()
    assert retry_delays(pump) == [42]
    assert len(receiver.at(path)) == 2


def test_a_410_disables_the_subscription_and_stops(hooks, receiver):
    world, pump = hooks
    path, key = fire_test_event(world, receiver, (410, {}))
    pump.settle()
    assert len(receiver.at(path)) == 1
    assert world.ctx.events.delivery("hook", key).status is DeliveryStatus.GONE
    sub = world.ctx.events.subscription("hook")
    assert not sub.enabled and "410" in sub.disabled_reason


def test_after_the_last_attempt_the_delivery_is_dead_lettered_with_the_reason(hooks, receiver):
    world, pump = hooks
    path, key = fire_test_event(world, receiver, *[(500, {})] * MAX_ATTEMPTS)
    pump.settle()
    assert len(receiver.at(path)) == MAX_ATTEMPTS
    delivery = world.ctx.events.delivery("hook", key)
    assert delivery.status is DeliveryStatus.DEAD_LETTERED and delivery.attempts == MAX_ATTEMPTS
    assert f"gave up after {MAX_ATTEMPTS} attempts" in delivery.reason and "HTTP 500" in delivery.reason
    assert sum(retry_delays(pump)) > 12 * 3600  # spread over most of a day


def test_a_dead_letter_can_be_redelivered_with_the_same_event_id(hooks, receiver):
    world, pump = hooks
    path, key = fire_test_event(world, receiver, *[(500, {})] * MAX_ATTEMPTS)
    pump.settle()
    response = api.handle(world.ctx, api.redeliver, api.ApiRequest("POST", {"name": "hook", "delivery": key}))
    assert response.status == 202, response.body
    pump.settle()
    attempts = receiver.at(path)
    assert len(attempts) == MAX_ATTEMPTS + 1 and len({a.headers["webhook-id"] for a in attempts}) == 1
    assert world.ctx.events.delivery("hook", key).status is DeliveryStatus.DELIVERED


def test_a_missing_signing_secret_dead_letters_without_sending(hooks, receiver):
    world, pump = hooks
    world.ctx.env = {**world.ctx.env, "RETRAIN_SECRET_HOOK": ""}
    path, key = fire_test_event(world, receiver)
    pump.settle()
    assert receiver.at(path) == []
    delivery = world.ctx.events.delivery("hook", key)
    assert delivery.status is DeliveryStatus.DEAD_LETTERED and "RETRAIN_SECRET_HOOK" in delivery.reason
    assert SECRET not in json.dumps(delivery.to_public())


# --- the API ------------------------------------------------------------------------------------

@pytest.mark.parametrize("body, fragment", [
    ({"url": "http://example.com/hook"}, "https"),
    ({"url": "https://10.0.0.5/hook"}, "private"),
    ({"url": "https://localhost/hook"}, "private"),
    ({"url": "https://user:pw@example.com/hook"}, "user name"),
    ({"url": "https://example.com/hook", "secret_setting": "RETRAIN_STORAGE"}, "app's own settings"),
    ({"url": "https://example.com/hook", "event_types": ["retrain.run.exploded"]}, "event_types"),
    ({"url": "https://example.com/hook", "colour": "red"}, "unknown field"),
])
def test_a_bad_subscription_is_refused_with_what_to_fix(hooks, body, fragment):
    world, _ = hooks
    payload = {"secret_setting": "RETRAIN_SECRET_HOOK", **body}
    response = api.handle(world.ctx, api.subscription,
                          api.ApiRequest("PUT", {"name": "bad"}, {}, json.dumps(payload).encode()))
    assert response.status == 400 and fragment in response.text(), response.body
    assert world.ctx.events.find_subscription("bad") is None


def test_subscriptions_are_created_listed_shown_and_deleted(hooks, receiver):
    world, _ = hooks
    created = subscribe(world, receiver, "deploys", "/deploys", event_types=["retrain.run.promoted"])
    assert created["event_types"] == ["retrain.run.promoted"] and created["secret_setting"] == "RETRAIN_SECRET_HOOK"
    again = api.handle(world.ctx, api.subscription, api.ApiRequest(
        "PUT", {"name": "deploys"}, {}, json.dumps({"url": receiver.url("/deploys"),
                                                    "secret_setting": "RETRAIN_SECRET_HOOK"}).encode()))
    assert again.status == 200 and again.body["created_at"] == created["created_at"]
    listed = api.handle(world.ctx, api.list_subscriptions, api.ApiRequest("GET"))
    assert [s["name"] for s in listed.body["subscriptions"]] == ["deploys"] and listed.body["eventgrid"] is None
    assert api.handle(world.ctx, api.subscription, api.ApiRequest("DELETE", {"name": "deploys"})).status == 200
    gone = api.handle(world.ctx, api.subscription, api.ApiRequest("GET", {"name": "deploys"}))
    assert gone.status == 404 and gone.body["error"]["code"] == "UnknownSubscription"


# --- Event Grid ---------------------------------------------------------------------------------

def test_events_go_to_an_event_grid_topic_as_a_cloudevents_batch(azurite, chain_emulator, receiver):
    world = make_world(azurite, chain_emulator, receiver,
                       EVENTGRID_TOPIC_ENDPOINT=receiver.url("/api/events"), EVENTGRID_KEY_SETTING="RETRAIN_SECRET_EG",
                       RETRAIN_SECRET_EG="topic-key-1")
    world.register()
    pump = Twice(world.ctx)
    before = len(receiver.at("/api/events"))
    run = world.land("census/a.csv", good_data())
    chain.cancel(world.ctx, "census", run.run_id, by="tester")
    pump.settle()
    posted = receiver.at("/api/events")[before:]
    listed = api.handle(world.ctx, api.deliveries, api.ApiRequest("GET", {"name": "eventgrid"}))
    assert len(posted) == 1, listed.body
    request = posted[0]
    assert request.headers["content-type"].startswith("application/cloudevents-batch+json")
    assert request.headers["aeg-sas-key"] == "topic-key-1" and "api-version=" in request.target
    (event,) = request.json
    assert event["type"] == "retrain.run.cancelled" and event["source"] == "/models/census"
    assert event["subject"] == f"runs/{run.run_id}" and event["specversion"] == "1.0"
    assert event["data"]["status"] == "cancelled"
    assert [d["status"] for d in listed.body["deliveries"]] == ["delivered"]


def test_a_host_that_now_resolves_to_a_private_address_is_dead_lettered_with_the_reason(hooks, receiver,
                                                                                          monkeypatch):
    # No DNS server here can be told to answer a name with 10.x (DNS rebinding), so the resolver is replaced
    # for that one name; every other look-up (Azurite, the emulator) is the real one.
    from retrain.events import destination
    real = destination.lookup

    def rebinding(host, port, *args, **kwargs):
        if host == "hooks.example.com":
            return [(2, 1, 6, "", ("10.0.0.5", port))]
        return real(host, port, *args, **kwargs)
    monkeypatch.setattr(destination, "lookup", rebinding)
    world, pump = hooks
    request = api.ApiRequest("PUT", {"name": "rebound"}, {}, json.dumps(
        {"url": "https://hooks.example.com/hook", "secret_setting": "RETRAIN_SECRET_HOOK"}).encode())
    assert api.handle(world.ctx, api.subscription, request).status == 201  # a public name when registered
    response = api.handle(world.ctx, api.test_subscription, api.ApiRequest("POST", {"name": "rebound"}))
    pump.settle()
    delivery = world.ctx.events.delivery("rebound", response.body["id"])
    assert delivery.status is DeliveryStatus.DEAD_LETTERED and delivery.attempts == 0
    assert "resolved to 10.0.0.5, a private address" in delivery.reason
