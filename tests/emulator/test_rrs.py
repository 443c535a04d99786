"""RRS scoring: both input forms, details=true vs not, Scored Labels/Probabilities as strings, keys, swagger.json."""

from __future__ import annotations

import requests

from tests.datasets import BINARY_FEATURES, binary_features, binary_rule


def _table_body(rows):
    return {"Inputs": {"input1": {"ColumnNames": BINARY_FEATURES, "Values": rows}}, "GlobalParameters": {}}


def test_scoring_with_details_returns_names_types_and_string_values(emulator_world):
    w = emulator_world
    r = requests.post(w.rrs_url(), json=_table_body(binary_features(3, seed=9)), headers=w.auth(w.predictive.key))
    assert r.status_code == 200, r.text
    output = r.json()["Results"]["output1"]
    assert output["type"] == "table"
    value = output["value"]
    assert value["ColumnNames"] == BINARY_FEATURES + ["Scored Labels", "Scored Probabilities"]
    assert len(value["ColumnTypes"]) == len(value["ColumnNames"])
    assert value["ColumnTypes"][-1] == "Double"
    assert len(value["Values"]) == 3
    assert all(isinstance(v, str) for row in value["Values"] for v in row)


def test_scored_labels_follow_the_served_models_rule(emulator_world):
    w = emulator_world
    rows = binary_features(40, seed=10)
    r = requests.post(w.rrs_url(), json=_table_body(rows), headers=w.auth(w.predictive.key))
    labels = [int(row[-2]) for row in r.json()["Results"]["output1"]["value"]["Values"]]
    agree = sum(label == binary_rule(*row) for label, row in zip(labels, rows))
    assert agree >= 34


def test_scored_probabilities_are_between_zero_and_one(emulator_world):
    w = emulator_world
    r = requests.post(w.rrs_url(), json=_table_body(binary_features(10, seed=11)), headers=w.auth(w.predictive.key))
    assert all(0.0 <= float(row[-1]) <= 1.0 for row in r.json()["Results"]["output1"]["value"]["Values"])


def test_without_details_only_values_are_returned(emulator_world):
    w = emulator_world
    url = w.rrs_url().replace("&details=true", "")
    r = requests.post(url, json=_table_body(binary_features(2)), headers=w.auth(w.predictive.key))
    assert r.status_code == 200, r.text
    assert list(r.json()["Results"]["output1"]["value"]) == ["Values"]


def test_typed_and_string_values_score_the_same(emulator_world):
    w = emulator_world
    rows = binary_features(5, seed=12)
    as_strings = [[str(v) for v in row] for row in rows]
    typed = requests.post(w.rrs_url(), json=_table_body(rows), headers=w.auth(w.predictive.key)).json()
    strings = requests.post(w.rrs_url(), json=_table_body(as_strings), headers=w.auth(w.predictive.key)).json()
    assert [r[-2:] for r in typed["Results"]["output1"]["value"]["Values"]] == \
           [r[-2:] for r in strings["Results"]["output1"]["value"]["Values"]]


def test_list_of_records_with_format_swagger_answers_records(emulator_world):
    w = emulator_world
    records = [dict(zip(BINARY_FEATURES, row)) for row in binary_features(3, seed=13)]
    url = w.rrs_url() + "&format=swagger"
    r = requests.post(url, json={"Inputs": {"input1": records}, "GlobalParameters": {}},
                      headers=w.auth(w.predictive.key))
    assert r.status_code == 200, r.text
    out = r.json()["Results"]["output1"]
    assert isinstance(out, list) and len(out) == 3
    assert {"Scored Labels", "Scored Probabilities", "x1"} <= set(out[0])


def test_list_of_records_without_format_swagger_is_refused(emulator_world):
    w = emulator_world
    records = [dict(zip(BINARY_FEATURES, row)) for row in binary_features(1)]
    r = requests.post(w.rrs_url(), json={"Inputs": {"input1": records}}, headers=w.auth(w.predictive.key))
    assert r.status_code == 400
    assert r.json()["error"]["details"][0]["code"] == "InputParseError"


def test_the_secondary_key_also_scores(emulator_world):
    w = emulator_world
    r = requests.post(w.rrs_url(), json=_table_body(binary_features(1)), headers=w.auth(w.predictive.secondary_key))
    assert r.status_code == 200


def test_a_wrong_key_is_401_unauthorized(emulator_world):
    w = emulator_world
    r = requests.post(w.rrs_url(), json=_table_body(binary_features(1)), headers=w.auth("nope"))
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "Unauthorized"


def test_an_unknown_service_is_404_web_service_not_found(emulator_world):
    w = emulator_world
    r = requests.post(w.rrs_url("no-such-service"), json=_table_body([]), headers=w.auth(w.predictive.key))
    assert r.status_code == 404
    assert r.json()["error"]["details"][0]["code"] == "WebServiceNotFound"


def test_a_missing_feature_column_is_a_module_execution_error(emulator_world):
    w = emulator_world
    body = {"Inputs": {"input1": {"ColumnNames": ["x1", "x2"], "Values": [[1, 2]]}}}
    r = requests.post(w.rrs_url(), json=body, headers=w.auth(w.predictive.key))
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "ModuleExecutionError"
    assert "age" in r.json()["error"]["message"]


def test_a_wrong_input_name_is_refused(emulator_world):
    w = emulator_world
    body = {"Inputs": {"input2": {"ColumnNames": BINARY_FEATURES, "Values": []}}}
    r = requests.post(w.rrs_url(), json=body, headers=w.auth(w.predictive.key))
    assert r.status_code == 400
    assert r.json()["error"]["details"][0]["code"] == "InvalidInputNames"


def test_an_unsupported_api_version_is_bad_argument(emulator_world):
    w = emulator_world
    url = w.rrs_url().replace("api-version=2.0", "api-version=1.0")
    r = requests.post(url, json=_table_body(binary_features(1)), headers=w.auth(w.predictive.key))
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "BadArgument"


def test_swagger_json_describes_execute_with_the_models_features(emulator_world):
    w = emulator_world
    r = requests.get(w.rrs_url().split("/execute")[0] + "/swagger.json")
    assert r.status_code == 200
    doc = r.json()
    assert doc["swagger"] == "2.0"
    assert set(doc["definitions"]["input1Item"]["properties"]) == set(BINARY_FEATURES)
    assert "Scored Labels" in doc["definitions"]["output1Item"]["properties"]
