"""HTTP triggers: routes under /api with parameters and constraints, methods, JSON bodies, errors."""

from __future__ import annotations

import requests

from .devhost_testkit import HOST_JSON, make_script_root


def test_route_parameters_and_query_reach_the_function_and_the_response_comes_back(start_host):
    host = start_host()
    r = requests.get(f"{host.url}/api/models/churn/runs/42?verbose=1", timeout=5)
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("application/json")
    assert r.headers["X-Sample"] == "run"
    assert r.json() == {"model": "churn", "run": 42, "query": {"verbose": "1"}}


def test_a_json_body_is_passed_and_the_status_code_returned(start_host):
    host = start_host()
    r = requests.post(f"{host.url}/api/models/churn", json={"threshold": 0.8}, timeout=5)
    assert r.status_code == 201
    assert r.json() == {"model": "churn", "received": {"threshold": 0.8}}


def test_a_route_constraint_that_does_not_hold_is_not_found(start_host):
    host = start_host()
    assert requests.get(f"{host.url}/api/models/churn/runs/latest", timeout=5).status_code == 404


def test_an_unknown_route_is_404(start_host):
    host = start_host()
    assert requests.get(f"{host.url}/api/nothing/here", timeout=5).status_code == 404
    assert requests.get(f"{host.url}/models/churn/runs/1", timeout=5).status_code == 404   # no /api prefix


def test_a_known_route_with_the_wrong_method_is_405_with_allow(start_host):
    host = start_host()
    r = requests.delete(f"{host.url}/api/models/churn", timeout=5)
    assert r.status_code == 405
    assert r.headers["Allow"] == "POST"


def test_a_literal_route_wins_over_a_parameter(start_host):
    host = start_host()
    assert requests.post(f"{host.url}/api/models/latest", timeout=5).text == "literal route wins"


def test_an_optional_parameter_may_be_left_out(start_host):
    host = start_host()
    assert requests.get(f"{host.url}/api/files/a.txt", timeout=5).text == "a.txt"
    assert requests.get(f"{host.url}/api/files", timeout=5).text == "<none>"


def test_a_function_that_raises_gives_500(start_host):
    host = start_host()
    r = requests.get(f"{host.url}/api/boom", timeout=5)
    assert r.status_code == 500
    assert host.invocations[-1].outcome == "Failed"


def test_function_keys_are_not_required_locally(start_host):
    host = start_host()   # get_run is auth_level FUNCTION, like `func start` devhost does not check keys
    assert requests.get(f"{host.url}/api/models/m/runs/1", timeout=5).status_code == 200


def test_the_route_prefix_comes_from_host_json(start_host, tmp_path):
    root = make_script_root(tmp_path / "root", {**HOST_JSON, "extensions": {
        **HOST_JSON["extensions"], "http": {"routePrefix": "v1"}}})
    host = start_host(root)
    assert requests.get(f"{host.url}/v1/models/m/runs/1", timeout=5).status_code == 200
    assert requests.get(f"{host.url}/api/models/m/runs/1", timeout=5).status_code == 404
