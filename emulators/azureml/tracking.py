"""The MLflow tracking REST subset (`/api/2.0/mlflow/...`): what MLflow's client sends to log and to read.

A job's run id is the job's name (as on Azure); its status follows the job's. Routes answer both at
Azure's workspace path (`/mlflow/v1.0/subscriptions/.../workspaces/{ws}/api/2.0/mlflow/...`) and at the
plain `/api/2.0/mlflow/...` (the first configured workspace).
"""

from __future__ import annotations

import json
import math
import re
import time
import uuid

from fastapi import APIRouter, Depends, Request

from .config import Workspace
from .context import Context, context
from .errors import MlflowError
from .web import WS, require_token

RUN_STATUS = {"NotStarted": "SCHEDULED", "Queued": "SCHEDULED", "Starting": "SCHEDULED", "Preparing": "SCHEDULED",
              "Running": "RUNNING", "Finalizing": "RUNNING", "CancelRequested": "RUNNING",
              "Completed": "FINISHED", "Failed": "FAILED", "Canceled": "KILLED"}
STATUSES = ("RUNNING", "SCHEDULED", "FINISHED", "FAILED", "KILLED")
MAX_KEY = 250
MAX_VALUE = 8000
_CLAUSE = re.compile(r"^\s*(?:(metrics|params|tags|attributes|attribute|attr|metric|param|tag)\.)?"
                     r"(`[^`]+`|\"[^\"]+\"|[\w.]+)\s*(=|!=|<=|>=|<|>|LIKE|ILIKE)\s*(.+?)\s*$", re.IGNORECASE)


def _ms() -> int:
    return int(time.time() * 1000)


class Tracking:
    """Runs and experiments in the store; one lock (the store's) keeps appends atomic."""

    def __init__(self, store):
        self.store = store

    # --- experiments ---------------------------------------------------------------------

    def experiment_by_name(self, w: Workspace, name: str, create: bool = False) -> dict | None:
        for _, e in self.store.all("experiment"):
            if e["_ws"] == w.arm_id and e["name"] == name:
                return e
        if not create:
            return None
        return self.create_experiment(w, name)

    def create_experiment(self, w: Workspace, name: str) -> dict:
        ids = [int(e["experiment_id"]) for _, e in self.store.all("experiment") if e["_ws"] == w.arm_id]
        exp = {"experiment_id": str(max(ids, default=-1) + 1), "name": name, "artifact_location":
               f"azureml://experiments/{name}", "lifecycle_stage": "active", "last_update_time": _ms(),
               "creation_time": _ms(), "tags": [], "_ws": w.arm_id}
        self.store.put("experiment", f"{w.arm_id}/{exp['experiment_id']}", exp)
        return exp

    def experiment(self, w: Workspace, experiment_id: str) -> dict:
        exp = self.store.get("experiment", f"{w.arm_id}/{experiment_id}")
        if exp is None:
            raise MlflowError(404, "RESOURCE_DOES_NOT_EXIST", f"No Experiment with id={experiment_id} exists")
        return exp

    # --- runs ----------------------------------------------------------------------------

    def create_run(self, w: Workspace, run_id: str, experiment_name: str, run_name: str,
                   start_time: int | None = None, tags: list | None = None, status: str = "SCHEDULED") -> dict:
        exp = self.experiment_by_name(w, experiment_name, create=True)
        run = {"info": {"run_id": run_id, "run_uuid": run_id, "run_name": run_name,
                        "experiment_id": exp["experiment_id"], "user_id": "emulators.azureml", "status": status,
                        "start_time": start_time or _ms(), "lifecycle_stage": "active",
                        "artifact_uri": f"azureml://experiments/{experiment_name}/runs/{run_id}/artifacts"},
               "params": {}, "tags": {"mlflow.runName": run_name}, "metrics": {}}
        for t in tags or []:
            if isinstance(t, dict) and "key" in t:
                run["tags"][str(t["key"])] = str(t.get("value", ""))
        self.store.put("run", f"{w.arm_id}/{run_id}", run)
        return run

    def job_status(self, job: dict) -> None:
        """Mirror a job's status on its run (end time on a terminal status)."""
        status = RUN_STATUS.get(job["properties"]["status"])
        ws_id = job["id"].rsplit("/jobs/", 1)[0]

        def change(run: dict) -> dict:
            info = run["info"]
            if info["status"] in ("FINISHED", "FAILED", "KILLED") and status in ("SCHEDULED", "RUNNING"):
                return None  # the script ended its run already
            if status in ("FINISHED", "FAILED", "KILLED"):
                if info["status"] not in ("FAILED", "KILLED"):
                    info["status"] = status
                info.setdefault("end_time", _ms())
            else:
                info["status"] = status
            return run
        if status:
            self.store.update("run", f"{ws_id}/{job['name']}", change)

    def run(self, w: Workspace, run_id: str) -> dict:
        run = self.store.get("run", f"{w.arm_id}/{run_id}")
        if run is None:
            raise MlflowError(404, "RESOURCE_DOES_NOT_EXIST", f"Run '{run_id}' not found")
        return run

    def change(self, w: Workspace, run_id: str, fn) -> dict:
        self.run(w, run_id)
        return self.store.update("run", f"{w.arm_id}/{run_id}", fn)


