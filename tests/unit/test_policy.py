"""Specification of the promotion gate: the policy format, its validation, and the decision it records."""

from __future__ import annotations

import json
import math

import pytest

from retrain.errors import InvalidModelDefinition
from retrain.evaluation import Evaluation
from retrain.policy import (ApprovalPolicy, Champion, Decision, KNOWN_METRICS, Policy, Rule, decide,
                            find_metric)


def policy(*rules: dict, **settings) -> Policy:
    return Policy.from_json({"rules": list(rules), **settings})


def champion(**metrics: float) -> Champion:
    return Champion("run-champion", {_name(k): v for k, v in metrics.items()})


def _name(key: str) -> str:
    return {"RMSE": "Root Mean Squared Error", "R2": "Coefficient of Determination"}.get(key, key)


def problems(obj) -> list[str]:
    with pytest.raises(InvalidModelDefinition) as raised:
        Policy.from_json(obj)
    return raised.value.problems


def failing(decision: Decision) -> list[str]:
    return [check.text for result in decision.rules for check in result.checks if not check.passed]


def only_check(decision: Decision, kind: str):
    [check] = [c for result in decision.rules for c in result.checks if c.kind == kind]
    return check


# --- directions and names -------------------------------------------------------------------------

DEFAULT_DIRECTIONS = {
    "Accuracy": "higher", "Precision": "higher", "Recall": "higher", "F-Score": "higher", "AUC": "higher",
    "Average Log Loss": "lower",
    "Training Log Loss": "higher",  # Studio reports it as % improvement over a prior-only predictor
    "Mean Absolute Error": "lower", "Root Mean Squared Error": "lower", "Relative Absolute Error": "lower",
    "Relative Squared Error": "lower", "Coefficient of Determination": "higher", "Negative Log Likelihood": "lower",
    "Overall accuracy": "higher", "Average accuracy": "higher", "Micro-averaged precision": "higher",
    "Macro-averaged precision": "higher", "Micro-averaged recall": "higher", "Macro-averaged recall": "higher",
}


@pytest.mark.parametrize("metric, direction", DEFAULT_DIRECTIONS.items())
def test_a_known_metric_gets_its_default_direction(metric, direction):
    assert policy({"metric": metric}).rules[0].direction == direction


def test_every_evaluate_model_metric_of_the_three_tasks_is_known():
    assert set(KNOWN_METRICS) == set(DEFAULT_DIRECTIONS)


def test_an_explicit_direction_overrides_the_default():
    assert policy({"metric": "Training Log Loss", "direction": "lower"}).rules[0].direction == "lower"


def test_an_unknown_metric_with_a_direction_is_accepted():
    assert policy({"metric": "Lift", "direction": "higher"}).rules[0] == Rule("Lift", "higher")


@pytest.mark.parametrize("written, canonical", [
    ("auc", "AUC"), ("f-score", "F-Score"), ("F Score", "F-Score"),
    ("root mean squared error", "Root Mean Squared Error"), ("root_mean_squared_error", "Root Mean Squared Error"),
    ("Macro averaged recall", "Macro-averaged recall"), ("  AUC ", "AUC"),
])
def test_a_known_metric_is_matched_ignoring_case_spaces_and_hyphens_and_stored_as_studio_spells_it(written, canonical):
    assert policy({"metric": written}).rules[0].metric == canonical


def test_a_rule_finds_its_column_ignoring_case_spaces_and_hyphens():
    decision = decide(Policy((Rule("Lift", "higher", minimum=2.0),)), Evaluation({"LIFT": 2.5}), None)
    assert decision.passed and decision.rules[0].challenger == 2.5


def test_an_exact_spelling_wins_over_a_looser_match():
    assert find_metric("auc", ["AUC", "auc"]) == "auc"


def test_f1_is_not_taken_for_f_score():
    assert find_metric("F1", ["F-Score"]) is None


# --- bounds ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("auc, passed", [(0.76, True), (0.75, True), (0.74, False)])
def test_minimum_bound_applies_to_the_challenger(auc, passed):
    decision = decide(policy({"metric": "AUC", "min": 0.75}), Evaluation({"AUC": auc}), None)
    assert decision.passed is passed


