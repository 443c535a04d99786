"""Specification of emulators.training: real training, Studio's metrics and errors, safe model files."""

from __future__ import annotations

import csv
import io
import functools
import json
import math
import zipfile

import numpy as np
import pandas as pd
import pytest
import skops.io as sio

from emulators.training.evaluate import COLUMNS
from emulators.training.training import (
    InvalidModelFile,
    Recipe,
    RecipeError,
    ScoringInputError,
    TrainingCancelled,
    TrainingDataError,
    load_model,
    train,
)

# Small hyperparameters keep the tree learners fast on the tiny test datasets.
FAST = {
    "random_forest": {"n_estimators": 10},
    "boosted_trees": {"max_iter": 20},
}


# ----------------------------------------------------------------------------- generated data


def frame(rows: int = 200, seed: int = 0) -> pd.DataFrame:
    """Two informative numeric features, a noise feature, a categorical one, and labels for each task."""
    rng = np.random.default_rng(seed)
    x1, x2, noise = rng.normal(size=(3, rows))
    color = rng.choice(["red", "green", "blue"], size=rows)
    score = 2 * x1 + x2 + (color == "red") * 1.5
    return pd.DataFrame(
        {
            "x1": x1.round(4),
            "x2": x2.round(4),
            "noise": noise.round(4),
            "color": color,
            "bought": np.where(score > 0.5, "yes", "no"),
            "price": (3 * x1 - 2 * x2 + rng.normal(scale=0.1, size=rows)).round(4),
            "segment": np.select([x1 > 0.4, x1 < -0.4], ["high", "low"], "mid"),
        }
    )


def dataset(task: str, rows: int = 200, seed: int = 0, sep: str = ",") -> bytes:
    """CSV (or TSV) bytes for one task: its label column plus the features."""
    label = LABEL[task]
    df = frame(rows, seed).drop(columns=[c for c in LABEL.values() if c != label])
    return df.to_csv(index=False, sep=sep).encode()


LABEL = {"binary": "bought", "regression": "price", "multiclass": "segment"}
LEARNERS = {
    "binary": ["logistic_regression", "boosted_trees", "random_forest"],
    "multiclass": ["logistic_regression", "boosted_trees", "random_forest"],
    "regression": ["linear_regression", "ridge_regression", "boosted_trees", "random_forest"],
}


def recipe(task: str = "binary", learner: str = "logistic_regression", **changes) -> Recipe:
    fields = {"task": task, "label": LABEL[task], "learner": learner, "hyperparameters": dict(FAST.get(learner, {}))}
    fields.update(changes)
    return Recipe(**fields)


def csv_rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def error_of(data: bytes, r: Recipe, **kwargs) -> TrainingDataError:
    with pytest.raises(TrainingDataError) as caught:
        train(data, r, **kwargs)
    return caught.value


@pytest.fixture(scope="module")
def binary_model() -> bytes:
    return train(dataset("binary"), recipe("binary")).model


@pytest.fixture(scope="module")
def multiclass_model() -> bytes:
    return train(dataset("multiclass"), recipe("multiclass")).model


@pytest.fixture(scope="module")
def regression_model() -> bytes:
    return train(dataset("regression"), recipe("regression", "linear_regression")).model


# ----------------------------------------------------------------------------- learners and metrics


EVERY_LEARNER = [(task, learner) for task, learners in LEARNERS.items() for learner in learners]


@functools.lru_cache(maxsize=None)
def trained(task: str, learner: str):
    """One training per (task, learner), shared by the tests that only read its result."""
    return train(dataset(task), recipe(task, learner))


@pytest.mark.parametrize("task,learner", EVERY_LEARNER)
def test_every_learner_trains_and_writes_the_evaluate_model_columns_of_its_task(task, learner):
    result = trained(task, learner)
    header, row = csv_rows(result.evaluation)
    assert header == list(COLUMNS[task])
    assert [float(v) for v in row] == pytest.approx([result.metrics[name] for name in header])


@pytest.mark.parametrize("task,learner", EVERY_LEARNER)
def test_every_learners_model_file_loads_with_the_explicit_allow_list_and_scores(task, learner):
    model = load_model(trained(task, learner).model)
    table = model.score(model.features, [["0.5", "-1", "0", "red"]])
    assert len(table.values[0]) == len(table.column_names) == len(table.column_types)


