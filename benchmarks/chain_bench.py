"""What the retraining chain itself costs: runs per second, per-step latency, requests per run, memory.

Run: `.venv/bin/python benchmarks/chain_bench.py [--runs 200] [--models 8] [--workers 4] [--burst]
[--batch-receive] [--subscribers 1] [--poll-max 0.1] [--timeout 600] [--backend studio|azureml]
[--rollout blue_green|canary]`
(default size: under a minute on 2 cores).

`--backend azureml` (default --runs 16 --models 4) trains through the local Azure ML service instead
(`emulators.azureml` over HTTPS, `devhost.world.AzureML`, 2 job workers): each model is a `kind: azureml`
definition whose job runs the shipped `examples/azureml/src/train.py` on a small CSV, metrics read from
MLflow. Jobs really run (a second or two each), so the check step polls. Each model has one managed online
endpoint (`kind: azureml_online`, created empty before the runs, not counted; the first promotion deploys
the definition's `deployment`, later ones copy the live deployment) with a smoke test of one row, promoted
blue/green (`--rollout blue_green`, the default) or by a canary plan (`--rollout canary`: steps 50 -> 100,
a 1 s dwell each, `max_error_rate` judged from the endpoint's `RequestsPerMinute` metric). Every request of
both sides is counted, per run, against the Azure ML design minimum (`azureml_minimum`, the training side,
and `serving_minimum`, the rollout state machine of retrain/serving/azureml_online.py).

The serving minimum follows the state machine, which advances one phase per promote message and saves
the run after each (so a redelivery resumes from the last saved phase, never repeats an external write):
register (GET 404, PUT, GET back) -> deploy (endpoint GET for the live traffic, the live deployment's GET
to copy its settings unless it is the endpoint's first, GET 404 of the new name, the deployments list for
the 20-per-endpoint limit, PUT) -> provision (>= 1 GET until Succeeded) -> smoke (endpoint GET for the
scoring URI, listKeys, one scoring POST) -> traffic, per step: endpoint GET + PUT, then a GET that reads it
back (and starts the dwell); after a dwell one metrics read -> retire (the deployments list, an endpoint GET
for what takes traffic, one DELETE once more than `retain` = 1 earlier deployment is idle). Each phase is
its own message, so a blue/green run is 7 promote messages (register, deploy, provision, smoke, PUT,
read-back, retire); a canary of S steps with a dwell is 4 + 2S + 2 (10 for S = 2: the judgement after a
dwell rides with the next step's PUT, the last one has a message of its own before retire), less 1/R
on average (R runs per endpoint): an endpoint's first canary has nothing live to share traffic with, so it
takes 100% at step 1 and the later steps find it there (no PUT, one GET and one message fewer). The
deployment settings a run records (the new deployment's, and the live one's it copied) are one blob PUT
each (retrain/serving/documents.py), never read back within a call. Every promote
message past the first costs the chain its message (send, receive, delete), the run's GET and save and
the model's GET, and the endpoint's lease (acquire and release on a blob in OUTPUT_CONTAINER: changes to
one endpoint are serialised). The provisioning reads are bounded below by one: the local service
provisions at once (provisioning 0) but the deployment's scoring process starts in about a second and the
first read comes after the operation's Retry-After (clamped to >= 1 s), so a second read is the bench's
timing, not the design's; the report prints them apart.

It starts its own in-memory Azurite (`devhost.world.Azurite`) and `benchmarks/fast_ml_service.py`
(a stand-in ML service whose jobs finish the moment they start, so the figures measure the chain,
not training) as child processes on loopback, then drives the chain in this process the way the
Functions host would:

* a Context like tests/chain/conftest.py's `world` (own table prefix and containers,
  CHECK_INITIAL_DELAY_SECONDS=0), built by hand so that its Storage counts every request;
* M models, each with one classic endpoint on the fast service;
* N blobs spread over the models; for each, an upload (not counted: the data landing is not the
  chain's work) and `retrain.triggers.on_blob` (as the blob trigger; counted, its HEAD included);
* W worker threads playing the queue trigger: receive from the four step queues, call
  `retrain.steps.handle`, delete on success, make visible again on an exception. They receive the
  way tests/chain's Pump does (`receive_messages(max_messages=16)`: one message per request, see
  CAUSES); `--batch-receive` takes one GET per poll of up to 16, as the Functions host does.

Feeding: one active run per model, and newer data for a busy model waits as pending (latest wins,
older pending runs end `superseded`). By default each model gets its next blob only after its
previous run ended, so every run goes the whole way and ends `promoted`: throughput is of promoted
runs. `--burst` lands every blob as fast as the trigger goes instead and counts the statuses
(a busy model's newer data waits as pending; an older pending run ends `superseded`).

Events: `--subscribers S` webhook subscriptions (default 1) point at a local receiver
(`tests/receiver.py`, checking every signature); the workers also poll the events queue and call
`retrain.events.sender.handle`. What announcing a run costs is counted apart (`events ...`,
`webhook POST`), next to its own minimum, so the chain's figures stay comparable.

Counting: storage requests at the SDK transport (every attempt; `Storage(connection, transport=...)`
gives each service client a counting transport, and child clients share it), classified by Azurite port (blob/queue/table) and by method + path shape; ML-service calls
through a `requests` response hook on `ctx.session` (every attempt). Per-run averages are
printed next to the minimum the design needs (table MINIMUM below, one line of reasoning each),
flagged where measured > minimum, with the likely cause (table CAUSES, from reading retrain/).
The table minimum follows state layout 4 (README "State"): three entity-group transactions per run
(creation and ending, each with the run's index rows and open row; promotion), every working status
change a plain If-Match update, and the owner's row read after the prefix-index query.

Everything is bounded (`--timeout`) and stopped in `finally` (by PID: only what it started).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import queue
import re
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter, defaultdict
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import unquote, urlsplit

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import psutil  # noqa: E402
import requests  # noqa: E402
from azure.core.pipeline.transport import RequestsTransport  # noqa: E402

from devhost.world import Azurite, free_port  # noqa: E402
from retrain import steps  # noqa: E402
from retrain.events import sender  # noqa: E402
from retrain.events.subscriptions import Subscription  # noqa: E402
from tests.receiver import start_receiver  # noqa: E402
from retrain.context import Context  # noqa: E402
from retrain.models import ModelDefinition  # noqa: E402
from retrain.queues import Step  # noqa: E402
from retrain.runs import RunStore, Status, parse_iso  # noqa: E402
from retrain.settings import Settings  # noqa: E402
from retrain.storage import Connection, Storage  # noqa: E402
from retrain.triggers import BlobEvent, on_blob  # noqa: E402

log = logging.getLogger("chain_bench")

WS, TRAIN, PREDICT = "benchws", "bench-train", "bench-predict"
TRAIN_KEY, WS_TOKEN = "bench-train-key", "bench-ws-token"
RESOURCE = "Bench Model [trained model]"

# What one promoted run needs at least, by the design (README "How it works"/"Guarantees") and the
# code's contracts; (category, minimum per run, why). Categories not listed have a minimum of 0.
MINIMUM = [
    ("blob properties", 1, "trigger binding reads ETag+size (submit's If-Match snapshot checks the ETag)"),
    ("blob put", 1, "submit pins the data: a snapshot with If-Match on the run's ETag (retrain/pinning.py)"),
    ("blob download", 1, "evaluate reads the Evaluate Model CSV"),
    ("blob DELETE", 1, "the snapshot is deleted when the run ends"),
    ("table models query", 1, "trigger: the prefix index rows for the blob's directories (owner lookup, O(1) in models)"),
    ("table models get", 5, "trigger: the owner's row (its ETag serves admission); each step loads the "
                            "definition/champion once"),
    ("table models update", 3, "CAS: admission (active_run), champion pointer, release of the active slot"),
    ("table batch", 3, "entity-group transactions (one request each): run creation with its time index row "
                       "and open row (the dedup); the ending with its index rows, the open row's delete, run-ended "
                       "record and event (outbox); the promotions row with its newest-first copy"),
    ("table runs get", 4, "each step loads the run with its ETag"),
    ("table runs update", 6, "If-Match per working status (queued, running, evaluating, promoting: open statuses "
                             "have no index row); the data's snapshot and the job id, each recorded before use"),
    ("queue send", 4, "one message per step: submit, check, evaluate, promote"),
    ("queue receive", 4, "host side: each message received once (a batch GET may carry several)"),
    ("queue receive (empty)", 0, "host side: idle polling, set by the poll interval, not by the chain"),
    ("queue delete", 4, "host side: each message deleted after its step succeeded"),
    ("BES submit", 1, "POST jobs"),
    ("BES start", 1, "POST jobs/{id}/start"),
    ("BES status", 1, "the job is Finished at once and the first check is immediate (initial delay 0)"),
    ("endpoint GET", 2, "read before writing (skip if already served) + read back to verify"),
    ("endpoint PATCH", 1, "one write per promotion"),
]


def azureml_minimum(runs: int, models: int, rollout: str) -> list[tuple[str, float, str]]:
    """Both Azure ML sides: training replaces the BES and endpoint rows (no evaluation blob: metrics come from
    MLflow); each promote message of the rollout past the first adds its share of the chain's rows."""
    extra = round(promote_calls(rollout, runs / models) - 1, 2)
    shared = [(key, least + extra, f"{why}; +{extra} rollout promote messages: {PER_PROMOTE_MESSAGE[key]}")
              if key in PER_PROMOTE_MESSAGE else (key, least, why)
              for key, least, why in MINIMUM if not key.startswith(("BES", "endpoint", "blob"))]
    return [
        ("blob properties", 1, "trigger binding reads ETag+size (1); submit pins by snapshot with If-Match on "
                               "that ETag, so no second read"),
        ("blob put", round(2 + (runs - models) / runs + models / runs, 2),
         "pin: a snapshot of the run's blob version (the job reads exactly it, through a read SAS); the new "
         "deployment's settings, and the live one's except on an endpoint's first promotion ((R-1)/R), recorded "
         "once each (retrain/serving/documents.py); the endpoint's lock blob, created once per endpoint"),
        ("blob DELETE", 1, "unpin: the snapshot is deleted when the run ends"),
        *shared,
        ("azureml jobs GET", 2, "submit reads before it writes (GET -> 404: read-before-retry); one status read "
                                "if the job has ended by the first check"),
        ("azureml jobs PUT", 1, "the job, by its derived name (a redelivery finds it with the GET)"),
        ("azureml workspace GET", round(1 / runs, 2), "the tracking URI: read once per process (ctx.azureml keeps "
                                                      "the client), so 1/runs per run"),
        ("azureml mlflow runs/get", 1, "evaluate: the job's MLflow run (run id = job name)"),
        *serving_minimum(runs, models, rollout),
    ]


