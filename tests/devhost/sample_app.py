"""A small Functions app used only by the devhost tests: one of each trigger, effects written as result blobs."""

from __future__ import annotations

import json
import os
import time
import uuid

import azure.functions as func
from azure.storage.blob import BlobClient as StorageBlobClient
from azure.storage.blob import BlobServiceClient
from azurefunctions.extensions.bindings import blob as blobsdk

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)


def record(kind: str, doc: dict) -> None:
    """Each invocation leaves one blob `<kind>/<uuid>.json` in %SAMPLE_RESULTS%, so tests can count and read them."""
    service = BlobServiceClient.from_connection_string(os.environ["AzureWebJobsStorage"])
    results = service.get_container_client(os.environ["SAMPLE_RESULTS"])
    results.upload_blob(f"{kind}/{uuid.uuid4()}.json", json.dumps(doc))


@app.route(route="models/{model}/runs/{run:int}", methods=["GET"])
def get_run(req: func.HttpRequest) -> func.HttpResponse:
    doc = {"model": req.route_params["model"], "run": int(req.route_params["run"]), "query": dict(req.params)}
    return func.HttpResponse(json.dumps(doc), mimetype="application/json", headers={"X-Sample": "run"})


@app.route(route="models/{model}", methods=["POST"])
def create_model(req: func.HttpRequest) -> func.HttpResponse:
    try:
        body = req.get_json()
    except ValueError:
        return func.HttpResponse("body must be JSON", status_code=400)
    return func.HttpResponse(json.dumps({"model": req.route_params["model"], "received": body}),
                             status_code=201, mimetype="application/json")


@app.route(route="models/latest", methods=["POST"])
def latest(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("literal route wins")


@app.route(route="files/{name?}", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def files(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(req.route_params.get("name", "<none>"))


@app.route(route="boom", methods=["GET"])
def boom(req: func.HttpRequest) -> func.HttpResponse:
    raise RuntimeError("boom")


@app.queue_trigger(arg_name="msg", queue_name="%SAMPLE_QUEUE%", connection="AzureWebJobsStorage")
def record_message(msg: func.QueueMessage) -> None:
    """Records each delivery; a body `fail-until-N` fails while dequeue_count < N; `sleep-S` sleeps S seconds."""
    body = msg.get_body().decode()
    if body.startswith("sleep-"):
        time.sleep(float(body.removeprefix("sleep-")))
    record("queue", {"id": msg.id, "body": body, "dequeue_count": msg.dequeue_count,
                     "is_function_message": isinstance(msg, func.QueueMessage)})
    if body.startswith("fail-until-") and msg.dequeue_count < int(body.removeprefix("fail-until-")):
        raise RuntimeError(f"failing delivery {msg.dequeue_count} on purpose")


@app.queue_trigger(arg_name="msg", queue_name="%SAMPLE_FAIL_QUEUE%", connection="AzureWebJobsStorage")
def always_fails(msg: func.QueueMessage) -> None:
    record("fail", {"body": msg.get_body().decode(), "dequeue_count": msg.dequeue_count})
    raise RuntimeError("this function always fails")


@app.queue_trigger(arg_name="text", queue_name="%SAMPLE_FORWARD_IN%", connection="AzureWebJobsStorage")
@app.queue_output(arg_name="out", queue_name="%SAMPLE_QUEUE%", connection="AzureWebJobsStorage")
def forward(text: str, out: func.Out[str]) -> None:
    out.set(f"forwarded:{text}")


@app.blob_trigger(arg_name="client", path="%SAMPLE_CONTAINER%/incoming/{name}", connection="AzureWebJobsStorage",
                  source=func.BlobSource.EVENT_GRID)
def on_upload_client(client: blobsdk.BlobClient) -> None:
    """SDK-type binding: a real azure.storage.blob.BlobClient; fails for blob names containing 'fail'."""
    props = client.get_blob_properties()
    record("blobclient", {"name": client.blob_name, "etag": props.etag, "size": props.size,
                          "is_storage_client": isinstance(client, StorageBlobClient)})
    if "fail" in client.blob_name:
        raise RuntimeError("cannot read this blob")


@app.blob_trigger(arg_name="stream", path="%SAMPLE_STREAM_CONTAINER%/{name}", connection="AzureWebJobsStorage")
def on_upload_stream(stream: func.InputStream) -> None:
    record("stream", {"name": stream.name, "length": stream.length, "data": stream.read().decode(),
                      "uri": stream.uri})


@app.timer_trigger(arg_name="timer", schedule="%SAMPLE_SCHEDULE%", run_on_startup=False)
def tick(timer: func.TimerRequest) -> None:
    record("timer", {"past_due": timer.past_due})
