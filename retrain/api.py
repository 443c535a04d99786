"""The HTTP API's logic, host-independent: JSON in, JSON out, a 4xx that says what to fix."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any, Callable
from urllib.parse import urlencode

from azure.core.exceptions import AzureError

from . import bounded_json, chain, triggers, views
from .events import sender as events_sender
from .events.sinks import EVENTGRID_ENDPOINT_SETTING, eventgrid_endpoint
from .events.subscriptions import Subscription, check_name
from .context import Context
from .errors import BadRequest, InvalidModelDefinition, RetrainError, StorageUnavailable
from .models import ModelDefinition, check_model_name
from .outbound import OutboundRules
from .principal import ADMIN, APPROVER, Actor, caller, require
from .rollback import rollback as roll_back
from .runs import Status
from .secrets import SecretRule
from .tables import Page, storage_failure

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


def error_response(error: RetrainError) -> ApiResponse:
    """The JSON error envelope, with the status the error's class carries."""
    body = {"code": type(error).__name__, "message": str(error), **error.details()}
    return ApiResponse(error.http_status, {"error": body})


def handle(ctx: Context, action: Callable[[Context, ApiRequest], ApiResponse], request: ApiRequest) -> ApiResponse:
    """Run an API action; every error becomes the JSON envelope (a 4xx says what to fix), never a bare 500."""
    try:
        return action(ctx, request)
    except RetrainError as e:
        return error_response(e)
    except AzureError as e:
        log.error("storage error in %s: %s", getattr(action, "__name__", action), storage_failure(e))
        return error_response(StorageUnavailable(
            f"storage did not answer as expected ({storage_failure(e)}); nothing was lost: retry the request"))


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

def _page(request: ApiRequest, path: str, key: str, page: Page, body: dict, **query: str | int | None) -> ApiResponse:
    """A page of a listing with its `next` link (absent on the last page)."""
    body[key] = [item.to_public() for item in page.items]
    body["continuation"] = page.continuation
    if page.continuation:
        params = {k: v for k, v in query.items() if v not in (None, "")}
        body["next"] = f"{path}?{urlencode({**params, 'continuation': page.continuation})}"
    else:
        body["next"] = None
    return ApiResponse(200, body)


def _continuation(request: ApiRequest) -> str | None:
    token = request.query.get("continuation") or None
    if token is not None and len(token) > 2000:
        raise BadRequest("continuation is not a token this API gave out")
    return token


def list_models(ctx: Context, request: ApiRequest) -> ApiResponse:
    """Every model, those whose stored row no longer validates included (with `valid: false` and `problems`)."""
    return ApiResponse(200, {"models": [views.model_view(m) for m in ctx.models.list_all()]})


def model(ctx: Context, request: ApiRequest) -> ApiResponse:
    """GET shows a model; PUT registers or redefines it (live state is kept)."""
    name = _model(request)
    if request.method == "GET":
        return ApiResponse(200, views.model_view(ctx.models.read(name)))
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
    names = [setting for _, setting in definition.key_settings()]
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
    """Newest first, one page (`limit`) at a time: `next` links the following page; `status` filters."""
    name = _model(request)
    ctx.models.read(name)
    status = request.query.get("status")
    try:
        wanted = Status(status) if status else None
    except ValueError:
        raise BadRequest(f"status must be one of {', '.join(s.value for s in Status)}") from None
    limit = _int(request, "limit", 50, 1, 1000)
    page = ctx.runs.page(name, limit=limit, status=wanted, continuation=_continuation(request))
    return _page(request, f"/api/models/{name}/runs", "runs", page, {"model": name}, limit=limit, status=status)


def get_run(ctx: Context, request: ApiRequest) -> ApiResponse:
    name = _model(request)
    return ApiResponse(200, ctx.runs.get(name, _run_id(request)).to_public())


def run_action(ctx: Context, request: ApiRequest) -> ApiResponse:
    """POST .../runs/{run}/{action}: cancel, approve, reject, or retry a promotion's failed endpoints."""
    name, run_id, action = _model(request), _run_id(request), request.route.get("action", "")
    body = request.json(required=False) or {}
    if not isinstance(body, dict) or set(body) - {"by", "comment"}:
        raise BadRequest('the body must be a JSON object with optional "by" and "comment"')
    actor = request.actor(ctx, body.get("by"))
    comment = " ".join(str(body.get("comment") or "").split())[:1000]
    actions = {"cancel": chain.cancel, "approve": chain.approve, "reject": chain.reject,
               "retry": chain.retry_promotion}
    if action not in actions:
        raise BadRequest(f"unknown action {action!r}; use one of {', '.join(sorted(actions))}")
    if action in ("approve", "reject"):
        require(actor, APPROVER, f"{action.rstrip('e')}ing a run", ctx.env)
    run = actions[action](ctx, name, run_id, by=actor.label, comment=comment)
    ctx.audit.record(name, action, actor, ctx.clock(), target=run_id)
    return ApiResponse(200, run.to_public())


