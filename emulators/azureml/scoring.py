"""Scoring at an online endpoint's `scoringUri`: key/token auth, the deployment header, traffic and mirror."""

from __future__ import annotations

import random
import threading
import time

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from .context import Context, context
from .endpoints import settle
from .errors import ArmError, NotFound, Unauthorized
from .serving import ScoringError
from .web import bearer, same

router = APIRouter()
HEADER = "azureml-model-deployment"
_random = random.Random()


class ScoreError(ArmError):
    """A scoring failure with the status the inference server answers."""

    def __init__(self, status: int, message: str, code: str):
        self.status = status
        super().__init__(message, code=code)


def _endpoint(ctx: Context, name: str) -> tuple[str, dict]:
    settle(ctx)
    for key, doc in ctx.store.all("online"):
        if doc["name"] == name:
            return key, doc
    raise NotFound(f"The endpoint '{name}' does not exist.", code="EndpointNotFound")


def _authorise(ctx: Context, key: str, doc: dict, request: Request) -> None:
    token, mode = bearer(request), doc["properties"]["authMode"]
    if mode == "Key" and any(same(k, token) for k in doc["_keys"]):
        return
    if mode == "AMLToken" and token:
        issued = ctx.store.get("token", f"{key}/{token}")
        if issued and issued["expires"] > time.time():
            return
    if mode == "AADToken" and same(ctx.config.token, token):
        return
    raise Unauthorized(f"The request is not authorised for endpoint '{doc['name']}' (authMode {mode}).",
                       code="Unauthorized")


def _pick(traffic: dict) -> str | None:
    live = [(d, v) for d, v in traffic.items() if v > 0]
    if not live:
        return None
    point = _random.uniform(0, sum(v for _, v in live))
    for dep, weight in live:
        point -= weight
        if point <= 0:
            return dep
    return live[-1][0]


def _deployment(ctx: Context, endpoint_key: str, name: str) -> tuple[str, dict]:
    key = f"{endpoint_key}/{name}"
    doc = ctx.store.get("online.dep", key)
    if doc is None:
        raise ScoreError(404, f"The deployment '{name}' does not exist on this endpoint.", "DeploymentNotFound")
    if doc["properties"]["provisioningState"] != "Succeeded":
        raise ScoreError(424, f"The deployment '{name}' is {doc['properties']['provisioningState']}, not ready "
                              "to serve.", "DeploymentNotReady")
    return key, doc


@router.post("/inference/{name}/score", name="online.score")
async def score(name: str, request: Request, ctx: Context = Depends(context)) -> JSONResponse:
    endpoint_key, endpoint = _endpoint(ctx, name)
    _authorise(ctx, endpoint_key, endpoint, request)
    body = await request.body()
    wanted = request.headers.get(HEADER)
    props = endpoint["properties"]
    dep = wanted or _pick(props.get("traffic") or {})
    if dep is None:
        raise ScoreError(424, f"The endpoint '{name}' has no deployment taking traffic; name one with the "
                              f"'{HEADER}' header or set traffic.", "NoTrafficAllocated")
    try:
        key, doc = _deployment(ctx, endpoint_key, dep)
    except ScoreError as e:
        ctx.serving.requests.record(name, dep, e.status)
        raise
    if not wanted:
        for mirror, percent in (props.get("mirrorTraffic") or {}).items():
            if _random.uniform(0, 100) < percent:
                threading.Thread(target=_mirror, args=(ctx, endpoint_key, name, mirror, body), daemon=True).start()
    try:
        result = ctx.serving.instance(key, doc).call(body)
    except ScoringError as e:
        ctx.serving.requests.record(name, dep, e.status)
        raise ScoreError(e.status, str(e), "ScoringFailed") from None
    ctx.serving.counts[f"{name}/{dep} served"] += 1
    ctx.serving.requests.record(name, dep, 200)
    return JSONResponse(result, headers={HEADER: dep})


def _mirror(ctx: Context, endpoint_key: str, name: str, dep: str, body: bytes) -> None:
    """A copy of the request to the mirror deployment; counted, its answer dropped."""
    try:
        key, doc = _deployment(ctx, endpoint_key, dep)
        ctx.serving.instance(key, doc).call(body)
        ctx.serving.counts[f"{name}/{dep} mirrored"] += 1
        ctx.serving.requests.record(name, dep, 200)
    except (ArmError, ScoringError) as e:
        ctx.serving.counts[f"{name}/{dep} mirror_failed"] += 1
        ctx.serving.requests.record(name, dep, getattr(e, "status", 500))


@router.get("/_debug/endpoints/{name}", name="debug.endpoint")
def endpoint_counts(name: str, ctx: Context = Depends(context)) -> dict:
    """Requests served and mirrored per deployment (no credentials shown)."""
    _endpoint(ctx, name)
    prefix = f"{name}/"
    counts: dict[str, dict[str, int]] = {}
    for label, n in ctx.serving.counts.items():
        if label.startswith(prefix):
            dep, what = label[len(prefix):].rsplit(" ", 1)
            counts.setdefault(dep, {})[what] = n
    return {"endpoint": name, "deployments": counts}
