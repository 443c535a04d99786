"""ARM webServices subset: GET without credentials, PUT swaps the model asynchronously, Azure-AsyncOperation, scoring."""

from __future__ import annotations

import time

import pytest
import requests

from tests.datasets import BINARY_FEATURES, binary_csv, binary_features
from tests.emulator_world import ARM_SCRATCH

API = {"api-version": "2017-01-01"}
SVC = ARM_SCRATCH  # the ARM web service these tests may change


@pytest.fixture(scope="module")
def inverted_model() -> bytes:
    from emulators.training.training import Recipe, train

    return train(binary_csv(200, seed=303, invert=True), Recipe("binary", "label", "logistic_regression")).model


def _get(w, **params):
    return requests.get(w.arm_url(SVC.name), params={**API, **params}, headers=w.auth(w.arm_token))


def _resource_asset(definition: dict) -> dict:
    return next(a for a in definition["properties"]["assets"].values() if a["type"] == "Resource")


def _put_model(w, relative: str, *, credentials: bool = True, sas_in_uri: bool = False):
    definition = _get(w).json()
    asset = _resource_asset(definition)
    uri = w.blobs.base_location + relative
    if sas_in_uri:
        asset["locationInfo"] = {"uri": uri + w.blobs.sas(relative)}
    elif credentials:
        asset["locationInfo"] = {"uri": uri, "credentials": w.blobs.sas(relative)}
    else:
        asset["locationInfo"] = {"uri": uri}
    return requests.put(w.arm_url(SVC.name), params=API, json=definition, headers=w.auth(w.arm_token))


def _follow(w, response, timeout: float = 30) -> dict:
    url = response.headers["Azure-AsyncOperation"]
    deadline = time.monotonic() + timeout
    while True:
        status = requests.get(url, headers=w.auth(w.arm_token)).json()
        if status["status"] != "InProgress" or time.monotonic() > deadline:
            return status
        time.sleep(0.1)


def _labels(w, rows) -> list[str]:
    body = {"Inputs": {"input1": {"ColumnNames": BINARY_FEATURES, "Values": rows}}, "GlobalParameters": {}}
    r = requests.post(w.arm_rrs_url(SVC.name), json=body, headers=w.auth(SVC.api_key))
    assert r.status_code == 200, r.text
    return [row[-2] for row in r.json()["Results"]["output1"]["value"]["Values"]]


def test_get_returns_the_definition_with_the_trained_model_asset(emulator_world):
    w = emulator_world
    r = _get(w)
    assert r.status_code == 200
    d = r.json()
    assert d["type"] == "Microsoft.MachineLearning/webServices" and d["name"] == SVC.name
    assert d["properties"]["provisioningState"] == "Succeeded"
    assert _resource_asset(d)["name"] == w.arm.trained_model


def test_the_older_api_version_is_accepted_too(emulator_world):
    w = emulator_world
    r = requests.get(w.arm_url(), params={"api-version": "2016-05-01-preview"}, headers=w.auth(w.arm_token))
    assert r.status_code == 200


def test_an_unknown_api_version_is_refused(emulator_world):
    w = emulator_world
    r = requests.get(w.arm_url(), params={"api-version": "2099-01-01"}, headers=w.auth(w.arm_token))
    assert r.status_code == 400


def test_a_wrong_bearer_token_is_401(emulator_world):
    w = emulator_world
    r = requests.get(w.arm_url(), params=API, headers=w.auth("wrong"))
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "AuthenticationFailed"


def test_an_unknown_web_service_is_404_resource_not_found(emulator_world):
    w = emulator_world
    r = requests.get(w.arm_url("nope"), params=API, headers=w.auth(w.arm_token))
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "ResourceNotFound"