def view(run: dict) -> dict:
    """A run as MLflow's REST API returns it: latest value per metric key."""
    metrics = [{"key": k, "value": _out(h[-1][0]), "timestamp": h[-1][1], "step": h[-1][2]}
               for k, h in run["metrics"].items() if h]
    return {"info": run["info"],
            "data": {"metrics": metrics, "params": [{"key": k, "value": v} for k, v in run["params"].items()],
                     "tags": [{"key": k, "value": v} for k, v in run["tags"].items()]}}


def _out(value: float):
    return value if math.isfinite(value) else ("NaN" if math.isnan(value) else
                                               ("Infinity" if value > 0 else "-Infinity"))


# --- request parsing ---------------------------------------------------------------------

def _bad(message: str) -> MlflowError:
    return MlflowError(400, "INVALID_PARAMETER_VALUE", message)


async def _body(request: Request) -> dict:
    raw = await request.body()
    try:
        body = json.loads(raw) if raw.strip() else {}
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise MlflowError(400, "MALFORMED_REQUEST", "The request body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise MlflowError(400, "MALFORMED_REQUEST", "The request body must be a JSON object.")
    return body


def _run_id(source: dict) -> str:
    run_id = source.get("run_id") or source.get("run_uuid")
    if not isinstance(run_id, str) or not run_id:
        raise _bad("Missing value for required parameter 'run_id'.")
    return run_id


def _key(value, what: str = "key") -> str:
    if not isinstance(value, str) or not value or len(value) > MAX_KEY:
        raise _bad(f"Invalid {what} {value!r}: a non-empty string of at most {MAX_KEY} characters is required.")
    return value


def _number(value) -> float:
    if isinstance(value, bool):
        raise _bad(f"Invalid metric value {value!r}.")
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str) and value in ("NaN", "Infinity", "-Infinity", "inf", "-inf", "nan"):
        return float(value.replace("Infinity", "inf"))
    raise _bad(f"Invalid metric value {value!r}: a number is required.")


def _int(value, default: int) -> int:
    if value is None:
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        raise _bad(f"Invalid integer {value!r}.") from None


def _metric(m: dict) -> tuple[str, list]:
    if not isinstance(m, dict):
        raise _bad("A metric must be an object.")
    return _key(m.get("key")), [_number(m.get("value")), _int(m.get("timestamp"), _ms()), _int(m.get("step"), 0)]


def _text(value) -> str:
    text = "" if value is None else str(value)
    if len(text) > MAX_VALUE:
        raise _bad(f"Value is longer than {MAX_VALUE} characters.")
    return text


# --- routes ------------------------------------------------------------------------------

router = APIRouter(dependencies=[Depends(require_token)])
PREFIXES = ("/api/2.0/mlflow", "/mlflow/v1.0" + WS + "/api/2.0/mlflow")


def _ws(request: Request, ctx: Context) -> Workspace:
    p = request.path_params
    if "ws" in p:
        w = ctx.config.workspace(p["sub"], p["rg"], p["ws"])
        if w is None:
            raise MlflowError(404, "RESOURCE_DOES_NOT_EXIST", f"Workspace '{p['ws']}' not found")
        return w
    return ctx.config.workspaces[0]


def _route(method: str, path: str, name: str):
    def register(fn):
        for i, prefix in enumerate(PREFIXES):
            router.add_api_route(prefix + path, fn, methods=[method], name=f"mlflow.{name}" + ("" if i else ".plain"))
        return fn
    return register


