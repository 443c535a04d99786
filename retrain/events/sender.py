"""The queue-triggered sender: fan an outbox event out to one delivery per subscription, then send each.

Waiting between attempts is a queue message with an initial invisibility, never a sleeping function.
The schedule is Standard Webhooks' (5 s, 5 min, 30 min, 2 h, 5 h, 10 h), with up to 10 % jitter, 7
attempts over about 18 hours; `Retry-After` (429, 502, 503, 504 ...) replaces the step when given.
Any 2xx is delivered; 410 disables the subscription; after the last attempt the delivery is
dead-lettered with the reason. Every attempt carries the same `webhook-id`: the event id.
A host that resolves, at send time, to an address the rules refuse (`destination`) is
dead-lettered at once, nothing sent and no attempt counted: waiting would not change the rule;
fix the DNS or list the host, then redeliver. A name that does not resolve is retried like a timeout.
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from dataclasses import replace
from datetime import timedelta
from typing import TYPE_CHECKING

from azure.core.exceptions import ResourceExistsError

from .. import telemetry
from ..errors import BadMessage, ConcurrentUpdate, SettingsError, UnknownSubscription
from ..queues import visibility_timeout
from ..runs import iso
from . import outbox
from .model import Event, test_event
from .sinks import Answer, WebhookSink, eventgrid_endpoint
from .store import Delivery, DeliveryStatus
from .subscriptions import Subscription

if TYPE_CHECKING:
    from ..context import Context

log = logging.getLogger("retrain")
QUEUE = "retrain-events"  # function_app.py binds to this literal
EVENTGRID = "eventgrid"  # the deliveries of the Event Grid sink are listed under this name
SCHEDULE = (5, 5 * 60, 30 * 60, 2 * 3600, 5 * 3600, 10 * 3600)  # seconds before attempts 2..7
MAX_ATTEMPTS = len(SCHEDULE) + 1
MAX_RETRY_AFTER = 24 * 3600.0


class EventQueue:
    """The sender's queue; messages base64-encoded like the host expects, optionally delayed."""

    def __init__(self, client):
        self.client = client

    def ensure(self) -> None:
        try:
            self.client.create_queue()
        except ResourceExistsError:
            pass

    def send(self, body: dict, delay: float = 0) -> None:
        self.client.send_message(json.dumps(body, separators=(",", ":")), visibility_timeout=visibility_timeout(delay))


def dispatch_message(source: str, model: str, key: str) -> dict:
    return {"kind": "dispatch", "source": source, "model": model, "key": key}


def deliver_message(subscription: str, key: str, attempt: int) -> dict:
    return {"kind": "deliver", "subscription": subscription, "key": key, "attempt": attempt}


def delay_for(event_id: str, attempt: int, retry_after: float | None) -> float:
    """Seconds before attempt `attempt + 1`: the receiver's Retry-After, else the schedule with jitter."""
    if retry_after is not None:
        return min(retry_after, MAX_RETRY_AFTER)
    base = SCHEDULE[min(attempt, len(SCHEDULE)) - 1]
    jitter = int(hashlib.sha256(f"{event_id}:{attempt}".encode()).hexdigest()[:4], 16) / 0xFFFF * 0.1
    return round(base * (1 + jitter), 3)


def handle(ctx: "Context", body: str | bytes) -> None:
    """Entry point for the events queue; a message this app did not write is logged and dropped."""
    try:
        message = json.loads(body)
        kind = message["kind"]
        if kind == "dispatch":
            args = (str(message["source"]), str(message["model"]), str(message["key"]))
            if args[0] not in (outbox.RUNS, outbox.PROMOTIONS):
                raise ValueError("source")
        elif kind == "deliver":
            args = (str(message["subscription"]), str(message["key"]), int(message["attempt"]))
        else:
            raise ValueError("kind")
    except (ValueError, KeyError, TypeError) as e:
        log.error("%s: %s", QUEUE, BadMessage(f"not an events message ({type(e).__name__}): {str(body)[:200]!r}"))
        return
    if kind == "dispatch":
        dispatch(ctx, *args)
    else:
        deliver(ctx, *args)


def dispatch(ctx: "Context", source: str, model: str, key: str) -> int:
    """One delivery per subscriber of the outbox event, then the outbox row goes; safe to repeat."""
    event = outbox.read(ctx, source, model, key)
    if event is None:
        return 0  # dispatched already
    count = fan_out(ctx, event)
    outbox.remove(ctx, source, model, key)
    return count


def fan_out(ctx: "Context", event: Event) -> int:
    targets = [s.name for s in ctx.events.subscriptions() if s.wants(event.type, event.model)]
    if eventgrid_endpoint(ctx.env):
        targets.append(EVENTGRID)
    for name in targets:
        _start(ctx, Delivery(name, event, created_at=iso(ctx.clock())))
    return len(targets)


def _start(ctx: "Context", delivery: Delivery) -> Delivery:
    """Create the delivery once and send its first attempt (again, if a crash may have lost it)."""
    stored, created = ctx.events.create_delivery(delivery)
    if created or (stored.status is DeliveryStatus.PENDING and stored.attempts == 0):
        ctx.event_queue.send(deliver_message(stored.subscription, stored.key, 1))
    return stored


