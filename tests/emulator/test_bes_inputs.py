"""Where a job reads and writes: both blob reference forms, output overrides, data from a global parameter, baselines."""

from __future__ import annotations

import csv
import io
import json

import requests

from tests.datasets import binary_csv, regression_csv


def _download(ref: dict) -> bytes:
    r = requests.get(ref["BaseLocation"] + ref["RelativeLocation"] + ref["SasBlobToken"], timeout=30)
    assert r.status_code == 200, r.text
    return r.content


def _run(w, service, body) -> dict:
    job_id = w.submit(service, body)
    w.start(service, job_id)
    return w.wait(service, job_id)


def _uploaded(w, data: bytes = None, name: str = "train.csv") -> str:
    return w.blobs.upload(w.blobs.container("in"), name, data if data is not None else binary_csv(80, seed=2))


def test_an_input_given_by_sas_is_read(emulator_world):
    w = emulator_world
    status = _run(w, w.binary, {"Inputs": {"input1": w.blobs.sas_reference(_uploaded(w))}})
    assert status["StatusCode"] == "Finished", status["Details"]


def test_a_leading_slash_on_relative_location_is_accepted(emulator_world):
    w = emulator_world
    ref = w.blobs.connection_reference("/" + _uploaded(w))
    assert _run(w, w.binary, {"Inputs": {"input1": ref}})["StatusCode"] == "Finished"


def test_the_singular_input_form_is_accepted(emulator_world):
    w = emulator_world
    status = _run(w, w.binary, {"Input": w.blobs.connection_reference(_uploaded(w))})
    assert status["StatusCode"] == "Finished", status["Details"]


def test_a_tsv_input_is_read_as_tab_separated(emulator_world):
    w = emulator_world
    tsv = binary_csv(80).decode().replace(",", "\t").encode()
    status = _run(w, w.binary, {"Inputs": {"input1": w.blobs.connection_reference(_uploaded(w, tsv, "train.tsv"))}})
    assert status["StatusCode"] == "Finished", status["Details"]


def test_outputs_given_by_connection_string_are_written_there(emulator_world):
    w = emulator_world
    container = w.blobs.container("out")
    body = {"Inputs": {"input1": w.blobs.connection_reference(_uploaded(w))},
            "Outputs": {"output1": w.blobs.connection_reference(f"{container}/m/model.ilearner"),
                        "output2": w.blobs.connection_reference(f"/{container}/m/eval.csv")}}
    status = _run(w, w.binary, body)
    assert status["Results"]["output1"]["RelativeLocation"] == f"{container}/m/model.ilearner"
    assert status["Results"]["output2"]["RelativeLocation"] == f"{container}/m/eval.csv"
    assert w.blobs.exists(f"{container}/m/model.ilearner") and w.blobs.exists(f"{container}/m/eval.csv")
    assert _download(status["Results"]["output2"]).startswith(b"Accuracy")


def test_outputs_given_by_sas_are_written_through_the_sas(emulator_world):
    w = emulator_world
    container = w.blobs.container("out")
    sas = w.blobs.container_sas(container, write=True)
    ref = lambda name: {"BaseLocation": w.blobs.base_location, "RelativeLocation": f"{container}/{name}",
                        "SasBlobToken": sas}
    body = {"Inputs": {"input1": w.blobs.connection_reference(_uploaded(w))},
            "Outputs": {"output1": ref("model.ilearner"), "output2": ref("eval.csv")}}
    status = _run(w, w.binary, body)
    assert status["StatusCode"] == "Finished", status["Details"]
    assert w.blobs.exists(f"{container}/model.ilearner")
    assert status["Results"]["output1"]["SasBlobToken"] == sas


def test_only_the_overridden_output_moves(emulator_world):
    w = emulator_world
    container = w.blobs.container("out")
    body = {"Inputs": {"input1": w.blobs.connection_reference(_uploaded(w))},
            "Outputs": {"output2": w.blobs.connection_reference(f"{container}/eval.csv")}}
    status = _run(w, w.binary, body)
    assert status["Results"]["output1"]["RelativeLocation"].startswith("experimentoutput/")
    assert status["Results"]["output2"]["RelativeLocation"] == f"{container}/eval.csv"


def test_a_tsv_evaluation_output_is_tab_separated(emulator_world):
    w = emulator_world
    container = w.blobs.container("out")
    body = {"Inputs": {"input1": w.blobs.connection_reference(_uploaded(w))},
            "Outputs": {"output2": w.blobs.connection_reference(f"{container}/eval.tsv")}}
    text = _download(_run(w, w.binary, body)["Results"]["output2"]).decode()
    assert text.splitlines()[0].split("\t")[:2] == ["Accuracy", "Precision"]


def test_an_arff_evaluation_output_declares_its_attributes(emulator_world):
    w = emulator_world
    container = w.blobs.container("out")
    body = {"Inputs": {"input1": w.blobs.connection_reference(_uploaded(w))},
            "Outputs": {"output2": w.blobs.connection_reference(f"{container}/eval.arff")}}
    text = _download(_run(w, w.binary, body)["Results"]["output2"]).decode()
    assert "@attribute 'AUC' numeric" in text and "@data" in text


