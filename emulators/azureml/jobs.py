"""ARM jobs: PUT (create; runs at once), GET, list, POST cancel (202 + Location), and the job's log."""

from __future__ import annotations


from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, PlainTextResponse

from .assets import NAME, parse_asset_ref, ws_of
from .context import Context, context
from .errors import BadRequest, Conflict, NotFound
from .runner import PLACEHOLDER, TERMINAL
from .storage import resolve_uri
from .web import WS, json_object, now_iso, own_url, page, require_token, resource, section

router = APIRouter(dependencies=[Depends(require_token)])
INPUT_TYPES = ("literal", "uri_file", "uri_folder", "mltable", "custom_model", "mlflow_model", "triton_model")
OUTPUT_TYPES = INPUT_TYPES[1:]


def job_key(w, name: str) -> str:
    return f"{w.arm_id}/{name}"


def public(doc: dict) -> dict:
    """The job as ARM shows it; the failure reason (if any) in `properties.error`."""
    body = {k: v for k, v in doc.items() if not k.startswith("_")}
    if doc.get("_error"):
        body["properties"] = {**body["properties"], "error": doc["_error"]}
    return body


def find(ctx: Context, w, name: str) -> dict:
    doc = ctx.store.get("job", job_key(w, name))
    if doc is None:
        raise NotFound(f"The job '{name}' does not exist in workspace '{w.name}'.", code="UserError")
    return doc


def _validate(ctx: Context, w, props: dict) -> None:
    """Everything checkable at submit time is 400 here, so the job itself fails only for its own reasons."""
    if props.get("jobType", "Command") != "Command":
        raise BadRequest(f"jobType '{props.get('jobType')}' is not emulated; only Command jobs run.",
                         code="UnsupportedJobType")
    command = props.get("command")
    if not isinstance(command, str) or not command.strip():
        raise BadRequest("A command job needs properties.command.", code="InvalidCommand")
    inputs, outputs = props.get("inputs") or {}, props.get("outputs") or {}
    if not isinstance(inputs, dict) or not isinstance(outputs, dict):
        raise BadRequest("properties.inputs and properties.outputs must be objects.", code="InvalidRequestContent")
    for kind, name in PLACEHOLDER.findall(command):
        if name not in (inputs if kind == "inputs" else outputs):
            raise BadRequest(f"The command uses ${{{{{kind}.{name}}}}} but the job has no such {kind[:-1]}.",
                             code="InvalidCommand")
    for name, spec in inputs.items():
        if not isinstance(spec, dict) or spec.get("jobInputType") not in INPUT_TYPES:
            raise BadRequest(f"Input '{name}' needs jobInputType, one of {', '.join(INPUT_TYPES)}.",
                             code="InvalidInput")
        if spec["jobInputType"] == "literal":
            continue
        uri = spec.get("uri")
        if not isinstance(uri, str) or not uri:
            raise BadRequest(f"Input '{name}' needs a uri.", code="InvalidInput")
        if spec["jobInputType"].endswith("_model") and not uri.startswith(("azureml://", "http")):
            from .assets import asset_version
            model, version = parse_asset_ref(uri, "models")
            asset_version(ctx, w, "models", model, version)
        else:
            resolve_uri(ctx, w, uri)
    for name, spec in outputs.items():
        if spec is not None and (not isinstance(spec, dict) or spec.get("jobOutputType", "uri_folder")
                                 not in OUTPUT_TYPES):
            raise BadRequest(f"Output '{name}' has an unknown jobOutputType.", code="InvalidOutput")
    ctx.runner.code_folder(w, props.get("codeId"))
    env = props.get("environmentVariables") or {}
    if not isinstance(env, dict):
        raise BadRequest("properties.environmentVariables must be an object.", code="InvalidRequestContent")


