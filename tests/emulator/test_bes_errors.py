"""Every BES refusal answers the documented envelope with the documented code, class and HTTP status."""

from __future__ import annotations

import pytest
import requests

from tests.datasets import binary_csv

API = {"api-version": "2.0"}


@pytest.fixture(scope="module")
def data_location(emulator_world) -> str:
    w = emulator_world
    return w.blobs.upload(w.blobs.container("errors"), "train.csv", binary_csv(60))


def _submit(w, body, *, service=None, key=None, params=API, data=None):
    service = service or w.binary
    kwargs = {"data": data, "headers": {**w.auth(key or service.key), "Content-Type": "application/json"}} \
        if data is not None else {"json": body, "headers": w.auth(key or service.key)}
    return requests.post(w.jobs_url(service), params=params, **kwargs)


def _error(r, status: int, code: str, detail: str):
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert (error["code"], error["details"][0]["code"]) == (code, detail)
    assert error["message"] and error["details"][0]["message"]
    return error


def test_a_wrong_key_is_401_unauthorized(emulator_world, data_location):
    w = emulator_world
    r = _submit(w, {"Inputs": {"input1": w.blobs.connection_reference(data_location)}}, key="wrong")
    _error(r, 401, "Unauthorized", "ScoreRequestUnauthorized")


def test_a_missing_authorization_header_is_401(emulator_world):
    w = emulator_world
    r = requests.post(w.jobs_url(w.binary), params=API, json={})
    assert r.status_code == 401


def test_an_unknown_service_is_404_web_service_not_found(emulator_world):
    w = emulator_world
    r = requests.post(w.jobs_url("no-such-service"), params=API, json={}, headers=w.auth(w.binary.key))
    _error(r, 404, "NotFound", "WebServiceNotFound")


def test_an_unknown_workspace_is_404_workspace_not_found(emulator_world):
    w = emulator_world
    url = w.jobs_url(w.binary).replace(w.workspace_id, "0" * 32)
    _error(requests.post(url, params=API, json={}, headers=w.auth(w.binary.key)), 404, "NotFound", "WorkspaceNotFound")


@pytest.mark.parametrize("version", [None, "1.0", "2.1"])
def test_an_api_version_other_than_2_0_is_bad_argument(emulator_world, data_location, version):
    w = emulator_world
    params = {"api-version": version} if version else {}
    r = _submit(w, {"Inputs": {"input1": w.blobs.connection_reference(data_location)}}, params=params)
    _error(r, 400, "BadArgument", "InvalidApiVersion")


@pytest.mark.parametrize("raw", [b"{not json", b"", b"[1,"])
def test_a_body_that_is_not_json_is_request_body_invalid(emulator_world, raw):
    w = emulator_world
    _error(_submit(w, None, data=raw), 400, "BadArgument", "RequestBodyInvalid")


def test_both_input_and_inputs_is_duplicate_input_in_batch_call(emulator_world, data_location):
    w = emulator_world
    ref = w.blobs.connection_reference(data_location)
    _error(_submit(w, {"Input": ref, "Inputs": {"input1": ref}}), 400, "BadArgument", "DuplicateInputInBatchCall")


def test_input_names_are_case_sensitive(emulator_world, data_location):
    w = emulator_world
    r = _submit(w, {"Inputs": {"Input1": w.blobs.connection_reference(data_location)}})
    _error(r, 400, "BadArgument", "InvalidInputNames")


def test_an_input_on_a_service_without_inputs_is_invalid_input_names(emulator_world, data_location):
    w = emulator_world
    r = _submit(w, {"Inputs": {"input1": w.blobs.connection_reference(data_location)}}, service=w.from_parameter)
    _error(r, 400, "BadArgument", "InvalidInputNames")


@pytest.mark.parametrize("body", [{}, {"Inputs": {}}, {"Inputs": {"input1": None}}])
def test_no_input_is_batch_job_inputs_not_specified(emulator_world, body):
    w = emulator_world
    _error(_submit(w, body), 400, "BadArgument", "BatchJobInputsNotSpecified")


def test_no_data_parameter_is_batch_job_inputs_not_specified(emulator_world):
    w = emulator_world
    _error(_submit(w, {"GlobalParameters": {}}, service=w.from_parameter), 400, "BadArgument",
           "BatchJobInputsNotSpecified")


def test_output_names_are_case_sensitive(emulator_world, data_location):
    w = emulator_world
    out = w.blobs.connection_reference(f"{w.blobs.container('out')}/model.ilearner")
    r = _submit(w, {"Inputs": {"input1": w.blobs.connection_reference(data_location)}, "Outputs": {"Output1": out}})
    _error(r, 400, "BadArgument", "InvalidOutputOverrideName")