def test_binary_evaluation_columns_are_studios_names():
    assert COLUMNS["binary"] == (
        "Accuracy", "Precision", "Recall", "F-Score", "AUC", "Average Log Loss", "Training Log Loss")


def test_separable_binary_data_gets_auc_above_0_9():
    metrics = train(dataset("binary", rows=400), recipe("binary")).metrics
    assert metrics["AUC"] > 0.9
    assert metrics["Accuracy"] > 0.85


def test_training_log_loss_is_the_percent_improvement_over_the_class_prior():
    metrics = train(dataset("binary", rows=400), recipe("binary")).metrics
    assert 50 < metrics["Training Log Loss"] <= 100


def test_linear_regression_on_linear_data_has_r2_near_1():
    metrics = train(dataset("regression"), recipe("regression", "linear_regression")).metrics
    assert metrics["Coefficient of Determination"] > 0.99
    assert metrics["Relative Squared Error"] == pytest.approx(1 - metrics["Coefficient of Determination"])


def test_multiclass_micro_averages_equal_overall_accuracy():
    metrics = train(dataset("multiclass", rows=300), recipe("multiclass")).metrics
    assert metrics["Overall accuracy"] > 0.8
    assert metrics["Micro-averaged precision"] == pytest.approx(metrics["Overall accuracy"])
    assert metrics["Micro-averaged recall"] == pytest.approx(metrics["Overall accuracy"])


def test_result_reports_rows_columns_and_seconds():
    result = train(dataset("binary", rows=120), recipe("binary"))
    assert (result.rows, result.columns) == (120, 5)
    assert result.seconds > 0


# ----------------------------------------------------------------------------- hold-out and seed


def test_same_seed_gives_the_same_evaluation():
    first = train(dataset("binary"), recipe("binary", "random_forest", seed=7))
    second = train(dataset("binary"), recipe("binary", "random_forest", seed=7))
    assert first.evaluation == second.evaluation


def test_another_seed_holds_out_other_rows():
    first = train(dataset("regression"), recipe("regression", "linear_regression", seed=1))
    second = train(dataset("regression"), recipe("regression", "linear_regression", seed=2))
    assert first.evaluation != second.evaluation


def test_holdout_fraction_sets_how_many_rows_are_evaluated():
    result = train(dataset("binary", rows=200), recipe("binary", holdout=0.3))
    metadata = load_model(result.model).metadata
    assert (metadata["train_rows"], metadata["holdout_rows"]) == (140, 60)


def test_seed_and_holdout_may_arrive_as_strings():
    result = train(dataset("binary"), recipe("binary", seed="7", holdout="0.3"))
    metadata = load_model(result.model).metadata
    assert (metadata["seed"], metadata["holdout"]) == (7, 0.3)


# ----------------------------------------------------------------------------- baseline (champion) comparison


def test_baseline_is_scored_on_the_same_rows_so_the_same_model_gives_an_identical_row(binary_model):
    result = train(dataset("binary"), recipe("binary"), baseline=binary_model)
    header, new, old = csv_rows(result.evaluation)
    assert new == old


def test_weaker_baseline_gets_its_own_lower_row():
    noisy = frame(200, seed=5)
    noisy["bought"] = np.random.default_rng(9).permutation(noisy["bought"].to_numpy())
    weak = train(noisy.drop(columns=["price", "segment"]).to_csv(index=False).encode(), recipe("binary")).model
    result = train(dataset("binary"), recipe("binary"), baseline=weak)
    header, new, old = csv_rows(result.evaluation)
    auc = header.index("AUC")
    assert float(new[auc]) > float(old[auc])
    assert result.baseline_metrics["AUC"] == pytest.approx(float(old[auc]))


def test_baseline_needing_columns_the_dataset_lacks_is_error_0010(binary_model):
    data = frame().drop(columns=["price", "segment", "noise"]).to_csv(index=False).encode()
    error = error_of(data, recipe("binary"), baseline=binary_model)
    assert error.code == 10 and '"noise"' in error.message


