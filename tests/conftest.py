"""Shared fixtures: a real Azurite and a real emulators.studio on free loopback ports, torn down by PID."""

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


# --- emulators.studio: the test workspace (see tests/emulator_world.py) ------------------------

@pytest.fixture(scope="session")
def emulator_initial_model() -> bytes:
    """The .ilearner the test workspace's predictive and ARM services serve at start (binary, seed 101)."""
    from tests.datasets import binary_csv
    from emulators.training.training import Recipe, train

    return train(binary_csv(200, seed=101), Recipe(task="binary", label="label", learner="logistic_regression")).model


@pytest.fixture(scope="session")
def emulator_config(tmp_path_factory, emulator_initial_model):
    """Path of the test workspace config (JSON) for the shared emulator."""
    from tests.emulator_world import write_workspace

    return write_workspace(tmp_path_factory.mktemp("emulator-config"), emulator_initial_model)


@pytest.fixture(scope="session")
def emulator(azurite, emulator_config, tmp_path_factory):
    """One emulators.studio (devhost.world.Emulator, --enable-faults, 2 workers) for the session, on Azurite."""
    from devhost.world import Emulator
    from tests.emulator_world import STORAGE_ENV

    server = Emulator.start(emulator_config, tmp_path_factory.mktemp("emulator-data"), faults=True, workers=2,
                            env={STORAGE_ENV: azurite.connection_string})
    yield server
    server.stop()


@pytest.fixture(scope="session")
def emulator_world(emulator, azurite):
    """An `emulator_world.EmulatorWorld`: ids, keys, URL builders, `.faults` (admin client), `.blobs` (Azurite)."""
    from tests.emulator_world import Blobs, EmulatorWorld, FaultsClient

    return EmulatorWorld(url=emulator.url, storage_connection_string=azurite.connection_string,
                         faults=FaultsClient(emulator.url), blobs=Blobs(azurite.connection_string))


@pytest.fixture
def reset_faults(emulator_world):
    """Disarm faults and clear the request log before and after the test; yields the FaultsClient."""
    emulator_world.faults.reset()
    yield emulator_world.faults
    emulator_world.faults.reset()