CANARY_STEPS, CANARY_DWELL = (50, 100), 1  # --rollout canary: two steps, a short dwell (the bench's, not a default)


def promote_calls(rollout: str, per_endpoint: float) -> float:
    """Promote messages one run's rollout needs: register, deploy, provision, smoke, then the traffic phase."""
    if rollout == "canary":  # per step: PUT, read-back (starts the dwell); the judgement rides with the next PUT
        # ... or, after the last dwell, has its own message; retire. An endpoint's first canary has nothing live
        # to share traffic with: 100% at step 1, so the later steps find it there (one message less, 1/R)
        return round(4 + 2 * len(CANARY_STEPS) + 1 + 1 - 1 / per_endpoint, 2)
    return 4 + 2 + 1  # PUT, read-back (no dwell), retire


def serving_minimum(runs: int, models: int, rollout: str) -> list[tuple[str, float, str]]:
    """The online endpoint's rollout (retrain/serving/azureml_online.py), per run; R = runs per endpoint, in order."""
    r = runs / models
    steps = len(CANARY_STEPS) if rollout == "canary" else 1
    alone = 1 / r if steps > 1 else 0  # an endpoint's first canary: nothing live to share with, 100% at step 1
    return [
        ("azureml model GET", 2, "register: GET (404) before the PUT, GET back (its tag names the run)"),
        ("azureml model PUT", 1, "register: the version, numbered for the run"),
        ("azureml deployment GET", round(2 + (r - 1) / r, 2),
         "deploy: the new name's GET (404) and, except on an endpoint's first promotion ((R-1)/R), the live "
         "deployment's, to copy its settings; provision: one read that finds it Succeeded"),
        ("azureml deployments list", 2, "deploy: the count against the 20-per-endpoint limit; retire: what is idle"),
        ("azureml deployment PUT", 1, "deploy: one deployment per promotion, named for the run"),
        ("azureml deployment DELETE", round(max(0.0, r - 2) / r, 2),
         "retire: one per run once more than retain=1 earlier deployment is idle (not on an endpoint's first two)"),
        ("azureml endpoint GET", round(3 + 2 * steps - alone, 2),
         "deploy (live traffic), smoke (scoring URI), retire (what takes traffic); per traffic step: before the "
         "PUT and the read-back (an endpoint's first canary: its later steps find 100% already, 1/R less)"),
        ("azureml endpoint PUT", round(steps - alone, 2), "one traffic PUT per step (blue/green: 0 -> 100 once; an "
                                                          "endpoint's first canary: one, 1/R less)"),
        ("azureml listKeys POST", 1, "smoke: the scoring key (never stored)"),
        ("azureml score POST", 1, "smoke: the sample row through azureml-model-deployment"),
        ("azureml metrics GET", steps if rollout == "canary" else 0,
         "after each dwell: the new deployment's RequestsPerMinute by status class"),
        ("blob lease", round(2 * promote_calls(rollout, r), 2),
         f"the endpoint's lease, acquired and released on every promote message ({promote_calls(rollout, r)} per run)"),
    ]


