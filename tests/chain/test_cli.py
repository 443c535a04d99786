"""The `retrain` CLI through click's runner against a running app (devhost): only the HTTP API in between."""

from __future__ import annotations

import json

import requests
from click.testing import CliRunner
from jsonschema import Draft202012Validator

from retrain_cli.main import cli

from .operator_world import MODEL


def run_cli(operated, *args: str, output: str | None = "json"):
    runner = CliRunner()
    options = ["--api-url", operated.host.url] + (["-o", output] if output else [])
    return runner.invoke(cli, [*options, *args], catch_exceptions=False)


def test_models_list_as_json_parses_and_names_the_champion(operated):
    result = run_cli(operated, "models", "list")
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert [m["name"] for m in body["models"]] == [MODEL]
    assert body["models"][0]["champion"]["run_id"] == operated.promoted[-1]


def test_output_is_json_when_piped_and_a_table_on_request(operated):
    piped = run_cli(operated, "models", "show", MODEL, output=None)  # the runner's stdout is not a terminal
    assert json.loads(piped.stdout)["name"] == MODEL
    table = run_cli(operated, "models", "show", MODEL, output="table")
    assert "champion" in table.stdout and operated.promoted[-1][:8] in table.stdout
    assert not table.stdout.lstrip().startswith("{")


def test_models_put_from_a_file_redefines_the_model(operated, tmp_path):
    current = requests.get(operated.api, timeout=10).json()
    path = tmp_path / "census.json"
    definition = {k: current[k] for k in ("training", "endpoints", "policy", "data_prefix", "description")}
    path.write_text(json.dumps(definition))
    result = run_cli(operated, "models", "put", MODEL, "-f", str(path))
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["champion"]["run_id"] == operated.promoted[-1]  # live state kept


def test_models_put_shows_each_problem_of_a_bad_definition(operated, tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"training": {"url": "ftp://x"}, "policy": {"rules": [{"metric": 3}]}}))
    result = run_cli(operated, "models", "put", MODEL, "-f", str(path))
    assert result.exit_code == 1
    assert "400 InvalidModelDefinition" in result.stderr and "\n  - " in result.stderr


def test_runs_list_and_show(operated):
    listed = json.loads(run_cli(operated, "runs", "list", MODEL).stdout)["runs"]
    assert {r["run_id"] for r in listed} >= {*operated.promoted, operated.awaiting}
    shown = json.loads(run_cli(operated, "runs", "show", MODEL, operated.promoted[0]).stdout)
    assert shown["status"] == "promoted" and shown["decision"]["passed"] is True
    awaiting = json.loads(run_cli(operated, "runs", "list", MODEL, "--status", "awaiting_approval").stdout)["runs"]
    assert [r["run_id"] for r in awaiting] == [operated.awaiting]


def test_approve_needs_a_comment(operated):
    result = CliRunner().invoke(cli, ["--api-url", operated.host.url, "approve", MODEL, operated.awaiting])
    assert result.exit_code == 2 and "--comment" in result.output


def test_approve_then_watch_follows_the_run_to_promoted(operated):
    result = run_cli(operated, "approve", MODEL, operated.awaiting, "--comment", "checked the hold-out")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["decision_comment"] == "checked the hold-out"
    watched = run_cli(operated, "runs", "watch", MODEL, operated.awaiting, "--timeout", "90")
    assert watched.exit_code == 0, watched.output
    assert json.loads(watched.stdout)["status"] == "promoted"
    assert "promoting" in watched.stderr and "promoted" in watched.stderr  # step progress on stderr


def test_retrain_wait_stops_at_approval_and_reject_then_watch_exits_non_zero(operated):
    operated.world.upload("census/3.csv", operated_data())
    result = run_cli(operated, "retrain", MODEL, "--blob", "census/3.csv", "--wait", "--timeout", "120")
    assert result.exit_code == 0, result.output
    run = json.loads(result.stdout)
    assert run["status"] == "awaiting_approval" and "queued" in result.stderr
    rejected = run_cli(operated, "reject", MODEL, run["run_id"], "--comment", "not this week")
    assert json.loads(rejected.stdout)["status"] == "rejected"
    watched = run_cli(operated, "runs", "watch", MODEL, run["run_id"])
    assert watched.exit_code == 1 and "rejected" in watched.stderr


