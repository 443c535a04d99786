"""The job pool: bounded concurrency (queued jobs report NotStarted), cancel kills a running job, measurements."""

from __future__ import annotations

import time

import psutil
import requests

from tests.datasets import binary_csv

API = {"api-version": "2.0"}


def _submitted(w) -> str:
    location = w.blobs.upload(w.blobs.container("pool"), "train.csv", binary_csv(60))
    return w.submit(w.binary, {"Inputs": {"input1": w.blobs.connection_reference(location)}})


def _until(w, job_id: str, wanted: str, timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        status = w.status(w.binary, job_id)
        if status["StatusCode"] == wanted:
            return status
        assert time.monotonic() < deadline, f"job {job_id} is {status['StatusCode']}, not {wanted}"
        time.sleep(0.05)


def _debug(w, job_id: str) -> dict:
    r = requests.get(f"{w.url}/_debug/jobs/{job_id}")
    assert r.status_code == 200
    return r.json()


def _cancel(w, job_id: str) -> None:
    assert requests.delete(w.jobs_url(w.binary, job_id), params=API, headers=w.auth(w.binary.key)).status_code == 204


def test_a_started_job_runs(emulator_world, reset_faults):
    w = emulator_world
    reset_faults.inject("slow_job", seconds=30)
    job_id = _submitted(w)
    w.start(w.binary, job_id)
    assert _until(w, job_id, "Running") == {"StatusCode": "Running", "Results": None, "Details": None}
    _cancel(w, job_id)


def test_cancel_stops_a_running_job_and_its_process(emulator_world, reset_faults):
    w = emulator_world
    reset_faults.inject("slow_job", seconds=30)
    job_id = _submitted(w)
    w.start(w.binary, job_id)
    _until(w, job_id, "Running")
    deadline = time.monotonic() + 10
    while "pid" not in _debug(w, job_id) and time.monotonic() < deadline:
        time.sleep(0.05)
    pid = _debug(w, job_id)["pid"]
    _cancel(w, job_id)
    assert w.status(w.binary, job_id)["StatusCode"] == "Cancelled"
    deadline = time.monotonic() + 10
    while psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
        assert time.monotonic() < deadline, "the job's process is still alive"
        time.sleep(0.05)


def test_jobs_beyond_the_worker_pool_wait_as_not_started(emulator_world, reset_faults):
    w = emulator_world
    workers = requests.get(f"{w.url}/_debug/jobs").json()["workers"]
    reset_faults.inject("slow_job", seconds=30, count=workers + 1)
    jobs = [_submitted(w) for _ in range(workers + 1)]
    for job_id in jobs:
        w.start(w.binary, job_id)
    try:
        for job_id in jobs[:workers]:
            _until(w, job_id, "Running")
        assert w.status(w.binary, jobs[-1])["StatusCode"] == "NotStarted"
        assert _debug(w, jobs[-1])["state"] == "Queued"
    finally:
        for job_id in jobs:
            _cancel(w, job_id)


def test_a_queued_job_starts_when_a_worker_frees_up(emulator_world, reset_faults):
    w = emulator_world
    workers = requests.get(f"{w.url}/_debug/jobs").json()["workers"]
    reset_faults.inject("slow_job", seconds=30, count=workers)
    blockers = [_submitted(w) for _ in range(workers)]
    for job_id in blockers:
        w.start(w.binary, job_id)
    waiting = _submitted(w)
    w.start(w.binary, waiting)
    try:
        for job_id in blockers:
            _until(w, job_id, "Running")
        _cancel(w, blockers[0])
        assert w.wait(w.binary, waiting)["StatusCode"] == "Finished"
    finally:
        for job_id in blockers:
            _cancel(w, job_id)


def test_starting_a_queued_job_again_is_accepted(emulator_world, reset_faults):
    w = emulator_world
    workers = requests.get(f"{w.url}/_debug/jobs").json()["workers"]
    reset_faults.inject("slow_job", seconds=30, count=workers)
    blockers = [_submitted(w) for _ in range(workers)]
    for job_id in blockers:
        w.start(w.binary, job_id)
    queued = _submitted(w)
    w.start(w.binary, queued)
    try:
        r = requests.post(w.jobs_url(w.binary, queued) + "/start", params=API, headers=w.auth(w.binary.key))
        assert r.status_code == 204
    finally:
        for job_id in [*blockers, queued]:
            _cancel(w, job_id)


def test_starting_a_running_job_is_cannot_start_job(emulator_world, reset_faults):
    w = emulator_world
    reset_faults.inject("slow_job", seconds=30)
    job_id = _submitted(w)
    w.start(w.binary, job_id)
    _until(w, job_id, "Running")
    r = requests.post(w.jobs_url(w.binary, job_id) + "/start", params=API, headers=w.auth(w.binary.key))
    assert r.status_code == 400
    assert r.json()["error"]["message"] == "The job cannot be started because it is in Running state."
    _cancel(w, job_id)


def test_an_injected_job_failure_ends_failed_with_the_given_details(emulator_world, reset_faults):
    w = emulator_world
    reset_faults.inject("fail_job", details="Error 0000: injected for a test")
    job_id = _submitted(w)
    w.start(w.binary, job_id)
    assert w.wait(w.binary, job_id) == {"StatusCode": "Failed", "Results": None,
                                        "Details": "Error 0000: injected for a test"}


def test_a_finished_job_records_rows_timings_and_peak_rss(emulator_world):
    w = emulator_world
    status = w.train(w.binary, binary_csv(90))
    meta = _debug(w, status["JobId"])
    assert meta["state"] == "Finished"
    assert (meta["rows"], meta["columns"]) == (90, 5)
    assert meta["peak_rss_bytes"] >= meta["start_rss_bytes"] > 0
    assert meta["ended_at"] >= meta["started_at"] >= meta["queued_at"] >= meta["submitted_at"]
    assert "AUC" in meta["metrics"]


def test_the_debug_route_never_shows_credentials(emulator_world):
    w = emulator_world
    status = w.train(w.binary, binary_csv(60))
    text = requests.get(f"{w.url}/_debug/jobs/{status['JobId']}").text
    assert "AccountKey" not in text and "sig=" not in text


def test_a_cancelled_running_job_has_no_results(emulator_world, reset_faults):
    w = emulator_world
    reset_faults.inject("slow_job", seconds=30)
    job_id = _submitted(w)
    w.start(w.binary, job_id)
    _until(w, job_id, "Running")
    _cancel(w, job_id)
    time.sleep(0.3)
    assert w.status(w.binary, job_id) == {"StatusCode": "Cancelled", "Results": None, "Details": None}
