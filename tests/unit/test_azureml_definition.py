"""The Azure ML training section: validated at PUT with every problem listed, secrets refused, round-tripped."""

from __future__ import annotations

import copy

import pytest

from retrain.errors import InvalidModelDefinition
from retrain.models import ModelDefinition
from retrain.training.azureml import STATES, job_name, read_job_error, resolve_optional
from retrain.training import Phase

WS = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/retrain-rg/providers/" \
     "Microsoft.MachineLearningServices/workspaces/retrain-ws"
BODY = {
    "training": {
        "kind": "azureml", "workspace": WS,
        "job": {"properties": {
            "jobType": "Command", "experimentName": "census",
            "command": "python train.py --data ${{inputs.data}} --label label --model ${{outputs.model}} "
                       "$[[--baseline ${{inputs.baseline}}]]",
            "codeId": "azureml:retrain-src:1", "environmentId": "azureml:sklearn-env:1",
            "computeId": "azureml:cpu-cluster",
            "outputs": {"model": {"jobOutputType": "custom_model"}}}},
        "data_input": "data", "baseline_input": "baseline", "model_output": "model",
        "metrics": {"auc": "AUC", "accuracy": "Accuracy"}},
    "policy": {"rules": [{"metric": "AUC", "min": 0.7}]},
}


def problems_of(body: dict) -> list[str]:
    with pytest.raises(InvalidModelDefinition) as caught:
        ModelDefinition.from_json("census", body)
    return caught.value.problems


def with_training(**changes) -> dict:
    body = copy.deepcopy(BODY)
    body["training"].update(changes)
    return body


def with_props(**changes) -> dict:
    body = copy.deepcopy(BODY)
    body["training"]["job"]["properties"].update(changes)
    return body


def test_an_azureml_definition_round_trips():
    definition = ModelDefinition.from_json("census", BODY)
    assert definition.training.kind == "azureml" and definition.training.workspace.name == "retrain-ws"
    assert ModelDefinition.from_json("census", definition.to_json()) == definition
    assert definition.to_json()["training"]["kind"] == "azureml"


def test_a_training_section_without_kind_is_studio_classic():
    body = {"training": {"url": "https://ussouthcentral.services.azureml.net/workspaces/w/services/s",
                         "key_setting": "RETRAIN_SECRET_BES"}}
    definition = ModelDefinition.from_json("census", body)
    assert definition.training.kind == "studio" and "kind" not in definition.to_json()["training"]


def test_an_unknown_kind_is_named():
    assert problems_of(with_training(kind="sagemaker")) == ["training.kind: one of 'azureml', 'studio'"]


def test_every_problem_is_listed_at_once():
    body = with_training(workspace="/subscriptions/x/workspaces/y", model_output="no such", metrics={"auc": 3})
    body["training"]["job"]["properties"].pop("computeId")
    found = problems_of(body)
    assert any(p.startswith("training.workspace: the workspace's ARM id") for p in found)
    assert any(p.startswith("training.model_output") for p in found)
    assert any(p.startswith("training.metrics") for p in found)
    assert any(p.startswith("training.job.properties.computeId") for p in found)


def test_the_command_must_use_the_data_input_and_the_model_output():
    found = problems_of(with_props(command="python train.py $[[--baseline ${{inputs.baseline}}]]"))
    assert any("${{inputs.data}}" in p for p in found) and any("${{outputs.model}}" in p for p in found)


def test_the_baseline_must_be_optional_in_the_command():
    found = problems_of(with_props(command="python train.py --data ${{inputs.data}} --model ${{outputs.model}} "
                                           "--baseline ${{inputs.baseline}}"))
    assert any("inside $[[...]]" in p and "first run has no champion" in p for p in found)


def test_without_a_baseline_input_the_command_needs_none():
    body = with_training(baseline_input=None)
    body["training"]["job"]["properties"]["command"] = "python train.py --data ${{inputs.data}} --model ${{outputs.model}}"
    assert ModelDefinition.from_json("census", body).training.baseline_input is None


def test_only_command_jobs_are_templates():
    assert any("jobType: 'Command'" in p for p in problems_of(with_props(jobType="Pipeline")))


def test_the_data_input_uri_is_filled_in_by_the_run_not_the_template():
    found = problems_of(with_props(inputs={"data": {"jobInputType": "uri_file", "uri": "azureml://datastores/x/paths/y"}}))
    assert found == ["training.job.properties.inputs.data.uri: filled in by each run; leave it out"]


def test_secrets_in_the_job_template_are_refused():
    assert any("environmentVariables.STORAGE_ACCOUNT_KEY" in p
               for p in problems_of(with_props(environmentVariables={"STORAGE_ACCOUNT_KEY": "abc"})))
    found = problems_of(with_props(environmentVariables={"DATA": "https://a.blob.core.windows.net/c/b?sig=abc"}))
    assert any("must not carry a credential (sig=...)" in p for p in found)
    assert any("secrets do not belong" in p for p in problems_of(with_props(password="x")))


def test_a_workspace_may_name_its_arm_base_url():
    definition = ModelDefinition.from_json("census", with_training(workspace="https://127.0.0.1:8766" + WS))
    assert definition.destinations()[0] == ("training.workspace", "azureml", "https://127.0.0.1:8766/")


def test_all_fourteen_job_states_are_mapped_and_only_three_end_a_job():
    assert len(STATES) == 14
    assert {s for s, p in STATES.items() if p is not Phase.ACTIVE} == {"Completed", "Failed", "Canceled"}
    assert STATES["NotResponding"] is Phase.ACTIVE and STATES["Paused"] is Phase.ACTIVE


def test_job_names_follow_azure_ml_rules_and_repeat_for_the_same_attempt():
    assert job_name("census", "abc123", 2) == "census-abc123-2" == job_name("census", "abc123", 2)
    long = job_name("m" * 63, "r" * 300, 1)
    assert len(long) == 255 and long != job_name("m" * 63, "r" * 300, 2)


def test_an_optional_block_is_kept_only_when_its_input_is_given():
    command = "python t.py --data ${{inputs.data}} $[[--baseline ${{inputs.baseline}}]]"
    assert resolve_optional(command, {"data", "baseline"}) == "python t.py --data ${{inputs.data}} --baseline ${{inputs.baseline}}"
    assert resolve_optional(command, {"data"}).strip() == "python t.py --data ${{inputs.data}}"


def test_a_user_error_is_a_data_error_with_the_logs_last_line():
    failure = read_job_error({"code": "UserError", "category": "UserError", "message":
                              "The command exited with code 1.\nLast lines of user_logs/std_log.txt:\n"
                              "Training failed: the label column 'label' is missing"})
    assert failure.data_error
    assert failure.text == "The command exited with code 1. The log ends: Training failed: the label column 'label' is missing"
    assert read_job_error({"category": "SystemError", "message": "Infrastructure error"}).retryable


def test_a_rule_on_a_metric_the_mapping_does_not_yield_is_named():
    body = copy.deepcopy(BODY)
    body["policy"] = {"rules": [{"metric": "F-Score", "min": 0.5}]}
    assert problems_of(body) == ["policy.rules[0].metric: 'F-Score' is not a name training.metrics maps an MLflow "
                                 "key to (it maps to 'AUC', 'Accuracy')"]
