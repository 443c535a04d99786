"""State survives a restart; a job the restart cut off ends Failed with an infrastructure error."""

from __future__ import annotations

import time

import pytest
import requests

from tests.azureml.conftest import AzureMLWorld

pytestmark = pytest.mark.slow


@pytest.fixture
def own_server(azurite, azureml_config, tmp_path):
    """A server of its own (this test restarts it), one job worker."""
    from devhost.world import AzureML

    server = AzureML.start(azureml_config, tmp_path / "data", workers=1,
                           env={"AZUREML_STORAGE": azurite.connection_string})
    yield AzureMLWorld(server.url, server.ca, azurite.connection_string, server)
    server.stop()


def test_a_restart_keeps_jobs_and_fails_the_running_one_as_an_infrastructure_error(own_server):
    world = own_server
    done, _ = world.put_job("echo finished", code="tools")
    assert world.wait_job(done)["properties"]["status"] == "Completed"
    cut, _ = world.put_job("python sleepy.py 120", code="tools")
    assert world.wait_job(cut, until=("Running",))["properties"]["status"] == "Running"
    deadline = time.monotonic() + 60
    while "sleeping" not in world.rest("GET", f"/jobs/{cut}/logs").text and time.monotonic() < deadline:
        time.sleep(0.1)  # the script has logged its metric
    ca_before = world.ca.read_bytes()

    world.server.restart()

    assert world.ca.read_bytes() == ca_before  # clients keep trusting the same CA
    assert world.rest("GET", f"/jobs/{done}").json()["properties"]["status"] == "Completed"
    job = world.rest("GET", f"/jobs/{cut}").json()
    assert job["properties"]["status"] == "Failed"
    assert job["properties"]["error"]["category"] == "SystemError"
    assert "restarted" in job["properties"]["error"]["message"]
    run = requests.get(f"{world.tracking_uri}/api/2.0/mlflow/runs/get", params={"run_id": cut},
                       headers={"Authorization": "Bearer test-azureml-token"}, verify=str(world.ca), timeout=10)
    assert run.json()["run"]["info"]["status"] == "FAILED"
    assert run.json()["run"]["data"]["metrics"][0]["key"] == "started"  # logged before the cut survives


def test_the_cancelled_job_process_group_is_gone(own_server):
    import psutil

    world = own_server
    name, _ = world.put_job("python sleepy.py 120", code="tools")
    world.wait_job(name, until=("Running",))
    time.sleep(0.3)
    children = psutil.Process(world.server.process.pid).children(recursive=True)
    sleepers = [p for p in children if "sleepy.py" in " ".join(p.cmdline())]
    assert sleepers
    world.rest("POST", f"/jobs/{name}/cancel")
    assert world.wait_job(name)["properties"]["status"] == "Canceled"
    gone, alive = psutil.wait_procs(sleepers, timeout=10)
    assert not alive