def test_baseline_trained_for_another_task_is_error_0062(regression_model):
    error = error_of(dataset("binary"), recipe("binary"), baseline=regression_model)
    assert error.code == 62 and "regression" in error.message


def test_baseline_that_is_not_a_model_is_error_0049():
    error = error_of(dataset("binary"), recipe("binary"), baseline=b"not a model")
    assert error.code == 49 and "baseline" in error.message


# ----------------------------------------------------------------------------- bad data, Studio-style errors


def test_error_text_is_the_real_services_details_envelope():
    error = error_of(b"", recipe("binary"))
    envelope = json.loads(str(error))
    detail = envelope["error"]["details"][0]
    assert envelope["error"]["code"] == "ModuleExecutionError"
    assert detail == {"code": "3", "target": "Import Data", "message": error.message}
    assert error.message.startswith("Error 0003: ")


def test_empty_file_is_error_0003():
    assert error_of(b"", recipe("binary")).code == 3


def test_header_only_file_is_error_0021():
    error = error_of(b"x1,x2,bought\n", recipe("binary"))
    assert error.code == 21 and "no data rows" in error.message


def test_missing_label_column_is_error_0001_naming_it():
    error = error_of(dataset("binary"), recipe("binary", label="churned"))
    assert error.code == 1 and '"churned"' in error.message


def test_row_with_too_many_fields_is_error_1000_naming_the_line():
    data = b"x1,x2,bought\n1,2,yes\n3,4,no,extra\n5,6,yes\n"
    error = error_of(data, recipe("binary"))
    assert error.code == 1000
    assert "All rows must have same number of elements" in error.message
    assert "line 3" in error.message and "has 4 fields, expected 3" in error.message
    assert json.loads(str(error))["error"]["code"] == "LibraryExecutionError"


def test_row_with_too_few_fields_is_error_1000_naming_the_line():
    data = b"x1,x2,bought\n1,2,yes\n3,4,no\n5,6\n7,8,no\n"
    error = error_of(data, recipe("binary"))
    assert error.code == 1000 and "line 4" in error.message and "has 2 fields, expected 3" in error.message


def test_label_with_one_class_only_is_error_0023():
    df = frame().drop(columns=["price", "segment"]).assign(bought="yes")
    error = error_of(df.to_csv(index=False).encode(), recipe("binary"))
    assert error.code == 23 and '"yes"' in error.message


def test_binary_label_with_three_classes_is_error_0023_suggesting_multiclass():
    error = error_of(dataset("multiclass"), recipe("binary", label="segment"))
    assert error.code == 23 and "multiclass" in error.message


def test_non_numeric_regression_label_is_error_0023_naming_value_and_row():
    df = frame().drop(columns=["bought", "segment"])
    df["price"] = df["price"].astype(object)
    df.loc[16, "price"] = "n/a-ish"
    error = error_of(df.to_csv(index=False).encode(), recipe("regression", "linear_regression"))
    assert error.code == 23
    assert '"price"' in error.message and '"n/a-ish"' in error.message and "data row 17" in error.message


def test_label_with_missing_values_is_error_0023_naming_the_first_row():
    df = frame().drop(columns=["price", "segment"])
    df.loc[[9, 30], "bought"] = None
    error = error_of(df.to_csv(index=False).encode(), recipe("binary"))
    assert error.code == 23 and "2 row(s)" in error.message and "data row 10" in error.message


def test_too_few_rows_for_the_holdout_is_error_0021():
    error = error_of(dataset("regression", rows=3), recipe("regression", "linear_regression", holdout=0.2))
    assert error.code == 21 and "holdout" in error.message


def test_class_with_a_single_row_is_error_0021():
    df = frame().drop(columns=["price", "segment"])
    df.loc[0, "bought"] = "maybe"
    error = error_of(df.to_csv(index=False).encode(), recipe("multiclass", label="bought"))
    assert error.code == 21 and '"maybe"' in error.message


def test_infinite_feature_is_error_0033():
    df = frame().drop(columns=["price", "segment"])
    df.loc[4, "x2"] = math.inf
    error = error_of(df.to_csv(index=False).encode(), recipe("binary"))
    assert error.code == 33 and '"x2"' in error.message and "data row 5" in error.message