@_route("GET", "/runs/get", "runs.get")
def get_run(request: Request, ctx: Context = Depends(context)) -> dict:
    return {"run": view(ctx.tracking.run(_ws(request, ctx), _run_id(dict(request.query_params))))}


@_route("POST", "/runs/create", "runs.create")
async def create_run(request: Request, ctx: Context = Depends(context)) -> dict:
    w, body = _ws(request, ctx), await _body(request)
    exp = ctx.tracking.experiment(w, str(body.get("experiment_id", "0")))
    run_id = uuid.uuid4().hex
    run = ctx.tracking.create_run(w, run_id, exp["name"], _text(body.get("run_name")) or run_id,
                                  _int(body.get("start_time"), _ms()), body.get("tags"), status="RUNNING")
    return {"run": view(run)}


@_route("POST", "/runs/update", "runs.update")
async def update_run(request: Request, ctx: Context = Depends(context)) -> dict:
    w, body = _ws(request, ctx), await _body(request)
    status = body.get("status")
    if status is not None and status not in STATUSES:
        raise _bad(f"Invalid run status {status!r}; one of {', '.join(STATUSES)}.")

    def change(run: dict) -> dict:
        if status:
            run["info"]["status"] = status
        if body.get("end_time") is not None:
            run["info"]["end_time"] = _int(body["end_time"], _ms())
        if body.get("run_name"):
            run["info"]["run_name"] = _text(body["run_name"])
            run["tags"]["mlflow.runName"] = run["info"]["run_name"]
        return run
    return {"run_info": ctx.tracking.change(w, _run_id(body), change)["info"]}


@_route("POST", "/runs/log-metric", "runs.log_metric")
async def log_metric(request: Request, ctx: Context = Depends(context)) -> dict:
    w, body = _ws(request, ctx), await _body(request)
    key, point = _metric(body)

    def change(run: dict) -> dict:
        run["metrics"].setdefault(key, []).append(point)
        return run
    ctx.tracking.change(w, _run_id(body), change)
    return {}


@_route("POST", "/runs/log-parameter", "runs.log_parameter")
async def log_parameter(request: Request, ctx: Context = Depends(context)) -> dict:
    w, body = _ws(request, ctx), await _body(request)
    key, value = _key(body.get("key")), _text(body.get("value"))

    def change(run: dict) -> dict:
        if key in run["params"] and run["params"][key] != value:
            raise _bad(f"Changing param values is not allowed. Param with key='{key}' was already logged "
                       f"with value='{run['params'][key]}' for run ID='{run['info']['run_id']}'.")
        run["params"][key] = value
        return run
    ctx.tracking.change(w, _run_id(body), change)
    return {}


@_route("POST", "/runs/set-tag", "runs.set_tag")
async def set_tag(request: Request, ctx: Context = Depends(context)) -> dict:
    w, body = _ws(request, ctx), await _body(request)
    key, value = _key(body.get("key")), _text(body.get("value"))

    def change(run: dict) -> dict:
        run["tags"][key] = value
        return run
    ctx.tracking.change(w, _run_id(body), change)
    return {}


@_route("POST", "/runs/log-batch", "runs.log_batch")
async def log_batch(request: Request, ctx: Context = Depends(context)) -> dict:
    w, body = _ws(request, ctx), await _body(request)
    metrics = [_metric(m) for m in body.get("metrics") or []]
    params = [(_key(p.get("key")), _text(p.get("value"))) for p in body.get("params") or [] if isinstance(p, dict)]
    tags = [(_key(t.get("key")), _text(t.get("value"))) for t in body.get("tags") or [] if isinstance(t, dict)]
    if len(metrics) > 1000 or len(params) > 100 or len(tags) > 100:
        raise _bad("A batch holds at most 1000 metrics, 100 params and 100 tags.")

    def change(run: dict) -> dict:
        for key, point in metrics:
            run["metrics"].setdefault(key, []).append(point)
        for key, value in params:
            if run["params"].get(key, value) != value:
                raise _bad(f"Changing param values is not allowed (param '{key}').")
            run["params"][key] = value
        run["tags"].update(tags)
        return run
    ctx.tracking.change(w, _run_id(body), change)
    return {}


