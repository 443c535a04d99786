"""The dashboard in a real headless Chromium (Debian's chromium + chromium-driver, Selenium) against the app."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

import pytest
import requests

from .operator_world import MODEL, wait_for

ARTEFACTS = Path(os.environ.get("RETRAIN_ARTEFACTS", Path(__file__).resolve().parents[2] / ".artefacts"))
CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")


def _need_browser():
    if CHROMIUM and DRIVER:
        return
    message = "Debian's chromium and chromium-driver are needed: sudo apt-get install chromium chromium-driver"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="module")
def browser():
    _need_browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="retrain-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--no-first-run", f"--user-data-dir={profile}", "--window-size=1200,1400"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


def shot(browser, name: str) -> None:
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    height = browser.execute_script("return document.documentElement.scrollHeight")
    browser.set_window_size(1200, min(max(height, 800), 3000))
    browser.save_screenshot(str(ARTEFACTS / f"dashboard-{name}.png"))
    browser.set_window_size(1200, 1400)


def css(browser, selector):
    from selenium.webdriver.common.by import By
    return browser.find_element(By.CSS_SELECTOR, selector)


def text_of(browser, selector) -> str:
    """The element's text, or "" while the page is being replaced (navigation, a refreshed fragment)."""
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
    try:
        return css(browser, selector).text
    except (NoSuchElementException, StaleElementReferenceException):
        return ""


def test_the_overview_shows_the_champion_and_the_run_awaiting_approval(operated, browser):
    browser.get(f"{operated.host.url}/api/dashboard")
    inbox = css(browser, ".inbox").text
    assert "Awaiting your approval (1)" in inbox and operated.awaiting[:10] in inbox
    card = css(browser, ".card").text
    assert operated.promoted[-1][:10] in card and "AUC" in card
    assert css(browser, ".card svg.spark polyline").get_attribute("points")
    shot(browser, "overview")


def test_the_model_page_draws_one_trend_point_per_evaluated_run(operated, browser):
    browser.get(f"{operated.host.url}/api/dashboard/models/{MODEL}")
    wait_for(lambda: css(browser, "#trend").get_attribute("data-drawn") == "true", timeout=15)  # uPlot ran
    assert css(browser, "#trend").get_attribute("data-points") == "3"
    assert css(browser, "#trend canvas").size["width"] > 200
    assert len(browser.find_elements("css selector", "#runs tbody tr")) == 3
    assert len(browser.find_elements("css selector", "#promotions tbody tr")) == 2
    shot(browser, "model")


def test_approving_a_waiting_run_in_the_browser_promotes_it(operated, browser):
    browser.get(f"{operated.host.url}/api/dashboard/models/{MODEL}/runs/{operated.awaiting}")
    assert "awaiting approval" in css(browser, "#run-live").text
    assert css(browser, "#rules").text.count("pass") >= 1
    shot(browser, "run-awaiting")
    css(browser, "#comment-approve").send_keys("metrics hold up on the new survey")
    css(browser, "#form-approve button").click()
    wait_for(lambda: "promoted" in text_of(browser, "#run-live .state"), timeout=60)
    run = operated.run(operated.awaiting)
    assert run["status"] == "promoted"
    assert run["decision_comment"] == "metrics hold up on the new survey"
    assert "metrics hold up on the new survey" in css(browser, "#decided").text
    shot(browser, "run-promoted")


def test_rolling_back_asks_for_confirmation_then_moves_the_champion(operated, browser):
    wait_for(lambda: operated.run(operated.awaiting)["status"] == "promoted", timeout=60)
    first = operated.promoted[0]
    browser.get(f"{operated.host.url}/api/dashboard/models/{MODEL}/rollback?to_run={first}")
    assert "Roll back census?" in css(browser, "h1").text
    shot(browser, "rollback-confirm")
    css(browser, "#note").send_keys("the survey export was wrong")
    css(browser, "#confirm").click()
    css(browser, "#form-rollback button").click()
    wait_for(lambda: "Rolled back" in text_of(browser, "main"), timeout=60)
    model = requests.get(operated.api, timeout=10).json()
    assert model["champion"]["run_id"] == first
    history = requests.get(f"{operated.api}/promotions", timeout=10).json()["promotions"]
    assert history[0]["reason"] == "rollback" and history[0]["note"] == "the survey export was wrong"