def test_data_location_from_a_global_parameter_sas_url(emulator_world):
    w = emulator_world
    url = w.blobs.sas_url(_uploaded(w))
    status = _run(w, w.from_parameter, {"GlobalParameters": {"Data source": url}})
    assert status["StatusCode"] == "Finished", status["Details"]


def test_data_location_from_a_global_parameter_container_path_in_own_storage(emulator_world):
    w = emulator_world
    status = _run(w, w.from_parameter, {"GlobalParameters": {"Data source": _uploaded(w)}})
    assert status["StatusCode"] == "Finished", status["Details"]


def test_a_missing_blob_in_a_global_parameter_is_blob_not_found(emulator_world):
    w = emulator_world
    r = requests.post(w.jobs_url(w.from_parameter), params={"api-version": "2.0"},
                      json={"GlobalParameters": {"Data source": f"{w.blobs.container()}/none.csv"}},
                      headers=w.auth(w.from_parameter.key))
    assert r.status_code == 400
    assert r.json()["error"]["details"][0]["code"] == "BlobNotFound"


def test_global_parameters_may_be_typed_values(emulator_world):
    w = emulator_world
    body = {"Inputs": {"input1": w.blobs.connection_reference(_uploaded(w))},
            "GlobalParameters": {"Random seed": 7, "Regularization": 0.5}}
    assert _run(w, w.binary, body)["StatusCode"] == "Finished"


def test_the_seed_global_parameter_changes_the_hold_out(emulator_world):
    w = emulator_world
    location = _uploaded(w, binary_csv(120, seed=8, noise=0.2))
    metrics = []
    for seed in ("1", "2"):
        body = {"Inputs": {"input1": w.blobs.connection_reference(location)}, "GlobalParameters": {"Random seed": seed}}
        metrics.append(_download(_run(w, w.binary, body)["Results"]["output2"]))
    assert metrics[0] != metrics[1]


def _baseline(w, seed: int = 5) -> str:
    status = w.train(w.binary, binary_csv(120, seed=seed))
    ref = status["Results"]["output1"]
    return ref["BaseLocation"] + ref["RelativeLocation"] + ref["SasBlobToken"]


def test_a_baseline_model_adds_a_second_evaluation_row(emulator_world):
    w = emulator_world
    body = {"Inputs": {"input1": w.blobs.connection_reference(_uploaded(w))},
            "GlobalParameters": {"Baseline model": _baseline(w)}}
    status = _run(w, w.binary, body)
    assert status["StatusCode"] == "Finished", status["Details"]
    rows = list(csv.DictReader(io.StringIO(_download(status["Results"]["output2"]).decode())))
    assert len(rows) == 2 and rows[0].keys() == rows[1].keys()


def test_an_empty_baseline_parameter_means_no_baseline(emulator_world):
    w = emulator_world
    body = {"Inputs": {"input1": w.blobs.connection_reference(_uploaded(w))}, "GlobalParameters": {"Baseline model": ""}}
    status = _run(w, w.binary, body)
    assert len(_download(status["Results"]["output2"]).decode().strip().splitlines()) == 2


def test_a_baseline_that_cannot_be_read_fails_the_job_with_clear_details(emulator_world):
    w = emulator_world
    missing = w.blobs.sas_url(f"{w.blobs.container()}/gone.ilearner")
    body = {"Inputs": {"input1": w.blobs.connection_reference(_uploaded(w))},
            "GlobalParameters": {"Baseline model": missing}}
    status = _run(w, w.binary, body)
    assert status["StatusCode"] == "Failed"
    message = json.loads(status["Details"])["error"]["details"][0]["message"]
    assert "baseline model" in message and "gone.ilearner" in message


def test_a_baseline_that_is_not_a_model_fails_the_job(emulator_world):
    w = emulator_world
    not_model = w.blobs.sas_url(_uploaded(w, b"just text", "fake.ilearner"))
    body = {"Inputs": {"input1": w.blobs.connection_reference(_uploaded(w))},
            "GlobalParameters": {"Baseline model": not_model}}
    status = _run(w, w.binary, body)
    assert status["StatusCode"] == "Failed"
    assert "baseline" in status["Details"].lower()


def test_a_baseline_that_is_not_a_url_fails_the_job(emulator_world):
    w = emulator_world
    body = {"Inputs": {"input1": w.blobs.connection_reference(_uploaded(w))},
            "GlobalParameters": {"Baseline model": "not a location"}}
    status = _run(w, w.binary, body)
    assert status["StatusCode"] == "Failed"
    assert "Baseline model" in status["Details"]


def test_bad_data_variants_fail_with_studio_style_details(emulator_world):
    from tests.datasets import (empty_csv, missing_label_csv, non_numeric_label_regression_csv, one_class_csv)

    w = emulator_world
    cases = [(w.binary, missing_label_csv(), "Error 0001"), (w.binary, empty_csv(), "Error 0003"),
             (w.binary, one_class_csv(), "Error 0023"),
             (w.regression, non_numeric_label_regression_csv(), "Error 0023")]
    for service, data, expected in cases:
        status = w.train(service, data)
        assert status["StatusCode"] == "Failed"
        assert expected in status["Details"], status["Details"]


def test_a_regression_job_from_generated_data_finishes(emulator_world):
    w = emulator_world
    assert w.train(w.regression, regression_csv(100, seed=3))["StatusCode"] == "Finished"
