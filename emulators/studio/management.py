"""Classic endpoint management (`/workspaces/{ws}/webservices/{svc}/endpoints`): list, get, add, patch the model, refresh, delete."""

from __future__ import annotations

import re
import secrets
import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse

from .blobs import parse_reference
from .config import PredictiveService, TrainingService
from .context import Context, context
from .errors import BadArgument, ConfigError, InvalidOperation, NotFound
from .web import json_body, own_url, require_key

KIND = "endpoint"
DEFAULT = "default"
_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,22}[a-z0-9])?$")
THROTTLE_LEVELS = ("Low", "High")
BASE = "/workspaces/{ws}/webservices/{svc}/endpoints"

router = APIRouter()


@dataclass
class Endpoint:
    """One endpoint of a web service: its keys, scoring id and the model it serves (our own copy)."""

    workspace: str
    service: str
    name: str
    api_id: str  # the `{svc}` of its scoring URL: the web service id for "default", a fresh id otherwise
    primary_key: str
    secondary_key: str
    created: str
    description: str = ""
    throttle_level: str = "Low"
    max_concurrent_calls: int = 4
    version: int = 1
    model_id: str | None = None
    location: dict | None = None  # {"BaseLocation", "RelativeLocation"} as patched, never the SAS
    extra: dict = field(default_factory=dict)

    @property
    def key(self) -> str:
        return key(self.workspace, self.service, self.name)

    def to_wire(self, base_url: str, service: PredictiveService | TrainingService) -> dict:
        resources = []
        if isinstance(service, PredictiveService):
            resources = [{"Name": service.trained_model, "Kind": "TrainedModel",
                          "Location": dict(self.location) if self.location else None}]
        return {
            "Name": self.name,
            "Description": self.description,
            "CreationTime": self.created,
            "WorkspaceId": self.workspace,
            "WebServiceId": self.service,
            "HelpLocation": f"{base_url}/workspaces/{self.workspace}/webservices/{self.service}/endpoints/{self.name}/help",
            "PrimaryKey": self.primary_key,
            "SecondaryKey": self.secondary_key,
            "ApiLocation": f"{base_url}/workspaces/{self.workspace}/services/{self.api_id}",
            "Version": self.version,
            "MaxConcurrentCalls": self.max_concurrent_calls,
            "ThrottleLevel": self.throttle_level,
            "DiagnosticsTraceLevel": "None",
            "PreventUpdate": self.name == DEFAULT,
            "Resources": resources,
        }


def key(ws: str, svc: str, name: str) -> str:
    return f"{ws}/{svc}/{name}"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# --- state ------------------------------------------------------------------------------------

def seed(ctx: Context) -> None:
    """Create each web service's default endpoint on first boot (predictive ones serve `initial_model`)."""
    for ws in ctx.config.workspaces:
        for svc in [*ws.training_services, *ws.predictive_services]:
            if ctx.store.get(KIND, key(ws.id, svc.id, DEFAULT)) is not None:
                continue
            endpoint = Endpoint(workspace=ws.id, service=svc.id, name=DEFAULT, api_id=svc.id,
                                primary_key=svc.api_key,
                                secondary_key=getattr(svc, "secondary_key", None) or secrets.token_urlsafe(48),
                                created=_now(), description=svc.name or svc.id)
            if isinstance(svc, PredictiveService) and svc.initial_model is not None:
                endpoint.model_id, endpoint.location = initial_model(ctx, svc.initial_model, svc.id)
            ctx.store.put(KIND, endpoint.key, asdict(endpoint))


def initial_model(ctx: Context, path, owner: str) -> tuple[str, dict]:
    """Keep a configured model file; its Location is reported as a file:// URL."""
    from emulators.training import training

    try:
        model_id = ctx.models.add(path.read_bytes())
    except (OSError, training.InvalidModelFile) as e:
        raise ConfigError(f"initial_model of {owner!r} ({path}) cannot be used: {e}") from None
    return model_id, {"BaseLocation": "file:///", "RelativeLocation": str(path).lstrip("/")}


def load(ctx: Context, ws: str, svc: str, name: str) -> Endpoint | None:
    body = ctx.store.get(KIND, key(ws, svc, name))
    return Endpoint(**body) if body else None


def endpoints_of(ctx: Context, ws: str, svc: str) -> list[Endpoint]:
    prefix = key(ws, svc, "")
    return [Endpoint(**body) for k, body in ctx.store.all(KIND) if k.startswith(prefix)]


