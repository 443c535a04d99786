"""Errors raised by training and scoring, worded like Azure ML Studio (classic) module errors.

A failed BES job's `Details` in the real service is a JSON error envelope whose
inner detail carries the module's numbered error, for example
`{"error":{"code":"ModuleExecutionError","message":"Module execution encountered an error.",
"details":[{"code":"1","target":"Train Model","message":"Error 0001: ..."}]}}`.
`str(TrainingDataError)` is exactly that text, so the emulator can put it in
`Details` unchanged; `.message` is the plain "Error 00xx: ..." sentence.

Codes used (numbers and titles from the Studio module error reference):

| code | when |
|---|---|
| 0001 | the label column is not in the dataset |
| 0002 | a hyperparameter is unknown for the learner, or its value cannot be parsed |
| 0003 | the input is empty (0 bytes, or no columns) |
| 0008 | a recipe parameter or hyperparameter value is out of range (holdout not in (0, 1), C < 0, ...) |
| 0010 | the baseline model's feature columns are not in the new dataset |
| 0013 | the learner is unknown, or does not fit the task |
| 0016 | a baseline model's column has another type than the dataset's (e.g. numeric vs text) |
| 0018 | the dataset is not valid (duplicate column names) |
| 0020 | the dataset has only the label column, no features |
| 0021 | too few rows (header only, too few for the hold-out split, a class with a single row) |
| 0023 | the label column is not valid for the task (missing values, non-numeric, one class, >2 classes for binary) |
| 0033 | a feature holds an infinite value |
| 0049 | the file cannot be parsed (bad encoding, unterminated quote, bad ARFF), or the baseline is not a model |
| 0062 | the baseline model was trained for another task, label or set of classes |
| 1000 | ragged rows ("AFx Library library exception: All rows must have same number of elements"), |
|      | or scikit-learn refused the data |
"""

from __future__ import annotations

import json


class TrainingDataError(Exception):
    """The job's data or recipe is unusable; str() is a Details text in the real service's style."""

    def __init__(self, code: int, message: str, module: str = "Train Model") -> None:
        self.code = code
        self.module = module
        self.message = f"Error {code:04d}: {message}"
        super().__init__(self.details())

    def details(self) -> str:
        """The JSON error envelope the real BES puts in a failed job's Details."""
        outer_code, outer_message = (
            ("LibraryExecutionError", "Module execution encountered an internal library error.")
            if self.code == 1000
            else ("ModuleExecutionError", "Module execution encountered an error.")
        )
        envelope = {
            "error": {
                "code": outer_code,
                "message": outer_message,
                "details": [{"code": str(self.code), "target": self.module, "message": self.message}],
            }
        }
        return json.dumps(envelope, ensure_ascii=False)


class RecipeError(TrainingDataError):
    """The recipe itself (learner, task, hyperparameters, holdout) is invalid; a kind of TrainingDataError."""


class TrainingCancelled(Exception):
    """`should_stop()` returned True between training phases; the job should end Cancelled."""


class InvalidModelFile(Exception):
    """The bytes are not a trained model (.ilearner) this emulator wrote."""


class ScoringInputError(Exception):
    """An RRS request's input does not fit the model's feature schema."""
