"""The dashboard's subscriptions and deliveries in a real headless Chromium, against the app (devhost) and a
local receiver that verifies every signature (`tests/receiver.py`)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

import pytest
import requests

from devhost.host import DevHost
from tests.receiver import Receiver, start_receiver

from .conftest import World, good_data
from .operator_world import start_host, wait_for
from .test_dashboard import browser, css, shot, text_of  # noqa: F401 (browser is a fixture)
from .test_events import PASSING, SECRET, make_world

PATH = "/dash-hooks"


@dataclass
class Announced:
    world: World
    host: DevHost
    receiver: Receiver
    run_id: str  # promoted, its event delivered

    def page(self, path: str = "") -> str:
        return f"{self.host.url}/api/dashboard/{path}".rstrip("/")

    def posts(self, event_type: str) -> list:
        return [r for r in self.receiver.at(PATH) if r.json["type"] == event_type]


@pytest.fixture(scope="module")
def announced(azurite, chain_emulator):
    """One model, one global subscription to the receiver, one run promoted through the app and announced."""
    receiver = start_receiver()
    world = make_world(azurite, chain_emulator, receiver)
    world.register(policy=PASSING)
    with start_host(world) as host:
        answer = requests.put(f"{host.url}/api/subscriptions/hooks", timeout=10, json={
            "url": receiver.url(PATH, SECRET), "secret_setting": "RETRAIN_SECRET_HOOK", "description": "ops chat"})
        assert answer.status_code == 201, answer.text
        world.upload("census/a.csv", good_data())
        announced = Announced(world, host, receiver, "")
        posted = wait_for(lambda: announced.posts("retrain.run.promoted"), timeout=120)
        announced.run_id = posted[0].json["data"]["run_id"]
        yield announced
    receiver.stop()


def delivery_row(browser, event_type: str):
    from selenium.webdriver.common.by import By
    rows = browser.find_elements(By.CSS_SELECTOR, "#deliveries tbody tr")
    return next(r for r in rows if event_type in r.text)


def test_the_overview_links_to_subscriptions_which_list_scope_host_types_and_state(announced, browser):
    browser.get(announced.page())
    css(browser, "#subscriptions-link").click()
    wait_for(lambda: "Event subscriptions" in text_of(browser, "h1"), timeout=15)
    row = css(browser, "#subscriptions tbody tr").text
    assert "hooks" in row and "global" in row and announced.receiver.host in row and "all" in row
    assert "enabled" in row
    shot(browser, "subscriptions")


def test_deliveries_are_listed_after_a_real_delivery(announced, browser):
    browser.get(announced.page("subscriptions/hooks"))
    row = delivery_row(browser, "retrain.run.promoted")
    assert "delivered" in row.text and "HTTP 200" in row.text and announced.run_id[:10] in row.text
    assert row.find_element("css selector", ".attempts").text == "1"
    link = row.find_element("css selector", "a").get_attribute("href")
    assert link.endswith(f"/api/dashboard/models/census/runs/{announced.run_id}")
    shot(browser, "deliveries")


def test_redeliver_in_the_browser_sends_a_second_signed_post_with_the_same_webhook_id(announced, browser):
    before = announced.posts("retrain.run.promoted")
    browser.get(announced.page("subscriptions/hooks"))
    delivery_row(browser, "retrain.run.promoted").find_element("css selector", "form.redeliver button").click()
    wait_for(lambda: "redelivery queued" in text_of(browser, "main"), timeout=15)
    after = wait_for(lambda: (p := announced.posts("retrain.run.promoted")) and len(p) > len(before) and p, timeout=60)
    assert len(after) == len(before) + 1 and all(p.verified for p in after)
    assert {p.headers["webhook-id"] for p in after} == {before[0].headers["webhook-id"]}


def test_send_test_event_in_the_browser_reaches_the_receiver_and_is_listed(announced, browser):
    browser.get(announced.page("subscriptions/hooks"))
    css(browser, "#form-test button").click()
    wait_for(lambda: "test event sent" in text_of(browser, "main"), timeout=15)
    (posted,) = wait_for(lambda: announced.posts("retrain.test"), timeout=60)
    assert posted.verified

    def listed_as_delivered():
        browser.get(announced.page("subscriptions/hooks"))
        return "delivered" in delivery_row(browser, "retrain.test").text
    wait_for(listed_as_delivered, timeout=30)


def test_a_redeliver_form_without_a_valid_csrf_token_is_refused(announced):
    page = requests.get(announced.page("subscriptions/hooks"), timeout=10).text
    action = re.search(r'action="([^"]+/redeliver)"', page).group(1)
    before = len(announced.receiver.at(PATH))
    for form in ({}, {"csrf_token": "1.deadbeef"}):
        answer = requests.post(f"{announced.host.url}{action}", data=form, timeout=10)
        assert answer.status_code == 403 and "security token" in answer.text
    assert len(announced.receiver.at(PATH)) == before


def test_redelivering_needs_the_admin_role(announced):
    # Easy Auth's front end cannot run here: its principal header is set by hand, as it would set it.
    from retrain.principal import APPROVER, encode_principal
    headers = {"X-MS-CLIENT-PRINCIPAL": encode_principal([("oid", "o1"), ("preferred_username", "ops@contoso.com"),
                                                           ("roles", APPROVER)])}
    page = requests.get(announced.page("subscriptions/hooks"), headers=headers, timeout=10).text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    action = re.search(r'action="([^"]+/redeliver)"', page).group(1)
    answer = requests.post(f"{announced.host.url}{action}", headers=headers, data={"csrf_token": token}, timeout=10,
                           allow_redirects=False)
    assert answer.status_code == 403 and "Retrain.Admin" in answer.text


def test_an_unknown_subscription_is_a_page_that_says_so(announced):
    answer = requests.get(announced.page("subscriptions/nosuch"), timeout=10)
    assert answer.status_code == 404 and "nosuch" in answer.text
    answer = requests.get(announced.page("subscriptions/Bad$Name"), timeout=10)
    assert answer.status_code == 400


def test_the_deliveries_api_agrees_with_the_page(announced):
    listed = requests.get(f"{announced.host.url}/api/subscriptions/hooks/deliveries", timeout=10).json()
    page = requests.get(announced.page("subscriptions/hooks"), timeout=10).text
    for delivery in listed["deliveries"]:
        assert f'id="d-{delivery["event_id"]}"' in page
    assert json.dumps(SECRET) not in page


def test_deliveries_are_paged_newest_first_from_the_store(announced):
    from retrain.events.model import test_event
    from retrain.events.store import Delivery
    answer = requests.put(f"{announced.host.url}/api/subscriptions/paged", timeout=10, json={
        "url": announced.receiver.url("/paged", SECRET), "secret_setting": "RETRAIN_SECRET_HOOK"})
    assert answer.status_code == 201, answer.text
    ids = []
    for minute in range(25):  # stored as the sender stores them; nothing is sent
        event = test_event("paged", f"2026-01-01T00:{minute:02d}:00+00:00", f"n{minute}")
        announced.world.ctx.events.create_delivery(Delivery("paged", event, created_at=event.time))
        ids.append(event.id)
    first = requests.get(announced.page("subscriptions/paged"), timeout=10).text
    shown = re.findall(r'id="d-(evt_\w+)"', first)
    assert shown == ids[::-1][:20]
    older = re.search(r'rel="next" href="([^"]+)"', first).group(1).replace("&amp;", "&")
    rest = requests.get(f"{announced.host.url}{older}", timeout=10).text
    assert re.findall(r'id="d-(evt_\w+)"', rest) == ids[::-1][20:] and 'rel="next"' not in rest
