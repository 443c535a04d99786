"""function_app.py: the binding contract, and each function called as the host calls it (real azure.functions objects)."""

import importlib.util
import json

import azure.functions as func
import pytest
from azure.functions.queue import QueueMessage
from azure.functions.timer import TimerRequest

import function_app
from retrain.context import set_context
from retrain.queues import Step, StepMessage
from retrain.runs import Status

from .conftest import good_data


@pytest.fixture(scope="module")
def functions():
    """get_functions() may be called once per app object: index a private copy, as a host would."""
    spec = importlib.util.spec_from_file_location("function_app_under_contract", function_app.__file__)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return {f.get_function_name(): f for f in module.app.get_functions()}


@pytest.fixture
def host_context(world):
    set_context(world.ctx)
    yield world
    set_context(None)


def user_function(builder):
    return builder.build().get_user_function()


def trigger(functions, name) -> dict:
    return json.loads(functions[name].get_function_json())["bindings"][0]


def test_the_app_declares_exactly_these_functions(functions):
    assert set(functions) == {"on_training_data", "scheduled_retrain", "sweep_runs", "submit_job", "check_job",
                              "evaluate_run", "promote_model", "list_models", "model", "retrain", "list_runs",
                              "get_run", "run_action", "promotions", "rollback", "audit", "skipped", "send_events",
                              "list_subscriptions", "subscription", "test_subscription", "deliveries",
                              "redeliver", "openapi_document", "dashboard"}


def test_the_blob_trigger_watches_the_training_container_through_event_grid(functions):
    binding = trigger(functions, "on_training_data")
    assert binding["type"] == "blobTrigger" and binding["path"] == "%TRAINING_CONTAINER%/{name}"
    assert binding["connection"] == "RETRAIN_STORAGE" and binding["source"] == "EventGrid"


@pytest.mark.parametrize("name, step", [("submit_job", Step.SUBMIT), ("check_job", Step.CHECK),
                                        ("evaluate_run", Step.EVALUATE), ("promote_model", Step.PROMOTE)])
def test_each_step_listens_on_its_own_queue(functions, name, step):
    binding = trigger(functions, name)
    assert (binding["type"], binding["queueName"], binding["connection"]) == \
        ("queueTrigger", step.queue, "RETRAIN_STORAGE")


def test_the_events_sender_listens_on_the_events_queue(functions):
    binding = trigger(functions, "send_events")
    assert (binding["type"], binding["queueName"], binding["connection"]) == \
        ("queueTrigger", "retrain-events", "RETRAIN_STORAGE")


def test_timers_take_their_schedules_from_app_settings(functions):
    assert trigger(functions, "scheduled_retrain")["schedule"] == "%RETRAIN_SCHEDULE%"
    assert trigger(functions, "sweep_runs")["schedule"] == "%SWEEP_SCHEDULE%"


def test_http_routes_and_methods(functions):
    routes = {name: (trigger(functions, name)["route"], sorted(trigger(functions, name)["methods"]))
              for name in functions if trigger(functions, name)["type"] == "httpTrigger"}
    assert routes == {
        "list_models": ("models", ["GET"]), "model": ("models/{model}", ["GET", "PUT"]),
        "retrain": ("models/{model}/retrain", ["POST"]), "list_runs": ("models/{model}/runs", ["GET"]),
        "get_run": ("models/{model}/runs/{run}", ["GET"]),
        "run_action": ("models/{model}/runs/{run}/{action}", ["POST"]),
        "promotions": ("models/{model}/promotions", ["GET"]), "rollback": ("models/{model}/rollback", ["POST"]),
        "audit": ("models/{model}/audit", ["GET"]),
        "skipped": ("skipped", ["GET"]), "list_subscriptions": ("subscriptions", ["GET"]),
        "subscription": ("subscriptions/{name}", ["DELETE", "GET", "PUT"]),
        "test_subscription": ("subscriptions/{name}/test", ["POST"]),
        "deliveries": ("subscriptions/{name}/deliveries", ["GET"]),
        "redeliver": ("subscriptions/{name}/deliveries/{delivery}/redeliver", ["POST"]),
        "openapi_document": ("openapi.json", ["GET"]), "dashboard": ("dashboard/{*path}", ["GET", "POST"])}
    assert {trigger(functions, n)["authLevel"] for n in routes} == {"FUNCTION"}


