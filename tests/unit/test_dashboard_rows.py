"""What the dashboard shows of subscriptions, deliveries and a run's trace, from stored rows."""

from __future__ import annotations

from dataclasses import replace

import pytest

from retrain.events.model import EventType, Event, test_event as a_test_event
from retrain.events.store import Delivery, DeliveryStatus
from retrain.events.subscriptions import Subscription
from retrain.web.dashboard import ANSWER_SHOWN, delivery_row, subscription_row, trace_url

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
TEMPLATE = "https://portal.azure.com/#view/AppInsights/search?q={trace_id}"


def test_a_trace_is_linked_only_when_the_setting_gives_a_template():
    assert trace_url({"RETRAIN_TRACE_URL_TEMPLATE": TEMPLATE}, TRACE) == TEMPLATE.replace("{trace_id}", TRACE)
    assert trace_url({}, TRACE) is None


@pytest.mark.parametrize("template, trace_id", [
    ("https://traces.example.com/no-placeholder", TRACE),
    ("javascript:alert('{trace_id}')", TRACE),
    (TEMPLATE, ""),
    (TEMPLATE, "not-a-trace-id-not-a-trace-id-xx"),
])
def test_no_link_for_a_bad_template_or_trace_id(template, trace_id):
    assert trace_url({"RETRAIN_TRACE_URL_TEMPLATE": template}, trace_id) is None


def run_event() -> Event:
    return Event("evt_1", EventType.PROMOTED, "/models/census", "runs/r123", "2026-01-01T00:00:00Z", {})


@pytest.mark.parametrize("status, attempts, state", [
    (DeliveryStatus.DELIVERED, 1, "delivered"), (DeliveryStatus.PENDING, 2, "retrying"),
    (DeliveryStatus.PENDING, 0, "sending"), (DeliveryStatus.DEAD_LETTERED, 7, "dead-lettered"),
    (DeliveryStatus.GONE, 1, "disabled"),
])
def test_a_delivery_state_is_named_for_the_operator(status, attempts, state):
    row = delivery_row(Delivery("hooks", run_event(), status, attempts))
    assert row["state"] == state and row["redeliverable"] is (status is not DeliveryStatus.PENDING)


def test_a_run_event_links_its_run_and_a_test_event_links_nothing():
    row = delivery_row(Delivery("hooks", run_event()))
    assert (row["model"], row["run_id"]) == ("census", "r123")
    test = delivery_row(Delivery("hooks", a_test_event("hooks", "2026-01-01T00:00:00Z", "n")))
    assert (test["model"], test["run_id"]) == (None, None)


def test_the_last_answer_is_trimmed_to_one_short_line():
    delivery = Delivery("hooks", run_event(), DeliveryStatus.PENDING, 1, 500, "oops\n\n  " + "x" * 500)
    answer = delivery_row(delivery)["answer"]
    assert answer.startswith("oops x") and len(answer) == ANSWER_SHOWN + 1 and answer.endswith("…")


def test_the_next_attempt_is_shown_only_while_one_is_due():
    pending = Delivery("hooks", run_event(), DeliveryStatus.PENDING, 1, next_attempt_at="2026-01-01T00:05:00Z")
    assert delivery_row(pending)["next_attempt_at"] == "2026-01-01T00:05:00Z"
    assert delivery_row(replace(pending, status=DeliveryStatus.DEAD_LETTERED))["next_attempt_at"] == ""


def test_a_subscription_shows_its_host_not_its_path_or_query():
    sub = Subscription("hooks", "https://hooks.example.com:8443/in/abc?token=x", "RETRAIN_SECRET_HOOK",
                       (EventType.PROMOTED,), "census")
    row = subscription_row(sub)
    assert row["host"] == "hooks.example.com:8443" and row["event_types"] == ["retrain.run.promoted"]
    assert row["model"] == "census" and "token" not in str(row)
