"""The ARM `Microsoft.MachineLearning/webServices` subset: GET/PUT the definition (model swap is long-running) and scoring."""

from __future__ import annotations

import copy
import logging
import threading
import time
import uuid
from datetime import datetime, timezone
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from . import management, rrs
from .blobs import BlobRef
from .config import ArmWebService
from .context import Context, context
from .errors import ArmError, NotFound, ServiceError
from .web import bearer, json_body, own_url, require_api_version, require_key

log = logging.getLogger("emulators.studio.arm")

KIND, OPERATION = "arm", "arm-operation"
API_VERSIONS = ("2017-01-01", "2016-05-01-preview")
PROVIDER = "Microsoft.MachineLearning"
RESOURCE = ("/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.MachineLearning/webServices/{name}")
OPERATION_PATH = "/subscriptions/{sub}/providers/Microsoft.MachineLearning/locations/{location}/operationsStatus/{op}"

router = APIRouter()


def _key(svc: ArmWebService) -> str:
    return f"{svc.subscription}/{svc.resource_group.lower()}/{svc.name}"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


# --- state ------------------------------------------------------------------------------------

def seed(ctx: Context) -> None:
    """Create each configured ARM web service's definition on first boot."""
    if ctx.config.arm is None:
        return
    for svc in ctx.config.arm.web_services:
        if ctx.store.get(KIND, _key(svc)) is not None:
            continue
        model_id, uri = None, ""
        if svc.initial_model is not None:
            model_id, location = management.initial_model(ctx, svc.initial_model, svc.name)
            uri = location["BaseLocation"] + location["RelativeLocation"]
        ctx.store.put(KIND, _key(svc), {"definition": _initial_definition(ctx, svc, uri),
                                        "model_id": model_id, "pending": None})


def recover(ctx: Context) -> None:
    """A provisioning cut short by a restart ends Failed (its credentials were never persisted)."""
    for key, doc in ctx.store.all(KIND):
        if doc.get("pending"):
            op = doc["pending"]["operation"]
            error = {"code": "ServiceRestarted", "message": "The service restarted during provisioning; PUT again."}
            _settle(ctx, key, op, None, error)


def _initial_definition(ctx: Context, svc: ArmWebService, uri: str) -> dict:
    now = _now()
    return {
        "id": RESOURCE.format(sub=svc.subscription, rg=svc.resource_group, name=svc.name),
        "name": svc.name,
        "type": f"{PROVIDER}/webServices",
        "location": ctx.config.arm.location,
        "tags": {},
        "properties": {
            "title": svc.title or svc.name,
            "description": "",
            "createdOn": now,
            "modifiedOn": now,
            "provisioningState": "Succeeded",
            "readOnly": False,
            "exposeSampleData": False,
            "realtimeConfiguration": {"maxConcurrentCalls": 4},
            "diagnostics": {"level": "None"},
            "storageAccount": {"name": "emulatorstorage"},
            "packageType": "Graph",
            "assets": {
                "asset1": {"name": "Score Model", "type": "Module",
                           "locationInfo": {"uri": "aml://module/401b4f92e7244d5abe5b0a6f6f4d2b61"}},
                "asset2": {"name": svc.trained_model, "type": "Resource", "locationInfo": {"uri": uri},
                           "outputPorts": {"Results dataset": {"type": "Dataset"}}},
            },
            "input": {"title": svc.input, "type": "object", "properties": {svc.input: {"type": "object"}}},
            "output": {"title": svc.output, "type": "object", "properties": {svc.output: {"type": "object"}}},
            "package": {"nodes": {}, "edges": [], "graphParameters": {}},
        },
    }


def _strip(definition: dict) -> dict:
    """The definition without credentials or keys (what GET shows and what the store keeps)."""
    out = copy.deepcopy(definition)
    props = out.get("properties") or {}
    props.pop("keys", None)
    if isinstance(props.get("storageAccount"), dict):
        props["storageAccount"].pop("key", None)
    for asset in (props.get("assets") or {}).values():
        info = asset.get("locationInfo") if isinstance(asset, dict) else None
        if isinstance(info, dict):
            info.pop("credentials", None)
            if "uri" in info and isinstance(info["uri"], str):
                info["uri"] = info["uri"].split("?", 1)[0]
    return out


def _resource_asset(definition: dict, trained_model: str) -> dict | None:
    for asset in ((definition.get("properties") or {}).get("assets") or {}).values():
        if isinstance(asset, dict) and str(asset.get("type", "")).lower() == "resource" \
                and asset.get("name") == trained_model:
            return asset
    return None