@pytest.mark.parametrize("rmse, passed", [(3.9, True), (4.0, True), (4.1, False)])
def test_maximum_bound_applies_to_the_challenger(rmse, passed):
    decision = decide(policy({"metric": "Root Mean Squared Error", "max": 4.0}),
                      Evaluation({"Root Mean Squared Error": rmse}), None)
    assert decision.passed is passed


def test_bounds_still_apply_when_the_challenger_beats_the_champion():
    decision = decide(policy({"metric": "AUC", "min": 0.75}), Evaluation({"AUC": 0.7}, {"AUC": 0.6}), champion(AUC=0.6))
    assert not decision.passed
    assert failing(decision) == ["AUC 0.7 is below the minimum 0.75"]


def test_a_failed_bound_names_the_metric_the_value_and_the_bound():
    decision = decide(policy({"metric": "AUC", "min": 0.75}), Evaluation({"AUC": 0.7}), None)
    assert only_check(decision, "minimum").text == "AUC 0.7 is below the minimum 0.75"


# --- improvement over the champion -----------------------------------------------------------------

@pytest.mark.parametrize("challenger, passed", [(0.76, True), (0.75, True), (0.749, False)])
def test_absolute_improvement_is_challenger_minus_champion_for_higher_metrics(challenger, passed):
    rule = {"metric": "AUC", "min_improvement": 0.01}
    decision = decide(policy(rule), Evaluation({"AUC": challenger}, {"AUC": 0.74}), champion(AUC=0.74))
    assert decision.passed is passed


def test_a_tie_within_float_rounding_meets_the_improvement():
    rule = {"metric": "AUC", "min_improvement": 0.01}
    decision = decide(policy(rule), Evaluation({"AUC": 0.82}, {"AUC": 0.81}), champion(AUC=0.81))
    assert 0.82 - 0.81 < 0.01 and decision.passed


@pytest.mark.parametrize("challenger, passed", [(0.7474, True), (0.7473, False)])
def test_relative_improvement_is_the_improvement_over_the_champions_magnitude(challenger, passed):
    rule = {"metric": "AUC", "min_relative_improvement": 0.01}
    decision = decide(policy(rule), Evaluation({"AUC": challenger}, {"AUC": 0.74}), champion(AUC=0.74))
    assert decision.passed is passed


@pytest.mark.parametrize("challenger, passed", [(3.9, True), (4.0, True), (4.1, False)])
def test_a_lower_is_better_metric_improves_by_going_down(challenger, passed):
    decision = decide(policy({"metric": "Root Mean Squared Error"}),
                      Evaluation({"Root Mean Squared Error": challenger}, {"Root Mean Squared Error": 4.0}),
                      champion(RMSE=4.0))
    assert decision.passed is passed


def test_an_improvement_is_recorded_positive_when_better_whatever_the_direction():
    rule = {"metric": "Root Mean Squared Error", "min_improvement": 0.1, "min_relative_improvement": 0.02}
    decision = decide(policy(rule), Evaluation({"Root Mean Squared Error": 3.5}, {"Root Mean Squared Error": 4.0}),
                      champion(RMSE=4.0))
    assert only_check(decision, "improvement").actual == pytest.approx(0.5)
    assert only_check(decision, "relative_improvement").actual == pytest.approx(0.125)


def test_relative_improvement_divides_by_the_champions_absolute_value():
    rule = {"metric": "Coefficient of Determination", "min_relative_improvement": 0.5}
    decision = decide(policy(rule), Evaluation({"Coefficient of Determination": 0.1},
                                               {"Coefficient of Determination": -0.2}), champion(R2=-0.2))
    assert only_check(decision, "relative_improvement").actual == pytest.approx(1.5)


@pytest.mark.parametrize("challenger, threshold, passed", [
    pytest.param(0.1, 0.5, True, id="better passes any threshold"),
    pytest.param(0.0, 0.0, True, id="equal meets a zero threshold"),
    pytest.param(0.0, 0.01, False, id="equal misses a positive threshold"),
    pytest.param(-0.1, 0.0, False, id="worse fails"),
])
def test_relative_improvement_over_a_champion_of_zero_counts_only_the_sign(challenger, threshold, passed):
    rule = {"metric": "Coefficient of Determination", "min_relative_improvement": threshold}
    evaluation = Evaluation({"Coefficient of Determination": challenger}, {"Coefficient of Determination": 0.0})
    check = only_check(decide(policy(rule), evaluation, champion(R2=0.0)), "relative_improvement")
    assert (check.passed, check.actual) == (passed, None)


