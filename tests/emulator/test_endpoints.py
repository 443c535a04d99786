"""Classic endpoint management: list/get/PUT/PATCH/refresh/DELETE, keys, Version, Resources, the serving model."""

from __future__ import annotations

import uuid

import pytest
import requests

from tests.datasets import BINARY_FEATURES, binary_csv, binary_features


@pytest.fixture(scope="module")
def inverted_model() -> bytes:
    """A model that predicts the opposite of the initial one (trained on the inverted rule)."""
    from emulators.training.training import Recipe, train

    return train(binary_csv(200, seed=202, invert=True), Recipe("binary", "label", "logistic_regression")).model


def _new_endpoint(w, **body) -> dict:
    name = f"ep-{uuid.uuid4().hex[:8]}"
    r = requests.put(w.endpoint_url(endpoint=name), json={"Description": "test", **body},
                     headers=w.auth(w.workspace_token))
    assert r.status_code == 200, r.text
    return r.json()


def _upload_model(w, data: bytes) -> str:
    return w.blobs.upload(w.blobs.container("models"), "model.ilearner", data)


def _patch(w, name: str, relative: str, *, resource: str | None = None, key: str | None = None, sas: str | None = None):
    location = {"BaseLocation": w.blobs.base_location, "RelativeLocation": relative,
                "SasBlobToken": w.blobs.sas(relative) if sas is None else sas}
    return requests.patch(w.endpoint_url(endpoint=name),
                          json={"Resources": [{"Name": resource or w.predictive.trained_model, "Location": location}]},
                          headers=w.auth(key or w.workspace_token))


def _labels(w, api_location: str, key: str, rows) -> list[str]:
    body = {"Inputs": {"input1": {"ColumnNames": BINARY_FEATURES, "Values": rows}}, "GlobalParameters": {}}
    r = requests.post(api_location + "/execute?api-version=2.0&details=true", json=body, headers=w.auth(key))
    assert r.status_code == 200, r.text
    return [row[-2] for row in r.json()["Results"]["output1"]["value"]["Values"]]


def test_the_default_endpoint_exists_from_the_start(emulator_world):
    w = emulator_world
    r = requests.get(w.endpoint_url(endpoint="default"), headers=w.auth(w.workspace_token))
    assert r.status_code == 200
    ep = r.json()
    assert ep["Name"] == "default" and ep["WebServiceId"] == w.predictive.id and ep["WorkspaceId"] == w.workspace_id
    assert ep["ApiLocation"].endswith(f"/workspaces/{w.workspace_id}/services/{w.predictive.id}")
    assert ep["Resources"][0]["Name"] == w.predictive.trained_model
    assert ep["Resources"][0]["Kind"] == "TrainedModel"


def test_put_creates_an_endpoint_with_its_own_keys_and_api_location(emulator_world):
    w = emulator_world
    ep = _new_endpoint(w, ThrottleLevel="High", MaxConcurrentCalls=10)
    assert ep["PrimaryKey"] and ep["SecondaryKey"] and ep["PrimaryKey"] != w.predictive.key
    assert ep["ApiLocation"] != f"{w.url}/workspaces/{w.workspace_id}/services/{w.predictive.id}"
    assert (ep["ThrottleLevel"], ep["MaxConcurrentCalls"], ep["Description"]) == ("High", 10, "test")
    for field in ("CreationTime", "HelpLocation", "Version", "DiagnosticsTraceLevel", "Resources"):
        assert field in ep


def test_list_returns_the_default_and_added_endpoints(emulator_world):
    w = emulator_world
    ep = _new_endpoint(w)
    r = requests.get(w.endpoint_url(), headers=w.auth(w.workspace_token))
    assert r.status_code == 200
    names = [e["Name"] for e in r.json()]
    assert "default" in names and ep["Name"] in names


def test_a_new_endpoint_serves_the_web_services_model(emulator_world):
    w = emulator_world
    ep = _new_endpoint(w)
    rows = binary_features(20, seed=30)
    assert _labels(w, ep["ApiLocation"], ep["PrimaryKey"], rows) == \
           _labels(w, f"{w.url}/workspaces/{w.workspace_id}/services/{w.predictive.id}", w.predictive.key, rows)


def test_an_endpoint_scores_with_its_own_key_and_with_the_service_key(emulator_world):
    w = emulator_world
    ep = _new_endpoint(w)
    rows = binary_features(1)
    assert _labels(w, ep["ApiLocation"], ep["SecondaryKey"], rows)
    assert _labels(w, ep["ApiLocation"], w.predictive.key, rows)


