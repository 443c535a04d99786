"""Online and batch endpoints and their deployments: PUT/GET/list/DELETE as long-running operations.

A PUT answers 201 (create) or 200 (update) with `Azure-AsyncOperation` and `Retry-After`; the entity
stays Creating/Updating for `provisioning_seconds`, then becomes Succeeded (an online deployment only
once its scoring workers loaded the model) or Failed. Another operation meanwhile answers 409.
"""

from __future__ import annotations

import math
import re
import secrets
import threading
import time
import uuid

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response

from .assets import asset_version, parse_asset_ref, ws_of
from .context import Context, context
from .errors import BadRequest, Conflict, NotFound
from .web import WS, json_object, now_iso, own_url, page, require_token, resource, section

router = APIRouter(dependencies=[Depends(require_token)])
ENDPOINT_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9-]{1,30}[A-Za-z0-9]$")
DEPLOYMENT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,30}[A-Za-z0-9]?$")
BUSY = ("Creating", "Updating", "Deleting", "Scaling")
MAX_DEPLOYMENTS = 20
MAX_MIRROR = 50
MAX_CAPACITY = 50
KIND = {"online": ("onlineEndpoints", "online.dep"), "batch": ("batchEndpoints", "batch.dep")}
AUTH_MODES = {"key": "Key", "amltoken": "AMLToken", "aadtoken": "AADToken"}
_settle_lock = threading.RLock()


def ep_key(w, name: str) -> str:
    return f"{w.arm_id}/{name}"


def public(doc: dict) -> dict:
    return {k: v for k, v in doc.items() if not k.startswith("_")}


def _find(ctx: Context, kind: str, key: str, what: str) -> dict:
    settle(ctx)
    doc = ctx.store.get(kind, key)
    if doc is None:
        raise NotFound(f"The {what} does not exist.", code="ResourceNotFound")
    return doc


def _busy(doc: dict, what: str) -> None:
    state = doc["properties"].get("provisioningState")
    if state in BUSY:
        raise Conflict(f"Conflict of operation: {what} is in {state} provisioning state; another operation on "
                       "the same entity is already running. Retry when it has finished.",
                       code="Conflict", headers={"Retry-After": "1"})


# --- long-running operations -------------------------------------------------------------

def _start_operation(ctx: Context, request: Request, w, kind: str, key: str, action: str,
                     fail: str | None = None) -> dict[str, str]:
    """Record an InProgress operation on (kind, key); the headers that tell the client where to poll."""
    op_id = uuid.uuid4().hex
    seconds = ctx.config.provisioning_seconds + ctx.faults.take_provisioning_delay()
    ctx.store.put("op", op_id, {"status": "InProgress", "kind": kind, "key": key, "action": action,
                                "until": time.time() + seconds, "fail": fail, "ws": w.arm_id,
                                "startTime": now_iso()})
    with _settle_lock:
        _pending(ctx).add(op_id)
    base = own_url(request)
    url = (f"{base}/subscriptions/{w.subscription}/providers/Microsoft.MachineLearningServices/locations/"
           f"{w.location}/mfeOperationsStatus/{op_id}?api-version=2023-04-01-preview")
    return {"Azure-AsyncOperation": url, "Retry-After": str(max(0, math.ceil(seconds))),
            "x-ms-async-operation-timeout": "PT1H",
            "Location": url.replace("mfeOperationsStatus", "mfeOperationResults")}


def _pending(ctx: Context) -> set[str]:
    """Ids of operations in progress (read from the store once, then kept in memory)."""
    if ctx.pending_operations is None:
        ctx.pending_operations = {i for i, op in ctx.store.all("op") if op["status"] == "InProgress"}
    return ctx.pending_operations


def settle(ctx: Context) -> None:
    """Finish every operation whose provisioning time is over (called on reads and by the ticker)."""
    now = time.time()
    with _settle_lock:
        for op_id in sorted(_pending(ctx)):
            op = ctx.store.get("op", op_id)
            if op is None or op["status"] != "InProgress":
                _pending(ctx).discard(op_id)
            elif op["until"] <= now:
                _finish(ctx, op_id, op)
                _pending(ctx).discard(op_id)