# --- routes -----------------------------------------------------------------------------------

def _authorize(sub: str, rg: str, name: str, request: Request) -> tuple[Context, ArmWebService, dict]:
    ctx = context(request)
    token = bearer(request)
    if ctx.config.arm is None or token is None or token != ctx.config.arm.token:
        raise ArmError(401, "AuthenticationFailed", "Authentication failed: the bearer token is missing or not valid.")
    if request.query_params.get("api-version") not in API_VERSIONS:
        raise ArmError(400, "InvalidApiVersionParameter",
                       f"The api-version '{request.query_params.get('api-version')}' is invalid; "
                       f"supported: {', '.join(API_VERSIONS)}.")
    svc = ctx.config.arm_service(sub, rg, name)
    doc = ctx.store.get(KIND, _key(svc)) if svc else None
    if svc is None or doc is None:
        raise ArmError(404, "ResourceNotFound",
                       f"The Resource '{PROVIDER}/webServices/{name}' under resource group '{rg}' was not found.")
    return ctx, svc, doc


@router.get(RESOURCE, name="arm.get")
def get_web_service(found: tuple = Depends(_authorize)) -> dict:
    _, _, doc = found
    return _view(doc)


def _view(doc: dict) -> dict:
    return _strip(doc["pending"]["definition"] if doc.get("pending") else doc["definition"])


@router.put(RESOURCE, name="arm.put")
def put_web_service(sub: str, name: str, request: Request, found: tuple = Depends(_authorize),
                    body: Any = Depends(json_body)) -> JSONResponse:
    """Accept the definition; a changed trained-model uri is downloaded and validated in the background."""
    ctx, svc, doc = found
    if doc.get("pending"):
        raise ArmError(409, "AnotherOperationInProgress",
                       f"Web service '{name}' is still provisioning; wait until provisioningState settles.")
    asset = _resource_asset(body, svc.trained_model) if isinstance(body, dict) else None
    info = asset.get("locationInfo") if asset else None
    if not isinstance(info, dict) or not isinstance(info.get("uri"), str) or not info["uri"]:
        raise ArmError(400, "BadRequest",
                       f"properties.assets must hold the Resource asset '{svc.trained_model}' with locationInfo.uri.")
    current = _resource_asset(doc["definition"], svc.trained_model)["locationInfo"]["uri"]
    new_uri = info["uri"].split("?", 1)[0]
    source = None
    if new_uri != current:
        try:
            source = _source(info)
        except ValueError as e:
            raise ArmError(400, "BadRequest", f"The Resource asset's locationInfo cannot be used: {e}") from None
    definition = _accepted(body, doc["definition"])
    operation = uuid.uuid4().hex
    ctx.store.put(OPERATION, operation, {"status": "InProgress", "resource": _key(svc), "startTime": _now()})
    ctx.store.update(KIND, _key(svc), lambda d: {**d, "pending": {"definition": _strip(definition),
                                                                  "operation": operation}})
    threading.Thread(target=_provision, args=(ctx, _key(svc), operation, source), daemon=True,
                     name=f"arm-provision-{operation[:8]}").start()
    location = OPERATION_PATH.format(sub=sub, location=ctx.config.arm.location, op=operation)
    headers = {"Azure-AsyncOperation": f"{own_url(request)}{location}?api-version={request.query_params['api-version']}"}
    return JSONResponse(_strip(definition), status_code=200, headers=headers)


def _source(info: dict) -> BlobRef:
    """Where to download the model: the uri, with a SAS from its query or `credentials`, or a connection string."""
    uri = info["uri"]
    credentials = info.get("credentials") or ""
    if not isinstance(credentials, str):
        raise ValueError("credentials must be a string (a SAS query or a storage connection string)")
    if "accountkey=" in credentials.lower():
        ref = BlobRef.from_url(uri.split("?", 1)[0])
        return BlobRef(ref.base_location, ref.relative_location, connection_string=credentials)
    if credentials:
        return BlobRef.from_url(uri.split("?", 1)[0] + "?" + credentials.lstrip("?"))
    return BlobRef.from_url(uri)


def _accepted(body: dict, current: dict) -> dict:
    """The PUT definition with the server-owned fields kept and provisioningState Provisioning."""
    definition = copy.deepcopy(body)
    for field in ("id", "name", "type"):
        definition[field] = current[field]
    definition.setdefault("location", current.get("location"))
    props = definition.setdefault("properties", {})
    props["createdOn"] = current["properties"].get("createdOn")
    props["modifiedOn"] = _now()
    props["provisioningState"] = "Provisioning"
    return definition