@pytest.mark.parametrize("challenger, passed", [(0.74, True), (0.7399, False)])
def test_without_improvement_keys_a_rule_requires_the_challenger_to_be_no_worse(challenger, passed):
    decision = decide(policy({"metric": "AUC"}), Evaluation({"AUC": challenger}, {"AUC": 0.74}), champion(AUC=0.74))
    assert decision.passed is passed


def test_null_improvements_make_a_bounds_only_rule():
    rule = {"metric": "AUC", "min": 0.7, "min_improvement": None, "min_relative_improvement": None}
    decision = decide(policy(rule), Evaluation({"AUC": 0.72}, {"AUC": 0.8}), champion(AUC=0.8))
    assert decision.passed and [c.kind for c in decision.rules[0].checks] == ["minimum"]


def test_a_rejection_says_how_far_the_challenger_is_from_the_champion_and_what_it_needs():
    rule = {"metric": "AUC", "min_improvement": None, "min_relative_improvement": 0.01}
    decision = decide(policy(rule), Evaluation({"AUC": 0.71}, {"AUC": 0.74}), champion(AUC=0.74))
    assert decision.summary == ("Rejected: AUC 0.71 is worse than the champion's 0.74 on the same hold-out "
                                "(-4.05%; needs +1%).")


def test_a_lower_is_better_requirement_is_shown_as_a_decrease():
    rule = {"metric": "Mean Absolute Error", "min_improvement": 0.5}
    decision = decide(policy(rule), Evaluation({"Mean Absolute Error": 2.8}, {"Mean Absolute Error": 3.0}),
                      champion(**{"Mean Absolute Error": 3.0}))
    assert failing(decision) == ["Mean Absolute Error 2.8 improves too little on the champion's 3 on the same hold-out "
                                 "(-0.2; needs -0.5)"]


# --- what the challenger is compared with ---------------------------------------------------------

def test_with_a_baseline_row_the_champion_numbers_come_from_the_same_holdout():
    decision = decide(policy({"metric": "AUC"}), Evaluation({"AUC": 0.8}, {"AUC": 0.78}), champion(AUC=0.9))
    assert (decision.passed, decision.basis, decision.champion_metrics) == (True, "same_holdout", {"AUC": 0.78})


def test_without_a_baseline_row_the_champions_recorded_metrics_are_used_and_the_summary_says_so():
    decision = decide(policy({"metric": "AUC"}), Evaluation({"AUC": 0.8}), champion(AUC=0.78))
    assert (decision.passed, decision.basis, decision.champion_metrics) == (True, "champion_recorded", {"AUC": 0.78})
    assert "recorded metrics (run run-champion)" in decision.summary
    assert "no baseline row" in decision.summary


def test_require_same_holdout_refuses_when_the_champion_was_not_scored():
    decision = decide(policy({"metric": "AUC"}, baseline="require_same_holdout"), Evaluation({"AUC": 0.99}),
                      champion(AUC=0.5))
    assert (decision.passed, decision.basis) == (False, "unavailable")
    assert decision.summary.startswith("Rejected: the policy requires comparing with the champion on the same hold-out")


def test_require_same_holdout_compares_when_the_baseline_row_is_there():
    decision = decide(policy({"metric": "AUC"}, baseline="require_same_holdout"),
                      Evaluation({"AUC": 0.8}, {"AUC": 0.7}), champion(AUC=0.9))
    assert (decision.passed, decision.basis) == (True, "same_holdout")


def test_require_same_holdout_does_not_matter_for_a_first_model():
    decision = decide(policy({"metric": "AUC", "min": 0.7}, baseline="require_same_holdout"),
                      Evaluation({"AUC": 0.8}), None)
    assert (decision.passed, decision.basis) == (True, "no_champion")


def test_a_baseline_row_without_a_champion_is_ignored():
    decision = decide(policy({"metric": "AUC"}), Evaluation({"AUC": 0.5}, {"AUC": 0.9}), None)
    assert (decision.passed, decision.basis, decision.champion_metrics) == (True, "no_champion", None)