def test_the_blob_function_takes_an_sdk_client_and_starts_a_run(host_context):
    world = host_context
    world.register(endpoints=[])
    world.upload("census/sdk.csv", good_data())
    client = world.ctx.storage.blobs.get_blob_client(world.ctx.settings.training_container, "census/sdk.csv")
    user_function(function_app.on_training_data)(client)
    [run] = world.ctx.runs.list(world.model)
    assert run.data.name == "census/sdk.csv" and run.status is Status.QUEUED


def test_the_submit_function_takes_a_base64_queue_message(host_context):
    world = host_context
    world.register(endpoints=[])
    run = world.land("census/q.csv", good_data())
    body = StepMessage(world.model, run.run_id, Step.SUBMIT).to_json().encode()
    user_function(function_app.submit_job)(QueueMessage(id="1", body=body, dequeue_count=1))
    assert world.run(run.run_id).status is Status.RUNNING


def test_a_foreign_queue_message_is_dropped_without_an_exception(host_context, caplog):
    user_function(function_app.check_job)(QueueMessage(id="2", body=b"hello", dequeue_count=1))
    assert "dropped" in caplog.text


def test_the_timer_functions_run(host_context):
    world = host_context
    world.register(endpoints=[], schedule=True)
    world.upload("census/t.csv", good_data())
    user_function(function_app.scheduled_retrain)(TimerRequest(past_due=False))
    user_function(function_app.sweep_runs)(TimerRequest(past_due=True))
    [run] = world.ctx.runs.list(world.model)
    assert run.trigger.value == "timer"


def test_http_functions_speak_json(host_context):
    world = host_context
    world.register(endpoints=[])
    world.upload("census/h.csv", good_data())
    request = func.HttpRequest("POST", "/api/models/census/retrain", route_params={"model": "census"},
                               body=b'{"blob": "census/h.csv"}')
    response = user_function(function_app.retrain)(request)
    assert response.status_code == 202 and response.mimetype == "application/json"
    run_id = json.loads(response.get_body())["run"]["run_id"]
    assert response.headers["Location"] == f"/api/models/census/runs/{run_id}"
    bad = user_function(function_app.model)(func.HttpRequest("PUT", "/api/models/census", body=b"{oops",
                                                             route_params={"model": "census"}))
    assert bad.status_code == 400 and "not valid JSON" in json.loads(bad.get_body())["error"]["message"]


def test_http_functions_pass_the_principal_header_through(host_context):
    """Easy Auth's front end cannot run here: the test sets the header it would set."""
    from retrain.principal import encode_principal

    world = host_context
    world.ctx.env = {**world.ctx.env, "RETRAIN_EASY_AUTH": "true"}
    route = {"model": "census"}
    body = json.dumps({"training": {"url": world.bes_url, "key_setting": "RETRAIN_SECRET_CHAIN_BES_KEY"}}).encode()
    refused = user_function(function_app.model)(func.HttpRequest("PUT", "/api/models/census", body=body,
                                                                 route_params=route))
    assert refused.status_code == 403 and "Retrain.Admin" in json.loads(refused.get_body())["error"]["message"]
    admin = encode_principal([("oid", "oid-1"), ("preferred_username", "ada@contoso.com"), ("roles", "Retrain.Admin")])
    accepted = user_function(function_app.model)(func.HttpRequest("PUT", "/api/models/census", body=body,
                                                                  route_params=route,
                                                                  headers={"X-MS-CLIENT-PRINCIPAL": admin}))
    assert accepted.status_code == 201
    audit = user_function(function_app.audit)(func.HttpRequest("GET", "/api/models/census/audit", body=b"",
                                                               route_params=route))
    [entry] = json.loads(audit.get_body())["audit"]
    assert entry["action"] == "create" and entry["by"]["name"] == "ada@contoso.com" and entry["by"]["kind"] == "user"
