"""retrain.bes.BesClient against the real emulators.studio (BES api-version 2.0) and a real Azurite."""

from __future__ import annotations

import logging
import re
import time

import pytest
import requests

from retrain.bes import MAX_DETAILS, BatchJobRequest, BesClient, JobState, JobStatus
from retrain.errors import (AuthenticationFailed, InvalidModelDefinition, JobNotFound, PermanentServiceError,
                            TransientServiceError)
from retrain.http import RetryPolicy
from retrain.locations import BlobLocation
from tests.datasets import binary_csv

# Small, fast policy: the tests script the failures, so nothing needs long waits.
FAST = RetryPolicy(attempts=4, backoff=0.05, max_backoff=0.2, budget=5.0)


# --- helpers --------------------------------------------------------------------------------

def client(world, service=None, *, key: str | None = None, retry: RetryPolicy = FAST) -> BesClient:
    service = service or world.binary
    return BesClient(world.bes_url(service), key or service.key, retry=retry)


def job_request(world, rows: int = 80, seed: int = 0,
                parameters: dict[str, str] | None = None) -> tuple[BatchJobRequest, dict[str, BlobLocation]]:
    """Training data uploaded to Azurite; inputs/outputs as SAS references, as the app sends them."""
    blobs = world.blobs
    data = blobs.container("bes-in")
    out = blobs.container("bes-out")
    relative = blobs.upload(data, "train.csv", binary_csv(rows, seed=seed))
    write_sas = blobs.container_sas(out, write=True)
    outputs = {"output1": BlobLocation(blobs.base_location, f"{out}/model.ilearner", write_sas),
               "output2": BlobLocation(blobs.base_location, f"{out}/evaluation.csv", write_sas)}
    inputs = {"input1": BlobLocation(blobs.base_location, relative, blobs.sas(relative))}
    return BatchJobRequest(inputs, outputs, parameters or {}), outputs


def wait_until(bes: BesClient, job_id: str, done, timeout: float = 90) -> JobStatus:
    deadline = time.monotonic() + timeout
    while True:
        status = bes.status(job_id)
        if done(status):
            return status
        assert time.monotonic() < deadline, f"job {job_id} still {status.state} after {timeout}s"
        time.sleep(0.1)


# The emulator's fault rules and request log, matched by method and path (not by route name; see the report).
SUBMIT = {"method": "POST", "path": r"/jobs$"}
START = {"method": "POST", "path": r"/jobs/[^/]+/start$"}
STATUS = {"method": "GET", "path": r"/jobs/[^/]+$"}


def served(faults, route: dict) -> list[int]:
    """Statuses the emulator answered for `route`, oldest first."""
    return [e["status"] for e in faults.requests(method=route["method"]) if re.search(route["path"], e["path"])]


def finished(status: JobStatus) -> bool:
    return status.state.terminal


@pytest.fixture(scope="module")
def finished_job(emulator_world):
    """One job trained to Finished, shared by the tests that only read it: (client, job id, status, outputs)."""
    bes = client(emulator_world)
    request, outputs = job_request(emulator_world, parameters={"Random seed": "7"})
    job_id = bes.submit(request)
    bes.start(job_id)
    return bes, job_id, wait_until(bes, job_id, finished), outputs


# --- the happy path ---------------------------------------------------------------------------

def test_submitted_job_starts_and_finishes(finished_job):
    _, _, status, _ = finished_job
    assert status.state is JobState.FINISHED, status.details
    assert status.details is None


def test_finished_job_reports_each_output_where_it_was_asked_to_write(finished_job):
    _, _, status, outputs = finished_job
    assert set(status.results) == {"output1", "output2"}
    for name, location in outputs.items():
        assert status.results[name].uri == location.uri


def test_finished_job_results_carry_a_read_sas_that_opens_the_blob(finished_job):
    _, _, status, _ = finished_job
    evaluation = status.results["output2"]
    assert evaluation.sas_token.startswith("?")
    response = requests.get(evaluation.url, timeout=10)
    assert response.status_code == 200 and b"AUC" in response.content


def test_submitted_job_is_not_started(emulator_world, reset_faults):
    bes = client(emulator_world)
    job_id = bes.submit(job_request(emulator_world)[0])
    assert bes.status(job_id) == JobStatus(JobState.NOT_STARTED, None, None)
    bes.cancel(job_id)


def test_numeric_status_codes_parse(emulator_world, reset_faults):
    bes = client(emulator_world, emulator_world.numeric)
    job_id = bes.submit(job_request(emulator_world)[0])
    bes.cancel(job_id)
    raw = requests.get(emulator_world.jobs_url(emulator_world.numeric, job_id), params={"api-version": "2.0"},
                       headers=emulator_world.auth(emulator_world.numeric.key), timeout=10).json()
    assert raw["StatusCode"] == 3  # the service really answers with a number
    assert bes.status(job_id).state is JobState.CANCELLED


