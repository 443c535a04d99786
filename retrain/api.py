"""The HTTP API's logic, host-independent: JSON in, JSON out, a 4xx that says what to fix."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any, Callable

from . import bounded_json, chain, triggers
from .context import Context
from .errors import (Conflict, DataNotFound, DestinationNotAllowed, Forbidden, InvalidDataRef,
                     InvalidModelDefinition, NoTrainingData, RetrainError, SecretNotAllowed, SettingsError,
                     Unauthenticated, UnknownModel, UnknownRun)
from .models import ModelDefinition, check_model_name
from .outbound import OutboundRules
from .principal import ADMIN, APPROVER, Actor, caller, require
from .rollback import RollbackFailed, rollback as roll_back
from .runs import Status
from .secrets import SecretRule

log = logging.getLogger("retrain")
MAX_BODY = 256 * 1024


@dataclass(frozen=True)
class ApiRequest:
    method: str
    route: dict[str, str] = field(default_factory=dict)
    query: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)  # as the host passes them (Easy Auth's included)

    def actor(self, ctx: Context, note: Any = "") -> Actor:
        """Who is calling (App Service Authentication's principal, or the function key)."""
        return caller(self.headers, ctx.env, note if isinstance(note, str) else "")

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
    (Unauthenticated, 401), (Forbidden, 403), (DestinationNotAllowed, 400), (SecretNotAllowed, 400),
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
                if isinstance(e, Forbidden):
                    body["error"]["role"] = e.role
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
    actor = request.actor(ctx)
    require(actor, ADMIN, "registering or redefining a model", ctx.env)
    definition = ModelDefinition.from_json(name, request.json())
    refused = (OutboundRules.from_env(ctx.env).problems(definition.destinations())
               + SecretRule.from_env(ctx.env).problems(definition.key_settings()))
    if refused:
        raise InvalidModelDefinition(refused)
    state, created = ctx.models.put(definition)
    ctx.audit.record(name, "create" if created else "redefine", actor, ctx.clock())
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
    actor = request.actor(ctx, body.get("by") if isinstance(body, dict) else "")
    actions = {"cancel": chain.cancel, "approve": chain.approve, "reject": chain.reject,
               "retry": chain.retry_promotion}
    if action not in actions:
        raise BadRequest(f"unknown action {action!r}; use one of {', '.join(sorted(actions))}")
    if action in ("approve", "reject"):
        require(actor, APPROVER, f"{action.rstrip('e')}ing a run", ctx.env)
    run = actions[action](ctx, name, run_id, by=actor.label)
    ctx.audit.record(name, action, actor, ctx.clock(), target=run_id)
    return ApiResponse(200, run.to_public())


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
    actor = request.actor(ctx, body.get("by"))
    require(actor, APPROVER, "rolling back", ctx.env)
    result = roll_back(ctx, name, to_run=to_run, by=actor.label, note=str(body.get("note") or "")[:1000],
                       actor=actor.to_record())
    ctx.audit.record(name, "rollback", actor, ctx.clock(), target=result.promotion.key)
    return ApiResponse(200, {"model": name, "promotion": result.promotion.to_public()})


def audit(ctx: Context, request: ApiRequest) -> ApiResponse:
    """GET /api/models/{model}/audit: who approved, rejected, cancelled, retried, rolled back or redefined it."""
    name = _model(request)
    ctx.models.get(name)
    limit = _int(request, "limit", 100, 1, 1000)
    return ApiResponse(200, {"model": name, "audit": [e.to_public() for e in ctx.audit.recent(name, limit)]})


def skipped(ctx: Context, request: ApiRequest) -> ApiResponse:
    """GET /api/skipped: blobs in the training container that no model claimed (newest first)."""
    limit = _int(request, "limit", 100, 1, 1000)
    return ApiResponse(200, {"skipped": [s.to_public() for s in ctx.skipped.recent(limit)]})