def test_a_form_posted_without_its_csrf_token_is_refused(operated):
    before = requests.get(operated.api, timeout=10).json()["champion"]["run_id"]
    answer = requests.post(f"{operated.host.url}/api/dashboard/models/{MODEL}/rollback",
                           data={"confirm": "yes", "to_run": operated.promoted[-1]}, timeout=10)
    assert answer.status_code == 403 and "security token" in answer.text
    forged = requests.post(f"{operated.host.url}/api/dashboard/models/{MODEL}/rollback",
                           data={"confirm": "yes", "csrf_token": "1.deadbeef"}, timeout=10)
    assert forged.status_code == 403
    assert requests.get(operated.api, timeout=10).json()["champion"]["run_id"] == before


def test_the_signed_in_caller_needs_the_role_and_is_recorded_on_a_rollback(operated):
    # Easy Auth's front end cannot run here: its principal header is set by hand, as it would set it.
    from retrain.principal import APPROVER, encode_principal

    def principal(name: str, *roles: str) -> dict:
        claims = [("oid", f"oid-{name}"), ("preferred_username", name)] + [("roles", r) for r in roles]
        return {"X-MS-CLIENT-PRINCIPAL": encode_principal(claims)}

    def rollback_as(headers: dict) -> requests.Response:
        form = requests.get(f"{operated.host.url}/api/dashboard/models/{MODEL}/rollback", headers=headers, timeout=10)
        token = re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)
        return requests.post(f"{operated.host.url}/api/dashboard/models/{MODEL}/rollback", headers=headers,
                             data={"csrf_token": token, "confirm": "yes", "note": "by hand"}, allow_redirects=False,
                             timeout=60)

    reader = rollback_as(principal("reader@contoso.com"))
    assert reader.status_code == 403 and "Retrain.Approver" in reader.text
    approver = rollback_as(principal("ops@contoso.com", APPROVER))
    assert approver.status_code == 303, approver.text
    history = requests.get(f"{operated.api}/promotions", timeout=10).json()["promotions"]
    assert history[0]["reason"] == "rollback" and history[0]["by"].startswith("ops@contoso.com")
    audit = requests.get(f"{operated.api}/audit", timeout=10).json()["audit"]
    assert audit[0]["action"] == "rollback" and audit[0]["by"]["name"] == "ops@contoso.com"


def test_a_token_issued_to_one_caller_is_refused_for_another(operated):
    from retrain.principal import encode_principal

    alice = {"X-MS-CLIENT-PRINCIPAL": encode_principal([("oid", "a"), ("preferred_username", "alice")])}
    page = requests.get(f"{operated.host.url}/api/dashboard/models/{MODEL}/rollback", headers=alice, timeout=10)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    answer = requests.post(f"{operated.host.url}/api/dashboard/models/{MODEL}/rollback",
                           data={"csrf_token": token, "confirm": "yes"}, timeout=10)  # no principal: someone else
    assert answer.status_code == 403 and "security token" in answer.text


def test_pages_are_html_and_static_files_carry_their_type_and_cache(operated):
    page = requests.get(f"{operated.host.url}/api/dashboard", timeout=10)
    assert page.headers["Content-Type"].startswith("text/html") and page.headers["Cache-Control"] == "no-store"
    assert "default-src 'self'" in page.headers["Content-Security-Policy"]
    js = requests.get(f"{operated.host.url}/api/dashboard/static/uplot/uPlot.iife.min.js", timeout=10)
    assert js.headers["Content-Type"].startswith("text/javascript") and "uPlot" in js.text
    css_file = requests.get(f"{operated.host.url}/api/dashboard/static/dashboard.css", timeout=10)
    assert css_file.headers["Content-Type"].startswith("text/css")
    assert requests.get(f"{operated.host.url}/api/dashboard/static/../function_app.py", timeout=10).status_code == 404


def test_an_unknown_model_or_run_is_a_page_that_says_so(operated):
    answer = requests.get(f"{operated.host.url}/api/dashboard/models/nosuch", timeout=10)
    assert answer.status_code == 404 and "nosuch" in answer.text
    answer = requests.get(f"{operated.host.url}/api/dashboard/models/{MODEL}/runs/bad$id", timeout=10)
    assert answer.status_code == 400


def test_markup_in_stored_text_is_escaped(operated):
    answer = requests.post(f"{operated.api}/runs/{operated.awaiting}/cancel",
                           json={"comment": "<script>alert(1)</script>"}, timeout=10)
    page = requests.get(f"{operated.host.url}/api/dashboard/models/{MODEL}/runs/{operated.awaiting}", timeout=10)
    assert "<script>alert(1)</script>" not in page.text
    assert answer.status_code == 409  # the run already ended: the comment is not even stored