def test_patch_swaps_the_model_and_predictions_change(emulator_world, inverted_model):
    w = emulator_world
    ep = _new_endpoint(w)
    rows = binary_features(30, seed=31)
    before = _labels(w, ep["ApiLocation"], ep["PrimaryKey"], rows)
    r = _patch(w, ep["Name"], _upload_model(w, inverted_model))
    assert r.status_code == 204, r.text
    after = _labels(w, ep["ApiLocation"], ep["PrimaryKey"], rows)
    assert sum(a != b for a, b in zip(before, after)) >= 25


def test_patch_increments_version_and_reports_the_location_without_sas(emulator_world, inverted_model):
    w = emulator_world
    ep = _new_endpoint(w)
    relative = _upload_model(w, inverted_model)
    assert _patch(w, ep["Name"], relative).status_code == 204
    got = requests.get(w.endpoint_url(endpoint=ep["Name"]), headers=w.auth(w.workspace_token)).json()
    assert got["Version"] == ep["Version"] + 1
    assert got["Resources"][0]["Location"] == {"BaseLocation": w.blobs.base_location, "RelativeLocation": relative}


def test_patch_with_the_location_already_served_still_succeeds(emulator_world, inverted_model):
    w = emulator_world
    ep = _new_endpoint(w)
    relative = _upload_model(w, inverted_model)
    assert _patch(w, ep["Name"], relative).status_code == 204
    assert _patch(w, ep["Name"], relative).status_code == 204


def test_the_endpoint_keeps_serving_the_patched_model_after_the_sas_expires(emulator_world, inverted_model):
    w = emulator_world
    ep = _new_endpoint(w)
    relative = _upload_model(w, inverted_model)
    rows = binary_features(10, seed=32)
    assert _patch(w, ep["Name"], relative).status_code == 204
    served = _labels(w, ep["ApiLocation"], ep["PrimaryKey"], rows)
    w.blobs.download(relative)  # the blob is still there, but the emulator no longer needs it:
    container, name = relative.split("/", 1)
    from azure.storage.blob import BlobServiceClient
    BlobServiceClient.from_connection_string(w.storage_connection_string).get_blob_client(container, name).delete_blob()
    assert _labels(w, ep["ApiLocation"], ep["PrimaryKey"], rows) == served


def test_patch_with_the_endpoints_own_key_is_allowed(emulator_world, inverted_model):
    w = emulator_world
    ep = _new_endpoint(w)
    assert _patch(w, ep["Name"], _upload_model(w, inverted_model), key=ep["PrimaryKey"]).status_code == 204


def test_another_endpoints_key_cannot_patch(emulator_world, inverted_model):
    w = emulator_world
    ep, other = _new_endpoint(w), _new_endpoint(w)
    r = _patch(w, ep["Name"], _upload_model(w, inverted_model), key=other["PrimaryKey"])
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "Unauthorized"


def test_the_default_endpoint_cannot_be_patched(emulator_world, inverted_model):
    w = emulator_world
    r = _patch(w, "default", _upload_model(w, inverted_model))
    assert r.status_code == 400
    assert r.json()["error"]["details"][0]["code"] == "CannotUpdateDefaultEndpoint"


def test_patching_a_training_web_service_has_no_updatable_resources(emulator_world, inverted_model):
    w = emulator_world
    relative = _upload_model(w, inverted_model)
    location = {"BaseLocation": w.blobs.base_location, "RelativeLocation": relative, "SasBlobToken": w.blobs.sas(relative)}
    r = requests.patch(w.endpoint_url(w.binary.id, "default"),
                       json={"Resources": [{"Name": "x [trained model]", "Location": location}]},
                       headers=w.auth(w.workspace_token))
    assert r.status_code == 400
    assert r.json()["error"]["message"] == "This Web Service has no updatable resources."


def test_a_wrong_resource_name_is_refused_and_the_old_model_keeps_serving(emulator_world, inverted_model):
    w = emulator_world
    ep = _new_endpoint(w)
    rows = binary_features(10, seed=33)
    before = _labels(w, ep["ApiLocation"], ep["PrimaryKey"], rows)
    r = _patch(w, ep["Name"], _upload_model(w, inverted_model), resource="census model [trained model]")
    assert r.status_code == 400
    assert r.json()["error"]["details"][0]["code"] == "InvalidResourceName"
    assert _labels(w, ep["ApiLocation"], ep["PrimaryKey"], rows) == before


def test_a_missing_blob_is_refused_with_blob_not_found(emulator_world):
    w = emulator_world
    ep = _new_endpoint(w)
    container = w.blobs.container("models")
    r = _patch(w, ep["Name"], f"{container}/missing.ilearner")
    assert r.status_code == 400
    assert r.json()["error"]["details"][0]["code"] == "BlobNotFound"


