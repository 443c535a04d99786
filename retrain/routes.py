"""The HTTP API's one route table: function_app declares these routes, the OpenAPI document is built from it.

To add a route: write its handler (`(Context, ApiRequest) -> ApiResponse`), add a `Route` here (and its
schemas to `schemas.SCHEMAS`), and declare it in `function_app.py` with `function=` as the Python name.
`tests/unit/test_openapi.py` fails while the table and `function_app.py` disagree.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from . import api
from .api import ApiRequest, ApiResponse
from .context import Context
from .runs import Status
from .schemas import SCHEMAS, ref

PREFIX = "/api"
VERSION = "1.0.0"


@dataclass(frozen=True)
class Query:
    name: str
    description: str
    schema: dict = field(default_factory=lambda: {"type": "string"})


@dataclass(frozen=True)
class Route:
    """One method on one path: who handles it and what goes in and comes out (schema names)."""

    method: str
    path: str  # the Functions route template, without the `api/` prefix
    function: str  # the function's name in function_app.py
    handler: Callable[[Context, ApiRequest], ApiResponse]
    summary: str
    responses: dict[int, str]  # status -> schema name in schemas.SCHEMAS (errors are added for every route)
    request: str | None = None
    query: tuple[Query, ...] = ()
    tag: str = "models"


LIMIT = Query("limit", "page size (1-1000)", {"type": "integer", "minimum": 1, "maximum": 1000})
CONTINUATION = Query("continuation", "the token of the previous page's `next`")
STATUS = Query("status", "only runs in this status", {"enum": [s.value for s in Status]})


def openapi(ctx: Context, request: ApiRequest) -> ApiResponse:
    """GET /api/openapi.json: this API, described from the route table it runs on."""
    return ApiResponse(200, document())


ROUTES: tuple[Route, ...] = (
    Route("GET", "models", "list_models", api.list_models, "Every model (invalid stored rows included)",
          {200: "ModelList"}),
    Route("GET", "models/{model}", "model", api.model, "A model: definition and live state", {200: "Model"}),
    Route("PUT", "models/{model}", "model", api.model, "Register or redefine a model (live state is kept)",
          {200: "Model", 201: "Model"}, request="ModelDefinition"),
    Route("POST", "models/{model}/retrain", "retrain", api.retrain, "Start a run on a blob or the newest data",
          {200: "RetrainAccepted", 202: "RetrainAccepted"}, request="RetrainRequest", tag="runs"),
    Route("GET", "models/{model}/runs", "list_runs", api.list_runs, "Runs, newest first, one page at a time",
          {200: "RunPage"}, query=(LIMIT, STATUS, CONTINUATION), tag="runs"),
    Route("GET", "models/{model}/runs/{run}", "get_run", api.get_run, "One run", {200: "Run"}, tag="runs"),
    Route("POST", "models/{model}/runs/{run}/{action}", "run_action", api.run_action,
          "approve, reject, cancel, or retry a promotion's failed endpoints", {200: "Run"},
          request="RunActionRequest", tag="runs"),
    Route("GET", "models/{model}/promotions", "promotions", api.promotions, "Promotion history, newest first",
          {200: "PromotionPage"}, query=(LIMIT, CONTINUATION), tag="history"),
    Route("POST", "models/{model}/rollback", "rollback", api.rollback,
          "Point every endpoint back at an earlier model", {200: "RollbackResult"}, request="RollbackRequest",
          tag="history"),
    Route("GET", "models/{model}/audit", "audit", api.audit, "Who did what to the model, newest first",
          {200: "AuditPage"}, query=(LIMIT, CONTINUATION), tag="history"),
    Route("GET", "skipped", "skipped", api.skipped, "Blobs no model claimed, newest first", {200: "SkippedPage"},
          query=(LIMIT, CONTINUATION), tag="history"),
    Route("GET", "subscriptions", "list_subscriptions", api.list_subscriptions,
          "Webhook subscriptions, and the Event Grid sink when configured", {200: "SubscriptionList"}, tag="events"),
    Route("GET", "subscriptions/{name}", "subscription", api.subscription, "A webhook subscription",
          {200: "Subscription"}, tag="events"),
    Route("PUT", "subscriptions/{name}", "subscription", api.subscription,
          "Create or redefine a webhook subscription", {200: "Subscription", 201: "Subscription"},
          request="SubscriptionDefinition", tag="events"),
    Route("DELETE", "subscriptions/{name}", "subscription", api.subscription,
          "Remove a subscription (its deliveries stay)", {200: "Deleted"}, tag="events"),
    Route("POST", "subscriptions/{name}/test", "test_subscription", api.test_subscription,
          "Send a test event to one subscription", {202: "Delivery"}, tag="events"),
    Route("GET", "subscriptions/{name}/deliveries", "deliveries", api.deliveries,
          "A subscription's deliveries, newest first", {200: "DeliveryPage"}, query=(LIMIT, CONTINUATION),
          tag="events"),
    Route("POST", "subscriptions/{name}/deliveries/{delivery}/redeliver", "redeliver", api.redeliver,
          "Send one delivery again, with the same event id", {202: "Delivery"}, tag="events"),
    Route("GET", "openapi.json", "openapi_document", openapi, "This document", {200: "OpenApiDocument"},
          tag="meta"),
)

_ERRORS = {400: "the request is malformed; the message says what to fix", 401: "no usable caller identity",
           403: "the caller lacks the app role", 404: "no such model or run",
           409: "not possible in the run's or model's current state", 502: "an ML service refused",
           503: "storage did not answer; retry"}
_ACTIONS = ["approve", "reject", "cancel", "retry"]


def _path_params(route: Route) -> list[dict]:
    params = []
    for name in [part[1:-1] for part in route.path.split("/") if part.startswith("{")]:
        schema = {"enum": _ACTIONS} if name == "action" else {"type": "string"}
        params.append({"name": name, "in": "path", "required": True, "schema": schema})
    return params


def _operation(route: Route) -> dict:
    op: dict = {"operationId": f"{route.function}_{route.method.lower()}", "summary": route.summary,
                "tags": [route.tag], "responses": {}}
    params = _path_params(route) + [{"name": q.name, "in": "query", "required": False, "description": q.description,
                                     "schema": q.schema} for q in route.query]
    if params:
        op["parameters"] = params
    if route.request:
        op["requestBody"] = {"required": route.request == "ModelDefinition",
                             "content": {"application/json": {"schema": ref(route.request)}}}
    for status, schema in sorted(route.responses.items()):
        op["responses"][str(status)] = {"description": route.summary,
                                        "content": {"application/json": {"schema": ref(schema)}}}
    for status, text in _ERRORS.items():
        op["responses"].setdefault(str(status), {"description": text,
                                                 "content": {"application/json": {"schema": ref("Error")}}})
    return op


def document() -> dict:
    """OpenAPI 3.1: every route of the table, schemas from `schemas.SCHEMAS`, function-key security."""
    paths: dict[str, dict] = {}
    for route in ROUTES:
        paths.setdefault(f"{PREFIX}/{route.path}", {})[route.method.lower()] = _operation(route)
    return {
        "openapi": "3.1.0",
        "info": {"title": "retrain: keep a deployed model fresh", "version": VERSION,
                 "description": "The Functions app's HTTP API. Send a function key as `x-functions-key`; "
                                "behind App Service Authentication the signed-in caller is recorded."},
        "servers": [{"url": "/"}],
        "security": [{"functionKey": []}],
        "paths": paths,
        "components": {"schemas": SCHEMAS,
                       "securitySchemes": {"functionKey": {"type": "apiKey", "in": "header",
                                                           "name": "x-functions-key"}}},
    }
