"""The HTTP API's behaviour (host-independent): JSON in and out, 4xx answers that say what to fix."""

import json

import pytest

from retrain import api
from retrain.runs import Status

from .conftest import TRAIN_KEY, WS_TOKEN, good_data


def call(world, handler, method="GET", body=None, query=None, **route):
    raw = body if isinstance(body, bytes) else (json.dumps(body).encode() if body is not None else b"")
    route.setdefault("model", world.model)
    response = api.handle(world.ctx, handler, api.ApiRequest(method, route, query or {}, raw))
    json.dumps(response.body)  # always serialisable
    return response


def definition(world):
    return {"training": {"url": world.bes_url, "key_setting": "RETRAIN_SECRET_CHAIN_BES_KEY"},
            "endpoints": [{"kind": "classic", "url": world.create_endpoint("apiep"), "key_setting": "RETRAIN_SECRET_CHAIN_WS_TOKEN",
                           "resource_name": "Census Model [trained model]"}],
            "policy": {"rules": [{"metric": "AUC", "min": 0.7}]}}


def test_put_registers_a_model_and_get_shows_it_without_secrets(world):
    created = call(world, api.model, "PUT", definition(world))
    assert created.status == 201 and created.headers["Location"] == "/api/models/census"
    shown = call(world, api.model)
    assert shown.status == 200 and shown.body["training"]["key_setting"] == "RETRAIN_SECRET_CHAIN_BES_KEY"
    text = json.dumps(shown.body)
    assert TRAIN_KEY not in text and WS_TOKEN not in text
    assert call(world, api.model, "PUT", definition(world)).status == 200  # redefining keeps state


def test_registering_warns_about_key_settings_the_app_does_not_have(world):
    body = definition(world)
    body["training"]["key_setting"] = "RETRAIN_SECRET_NOT_SET_ANYWHERE"
    response = call(world, api.model, "PUT", body)
    assert response.status == 201 and "RETRAIN_SECRET_NOT_SET_ANYWHERE" in response.body["warnings"][0]


def test_list_models(world):
    call(world, api.model, "PUT", definition(world))
    assert [m["name"] for m in call(world, api.list_models).body["models"]] == ["census"]


@pytest.mark.parametrize("body, status, fragment", [
    (b"{not json", 400, "not valid JSON"),
    (b"", 400, "JSON body is required"),
    ({"training": {"url": "ftp://x", "key_setting": "K", "api_key": "secret"}}, 400, "secrets do not belong"),
])
def test_bad_definitions_get_400_with_what_to_fix(world, body, status, fragment):
    response = call(world, api.model, "PUT", body)
    assert response.status == status and fragment in json.dumps(response.body)
    assert "secret\"" not in json.dumps(response.body).replace("secrets", "")


def test_bad_model_names_are_refused(world):
    response = call(world, api.model, model="Bad Name")
    assert response.status == 400 and "lowercase" in response.body["error"]["message"]


def test_unknown_model_is_404(world):
    assert call(world, api.model, model="nobody").status == 404
    assert call(world, api.retrain, "POST", model="nobody").status == 404


def test_retrain_defaults_to_the_newest_blob_and_answers_202_with_the_run_location(world):
    call(world, api.model, "PUT", definition(world))
    world.upload("census/2024-05.csv", good_data(seed=1))
    world.upload("census/2024-06.csv", good_data(seed=2))
    world.upload("census/notes.txt", b"not data")
    response = call(world, api.retrain, "POST")
    assert response.status == 202
    run = response.body["run"]
    assert run["data"]["name"] == "census/2024-06.csv"  # same second: the later name wins
    assert response.headers["Location"] == f"/api/models/census/runs/{run['run_id']}"
    again = call(world, api.retrain, "POST")
    assert again.status == 200 and again.body["duplicate"] and again.body["run"]["run_id"] == run["run_id"]


def test_retrain_on_a_named_blob(world):
    call(world, api.model, "PUT", definition(world))
    world.upload("census/a.csv", good_data())
    response = call(world, api.retrain, "POST", {"blob": "census/a.csv"})
    assert response.status == 202 and response.body["run"]["data"]["name"] == "census/a.csv"


@pytest.mark.parametrize("body, status, fragment", [
    ({"blob": "../other/x.csv"}, 400, "'..'"),
    ({"blob": "/etc/passwd"}, 400, "relative"),
    ({"blob": "census/missing.csv"}, 404, "no blob"),
    ({"blob": 7}, 400, "must be a string"),
    ({"blobb": "x"}, 400, "unknown field"),
    ([1, 2], 400, "JSON object"),
])
def test_retrain_refuses_bad_blob_references(world, body, status, fragment):
    call(world, api.model, "PUT", definition(world))
    response = call(world, api.retrain, "POST", body)
    assert response.status == status and fragment in response.body["error"]["message"]


def test_retrain_with_no_data_says_so(world):
    call(world, api.model, "PUT", definition(world))
    response = call(world, api.retrain, "POST")
    assert response.status == 409 and "no CSV/TSV blob under" in response.body["error"]["message"]


def test_runs_are_listed_newest_first_and_filterable(world):
    call(world, api.model, "PUT", definition(world))
    world.upload("census/1.csv", good_data(seed=1))
    first = call(world, api.retrain, "POST", {"blob": "census/1.csv"}).body["run"]["run_id"]
    world.upload("census/2.csv", good_data(seed=2))
    second = call(world, api.retrain, "POST", {"blob": "census/2.csv"}).body["run"]["run_id"]
    listed = call(world, api.list_runs).body["runs"]
    assert [r["run_id"] for r in listed] == [second, first]
    pending = call(world, api.list_runs, query={"status": "pending"}).body["runs"]
    assert [r["run_id"] for r in pending] == [second]
    assert call(world, api.list_runs, query={"status": "nope"}).status == 400
    assert call(world, api.list_runs, query={"limit": "0"}).status == 400


def test_get_run_and_unknown_run(world):
    call(world, api.model, "PUT", definition(world))
    world.upload("census/1.csv", good_data())
    run_id = call(world, api.retrain, "POST").body["run"]["run_id"]
    assert call(world, api.get_run, run=run_id).body["status"] == Status.QUEUED.value
    assert call(world, api.get_run, run="0" * 20).status == 404
    assert call(world, api.get_run, run="x/../y").status == 400


def test_cancel_then_cancel_again_is_a_conflict(world):
    call(world, api.model, "PUT", definition(world))
    world.upload("census/1.csv", good_data())
    run_id = call(world, api.retrain, "POST").body["run"]["run_id"]
    done = call(world, api.run_action, "POST", {"by": "bob"}, run=run_id, action="cancel")
    assert done.status == 200 and done.body["status"] == "cancelled"
    again = call(world, api.run_action, "POST", run=run_id, action="cancel")
    assert again.status == 409 and "already ended" in again.body["error"]["message"]
    assert call(world, api.run_action, "POST", run=run_id, action="explode").status == 400


def test_promotions_history_is_empty_before_any_promotion(world):
    call(world, api.model, "PUT", definition(world))
    assert call(world, api.promotions).body == {"model": "census", "promotions": [], "continuation": None, "next": None}