@_route("GET", "/metrics/get-history", "metrics.get_history")
def get_history(request: Request, ctx: Context = Depends(context)) -> dict:
    q = dict(request.query_params)
    key = _key(q.get("metric_key"), "metric_key")
    run = ctx.tracking.run(_ws(request, ctx), _run_id(q))
    return {"metrics": [{"key": key, "value": _out(v), "timestamp": t, "step": s}
                        for v, t, s in run["metrics"].get(key, [])]}


@_route("POST", "/runs/search", "runs.search")
async def search_runs(request: Request, ctx: Context = Depends(context)) -> dict:
    w, body = _ws(request, ctx), await _body(request)
    experiment_ids = {str(e) for e in body.get("experiment_ids") or []}
    clauses = _parse_filter(body.get("filter") or "")
    runs = [r for k, r in ctx.store.all("run") if k.startswith(w.arm_id + "/")
            and (not experiment_ids or r["info"]["experiment_id"] in experiment_ids)
            and all(_matches(r, c) for c in clauses)]
    runs.sort(key=lambda r: r["info"]["start_time"], reverse=True)
    limit = max(1, min(_int(body.get("max_results"), 1000), 50000))
    return {"runs": [view(r) for r in runs[:limit]]}


def _parse_filter(text: str) -> list[tuple[str, str, str, str]]:
    if not isinstance(text, str):
        raise _bad("filter must be a string.")
    clauses = []
    for part in re.split(r"\s+AND\s+", text.strip(), flags=re.IGNORECASE) if text.strip() else []:
        m = _CLAUSE.match(part)
        if not m:
            raise _bad(f"Invalid filter clause {part!r}.")
        kind = (m.group(1) or "attributes").lower().rstrip("s")
        kind = {"attribute": "attributes", "attr": "attributes", "metric": "metrics", "param": "params",
                "tag": "tags"}.get(kind, kind)
        clauses.append((kind, m.group(2).strip("`\""), m.group(3).upper(), m.group(4).strip().strip("'\"")))
    return clauses


def _matches(run: dict, clause: tuple[str, str, str, str]) -> bool:
    kind, key, op, raw = clause
    if kind == "metrics":
        history = run["metrics"].get(key)
        if not history:
            return False
        left, right = history[-1][0], _number(float(raw)) if _is_float(raw) else None
        if right is None:
            raise _bad(f"Metric filter on {key!r} needs a number.")
    else:
        left = (run["params"] if kind == "params" else run["tags"] if kind == "tags" else run["info"]).get(key)
        if left is None:
            return False
        left, right = str(left), raw
    if op in ("LIKE", "ILIKE"):
        pattern = re.escape(str(right)).replace("%", ".*").replace("_", ".")
        return re.fullmatch(pattern, str(left), re.IGNORECASE if op == "ILIKE" else 0) is not None
    return {"=": left == right, "!=": left != right, "<": left < right, ">": left > right,
            "<=": left <= right, ">=": left >= right}[op]


def _is_float(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


@_route("GET", "/experiments/get-by-name", "experiments.get_by_name")
def experiment_by_name(request: Request, ctx: Context = Depends(context)) -> dict:
    name = request.query_params.get("experiment_name")
    exp = ctx.tracking.experiment_by_name(_ws(request, ctx), _key(name, "experiment_name"))
    if exp is None:
        raise MlflowError(404, "RESOURCE_DOES_NOT_EXIST", f"Could not find experiment with name '{name}'")
    return {"experiment": {k: v for k, v in exp.items() if not k.startswith("_")}}


@_route("GET", "/experiments/get", "experiments.get")
def get_experiment(request: Request, ctx: Context = Depends(context)) -> dict:
    exp = ctx.tracking.experiment(_ws(request, ctx), str(request.query_params.get("experiment_id", "")))
    return {"experiment": {k: v for k, v in exp.items() if not k.startswith("_")}}


@_route("POST", "/experiments/create", "experiments.create")
async def create_experiment(request: Request, ctx: Context = Depends(context)) -> dict:
    w, body = _ws(request, ctx), await _body(request)
    name = _key(body.get("name"), "experiment name")
    if ctx.tracking.experiment_by_name(w, name) is not None:
        raise MlflowError(400, "RESOURCE_ALREADY_EXISTS", f"Experiment '{name}' already exists.")
    return {"experiment_id": ctx.tracking.create_experiment(w, name)["experiment_id"]}
