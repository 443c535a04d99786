"""An instant stand-in for the ML service, so that chain_bench's figures measure the chain, not training.

The real local ML service (`emulators.studio`) trains in a child process per job (about a second);
this one "trains" in no time: a job is Finished the moment it is started. It speaks exactly the
wire contract the app uses (docs: /work/shared/reference/studio-classic-api.md), nothing more:

BES, api-version 2.0, `Authorization: Bearer <training key>`:
  POST   /workspaces/{ws}/services/{svc}/jobs            -> 200, a JSON string: the job id
  POST   /workspaces/{ws}/services/{svc}/jobs/{id}/start -> 204; writes both outputs (see below)
  GET    /workspaces/{ws}/services/{svc}/jobs/{id}       -> {"StatusCode", "Results", "Details": null}
  DELETE /workspaces/{ws}/services/{svc}/jobs/{id}       -> 204
Classic endpoint management, `Authorization: Bearer <workspace token>` (any endpoint name exists):
  GET    /workspaces/{ws}/webservices/{svc}/endpoints/{ep} -> {"Name", "Resources": [{"Name", "Kind", "Location"}]}
  PATCH  /workspaces/{ws}/webservices/{svc}/endpoints/{ep} -> 204; the Location is kept without its SAS
Also `GET /healthz` and `GET /_stats` (request and blob-write counts, for cross-checking the client side).

Outputs: on start, `output1` (the .ilearner: a few bytes) and `output2` (an Evaluate Model CSV:
`Accuracy,Precision,Recall,F-Score,AUC,Average Log Loss,Training Log Loss`, one row, or two when
the `Baseline model` global parameter is present) are written with a PUT Blob to
`BaseLocation + RelativeLocation + SasBlobToken` from the request's `Outputs`. Writing on start,
not on create, keeps the BES meaning the app relies on: a job created but never started never runs.
The challenger (row 1) always beats the baseline (row 2), so every run passes an AUC gate.

Run: `python benchmarks/fast_ml_service.py --port P --training-key K --workspace-token T`
(chain_bench starts it as a child process on loopback, so its CPU and memory are not the bench's).
"""

from __future__ import annotations

import argparse
import json
import re
import threading
import uuid
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import requests

HEADER = "Accuracy,Precision,Recall,F-Score,AUC,Average Log Loss,Training Log Loss"
CHALLENGER = "0.861,0.802,0.781,0.791,0.912,0.331,0.318"
BASELINE = "0.842,0.781,0.760,0.770,0.885,0.362,0.340"
ILEARNER = b"fast-ml-service trained model\n"

JOBS = re.compile(r"^/workspaces/[^/]+/services/[^/]+/jobs(?:/(?P<id>[^/]+)(?P<start>/start)?)?$")
ENDPOINT = re.compile(r"^/workspaces/[^/]+/webservices/(?P<svc>[^/]+)/endpoints/(?P<ep>[^/]+)$")