# What each promote message past the chain's first adds to the shared rows (see serving_minimum).
PER_PROMOTE_MESSAGE = {"queue send": "its delayed message", "queue receive": "received once",
                       "queue delete": "deleted after its step", "table runs get": "the run loaded",
                       "table runs update": "the phase saved (If-Match)", "table models get": "the definition loaded"}


def events_minimum(subscribers: int) -> list[tuple[str, int, str]]:
    """What announcing one run's ending costs by the design, for S webhook subscribers (the outbox row itself
    rides in the ending's transaction: no request of its own)."""
    s = subscribers
    return [
        ("events queue send", 1 + s, "one dispatch message, then one deliver message per subscriber"),
        ("events queue receive", 1 + s, "host side: each events message received once"),
        ("events queue delete", 1 + s, "host side: each events message deleted after it was handled"),
        ("events outbox get", 1, "dispatch reads the outbox row"),
        ("events outbox delete", 1, "the row goes once fanned out"),
        ("events table query", 1, "dispatch lists the subscriptions (one partition)"),
        ("events table insert", s, "one delivery row per subscriber (insert-only)"),
        ("events table get", 2 * s, "deliver reads the delivery and its subscription"),
        ("events table update", s, "the answer recorded (If-Match)"),
        ("webhook POST", s, "one signed POST per subscriber (the receiver answers 200)"),
    ]


# Likely causes of measured > minimum, from reading the code (file:function).
CAUSES = {
    "table models get": "each check message loads the definition (the job runs a few seconds: see azureml "
                        "jobs GET); chain.release reads the row afresh to hand the active slot over (+1; the promote "
                        "step's champion CAS result is not passed along); each lost CAS race (412 below) "
                        "re-reads once more",
    "table models update": "lost CAS races on the model row (412 below: trigger admission vs a step's "
                           "champion/release write) are retried; a pending admission writes pending_run (+1)",
    "table models query": "owner_of queries the prefix index once per 7 directory levels of the blob name",
    "table batch": "pending runs (burst feed): superseded runs end in a transaction too; lost races retried",
    "table runs get": "each check message loads the run (re-checks while a real job runs); pending runs (burst feed): admission's is_finished reads the active run and the pending "
                      "one, release re-reads the run it hands the slot to; lost races re-get the run",
    "table runs update": "each re-check saves the run (its poll count) before its delayed message; pending runs (burst feed): the 'waiting for run ...' reason (chain._save_quietly), "
                         "superseded runs; transient-retry bookkeeping; endpoint outcomes after a failure",
    "queue receive": "the SDK pattern receive_messages(max_messages=16) asks for ONE message per request "
                     "(messages_per_page defaults to 1) and ends each poll with an empty request; "
                     "--batch-receive sets messages_per_page (one GET per poll)",
    "queue receive (empty)": "host side: idle polls of W workers x 4 queues (--poll-max) and, with the SDK "
                             "receive pattern, the empty request that ends every non-empty poll",
    "events queue receive (empty)": "host side: idle polls of the events queue (the same poll pattern as the "
                                    "step queues); not part of announcing a run",
    "queue send": "re-sends: transient retries or check back-off (job not finished at the first check)",
    "queue delete": "as queue send: each re-check message is deleted after its step",
    "queue update": "a step raised (see errors) and its message was made visible again",
    "BES status": "more than one poll: the job was not Finished at the first check",
    "endpoint GET": "ClassicEndpoint.update: GET before + GET after; more means redelivered promote steps",
    "azureml jobs GET": "the job was still running at a check: steps._check polls with max(delay, 1 s) back-off "
                        "while a real job runs (about one GET per second of job time)",
    "azureml workspace GET": "more than one client for the workspace read it (ctx.azureml keys its clients by "
                             "timeout and options; a new Context), or a workspace read retried",
    "blob DELETE": "snapshots deleted more than once (a redelivered ending), or other blob deletes",
    "blob put": "model_lock.holding PUTs the endpoint's lock blob (If-None-Match) on every promote message: "
                "a 409 once it exists (errors below)",
    "azureml deployment GET (provisioning)": "the bench's timing, not the design's: the first provisioning read "
                                             "comes after Retry-After (>= 1 s) while the scoring process starts",
    "blob lease": "more promote messages than the design's (see queue send): each one holds the endpoint's lease",
    "azureml endpoint GET": "a traffic read-back that did not match yet (the PUT still applying) reads again",
    "azureml model GET": "the champion's registered version read for the baseline input",
}


# ----------------------------------------------------------------------------- counting


class StorageCounter:
    """Counts every storage request of the chain's SDK clients by service (Azurite port) and operation."""

    def __init__(self, ports: dict[int, str], table_prefix: str):
        self.ports, self.table_prefix = ports, table_prefix
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.counts: Counter = Counter()
            self.seconds: Counter = Counter()
            self.errors: Counter = Counter()
            self.messages = 0  # step messages handed out by non-empty receives

    def record(self, key: str, status: int | None, elapsed: float, body: bytes | None = None) -> None:
        got = 0
        if key.endswith("queue receive") and body is not None:
            got = body.count(b"<QueueMessage>")
            if not got:
                key += " (empty)"
            elif key != "queue receive":
                got = 0  # step messages only
        with self.lock:
            self.counts[key] += 1
            self.seconds[key] += elapsed
            self.messages += got
            if status is None:
                self.errors[f"{key} -> exception"] += 1
            elif status >= 400:
                self.errors[f"{key} -> {status}"] += 1

    def classify(self, method: str, url: str) -> str:
        key = self._classify(method, url)
        parts = urlsplit(url)
        path = unquote(parts.path)
        if path.split("/")[2:3] == [sender.QUEUE]:
            return "events " + key
        if key.startswith("table events "):
            return key.removeprefix("table ").replace("events ", "events table ", 1)
        if key.startswith("table ") and "RowKey='o~" in path:
            return "events outbox " + key.split()[-1]
        return key

    def _classify(self, method: str, url: str) -> str:
        parts = urlsplit(url)
        kind = self.ports.get(parts.port, "other")
        segs = [unquote(s) for s in parts.path.strip("/").split("/")[1:]]  # drop the account name
        query = parts.query
        if kind == "blob":
            if "comp=lease" in query:
                return "blob lease"
            if "restype=container" in query:
                return "blob container " + ("list" if "comp=list" in query else method)
            return {"HEAD": "blob properties", "GET": "blob download", "PUT": "blob put"}.get(method, f"blob {method}")
        if kind == "queue":
            if len(segs) >= 2 and segs[1] == "messages":
                if len(segs) == 2:
                    return {"POST": "queue send", "GET": "queue receive", "DELETE": "queue clear"}.get(method, method)
                return {"DELETE": "queue delete", "PUT": "queue update"}.get(method, f"queue message {method}")
            return f"queue admin {method}"
        if kind == "table":
            m = re.match(r"^([^()]*)(?:\((.*)\))?$", segs[0] if segs else "")
            name, args = (m[1], m[2]) if m else ("?", None)
            if name == "Tables":
                return "table admin"
            table = name[len(self.table_prefix):] if name.startswith(self.table_prefix) else name
            if name == "$batch":
                return "table batch"  # an entity-group transaction: the table is inside the body
            if method == "POST":
                op = "insert"
            elif method == "GET":
                op = "get" if args and "PartitionKey" in args else "query"
            else:
                op = {"PUT": "update", "MERGE": "merge", "PATCH": "merge", "DELETE": "delete"}.get(method, method)
            return f"table {table} {op}"
        return f"{kind} {method}"


