"""The OpenAPI document: valid 3.1, built from the route table function_app.py declares, nothing missing."""

import importlib.util
import json
import re

import function_app
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate

from retrain import routes
from retrain.schemas import SCHEMAS


def declared_http_routes() -> set[tuple[str, str, str]]:
    """(function, method, route) of every HTTP trigger in a private copy of function_app (indexed once)."""
    spec = importlib.util.spec_from_file_location("function_app_for_openapi", function_app.__file__)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    found = set()
    for f in module.app.get_functions():
        for binding in f.get_bindings():
            if binding.type == "httpTrigger":
                for method in binding.methods:
                    found.add((f.get_function_name(), str(getattr(method, "value", method)), binding.route))
    return found


def test_the_document_is_valid_openapi_3_1():
    document = routes.document()
    assert document["openapi"] == "3.1.0"
    validate(document)


def test_every_api_route_of_function_app_is_in_the_table_and_back():
    declared = {r for r in declared_http_routes() if not r[2].startswith("dashboard/")}
    table = {(r.function, r.method, r.path) for r in routes.ROUTES}
    assert declared == table


def test_each_route_is_a_documented_operation_with_its_schemas():
    paths = routes.document()["paths"]
    for route in routes.ROUTES:
        operation = paths[f"/api/{route.path}"][route.method.lower()]
        for status, schema in route.responses.items():
            assert operation["responses"][str(status)]["content"]["application/json"]["schema"]["$ref"] \
                == f"#/components/schemas/{schema}"
        assert "404" in operation["responses"] and "400" in operation["responses"]


def test_every_schema_reference_resolves_and_every_schema_is_valid_json_schema():
    text = json.dumps(routes.document())
    for name in SCHEMAS:
        Draft202012Validator.check_schema(SCHEMAS[name])
    for name in re.findall(r'#/components/schemas/(\w+)', text):
        assert name in SCHEMAS, name


def test_operation_ids_are_unique():
    ids = [op["operationId"] for path in routes.document()["paths"].values() for op in path.values()]
    assert len(ids) == len(set(ids))
