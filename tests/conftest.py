"""Shared fixtures: a real Azurite and a real studio_emulator on free loopback ports, torn down by PID."""

from __future__ import annotations

import pytest

from devhost.world import Azurite


@pytest.fixture(scope="session")
def azurite():
    """One in-memory Azurite for the whole session; tests isolate themselves by container/table/queue names."""
    server = Azurite.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def storage_connection_string(azurite) -> str:
    return azurite.connection_string