def _provision(ctx: Context, key: str, operation: str, source: BlobRef | None) -> None:
    """Background: wait, then swap the model (or fail and keep the old one)."""
    try:
        time.sleep(ctx.config.arm.provisioning_seconds + ctx.faults.take_provisioning_delay())
        injected = ctx.faults.take_provisioning()
        if injected is not None:
            _settle(ctx, key, operation, None, {"code": "ProvisioningFailed", "message": injected})
            return
        model_id = None
        if source is not None:
            model_id = ctx.models.fetch(source, "trained model of the Resource asset")
        _settle(ctx, key, operation, model_id, None)
    except ServiceError as e:
        _settle(ctx, key, operation, None, {"code": e.detail_code, "message": e.message})
    except Exception as e:  # a bug: fail the operation, keep serving
        log.exception("provisioning %s failed", key)
        _settle(ctx, key, operation, None, {"code": "InternalError", "message": f"Provisioning failed: {e!r}"})


def _settle(ctx: Context, key: str, operation: str, model_id: str | None, error: dict | None) -> None:
    def apply(doc: dict) -> dict | None:
        pending = doc.get("pending")
        if not pending or pending["operation"] != operation:
            return None
        if error is None:
            definition = pending["definition"]
            definition["properties"]["provisioningState"] = "Succeeded"
            return {**doc, "definition": definition, "model_id": model_id or doc["model_id"], "pending": None}
        definition = copy.deepcopy(doc["definition"])
        definition["properties"]["provisioningState"] = "Failed"
        return {**doc, "definition": definition, "pending": None}

    ctx.store.update(KIND, key, apply)
    ctx.store.update(OPERATION, operation, lambda op: {
        **op, "status": "Failed" if error else "Succeeded", "endTime": _now(), **({"error": error} if error else {})})


@router.get(OPERATION_PATH, name="arm.operation")
def operation_status(sub: str, location: str, op: str, request: Request) -> dict:
    ctx = context(request)
    token = bearer(request)
    if ctx.config.arm is None or token != ctx.config.arm.token:
        raise ArmError(401, "AuthenticationFailed", "Authentication failed: the bearer token is missing or not valid.")
    doc = ctx.store.get(OPERATION, op)
    if doc is None:
        raise ArmError(404, "OperationNotFound", f"The operation '{op}' was not found.")
    out = {"id": OPERATION_PATH.format(sub=sub, location=location, op=op), "name": op, "status": doc["status"],
           "startTime": doc["startTime"], "percentComplete": 0.0 if doc["status"] == "InProgress" else 1.0}
    if doc.get("endTime"):
        out["endTime"] = doc["endTime"]
    if doc.get("error"):
        out["error"] = doc["error"]
    return out


@router.post(RESOURCE + "/listKeys", name="arm.listkeys")
def list_keys(found: tuple = Depends(_authorize)) -> dict:
    _, svc, _ = found
    return {"primary": svc.api_key, "secondary": None}


# --- scoring: POST /subscriptions/{sub}/services/{name}/execute?api-version=2.0 ---------------

def _find(sub: str, name: str, request: Request) -> tuple[Context, ArmWebService, dict]:
    ctx = context(request)
    svc = next((s for s in (ctx.config.arm.web_services if ctx.config.arm else [])
                if s.subscription == sub and s.name == name), None)
    doc = ctx.store.get(KIND, _key(svc)) if svc else None
    if svc is None or doc is None:
        raise NotFound("WebServiceNotFound", f"The web service '{name}' does not exist in subscription '{sub}'.")
    return ctx, svc, doc


def _scoring(sub: str, name: str, request: Request) -> tuple[Context, ArmWebService, dict]:
    """Dependency: the web service's api key opens scoring."""
    ctx, svc, doc = _find(sub, name, request)
    require_key(request, svc.api_key)
    return ctx, svc, doc


@router.post("/subscriptions/{sub}/services/{name}/execute", name="arm.execute")
def execute(request: Request, found: tuple = Depends(_scoring), body: Any = Depends(json_body)) -> dict:
    ctx, svc, doc = found
    require_api_version(request, rrs.API_VERSION)
    return rrs.score(ctx, doc["model_id"], svc.input, svc.output, body, request)


@router.get("/subscriptions/{sub}/services/{name}/swagger.json", name="arm.swagger")
def swagger(sub: str, name: str, request: Request) -> dict:
    ctx, svc, doc = _find(sub, name, request)
    return rrs.swagger_document(ctx, doc["model_id"], svc.input, svc.output, title=svc.title or svc.name,
                                host_url=own_url(request), base_path=f"/subscriptions/{sub}/services/{name}")