def test_duplicate_column_name_is_error_0018():
    error = error_of(b"x1,x1,bought\n1,2,yes\n3,4,no\n", recipe("binary"))
    assert error.code == 18 and '"x1"' in error.message


def test_undecodable_bytes_are_error_0049():
    assert error_of(b"x1,bought\n\xff\xfe,yes\n", recipe("binary")).code == 49


# ----------------------------------------------------------------------------- recipe errors


def test_unknown_hyperparameter_is_a_recipe_error_0002_listing_valid_names():
    error = error_of(dataset("binary"), recipe("binary", hyperparameters={"learning_rate": 0.1}))
    assert isinstance(error, RecipeError)
    assert error.code == 2 and '"learning_rate"' in error.message and "max_iter" in error.message


def test_unparseable_hyperparameter_value_is_error_0002():
    error = error_of(dataset("binary"), recipe("binary", hyperparameters={"C": "lots"}))
    assert error.code == 2 and '"lots"' in error.message


def test_out_of_range_hyperparameter_value_is_error_0008():
    assert error_of(dataset("binary"), recipe("binary", hyperparameters={"C": -1.0})).code == 8


def test_learner_that_does_not_fit_the_task_is_error_0013():
    error = error_of(dataset("binary"), recipe("binary", "linear_regression"))
    assert error.code == 13 and "linear_regression" in error.message


def test_holdout_outside_zero_one_is_error_0008():
    assert error_of(dataset("binary"), recipe("binary", holdout=1.5)).code == 8


def test_string_hyperparameters_are_parsed_to_the_learners_types():
    hyperparameters = {"n_estimators": "7", "max_depth": "3"}
    result = train(dataset("binary"), recipe("binary", "random_forest", hyperparameters=hyperparameters))
    learner = load_model(result.model).pipeline.named_steps["learner"]
    assert (learner.n_estimators, learner.max_depth) == (7, 3)


# ----------------------------------------------------------------------------- positive class


def test_positive_class_is_the_second_sorted_label_by_default(binary_model):
    model = load_model(binary_model)
    assert model.metadata["positive_label"] == "yes"


def test_positive_label_hyperparameter_chooses_the_positive_class():
    result = train(dataset("binary"), recipe("binary", hyperparameters={"positive_label": "no"}))
    model = load_model(result.model)
    table = model.score(["x1", "x2", "noise", "color"], [[-3, -3, 0, "blue"]])
    assert model.positive_label == "no"
    assert table.values[0][-2:][0] == "no" and float(table.values[0][-1]) > 0.5


def test_numeric_labels_sort_numerically_for_the_positive_class():
    df = frame().drop(columns=["price", "segment"])
    df["bought"] = np.where(df["bought"] == "yes", 10, 9)
    model = load_model(train(df.to_csv(index=False).encode(), recipe("binary")).model)
    assert model.positive_label == 10


# ----------------------------------------------------------------------------- cancellation, formats


def test_should_stop_cancels_before_the_fit():
    with pytest.raises(TrainingCancelled):
        train(dataset("binary"), recipe("binary"), should_stop=lambda: True)


def test_should_stop_is_polled_between_each_phase():
    calls = []
    train(dataset("binary"), recipe("binary"), should_stop=lambda: calls.append(1) and False)
    assert len(calls) >= 4


def test_tsv_input_trains():
    result = train(dataset("binary", sep="\t"), recipe("binary"), file_format="tsv")
    assert result.metrics["AUC"] > 0.9


def test_arff_input_trains():
    df = frame().drop(columns=["price", "segment"])
    lines = ["@relation shop", "@attribute x1 numeric", "@attribute x2 numeric", "@attribute noise numeric",
             "@attribute color {red,green,blue}", "@attribute bought {yes,no}", "@data"]
    lines += [",".join(str(v) for v in row) for row in df.itertuples(index=False)]
    result = train("\n".join(lines).encode(), recipe("binary"), file_format="arff")
    assert result.metrics["AUC"] > 0.9


# ----------------------------------------------------------------------------- the model file