def test_retrain_wait_exits_non_zero_when_the_run_fails(operated):
    operated.world.upload("census/broken.csv", b"age,label\nnot-a-number,maybe\n")
    result = run_cli(operated, "retrain", MODEL, "--blob", "census/broken.csv", "--wait", "--timeout", "120")
    assert result.exit_code == 1, result.output
    assert json.loads(result.stdout)["status"] == "failed"
    assert "failed" in result.stderr


def test_rollback_to_a_run_and_the_history_shows_it(operated):
    result = run_cli(operated, "rollback", MODEL, "--to", operated.promoted[0], "--note", "bad survey")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["promotion"]["to_run"] == operated.promoted[0]
    history = json.loads(run_cli(operated, "promotions", MODEL).stdout)["promotions"]
    assert history[0]["reason"] == "rollback" and history[0]["note"] == "bad survey"


def test_audit_lists_who_did_what_newest_first_a_page_at_a_time(operated):
    listed = json.loads(run_cli(operated, "audit", MODEL, "--limit", "2").stdout)
    answer = requests.get(f"{operated.api}/audit", params={"limit": 2}, timeout=10).json()
    assert listed == answer and len(listed["audit"]) == 2 and listed["next"]
    table = run_cli(operated, "audit", MODEL, output="table")
    assert answer["audit"][0]["action"] in table.stdout


def test_an_unreachable_api_is_a_clear_message(operated):
    result = CliRunner().invoke(cli, ["--api-url", "http://127.0.0.1:9", "models", "list"])
    assert result.exit_code == 1
    assert "cannot reach the retrain API at http://127.0.0.1:9" in result.stderr


def test_an_api_error_is_shown_with_its_code_and_message(operated):
    result = run_cli(operated, "models", "show", "nosuch")
    assert result.exit_code == 1 and "404 UnknownModel" in result.stderr and "nosuch" in result.stderr
    result = run_cli(operated, "approve", MODEL, operated.promoted[0], "--comment", "again")
    assert result.exit_code == 1 and "409" in result.stderr


def test_the_key_is_sent_as_x_functions_key(operated, monkeypatch):
    seen = {}
    original = requests.request

    def spy(method, url, **kw):
        seen.update(kw["headers"])
        return original(method, url, **kw)
    monkeypatch.setattr(requests, "request", spy)
    monkeypatch.setenv("RETRAIN_API_KEY", "key-123")
    monkeypatch.setenv("RETRAIN_API_URL", operated.host.url)
    assert CliRunner().invoke(cli, ["models", "list"]).exit_code == 0
    assert seen["x-functions-key"] == "key-123"


def test_the_app_serves_its_openapi_document_and_answers_match_it(operated):
    document = requests.get(f"{operated.host.url}/api/openapi.json", timeout=10).json()
    assert document["openapi"] == "3.1.0"

    def check(path: str, schema: str, status: int = 200, **params) -> None:
        answer = requests.get(f"{operated.host.url}{path}", params=params, timeout=10)
        assert answer.status_code == status, answer.text
        operation = document["paths"][template_of(document, path)]["get"]
        assert str(status) in operation["responses"]
        root = {"$ref": f"#/components/schemas/{schema}", "components": document["components"]}
        errors = list(Draft202012Validator(root).iter_errors(answer.json()))
        assert not errors, [e.message for e in errors[:3]]

    check("/api/models", "ModelList")
    check(f"/api/models/{MODEL}", "Model")
    check(f"/api/models/{MODEL}/runs", "RunPage", limit=2)
    check(f"/api/models/{MODEL}/runs/{operated.promoted[0]}", "Run")
    check(f"/api/models/{MODEL}/promotions", "PromotionPage")
    check("/api/skipped", "SkippedPage")
    check(f"/api/models/{MODEL}/audit", "AuditPage")
    check("/api/models/nosuch", "Error", 404)


def template_of(document: dict, path: str) -> str:
    parts = path.split("/")
    for template in document["paths"]:
        t = template.split("/")
        if len(t) == len(parts) and all(a == b or a.startswith("{") for a, b in zip(t, parts)):
            return template
    raise AssertionError(f"{path} matches no documented path")


def operated_data() -> bytes:
    from .conftest import good_data
    return good_data(rows=450, seed=11)