def test_a_champion_value_missing_from_the_basis_fails_the_comparison():
    decision = decide(policy({"metric": "AUC"}), Evaluation({"AUC": 0.8}), champion(Accuracy=0.7))
    assert not decision.passed
    assert failing(decision) == ["AUC: no value for the champion in the champion's recorded metrics"]


# --- required and advisory rules ------------------------------------------------------------------

def test_with_require_all_every_rule_blocks():
    decision = decide(policy({"metric": "AUC", "min": 0.7}, {"metric": "Accuracy", "min": 0.9}),
                      Evaluation({"AUC": 0.8, "Accuracy": 0.85}), None)
    assert not decision.passed
    assert [r.required for r in decision.rules] == [True, True]


def test_with_require_required_a_failing_advisory_rule_is_recorded_but_does_not_block():
    decision = decide(policy({"metric": "AUC", "min": 0.7}, {"metric": "Accuracy", "min": 0.9, "required": False},
                             require="required"), Evaluation({"AUC": 0.8, "Accuracy": 0.85}), None)
    assert decision.passed
    assert [(r.metric, r.required, r.passed) for r in decision.rules] == [("AUC", True, True),
                                                                          ("Accuracy", False, False)]
    assert "advisory rules failing: Accuracy" in decision.summary


def test_with_require_required_a_failing_required_rule_blocks():
    decision = decide(policy({"metric": "AUC", "min": 0.9}, {"metric": "Accuracy", "min": 0.5, "required": False},
                             require="required"), Evaluation({"AUC": 0.8, "Accuracy": 0.85}), None)
    assert not decision.passed


# --- the first model (no champion) ----------------------------------------------------------------

def test_the_default_first_run_mode_checks_bounds_only():
    rule = {"metric": "AUC", "min": 0.7, "min_improvement": 0.05}
    decision = decide(policy(rule), Evaluation({"AUC": 0.8}), None)
    assert decision.passed and [c.kind for c in decision.rules[0].checks] == ["minimum"]


def test_first_run_bounds_rejects_a_first_model_outside_its_bounds():
    decision = decide(policy({"metric": "AUC", "min": 0.7}, first_run="bounds"), Evaluation({"AUC": 0.6}), None)
    assert not decision.passed


def test_first_run_promote_passes_a_first_model_even_outside_its_bounds_and_records_why():
    decision = decide(policy({"metric": "AUC", "min": 0.7}, first_run="promote"), Evaluation({"AUC": 0.6}), None)
    assert decision.passed and not decision.rules[0].passed
    assert "first_run 'promote'" in decision.summary and "AUC 0.6 is below the minimum 0.7" in decision.summary


def test_first_run_reject_never_promotes_a_first_model():
    decision = decide(policy({"metric": "AUC", "min": 0.7}, first_run="reject"), Evaluation({"AUC": 0.9}), None)
    assert not decision.passed and decision.rules[0].passed
    assert "first_run 'reject'" in decision.summary


def test_a_rule_with_nothing_to_check_on_a_first_model_passes_once_its_metric_is_present():
    decision = decide(policy({"metric": "AUC"}), Evaluation({"AUC": 0.6}), None)
    assert decision.passed and [c.kind for c in decision.rules[0].checks] == ["present"]


# --- no rules -------------------------------------------------------------------------------------

def test_no_rules_passes_a_first_model_and_says_nothing_was_checked():
    decision = decide(Policy(), Evaluation({"AUC": 0.6}), None)
    assert decision.passed and decision.rules == ()
    assert decision.summary.startswith("No rules configured")


def test_no_rules_passes_a_retrained_model_and_says_it_was_not_compared():
    decision = decide(Policy(), Evaluation({"AUC": 0.6}, {"AUC": 0.9}), champion(AUC=0.9))
    assert decision.passed
    assert "without comparing with the champion" in decision.summary


def test_no_rules_with_first_run_reject_still_rejects_a_first_model():
    assert not decide(Policy(first_run="reject"), Evaluation({"AUC": 0.9}), None).passed


# --- missing and non-finite numbers ---------------------------------------------------------------

def test_a_rule_whose_metric_is_not_in_the_evaluation_fails_and_lists_what_is_there():
    decision = decide(policy({"metric": "AUC", "min": 0.5}), Evaluation({"Accuracy": 0.9, "Precision": 0.8}), None)
    assert not decision.passed
    assert failing(decision) == ["AUC: metric missing from evaluation output (has: Accuracy, Precision)"]