def test_model_file_round_trip_keeps_schema_and_metadata(binary_model):
    model = load_model(binary_model)
    assert model.features == ["x1", "x2", "noise", "color"]
    assert (model.label, model.task) == ("bought", "binary")
    assert model.metadata["learner"] == "logistic_regression"
    assert model.metadata["rows"] == 200 and model.metadata["holdout"] == 0.25 and model.metadata["seed"] == 42
    assert set(model.metadata) >= {"sklearn_version", "skops_version", "trained_at", "metrics", "hyperparameters"}
    assert model.metadata["classes"] == ["no", "yes"]


def test_model_file_metrics_match_the_evaluation():
    result = train(dataset("binary"), recipe("binary"))
    assert load_model(result.model).metadata["metrics"] == result.metrics


def test_model_file_is_a_skops_archive_not_a_pickle(binary_model):
    assert binary_model[:2] == b"PK"
    assert "schema.json" in zipfile.ZipFile(io.BytesIO(binary_model)).namelist()


@pytest.mark.parametrize(
    "blob",
    [b"", b"\x00\x01garbage", b"x1,x2,bought\n1,2,yes\n"],
    ids=["empty", "random-bytes", "csv"],
)
def test_load_model_refuses_bytes_that_are_not_a_model(blob):
    with pytest.raises(InvalidModelFile):
        load_model(blob)


def test_load_model_refuses_a_skops_archive_of_another_object():
    with pytest.raises(InvalidModelFile, match="not a trained model"):
        load_model(sio.dumps({"format": "something else", "weights": [1, 2, 3]}))


class Gadget:
    """A type no allow-list trusts."""

    def __init__(self) -> None:
        self.value = 1


def test_load_model_refuses_a_skops_archive_with_untrusted_types():
    with pytest.raises(InvalidModelFile, match="Gadget"):
        load_model(sio.dumps({"format": "studio_emulator.ilearner", "pipeline": Gadget()}))


# ----------------------------------------------------------------------------- scoring (RRS)


def test_scoring_string_and_typed_values_gives_the_same_table(binary_model):
    model = load_model(binary_model)
    names = ["x1", "x2", "noise", "color"]
    as_strings = model.score(names, [["1.5", "-0.25", "0", "red"]])
    typed = model.score(names, [[1.5, -0.25, 0, "red"]])
    assert as_strings.values == typed.values


def test_binary_scoring_adds_scored_labels_and_probabilities_in_studio_types(binary_model):
    table = load_model(binary_model).score(["x1", "x2", "noise", "color"], [["1", "2", "0", "red"]])
    assert table.column_names == ["x1", "x2", "noise", "color", "Scored Labels", "Scored Probabilities"]
    assert table.column_types == ["Double", "Double", "Double", "String", "String", "Double"]
    assert table.values[0][:5] == ["1", "2", "0", "red", "yes"]


def test_scored_probabilities_are_between_0_and_1(binary_model):
    rng = np.random.default_rng(3)
    rows = [[float(a), float(b), float(c), str(k)] for a, b, c, k in
            zip(*rng.normal(scale=5, size=(3, 50)), rng.choice(["red", "blue", "mauve"], 50))]
    table = load_model(binary_model).score(["x1", "x2", "noise", "color"], rows)
    assert all(0.0 <= float(row[-1]) <= 1.0 for row in table.values)


def test_multiclass_scoring_has_a_probability_column_per_class(multiclass_model):
    table = load_model(multiclass_model).score(["x1", "x2", "noise", "color"], [["2", "0", "0", "red"]])
    assert table.column_names[4:] == [
        'Scored Probabilities for Class "high"',
        'Scored Probabilities for Class "low"',
        'Scored Probabilities for Class "mid"',
        "Scored Labels",
    ]
    assert sum(float(v) for v in table.values[0][4:7]) == pytest.approx(1.0)
    assert table.values[0][-1] == "high"


def test_regression_scoring_adds_a_double_scored_label(regression_model):
    table = load_model(regression_model).score(["x1", "x2", "noise", "color"], [["1", "1", "0", "red"]])
    assert table.column_names[-1] == "Scored Labels" and table.column_types[-1] == "Double"
    assert float(table.values[0][-1]) == pytest.approx(1.0, abs=0.2)