def deliver(ctx: "Context", subscription: str, key: str, attempt: int) -> None:
    """Send one attempt of one delivery, record the answer (If-Match), schedule the next or settle it."""
    try:
        delivery = ctx.events.delivery(subscription, key)
    except UnknownSubscription:
        log.warning("deliver: no delivery %s of %r; message dropped", key, subscription)
        return
    if delivery.status is not DeliveryStatus.PENDING or delivery.attempts != attempt - 1:
        log.info("deliver: %s to %r is %s after %d attempt(s); stale message for attempt %d dropped", key,
                 subscription, delivery.status.value, delivery.attempts, attempt)
        return
    now = ctx.clock()
    sub = None
    try:
        if subscription == EVENTGRID:
            sink = ctx.eventgrid_sink()
        else:
            sub = ctx.events.find_subscription(subscription)
            if sub is None:
                return _settle(ctx, delivery, DeliveryStatus.DEAD_LETTERED, "the subscription was deleted")
            if not sub.enabled and delivery.event.type.value != "retrain.test":
                return _settle(ctx, delivery, DeliveryStatus.DEAD_LETTERED,
                               f"the subscription is disabled: {sub.disabled_reason or 'by request'}")
            sink = WebhookSink(sub, ctx.env, ctx.session)
        answer = sink.send(delivery.event, now)
    except SettingsError as e:
        return _settle(ctx, delivery, DeliveryStatus.DEAD_LETTERED, f"cannot be sent: {e}")
    _record(ctx, delivery, sub, answer)


def _record(ctx: "Context", delivery: Delivery, sub: Subscription | None, answer: Answer) -> None:
    now = ctx.clock()
    attempts = delivery.attempts + 1
    tried = replace(delivery, attempts=attempts, last_status=answer.status, last_answer=answer.text,
                    last_attempt_at=iso(now), next_attempt_at="")
    told = f"HTTP {answer.status}" if answer.status is not None else answer.text or "no answer"
    if answer.ok:
        return _save(ctx, replace(tried, status=DeliveryStatus.DELIVERED, delivered_at=iso(now), reason=""), "delivered")
    if answer.gone and sub is not None:
        _save(ctx, replace(tried, status=DeliveryStatus.GONE,
                           reason="the receiver answered 410 Gone: the subscription was disabled"), "gone")
        _disable(ctx, sub, f"the receiver answered 410 Gone at {iso(now)} (delivery {delivery.key})")
        return
    if attempts >= MAX_ATTEMPTS:
        return _save(ctx, replace(tried, status=DeliveryStatus.DEAD_LETTERED,
                                  reason=f"gave up after {attempts} attempts; the last answer was {told}"),
                     "dead_lettered")
    delay = delay_for(delivery.event.id, attempts, answer.retry_after)
    pending = replace(tried, next_attempt_at=iso(now + timedelta(seconds=delay)),
                      reason=f"attempt {attempts} failed ({told}); next attempt in {delay:g} s")
    if _save(ctx, pending, "retried"):
        ctx.event_queue.send(deliver_message(delivery.subscription, delivery.key, attempts + 1), delay)


def _save(ctx: "Context", delivery: Delivery, outcome: str) -> bool:
    try:
        ctx.events.save_delivery(delivery)
    except ConcurrentUpdate:
        log.info("deliver: %s to %r changed meanwhile; leaving the newer state", delivery.key, delivery.subscription)
        return False
    telemetry.delivery(outcome, "eventgrid" if delivery.subscription == EVENTGRID else "webhook",
                       delivery.event.type.value)
    log.info("deliver: event %s (%s) to %r: %s after %d attempt(s)", delivery.event.id, delivery.event.type.value,
             delivery.subscription, outcome, delivery.attempts)
    return True


def _settle(ctx: "Context", delivery: Delivery, status: DeliveryStatus, reason: str) -> None:
    _save(ctx, replace(delivery, status=status, reason=reason, next_attempt_at=""), status.value)


def _disable(ctx: "Context", sub: Subscription, reason: str) -> None:
    for _ in range(3):
        try:
            ctx.events.save_subscription(sub.disabled(reason))
            return
        except ConcurrentUpdate:
            sub = ctx.events.find_subscription(sub.name)
            if sub is None or not sub.enabled:
                return


# --- actions ----------------------------------------------------------------------------------

def send_test(ctx: "Context", name: str) -> Delivery:
    """Send a `retrain.test` event to one subscription now (its delivery is listed like any other)."""
    ctx.events.subscription(name)
    event = test_event(name, iso(ctx.clock()), uuid.uuid4().hex)
    return _start(ctx, Delivery(name, event, created_at=iso(ctx.clock())))


def redeliver(ctx: "Context", name: str, key: str, *, by: str) -> Delivery:
    """Send a delivery again from its first attempt, with the same event id (receivers dedupe on it)."""
    from ..errors import Conflict
    delivery = ctx.events.delivery(name, key)
    if delivery.status is DeliveryStatus.PENDING:
        raise Conflict(f"delivery {key} is still being attempted ({delivery.attempts} so far); wait for it to settle")
    again = replace(delivery, status=DeliveryStatus.PENDING, attempts=0, next_attempt_at=iso(ctx.clock()),
                    reason=f"redelivery asked by {by} after {delivery.status.value} ({delivery.attempts} attempt(s))")
    try:
        saved = ctx.events.save_delivery(again)
    except ConcurrentUpdate:
        raise Conflict(f"delivery {key} changed meanwhile; look at it again") from None
    ctx.event_queue.send(deliver_message(name, key, 1))
    return saved


def reconcile(ctx: "Context", *, grace: timedelta) -> int:
    """The sweeper's part: dispatch outbox rows whose dispatch message never came (older than `grace`)."""
    now = ctx.clock()
    done = 0
    for model in ctx.models.list_all():
        for source, key, written in outbox.waiting(ctx, model.name):
            if written is not None and now - written < grace:
                continue  # its own message is probably on the way
            dispatch(ctx, source, model.name, key)
            done += 1
    if done:
        log.warning("sweeper: dispatched %d event(s) whose dispatch message was lost", done)
    return done