def test_a_rule_whose_metric_was_not_a_number_fails():
    evaluation = Evaluation({"Accuracy": 0.9}, challenger_missing=("AUC",))
    decision = decide(policy({"metric": "AUC", "min": 0.5}), evaluation, None)
    assert failing(decision) == ["AUC: not a finite number in the evaluation output"]


@pytest.mark.parametrize("evaluation, champion_metrics", [
    pytest.param(Evaluation({"AUC": math.nan}), {"AUC": 0.5}, id="NaN challenger"),
    pytest.param(Evaluation({"AUC": 0.9}), {"AUC": math.nan}, id="NaN recorded champion"),
    pytest.param(Evaluation({"AUC": 0.9}, {"AUC": math.inf}), {"AUC": 0.5}, id="infinite baseline"),
])
def test_a_non_finite_number_never_passes_a_check(evaluation, champion_metrics):
    decision = decide(policy({"metric": "AUC"}), evaluation, Champion("run-champion", champion_metrics))
    assert not decision.passed


# --- validation -----------------------------------------------------------------------------------

@pytest.mark.parametrize("obj", [None, {}])
def test_no_policy_is_the_default_policy(obj):
    assert Policy.from_json(obj) == Policy((), "all", "bounds", ApprovalPolicy(False, 72.0), "same_holdout")


@pytest.mark.parametrize("obj, problem", [
    pytest.param({"rules": [{"metric": "AUC", "min_relative_improvement": -0.01}]},
                 "policy.rules[0].min_relative_improvement: must be a number >= 0, got -0.01", id="negative relative"),
    pytest.param({"rules": [{"metric": "AUC", "min_improvement": -1}]},
                 "policy.rules[0].min_improvement: must be a number >= 0, got -1", id="negative improvement"),
    pytest.param({"rules": [{"metric": "AUC", "min": "0.7"}]},
                 "policy.rules[0].min: must be a number or null, got '0.7'", id="text for a number"),
    pytest.param({"rules": [{"metric": "AUC", "max": True}]},
                 "policy.rules[0].max: must be a number or null, got True", id="bool for a number"),
    pytest.param({"rules": [{"metric": "AUC", "min": 0.9, "max": 0.8}]},
                 "policy.rules[0]: min 0.9 is greater than max 0.8", id="min above max"),
    pytest.param({"rules": [{"metric": "AUC", "min": 75}]},
                 "policy.rules[0].min: AUC lies between 0 and 1, got 75", id="bound out of a share's range"),
    pytest.param({"rules": [{"metric": "Root Mean Squared Error", "max": -1}]},
                 "policy.rules[0].max: Root Mean Squared Error is never negative, got -1", id="negative error bound"),
    pytest.param({"rules": [{"metric": "Coefficient of Determination", "min": 1.5}]},
                 "policy.rules[0].min: Coefficient of Determination is never above 1, got 1.5", id="R2 above 1"),
    pytest.param({"rule": []}, "policy.rule: unknown key (did you mean 'rules'?)", id="typo in a policy key"),
    pytest.param({"rules": [{"metric": "AUC", "min_relative_improvment": 0.01}]},
                 "policy.rules[0].min_relative_improvment: unknown key (did you mean 'min_relative_improvement'?)",
                 id="typo in a rule key"),
    pytest.param({"approval": {"required": True, "expires": 1}},
                 "policy.approval.expires: unknown key (did you mean 'expires_after_hours'?)", id="typo in approval"),
    pytest.param({"require": "any"}, "policy.require: must be one of 'all', 'required', got 'any'", id="bad require"),
    pytest.param({"first_run": "skip"}, "policy.first_run: must be one of 'bounds', 'promote', 'reject', got 'skip'",
                 id="bad first_run"),
    pytest.param({"baseline": "recorded"},
                 "policy.baseline: must be one of 'same_holdout', 'require_same_holdout', got 'recorded'",
                 id="bad baseline"),
    pytest.param({"approval": {"expires_after_hours": 0}},
                 "policy.approval.expires_after_hours: must be a number > 0, got 0", id="zero expiry"),
    pytest.param({"approval": {"expires_after_hours": -5}},
                 "policy.approval.expires_after_hours: must be a number > 0, got -5", id="negative expiry"),
    pytest.param({"approval": {"required": "yes"}}, "policy.approval.required: must be true or false, got 'yes'",
                 id="approval.required not a bool"),
    pytest.param({"approval": True}, "policy.approval: must be an object like {\"required\": true, "
                                     "\"expires_after_hours\": 72}", id="approval not an object"),
    pytest.param({"rules": [{"metric": "AUC"}, {"metric": "auc", "min": 0.7}]},
                 "policy.rules[1].metric: duplicate rule for 'auc' (already in policy.rules[0])", id="duplicate rule"),
    pytest.param({"rules": [{"metric": "Lift", "min": 2}]},
                 "policy.rules[0].direction: 'Lift' is not an Evaluate Model metric this app knows; "
                 "say whether 'higher' or 'lower' is better", id="unknown metric without direction"),
    pytest.param({"rules": [{"metric": "AUC", "direction": "up"}]},
                 "policy.rules[0].direction: must be 'higher' or 'lower', got 'up'", id="bad direction"),
    pytest.param({"rules": [{"min": 0.7}]},
                 "policy.rules[0].metric: must be the metric's name as Evaluate Model spells it (e.g. 'AUC')",
                 id="no metric"),
    pytest.param({"rules": [{"metric": "AUC", "required": "no"}], "require": "required"},
                 "policy.rules[0].required: must be true or false, got 'no'", id="required not a bool"),
    pytest.param({"rules": [{"metric": "AUC", "required": False}]},
                 "policy.rules[0].required: false has no effect while policy.require is 'all' "
                 "(set policy.require to 'required' to make this rule advisory)", id="advisory rule under require all"),
    pytest.param({"rules": [{"metric": "AUC", "min_improvement": None}]},
                 "policy.rules[0]: checks nothing (no min, no max, min_improvement and min_relative_improvement "
                 "both null)", id="rule that checks nothing"),
    pytest.param({"rules": ["AUC"]}, "policy.rules[0]: must be an object like {\"metric\": \"AUC\", \"min\": 0.75}",
                 id="rule not an object"),
    pytest.param({"rules": {"metric": "AUC"}},
                 "policy.rules: must be a list of rules like {\"metric\": \"AUC\", \"min\": 0.75}",
                 id="rules not a list"),
    pytest.param(["AUC"], "policy: must be an object, got list", id="policy not an object"),
])
def test_each_kind_of_mistake_is_reported_with_its_place(obj, problem):
    assert problems(obj) == [problem]


