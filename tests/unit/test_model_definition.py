"""Model definitions: validated whole, secret-free, round-trippable."""

import pytest

from retrain.errors import InvalidModelDefinition
from retrain.models import ModelDefinition


def valid(**overrides):
    body = {
        "training": {"url": "https://ussouthcentral.services.azureml.net/workspaces/ws/services/svc",
                     "key_setting": "RETRAIN_SECRET_CENSUS_BES_KEY"},
        "endpoints": [{"kind": "classic",
                       "url": "https://management.azureml.net/workspaces/ws/webservices/svc/endpoints/ep1",
                       "key_setting": "RETRAIN_SECRET_CENSUS_EP_KEY", "resource_name": "Census Model [trained model]"}],
        "policy": {"rules": [{"metric": "AUC", "min": 0.7}]},
    }
    body.update(overrides)
    return body


def problems_of(body, name="census"):
    with pytest.raises(InvalidModelDefinition) as e:
        ModelDefinition.from_json(name, body)
    return e.value.problems


def test_a_minimal_definition_gets_defaults():
    d = ModelDefinition.from_json("census", valid())
    assert d.data_prefix == "census/"
    assert (d.training.input_name, d.training.model_output, d.training.evaluation_output) == \
        ("input1", "output1", "output2")
    assert d.endpoints[0].name == "ep1" and d.schedule is False


def test_round_trips_through_json():
    d = ModelDefinition.from_json("census", valid(schedule=True, data_prefix="adult"))
    assert ModelDefinition.from_json("census", d.to_json()) == d
    assert d.data_prefix == "adult/"


@pytest.mark.parametrize("name", ["", "Census", "-x", "a/b", "a#b", "x" * 64])
def test_rejects_bad_model_names(name):
    assert "model name" in problems_of(valid(), name)[0]


def test_refuses_an_inline_api_key_and_says_where_it_belongs():
    body = valid()
    body["training"]["api_key"] = "s3cr3t"
    problem = next(p for p in problems_of(body) if "api_key" in p)
    assert "app setting" in problem and "s3cr3t" not in problem


def test_refuses_credentials_in_urls():
    body = valid()
    body["training"]["url"] += "?sig=abc"
    assert any("must not carry a credential (sig=...)" in p for p in problems_of(body))


def test_reports_every_problem_at_once():
    body = valid(schedule="yes", data_prefix="../x", colour="blue")
    body["training"]["key_setting"] = "not a setting"
    problems = problems_of(body)
    assert len(problems) >= 4
    assert any(p.startswith("colour") for p in problems)


def test_arm_endpoints_take_no_key_setting():
    body = valid(endpoints=[{"kind": "arm", "url": "https://management.azure.com/subscriptions/s/resourceGroups/r/"
                             "providers/Microsoft.MachineLearning/webServices/w", "resource_name": "M [trained model]",
                             "key_setting": "X"}])
    assert any("Azure AD" in p for p in problems_of(body))


def test_endpoint_names_must_be_distinct():
    ep = valid()["endpoints"][0]
    assert any("used twice" in p for p in problems_of(valid(endpoints=[ep, dict(ep)])))


def test_more_endpoints_than_a_runs_record_can_hold_are_refused_with_the_reason():
    from retrain.definitions import MAX_ENDPOINTS

    ep = valid()["endpoints"][0]
    many = [dict(ep, name=f"ep{i}") for i in range(MAX_ENDPOINTS + 1)]
    problems = problems_of(valid(endpoints=many))
    assert problems == [f"endpoints: at most {MAX_ENDPOINTS} per model ({MAX_ENDPOINTS + 1} given): a run records "
                        "every endpoint's outcome in one table property, which holds 64 KiB; define another model "
                        "for the rest"]
    assert len(ModelDefinition.from_json("census", valid(endpoints=many[:MAX_ENDPOINTS])).endpoints) == MAX_ENDPOINTS


def test_policy_problems_are_reported_under_policy():
    problems = problems_of(valid(policy={"rules": [{"metric": "AUC", "min_relative_improvement": -1}]}))
    assert any(p.startswith("policy") for p in problems)
