"""The JSON examples in README.md are valid as written (docs that drift are worse than none)."""

import json
import re
from pathlib import Path

import pytest

from retrain.models import ModelDefinition
from retrain.policy import Policy
from retrain.serving.rollout import RolloutPolicy

README = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
BLOCKS = [json.loads(b) for b in re.findall(r"```json\n(.*?)```", README, flags=re.S)]


def test_the_readme_has_json_examples():
    assert len(BLOCKS) >= 3


@pytest.mark.parametrize("block", [b for b in BLOCKS if "training" in b], ids=lambda b: "definition")
def test_the_model_definition_example_is_valid(block):
    assert ModelDefinition.from_json("census", block).endpoints


@pytest.mark.parametrize("block", [b for b in BLOCKS if "rules" in b], ids=lambda b: "policy")
def test_each_policy_example_is_valid(block):
    assert Policy.from_json(block).rules


@pytest.mark.parametrize("block", [b for b in BLOCKS if "strategy" in b], ids=lambda b: "rollout")
def test_each_rollout_example_is_valid(block):
    assert RolloutPolicy.from_json(block).steps[-1] == 100
