"""BES job lifecycle: submit returns a JSON string id, start 204, status, results, cancel, failure Details."""

from __future__ import annotations

import csv
import io
import json

import pytest
import requests

from tests.datasets import binary_csv, regression_csv

API = {"api-version": "2.0"}


def _csv_rows(data: bytes) -> list[dict]:
    return list(csv.DictReader(io.StringIO(data.decode())))


def _download(ref: dict) -> bytes:
    r = requests.get(ref["BaseLocation"] + ref["RelativeLocation"] + ref["SasBlobToken"], timeout=30)
    assert r.status_code == 200, r.text
    return r.content


def test_submit_answers_the_job_id_as_a_json_string(emulator_world):
    w = emulator_world
    location = w.blobs.upload(w.blobs.container(), "train.csv", binary_csv(60))
    r = requests.post(w.jobs_url(w.binary), params=API, headers=w.auth(w.binary.key),
                      json={"Inputs": {"input1": w.blobs.connection_reference(location)}})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/json")
    job_id = r.json()
    assert isinstance(job_id, str) and len(job_id) == 32 and int(job_id, 16) >= 0


def test_a_submitted_job_is_not_started_and_has_no_results(emulator_world):
    w = emulator_world
    location = w.blobs.upload(w.blobs.container(), "train.csv", binary_csv(60))
    job_id = w.submit(w.binary, {"Inputs": {"input1": w.blobs.connection_reference(location)}})
    assert w.status(w.binary, job_id) == {"StatusCode": "NotStarted", "Results": None, "Details": None}


def test_start_answers_204_with_an_empty_body(emulator_world):
    w = emulator_world
    location = w.blobs.upload(w.blobs.container(), "train.csv", binary_csv(60))
    job_id = w.submit(w.binary, {"Inputs": {"input1": w.blobs.connection_reference(location)}})
    r = requests.post(w.jobs_url(w.binary, job_id) + "/start", params=API, headers=w.auth(w.binary.key))
    assert (r.status_code, r.content) == (204, b"")
    w.wait(w.binary, job_id)


def test_a_finished_job_returns_read_only_sas_references_for_both_outputs(emulator_world):
    w = emulator_world
    status = w.train(w.binary, binary_csv(200, seed=3))
    assert status["StatusCode"] == "Finished", status["Details"]
    assert status["Details"] is None
    assert set(status["Results"]) == {"output1", "output2"}
    for ref in status["Results"].values():
        assert ref["ConnectionString"] is None
        assert ref["BaseLocation"].endswith("/")
        assert "sp=r&" in ref["SasBlobToken"] + "&" and ref["SasBlobToken"].startswith("?")


def test_default_outputs_go_to_experimentoutput_in_the_emulators_own_storage(emulator_world):
    w = emulator_world
    status = w.train(w.binary, binary_csv(120, seed=4))
    model = status["Results"]["output1"]["RelativeLocation"]
    evaluation = status["Results"]["output2"]["RelativeLocation"]
    assert model.startswith(f"experimentoutput/{status['JobId']}/") and model.endswith(".ilearner")
    assert evaluation.startswith(f"experimentoutput/{status['JobId']}/") and evaluation.endswith(".csv")
    assert w.blobs.exists(model) and w.blobs.exists(evaluation)


def test_the_evaluation_output_holds_binary_metrics_for_the_new_model(emulator_world):
    w = emulator_world
    status = w.train(w.binary, binary_csv(200, seed=5))
    rows = _csv_rows(_download(status["Results"]["output2"]))
    assert len(rows) == 1
    assert {"Accuracy", "Precision", "Recall", "F-Score", "AUC"} <= set(rows[0])
    assert float(rows[0]["AUC"]) > 0.8


def test_the_model_output_is_an_ilearner_the_emulator_can_load(emulator_world):
    from emulators.training.training import load_model

    w = emulator_world
    status = w.train(w.binary, binary_csv(150, seed=6))
    model = load_model(_download(status["Results"]["output1"]))
    assert (model.label, model.task) == ("label", "binary")


def test_a_regression_service_writes_its_configured_output_names(emulator_world):
    w = emulator_world
    status = w.train(w.regression, regression_csv(150, seed=1), GlobalParameters={})
    assert status["StatusCode"] == "Finished", status["Details"]
    assert set(status["Results"]) == {"model", "evaluation"}
    rows = _csv_rows(_download(status["Results"]["evaluation"]))
    assert float(rows[0]["Coefficient of Determination"]) > 0.9


def test_each_status_get_mints_a_fresh_sas(emulator_world):
    w = emulator_world
    status = w.train(w.binary, binary_csv(80, seed=7))
    again = w.status(w.binary, status["JobId"])
    assert again["Results"]["output1"]["RelativeLocation"] == status["Results"]["output1"]["RelativeLocation"]
    assert _download(again["Results"]["output1"])


def test_a_job_with_bad_data_fails_with_the_module_error_in_details(emulator_world):
    from tests.datasets import ragged_csv

    w = emulator_world
    status = w.train(w.binary, ragged_csv(40))
    assert status["StatusCode"] == "Failed"
    assert status["Results"] is None
    assert "All rows must have same number of elements" in status["Details"]
    assert json.loads(status["Details"])["error"]["details"][0]["message"].startswith("Error 1000:")


def test_numeric_status_codes_when_the_service_is_configured_so(emulator_world):
    w = emulator_world
    location = w.blobs.upload(w.blobs.container(), "train.csv", binary_csv(80))
    job_id = w.submit(w.numeric, {"Inputs": {"input1": w.blobs.connection_reference(location)}})
    assert w.status(w.numeric, job_id)["StatusCode"] == 0
    w.start(w.numeric, job_id)
    assert w.wait(w.numeric, job_id)["StatusCode"] == 4


@pytest.mark.parametrize("numeric", [False, True], ids=["names", "numbers"])
def test_cancel_of_a_submitted_job_answers_204_and_it_ends_cancelled(emulator_world, numeric):
    w = emulator_world
    service = w.numeric if numeric else w.binary
    location = w.blobs.upload(w.blobs.container(), "train.csv", binary_csv(60))
    job_id = w.submit(service, {"Inputs": {"input1": w.blobs.connection_reference(location)}})
    r = requests.delete(w.jobs_url(service, job_id), params=API, headers=w.auth(service.key))
    assert (r.status_code, r.content) == (204, b"")
    assert w.status(service, job_id)["StatusCode"] == (3 if numeric else "Cancelled")