def _finish(ctx: Context, op_id: str, op: dict) -> None:
    doc = ctx.store.get(op["kind"], op["key"])
    error = None
    if doc is None:
        status = "Succeeded" if op["action"] == "delete" else "Failed"
        error = None if status == "Succeeded" else "The entity disappeared while provisioning."
    elif op["action"] == "delete":
        if op["kind"] in ("online", "batch"):
            for dep_key, _ in _deployments(ctx, op["kind"], op["key"]):
                ctx.serving.stop(dep_key)
                ctx.store.delete(KIND[op["kind"]][1], dep_key)
        ctx.serving.stop(op["key"])
        ctx.store.delete(op["kind"], op["key"])
        status = "Succeeded"
    else:
        error = op.get("fail")
        if error is None and op["kind"] == "online.dep":
            error = ctx.serving.start(op["key"], doc)
        if error is None and op["kind"] == "batch.dep":
            error = _check_batch_model(ctx, doc)
        status = "Failed" if error else "Succeeded"

        def change(d: dict) -> dict:
            d["properties"]["provisioningState"] = status
            if error:
                d["_error"] = error
            else:
                d.pop("_error", None)
            return d
        ctx.store.update(op["kind"], op["key"], change)
    op.update({"status": status, "endTime": now_iso(),
               "error": {"code": "DeploymentFailed", "message": error} if error else None})
    ctx.store.put("op", op_id, op)


def _check_batch_model(ctx: Context, doc: dict) -> str | None:
    from .serving import model_of
    try:
        model_of(ctx, doc)
    except (BadRequest, NotFound) as e:
        return e.message
    return None


@router.get("/subscriptions/{sub}/providers/Microsoft.MachineLearningServices/locations/{loc}/mfeOperationsStatus/{op}",
            name="operations.status")
def operation_status(sub: str, loc: str, op: str, ctx: Context = Depends(context)) -> dict:
    settle(ctx)
    found = ctx.store.get("op", op)
    if found is None:
        raise NotFound(f"The operation '{op}' does not exist.")
    body = {"id": op, "name": op, "status": found["status"], "startTime": found["startTime"]}
    if found.get("endTime"):
        body["endTime"] = found["endTime"]
    if found.get("error"):
        body["error"] = found["error"]
    return body


@router.get("/subscriptions/{sub}/providers/Microsoft.MachineLearningServices/locations/{loc}/mfeOperationResults/{op}",
            name="operations.result")
def operation_result(sub: str, loc: str, op: str, ctx: Context = Depends(context)) -> Response:
    settle(ctx)
    found = ctx.store.get("op", op)
    if found is None:
        raise NotFound(f"The operation '{op}' does not exist.")
    if found["status"] == "InProgress":
        return Response(status_code=202, headers={"Retry-After": "1"})
    return Response(status_code=200 if found["status"] == "Succeeded" else 400)


# --- endpoints ---------------------------------------------------------------------------

def _deployments(ctx: Context, kind: str, endpoint_key: str) -> list[tuple[str, dict]]:
    return [(k, d) for k, d in ctx.store.all(KIND[kind][1]) if k.startswith(endpoint_key + "/")]


def _check_traffic(ctx: Context, endpoint_key: str, traffic: dict, mirror: dict) -> None:
    """Traffic adds up to 100 (or is empty), mirror goes to one non-live deployment at most 50%."""
    names = {d["name"] for _, d in _deployments(ctx, "online", endpoint_key)}
    for label, table in (("traffic", traffic), ("mirrorTraffic", mirror)):
        if not isinstance(table, dict):
            raise BadRequest(f"properties.{label} must be an object of deployment name -> percent.",
                             code="InvalidTraffic")
        for dep, value in table.items():
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 100:
                raise BadRequest(f"{label}['{dep}'] must be an integer percent between 0 and 100.",
                                 code="InvalidTraffic")
            if dep not in names and value:
                raise BadRequest(f"{label} names deployment '{dep}', which does not exist on this endpoint.",
                                 code="InvalidTraffic")
    total = sum(traffic.values())
    if total not in (0, 100):
        raise BadRequest(f"Traffic must add up to 100 (or 0 with no live deployment); it adds up to {total}.",
                         code="InvalidTrafficSum")
    mirrored = {d: v for d, v in mirror.items() if v}
    if len(mirrored) > 1:
        raise BadRequest("Mirror traffic can go to one deployment only.", code="InvalidMirrorTraffic")
    for dep, value in mirrored.items():
        if value > MAX_MIRROR:
            raise BadRequest(f"Mirror traffic is at most {MAX_MIRROR}%; '{dep}' has {value}%.",
                             code="InvalidMirrorTraffic")
        if traffic.get(dep):
            raise BadRequest(f"Deployment '{dep}' cannot take live and mirror traffic at once.",
                             code="InvalidMirrorTraffic")


