"""Starting and stopping: clear start-up errors, settings sources, graceful shutdown, drain."""

from __future__ import annotations

import json
import os

import pytest
import requests

from devhost.errors import DrainTimeout, MissingSettingError, SettingsFileError
from devhost.host import DevHost
from .devhost_testkit import make_script_root, wait_for


def test_a_missing_setting_stops_start_up_naming_the_setting_and_the_function(sample, sample_root):
    settings = {k: v for k, v in sample.settings.items() if k != "SAMPLE_SCHEDULE"}
    host = DevHost("sample_app", sample_root, settings=settings, port=0)
    with pytest.raises(MissingSettingError) as e:
        host.start()
    assert e.value.setting == "SAMPLE_SCHEDULE"
    assert "function 'tick' timer schedule" in str(e.value)


def test_a_failed_start_leaves_the_environment_as_it_was(sample, sample_root):
    settings = {k: v for k, v in sample.settings.items() if k != "SAMPLE_SCHEDULE"}
    before = dict(os.environ)
    with pytest.raises(MissingSettingError):
        DevHost("sample_app", sample_root, settings=settings, port=0).start()
    assert dict(os.environ) == before


def test_bad_json_in_local_settings_stops_start_up(tmp_path):
    root = make_script_root(tmp_path / "root")
    (root / "local.settings.json").write_text("{not json")
    with pytest.raises(SettingsFileError, match="local.settings.json: not valid JSON"):
        DevHost("sample_app", root, port=0).start()


def test_local_settings_values_are_used_when_the_environment_does_not_set_them(sample, start_host, tmp_path):
    root = make_script_root(tmp_path / "root")
    (root / "local.settings.json").write_text(json.dumps({"IsEncrypted": False, "Values": sample.settings}))
    host = start_host(root, settings={})
    sample.send("SAMPLE_QUEUE", "via file settings")
    host.drain(timeout=10)
    assert sample.results("queue")[0]["body"] == "via file settings"


def test_stop_restores_the_environment(sample, start_host):
    before = os.environ.get("SAMPLE_QUEUE")
    host = start_host()
    assert os.environ["SAMPLE_QUEUE"] == sample.name("SAMPLE_QUEUE")
    host.stop()
    assert os.environ.get("SAMPLE_QUEUE") == before


def test_stop_waits_for_running_invocations_to_finish(sample, start_host):
    host = start_host()
    sample.send("SAMPLE_QUEUE", "sleep-1")
    wait_for(lambda: host._pool.running, what="the invocation to start")
    assert host.stop(timeout=10) is True
    assert [d["body"] for d in sample.results("queue")] == ["sleep-1"]
    assert sample.queue(sample.name("SAMPLE_QUEUE")).get_queue_properties().approximate_message_count == 0


def test_stopped_host_no_longer_serves_http(start_host):
    host = start_host()
    url = f"{host.url}/admin/host/status"
    assert requests.get(url, timeout=5).json()["state"] == "Running"
    host.stop()
    with pytest.raises(requests.ConnectionError):
        requests.get(url, timeout=2)


def test_drain_raises_naming_what_is_pending_when_time_runs_out(sample, start_host):
    host = start_host()
    sample.send("SAMPLE_QUEUE", "sleep-1")
    with pytest.raises(DrainTimeout, match=f"queue {sample.name('SAMPLE_QUEUE')}: 1 message"):
        host.drain(timeout=0.3)
    host.drain(timeout=10)


def test_drain_waits_for_work_that_work_creates(sample, start_host):
    host = start_host()
    sample.send("SAMPLE_FORWARD_IN", "chain")   # forward -> queue -> record
    host.drain(timeout=10)
    assert len(sample.results("queue")) == 1


def test_a_function_disabled_by_app_setting_is_not_triggered(sample, start_host):
    host = start_host(settings={"AzureWebJobs.record_message.Disabled": "true"})
    sample.send("SAMPLE_QUEUE", "ignored")
    host.drain(timeout=10)   # a disabled function's queue is not watched, so drain does not wait for it
    assert sample.results("queue") == []
    assert len(sample.peek(sample.name("SAMPLE_QUEUE"))) == 1
