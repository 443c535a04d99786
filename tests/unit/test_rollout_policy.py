"""The rollout policy and the Azure ML endpoint kinds: validated at PUT with every problem listed, round-trippable."""

import pytest

from retrain.errors import InvalidModelDefinition
from retrain.models import ModelDefinition
from retrain.serving.rollout import Mirror, RolloutPolicy, split

WS = "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.MachineLearningServices/workspaces/ws1"
ONLINE = f"https://management.azure.com{WS}/onlineEndpoints/census-live"


def problems_of(raw):
    with pytest.raises(InvalidModelDefinition) as e:
        RolloutPolicy.from_json(raw)
    return e.value.problems


def definition(**overrides):
    body = {"training": {"url": "https://ussouthcentral.services.azureml.net/workspaces/ws/services/svc",
                         "key_setting": "RETRAIN_SECRET_CENSUS_BES_KEY"},
            "endpoints": [{"kind": "azureml_online", "url": ONLINE, "model_name": "census"}]}
    body.update(overrides)
    return body


def test_no_rollout_is_blue_green_at_once():
    policy = RolloutPolicy.from_json(None)
    assert (policy.strategy, policy.steps, policy.dwell_seconds, policy.retain) == ("blue_green", (100,), 0, 1)


def test_a_canary_without_steps_walks_10_50_100_with_five_minutes_between():
    policy = RolloutPolicy.from_json({"strategy": "canary"})
    assert policy.steps == (10, 50, 100) and policy.dwell_seconds == 300


def test_a_full_canary_policy_is_read_as_written():
    policy = RolloutPolicy.from_json({"strategy": "canary", "steps": [5, 25, 100], "dwell_seconds": 60,
                                      "max_error_rate": 0.02, "min_requests": 50,
                                      "mirror": {"percent": 20, "seconds": 120},
                                      "smoke_test": {"rows": [{"age": 39}]}, "retain": 2,
                                      "provisioning_timeout_seconds": 900})
    assert policy.steps == (5, 25, 100) and policy.max_error_rate == 0.02 and policy.mirror == Mirror(20, 120)
    assert policy.smoke_body == {"data": [{"age": 39}]} and policy.retain == 2


def test_a_policy_round_trips_through_json():
    policy = RolloutPolicy.from_json({"strategy": "canary", "steps": [10, 100], "dwell_seconds": 5,
                                      "mirror": {"percent": 10, "seconds": 5}, "smoke_test": {"rows": [{"a": 1}]}})
    assert RolloutPolicy.from_json(policy.to_json()) == policy


def test_every_problem_is_listed_at_once():
    problems = problems_of({"strategy": "canary", "steps": [50, 10], "dwell_seconds": -1, "max_error_rate": 2,
                            "retain": 30, "mirror": {"percent": 80}, "smoke_test": {"rows": []}, "colour": "red"})
    assert len(problems) == 8, problems
    for field in ("rollout.steps", "rollout.dwell_seconds", "rollout.max_error_rate", "rollout.retain",
                  "rollout.mirror.percent", "rollout.smoke_test.rows", "rollout.colour"):
        assert any(p.startswith(field) for p in problems), field


@pytest.mark.parametrize("steps, words", [([10, 50], "must be 100"), ([50, 50, 100], "larger than the one before"),
                                          ([0, 100], "from 1 to 100"), ([True, 100], "from 1 to 100"),
                                          ("10,100", "a list of 1 to 10")])
def test_canary_steps_must_rise_to_100(steps, words):
    assert any(words in p for p in problems_of({"strategy": "canary", "steps": steps}))


def test_blue_green_takes_no_steps():
    assert any("only for strategy 'canary'" in p for p in problems_of({"steps": [10, 100]}))


def test_an_error_threshold_needs_a_dwell_or_a_mirror_to_be_judged_in():
    assert any("judged during a dwell" in p for p in problems_of({"max_error_rate": 0.1}))
    assert RolloutPolicy.from_json({"max_error_rate": 0.1, "dwell_seconds": 60}).max_error_rate == 0.1


def test_smoke_rows_are_bounded():
    assert any("at most 64 KiB" in p for p in problems_of({"smoke_test": {"rows": [{"x": "y" * 70_000}]}}))


def test_a_dwell_fits_in_one_delayed_queue_message():
    assert any("rollout.dwell_seconds" in p for p in problems_of({"dwell_seconds": 8 * 24 * 3600}))


@pytest.mark.parametrize("step, previous, expected", [
    (10, {"blue": 100}, {"new": 10, "blue": 90}),
    (100, {"blue": 100}, {"new": 100}),
    (50, {}, {"new": 100}),
    (10, {"a": 50, "b": 50}, {"new": 10, "a": 45, "b": 45}),
    (10, {"a": 67, "b": 33}, {"new": 10, "a": 60, "b": 30}),
])
def test_a_step_shares_the_rest_among_the_previous_deployments_in_whole_percents(step, previous, expected):
    assert split("new", step, previous) == expected
    assert sum(expected.values()) == 100


# --- in a model definition ------------------------------------------------------------------------

def test_a_definition_with_an_online_endpoint_and_a_canary_round_trips():
    body = definition(rollout={"strategy": "canary", "steps": [10, 100], "dwell_seconds": 30})
    d = ModelDefinition.from_json("census", body)
    assert d.endpoints[0].kind == "azureml_online" and d.endpoints[0].name == "census-live"
    assert d.rollout.steps == (10, 100)
    assert ModelDefinition.from_json("census", d.to_json()) == d


def test_rollout_problems_are_listed_with_the_definitions_others():
    body = definition(rollout={"strategy": "sideways"}, schedule="yes")
    with pytest.raises(InvalidModelDefinition) as e:
        ModelDefinition.from_json("census", body)
    assert any(p.startswith("rollout.strategy") for p in e.value.problems)
    assert any(p.startswith("schedule") for p in e.value.problems)


@pytest.mark.parametrize("endpoint, words", [
    ({"kind": "azureml_online", "url": ONLINE}, "endpoints[0].model_name"),
    ({"kind": "azureml_online", "url": f"https://management.azure.com{WS}/batchEndpoints/b1", "model_name": "m"},
     "onlineEndpoints/<endpoint>"),
    ({"kind": "azureml_batch", "url": ONLINE, "model_name": "m"}, "batchEndpoints/<endpoint>"),
    ({"kind": "azureml_online", "url": ONLINE, "model_name": "m", "key_setting": "RETRAIN_SECRET_X"},
     "Azure AD identity"),
    ({"kind": "azureml_online", "url": ONLINE, "model_name": "m", "resource_name": "x"}, "unknown field"),
    ({"kind": "azureml_online", "url": ONLINE, "model_name": "m", "deployment": []}, "endpoints[0].deployment"),
    ({"kind": "sagemaker", "url": ONLINE}, "'azureml_online'"),
])
def test_azureml_endpoint_fields_are_validated(endpoint, words):
    with pytest.raises(InvalidModelDefinition) as e:
        ModelDefinition.from_json("census", definition(endpoints=[endpoint]))
    assert any(words in p for p in e.value.problems), e.value.problems


def test_an_online_endpoint_is_checked_against_the_azureml_hosts():
    d = ModelDefinition.from_json("census", definition())
    assert ("endpoints[0].url", "azureml", ONLINE) in d.destinations()