class FastMLService:
    """Shared state behind the handler: jobs, endpoint resources, counts."""

    def __init__(self, training_key: str, workspace_token: str, resource_name: str,
                 baseline_parameter: str = "Baseline model", model_output: str = "output1",
                 evaluation_output: str = "output2"):
        self.training_key, self.workspace_token = training_key, workspace_token
        self.resource_name, self.baseline_parameter = resource_name, baseline_parameter
        self.model_output, self.evaluation_output = model_output, evaluation_output
        self.jobs: dict[str, dict] = {}  # id -> {"outputs": {...}, "baseline": bool, "state": str}
        self.endpoints: dict[tuple[str, str], dict] = {}  # (svc, ep) -> Location (no SAS)
        self.stats: Counter = Counter()
        self.lock = threading.Lock()
        self.blobs = requests.Session()  # pooled connections to the storage account

    def run_job(self, job: dict) -> str | None:
        """Write both outputs; the error text (for Details) or None."""
        csv = HEADER + "\n" + CHALLENGER + "\n" + (BASELINE + "\n" if job["baseline"] else "")
        for name, body in ((self.model_output, ILEARNER), (self.evaluation_output, csv.encode())):
            ref = job["outputs"][name]
            url = (ref.get("BaseLocation", "") + ref.get("RelativeLocation", "").lstrip("/")
                   + ref.get("SasBlobToken", ""))
            try:
                r = self.blobs.put(url, data=body, headers={"x-ms-blob-type": "BlockBlob"}, timeout=30)
            except requests.RequestException as e:
                return f"Error 0000: could not write {name}: {type(e).__name__}"
            with self.lock:
                self.stats["blob PUT"] += 1
            if r.status_code >= 300:
                return f"Error 0000: writing {name} -> {r.status_code}"
        return None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: the app's pooled session reuses connections
    server: "Server"

    def log_message(self, *args) -> None:  # quiet
        pass

    # --- plumbing ---------------------------------------------------------------------------
    def _reply(self, status: int, body=None) -> None:
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        if data:
            self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status: int, code: str, message: str) -> None:
        self._reply(status, {"error": {"code": code, "message": message}})

    def _body(self):
        return json.loads(self._raw) if self._raw else None

    def _authorized(self, key: str) -> bool:
        if self.headers.get("Authorization") == f"Bearer {key}":
            return True
        self._error(401, "Unauthorized", "Request is unauthorized to access resource.")
        return False

    def _route(self, method: str) -> None:
        svc: FastMLService = self.server.service
        path = urlsplit(self.path).path
        length = int(self.headers.get("Content-Length") or 0)
        self._raw = self.rfile.read(length) if length else b""  # always read: the connection is kept alive
        jobs, endpoint = JOBS.match(path), ENDPOINT.match(path)
        label = ("jobs/{id}/start" if jobs["start"] else "jobs/{id}" if jobs["id"] else "jobs") if jobs \
            else "endpoint" if endpoint else path
        with svc.lock:
            svc.stats[f"{method} {label}"] += 1
        if method == "GET" and path == "/healthz":
            return self._reply(200, {"status": "ok"})
        if method == "GET" and path == "/_stats":
            with svc.lock:
                return self._reply(200, dict(svc.stats))
        if jobs:
            if self._authorized(svc.training_key):
                self._jobs(svc, method, jobs["id"], bool(jobs["start"]))
        elif endpoint:
            if self._authorized(svc.workspace_token):
                self._endpoint(svc, method, (endpoint["svc"], endpoint["ep"]), endpoint["ep"])
        else:
            self._error(404, "NotFound", f"no route {method} {path}")

    do_GET = lambda self: self._route("GET")  # noqa: E731
    do_POST = lambda self: self._route("POST")  # noqa: E731
    do_PATCH = lambda self: self._route("PATCH")  # noqa: E731
    do_DELETE = lambda self: self._route("DELETE")  # noqa: E731

    # --- BES ------------------------------------------------------------------------------------
    def _jobs(self, svc: FastMLService, method: str, job_id: str | None, start: bool) -> None:
        if job_id is None:
            if method != "POST":
                return self._error(405, "BadArgument", "use POST to create a job")
            body = self._body() or {}
            outputs = body.get("Outputs") or {}
            if not all(isinstance(outputs.get(n), dict) for n in (svc.model_output, svc.evaluation_output)):
                return self._error(400, "BadArgument", f"Outputs must override {svc.model_output} and "
                                                       f"{svc.evaluation_output}")
            job_id = uuid.uuid4().hex
            with svc.lock:
                svc.jobs[job_id] = {"outputs": outputs, "state": "NotStarted",
                                    "baseline": svc.baseline_parameter in (body.get("GlobalParameters") or {})}
            return self._reply(200, job_id)
        with svc.lock:
            job = svc.jobs.get(job_id)
        if job is None:
            return self._error(404, "NotFound", f"job {job_id} not found")
        if start and method == "POST":
            if job["state"] != "NotStarted":
                return self._error(400, "InvalidOperation",
                                   f"The job cannot be started because it is in {job['state']} state.")
            failure = svc.run_job(job)  # trains in no time
            job["state"], job["details"] = ("Failed", failure) if failure else ("Finished", None)
            return self._reply(204)
        if method == "GET" and not start:
            finished = job["state"] == "Finished"
            # Real BES hands back read-only SAS refs; this stand-in has no key to sign one (the app does not read them).
            results = {n: {"BaseLocation": ref.get("BaseLocation"), "RelativeLocation": ref.get("RelativeLocation"),
                           "SasBlobToken": ""} for n, ref in job["outputs"].items()}
            return self._reply(200, {"StatusCode": job["state"], "Results": results if finished else None,
                                     "Details": job.get("details")})
        if method == "DELETE" and not start:
            with svc.lock:
                svc.jobs.pop(job_id, None)
            return self._reply(204)
        self._error(405, "BadArgument", f"{method} is not allowed here")

    # --- classic endpoint management ---------------------------------------------------------
    def _endpoint(self, svc: FastMLService, method: str, key: tuple[str, str], name: str) -> None:
        if method == "GET":
            with svc.lock:
                location = svc.endpoints.get(key)
            return self._reply(200, {"Name": name, "Resources": [
                {"Name": svc.resource_name, "Kind": "TrainedModel", "Location": location}]})
        if method == "PATCH":
            body = self._body() or {}
            for resource in body.get("Resources") or []:
                if str(resource.get("Name", "")).casefold() != svc.resource_name.casefold():
                    return self._error(400, "BadArgument", f"no resource named {resource.get('Name')!r}")
                loc = resource.get("Location") or {}
                with svc.lock:
                    svc.endpoints[key] = {"BaseLocation": loc.get("BaseLocation", ""),
                                          "RelativeLocation": loc.get("RelativeLocation", "")}
            return self._reply(204)
        self._error(405, "BadArgument", f"{method} is not allowed here")


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address, service: FastMLService):
        super().__init__(address, Handler)
        self.service = service


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--training-key", required=True)
    p.add_argument("--workspace-token", required=True)
    p.add_argument("--resource-name", default="Bench Model [trained model]")
    a = p.parse_args()
    server = Server((a.host, a.port), FastMLService(a.training_key, a.workspace_token, a.resource_name))
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