def test_put_answers_provisioning_with_an_async_operation_header(emulator_world, reset_faults, inverted_model):
    w = emulator_world
    relative = w.blobs.upload(w.blobs.container("arm"), "model.ilearner", inverted_model)
    r = _put_model(w, relative)
    assert r.status_code in (200, 201), r.text
    assert r.json()["properties"]["provisioningState"] == "Provisioning"
    assert r.headers["Azure-AsyncOperation"].startswith(w.url)
    assert _follow(w, r)["status"] == "Succeeded"
    assert _get(w).json()["properties"]["provisioningState"] == "Succeeded"


def test_a_put_with_a_new_model_uri_changes_predictions(emulator_world, reset_faults, inverted_model,
                                                         emulator_initial_model):
    w = emulator_world
    rows = binary_features(30, seed=40)
    container = w.blobs.container("arm")
    original = w.blobs.upload(container, "original.ilearner", emulator_initial_model)
    assert _follow(w, _put_model(w, original))["status"] == "Succeeded"
    before = _labels(w, rows)
    inverted = w.blobs.upload(container, "inverted.ilearner", inverted_model)
    assert _follow(w, _put_model(w, inverted, sas_in_uri=True))["status"] == "Succeeded"
    after = _labels(w, rows)
    assert sum(a != b for a, b in zip(before, after)) >= 25


def test_get_never_shows_credentials(emulator_world, reset_faults, inverted_model):
    w = emulator_world
    relative = w.blobs.upload(w.blobs.container("arm"), "model.ilearner", inverted_model)
    _follow(w, _put_model(w, relative))
    info = _resource_asset(_get(w).json())["locationInfo"]
    assert info == {"uri": w.blobs.base_location + relative}
    assert "keys" not in _get(w).json()["properties"]


def test_an_unreadable_model_fails_provisioning_and_the_old_model_keeps_serving(emulator_world, reset_faults,
                                                                                 inverted_model):
    w = emulator_world
    rows = binary_features(10, seed=41)
    before = _labels(w, rows)
    served_uri = _resource_asset(_get(w).json())["locationInfo"]["uri"]
    container = w.blobs.container("arm")
    status = _follow(w, _put_model(w, f"{container}/missing.ilearner"))
    assert status["status"] == "Failed"
    assert status["error"]["code"] == "BlobNotFound"
    definition = _get(w).json()
    assert definition["properties"]["provisioningState"] == "Failed"
    assert _resource_asset(definition)["locationInfo"]["uri"] == served_uri
    assert _labels(w, rows) == before


def test_a_file_that_is_not_a_model_fails_provisioning(emulator_world, reset_faults):
    w = emulator_world
    relative = w.blobs.upload(w.blobs.container("arm"), "bad.ilearner", b"PK not a model")
    status = _follow(w, _put_model(w, relative))
    assert (status["status"], status["error"]["code"]) == ("Failed", "InvalidTrainedModel")


def test_a_put_while_provisioning_is_409(emulator_world, reset_faults, inverted_model):
    w = emulator_world
    relative = w.blobs.upload(w.blobs.container("arm"), "model.ilearner", inverted_model)
    first = _put_model(w, relative)
    second = requests.put(w.arm_url(SVC.name), params=API, json=first.json(), headers=w.auth(w.arm_token))
    assert second.status_code == 409
    _follow(w, first)


def test_a_definition_without_the_resource_asset_is_400(emulator_world):
    w = emulator_world
    definition = _get(w).json()
    definition["properties"]["assets"] = {}
    r = requests.put(w.arm_url(SVC.name), params=API, json=definition, headers=w.auth(w.arm_token))
    assert r.status_code == 400


def test_scoring_needs_the_web_services_api_key(emulator_world):
    w = emulator_world
    body = {"Inputs": {"input1": {"ColumnNames": BINARY_FEATURES, "Values": binary_features(1)}}}
    r = requests.post(w.arm_rrs_url(SVC.name), json=body, headers=w.auth("wrong"))
    assert r.status_code == 401


def test_list_keys_returns_the_scoring_key(emulator_world):
    w = emulator_world
    r = requests.post(w.arm_url(SVC.name) + "/listKeys", params=API, headers=w.auth(w.arm_token))
    assert r.status_code == 200
    assert r.json()["primary"] == SVC.api_key
