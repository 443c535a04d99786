"""The Batch Execution Service: submit, start, status and cancel of retraining jobs, per the api-version 2.0 contract."""

from __future__ import annotations

import uuid
from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse

from .blobs import BlobRef, parse_reference
from .config import TrainingService
from .context import Context, context
from .errors import BadArgument, BlobError, module_error
from .jobs import FINISHED, NOT_STARTED, Job
from .web import json_body, require_api_version, require_key
from .worker import JobSpec

API_VERSION = "2.0"
STATUS_NUMBERS = {"NotStarted": 0, "Running": 1, "Failed": 2, "Cancelled": 3, "Finished": 4}
MODEL_EXTENSIONS = ("ilearner",)
DATASET_EXTENSIONS = ("csv", "tsv", "arff")
BASE = "/workspaces/{ws}/services/{svc}/jobs"

router = APIRouter()


def _service(ws: str, svc: str, request: Request) -> tuple[Context, TrainingService]:
    """Dependency: 404s first, then the key, then the api-version, all before the body is parsed."""
    ctx = context(request)
    service = ctx.training(ws, svc)
    require_key(request, service.api_key)
    require_api_version(request, API_VERSION)
    return ctx, service


@router.post(BASE, name="bes.submit")
def submit(ws: str, svc: str, found: tuple = Depends(_service), body: Any = Depends(json_body)) -> JSONResponse:
    ctx, service = found
    job_id = uuid.uuid4().hex
    spec, outputs = build_spec(ctx, service, body, job_id)
    ctx.runner.submit(Job(id=job_id, workspace=ws, service=svc, state=NOT_STARTED, spec=spec.to_dict(),
                          outputs={name: asdict(ref) for name, ref in outputs.items()}))
    return JSONResponse(job_id)


@router.post(BASE + "/{job_id}/start", status_code=204, name="bes.start")
def start(ws: str, svc: str, job_id: str, found: tuple = Depends(_service)) -> Response:
    ctx, _ = found
    job = ctx.runner.get(job_id, ws, svc)  # 404 before arming any job fault
    ctx.runner.start(job_id, ws, svc, ctx.faults.take_job() if job.state == NOT_STARTED else None)
    return Response(status_code=204)


@router.get(BASE + "/{job_id}", name="bes.status")
def status(ws: str, svc: str, job_id: str, found: tuple = Depends(_service)) -> dict:
    ctx, service = found
    job = ctx.runner.get(job_id, ws, svc)
    code = job.status_code
    results = None
    if job.state == FINISHED:
        minutes = ctx.config.results_sas_minutes
        results = {name: BlobRef(**ref).to_result(minutes) for name, ref in job.outputs.items()}
    return {"StatusCode": STATUS_NUMBERS[code] if service.status_codes == "numbers" else code,
            "Results": results, "Details": job.details}


@router.delete(BASE + "/{job_id}", status_code=204, name="bes.cancel")
def cancel(ws: str, svc: str, job_id: str, found: tuple = Depends(_service)) -> Response:
    ctx, _ = found
    ctx.runner.cancel(job_id, ws, svc)
    return Response(status_code=204)


# --- submit validation -----------------------------------------------------------------------

def build_spec(ctx: Context, service: TrainingService, body: Any, job_id: str) -> tuple[JobSpec, dict[str, BlobRef]]:
    """Validate a submit body into a runnable spec and its output locations; BadArgument on any fault."""
    if not isinstance(body, dict):
        raise BadArgument("RequestBodyInvalid", "The request body must be a JSON object.")
    params = _global_parameters(service, body.get("GlobalParameters"))
    recipe = _recipe(service, params)
    data = _data_location(ctx, service, body, params)
    outputs = _outputs(ctx, service, body.get("Outputs"), job_id)
    _check_readable(data, "input")  # last: the only check that costs a storage round trip
    spec = JobSpec(job_id=job_id, data=data, recipe=recipe,
                   model_output=outputs[service.outputs.model],
                   evaluation_output=outputs[service.outputs.evaluation],
                   baseline_parameter=service.baseline_parameter)
    baseline = params.get(service.baseline_parameter, "")
    if baseline:
        try:
            spec.baseline = _location(ctx, baseline)
        except ValueError as e:  # a baseline problem fails the job (documented), it is not a submit error
            spec.fail_details = _baseline_unusable(service, str(e))
    return spec, outputs


def _global_parameters(service: TrainingService, raw: Any) -> dict[str, str]:
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise BadArgument("RequestBodyInvalid", "GlobalParameters must be a JSON object of name -> value.")
    accepted = [*service.global_parameters, service.baseline_parameter]
    unknown = [name for name in raw if name not in accepted]
    if unknown:
        raise BadArgument("InvalidGlobalParameterName",
                          f"Unknown global parameter(s) {', '.join(repr(n) for n in unknown)}; "
                          f"this web service accepts {', '.join(repr(n) for n in accepted)}.")
    values = {name: p.default for name, p in service.global_parameters.items() if p.default is not None}
    for name, value in raw.items():
        values[name] = "" if value is None else (value if isinstance(value, str) else _json_scalar(value))
    return values