@pytest.mark.parametrize("wire, state", [
    ("NotStarted", JobState.NOT_STARTED), (1, JobState.RUNNING), ("2", JobState.FAILED),
    ("Canceled", JobState.CANCELLED), (3, JobState.CANCELLED), ("finished", JobState.FINISHED), (4, JobState.FINISHED),
])
def test_job_state_parses_names_and_numbers(wire, state):
    assert JobState.parse(wire) is state


@pytest.mark.parametrize("wire", [5, -1, "Done", None, True, 1.5])
def test_job_state_rejects_other_values(wire):
    with pytest.raises(ValueError):
        JobState.parse(wire)


def test_only_failed_cancelled_and_finished_are_terminal():
    assert {s for s in JobState if s.terminal} == {JobState.FAILED, JobState.CANCELLED, JobState.FINISHED}


def test_request_to_wire_leaves_out_empty_parts():
    location = BlobLocation("https://acct.blob.core.windows.net", "/c/train.csv", "sv=1&sig=x")
    assert BatchJobRequest({"input1": location}, {}, {}).to_wire() == {"Inputs": {"input1": {
        "BaseLocation": "https://acct.blob.core.windows.net/", "RelativeLocation": "c/train.csv",
        "SasBlobToken": "?sv=1&sig=x"}}}


# --- idempotence ------------------------------------------------------------------------------

def test_start_of_a_finished_job_is_not_an_error(finished_job, reset_faults):
    bes, job_id, _, _ = finished_job
    bes.start(job_id)  # a re-delivered "start" message
    assert served(reset_faults, START).count(400) == 1  # CannotStartJob, recognised and absorbed
    assert bes.status(job_id).state is JobState.FINISHED


def test_start_twice_in_a_row_is_not_an_error(emulator_world, reset_faults):
    bes = client(emulator_world)
    job_id = bes.submit(job_request(emulator_world)[0])
    bes.start(job_id)
    bes.start(job_id)
    wait_until(bes, job_id, finished)


def test_cancel_stops_a_running_job(emulator_world, reset_faults):
    reset_faults.inject("slow_job", seconds=30)
    bes = client(emulator_world)
    job_id = bes.submit(job_request(emulator_world)[0])
    bes.start(job_id)
    wait_until(bes, job_id, lambda s: s.state is JobState.RUNNING, timeout=30)
    bes.cancel(job_id)
    assert bes.status(job_id).state is JobState.CANCELLED


def test_cancel_of_a_finished_job_is_not_an_error_and_keeps_it_finished(finished_job):
    bes, job_id, _, _ = finished_job
    bes.cancel(job_id)
    assert bes.status(job_id).state is JobState.FINISHED


def test_cancel_of_an_unknown_job_is_not_an_error(emulator_world):
    client(emulator_world).cancel("0" * 32)


# --- failures -----------------------------------------------------------------------------------

def test_status_of_an_unknown_job_is_job_not_found(emulator_world):
    with pytest.raises(JobNotFound) as info:
        client(emulator_world).status("0" * 32)
    assert info.value.status == 404


def test_start_of_an_unknown_job_is_job_not_found(emulator_world):
    with pytest.raises(JobNotFound):
        client(emulator_world).start("0" * 32)


def test_unknown_service_is_permanent_but_not_job_not_found(emulator_world):
    bes = BesClient(emulator_world.bes_url("no-such-service"), "k", retry=FAST)
    with pytest.raises(PermanentServiceError) as info:
        bes.submit(BatchJobRequest())
    assert info.value.status == 404 and not isinstance(info.value, JobNotFound)


def test_wrong_key_is_authentication_failed_and_the_key_appears_nowhere(emulator_world, caplog):
    wrong = "wrong-key-5f2e9a1c7b3d"
    bes = client(emulator_world, key=wrong)
    with caplog.at_level(logging.DEBUG), pytest.raises(AuthenticationFailed) as info:
        bes.submit(job_request(emulator_world)[0])
    error = info.value
    assert error.status == 401 and error.code == "Unauthorized"
    for text in (str(error), repr(error), repr(error.args), repr(bes), caplog.text):
        assert wrong not in text


def test_bad_argument_envelope_is_permanent_with_code_and_detail_code(emulator_world):
    request, outputs = job_request(emulator_world)
    misnamed = BatchJobRequest(request.inputs, {"Output1": outputs["output1"]}, {})  # names are case-sensitive
    with pytest.raises(PermanentServiceError) as info:
        client(emulator_world).submit(misnamed)
    error = info.value
    assert (error.status, error.code, error.detail_code) == (400, "BadArgument", "InvalidOutputOverrideName")
    assert "Output1" in str(error)


def test_failed_job_keeps_the_service_details_without_sas_signatures(emulator_world, reset_faults):
    details = ("Error 1000: AFx Library library exception: All rows must have same number of elements "
               "(blob https://acct.blob.core.windows.net/c/x.csv?sv=1&sig=SECRETSIGNATURE)")
    reset_faults.inject("fail_job", details=details)
    bes = client(emulator_world)
    job_id = bes.submit(job_request(emulator_world)[0])
    bes.start(job_id)
    status = wait_until(bes, job_id, finished)
    assert status.state is JobState.FAILED
    assert "All rows must have same number of elements" in status.details
    assert "SECRETSIGNATURE" not in status.details


