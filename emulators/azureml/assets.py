"""ARM workspace subset: the workspace, datastores, computes, environments, code, components and models."""

from __future__ import annotations

import re

from fastapi import APIRouter, Depends, Request

from .config import Workspace
from .context import Context, context
from .errors import BadRequest, NotFound
from .web import WS, json_object, now_iso, own_url, page, require_token, resource, section

router = APIRouter(dependencies=[Depends(require_token)])
VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,254}$")
ASSET_ID = re.compile(r"/workspaces/[^/]+/(?P<kind>models|environments|codes|components)/(?P<name>[^/]+)"
                      r"(?:/versions/(?P<version>[^/?]+))?", re.IGNORECASE)
SHORT_REF = re.compile(r"^azureml:(?P<name>[^:@/]+)(?::(?P<version>[^:@/]+))?$")


def ws_of(ctx: Context, sub: str, rg: str, ws: str) -> Workspace:
    return ctx.workspace(sub, rg, ws)


def key(ws: Workspace, *parts: str) -> str:
    return "/".join([ws.arm_id, *parts])


def parse_asset_ref(ref: str, kind: str) -> tuple[str, str | None]:
    """(name, version) of an ARM asset id or `azureml:name:version`; BadRequest if neither."""
    match = ASSET_ID.search(ref or "")
    if match and match.group("kind").lower() == kind:
        return match.group("name"), match.group("version")
    match = SHORT_REF.match(ref or "")
    if match:
        return match.group("name"), match.group("version")
    raise BadRequest(f"'{ref}' is not a reference to a {kind[:-1]} (an ARM id or azureml:name:version).",
                     code="InvalidAssetReference")


# --- workspace ------------------------------------------------------------------------------

@router.get(WS, name="workspace.get")
def get_workspace(sub: str, rg: str, ws: str, request: Request, ctx: Context = Depends(context)) -> dict:
    w = ws_of(ctx, sub, rg, ws)
    created = "2024-01-01T00:00:00.000Z"
    props = {"friendlyName": w.name, "description": "emulators.azureml workspace", "provisioningState": "Succeeded",
             "mlFlowTrackingUri": ctx.tracking_uri(w), "discoveryUrl": f"{own_url(request)}/discovery",
             "workspaceId": w.name, "storageAccount": f"{w.arm_id}/storageAccounts/local",
             "publicNetworkAccess": "Enabled", "hbiWorkspace": False, "v1LegacyMode": False}
    body = resource(w.arm_id, w.name, "", props, created=created, location=w.location,
                    identity={"type": "SystemAssigned"}, sku={"name": "Basic", "tier": "Basic"}, tags={},
                    kind="Default")
    body["type"] = "Microsoft.MachineLearningServices/workspaces"
    return body


# --- datastores and computes ----------------------------------------------------------------

def _datastore(ctx: Context, w: Workspace, name: str) -> dict:
    container = w.datastores.get(name)
    if container is None:
        raise NotFound(f"The datastore '{name}' does not exist in workspace '{w.name}'.")
    from .storage import account_of
    account, endpoint = account_of(ctx.config.storage.connection_string)
    props = {"datastoreType": "AzureBlob", "accountName": account, "containerName": container,
             "endpoint": endpoint, "protocol": "https", "isDefault": name == w.default_datastore,
             "credentials": {"credentialsType": "None"}, "serviceDataAccessAuthIdentity": "None",
             "description": None, "properties": {}, "tags": {}}
    return resource(f"{w.arm_id}/datastores/{name}", name, "datastores", props, created=now_iso())


@router.get(WS + "/datastores", name="datastores.list")
def list_datastores(sub: str, rg: str, ws: str, ctx: Context = Depends(context)) -> dict:
    w = ws_of(ctx, sub, rg, ws)
    return page([_datastore(ctx, w, n) for n in w.datastores])


@router.get(WS + "/datastores/{name}", name="datastores.get")
def get_datastore(sub: str, rg: str, ws: str, name: str, ctx: Context = Depends(context)) -> dict:
    return _datastore(ctx, ws_of(ctx, sub, rg, ws), name)


