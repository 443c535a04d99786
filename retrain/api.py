"""The HTTP API's logic, host-independent: JSON in, JSON out, a 4xx that says what to fix."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any, Callable

from . import bounded_json, chain, triggers
from .context import Context
from .errors import (Conflict, DataNotFound, InvalidDataRef, InvalidModelDefinition, NoTrainingData,
                     RetrainError, SettingsError, UnknownModel, UnknownRun)
from .models import ModelDefinition, check_model_name
from .rollback import RollbackFailed, rollback as roll_back
from .runs import Status

log = logging.getLogger("retrain")
MAX_BODY = 256 * 1024


@dataclass(frozen=True)
class ApiRequest:
    method: str
    route: dict[str, str] = field(default_factory=dict)
    query: dict[str, str] = field(default_factory=dict)
    body: bytes = b""

    def json(self, *, required: bool = True) -> Any:
        if not self.body.strip():
            if required:
                raise BadRequest("a JSON body is required")
            return None
        try:
            return bounded_json.loads(self.body, max_bytes=MAX_BODY)
        except bounded_json.JsonRejected as e:
            raise BadRequest(str(e)) from None


@dataclass(frozen=True)
class ApiResponse:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)

    def text(self) -> str:
        return json.dumps(self.body, indent=2)


class BadRequest(RetrainError):
    """The request itself is malformed (bad JSON, bad parameter)."""


_STATUS_OF: list[tuple[type[Exception], int]] = [
    (RollbackFailed, 502),
    (InvalidModelDefinition, 400), (BadRequest, 400), (DataNotFound, 404), (InvalidDataRef, 400),
    (UnknownModel, 404), (UnknownRun, 404), (NoTrainingData, 409), (Conflict, 409), (SettingsError, 500),
]


def handle(ctx: Context, action: Callable[[Context, ApiRequest], ApiResponse], request: ApiRequest) -> ApiResponse:
    """Run an API action and turn the errors a user can fix into 4xx answers."""
    try:
        return action(ctx, request)
    except RetrainError as e:
        for kind, status in _STATUS_OF:
            if isinstance(e, kind):
                body = {"error": {"code": type(e).__name__, "message": str(e)}}
                if isinstance(e, InvalidModelDefinition):
                    body["error"]["problems"] = e.problems
                if isinstance(e, RollbackFailed):
                    body["error"]["endpoints"] = e.endpoints
                return ApiResponse(status, body)
        raise


def _model(request: ApiRequest) -> str:
    return check_model_name(request.route.get("model", ""))


def _int(request: ApiRequest, name: str, default: int, low: int, high: int) -> int:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"query parameter {name} must be an integer") from None
    if not low <= value <= high:
        raise BadRequest(f"query parameter {name} must be between {low} and {high}")
    return value


def run_location(model: str, run_id: str) -> str:
    return f"/api/models/{model}/runs/{run_id}"


# --- models --------------------------------------------------------------------------------

def list_models(ctx: Context, request: ApiRequest) -> ApiResponse:
    return ApiResponse(200, {"models": [m.to_public() for m in ctx.models.list()]})


def model(ctx: Context, request: ApiRequest) -> ApiResponse:
    """GET shows a model; PUT registers or redefines it (live state is kept)."""
    name = _model(request)
    if request.method == "GET":
        return ApiResponse(200, ctx.models.get(name).to_public())
    definition = ModelDefinition.from_json(name, request.json())
    state, created = ctx.models.put(definition)
    missing = [s for s in _settings_named(definition) if not (ctx.env.get(s) or "").strip()]
    body = state.to_public()
    if missing:
        body["warnings"] = [f"app setting {s!r} is not set in this app yet; runs will fail until it is"
                            for s in missing]
    return ApiResponse(201 if created else 200, body, {"Location": f"/api/models/{name}"})


def _settings_named(definition: ModelDefinition) -> list[str]:
    names = [definition.training.key_setting] + [e.key_setting for e in definition.endpoints if e.key_setting]
    return list(dict.fromkeys(names))


# --- runs ----------------------------------------------------------------------------------

def retrain(ctx: Context, request: ApiRequest) -> ApiResponse:
    """Start a run on a named blob or the newest one; 202 with the run's Location (200 if already seen)."""
    name = _model(request)
    body = request.json(required=False) or {}
    if not isinstance(body, dict):
        raise BadRequest('the body must be a JSON object such as {"blob": "census/2024-06.csv"}')
    unknown = set(body) - {"blob"}
    if unknown:
        raise BadRequest(f"unknown field(s) {', '.join(sorted(unknown))}; only 'blob' is accepted")
    blob = body.get("blob")
    if blob is not None and not isinstance(blob, str):
        raise BadRequest("blob must be a string: a blob name inside the training container")
    result = triggers.retrain_now(ctx, name, blob)
    location = run_location(name, result.run.run_id)
    answer = {"run": result.run.to_public(), "duplicate": not result.created, "message": result.message}
    return ApiResponse(202 if result.created else 200, answer, {"Location": location})


