"""Azure Functions entry point: trigger declarations only; the logic lives in the `retrain` package."""

import os

import azure.functions as func
import azurefunctions.extensions.bindings.blob as blob

from retrain import api, routes, steps, sweeper, telemetry, triggers
from retrain.context import get_context
from retrain.events import sender
from retrain.queues import Step
from retrain.web import dashboard as web

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)
STORAGE = "RETRAIN_STORAGE"
telemetry.configure(os.environ)  # only when APPLICATIONINSIGHTS_CONNECTION_STRING / OTEL_EXPORTER_OTLP_ENDPOINT is set


# --- new data, schedules, the safety net ----------------------------------------------------

@app.blob_trigger(arg_name="client", path="%TRAINING_CONTAINER%/{name}", connection=STORAGE,
                  source=func.BlobSource.EVENT_GRID)
def on_training_data(client: blob.BlobClient) -> None:
    triggers.on_blob(get_context(), triggers.BlobEvent.from_client(client))


@app.timer_trigger(arg_name="timer", schedule="%RETRAIN_SCHEDULE%")
def scheduled_retrain(timer: func.TimerRequest) -> None:
    triggers.on_schedule(get_context())


@app.timer_trigger(arg_name="timer", schedule="%SWEEP_SCHEDULE%")
def sweep_runs(timer: func.TimerRequest) -> None:
    sweeper.sweep(get_context())


# --- the chain: one queue per step -----------------------------------------------------------

@app.queue_trigger(arg_name="msg", queue_name="retrain-submit", connection=STORAGE)
def submit_job(msg: func.QueueMessage) -> None:
    steps.handle(get_context(), Step.SUBMIT, msg.get_body())


@app.queue_trigger(arg_name="msg", queue_name="retrain-check", connection=STORAGE)
def check_job(msg: func.QueueMessage) -> None:
    steps.handle(get_context(), Step.CHECK, msg.get_body())


@app.queue_trigger(arg_name="msg", queue_name="retrain-evaluate", connection=STORAGE)
def evaluate_run(msg: func.QueueMessage) -> None:
    steps.handle(get_context(), Step.EVALUATE, msg.get_body())


@app.queue_trigger(arg_name="msg", queue_name="retrain-promote", connection=STORAGE)
def promote_model(msg: func.QueueMessage) -> None:
    steps.handle(get_context(), Step.PROMOTE, msg.get_body())


# --- events: fan-out and delivery (webhooks, Event Grid) -------------------------------------

@app.queue_trigger(arg_name="msg", queue_name="retrain-events", connection=STORAGE)
def send_events(msg: func.QueueMessage) -> None:
    sender.handle(get_context(), msg.get_body())


# --- HTTP API (retrain/routes.py is its table; GET /api/openapi.json describes it) ---------------

def _http(action, req: func.HttpRequest) -> func.HttpResponse:
    request = api.ApiRequest(req.method, dict(req.route_params), dict(req.params), req.get_body(),
                             dict(req.headers))
    response = api.handle(get_context(), action, request)
    return func.HttpResponse(response.text(), status_code=response.status, headers=response.headers,
                             mimetype="application/json")


@app.route(route="models", methods=["GET"])
def list_models(req: func.HttpRequest) -> func.HttpResponse:
    return _http(api.list_models, req)


@app.route(route="models/{model}", methods=["GET", "PUT"])
def model(req: func.HttpRequest) -> func.HttpResponse:
    return _http(api.model, req)


@app.route(route="models/{model}/retrain", methods=["POST"])
def retrain(req: func.HttpRequest) -> func.HttpResponse:
    return _http(api.retrain, req)


@app.route(route="models/{model}/runs", methods=["GET"])
def list_runs(req: func.HttpRequest) -> func.HttpResponse:
    return _http(api.list_runs, req)


@app.route(route="models/{model}/runs/{run}", methods=["GET"])
def get_run(req: func.HttpRequest) -> func.HttpResponse:
    return _http(api.get_run, req)


@app.route(route="models/{model}/runs/{run}/{action}", methods=["POST"])
def run_action(req: func.HttpRequest) -> func.HttpResponse:
    return _http(api.run_action, req)


@app.route(route="models/{model}/promotions", methods=["GET"])
def promotions(req: func.HttpRequest) -> func.HttpResponse:
    return _http(api.promotions, req)


@app.route(route="models/{model}/rollback", methods=["POST"])
def rollback(req: func.HttpRequest) -> func.HttpResponse:
    return _http(api.rollback, req)


@app.route(route="models/{model}/audit", methods=["GET"])
def audit(req: func.HttpRequest) -> func.HttpResponse:
    return _http(api.audit, req)


@app.route(route="skipped", methods=["GET"])
def skipped(req: func.HttpRequest) -> func.HttpResponse:
    return _http(api.skipped, req)


@app.route(route="subscriptions", methods=["GET"])
def list_subscriptions(req: func.HttpRequest) -> func.HttpResponse:
    return _http(api.list_subscriptions, req)


@app.route(route="subscriptions/{name}", methods=["GET", "PUT", "DELETE"])
def subscription(req: func.HttpRequest) -> func.HttpResponse:
    return _http(api.subscription, req)


@app.route(route="subscriptions/{name}/test", methods=["POST"])
def test_subscription(req: func.HttpRequest) -> func.HttpResponse:
    return _http(api.test_subscription, req)


@app.route(route="subscriptions/{name}/deliveries", methods=["GET"])
def deliveries(req: func.HttpRequest) -> func.HttpResponse:
    return _http(api.deliveries, req)


@app.route(route="subscriptions/{name}/deliveries/{delivery}/redeliver", methods=["POST"])
def redeliver(req: func.HttpRequest) -> func.HttpResponse:
    return _http(api.redeliver, req)


@app.route(route="openapi.json", methods=["GET"])
def openapi_document(req: func.HttpRequest) -> func.HttpResponse:
    return _http(routes.openapi, req)


# --- the operator's dashboard (server-rendered; forms post through the API's handlers) ----------

@app.route(route="dashboard/{*path}", methods=["GET", "POST"])
def dashboard(req: func.HttpRequest) -> func.HttpResponse:
    request = web.WebRequest(req.method, req.route_params.get("path") or "", dict(req.params), req.get_body(),
                             dict(req.headers))
    page = web.handle(get_context(), request)
    return func.HttpResponse(page.body, status_code=page.status, headers=page.headers, mimetype=page.mimetype)