@router.get(WS + "/computes/{name}", name="computes.get")
def get_compute(sub: str, rg: str, ws: str, name: str, ctx: Context = Depends(context)) -> dict:
    w = ws_of(ctx, sub, rg, ws)
    if name not in w.computes:
        raise NotFound(f"The compute '{name}' does not exist in workspace '{w.name}'.")
    props = {"computeType": "AmlCompute", "provisioningState": "Succeeded", "computeLocation": w.location,
             "properties": {"vmSize": "STANDARD_DS3_V2", "scaleSettings": {"minNodeCount": 0, "maxNodeCount": 1}}}
    body = resource(f"{w.arm_id}/computes/{name}", name, "computes", props, created=now_iso(), location=w.location)
    return body


# --- versioned assets: environments, code, components, models ------------------------------

KINDS = {"environments": "environment", "codes": "code", "components": "component", "models": "model"}


def _configured(w: Workspace, kind: str, name: str) -> bool:
    return (kind == "environments" and name in w.environments) or (kind == "codes" and name in w.code)


def _configured_version(ctx: Context, w: Workspace, kind: str, name: str, version: str) -> dict:
    props: dict = {"description": "configured in the emulator's workspace config", "properties": {}, "tags": {},
                   "isAnonymous": False, "isArchived": False, "provisioningState": "Succeeded"}
    if kind == "environments":
        props.update({"image": "mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04", "osType": "Linux",
                      "autoRebuild": "Disabled", "environmentType": "UserCreated"})
    else:
        props.update({"codeUri": w.code[name].as_uri()})
    return resource(f"{w.arm_id}/{kind}/{name}/versions/{version}", version, f"{kind}/versions", props,
                    created="2024-01-01T00:00:00.000Z")


def asset_version(ctx: Context, w: Workspace, kind: str, name: str, version: str | None) -> dict:
    """A registered (or configured) asset version; the latest when `version` is None; NotFound otherwise."""
    if version is None:
        versions = [b for _, b in ctx.store.all(f"{kind}.version") if b["_key"].startswith(key(w, kind, name, ""))]
        if versions:
            return versions[-1]
        if _configured(w, kind, name):
            return _configured_version(ctx, w, kind, name, "1")
        raise NotFound(f"The {KINDS[kind]} '{name}' does not exist in workspace '{w.name}'.")
    found = ctx.store.get(f"{kind}.version", key(w, kind, name, version))
    if found is not None:
        return found
    if _configured(w, kind, name):
        return _configured_version(ctx, w, kind, name, version)
    raise NotFound(f"The {KINDS[kind]} '{name}' version '{version}' does not exist in workspace '{w.name}'.")


def _public(doc: dict) -> dict:
    return {k: v for k, v in doc.items() if not k.startswith("_")}


def _list_versions(ctx: Context, w: Workspace, kind: str, name: str, request: Request) -> list[dict]:
    prefix = key(w, kind, name, "")
    docs = [_public(b) for _, b in ctx.store.all(f"{kind}.version") if b["_key"].startswith(prefix)]
    if not docs and _configured(w, kind, name):
        docs = [_configured_version(ctx, w, kind, name, "1")]
    if "desc" in (request.query_params.get("$orderBy") or request.query_params.get("$orderby") or "").lower():
        docs.reverse()
    top = request.query_params.get("$top")
    if top and top.isdigit():
        docs = docs[: int(top)]
    return docs


def _list_containers(ctx: Context, w: Workspace, kind: str) -> list[dict]:
    names: dict[str, str] = {}
    for _, b in ctx.store.all(f"{kind}.version"):
        if b["_key"].startswith(key(w, kind, "")):
            names[b["_asset"]] = b["name"]
    configured = w.environments if kind == "environments" else list(w.code) if kind == "codes" else []
    for name in configured:
        names.setdefault(name, "1")
    return [resource(f"{w.arm_id}/{kind}/{n}", n, kind,
                     {"latestVersion": v, "nextVersion": str(int(v) + 1) if v.isdigit() else None,
                      "isArchived": False, "properties": {}, "tags": {}, "description": None},
                     created=now_iso()) for n, v in names.items()]