def by_api_id(ctx: Context, ws: str, api_id: str) -> Endpoint | None:
    """The endpoint whose scoring URL is `/workspaces/{ws}/services/{api_id}`."""
    for k, body in ctx.store.all(KIND):
        if body["workspace"] == ws and body["api_id"] == api_id:
            return Endpoint(**body)
    return None


# --- routes -----------------------------------------------------------------------------------

def _authorize(request: Request, ws: str, svc: str, name: str | None) -> tuple[Context, Any, Endpoint | None]:
    """404 for the workspace/service, then 401 unless the workspace token or the endpoint's own key."""
    ctx = context(request)
    workspace = ctx.workspace(ws)
    service = ctx.web_service(ws, svc)
    endpoint = load(ctx, ws, svc, name) if name else None
    keys = [workspace.token] + ([endpoint.primary_key, endpoint.secondary_key] if endpoint else [])
    require_key(request, *keys, detail_code="InvalidCredentials")
    return ctx, service, endpoint


def _service_auth(ws: str, svc: str, request: Request) -> tuple[Context, Any, None]:
    """Dependency for calls on the whole service (list): the workspace token only."""
    return _authorize(request, ws, svc, None)


def _endpoint_auth(ws: str, svc: str, ep: str, request: Request) -> tuple[Context, Any, Endpoint | None]:
    """Dependency for calls on one endpoint, resolved before the body is parsed."""
    return _authorize(request, ws, svc, ep)


def _missing(ws: str, svc: str, name: str) -> NotFound:
    return NotFound("EndpointNotFound", f"The endpoint '{name}' does not exist in web service '{svc}'.")


@router.get(BASE, name="endpoint.list")
def list_endpoints(ws: str, svc: str, request: Request, found: tuple = Depends(_service_auth)) -> list[dict]:
    ctx, service, _ = found
    return [e.to_wire(own_url(request), service) for e in endpoints_of(ctx, ws, svc)]


@router.get(BASE + "/{ep}", name="endpoint.get")
def get_endpoint(ws: str, svc: str, ep: str, request: Request, found: tuple = Depends(_endpoint_auth)) -> dict:
    ctx, service, endpoint = found
    if endpoint is None:
        raise _missing(ws, svc, ep)
    return endpoint.to_wire(own_url(request), service)


@router.put(BASE + "/{ep}", name="endpoint.put")
def put_endpoint(ws: str, svc: str, ep: str, request: Request, found: tuple = Depends(_endpoint_auth),
                 body: Any = Depends(json_body)) -> JSONResponse:
    """Create (or update the settings of) an endpoint; a new one serves the web service's current model."""
    ctx, service, endpoint = found
    if not isinstance(body, dict):
        raise BadArgument("RequestBodyInvalid", "The request body must be a JSON object.")
    if isinstance(service, TrainingService):
        raise InvalidOperation("EndpointsNotSupported",
                               "Adding endpoints to a training web service is not supported by this emulator.")
    if not _NAME.match(ep):
        raise BadArgument("InvalidEndpointName",
                          f"Endpoint name '{ep}' is invalid: use at most 24 lowercase letters, digits and inner hyphens.")
    settings = _settings(body, endpoint)
    if endpoint is None:
        default = load(ctx, ws, svc, DEFAULT)
        endpoint = Endpoint(workspace=ws, service=svc, name=ep, api_id=uuid.uuid4().hex,
                            primary_key=secrets.token_urlsafe(48), secondary_key=secrets.token_urlsafe(48),
                            created=_now(), model_id=default.model_id if default else None,
                            location=default.location if default else None, **settings)
        if not ctx.store.insert(KIND, endpoint.key, asdict(endpoint)):
            endpoint = load(ctx, ws, svc, ep)
    else:
        ctx.store.update(KIND, endpoint.key, lambda d: {**d, **settings})
        endpoint = load(ctx, ws, svc, ep)
    return JSONResponse(endpoint.to_wire(own_url(request), service))


