"""Specification of reading the Evaluate Model output (a run's metrics dataset)."""

from __future__ import annotations

import pytest

from retrain.errors import EvaluationFormatError, RetrainError
from retrain.evaluation import Evaluation, parse_evaluation

BINARY = ("Accuracy,Precision,Recall,F-Score,AUC,Average Log Loss,Training Log Loss\n"
          "0.81,0.72,0.64,0.68,0.87,0.41,22.5\n")
REGRESSION = ("Mean Absolute Error,Root Mean Squared Error,Relative Absolute Error,Relative Squared Error,"
              "Coefficient of Determination,Negative Log Likelihood\n"
              "2.1,3.4,0.45,0.21,0.79,512.3\n")
MULTICLASS = ("Overall accuracy,Average accuracy,Micro-averaged precision,Macro-averaged precision,"
              "Micro-averaged recall,Macro-averaged recall\n"
              "0.9,0.93,0.9,0.88,0.9,0.87\n")


# --- the shape ----------------------------------------------------------------------------------

def test_row_one_is_the_challenger_by_metric_name():
    evaluation = parse_evaluation(BINARY)
    assert evaluation.challenger == {"Accuracy": 0.81, "Precision": 0.72, "Recall": 0.64, "F-Score": 0.68,
                                     "AUC": 0.87, "Average Log Loss": 0.41, "Training Log Loss": 22.5}


def test_a_single_row_has_no_baseline():
    assert parse_evaluation(BINARY).baseline is None


def test_row_two_is_the_baseline_scored_on_the_same_holdout():
    evaluation = parse_evaluation("AUC,Accuracy\n0.87,0.81\n0.84,0.8\n")
    assert evaluation == Evaluation(challenger={"AUC": 0.87, "Accuracy": 0.81},
                                    baseline={"AUC": 0.84, "Accuracy": 0.8})


@pytest.mark.parametrize("text, metric, value", [
    (REGRESSION, "Root Mean Squared Error", 3.4),
    (REGRESSION, "Negative Log Likelihood", 512.3),
    (MULTICLASS, "Macro-averaged recall", 0.87),
])
def test_regression_and_multiclass_columns_are_read_like_any_other(text, metric, value):
    assert parse_evaluation(text).challenger[metric] == value


def test_the_error_is_a_retrain_error():
    assert issubclass(EvaluationFormatError, RetrainError)


# --- tolerances ---------------------------------------------------------------------------------

@pytest.mark.parametrize("text", [
    pytest.param("\ufeffAUC,Accuracy\n0.87,0.81\n", id="byte-order mark"),
    pytest.param("AUC,Accuracy\r\n0.87,0.81\r\n", id="CRLF"),
    pytest.param('"AUC","Accuracy"\n0.87,0.81\n', id="quoted header"),
    pytest.param('"AUC","Accuracy"\n"0.87","0.81"\n', id="quoted values"),
    pytest.param(" AUC ,  Accuracy\n 0.87 , 0.81 \n", id="extra whitespace"),
    pytest.param("AUC,Accuracy\n0.87,0.81\n\n\n  \n", id="trailing empty lines"),
    pytest.param("\n\nAUC,Accuracy\n0.87,0.81", id="leading empty lines, no final newline"),
    pytest.param("AUC\tAccuracy\n0.87\t0.81\n", id="TSV"),
    pytest.param("AUC,Accuracy,\n0.87,0.81,\n", id="trailing delimiter"),
    pytest.param("AUC,Accuracy\n0.87,0.81,\n", id="trailing delimiter on the data row only"),
    pytest.param(",AUC,Accuracy\n0,0.87,0.81\n", id="unnamed index column"),
])
def test_formatting_variations_read_the_same(text):
    assert parse_evaluation(text) == Evaluation(challenger={"AUC": 0.87, "Accuracy": 0.81})


def test_extra_columns_are_kept_and_text_columns_recorded_as_missing():
    evaluation = parse_evaluation("Learner,AUC,Threshold\nBoosted Decision Tree,0.87,0.5\n")
    assert evaluation.challenger == {"AUC": 0.87, "Threshold": 0.5}
    assert evaluation.challenger_missing == ("Learner",)


@pytest.mark.parametrize("cell", ["NaN", "nan", "", "Infinity", "-Infinity", "inf", "n/a"])
def test_a_non_finite_or_non_numeric_cell_is_recorded_as_missing(cell):
    evaluation = parse_evaluation(f"AUC,Accuracy\n{cell},0.81\n")
    assert evaluation.challenger == {"Accuracy": 0.81}
    assert evaluation.challenger_missing == ("AUC",)


def test_missing_cells_of_the_baseline_are_recorded_separately():
    evaluation = parse_evaluation("AUC,Accuracy\n0.87,0.81\n0.84,NaN\n")
    assert evaluation.baseline == {"AUC": 0.84}
    assert (evaluation.challenger_missing, evaluation.baseline_missing) == ((), ("Accuracy",))


# --- errors -------------------------------------------------------------------------------------

def _error(text: str) -> str:
    with pytest.raises(EvaluationFormatError) as raised:
        parse_evaluation(text)
    return str(raised.value)


@pytest.mark.parametrize("text", ["", "\ufeff", "\n\r\n  \n"])
def test_empty_output_is_an_error(text):
    assert "empty" in _error(text)


def test_header_without_a_data_row_is_an_error():
    assert "no data row" in _error("AUC,Accuracy\n\n")


def test_a_row_without_any_numeric_metric_is_an_error():
    assert "no numeric metric" in _error("AUC,Accuracy\nNaN,\n")


def test_a_baseline_row_without_any_numeric_metric_is_an_error():
    assert "data row 2 (the baseline) has no numeric metric" in _error("AUC,Accuracy\n0.87,0.81\nNaN,NaN\n")


def test_more_than_two_data_rows_is_an_error_that_says_so():
    message = _error("AUC\n0.87\n0.84\n0.8\n")
    assert "3 data rows" in message and "expected 1" in message


@pytest.mark.parametrize("row, cells", [("0.87", 1), ("0.87,0.81,0.5", 3)])
def test_a_row_whose_length_differs_from_the_header_is_an_error(row, cells):
    message = _error(f"AUC,Accuracy\n{row}\n")
    assert f"data row 1 (the new model) has {cells} cells but the header has 2 columns" in message


def test_a_header_of_numbers_is_an_error():
    assert "not a header" in _error("0.87,0.81\n0.84,0.8\n")


def test_a_column_named_twice_is_an_error():
    assert "'AUC' appears twice" in _error("AUC,AUC\n0.87,0.84\n")