class CountingTransport(RequestsTransport):
    """The storage SDKs' HTTP transport, counting each request it sends (every attempt) into a StorageCounter.

    Child clients (get_blob_client, get_queue_client, get_table_client) wrap their service client's
    transport, so every request of the chain passes here.
    """

    def __init__(self, counter: StorageCounter, **kwargs):
        super().__init__(**kwargs)
        self.counter = counter

    def send(self, request, **kwargs):  # noqa: D102
        key = self.counter.classify(request.method, request.url)
        t0 = time.perf_counter()
        try:
            response = super().send(request, **kwargs)
        except Exception:
            self.counter.record(key, None, time.perf_counter() - t0)
            raise
        body = None
        if key.endswith("queue receive"):
            body = response.body() if hasattr(response, "body") else response.read()
        self.counter.record(key, response.status_code, time.perf_counter() - t0, body)
        return response


class HttpCounter:
    """A `requests` response hook: every ML-service attempt, by what it is."""

    def __init__(self):
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.counts: Counter = Counter()
            self.seconds: Counter = Counter()
            self.errors: Counter = Counter()

    def __call__(self, response, *args, **kwargs):
        method, path = response.request.method, urlsplit(response.request.url).path
        if "/Microsoft.MachineLearningServices/" in path:
            key = azureml_key(method, path)
            if key == "azureml deployment GET" and response.status_code == 200 and still_provisioning(response):
                key += " (provisioning)"
        elif re.search(r"/inference/[^/]+/score$", path):
            key = f"azureml score {method}"
        elif "/jobs" in path:
            key = ("BES submit" if path.endswith("/jobs") else "BES start" if path.endswith("/start")
                   else {"GET": "BES status", "DELETE": "BES cancel"}.get(method, f"BES {method}"))
        elif "/endpoints/" in path:
            key = f"endpoint {method}"
        elif path.startswith("/bench-hooks/"):
            key = f"webhook {method}"
        else:
            key = f"http {method}"
        with self.lock:
            self.counts[key] += 1
            self.seconds[key] += response.elapsed.total_seconds()
            if response.status_code >= 400:
                self.errors[f"{key} -> {response.status_code}"] += 1
        return response


def azureml_key(method: str, path: str) -> str:
    """An Azure ML request by what it is (the path shapes of retrain/azureml/arm.py and the serving phases)."""
    if "/api/2.0/mlflow/" in path:
        return "azureml mlflow " + path.split("/api/2.0/mlflow/", 1)[1]
    if "/jobs/" in path:
        return "azureml jobs cancel" if path.endswith("/cancel") else f"azureml jobs {method}"
    shapes = [(r"/providers/Microsoft\.Insights/metrics$", "metrics"), (r"/listKeys$", "listKeys"),
              (r"/onlineEndpoints/[^/]+/deployments/[^/]+$", "deployment"),
              (r"/onlineEndpoints/[^/]+/deployments$", "deployments list"),
              (r"/onlineEndpoints/[^/]+$", "endpoint"), (r"/models/[^/]+/versions/[^/]+$", "model"),
              (r"/workspaces/[^/]+$", "workspace")]
    for shape, name in shapes:
        if re.search(shape, path):
            return f"azureml {name}" if name == "deployments list" else f"azureml {name} {method}"
    return f"azureml {method} {path.rsplit('/', 2)[-2]}"


def still_provisioning(response) -> bool:
    try:
        state = (response.json().get("properties") or {}).get("provisioningState")
    except ValueError:
        return False
    return state not in ("Succeeded", "Failed", "Canceled")


class RunEnded(logging.Handler):
    """Hears chain.finish's log line ("model=%s run=%s ended %s: %s") and tells the feeder; costs no request."""

    def __init__(self, sink: "queue.Queue[tuple[str, str, str]]"):
        super().__init__(logging.INFO)
        self.sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        if isinstance(record.msg, str) and record.msg.startswith("model=%s run=%s ended") and len(record.args) >= 3:
            self.sink.put((str(record.args[0]), str(record.args[1]), str(record.args[2])))


class MemorySampler(threading.Thread):
    """RSS of this process every 0.1 s, with how many runs had ended then."""

    def __init__(self, ended: callable):
        super().__init__(daemon=True, name="rss-sampler")
        self.ended, self.proc, self.stop = ended, psutil.Process(), threading.Event()
        self.samples: list[tuple[int, int]] = []  # (runs ended, rss bytes)

    def run(self) -> None:
        while not self.stop.is_set():
            self.samples.append((self.ended(), self.proc.memory_info().rss))
            self.stop.wait(0.1)

    def growth_per_100(self, total: int) -> float | None:
        """Least-squares slope of RSS over runs ended, after the first 20% (warm-up), per 100 runs."""
        points = [(n, rss) for n, rss in self.samples if n >= max(5, total // 5)]
        if len({n for n, _ in points}) < 3:
            return None
        mx = statistics.fmean(n for n, _ in points)
        my = statistics.fmean(r for _, r in points)
        var = sum((n - mx) ** 2 for n, _ in points)
        return sum((n - mx) * (r - my) for n, r in points) / var * 100 if var else None


# ----------------------------------------------------------------------------- helpers


def pct(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q / 100 * len(s) + 0.5) - 1))]


def tree_cpu_rss(pid: int | None) -> tuple[float, int]:
    """CPU seconds (user+sys) and RSS of a process and its children; (0, 0) if gone."""
    if not pid:
        return 0.0, 0
    try:
        procs = [psutil.Process(pid)]
        procs += procs[0].children(recursive=True)
        cpu = sum(sum(p.cpu_times()[:2]) for p in procs)
        return cpu, sum(p.memory_info().rss for p in procs)
    except psutil.Error:
        return 0.0, 0


def environment_line(azurite_version: str) -> str:
    import azure.core
    import azure.data.tables
    import azure.storage.blob
    import azure.storage.queue
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (f"Python {platform.python_version()} on {platform.system()} {platform.machine()}; "
            f"{os.cpu_count()} logical cores ({psutil.cpu_count(logical=False)} physical), load avg {load}; "
            f"Azurite {azurite_version}; azure-core {azure.core.__version__}, tables {azure.data.tables.__version__}, "
            f"queue {azure.storage.queue.__version__}, blob {azure.storage.blob.__version__}; "
            f"requests {requests.__version__}")


def azurite_version() -> str:
    try:
        return json.loads((REPO / "node_modules" / "azurite" / "package.json").read_text())["version"]
    except (OSError, ValueError, KeyError):
        return "unknown"