def test_failed_job_details_are_trimmed_keeping_head_and_tail(emulator_world, reset_faults):
    reset_faults.inject("fail_job", details="HEAD " + "x" * 20000 + " TAIL")
    bes = client(emulator_world)
    job_id = bes.submit(job_request(emulator_world)[0])
    bes.start(job_id)
    details = wait_until(bes, job_id, finished).details
    assert len(details) <= MAX_DETAILS + 60
    assert details.startswith("HEAD ") and details.endswith(" TAIL")


# --- retries and injected faults ------------------------------------------------------------

def test_throttled_status_is_retried_after_retry_after(finished_job, reset_faults):
    bes, job_id, _, _ = finished_job
    reset_faults.inject(**STATUS, status=429, retry_after=0.2, count=1)
    started = time.monotonic()
    assert bes.status(job_id).state is JobState.FINISHED
    assert time.monotonic() - started >= 0.2
    assert served(reset_faults, STATUS) == [429, 200]


def test_unavailable_beyond_the_budget_is_transient(finished_job, reset_faults):
    bes, job_id, _, _ = finished_job
    reset_faults.inject(**STATUS, status=503, count=100)
    with pytest.raises(TransientServiceError) as info:
        bes.status(job_id)
    assert info.value.status == 503 and info.value.detail_code == "TooManyConcurrentRequests"
    assert len(served(reset_faults, STATUS)) == FAST.attempts


def test_retry_after_longer_than_the_budget_is_handed_back_at_once(finished_job, reset_faults):
    bes, job_id, _, _ = finished_job
    reset_faults.inject(**STATUS, status=503, retry_after=120, count=1)
    with pytest.raises(TransientServiceError) as info:
        bes.status(job_id)
    assert info.value.retry_after == 120
    assert len(served(reset_faults, STATUS)) == 1


def test_garbled_status_body_is_transient_after_retries(finished_job, reset_faults):
    bes, job_id, _, _ = finished_job
    reset_faults.inject(**STATUS, status=200, malformed=True, count=100)
    with pytest.raises(TransientServiceError, match="not JSON"):
        bes.status(job_id)
    assert len(served(reset_faults, STATUS)) == FAST.attempts


def test_garbled_status_body_once_is_retried_to_success(finished_job, reset_faults):
    bes, job_id, _, _ = finished_job
    reset_faults.inject(**STATUS, status=200, malformed=True, count=1)
    assert bes.status(job_id).state is JobState.FINISHED


def test_submit_is_not_retried_after_500_and_reports_transient(emulator_world, reset_faults):
    reset_faults.inject(**SUBMIT, status=500, count=1)
    with pytest.raises(TransientServiceError) as info:
        client(emulator_world).submit(job_request(emulator_world)[0])
    assert info.value.status == 500
    assert len(served(reset_faults, SUBMIT)) == 1  # the job may exist: re-submitting is the caller's call


def test_submit_is_retried_after_503_refusal_and_returns_the_job_id(emulator_world, reset_faults):
    reset_faults.inject(**SUBMIT, status=503, count=1)
    bes = client(emulator_world)
    job_id = bes.submit(job_request(emulator_world)[0])
    assert served(reset_faults, SUBMIT) == [503, 200]
    assert bes.status(job_id).state is JobState.NOT_STARTED
    bes.cancel(job_id)


def test_garbled_submit_body_is_transient_and_not_retried(emulator_world, reset_faults):
    reset_faults.inject(**SUBMIT, status=200, malformed=True, count=1)
    with pytest.raises(TransientServiceError, match="not JSON"):
        client(emulator_world).submit(job_request(emulator_world)[0])
    assert len(served(reset_faults, SUBMIT)) == 1


def test_start_is_retried_after_500(emulator_world, reset_faults):
    bes = client(emulator_world)
    job_id = bes.submit(job_request(emulator_world)[0])
    reset_faults.inject(**START, status=500, count=1)
    bes.start(job_id)
    assert served(reset_faults, START) == [500, 204]
    wait_until(bes, job_id, finished)


# --- configuration --------------------------------------------------------------------------

@pytest.mark.parametrize("suffix", ["/jobs", "/jobs?api-version=2.0", "/execute?api-version=2.0&details=true", "/"])
def test_service_url_with_jobs_execute_or_query_is_normalised(emulator_world, suffix):
    base = emulator_world.bes_url(emulator_world.binary)
    assert BesClient(base + suffix, "k").base == base


@pytest.mark.parametrize("url", ["ftp://host/workspaces/w/services/s", "workspaces/w/services/s", ""])
def test_service_url_that_is_not_http_is_rejected(url):
    with pytest.raises(InvalidModelDefinition):
        BesClient(url, "k")


def test_client_repr_shows_no_key():
    assert "topsecret" not in repr(BesClient("https://x.services.azureml.net/workspaces/w/services/s", "topsecret"))