def test_all_problems_are_reported_together():
    found = problems({
        "rules": [{"metric": "AUC", "min": 0.9, "max": 0.8}, {"metric": "Lift"}, {"metric": "auc"}],
        "require": "most", "first_run": "maybe", "baseline": "any", "approval": {"expires_after_hours": 0},
        "colour": "blue"})
    assert len(found) == 8
    assert [p.split(":")[0] for p in found] == [
        "policy.colour", "policy.require", "policy.first_run", "policy.baseline",
        "policy.approval.expires_after_hours", "policy.rules[0]", "policy.rules[1].direction",
        "policy.rules[2].metric"]


def test_the_validation_error_message_lists_every_problem():
    with pytest.raises(InvalidModelDefinition) as raised:
        Policy.from_json({"require": "most", "first_run": "maybe"})
    assert "policy.require" in str(raised.value) and "policy.first_run" in str(raised.value)


# --- round trips and the record -------------------------------------------------------------------

FULL_POLICY = {
    "rules": [{"metric": "AUC", "direction": "higher", "min": 0.75, "max": None, "min_improvement": 0.0,
               "min_relative_improvement": 0.01, "required": True},
              {"metric": "Average Log Loss", "max": 0.6, "min_improvement": None, "required": False}],
    "require": "required", "first_run": "promote", "approval": {"required": True, "expires_after_hours": 24},
    "baseline": "require_same_holdout"}


def test_a_policy_survives_to_json_and_from_json():
    original = Policy.from_json(FULL_POLICY)
    assert Policy.from_json(json.loads(json.dumps(original.to_json()))) == original