def _settings(body: dict, current: Endpoint | None) -> dict:
    out: dict = {}
    if "Description" in body:
        if body["Description"] is not None and not isinstance(body["Description"], str):
            raise BadArgument("InvalidDescription", "Description must be a string.")
        out["description"] = body["Description"] or ""
    if body.get("ThrottleLevel") is not None:
        level = str(body["ThrottleLevel"])
        match = next((t for t in THROTTLE_LEVELS if t.lower() == level.lower()), None)
        if match is None:
            raise BadArgument("InvalidThrottleLevel", f"ThrottleLevel must be Low or High, not '{level}'.")
        out["throttle_level"] = match
    if body.get("MaxConcurrentCalls") is not None:
        try:
            calls = int(body["MaxConcurrentCalls"])
        except (TypeError, ValueError):
            calls = 0
        if not 1 <= calls <= 200:
            raise BadArgument("InvalidMaxConcurrentCalls", "MaxConcurrentCalls must be a whole number from 1 to 200.")
        out["max_concurrent_calls"] = calls
    elif current is None:
        out["max_concurrent_calls"] = 20 if out.get("throttle_level") == "High" else 4
    return out


@router.patch(BASE + "/{ep}", status_code=204, name="endpoint.patch")
def patch_endpoint(ws: str, svc: str, ep: str, found: tuple = Depends(_endpoint_auth),
                   body: Any = Depends(json_body)) -> Response:
    """Replace the trained model: download and validate now, serve our own copy from the next request on."""
    ctx, service, endpoint = found
    if endpoint is None:
        raise _missing(ws, svc, ep)
    if isinstance(service, TrainingService):
        raise InvalidOperation("NoUpdatableResources", "This Web Service has no updatable resources.")
    if ep == DEFAULT:
        raise InvalidOperation("CannotUpdateDefaultEndpoint",
                               "The default endpoint cannot be updated; add an endpoint and update that one.")
    resources = body.get("Resources") if isinstance(body, dict) else None
    if not isinstance(resources, list) or not resources:
        raise BadArgument("RequestBodyInvalid", 'The body must be {"Resources": [{"Name", "Location"}]}.')
    updates = []
    for resource in resources:
        if not isinstance(resource, dict):
            raise BadArgument("RequestBodyInvalid", "Each resource must be a JSON object with Name and Location.")
        if resource.get("Name") != service.trained_model:
            raise BadArgument("InvalidResourceName",
                              f"The web service has no updatable resource named '{resource.get('Name')}'; "
                              f"its trained model resource is '{service.trained_model}'.")
        ref = parse_reference(resource.get("Location"), f"resource '{service.trained_model}'")
        updates.append((ctx.models.fetch(ref), {"BaseLocation": ref.base_location,
                                                "RelativeLocation": quote(ref.relative_location, safe="/")}))
    model_id, location = updates[-1]
    ctx.store.update(KIND, endpoint.key, lambda d: {**d, "model_id": model_id, "location": location,
                                                    "version": d["version"] + 1})
    return Response(status_code=204)


@router.post(BASE + "/{ep}/refresh", name="endpoint.refresh")
def refresh_endpoint(ws: str, svc: str, ep: str, found: tuple = Depends(_endpoint_auth),
                     body: Any = Depends(json_body)) -> Response:
    """`{"OverwriteResources": "True"}` copies the web service's model back onto the endpoint; 304 if the same."""
    ctx, service, endpoint = found
    if endpoint is None:
        raise _missing(ws, svc, ep)
    if not isinstance(body, dict):
        raise BadArgument("RequestBodyInvalid", 'The body must be {"OverwriteResources": "True" | "False"}.')
    overwrite = str(body.get("OverwriteResources", "False")).lower() == "true"
    default = load(ctx, ws, svc, DEFAULT)
    if not overwrite or ep == DEFAULT or default is None or default.model_id == endpoint.model_id:
        return Response(status_code=304)
    ctx.store.update(KIND, endpoint.key, lambda d: {**d, "model_id": default.model_id, "location": default.location,
                                                    "version": d["version"] + 1})
    return Response(status_code=204)


@router.delete(BASE + "/{ep}", status_code=204, name="endpoint.delete")
def delete_endpoint(ws: str, svc: str, ep: str, found: tuple = Depends(_endpoint_auth)) -> Response:
    ctx, _, endpoint = found
    if endpoint is None:
        raise _missing(ws, svc, ep)
    if ep == DEFAULT:
        raise InvalidOperation("CannotDeleteDefaultEndpoint", "The default endpoint cannot be deleted.")
    ctx.store.delete(KIND, endpoint.key)
    return Response(status_code=204)
