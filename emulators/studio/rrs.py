"""Request-response scoring (`.../execute`) and `swagger.json`, for classic endpoints and ARM web services."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request

from . import management
from .config import PredictiveService
from .context import Context, context
from .errors import BadArgument, NotFound, ServiceError
from .web import json_body, own_url, require_api_version, require_key

API_VERSION = "2.0"

router = APIRouter()


class ModuleExecutionError(ServiceError):
    """400: the model could not score this input (wrong columns, values of the wrong kind)."""

    code = "ModuleExecutionError"


# --- classic: /workspaces/{ws}/services/{id}, where id is the web service (default endpoint) or an endpoint's own id

def _resolve(ws: str, api_id: str, request: Request) -> tuple[Context, PredictiveService, management.Endpoint]:
    ctx = context(request)
    ctx.workspace(ws)
    endpoint = management.by_api_id(ctx, ws, api_id)
    if endpoint is None:
        raise NotFound("WebServiceNotFound", f"The web service '{api_id}' does not exist in workspace '{ws}'.")
    service = ctx.web_service(ws, endpoint.service)
    if not isinstance(service, PredictiveService):
        raise BadArgument("ScoringNotSupported",
                          f"'{api_id}' is a training web service: it runs batch jobs (/jobs); scoring it is not "
                          "supported by this emulator.")
    return ctx, service, endpoint


def _classic(ws: str, api_id: str, request: Request) -> tuple[Context, PredictiveService, management.Endpoint]:
    """Dependency: the endpoint's own keys or the web service's key open it."""
    ctx, service, endpoint = _resolve(ws, api_id, request)
    require_key(request, endpoint.primary_key, endpoint.secondary_key, service.api_key)
    return ctx, service, endpoint


@router.post("/workspaces/{ws}/services/{api_id}/execute", name="rrs.execute")
def execute(ws: str, api_id: str, request: Request, found: tuple = Depends(_classic),
            body: Any = Depends(json_body)) -> dict:
    ctx, service, endpoint = found
    require_api_version(request, API_VERSION)
    return score(ctx, endpoint.model_id, service.input, service.output, body, request)


@router.get("/workspaces/{ws}/services/{api_id}/swagger.json", name="rrs.swagger")
def swagger(ws: str, api_id: str, request: Request) -> dict:
    ctx, service, endpoint = _resolve(ws, api_id, request)
    return swagger_document(ctx, endpoint.model_id, service.input, service.output,
                            title=service.name or service.id, host_url=own_url(request),
                            base_path=f"/workspaces/{ws}/services/{api_id}")


# --- shared -----------------------------------------------------------------------------------

def score(ctx: Context, model_id: str | None, input_name: str, output_name: str, body: Any, request: Request) -> dict:
    """Score the body's input table with the model; the answer in table or swagger (records) form."""
    if model_id is None:
        raise ModuleExecutionError("NoTrainedModel", "The web service has no trained model to score with.")
    swagger_format = request.query_params.get("format", "").lower() == "swagger"
    details = request.query_params.get("details", "").lower() == "true"
    names, rows = _input_table(body, input_name, swagger_format)
    from emulators.training import training

    try:
        table = ctx.models.get(model_id).score(names, rows)
    except training.ScoringInputError as e:
        raise ModuleExecutionError("InputParseError", str(e)) from None
    if swagger_format:
        return {"Results": {output_name: [dict(zip(table.column_names, row)) for row in table.values]}}
    value: dict = {"Values": table.values}
    if details:
        value = {"ColumnNames": table.column_names, "ColumnTypes": table.column_types, "Values": table.values}
    return {"Results": {output_name: {"type": "table", "value": value}}}


def _input_table(body: Any, input_name: str, swagger_format: bool) -> tuple[list[str], list[list]]:
    if not isinstance(body, dict) or not isinstance(body.get("Inputs"), dict):
        raise BadArgument("RequestBodyInvalid", 'The body must be {"Inputs": {"<input name>": ...}, "GlobalParameters": {}}.')
    inputs = body["Inputs"]
    unknown = [n for n in inputs if n != input_name]
    if unknown or input_name not in inputs:
        raise BadArgument("InvalidInputNames",
                          f"This web service's input is '{input_name}'; the request has "
                          f"{', '.join(repr(n) for n in inputs) or 'none'}.")
    raw = inputs[input_name]
    if isinstance(raw, list):
        if not swagger_format:
            raise BadArgument("InputParseError", "A list of records as input needs format=swagger in the URL; "
                                                 "otherwise send {\"ColumnNames\": [...], \"Values\": [[...]]}.")
        if not all(isinstance(r, dict) for r in raw):
            raise BadArgument("InputParseError", "With format=swagger the input must be a list of JSON objects.")
        names: list[str] = []
        for record in raw:
            names += [k for k in record if k not in names]
        return names, [[record.get(n) for n in names] for record in raw]
    if isinstance(raw, dict) and isinstance(raw.get("ColumnNames"), list) and isinstance(raw.get("Values"), list):
        return [str(n) for n in raw["ColumnNames"]], raw["Values"]
    raise BadArgument("InputParseError", f"Input '{input_name}' must be {{\"ColumnNames\": [...], \"Values\": [[...]]}}"
                                         " (or a list of records with format=swagger).")


_SWAGGER_TYPES = {"Int32": ("integer", "int32"), "Int64": ("integer", "int64"), "Double": ("number", "double"),
                  "Boolean": ("boolean", None), "String": ("string", None)}


def swagger_document(ctx: Context, model_id: str | None, input_name: str, output_name: str, *, title: str,
                     host_url: str, base_path: str) -> dict:
    """A Swagger 2.0 description of `execute` with the model's feature columns (no auth needed to read it)."""
    model = ctx.models.get(model_id) if model_id else None
    properties: dict = {}
    for spec in getattr(model, "specs", []) or []:
        kind, fmt = _SWAGGER_TYPES.get(spec.studio_type, ("string", None))
        properties[spec.name] = {"type": kind, **({"format": fmt} if fmt else {})}
    outputs = dict(properties)
    if model is not None:
        outputs["Scored Labels"] = {"type": "number" if model.task == "regression" else "string"}
        if model.task == "binary":
            outputs["Scored Probabilities"] = {"type": "number", "format": "double"}
    scheme, _, host = host_url.partition("://")
    return {
        "swagger": "2.0",
        "info": {"title": title, "version": "2.0", "description": "Request-response scoring (emulators.studio)."},
        "host": host, "schemes": [scheme], "basePath": base_path,
        "paths": {"/execute?api-version=2.0&format=swagger": {"post": {
            "summary": "Execute the web service and get a response synchronously",
            "operationId": "execute",
            "parameters": [{"name": "WebServiceInput", "in": "body", "required": True,
                            "schema": {"$ref": "#/definitions/ExecutionInputs"}},
                           {"name": "Authorization", "in": "header", "type": "string", "required": True,
                            "description": "Bearer <api key>"}],
            "responses": {"200": {"description": "OK", "schema": {"$ref": "#/definitions/ExecutionOutputs"}}}}}},
        "definitions": {
            "ExecutionInputs": {"type": "object", "properties": {input_name: {
                "type": "array", "items": {"$ref": f"#/definitions/{input_name}Item"}}}},
            f"{input_name}Item": {"type": "object", "properties": properties},
            "ExecutionOutputs": {"type": "object", "properties": {output_name: {
                "type": "array", "items": {"$ref": f"#/definitions/{output_name}Item"}}}},
            f"{output_name}Item": {"type": "object", "properties": outputs},
        },
    }