def test_to_json_spells_out_every_default():
    assert Policy.from_json({"rules": [{"metric": "auc"}]}).to_json() == {
        "rules": [{"metric": "AUC", "direction": "higher", "min": None, "max": None, "min_improvement": 0.0,
                   "min_relative_improvement": None, "required": True}],
        "require": "all", "first_run": "bounds", "approval": {"required": False, "expires_after_hours": 72.0},
        "baseline": "same_holdout"}


@pytest.mark.parametrize("evaluation, champ, settings", [
    pytest.param(Evaluation({"AUC": 0.8, "Average Log Loss": 0.5}, {"AUC": 0.7, "Average Log Loss": 0.4}),
                 champion(AUC=0.7), {}, id="same hold-out"),
    pytest.param(Evaluation({"AUC": 0.8}), champion(AUC=0.0), {}, id="recorded, champion of zero, missing metric"),
    pytest.param(Evaluation({"AUC": 0.8}, {"AUC": 0.8}, challenger_missing=("Average Log Loss",)), champion(AUC=0.8),
                 {}, id="not a finite number, equal to the champion"),
    pytest.param(Evaluation({"AUC": 0.7}), None, {"first_run": "promote"}, id="first run"),
    pytest.param(Evaluation({"AUC": 0.8}), champion(AUC=0.7), {"baseline": "require_same_holdout"},
                 id="unavailable"),
])
def test_a_decision_survives_to_record_and_from_record(evaluation, champ, settings):
    decision = decide(Policy.from_json({**FULL_POLICY, **settings}), evaluation, champ)
    assert Decision.from_record(json.loads(json.dumps(decision.to_record(), allow_nan=False))) == decision


LONG_NAMES = [f"Custom metric number {i:02d} with a long name" for i in range(20)]
EVERY_CHECK = Policy(tuple(Rule(name, "higher", 0.1, 0.99, 0.01, 0.02) for name in LONG_NAMES))


def test_a_decision_record_with_20_rules_of_every_check_stays_well_under_16_kb():
    evaluation = Evaluation({n: 0.5 + i / 1000 for i, n in enumerate(LONG_NAMES)},
                            {n: 0.4 + i / 1000 for i, n in enumerate(LONG_NAMES)})
    record = decide(EVERY_CHECK, evaluation, Champion("run-" + "x" * 60, {})).to_record()
    assert len(json.dumps(record)) < 10_000


def test_a_decision_record_does_not_repeat_the_columns_for_each_missing_metric():
    evaluation = Evaluation({f"Other column {i:02d} with a long name": 0.5 for i in range(20)})
    record = decide(EVERY_CHECK, evaluation, None).to_record()
    assert len(json.dumps(record)) < 8_000


def test_a_passing_summary_counts_the_rules_and_names_the_basis():
    decision = decide(policy({"metric": "AUC"}, {"metric": "Accuracy"}),
                      Evaluation({"AUC": 0.8, "Accuracy": 0.9}, {"AUC": 0.7, "Accuracy": 0.9}), champion())
    assert decision.summary == "Passed: all 2 rules pass against the champion on the same hold-out."


def test_a_passing_summary_with_one_rule_explains_its_comparison():
    rule = {"metric": "AUC", "min": 0.7, "min_relative_improvement": 0.01}
    decision = decide(policy(rule), Evaluation({"AUC": 0.81}, {"AUC": 0.74}), champion())
    assert decision.summary == ("Passed: AUC 0.81 is better than the champion's 0.74 on the same hold-out "
                                "(+9.46%; needs +1%).")


def test_a_challenger_equal_to_the_champion_is_said_to_equal_it():
    decision = decide(policy({"metric": "AUC"}), Evaluation({"AUC": 0.74}, {"AUC": 0.74}), champion())
    assert decision.summary == ("Passed: AUC 0.74 equals the champion's 0.74 on the same hold-out "
                                "(+0; must not be worse).")


def test_a_rejection_summary_leads_with_the_first_failure_and_counts_the_rest():
    decision = decide(policy({"metric": "AUC", "min": 0.9}, {"metric": "Accuracy", "min": 0.95},
                             {"metric": "Recall", "min": 0.99}),
                      Evaluation({"AUC": 0.8, "Accuracy": 0.9, "Recall": 0.5}), None)
    assert decision.summary == ("Rejected: AUC 0.8 is below the minimum 0.9; 2 more rules failing: Accuracy, Recall. "
                                "First model (no champion): bounds only.")
