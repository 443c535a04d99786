"""App settings: local.settings.json under the environment, and %SETTING% resolution with clear errors."""

from __future__ import annotations

import pytest

from devhost.errors import MissingSettingError, SettingsFileError
from devhost.settings import LocalSettings, apply_settings, resolve


def test_values_and_local_http_port_are_read(tmp_path):
    path = tmp_path / "local.settings.json"
    path.write_text('{"IsEncrypted": false, "Values": {"A": "1"}, "Host": {"LocalHttpPort": 7072}}')
    settings = LocalSettings.load(path)
    assert settings.values == {"A": "1"}
    assert settings.local_http_port == 7072


def test_bad_json_is_a_settings_file_error_with_the_position(tmp_path):
    path = tmp_path / "local.settings.json"
    path.write_text('{"Values": {"A": "1",}}')
    with pytest.raises(SettingsFileError, match=r"not valid JSON: .* line 1 column"):
        LocalSettings.load(path)


def test_values_must_be_strings(tmp_path):
    path = tmp_path / "local.settings.json"
    path.write_text('{"Values": {"PORT": 80}}')
    with pytest.raises(SettingsFileError, match="not a string: PORT"):
        LocalSettings.load(path)


def test_a_missing_file_is_fine_unless_it_was_asked_for(tmp_path):
    assert LocalSettings.load(tmp_path / "absent.json").values == {}
    with pytest.raises(SettingsFileError, match="no such settings file"):
        LocalSettings.load(tmp_path / "absent.json", required=True)


def test_file_values_do_not_override_the_environment_but_explicit_ones_do():
    env = {"A": "from-env", "B": "from-env"}
    applied = apply_settings({"A": "file", "C": "file"}, {"B": "explicit"}, env)
    assert env == {"A": "from-env", "B": "explicit", "C": "file"}
    applied.restore(env)
    assert env == {"A": "from-env", "B": "from-env"}


def test_percent_names_are_replaced_by_app_settings():
    assert resolve("%CONTAINER%/{name}", "here", {"CONTAINER": "training-data"}) == "training-data/{name}"


def test_a_missing_setting_names_the_setting_and_where_it_is_used():
    with pytest.raises(MissingSettingError) as e:
        resolve("%RETRAIN_SCHEDULE%", "function 'nightly' timer schedule", {})
    assert e.value.setting == "RETRAIN_SCHEDULE"
    assert "function 'nightly' timer schedule needs app setting 'RETRAIN_SCHEDULE'" in str(e.value)
