"""The workspace config file: formats, ${ENV} substitution, validation messages; and the command line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from devhost.world import REPO, Emulator
from emulators.studio.config import load_config, parse_config
from emulators.studio.errors import ConfigError

EXAMPLE = REPO / "emulators" / "studio" / "examples" / "workspace.yaml"
MINIMAL = {"storage": {"connection_string": "UseDevelopmentStorage=true"},
           "workspaces": [{"id": "ws", "token": "t", "training_services": [
               {"id": "svc", "api_key": "k", "recipe": {"task": "binary", "label": "y",
                                                        "learner": "logistic_regression"}}]}]}


def _with_service(**changes) -> dict:
    doc = json.loads(json.dumps(MINIMAL))
    doc["workspaces"][0]["training_services"][0].update(changes)
    return doc


def test_the_example_config_loads():
    config = load_config(EXAMPLE, env={})
    assert config.workspaces[0].training_services[0].recipe.label == "income"
    assert config.arm is not None and config.arm.web_services[0].name == "census-arm"


def test_a_json_config_loads(tmp_path):
    path = tmp_path / "ws.json"
    path.write_text(json.dumps(MINIMAL))
    assert load_config(path, env={}).workspaces[0].id == "ws"


def test_env_variables_are_substituted_in_strings():
    doc = {**MINIMAL, "storage": {"connection_string": "${STORE}"}}
    assert parse_config(doc, base_dir=Path("."), env={"STORE": "abc"}).storage.connection_string == "abc"


def test_an_env_default_applies_when_the_variable_is_unset():
    doc = {**MINIMAL, "storage": {"connection_string": "${STORE:-fallback}"}}
    assert parse_config(doc, base_dir=Path("."), env={}).storage.connection_string == "fallback"


def test_an_unset_env_variable_is_named_in_the_error():
    doc = {**MINIMAL, "storage": {"connection_string": "${NOT_SET_ANYWHERE}"}}
    with pytest.raises(ConfigError, match="NOT_SET_ANYWHERE"):
        parse_config(doc, base_dir=Path("."), env={})


def test_an_unknown_learner_is_refused_with_its_field():
    doc = _with_service(recipe={"task": "binary", "label": "y", "learner": "deep_magic"})
    with pytest.raises(ConfigError, match="learner"):
        parse_config(doc, base_dir=Path("."), env={})


def test_a_service_without_any_data_source_is_refused():
    with pytest.raises(ConfigError, match="no input and no global parameter"):
        parse_config(_with_service(input=None), base_dir=Path("."), env={})


def test_a_global_parameter_must_set_a_known_target():
    doc = _with_service(global_parameters={"X": {"sets": "colour"}})
    with pytest.raises(ConfigError, match="sets"):
        parse_config(doc, base_dir=Path("."), env={})


def test_unknown_fields_are_refused():
    with pytest.raises(ConfigError, match="typo"):
        parse_config({**MINIMAL, "typo": 1}, base_dir=Path("."), env={})


def test_relative_model_paths_resolve_against_the_config_folder(tmp_path):
    doc = {**MINIMAL, "workspaces": [{"id": "ws", "token": "t", "predictive_services": [
        {"id": "p", "api_key": "k", "trained_model": "M [trained model]", "initial_model": "m.ilearner"}]}]}
    config = parse_config(doc, base_dir=tmp_path, env={})
    assert config.workspaces[0].predictive_services[0].initial_model == tmp_path / "m.ilearner"


def test_help_explains_the_options():
    out = subprocess.run([sys.executable, "-m", "emulators.studio", "--help"], capture_output=True, text=True,
                         cwd=REPO, timeout=60)
    assert out.returncode == 0
    for option in ("--config", "--host", "--port", "--data-dir", "--enable-faults", "--workers"):
        assert option in out.stdout


def test_a_bad_config_exits_2_with_the_reason(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("storage: {}\n")
    out = subprocess.run([sys.executable, "-m", "emulators.studio", "--config", str(path)], capture_output=True,
                         text=True, cwd=REPO, timeout=60)
    assert out.returncode == 2
    assert "connection_string" in out.stderr


def test_without_enable_faults_the_admin_routes_are_404(tmp_path, azurite):
    path = tmp_path / "ws.json"
    path.write_text(json.dumps({**MINIMAL, "storage": {"connection_string": azurite.connection_string}}))
    server = Emulator.start(path, tmp_path / "data", workers=1)
    try:
        assert requests.get(f"{server.url}/healthz").status_code == 200
        assert requests.post(f"{server.url}/_admin/faults", json={"route": "x"}).status_code == 404
        assert requests.get(f"{server.url}/_admin/requests").status_code == 404
    finally:
        server.stop()