def test_scoring_without_a_feature_column_names_the_missing_columns(binary_model):
    with pytest.raises(ScoringInputError, match='"noise".*"color"'):
        load_model(binary_model).score(["x1", "x2"], [["1", "2"]])


def test_scoring_echoes_extra_columns(binary_model):
    table = load_model(binary_model).score(["id", "x1", "x2", "noise", "color"], [[17, "1", "2", "0", "red"]])
    assert table.column_names[0] == "id" and table.column_types[0] == "Int32" and table.values[0][0] == "17"


def test_scoring_a_non_number_in_a_numeric_column_names_column_row_and_value(binary_model):
    with pytest.raises(ScoringInputError, match='"x2".*"abc".*row 2'):
        load_model(binary_model).score(
            ["x1", "x2", "noise", "color"], [["1", "2", "0", "red"], ["1", "abc", "0", "red"]]
        )


def test_scoring_a_row_of_the_wrong_length_is_refused(binary_model):
    with pytest.raises(ScoringInputError, match="Row 1 has 3 values, expected 4"):
        load_model(binary_model).score(["x1", "x2", "noise", "color"], [["1", "2", "0"]])


def test_scoring_tolerates_missing_values_and_unseen_categories(binary_model):
    table = load_model(binary_model).score(["x1", "x2", "noise", "color"], [["", None, "0", "ultraviolet"]])
    assert table.values[0][:4] == ["", "", "0", "ultraviolet"]
    assert 0.0 <= float(table.values[0][-1]) <= 1.0


def test_scoring_an_infinite_number_is_refused_naming_the_column(binary_model):
    with pytest.raises(ScoringInputError, match='"x1".*"inf"'):
        load_model(binary_model).score(["x1", "x2", "noise", "color"], [["inf", "2", "0", "red"]])


def test_baseline_column_of_another_type_is_error_0016(binary_model):
    df = frame().drop(columns=["price", "segment"])
    df["x2"] = np.where(df["x2"] > 0, "up", "down")
    error = error_of(df.to_csv(index=False).encode(), recipe("binary"), baseline=binary_model)
    assert error.code == 16 and '"x2"' in error.message


def test_dataset_with_only_the_label_column_is_error_0020():
    assert error_of(b"bought\nyes\nno\n", recipe("binary")).code == 20


def test_short_row_is_found_even_when_the_last_column_has_real_gaps():
    data = b"x1,x2,bought\n1,,yes\n3,4,no\n5,6\n"
    error = error_of(data, recipe("binary", label="x1"))
    assert error.code == 1000 and "line 4" in error.message


def test_load_model_refuses_an_archive_that_only_looks_like_a_model():
    fake = {"format": "studio_emulator.ilearner", "version": 1, "pipeline": [1, 2], "features": [], "label": "y",
            "label_type": "String", "task": "binary", "classes": ["a", "b"], "metadata": {}}
    with pytest.raises(InvalidModelFile, match="pipeline"):
        load_model(sio.dumps(fake))


def test_boolean_feature_scores_from_true_false_text_or_typed_booleans():
    df = frame().drop(columns=["price", "segment"]).assign(member=lambda d: d["x1"] > 0)
    model = load_model(train(df.to_csv(index=False).encode(), recipe("binary")).model)
    names = ["x1", "x2", "noise", "color", "member"]
    typed = model.score(names, [[1, 1, 0, "red", True]])
    text = model.score(names, [["1", "1", "0", "red", "true"]])
    assert model.specs[-1].studio_type == "Boolean"
    assert typed.values[0][5:] == text.values[0][5:]


def test_an_entirely_empty_column_is_not_a_feature():
    df = frame().drop(columns=["price", "segment"]).assign(comment=None)
    model = load_model(train(df.to_csv(index=False).encode(), recipe("binary")).model)
    assert "comment" not in model.features and model.metadata["ignored_columns"] == ["comment"]


def test_an_id_like_text_column_is_capped_to_the_most_frequent_levels():
    df = frame().drop(columns=["price", "segment"]).assign(customer=[f"c{i}" for i in range(200)])
    model = load_model(train(df.to_csv(index=False).encode(), recipe("binary")).model)
    encoder = model.pipeline.named_steps["prepare"].named_transformers_["categorical"]
    assert encoder.max_categories is not None