@pytest.mark.parametrize("output,name", [("output1", "model.csv"), ("output1", "model"), ("output2", "eval.txt"),
                                         ("output2", "eval.ilearner")])
def test_a_wrong_output_extension_is_invalid_blob_extension(emulator_world, data_location, output, name):
    w = emulator_world
    out = w.blobs.connection_reference(f"{w.blobs.container('out')}/{name}")
    r = _submit(w, {"Inputs": {"input1": w.blobs.connection_reference(data_location)}, "Outputs": {output: out}})
    _error(r, 400, "BadArgument", "InvalidBlobExtension")


def test_a_missing_input_blob_is_blob_not_found_at_submit(emulator_world):
    w = emulator_world
    ref = w.blobs.connection_reference(f"{w.blobs.container('missing')}/nothing.csv")
    _error(_submit(w, {"Inputs": {"input1": ref}}), 400, "BadArgument", "BlobNotFound")


def test_an_input_sas_that_does_not_open_the_blob_is_refused_at_submit(emulator_world, data_location):
    w = emulator_world
    ref = {"BaseLocation": w.blobs.base_location, "RelativeLocation": data_location, "SasBlobToken": "?sig=nope"}
    _error(_submit(w, {"Inputs": {"input1": ref}}), 400, "BadArgument", "BlobNotFound")


def test_an_incomplete_blob_reference_is_refused(emulator_world, data_location):
    w = emulator_world
    r = _submit(w, {"Inputs": {"input1": {"RelativeLocation": data_location}}})
    _error(r, 400, "BadArgument", "InvalidBlobReference")


def test_an_unknown_global_parameter_is_refused(emulator_world, data_location):
    w = emulator_world
    r = _submit(w, {"Inputs": {"input1": w.blobs.connection_reference(data_location)},
                    "GlobalParameters": {"random seed": "1"}})
    _error(r, 400, "BadArgument", "InvalidGlobalParameterName")


def test_a_global_parameter_value_of_the_wrong_type_is_refused(emulator_world, data_location):
    w = emulator_world
    r = _submit(w, {"Inputs": {"input1": w.blobs.connection_reference(data_location)},
                    "GlobalParameters": {"Random seed": "forty-two"}})
    _error(r, 400, "BadArgument", "InvalidGlobalParameterValue")


def test_status_of_an_unknown_job_is_404_job_not_found(emulator_world):
    w = emulator_world
    r = requests.get(w.jobs_url(w.binary, "0" * 32), params=API, headers=w.auth(w.binary.key))
    _error(r, 404, "NotFound", "JobNotFound")


def test_start_and_cancel_of_an_unknown_job_are_404(emulator_world):
    w = emulator_world
    url = w.jobs_url(w.binary, "0" * 32)
    assert requests.post(url + "/start", params=API, headers=w.auth(w.binary.key)).status_code == 404
    assert requests.delete(url, params=API, headers=w.auth(w.binary.key)).status_code == 404


def test_a_job_is_not_visible_through_another_service(emulator_world, data_location):
    w = emulator_world
    job_id = w.submit(w.binary, {"Inputs": {"input1": w.blobs.connection_reference(data_location)}})
    r = requests.get(w.jobs_url(w.numeric, job_id), params=API, headers=w.auth(w.numeric.key))
    _error(r, 404, "NotFound", "JobNotFound")


def test_starting_a_finished_job_is_cannot_start_job(emulator_world, data_location):
    w = emulator_world
    status = w.train(w.binary, binary_csv(60))
    r = requests.post(w.jobs_url(w.binary, status["JobId"]) + "/start", params=API, headers=w.auth(w.binary.key))
    error = _error(r, 400, "InvalidOperation", "CannotStartJob")
    assert error["message"] == "The job cannot be started because it is in Finished state."


def test_starting_a_cancelled_job_is_cannot_start_job(emulator_world, data_location):
    w = emulator_world
    job_id = w.submit(w.binary, {"Inputs": {"input1": w.blobs.connection_reference(data_location)}})
    requests.delete(w.jobs_url(w.binary, job_id), params=API, headers=w.auth(w.binary.key))
    r = requests.post(w.jobs_url(w.binary, job_id) + "/start", params=API, headers=w.auth(w.binary.key))
    error = _error(r, 400, "InvalidOperation", "CannotStartJob")
    assert error["message"] == "The job cannot be started because it is in Cancelled state."


def test_cancel_of_a_finished_job_is_204_and_leaves_it_finished(emulator_world):
    w = emulator_world
    status = w.train(w.binary, binary_csv(60))
    r = requests.delete(w.jobs_url(w.binary, status["JobId"]), params=API, headers=w.auth(w.binary.key))
    assert r.status_code == 204
    assert w.status(w.binary, status["JobId"])["StatusCode"] == "Finished"
