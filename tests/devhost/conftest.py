"""Fixtures for devhost tests: the sample app in its own script root, unique storage names per test."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from devhost.host import DevHost
from .devhost_testkit import Sample, make_script_root


@pytest.fixture
def sample(azurite) -> Sample:
    s = Sample(azurite.connection_string, uuid.uuid4().hex[:10])
    s.blobs.create_container(s.name("SAMPLE_RESULTS"))
    return s


@pytest.fixture(scope="session")
def sample_root(tmp_path_factory) -> Path:
    return make_script_root(tmp_path_factory.mktemp("sample-root"))


@pytest.fixture
def start_host(sample, sample_root):
    """Start DevHosts on the sample app (fast polling, free port); all are stopped at the end of the test."""
    hosts: list[DevHost] = []

    def start(root: Path | None = None, **overrides: Any) -> DevHost:
        settings = {**sample.settings, **overrides.pop("settings", {})}
        options = {"poll_interval": 0.05, "max_polling_interval": 0.2, "queue_lease": 10.0,
                   "host_id": f"test-{sample.suffix}", **overrides}
        host = DevHost(app_module="sample_app", script_root=root or sample_root, settings=settings, port=0, **options)
        hosts.append(host)
        return host.start()

    yield start
    for h in hosts:
        h.stop(timeout=5)