def start_fast_service(port: int, timeout: float = 30) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, str(REPO / "benchmarks" / "fast_ml_service.py"), "--port", str(port),
                             "--training-key", TRAIN_KEY, "--workspace-token", WS_TOKEN, "--resource-name", RESOURCE],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"fast_ml_service exited with {proc.returncode}: {proc.stderr.read().decode()[-2000:]}")
        try:
            if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except requests.RequestException:
            pass
        if time.monotonic() > deadline:
            stop_process(proc)
            raise RuntimeError(f"fast_ml_service not ready after {timeout:.0f}s")
        time.sleep(0.05)


def stop_process(proc: subprocess.Popen | None, timeout: float = 10) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout)


def training_csv(index: int) -> bytes:
    rows = "".join(f"{20 + (index + i) % 50},{30000 + 97 * i},{(index + i) % 2}\n" for i in range(20))
    return ("age,income,label\n" + rows).encode()


def azureml_training_csv(index: int) -> bytes:
    """A small learnable CSV for examples/azureml/src/train.py (label = income above a threshold, a little noise)."""
    rows = "".join(f"{20 + (index + i) % 50},{30000 + 97 * i},{int(i % 80 >= 40) ^ int(i % 17 == 0)}\n"
                   for i in range(80))
    return ("age,income,label\n" + rows).encode()


AZUREML_TOKEN = "bench-azureml-token"
AZUREML_SUB, AZUREML_RG, AZUREML_WS = "00000000-0000-0000-0000-0000000000be", "bench-rg", "bench-ws"
AZUREML_WS_PATH = (f"/subscriptions/{AZUREML_SUB}/resourceGroups/{AZUREML_RG}/providers/"
                   f"Microsoft.MachineLearningServices/workspaces/{AZUREML_WS}")


SMOKE_ROWS = [{"age": 30, "income": 40000}]


def azureml_definition(service_url: str, endpoint: str, rollout: str) -> dict:
    """A `kind: azureml` model running the shipped train.py, promoted to its own online endpoint; every run passes."""
    command = ("python train.py --data ${{inputs.data}} --label label --model ${{outputs.model}} "
               "$[[--baseline ${{inputs.baseline}}]]")
    first = {"location": "westeurope", "sku": {"name": "Default", "capacity": 1},
             "properties": {"codeConfiguration": {"codeId": f"{AZUREML_WS_PATH}/codes/retrain-src/versions/1",
                                                  "scoringScript": "score.py"}}}
    plan = ({"strategy": "canary", "steps": list(CANARY_STEPS), "dwell_seconds": CANARY_DWELL,
             "max_error_rate": 0.1} if rollout == "canary" else {"strategy": "blue_green"})
    return {"training": {"kind": "azureml", "workspace": service_url + AZUREML_WS_PATH,
                         "job": {"properties": {"command": command, "codeId": "azureml:retrain-src:1",
                                                "environmentId": "azureml:sklearn-env:1",
                                                "computeId": "azureml:cpu-cluster"}},
                         "metrics": {"auc": "AUC", "accuracy": "Accuracy"}},
            "endpoints": [{"kind": "azureml_online", "name": "live", "model_name": endpoint,
                           "url": f"{service_url}{AZUREML_WS_PATH}/onlineEndpoints/{endpoint}", "deployment": first}],
            "rollout": {**plan, "smoke_test": {"rows": SMOKE_ROWS}},
            "policy": {"rules": [{"metric": "AUC", "min": 0.0, "min_improvement": None}]}}


def create_online_endpoint(service_url: str, name: str, timeout: float = 60) -> None:
    """An empty online endpoint (key auth, no deployment yet), as a team creates it before the app; not counted."""
    url = f"{service_url}{AZUREML_WS_PATH}/onlineEndpoints/{name}?api-version=2024-04-01"
    headers = {"Authorization": f"Bearer {AZUREML_TOKEN}"}
    r = requests.put(url, json={"location": "westeurope", "properties": {"authMode": "Key"}}, headers=headers,
                     timeout=30)
    r.raise_for_status()
    deadline = time.monotonic() + timeout
    while requests.get(url, headers=headers, timeout=30).json()["properties"].get("provisioningState") != "Succeeded":
        if time.monotonic() > deadline:
            raise RuntimeError(f"online endpoint {name} not ready after {timeout:.0f}s")
        time.sleep(0.2)


def start_azureml(azurite: Azurite, root: Path):
    """emulators.azureml over HTTPS on Azurite, provisioning 0, 2 job workers; its CA trusted by requests."""
    from devhost.world import AzureML

    config = {"token": AZUREML_TOKEN, "storage": {"connection_string": azurite.connection_string},
              "provisioning_seconds": 0,
              "workspaces": [{"subscription": AZUREML_SUB, "resource_group": AZUREML_RG, "name": AZUREML_WS,
                              "location": "westeurope", "datastores": {"workspaceblobstore": "azureml"},
                              "code": {"retrain-src": str(REPO / "examples" / "azureml" / "src")},
                              "environments": ["sklearn-env"], "computes": ["cpu-cluster"]}]}
    (root / "workspace.json").write_text(json.dumps(config))
    server = AzureML.start(root / "workspace.json", root / "data", workers=2, provisioning_seconds=0)
    os.environ["REQUESTS_CA_BUNDLE"] = str(server.ca)
    return server


# ----------------------------------------------------------------------------- the bench