def _run_id(request: ApiRequest) -> str:
    return check_run_id(request.route.get("run", ""))


def check_run_id(run_id: str) -> str:
    if not run_id.isalnum() or len(run_id) > 64:
        raise BadRequest(f"run id {run_id!r} is not a run id")
    return run_id


# --- history -------------------------------------------------------------------------------

def promotions(ctx: Context, request: ApiRequest) -> ApiResponse:
    name = _model(request)
    ctx.models.read(name)
    limit = _int(request, "limit", 50, 1, 1000)
    page = ctx.promotions.page(name, limit=limit, continuation=_continuation(request))
    return _page(request, f"/api/models/{name}/promotions", "promotions", page, {"model": name}, limit=limit)


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
    ctx.models.read(name)
    limit = _int(request, "limit", 100, 1, 1000)
    page = ctx.audit.page(name, limit=limit, continuation=_continuation(request))
    return _page(request, f"/api/models/{name}/audit", "audit", page, {"model": name}, limit=limit)


def skipped(ctx: Context, request: ApiRequest) -> ApiResponse:
    """GET /api/skipped: blobs in the training container that no model claimed (newest first)."""
    limit = _int(request, "limit", 100, 1, 1000)
    page = ctx.skipped.page(limit=limit, continuation=_continuation(request))
    return _page(request, "/api/skipped", "skipped", page, {}, limit=limit)


# --- subscriptions and deliveries ----------------------------------------------------------------

def list_subscriptions(ctx: Context, request: ApiRequest) -> ApiResponse:
    """GET /api/subscriptions: every webhook subscription, and the Event Grid sink when one is configured."""
    body: dict[str, Any] = {"subscriptions": [s.to_public() for s in ctx.events.subscriptions()]}
    endpoint = eventgrid_endpoint(ctx.env)
    body["eventgrid"] = None if endpoint is None else {
        "endpoint": endpoint, "setting": EVENTGRID_ENDPOINT_SETTING,
        "links": {"deliveries": f"/api/subscriptions/{events_sender.EVENTGRID}/deliveries"}}
    return ApiResponse(200, body)


def subscription(ctx: Context, request: ApiRequest) -> ApiResponse:
    """GET shows a subscription; PUT creates or redefines it (201/200); DELETE removes it (its deliveries stay)."""
    name = check_name(request.route.get("name", ""))
    if request.method == "GET":
        return ApiResponse(200, ctx.events.subscription(name).to_public())
    require(request.actor(ctx), ADMIN, "changing where events are sent", ctx.env)
    if request.method == "DELETE":
        ctx.events.delete_subscription(name)
        return ApiResponse(200, {"name": name, "deleted": True})
    stored, created = ctx.events.put_subscription(Subscription.from_json(name, request.json(), ctx.env))
    body = stored.to_public()
    if not (ctx.env.get(stored.secret_setting) or "").strip():
        body["warnings"] = [f"app setting {stored.secret_setting!r} is not set in this app yet; deliveries will "
                            "be dead-lettered until it is"]
    return ApiResponse(201 if created else 200, body, {"Location": f"/api/subscriptions/{name}"})


def _deliveries_of(request: ApiRequest) -> str:
    name = request.route.get("name", "")
    return name if name == events_sender.EVENTGRID else check_name(name)


def test_subscription(ctx: Context, request: ApiRequest) -> ApiResponse:
    """POST /api/subscriptions/{name}/test: send a `retrain.test` event now; 202 with its delivery."""
    name = check_name(request.route.get("name", ""))
    require(request.actor(ctx), ADMIN, "sending a test event", ctx.env)
    delivery = events_sender.send_test(ctx, name)
    return ApiResponse(202, delivery.to_public(),
                       {"Location": f"/api/subscriptions/{name}/deliveries"})


def deliveries(ctx: Context, request: ApiRequest) -> ApiResponse:
    """GET /api/subscriptions/{name}/deliveries: newest event first, status, attempts and the last answer."""
    name = _deliveries_of(request)
    if name != events_sender.EVENTGRID:
        ctx.events.subscription(name)
    limit = _int(request, "limit", 50, 1, 1000)
    page = ctx.events.deliveries(name, limit=limit, continuation=_continuation(request))
    return _page(request, f"/api/subscriptions/{name}/deliveries", "deliveries", page, {"subscription": name},
                 limit=limit)


def redeliver(ctx: Context, request: ApiRequest) -> ApiResponse:
    """POST /api/subscriptions/{name}/deliveries/{delivery}/redeliver: send it again, same event id."""
    name = _deliveries_of(request)
    key = request.route.get("delivery", "")
    if not key or len(key) > 200 or not all(c.isalnum() or c in "~_" for c in key):
        raise BadRequest(f"delivery id {key[:100]!r} is not a delivery id")
    body = request.json(required=False) or {}
    actor = request.actor(ctx, body.get("by") if isinstance(body, dict) else "")
    require(actor, ADMIN, "redelivering an event", ctx.env)
    return ApiResponse(202, events_sender.redeliver(ctx, name, key, by=actor.label).to_public())