def list_runs(ctx: Context, request: ApiRequest) -> ApiResponse:
    name = _model(request)
    ctx.models.get(name)
    status = request.query.get("status")
    try:
        wanted = Status(status) if status else None
    except ValueError:
        raise BadRequest(f"status must be one of {', '.join(s.value for s in Status)}") from None
    runs = ctx.runs.list(name, limit=_int(request, "limit", 50, 1, 1000), status=wanted)
    return ApiResponse(200, {"model": name, "runs": [r.to_public() for r in runs]})


def get_run(ctx: Context, request: ApiRequest) -> ApiResponse:
    name = _model(request)
    return ApiResponse(200, ctx.runs.get(name, _run_id(request)).to_public())


def run_action(ctx: Context, request: ApiRequest) -> ApiResponse:
    """POST .../runs/{run}/{action}: cancel, approve, reject, or retry a promotion's failed endpoints."""
    name, run_id, action = _model(request), _run_id(request), request.route.get("action", "")
    body = request.json(required=False) or {}
    by = str(body.get("by") or "api")[:100] if isinstance(body, dict) else "api"
    actions = {"cancel": chain.cancel, "approve": chain.approve, "reject": chain.reject,
               "retry": chain.retry_promotion}
    if action not in actions:
        raise BadRequest(f"unknown action {action!r}; use one of {', '.join(sorted(actions))}")
    return ApiResponse(200, actions[action](ctx, name, run_id, by=by).to_public())


def _run_id(request: ApiRequest) -> str:
    run_id = request.route.get("run", "")
    if not run_id.isalnum() or len(run_id) > 64:
        raise BadRequest(f"run id {run_id!r} is not a run id")
    return run_id


# --- history -------------------------------------------------------------------------------

def promotions(ctx: Context, request: ApiRequest) -> ApiResponse:
    name = _model(request)
    ctx.models.get(name)
    return ApiResponse(200, {"model": name, "promotions": [p.to_public() for p in ctx.promotions.history(name)]})


def rollback(ctx: Context, request: ApiRequest) -> ApiResponse:
    """POST /api/models/{model}/rollback {"to_run"?: id, "by"?: who, "note"?: why}."""
    name = _model(request)
    body = request.json(required=False) or {}
    if not isinstance(body, dict) or set(body) - {"to_run", "by", "note"}:
        raise BadRequest('the body must be a JSON object with optional "to_run", "by" and "note"')
    to_run = body.get("to_run")
    if to_run is not None and (not isinstance(to_run, str) or not to_run.isalnum()):
        raise BadRequest("to_run must be a run id")
    result = roll_back(ctx, name, to_run=to_run, by=str(body.get("by") or "api")[:100],
                       note=str(body.get("note") or "")[:1000])
    return ApiResponse(200, {"model": name, "promotion": result.promotion.to_public()})


def skipped(ctx: Context, request: ApiRequest) -> ApiResponse:
    """GET /api/skipped: blobs in the training container that no model claimed (newest first)."""
    limit = _int(request, "limit", 100, 1, 1000)
    return ApiResponse(200, {"skipped": [s.to_public() for s in ctx.skipped.recent(limit)]})