class Bench:
    def __init__(self, args, azurite: Azurite, service_url: str, service_pid: int):
        self.args = args
        self.azurite_pid, self.service_pid = azurite.process.pid, service_pid
        suffix = uuid.uuid4().hex[:8]
        self.env = {"RETRAIN_STORAGE": azurite.connection_string, "RETRAIN_TABLE_PREFIX": f"b{suffix}",
                    "TRAINING_CONTAINER": f"train-{suffix}", "OUTPUT_CONTAINER": f"out-{suffix}",
                    "CHECK_INITIAL_DELAY_SECONDS": "0", "RETRAIN_SECRET_BENCH_BES_KEY": TRAIN_KEY,
                    "RETRAIN_SECRET_BENCH_WS_TOKEN": WS_TOKEN, "ALLOWED_SERVICE_HOSTS": urlsplit(service_url).netloc}
        settings = Settings.from_env(self.env)
        connection = Connection.from_env(settings.connection, self.env)
        self.storage_counter = StorageCounter({azurite.blob_port: "blob", azurite.queue_port: "queue",
                                               azurite.table_port: "table"}, settings.table_prefix)
        storage = Storage(connection, transport=lambda: CountingTransport(self.storage_counter))
        self.receiver = start_receiver()
        self.env.update({"RETRAIN_SECRET_BENCH": "whsec_" + "YmVuY2gtc2lnbmluZy1zZWNyZXQtMzItYnl0ZXMh",
                         # the ML service's host stays allowed beside the receiver's
                         "ALLOWED_SERVICE_HOSTS": f"{self.env['ALLOWED_SERVICE_HOSTS']},{self.receiver.host}"})
        if args.backend == "azureml":  # the local Azure ML service checks this static token (no Azure AD here)
            self.env["ARM_ACCESS_TOKEN"] = AZUREML_TOKEN
        self.ctx = Context(settings, storage, self.env).ensure()
        self.http_counter = HttpCounter()
        self.ctx.session.hooks["response"].append(self.http_counter)
        self.plain = Storage(connection)  # not counted: uploads (the data landing) and the bench's own reads
        self.observer = RunStore(self.plain.tables.get_table_client(f"{settings.table_prefix}runs"))
        self.service_url = service_url
        self.models = [f"bench-m{i:02d}" for i in range(args.models)]
        self.ended_q: "queue.Queue[tuple[str, str, str]]" = queue.Queue()
        self.ended = 0
        self.stop = threading.Event()
        self.step_errors: list[str] = []
        self.handled: Counter = Counter()
        self.handle_seconds: dict[Step, list[float]] = defaultdict(list)
        self.lock = threading.Lock()

    # --- set-up --------------------------------------------------------------------------------
    def register(self) -> None:
        for name in self.models:
            if self.args.backend == "azureml":
                create_online_endpoint(self.service_url, name)
                body = azureml_definition(self.service_url, name, self.args.rollout)
                self.ctx.models.put(ModelDefinition.from_json(name, body))
                continue
            endpoint = f"{self.service_url}/workspaces/{WS}/webservices/{PREDICT}/endpoints/{name}"
            body = {"training": {"url": f"{self.service_url}/workspaces/{WS}/services/{TRAIN}",
                                 "key_setting": "RETRAIN_SECRET_BENCH_BES_KEY"},
                    "endpoints": [{"kind": "classic", "key_setting": "RETRAIN_SECRET_BENCH_WS_TOKEN",
                                   "resource_name": RESOURCE, "url": endpoint}],
                    "policy": {"rules": [{"metric": "AUC", "min": 0.7}]}}
            self.ctx.models.put(ModelDefinition.from_json(name, body))
        for i in range(self.args.subscribers):
            url = self.receiver.url(f"/bench-hooks/{i}", self.env["RETRAIN_SECRET_BENCH"])
            body = {"url": url, "secret_setting": "RETRAIN_SECRET_BENCH"}
            self.ctx.events.put_subscription(Subscription.from_json(f"bench-{i}", body, self.env))

    def land(self, model: str, index: int):
        """Upload (not counted), then fire the blob trigger for it (counted: the trigger's own work)."""
        container, name = self.ctx.settings.training_container, f"{model}/part-{index:05d}.csv"
        data = azureml_training_csv(index) if self.args.backend == "azureml" else training_csv(index)
        self.plain.blobs.get_blob_client(container, name).upload_blob(data, overwrite=True)
        event = BlobEvent.from_client(self.ctx.storage.blobs.get_blob_client(container, name))
        result = on_blob(self.ctx, event)
        if result is None:
            raise RuntimeError(f"blob {name} started no run")
        return result.run

    # --- the queue trigger -----------------------------------------------------------------------
    def receive(self, client):
        if self.args.batch_receive:  # one GetMessages request per poll, up to 16 messages
            pages = client.receive_messages(messages_per_page=16, visibility_timeout=30).by_page()
            try:
                return list(next(pages))
            except StopIteration:
                return []
        return client.receive_messages(max_messages=16, visibility_timeout=30)  # as tests/chain's Pump does

    def worker(self) -> None:
        idle = 0
        while not self.stop.is_set():
            got = 0
            for step in Step:
                client = self.ctx.queues.clients[step]
                try:
                    for message in self.receive(client):
                        got += 1
                        t0 = time.perf_counter()
                        try:
                            steps.handle(self.ctx, step, message.content)
                        except Exception as e:  # the host logs it and the message comes back
                            log.exception("%s step raised", step.value)
                            with self.lock:
                                self.step_errors.append(f"{step.value}: {type(e).__name__}: {e}"[:300])
                            client.update_message(message, visibility_timeout=0)
                            continue
                        finally:
                            with self.lock:
                                self.handled[step] += 1
                                self.handle_seconds[step].append(time.perf_counter() - t0)
                        client.delete_message(message)
                except Exception as e:  # a storage hiccup in receive/delete: keep polling
                    log.warning("worker: %s: %s", type(e).__name__, e)
                    with self.lock:
                        self.step_errors.append(f"worker {step.value}: {type(e).__name__}: {e}"[:300])
                    time.sleep(0.1)
            events = self.ctx.event_queue.client
            try:
                for message in self.receive(events):
                    got += 1
                    sender.handle(self.ctx, message.content)
                    events.delete_message(message)
            except Exception as e:  # as above: the host would log it and retry the message
                log.warning("worker: events: %s: %s", type(e).__name__, e)
                with self.lock:
                    self.step_errors.append(f"worker events: {type(e).__name__}: {e}"[:300])
            if got:
                idle = 0
            else:
                self.stop.wait(min(self.args.poll_max, 0.005 * 2 ** idle))
                idle += 1

    # --- the feeder ------------------------------------------------------------------------------
    def run(self) -> dict:
        args = self.args
        plan = {m: [i for i in range(args.runs) if i % len(self.models) == k] for k, m in enumerate(self.models)}
        fired: dict[str, str] = {}  # run id -> model
        inflight: dict[str, str] = {}  # model -> run id (sequential feed)
        hook = RunEnded(self.ended_q)
        logging.getLogger("retrain").addHandler(hook)
        logging.getLogger("retrain").setLevel(logging.INFO)
        sampler = MemorySampler(lambda: self.ended)
        me = psutil.Process()
        cpu0 = sum(me.cpu_times()[:2])
        az0, svc0 = tree_cpu_rss(self.azurite_pid)[0], tree_cpu_rss(self.service_pid)[0]
        rss0 = me.memory_info().rss
        workers = [threading.Thread(target=self.worker, name=f"worker-{i}", daemon=True) for i in range(args.workers)]
        t0_wall, t0 = datetime.now(timezone.utc), time.monotonic()
        deadline = t0 + args.timeout
        sampler.start()
        for w in workers:
            w.start()
        try:
            if args.burst:
                for i in range(args.runs):
                    model = self.models[i % len(self.models)]
                    run = self.land(model, i)
                    fired[run.run_id] = model
                self.wait_all_terminal(fired, deadline)
            else:
                for model in self.models:
                    if plan[model]:
                        run = self.land(model, plan[model].pop(0))
                        fired[run.run_id], inflight[model] = model, run.run_id
                last_poll, last_note = time.monotonic(), time.monotonic()
                while inflight:
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"{len(inflight)} run(s) not ended after {args.timeout:.0f}s "
                                           f"({self.ended} ended); errors: {self.step_errors[-3:]}")
                    try:
                        ended = [self.ended_q.get(timeout=0.5)]
                    except queue.Empty:
                        ended = []
                    if time.monotonic() - last_poll > 2:  # safety net, in case the log line changes
                        last_poll = time.monotonic()
                        for model, run_id in list(inflight.items()):
                            r = self.observer.find(model, run_id)
                            if r and r.terminal:
                                ended.append((model, run_id, r.status.value))
                    for model, run_id, _status in ended:
                        if inflight.get(model) != run_id:
                            continue
                        del inflight[model]
                        self.ended += 1
                        if plan[model]:
                            run = self.land(model, plan[model].pop(0))
                            fired[run.run_id], inflight[model] = model, run.run_id
                    if time.monotonic() - last_note > 5:
                        last_note = time.monotonic()
                        print(f"  ... {self.ended}/{args.runs} runs ended, {time.monotonic() - t0:.0f}s",
                              file=sys.stderr)
            elapsed_feed = time.monotonic() - t0
        finally:
            self.stop.set()
            for w in workers:
                w.join(timeout=30)
            sampler.stop.set()
            sampler.join(timeout=5)
            logging.getLogger("retrain").removeHandler(hook)
        cpu = sum(me.cpu_times()[:2]) - cpu0
        az_cpu, az_rss = tree_cpu_rss(self.azurite_pid)
        svc_cpu, svc_rss = tree_cpu_rss(self.service_pid)
        runs = [r for model in self.models for r in self.observer.list(model, limit=10 ** 6)]
        left = {s.value: self.plain.queue(s.queue).get_queue_properties().approximate_message_count for s in Step}
        left["events"] = self.plain.queue(sender.QUEUE).get_queue_properties().approximate_message_count
        return {"runs": runs, "fired": len(fired), "t0_wall": t0_wall, "elapsed_feed": elapsed_feed,
                "cpu": cpu, "azurite_cpu": az_cpu - az0, "azurite_rss": az_rss, "service_cpu": svc_cpu - svc0,
                "service_rss": svc_rss, "rss0": rss0, "sampler": sampler, "left": left,
                "alive_workers": sum(w.is_alive() for w in workers)}

    def wait_all_terminal(self, fired: dict[str, str], deadline: float) -> None:
        while True:
            open_runs = sum(1 for _ in self.observer.unfinished(self.models))
            self.ended = len(fired) - open_runs
            if open_runs == 0:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"{open_runs} run(s) not terminal; errors: {self.step_errors[-3:]}")
            time.sleep(0.5)