def _put_endpoint(kind: str):
    arm_kind = KIND[kind][0]

    async def put_endpoint(sub: str, rg: str, ws: str, name: str, request: Request,
                           ctx: Context = Depends(context)) -> JSONResponse:
        w = ws_of(ctx, sub, rg, ws)
        if not ENDPOINT_NAME.match(name):
            raise BadRequest(f"'{name}' is not a valid endpoint name: 3-32 characters, letters, digits and "
                             "hyphens, starting with a letter.", code="InvalidEndpointName")
        body = await json_object(request)
        props = dict(section(body, "properties"))
        settle(ctx)
        key = ep_key(w, name)
        old = ctx.store.get(kind, key)
        if old is not None:
            _busy(old, f"endpoint '{name}'")
        elif any(d["name"] == name for k, d in ctx.store.all(kind) if k != key):
            raise Conflict(f"The endpoint name '{name}' is already in use in this region.", code="Conflict")
        base = own_url(request)
        auth = props.get("authMode") or (old["properties"]["authMode"] if old else
                                         ("Key" if kind == "online" else "AADToken"))
        auth = AUTH_MODES.get(str(auth).lower(), auth)
        if auth not in AUTH_MODES.values():
            raise BadRequest(f"authMode '{auth}' is not one of Key, AMLToken, AADToken.", code="InvalidAuthMode")
        new = {"authMode": auth, "description": props.get("description"), "properties": props.get("properties") or {},
               "provisioningState": "Updating" if old else "Creating"}
        if kind == "online":
            traffic = {k: v for k, v in (props.get("traffic") or {}).items() if v != 0} \
                if isinstance(props.get("traffic") or {}, dict) else props.get("traffic")
            mirror = props.get("mirrorTraffic") or {}
            _check_traffic(ctx, key, traffic, mirror)
            new.update({"traffic": traffic, "mirrorTraffic": {k: v for k, v in mirror.items() if v},
                        "scoringUri": f"{base}/inference/{name}/score",
                        "swaggerUri": f"{base}/inference/{name}/swagger.json",
                        "publicNetworkAccess": props.get("publicNetworkAccess") or "Enabled",
                        "compute": None})
        else:
            defaults = section(props, "defaults")
            dep = defaults.get("deploymentName")
            if dep and dep not in {d["name"] for _, d in _deployments(ctx, "batch", key)}:
                raise BadRequest(f"defaults.deploymentName '{dep}' is not a deployment of this endpoint.",
                                 code="InvalidDefaultDeployment")
            new.update({"defaults": {"deploymentName": dep}, "scoringUri": f"{base}/batch/{name}/jobs",
                        "swaggerUri": None})
        doc = resource(f"{w.arm_id}/{arm_kind}/{name}", name, arm_kind, new,
                       created=old["systemData"]["createdAt"] if old else now_iso(), modified=now_iso(),
                       location=body.get("location") or w.location, tags=body.get("tags") or {},
                       identity=body.get("identity") or {"type": "SystemAssigned", "principalId": str(uuid.uuid4()),
                                                         "tenantId": str(uuid.uuid4())},
                       kind=body.get("kind") or "Managed")
        doc["_keys"] = old["_keys"] if old else [secrets.token_urlsafe(24), secrets.token_urlsafe(24)]
        doc["_ws"] = w.arm_id
        ctx.store.put(kind, key, doc)
        headers = _start_operation(ctx, request, w, kind, key, "update" if old else "create",
                                   ctx.faults.take_provisioning())
        return JSONResponse(public(doc), status_code=200 if old else 201, headers=headers)

    router.add_api_route(WS + f"/{arm_kind}/{{name}}", put_endpoint, methods=["PUT"], name=f"{kind}.endpoints.put")

    def get_endpoint(sub: str, rg: str, ws: str, name: str, ctx: Context = Depends(context)) -> dict:
        w = ws_of(ctx, sub, rg, ws)
        return public(_find(ctx, kind, ep_key(w, name), f"endpoint '{name}'"))

    router.add_api_route(WS + f"/{arm_kind}/{{name}}", get_endpoint, methods=["GET"], name=f"{kind}.endpoints.get")

    def list_endpoints(sub: str, rg: str, ws: str, ctx: Context = Depends(context)) -> dict:
        w = ws_of(ctx, sub, rg, ws)
        settle(ctx)
        return page([public(d) for k, d in ctx.store.all(kind) if k.startswith(w.arm_id + "/")])

    router.add_api_route(WS + f"/{arm_kind}", list_endpoints, methods=["GET"], name=f"{kind}.endpoints.list")

    def delete_endpoint(sub: str, rg: str, ws: str, name: str, request: Request,
                        ctx: Context = Depends(context)) -> Response:
        w = ws_of(ctx, sub, rg, ws)
        key = ep_key(w, name)
        settle(ctx)
        doc = ctx.store.get(kind, key)
        if doc is None:
            return Response(status_code=204)
        _busy(doc, f"endpoint '{name}'")
        ctx.store.update(kind, key, lambda d: {**d, "properties": {**d["properties"], "provisioningState": "Deleting"}})
        return Response(status_code=202, headers=_start_operation(ctx, request, w, kind, key, "delete"))

    router.add_api_route(WS + f"/{arm_kind}/{{name}}", delete_endpoint, methods=["DELETE"],
                         name=f"{kind}.endpoints.delete")

    def list_keys(sub: str, rg: str, ws: str, name: str, ctx: Context = Depends(context)) -> dict:
        w = ws_of(ctx, sub, rg, ws)
        doc = _find(ctx, kind, ep_key(w, name), f"endpoint '{name}'")
        return {"primaryKey": doc["_keys"][0], "secondaryKey": doc["_keys"][1]}

    for path in ("listKeys", "listkeys"):
        router.add_api_route(WS + f"/{arm_kind}/{{name}}/{path}", list_keys, methods=["POST"],
                             name=f"{kind}.endpoints.{path}")

    # --- deployments -----------------------------------------------------------------

    dep_kind = KIND[kind][1]

    async def put_deployment(sub: str, rg: str, ws: str, name: str, dep: str, request: Request,
                             ctx: Context = Depends(context)) -> JSONResponse:
        w = ws_of(ctx, sub, rg, ws)
        if not DEPLOYMENT_NAME.match(dep):
            raise BadRequest(f"'{dep}' is not a valid deployment name.", code="InvalidDeploymentName")
        body = await json_object(request)
        endpoint = _find(ctx, kind, ep_key(w, name), f"endpoint '{name}'")
        _busy(endpoint, f"endpoint '{name}'")
        key = f"{ep_key(w, name)}/{dep}"
        old = ctx.store.get(dep_kind, key)
        if old is not None:
            _busy(old, f"deployment '{dep}'")
        elif len(_deployments(ctx, kind, ep_key(w, name))) >= MAX_DEPLOYMENTS:
            raise BadRequest(f"An endpoint has at most {MAX_DEPLOYMENTS} deployments.", code="TooManyDeployments")
        props = dict(section(body, "properties"))
        sku = dict(section(body, "sku"))
        if kind == "online":
            capacity = sku.get("capacity", 1)
            if isinstance(capacity, bool) or not isinstance(capacity, int) or not 1 <= capacity <= MAX_CAPACITY:
                raise BadRequest(f"sku.capacity must be an instance count between 1 and {MAX_CAPACITY}.",
                                 code="InvalidInstanceCount")
            sku = {"name": sku.get("name") or "Default", "tier": sku.get("tier") or "Standard", "capacity": capacity}
            model = props.get("model")
            if not isinstance(model, str) or not model:
                raise BadRequest("properties.model must name a registered model (ARM id or azureml:name:version).",
                                 code="InvalidModel")
        else:
            model = section(props, "model").get("assetId")
            if not isinstance(model, str):
                raise BadRequest("properties.model.assetId must name a registered model.", code="InvalidModel")
        model_name, version = parse_asset_ref(model, "models")
        asset_version(ctx, w, "models", model_name, version)
        code = props.get("codeConfiguration")
        if code is not None:
            if not isinstance(code, dict) or not isinstance(code.get("scoringScript"), str):
                raise BadRequest("codeConfiguration needs codeId and scoringScript.", code="InvalidCodeConfiguration")
            ctx.runner.code_folder(w, code.get("codeId"))
        props.update({"provisioningState": "Updating" if old else "Creating",
                      "endpointComputeType": props.get("endpointComputeType") or "Managed",
                      "environmentVariables": props.get("environmentVariables") or {},
                      "properties": props.get("properties") or {}, "description": props.get("description")})
        if kind == "online":
            props.setdefault("instanceType", "Standard_DS3_v2")
            props.setdefault("appInsightsEnabled", False)
            props.setdefault("scaleSettings", {"scaleType": "Default"})
            props.setdefault("requestSettings", {"maxConcurrentRequestsPerInstance": 1,
                                                 "requestTimeout": "PT5S", "maxQueueWait": "PT0.5S"})
            for probe in ("livenessProbe", "readinessProbe"):
                props.setdefault(probe, {"failureThreshold": 30, "successThreshold": 1, "timeout": "PT2S",
                                         "period": "PT10S", "initialDelay": "PT10S"})
            props.setdefault("egressPublicNetworkAccess", "Enabled")
        else:
            props.setdefault("compute", None)
            props.setdefault("resources", {"instanceCount": 1, "properties": {}})
            props.setdefault("miniBatchSize", 10)
            props.setdefault("outputAction", "AppendRow")
            props.setdefault("outputFileName", "predictions.csv")
            props.setdefault("retrySettings", {"maxRetries": 3, "timeout": "PT30S"})
            props.setdefault("errorThreshold", -1)
            props.setdefault("loggingLevel", "Info")
            props.setdefault("maxConcurrencyPerInstance", 1)
        arm_id = f"{w.arm_id}/{arm_kind}/{name}/deployments/{dep}"
        doc = resource(arm_id, dep, f"{arm_kind}/deployments", props,
                       created=old["systemData"]["createdAt"] if old else now_iso(), modified=now_iso(),
                       location=body.get("location") or w.location, tags=body.get("tags") or {},
                       sku=sku, kind=body.get("kind") or "Managed", identity=body.get("identity"))
        doc["_ws"] = w.arm_id
        ctx.store.put(dep_kind, key, doc)
        headers = _start_operation(ctx, request, w, dep_kind, key, "update" if old else "create",
                                   ctx.faults.take_provisioning())
        return JSONResponse(public(doc), status_code=200 if old else 201, headers=headers)

    base = WS + f"/{arm_kind}/{{name}}/deployments"
    router.add_api_route(base + "/{dep}", put_deployment, methods=["PUT"], name=f"{kind}.deployments.put")

    def get_deployment(sub: str, rg: str, ws: str, name: str, dep: str, ctx: Context = Depends(context)) -> dict:
        w = ws_of(ctx, sub, rg, ws)
        _find(ctx, kind, ep_key(w, name), f"endpoint '{name}'")
        return public(_find(ctx, dep_kind, f"{ep_key(w, name)}/{dep}", f"deployment '{dep}' of endpoint '{name}'"))

    router.add_api_route(base + "/{dep}", get_deployment, methods=["GET"], name=f"{kind}.deployments.get")

    def list_deployments(sub: str, rg: str, ws: str, name: str, ctx: Context = Depends(context)) -> dict:
        w = ws_of(ctx, sub, rg, ws)
        _find(ctx, kind, ep_key(w, name), f"endpoint '{name}'")
        return page([public(d) for _, d in _deployments(ctx, kind, ep_key(w, name))])

    router.add_api_route(base, list_deployments, methods=["GET"], name=f"{kind}.deployments.list")

    def delete_deployment(sub: str, rg: str, ws: str, name: str, dep: str, request: Request,
                          ctx: Context = Depends(context)) -> Response:
        w = ws_of(ctx, sub, rg, ws)
        endpoint = _find(ctx, kind, ep_key(w, name), f"endpoint '{name}'")
        key = f"{ep_key(w, name)}/{dep}"
        doc = ctx.store.get(dep_kind, key)
        if doc is None:
            return Response(status_code=204)
        _busy(doc, f"deployment '{dep}'")
        props = endpoint["properties"]
        if (props.get("traffic") or {}).get(dep) or (props.get("mirrorTraffic") or {}).get(dep) \
                or (props.get("defaults") or {}).get("deploymentName") == dep:
            raise BadRequest(f"Deployment '{dep}' still takes traffic (or is the default); move it away first.",
                             code="DeploymentInUse")
        ctx.store.update(dep_kind, key,
                         lambda d: {**d, "properties": {**d["properties"], "provisioningState": "Deleting"}})
        return Response(status_code=202, headers=_start_operation(ctx, request, w, dep_kind, key, "delete"))

    router.add_api_route(base + "/{dep}", delete_deployment, methods=["DELETE"], name=f"{kind}.deployments.delete")


_put_endpoint("online")
_put_endpoint("batch")


@router.post(WS + "/onlineEndpoints/{name}/token", name="online.endpoints.token")
def get_token(sub: str, rg: str, ws: str, name: str, ctx: Context = Depends(context)) -> dict:
    w = ws_of(ctx, sub, rg, ws)
    doc = _find(ctx, "online", ep_key(w, name), f"endpoint '{name}'")
    if doc["properties"]["authMode"] != "AMLToken":
        raise BadRequest(f"Endpoint '{name}' uses authMode {doc['properties']['authMode']}; tokens are for AMLToken.",
                         code="InvalidAuthMode")
    token, expires = secrets.token_urlsafe(32), int(time.time()) + 3600
    ctx.store.put("token", f"{ep_key(w, name)}/{token}", {"expires": expires})
    return {"accessToken": token, "tokenType": "Bearer", "expiryTimeUtc": expires,
            "refreshAfterTimeUtc": expires - 1800}
