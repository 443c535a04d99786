"""The config file and the command line of emulators.azureml."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from emulators.azureml.config import load_config, parse_config
from emulators.azureml.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "azureml" / "workspace.yaml"


def test_the_shipped_example_config_loads():
    config = load_config(EXAMPLE, env={})
    w = config.workspaces[0]
    assert w.code["retrain-src"] == (EXAMPLE.parent / "src").resolve()
    assert config.storage.connection_string == "UseDevelopmentStorage=true"
    assert config.provisioning_seconds == 1


def test_a_default_datastore_that_is_not_a_datastore_is_an_error(tmp_path):
    raw = {"token": "t", "storage": {"connection_string": "x"},
           "workspaces": [{"subscription": "s", "resource_group": "r", "name": "w", "default_datastore": "nope"}]}
    with pytest.raises(ConfigError, match="default_datastore"):
        parse_config(raw, base_dir=tmp_path, env={})


def test_a_missing_code_folder_is_an_error(tmp_path):
    raw = {"token": "t", "storage": {"connection_string": "x"},
           "workspaces": [{"subscription": "s", "resource_group": "r", "name": "w", "code": {"src": "missing"}}]}
    with pytest.raises(ConfigError, match="does not exist"):
        parse_config(raw, base_dir=tmp_path, env={})


def test_unknown_fields_and_unset_variables_are_errors(tmp_path):
    with pytest.raises(ConfigError, match="colour: Extra inputs"):
        parse_config({"token": "t", "storage": {"connection_string": "x"}, "workspaces": [], "colour": 1},
                     base_dir=tmp_path, env={})
    with pytest.raises(ConfigError, match="NOPE"):
        parse_config({"token": "${NOPE}"}, base_dir=tmp_path, env={})


def test_help_explains_every_option():
    out = subprocess.run([sys.executable, "-m", "emulators.azureml", "--help"], capture_output=True, text=True,
                         cwd=REPO, timeout=60)
    assert out.returncode == 0
    for option in ("--config", "--host", "--port", "--data-dir", "--workers", "--provisioning-seconds",
                   "--enable-faults", "--no-tls", "--log-level", "REQUESTS_CA_BUNDLE"):
        assert option in out.stdout


def test_a_bad_config_exits_2_with_the_reason(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("token: t\n")
    out = subprocess.run([sys.executable, "-m", "emulators.azureml", "--config", str(path)], capture_output=True,
                         text=True, cwd=REPO, timeout=60)
    assert out.returncode == 2 and "storage" in out.stderr
