"""Fault injection (/_admin/faults) and the request log (/_admin/requests), as other tests will script them."""

from __future__ import annotations

import time
import uuid

import requests

from tests.datasets import BINARY_FEATURES, binary_features

API = {"api-version": "2.0"}


def _status_of_unknown_job(w):
    return requests.get(w.jobs_url(w.binary, "0" * 32), params=API, headers=w.auth(w.binary.key))


def _score(w):
    body = {"Inputs": {"input1": {"ColumnNames": BINARY_FEATURES, "Values": binary_features(1)}}}
    return requests.post(w.rrs_url(), json=body, headers=w.auth(w.predictive.key))


def test_a_route_fault_answers_the_given_status_the_given_number_of_times(emulator_world, reset_faults):
    w = emulator_world
    reset_faults.inject(route="rrs.execute", status=503, count=2)
    assert [_score(w).status_code for _ in range(3)] == [503, 503, 200]


def test_an_injected_error_uses_the_service_envelope(emulator_world, reset_faults):
    w = emulator_world
    reset_faults.inject(route="rrs.execute", status=500)
    r = _score(w)
    assert r.json()["error"]["code"] == "InternalError"


def test_a_429_carries_retry_after(emulator_world, reset_faults):
    w = emulator_world
    reset_faults.inject(route="bes.status", status=429, retry_after=3)
    r = _status_of_unknown_job(w)
    assert (r.status_code, r.headers["Retry-After"]) == (429, "3")


def test_a_malformed_body_is_not_json(emulator_world, reset_faults):
    w = emulator_world
    reset_faults.inject(route="rrs.execute", status=200, malformed=True)
    r = _score(w)
    assert r.status_code == 200
    try:
        r.json()
        raise AssertionError("the body parsed as JSON")
    except ValueError:
        pass


def test_a_fault_can_match_method_and_path_regex(emulator_world, reset_faults):
    w = emulator_world
    reset_faults.inject(method="GET", path=r"/services/census-train/jobs/0+$", status=504)
    assert _status_of_unknown_job(w).status_code == 504
    assert _status_of_unknown_job(w).status_code == 404


def test_a_fault_for_another_route_does_not_fire(emulator_world, reset_faults):
    w = emulator_world
    reset_faults.inject(route="endpoint.patch", status=500)
    assert _score(w).status_code == 200
    assert len(reset_faults.active()) == 1


def test_a_fault_after_the_handler_keeps_the_side_effect_and_loses_the_answer(emulator_world, reset_faults):
    w = emulator_world
    name = f"ep-{uuid.uuid4().hex[:8]}"
    reset_faults.inject(route="endpoint.put", status=500, after=True)
    r = requests.put(w.endpoint_url(endpoint=name), json={}, headers=w.auth(w.workspace_token))
    assert r.status_code == 500
    assert requests.get(w.endpoint_url(endpoint=name), headers=w.auth(w.workspace_token)).status_code == 200


def test_a_fault_can_delay_the_answer(emulator_world, reset_faults):
    w = emulator_world
    reset_faults.inject(route="rrs.execute", status=503, delay_seconds=0.5)
    started = time.monotonic()
    assert _score(w).status_code == 503
    assert time.monotonic() - started >= 0.5


def test_reset_disarms_every_fault(emulator_world, reset_faults):
    w = emulator_world
    reset_faults.inject(route="rrs.execute", status=503, count=5)
    reset_faults.reset()
    assert _score(w).status_code == 200


def test_the_request_log_counts_calls_per_route_and_status(emulator_world, reset_faults):
    w = emulator_world
    name = f"ep-{uuid.uuid4().hex[:8]}"
    requests.put(w.endpoint_url(endpoint=name), json={}, headers=w.auth(w.workspace_token))
    requests.patch(w.endpoint_url(endpoint=name), json={"Resources": []}, headers=w.auth(w.workspace_token))
    entries = reset_faults.requests(route="endpoint.patch")
    assert [(e["method"], e["status"]) for e in entries] == [("PATCH", 400)]
    assert entries[0]["path"].endswith(f"/endpoints/{name}")
    assert reset_faults.count("endpoint.put", 200) == 1


def test_injected_answers_are_logged_as_injected(emulator_world, reset_faults):
    w = emulator_world
    reset_faults.inject(route="rrs.execute", status=503)
    _score(w)
    assert [(e["status"], e["injected"]) for e in reset_faults.requests("rrs.execute")] == [(503, "status")]


def test_a_fault_spec_without_a_target_is_refused(emulator_world, reset_faults):
    w = emulator_world
    r = requests.post(f"{w.url}/_admin/faults", json={"type": "response", "status": 500})
    assert r.status_code == 400


def test_an_injected_provisioning_failure_fails_the_next_arm_put(emulator_world, reset_faults):
    from tests.emulator_world import ARM_SCRATCH

    w = emulator_world
    reset_faults.inject("fail_provisioning", message="quota exceeded (injected)")
    params = {"api-version": "2017-01-01"}
    url = w.arm_url(ARM_SCRATCH.name)
    definition = requests.get(url, params=params, headers=w.auth(w.arm_token)).json()
    r = requests.put(url, params=params, json=definition, headers=w.auth(w.arm_token))
    deadline = time.monotonic() + 20
    while (op := requests.get(r.headers["Azure-AsyncOperation"], headers=w.auth(w.arm_token)).json())["status"] \
            == "InProgress":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert op["status"] == "Failed" and op["error"]["message"] == "quota exceeded (injected)"