def test_an_unreadable_blob_is_refused_and_version_stays(emulator_world, inverted_model):
    w = emulator_world
    ep = _new_endpoint(w)
    r = _patch(w, ep["Name"], _upload_model(w, inverted_model), sas="?sv=2020-10-02&sig=bad")
    assert r.status_code == 400
    assert r.json()["error"]["details"][0]["code"] == "BlobNotReadable"
    got = requests.get(w.endpoint_url(endpoint=ep["Name"]), headers=w.auth(w.workspace_token)).json()
    assert got["Version"] == ep["Version"]


def test_a_blob_that_is_not_a_model_is_refused(emulator_world):
    w = emulator_world
    ep = _new_endpoint(w)
    r = _patch(w, ep["Name"], w.blobs.upload(w.blobs.container("models"), "model.ilearner", b"not a model"))
    assert r.status_code == 400
    assert r.json()["error"]["details"][0]["code"] == "InvalidTrainedModel"


def test_refresh_with_nothing_changed_is_304(emulator_world):
    w = emulator_world
    ep = _new_endpoint(w)
    r = requests.post(w.endpoint_url(endpoint=ep["Name"]) + "/refresh", json={"OverwriteResources": "True"},
                      headers=w.auth(w.workspace_token))
    assert r.status_code == 304


def test_refresh_overwrites_a_patched_model_with_the_web_services_model(emulator_world, inverted_model):
    w = emulator_world
    ep = _new_endpoint(w)
    rows = binary_features(10, seed=34)
    original = _labels(w, ep["ApiLocation"], ep["PrimaryKey"], rows)
    assert _patch(w, ep["Name"], _upload_model(w, inverted_model)).status_code == 204
    r = requests.post(w.endpoint_url(endpoint=ep["Name"]) + "/refresh", json={"OverwriteResources": "True"},
                      headers=w.auth(w.workspace_token))
    assert r.status_code == 204
    assert _labels(w, ep["ApiLocation"], ep["PrimaryKey"], rows) == original


def test_delete_removes_an_endpoint(emulator_world):
    w = emulator_world
    ep = _new_endpoint(w)
    r = requests.delete(w.endpoint_url(endpoint=ep["Name"]), headers=w.auth(w.workspace_token))
    assert r.status_code == 204
    r = requests.get(w.endpoint_url(endpoint=ep["Name"]), headers=w.auth(w.workspace_token))
    assert r.status_code == 404


def test_the_default_endpoint_cannot_be_deleted(emulator_world):
    w = emulator_world
    r = requests.delete(w.endpoint_url(endpoint="default"), headers=w.auth(w.workspace_token))
    assert r.status_code == 400
    assert r.json()["error"]["details"][0]["code"] == "CannotDeleteDefaultEndpoint"


def test_an_unknown_endpoint_is_404(emulator_world):
    w = emulator_world
    r = requests.get(w.endpoint_url(endpoint="nope"), headers=w.auth(w.workspace_token))
    assert r.status_code == 404
    assert r.json()["error"]["details"][0]["code"] == "EndpointNotFound"


def test_an_unknown_web_service_is_404_web_service_not_found(emulator_world):
    w = emulator_world
    r = requests.get(w.endpoint_url("nope"), headers=w.auth(w.workspace_token))
    assert r.status_code == 404
    assert r.json()["error"]["details"][0]["code"] == "WebServiceNotFound"


def test_an_unknown_workspace_is_404_workspace_not_found(emulator_world):
    w = emulator_world
    r = requests.get(w.endpoint_url().replace(w.workspace_id, "f" * 32), headers=w.auth(w.workspace_token))
    assert r.status_code == 404
    assert r.json()["error"]["details"][0]["code"] == "WorkspaceNotFound"


def test_a_wrong_token_is_401(emulator_world):
    w = emulator_world
    r = requests.get(w.endpoint_url(), headers=w.auth("wrong"))
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "Unauthorized"


@pytest.mark.parametrize("name", ["UPPER", "a" * 25, "-lead", "trail-", "under_score"])
def test_invalid_endpoint_names_are_refused(emulator_world, name):
    w = emulator_world
    r = requests.put(w.endpoint_url(endpoint=name), json={}, headers=w.auth(w.workspace_token))
    assert r.status_code == 400
    assert r.json()["error"]["details"][0]["code"] == "InvalidEndpointName"


@pytest.mark.parametrize("body", [{"ThrottleLevel": "Medium"}, {"MaxConcurrentCalls": 0},
                                  {"MaxConcurrentCalls": 201}])
def test_invalid_endpoint_settings_are_refused(emulator_world, body):
    w = emulator_world
    r = requests.put(w.endpoint_url(endpoint=f"ep-{uuid.uuid4().hex[:8]}"), json=body,
                     headers=w.auth(w.workspace_token))
    assert r.status_code == 400