# ----------------------------------------------------------------------------- report


def report(bench: Bench, r: dict, args) -> int:
    runs = r["runs"]
    statuses = Counter(run.status.value for run in runs)
    promoted = [run for run in runs if run.status is Status.PROMOTED]
    last_end = max((parse_iso(run.updated_at) for run in runs if run.terminal and run.updated_at), default=None)
    wall = (last_end - r["t0_wall"]).total_seconds() if last_end else r["elapsed_feed"]
    n, n_promoted = len(runs), len(promoted)
    print()
    feed = ("burst (every blob lands at once; latest wins, older pending runs end superseded)" if args.burst else
            "sequential per model (its next blob lands when its previous run ended, so every run can be promoted)")
    receive = ("one GET per poll (messages_per_page=16)" if args.batch_receive
               else "receive_messages(max_messages=16) as tests/chain's Pump does")
    print(f"feed: {feed}; receive: {receive}; idle poll up to {args.poll_max * 1000:.0f} ms")
    print(f"runs: {n} fired, statuses {dict(sorted(statuses.items()))}")
    print()
    print("throughput")
    print(f"  {'promoted runs/s':<28}{n_promoted / wall:>9.2f}   ({n_promoted} promoted in {wall:.1f} s, "
          f"first blob event to last run end)")
    print(f"  {'ended runs/s':<28}{n / wall:>9.2f}")
    handled = sum(bench.handled.values())
    print(f"  {'step messages handled/s':<28}{handled / wall:>9.2f}   ({handled} handled: "
          + ", ".join(f"{s.value} {bench.handled[s]}" for s in Step) + ")")

    print()
    print("latency per step, promoted runs (ms, from each run's step_times)   p50      p95      max   handler p50")
    spans = [("admission", "pending", "queued", None), ("submit", "queued", "running", Step.SUBMIT),
             ("check", "running", "evaluating", Step.CHECK), ("evaluate", "evaluating", "promoting", Step.EVALUATE),
             ("promote", "promoting", "promoted", Step.PROMOTE)]
    for label, a, b, step in spans:
        values = [(parse_iso(run.step_times[b]) - parse_iso(run.step_times[a])).total_seconds() * 1000
                  for run in promoted if a in run.step_times and b in run.step_times]
        handler = f"{pct([s * 1000 for s in bench.handle_seconds[step]], 50):9.1f}" if step else "        -"
        print(f"  {label + f' ({a}->{b})':<66}{pct(values, 50):7.1f}  {pct(values, 95):7.1f}  "
              f"{max(values, default=float('nan')):7.1f}  {handler}")
    e2e = [(parse_iso(run.step_times["promoted"]) - parse_iso(run.created_at)).total_seconds() * 1000
           for run in promoted]
    print(f"  {'end to end (created->promoted)':<66}{pct(e2e, 50):7.1f}  {pct(e2e, 95):7.1f}  "
          f"{max(e2e, default=float('nan')):7.1f}")
    print("  (each span = from the state's entry to the next state's entry: the state's save + message send, the "
          "queue wait, the step's handler up to its next move; check includes the first status check's visibility "
          "delay, 0 here: CHECK_INITIAL_DELAY_SECONDS=0, and `max(delay, 1.0)` in steps._check only applies to "
          "re-checks of an unfinished job)")

    print()
    print(f"requests per run (averaged over {n} runs; storage at the SDK transport, ML service per HTTP attempt)")
    print(f"  {'category':<30}{'measured':>9}{'minimum':>9}  {'mean ms':>8}  why the minimum / flag")
    counts = Counter(bench.storage_counter.counts) + Counter(bench.http_counter.counts)
    seconds = Counter(bench.storage_counter.seconds) + Counter(bench.http_counter.seconds)
    needs = ((azureml_minimum(n, args.models, args.rollout) if args.backend == "azureml" else MINIMUM)
             + events_minimum(args.subscribers))
    minimum = {k: (v, why) for k, v, why in needs}
    order = [k for k, _, _ in needs] + sorted(k for k in counts if k not in minimum)
    totals = Counter()
    for key in order:
        measured = counts.get(key, 0) / n if n else 0.0
        least, why = minimum.get(key, (0, "not needed by the design"))
        group = key.split()[0]
        totals[group] += measured if not (group == "events" and key.endswith("(empty)")) else 0
        totals[f"{group} min"] += least if not key.endswith("(empty)") else 0
        mean_ms = seconds[key] / counts[key] * 1000 if counts.get(key) else float("nan")
        over = measured > least + 0.02
        if key == "queue receive" and args.batch_receive:
            over = measured > least + 0.02  # a batch may carry several messages: at most the minimum
        flag = f"  <-- OVER: {CAUSES.get(key, 'unexpected; investigate')}" if over else ""
        print(f"  {key:<30}{measured:>9.2f}{least:>9}  {mean_ms:>8.2f}  {why}{flag}")
    print(f"  {'-' * 28}")
    groups = ("blob", "table", "queue") + (("azureml",) if args.backend == "azureml" else ("BES", "endpoint"))
    for group in groups:
        print(f"  {group + ' total':<30}{totals[group]:>9.2f}{totals[group + ' min']:>9.0f}")
    if args.backend == "azureml":
        print(f"  (training and serving: one online endpoint per model, {args.rollout} rollout, "
              f"{promote_calls(args.rollout, args.runs / args.models)} promote messages per run by the design; deployment GETs that found "
              "it still provisioning are the row '(provisioning)', apart from the minimum)")
    chain_total = sum(totals[g] for g in groups)
    print(f"  {'chain total':<30}{chain_total:>9.2f}")
    print(f"  {'events total (storage)':<30}{totals['events']:>9.2f}{totals['events min']:>9.0f}   "
          f"announcing the run's ending to {args.subscribers} subscriber(s), idle polls excluded below")
    print(f"  {'webhook POSTs':<30}{totals['webhook']:>9.2f}{totals['webhook min']:>9.0f}   "
          f"(the receiver got {len(bench.receiver.received)} POSTs, "
          f"{sum(1 for x in bench.receiver.received if x.verified)} with a valid signature)")
    if bench.storage_counter.messages:
        per_receive = bench.storage_counter.messages / max(1, counts.get("queue receive", 0))
        print(f"  step messages received: {bench.storage_counter.messages / n:.2f} per run "
              f"({per_receive:.2f} per non-empty receive request)")
    errors = Counter(bench.storage_counter.errors) + Counter(bench.http_counter.errors)
    print(f"  error statuses: {dict(errors) if errors else 'none'}")
    if args.backend == "studio":
        try:
            stats = requests.get(f"{bench.service_url}/_stats", timeout=5).json()
            print(f"  fast ML service saw: {stats}")
        except requests.RequestException:
            pass

    print()
    sampler: MemorySampler = r["sampler"]
    peak = max((rss for _, rss in sampler.samples), default=0)
    growth = sampler.growth_per_100(n)
    mb = 1024 * 1024
    print("memory and CPU")
    print(f"  bench process RSS: {r['rss0'] / mb:.1f} MiB before the runs, peak {peak / mb:.1f} MiB (sampled every "
          f"0.1 s), growth {'n/a (too few runs)' if growth is None else f'{growth / mb:+.2f} MiB per 100 runs'} "
          f"(least squares after the first 20% of runs)")
    print(f"  CPU per run: bench process (chain + host emulation) {r['cpu'] / n * 1000:.1f} ms, "
          f"Azurite {r['azurite_cpu'] / n * 1000:.1f} ms, {'Azure ML service' if args.backend == 'azureml' else 'fast ML service'} {r['service_cpu'] / n * 1000:.1f} ms; "
          f"Azurite RSS at end {r['azurite_rss'] / mb:.0f} MiB")

    problems = []
    if not args.burst and n_promoted != n:
        problems.append(f"expected every run promoted, got {dict(statuses)}")
    if args.burst and statuses.keys() - {"promoted", "superseded"}:
        problems.append(f"unexpected statuses in burst mode: {dict(statuses)}")
    if n != args.runs:
        problems.append(f"{args.runs} blobs landed but {n} runs exist")
    if any(r["left"].values()):
        problems.append(f"messages left in the step queues: {r['left']}")
    if bench.step_errors:
        problems.append(f"{len(bench.step_errors)} step/worker error(s), e.g. {bench.step_errors[:3]}")
    if r["alive_workers"]:
        problems.append(f"{r['alive_workers']} worker(s) did not stop")
    for p in problems:
        print(f"PROBLEM: {p}")
    return 1 if problems else 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=None, help="blobs landed = runs (default 200; azureml 16)")
    p.add_argument("--models", type=int, default=None, help="models, each with one endpoint (default 8; azureml "
                                                             "4, each with an online endpoint)")
    p.add_argument("--workers", type=int, default=4, help="queue-trigger worker threads (default 4)")
    p.add_argument("--burst", action="store_true", help="land every blob at once (latest wins) instead of one "
                                                        "run per model at a time")
    p.add_argument("--batch-receive", action="store_true", help="one GetMessages request per poll "
                                                                "(messages_per_page=16) instead of the SDK default")
    p.add_argument("--subscribers", type=int, default=1, help="webhook subscriptions to a local receiver "
                                                               "(default 1; 0: no events sent)")
    p.add_argument("--poll-max", type=float, default=0.1, help="longest idle sleep between polls, s (default 0.1)")
    p.add_argument("--timeout", type=float, default=600, help="give up after this many seconds (default 600)")
    p.add_argument("--backend", choices=("studio", "azureml"), default="studio",
                   help="studio: BES on the fast stand-in (default); azureml: jobs on the local Azure ML service")
    p.add_argument("--rollout", choices=("blue_green", "canary"), default="blue_green",
                   help=f"azureml: how traffic moves to the new deployment (canary: steps {CANARY_STEPS}, "
                        f"{CANARY_DWELL} s dwell)")
    args = p.parse_args()
    azure_ml = args.backend == "azureml"
    args.runs = args.runs if args.runs is not None else (16 if azure_ml else 200)
    args.models = args.models if args.models is not None else (4 if azure_ml else 8)
    if args.runs < 1 or args.models < 1 or args.workers < 1:
        p.error("--runs, --models and --workers must be at least 1")
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for handler in logging.root.handlers:  # "retrain" logs at INFO for RunEnded; print only warnings
        handler.setLevel(logging.WARNING)

    print(f"chain_bench: {args.runs} runs, {args.models} models, {args.workers} workers, backend {args.backend}"
          + (f", {args.rollout} rollout" if azure_ml else ""))
    print(environment_line(azurite_version()))
    azurite = service = bench = None
    started = time.monotonic()
    try:
        azurite = Azurite.start()
        if args.backend == "azureml":
            import tempfile

            azureml = start_azureml(azurite, Path(tempfile.mkdtemp(prefix="chain-bench-azureml-")))
            service, url = azureml, azureml.url
            pid = azureml.process.pid
        else:
            port = free_port()
            service = start_fast_service(port)
            url, pid = f"http://127.0.0.1:{port}", service.pid
        bench = Bench(args, azurite, url, pid)
        bench.register()
        bench.storage_counter.reset()  # set-up (tables, queues, containers, models) is not per-run work
        bench.http_counter.reset()
        try:
            result = bench.run()
        except TimeoutError as e:
            print(f"TIMEOUT: {e}")
            return 2
        code = report(bench, result, args)
    finally:
        if service is not None and hasattr(service, "stop"):
            service.stop()  # devhost.world.AzureML: stops its own process by PID
        else:
            stop_process(service)
        if bench is not None:
            bench.receiver.stop()
        if azurite is not None:
            azurite.stop()
    print(f"\n(total {time.monotonic() - started:.0f} s including start-up; Azurite and the ML service stopped)")
    return code


if __name__ == "__main__":
    sys.exit(main())