def _json_scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _recipe(service: TrainingService, params: dict[str, str]) -> dict:
    recipe = service.recipe.model_dump()
    recipe["hyperparameters"] = dict(recipe["hyperparameters"])
    for name, value in params.items():
        target = service.global_parameters[name].sets if name in service.global_parameters else None
        if target in (None, "data"):
            continue
        try:
            if target == "seed":
                recipe["seed"] = int(value)
            elif target == "holdout":
                recipe["holdout"] = float(value)
                if not 0 < recipe["holdout"] < 1:
                    raise ValueError("must be between 0 and 1")
            elif target in ("label", "learner"):
                recipe[target] = value
            else:
                recipe["hyperparameters"][target.split(".", 1)[1]] = _typed(value)
        except ValueError as e:
            raise BadArgument("InvalidGlobalParameterValue",
                              f"Global parameter '{name}' has an invalid value {value!r}: {e}.") from None
    return recipe


def _typed(value: str) -> Any:
    """Global parameters arrive as strings; hyperparameters want numbers and booleans."""
    lowered = value.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            pass
    return value


def _data_location(ctx: Context, service: TrainingService, body: dict, params: dict[str, str]) -> BlobRef:
    if "Input" in body and "Inputs" in body:
        raise BadArgument("DuplicateInputInBatchCall", "The request has both 'Input' and 'Inputs'; send only one.")
    inputs = body.get("Inputs")
    if "Input" in body and body["Input"] is not None:
        if service.input is None:
            raise BadArgument("InvalidInputNames", "This web service has no inputs; its data location is the "
                                                   f"global parameter '{service.data_parameter}'.")
        inputs = {service.input: body["Input"]}
    inputs = inputs or {}
    if not isinstance(inputs, dict):
        raise BadArgument("RequestBodyInvalid", "Inputs must be a JSON object of input name -> blob reference.")
    expected = [service.input] if service.input else []
    unknown = [name for name in inputs if name not in expected]
    if unknown:
        raise BadArgument("InvalidInputNames",
                          f"Invalid input name(s) {', '.join(repr(n) for n in unknown)}; "
                          + (f"this web service's input is '{service.input}'." if service.input
                             else f"this web service has no inputs (its data location is the global parameter "
                                  f"'{service.data_parameter}')."))
    if service.input is not None:
        if inputs.get(service.input) is None:
            raise BadArgument("BatchJobInputsNotSpecified",
                              f"The following required input(s) were not specified with the request: {service.input}.")
        return parse_reference(inputs[service.input], f"input '{service.input}'")
    value = params.get(service.data_parameter or "", "")
    if not value:
        raise BadArgument("BatchJobInputsNotSpecified",
                          f"The data location was not specified: set the global parameter '{service.data_parameter}'.")
    try:
        return _location(ctx, value)
    except ValueError as e:
        raise BadArgument("InvalidGlobalParameterValue",
                          f"Global parameter '{service.data_parameter}' is not a blob location: {e}.") from None


def _location(ctx: Context, value: str) -> BlobRef:
    """A blob URL (with SAS), or `container/path` in the emulator's own storage account."""
    value = value.strip()
    if value.lower().startswith(("http://", "https://")):
        return BlobRef.from_url(value)
    if "/" not in value.strip("/"):
        raise ValueError(f"{value!r} is neither a blob URL nor 'container/path'")
    return BlobRef.in_account(ctx.config.storage.connection_string, value)


def _check_readable(ref: BlobRef, what: str) -> None:
    try:
        found = ref.exists()
    except BlobError as e:
        raise BadArgument("BlobNotFound", f"The {what} blob cannot be read: {e}") from None
    if not found:
        raise BadArgument("BlobNotFound", f"The {what} blob '{ref.uri}' was not found.")


def _outputs(ctx: Context, service: TrainingService, raw: Any, job_id: str) -> dict[str, BlobRef]:
    raw = raw or {}
    if not isinstance(raw, dict):
        raise BadArgument("RequestBodyInvalid", "Outputs must be a JSON object of output name -> blob reference.")
    names = {service.outputs.model: MODEL_EXTENSIONS, service.outputs.evaluation: DATASET_EXTENSIONS}
    unknown = [name for name in raw if name not in names]
    if unknown:
        raise BadArgument("InvalidOutputOverrideName",
                          f"Invalid output name(s) {', '.join(repr(n) for n in unknown)}; this web service's "
                          f"outputs are {', '.join(repr(n) for n in names)} (names are case-sensitive).")
    outputs: dict[str, BlobRef] = {}
    for name, extensions in names.items():
        if raw.get(name) is not None:
            ref = parse_reference(raw[name], f"output '{name}'")
            if ref.extension not in extensions:
                raise BadArgument("InvalidBlobExtension",
                                  f"The blob for output '{name}' must end in "
                                  f"{' or '.join('.' + e for e in extensions)}: '{ref.relative_location}'.")
        else:
            ext = extensions[0]
            rel = f"{ctx.config.storage.output_container}/{job_id}/{uuid.uuid4().hex}.{ext}"
            ref = BlobRef.in_account(ctx.config.storage.connection_string, rel)
        outputs[name] = ref
    return outputs


def _baseline_unusable(service: TrainingService, why: str) -> str:
    return module_error(30, f"Unable to download the baseline model given in "
                             f"'{service.baseline_parameter}': {why}.", "Evaluate Model")