def _register(kind: str):
    @router.get(WS + f"/{kind}", name=f"{kind}.list")
    def list_assets(sub: str, rg: str, ws: str, ctx: Context = Depends(context)) -> dict:
        return page(_list_containers(ctx, ws_of(ctx, sub, rg, ws), kind))

    @router.get(WS + f"/{kind}/{{name}}", name=f"{kind}.container.get")
    def get_container(sub: str, rg: str, ws: str, name: str, ctx: Context = Depends(context)) -> dict:
        w = ws_of(ctx, sub, rg, ws)
        for c in _list_containers(ctx, w, kind):
            if c["name"] == name:
                return c
        raise NotFound(f"The {KINDS[kind]} '{name}' does not exist in workspace '{w.name}'.")

    @router.get(WS + f"/{kind}/{{name}}/versions", name=f"{kind}.versions.list")
    def list_asset_versions(sub: str, rg: str, ws: str, name: str, request: Request,
                            ctx: Context = Depends(context)) -> dict:
        return page(_list_versions(ctx, ws_of(ctx, sub, rg, ws), kind, name, request))

    @router.get(WS + f"/{kind}/{{name}}/versions/{{version}}", name=f"{kind}.versions.get")
    def get_asset_version(sub: str, rg: str, ws: str, name: str, version: str,
                          ctx: Context = Depends(context)) -> dict:
        return _public(asset_version(ctx, ws_of(ctx, sub, rg, ws), kind, name, version))

    @router.put(WS + f"/{kind}/{{name}}/versions/{{version}}", name=f"{kind}.versions.put")
    async def put_asset_version(sub: str, rg: str, ws: str, name: str, version: str, request: Request,
                                ctx: Context = Depends(context)) -> dict:
        w = ws_of(ctx, sub, rg, ws)
        if not NAME.match(name) or not VERSION.match(version):
            raise BadRequest(f"'{name}' version '{version}' is not a valid asset name and version.",
                             code="InvalidAssetName")
        body = await json_object(request)
        props = dict(section(body, "properties"))
        if kind == "models":
            _check_model(ctx, w, props)
        props.setdefault("properties", {})
        props.setdefault("tags", {})
        props.setdefault("isAnonymous", False)
        props.setdefault("isArchived", False)
        props.setdefault("description", None)
        props["provisioningState"] = "Succeeded"
        k = key(w, kind, name, version)
        old = ctx.store.get(f"{kind}.version", k)
        created = old["systemData"]["createdAt"] if old else now_iso()
        doc = resource(f"{w.arm_id}/{kind}/{name}/versions/{version}", version, f"{kind}/versions", props,
                       created=created, modified=now_iso())
        doc.update({"_key": k, "_asset": name})
        ctx.store.put(f"{kind}.version", k, doc)
        return _public(doc)

    return list_assets, get_container, list_asset_versions, get_asset_version, put_asset_version


def _check_model(ctx: Context, w: Workspace, props: dict) -> None:
    """A model's `modelUri` must name something that exists: a finished job's output or a datastore path."""
    from .storage import resolve_uri

    uri = props.get("modelUri")
    if not isinstance(uri, str) or not uri:
        raise BadRequest("A model version needs properties.modelUri.", code="InvalidModelUri")
    resolve_uri(ctx, w, uri)  # raises BadRequest/NotFound
    props.setdefault("modelType", "custom_model")
    props.setdefault("flavors", {})
    props.setdefault("jobName", _job_of(uri))


def _job_of(uri: str) -> str | None:
    match = re.match(r"^azureml://jobs/([^/]+)/outputs/", uri)
    return match.group(1) if match else None


for _kind in KINDS:
    _register(_kind)
