"""No client input yields a 5xx: deep JSON, huge numbers, absurd bounds, in the app and in the emulator."""

import json

import pytest
import requests

from retrain import api

from .conftest import ARM_NAME, ARM_TOKEN, PREDICT, RG, SUB, TRAIN, TRAIN_KEY, WS, WS_TOKEN
from .test_api import call, definition

DEEP = b"[" * 100_000 + b"]" * 100_000
DEEP_OBJECT = b'{"a":' * 5000 + b"1" + b"}" * 5000
HUGE_INT = b'{"training": {"url": "x"}, "n": ' + b"9" * 400 + b"}"
HUGE_FLOAT = b'{"n": 1e400}'
NAN = b'{"n": NaN}'
BODIES = {"deep-array": DEEP, "deep-object": DEEP_OBJECT, "400-digits": HUGE_INT, "1e400": HUGE_FLOAT, "NaN": NAN,
          "not-utf8": b'{"a": "\xff"}', "truncated": b'{"a": [1, 2'}


@pytest.mark.parametrize("body", BODIES.values(), ids=BODIES.keys())
@pytest.mark.parametrize("handler, method, route", [
    (api.model, "PUT", {}), (api.retrain, "POST", {}), (api.rollback, "POST", {}),
    (api.run_action, "POST", {"run": "0" * 20, "action": "approve"}),
], ids=["put-model", "retrain", "rollback", "approve"])
def test_hostile_bodies_get_a_400_from_the_api(world, handler, method, route, body):
    world.register(endpoints=[])
    response = call(world, handler, method, body, **route)
    assert response.status == 400, response.body
    assert response.body["error"]["message"]


def _policy(world, **approval_or_rule):
    body = definition(world)
    body["policy"] = {"rules": [{"metric": "AUC", **approval_or_rule.get("rule", {})}],
                      "approval": {"required": True, **approval_or_rule.get("approval", {})}}
    return body


@pytest.mark.parametrize("change, fragment", [
    ({"approval": {"expires_after_hours": 1e9}}, "expires_after_hours: must be at most 8760"),
    ({"approval": {"expires_after_hours": int("9" * 400)}}, "a number of 400 digits"),
    ({"rule": {"min": int("9" * 60)}}, "min: must be at most"),
    ({"rule": {"min_improvement": 1e300}}, "min_improvement: must be at most"),
    ({"rule": {"min_relative_improvement": -1e300}}, "min_relative_improvement: must be"),
], ids=["expiry-1e9", "expiry-400-digits", "min-60-digits", "improvement-1e300", "relative-minus-1e300"])
def test_every_number_a_definition_accepts_is_bounded_with_a_400(world, change, fragment):
    response = call(world, api.model, "PUT", _policy(world, **change))
    error = response.body["error"]
    assert response.status == 400 and any(fragment in p for p in error.get("problems", [error["message"]])), error


def _emulator_calls(world):
    base = world.emulator.url
    bes = f"{base}/workspaces/{WS}/services/{TRAIN}"
    endpoint = world.endpoint_url("hostile")
    arm = (f"{base}/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.MachineLearning/"
           f"webServices/{ARM_NAME}?api-version=2017-01-01")
    return [("POST", f"{bes}/jobs?api-version=2.0", TRAIN_KEY),
            ("POST", f"{bes}/execute?api-version=2.0&details=true", TRAIN_KEY),
            ("PUT", endpoint, WS_TOKEN), ("PATCH", endpoint, WS_TOKEN),
            ("POST", f"{endpoint}/refresh", WS_TOKEN), ("PUT", arm, ARM_TOKEN)]


def test_the_emulator_answers_hostile_bodies_with_a_4xx_envelope(world):
    world.create_endpoint("hostile")
    odd = dict(BODIES, **{
        "huge-concurrency": json.dumps({"Description": "x", "MaxConcurrentCalls": 10 ** 300}).encode(),
        "huge-float-params": json.dumps({"Inputs": {}, "GlobalParameters": {"Random seed": 1e308}}).encode(),
        "null": b"null", "list": b"[1, 2]",
    })
    for method, url, key in _emulator_calls(world):
        for name, body in odd.items():
            response = requests.request(method, url, data=body, timeout=30, headers={
                "Authorization": f"Bearer {key}", "Content-Type": "application/json"})
            assert response.status_code < 500, (method, url.split("?")[0], name, response.status_code, response.text)
            if response.status_code >= 400:
                assert "error" in response.json(), (method, name, response.text)