@router.put(WS + "/jobs/{name}", name="jobs.put")
async def put_job(sub: str, rg: str, ws: str, name: str, request: Request,
                  ctx: Context = Depends(context)) -> JSONResponse:
    w = ws_of(ctx, sub, rg, ws)
    if not NAME.match(name):
        raise BadRequest(f"'{name}' is not a valid job name.", code="InvalidJobName")
    body = await json_object(request)
    props = dict(section(body, "properties"))
    existing = ctx.store.get("job", job_key(w, name))
    if existing is not None:  # Azure allows updating only tags/description of an existing job
        if existing["properties"].get("command") != props.get("command"):
            raise Conflict(f"A job named '{name}' already exists; job names are unique.", code="UserError")
        return JSONResponse(public(existing), status_code=200)
    _validate(ctx, w, props)
    outputs = {}
    for out, spec in (props.get("outputs") or {}).items():
        spec = dict(spec or {})
        spec.setdefault("jobOutputType", "uri_folder")
        spec.setdefault("mode", "ReadWriteMount")
        spec["uri"] = f"azureml://datastores/{w.default_datastore}/paths/azureml/{name}/{out}/"
        outputs[out] = spec
    base = own_url(request)
    props.update({
        "jobType": "Command", "status": "NotStarted", "outputs": outputs,
        "displayName": props.get("displayName") or name,
        "experimentName": props.get("experimentName") or "Default",
        "inputs": props.get("inputs") or {}, "environmentVariables": props.get("environmentVariables") or {},
        "properties": props.get("properties") or {}, "tags": props.get("tags") or {},
        "isArchived": False, "computeId": props.get("computeId"),
        "services": {"Studio": {"jobServiceType": "Studio", "endpoint": f"{base}{w.arm_id}/jobs/{name}/logs"},
                     "Tracking": {"jobServiceType": "Tracking", "endpoint": ctx.tracking_uri(w)}},
    })
    doc = resource(f"{w.arm_id}/jobs/{name}", name, "jobs", props, created=now_iso())
    doc["_ws"] = [w.subscription, w.resource_group, w.name]
    if not ctx.store.insert("job", job_key(w, name), doc):
        return JSONResponse(public(ctx.store.get("job", job_key(w, name))), status_code=200)
    ctx.tracking.create_run(w, name, props["experimentName"], props["displayName"])
    answer = public(doc)  # as Azure answers: NotStarted; it is queued right after
    ctx.runner.submit(job_key(w, name))
    return JSONResponse(answer, status_code=201)


@router.get(WS + "/jobs/{name}", name="jobs.get")
def get_job(sub: str, rg: str, ws: str, name: str, ctx: Context = Depends(context)) -> dict:
    return public(find(ctx, ws_of(ctx, sub, rg, ws), name))


@router.get(WS + "/jobs", name="jobs.list")
def list_jobs(sub: str, rg: str, ws: str, ctx: Context = Depends(context)) -> dict:
    w = ws_of(ctx, sub, rg, ws)
    return page([public(d) for k, d in ctx.store.all("job") if k.startswith(w.arm_id + "/")])


@router.post(WS + "/jobs/{name}/cancel", name="jobs.cancel")
def cancel_job(sub: str, rg: str, ws: str, name: str, request: Request,
               ctx: Context = Depends(context)) -> JSONResponse:
    w = ws_of(ctx, sub, rg, ws)
    doc = find(ctx, w, name)
    if doc["properties"]["status"] not in TERMINAL:
        ctx.runner.cancel(job_key(w, name))
    location = f"{own_url(request)}{w.arm_id}/operationResults/jobcancel-{name}?api-version=2023-04-01-preview"
    return JSONResponse(None, status_code=202, headers={"Location": location, "Retry-After": "1"})


@router.get(WS + "/operationResults/jobcancel-{name}", name="jobs.cancel.status")
def cancel_status(sub: str, rg: str, ws: str, name: str, ctx: Context = Depends(context)) -> JSONResponse:
    doc = find(ctx, ws_of(ctx, sub, rg, ws), name)
    if doc["properties"]["status"] in TERMINAL:
        return JSONResponse({}, status_code=200)
    return JSONResponse(None, status_code=202, headers={"Retry-After": "1"})


@router.get(WS + "/jobs/{name}/logs", name="jobs.logs")
def job_log(sub: str, rg: str, ws: str, name: str, ctx: Context = Depends(context)) -> PlainTextResponse:
    """The job's `user_logs/std_log.txt` (emulator route; Azure serves logs as run artifacts)."""
    doc = find(ctx, ws_of(ctx, sub, rg, ws), name)
    path = ctx.data_dir / "jobs" / doc["name"] / "user_logs" / "std_log.txt"
    text = path.read_text(errors="replace") if path.exists() else ""
    return PlainTextResponse(text)


