"""host.json: version 2.0, queue options with the host's defaults, route prefix, TimeSpans."""

from __future__ import annotations

import pytest

from devhost.errors import HostConfigError
from devhost.hostconfig import HostConfig, QueueOptions, parse_timespan


def test_defaults_are_the_hosts():
    config = HostConfig.from_dict({"version": "2.0"})
    assert config.queues == QueueOptions(max_dequeue_count=5, visibility_timeout=0.0, batch_size=16,
                                         max_polling_interval=60.0, message_encoding="base64")
    assert config.route_prefix == "api"
    assert config.function_timeout is None


def test_queue_options_and_route_prefix_are_read():
    config = HostConfig.from_dict({"version": "2.0", "functionTimeout": "00:10:00", "extensions": {
        "queues": {"maxDequeueCount": 2, "visibilityTimeout": "00:00:30", "batchSize": 4,
                   "maxPollingInterval": "00:00:02", "messageEncoding": "none"},
        "http": {"routePrefix": ""}}})
    assert config.queues.max_dequeue_count == 2
    assert config.queues.visibility_timeout == 30
    assert config.queues.batch_size == 4
    assert config.queues.max_polling_interval == 2
    assert config.queues.message_encoding == "none"
    assert config.route_prefix == ""
    assert config.function_timeout == 600


def test_version_must_be_2_0():
    with pytest.raises(HostConfigError, match='"version" must be "2.0"'):
        HostConfig.from_dict({"version": "1.0"})


def test_a_missing_host_json_is_an_error(tmp_path):
    with pytest.raises(HostConfigError, match="no host.json"):
        HostConfig.load(tmp_path)


def test_an_out_of_range_batch_size_is_an_error():
    with pytest.raises(HostConfigError, match="batchSize"):
        HostConfig.from_dict({"version": "2.0", "extensions": {"queues": {"batchSize": 64}}})


@pytest.mark.parametrize("text,seconds", [("00:00:30", 30), ("01:02:03", 3723), ("1.00:00:00", 86400),
                                          ("00:00:00.5", 0.5), ("-1", None)])
def test_timespans_are_read_as_seconds(text, seconds):
    assert parse_timespan(text, "x") == seconds
