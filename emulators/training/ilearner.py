"""The .ilearner file: a skops archive (never pickle) of the pipeline plus everything needed to score with it.

The archive holds one plain dict (so no emulator class needs trusting):
`format`, `version`, `pipeline` (sklearn Pipeline), `features` (list of FeatureSpec dicts),
`label`, `label_type` (Studio type name), `task`, `classes`, `positive_label`, `metadata`.
Loading computes the archive's untrusted types with `skops.io.get_untrusted_types` and
accepts them only if every one is in ALLOWED_TYPES; anything else is InvalidModelFile.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import sklearn
import skops.io as sio
from sklearn.pipeline import Pipeline

from emulators.training.schema import CoercionError, FeatureSpec, coerce_column, coerce_values
from emulators.training.training_errors import InvalidModelFile, ScoringInputError

FORMAT = "studio_emulator.ilearner"
VERSION = 1
# Types skops does not trust by default but our pipelines contain (checked by a test per learner).
ALLOWED_TYPES = frozenset(
    {
        "numpy.dtype",
        "sklearn.tree._tree.Tree",
        "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    }
)
_TASKS = ("binary", "multiclass", "regression")
_REQUIRED_KEYS = ("format", "version", "pipeline", "features", "label", "label_type", "task", "classes", "metadata")


@dataclass
class ScoredTable:
    """An RRS output table: every value rendered as a string, types in Studio's names."""

    column_names: list[str]
    column_types: list[str]
    values: list[list[str]]


@dataclass
class Prediction:
    """Raw model output for a prepared frame: labels, and class probabilities for classifiers."""

    labels: np.ndarray
    probabilities: np.ndarray | None  # rows x classes, columns in `classes` order
    classes: list


@dataclass
class TrainedModel:
    """A loaded .ilearner: its schema, metadata and the fitted pipeline."""

    features: list[str]
    label: str
    task: str
    metadata: dict
    specs: list[FeatureSpec] = field(default_factory=list, repr=False)
    classes: list = field(default_factory=list)
    positive_label: Any = None
    label_type: str = "String"
    pipeline: Any = field(default=None, repr=False)

    def prepare(self, columns: dict[str, pd.Series], first_row: int = 1) -> pd.DataFrame:
        """A frame of the model's features coerced to its schema; raises CoercionError / KeyError."""
        return pd.DataFrame({spec.name: coerce_column(spec, columns[spec.name], first_row) for spec in self.specs})

    def predict(self, frame: pd.DataFrame) -> Prediction:
        """Labels (binary: P(positive) >= 0.5) and per-class probabilities."""
        with sklearn.config_context(skip_parameter_validation=True):  # fitted already: skip re-validation
            if self.task == "regression":
                return Prediction(np.asarray(self.pipeline.predict(frame), dtype=np.float64), None, [])
            probabilities = self.pipeline.predict_proba(frame)
        fitted = list(self.pipeline.classes_)
        order = [fitted.index(c) for c in self.classes]
        probabilities = probabilities[:, order]
        if self.task == "binary":
            positive = probabilities[:, 1] >= 0.5
            labels = np.where(positive, self.classes[1], self.classes[0])
        else:
            labels = np.asarray(self.classes, dtype=object)[probabilities.argmax(axis=1)]
        return Prediction(labels, probabilities, list(self.classes))

    def score(self, column_names: list[str], rows: list[list]) -> ScoredTable:
        """RRS scoring: input columns echoed, then Scored Labels / Scored Probabilities as Studio names them."""
        names = [str(n) for n in column_names]
        for number, row in enumerate(rows, start=1):
            if not isinstance(row, (list, tuple)) or len(row) != len(names):
                got = len(row) if isinstance(row, (list, tuple)) else type(row).__name__
                raise ScoringInputError(f"Row {number} has {got} values, expected {len(names)} (one per column name).")
        missing = [f for f in self.features if f not in names]
        if missing:
            raise ScoringInputError(
                "Input is missing feature column(s) the model needs: " + ", ".join(f'"{m}"' for m in missing) + "."
            )
        index = {name: names.index(name) for name in self.features}
        try:
            frame = pd.DataFrame(
                {spec.name: coerce_values(spec, [row[index[spec.name]] for row in rows]) for spec in self.specs}
            )
        except CoercionError as exc:
            raise ScoringInputError(
                f'Column "{exc.column}" expects {exc.kind} values: "{exc.value}" at row {exc.row} cannot be converted.'
            ) from None
        try:
            prediction = self.predict(frame) if rows else None
        except ValueError as exc:  # a last line of defence: scikit-learn refused the prepared input
            raise ScoringInputError(f"The model cannot score this input: {exc}") from None
        return self._table(names, rows, prediction)

    def _table(self, names: list[str], rows: list[list], prediction: Prediction | None) -> ScoredTable:
        """Input columns (as sent) followed by the scored columns, in Studio's names, types and order."""
        types = {spec.name: spec.studio_type for spec in self.specs}
        out_names = list(names)
        out_types = [types.get(name) or _infer_type([row[i] for row in rows]) for i, name in enumerate(names)]
        scored: list[list[str]] = []
        if self.task == "regression":
            out_names.append("Scored Labels")
            out_types.append("Double")
            if prediction is not None:
                scored = [[_double(v)] for v in prediction.labels.tolist()]
        elif self.task == "binary":
            out_names += ["Scored Labels", "Scored Probabilities"]
            out_types += [self.label_type, "Double"]
            if prediction is not None:
                scored = [
                    [render(label, self.label_type), _double(p)]
                    for label, p in zip(prediction.labels.tolist(), prediction.probabilities[:, 1].tolist())
                ]
        else:
            out_names += [f'Scored Probabilities for Class "{c}"' for c in self.classes] + ["Scored Labels"]
            out_types += ["Double"] * len(self.classes) + [self.label_type]
            if prediction is not None:
                scored = [
                    [_double(p) for p in probs] + [render(label, self.label_type)]
                    for probs, label in zip(prediction.probabilities.tolist(), prediction.labels.tolist())
                ]
        echoed = [[v if v.__class__ is str else render(v, None) for v in row] for row in rows]  # text as sent
        values = [row + extra for row, extra in zip(echoed, scored or [[]] * len(rows))]
        return ScoredTable(out_names, out_types, values)


def render(value: Any, studio_type: str | None) -> str:
    """A value as Studio's RRS renders it: doubles to 15 significant digits, missing as empty."""
    if value is None:
        return ""
    if isinstance(value, (bool, np.bool_)):
        return "True" if value else "False"
    if isinstance(value, (float, np.floating)):
        if value != value:
            return ""
        if studio_type in (None, "Double") or not float(value).is_integer():
            return f"{float(value):.15g}"
        return str(int(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    return str(value)


def _double(value: float) -> str:
    """A Double as Studio renders it (15 significant digits); NaN as empty."""
    return "" if value != value else f"{value:.15g}"


def _infer_type(values: list) -> str:
    """Studio type of an extra (non-feature) input column, from its values."""
    present = [v for v in values if v is not None and v != ""]
    if present and all(isinstance(v, (bool, np.bool_)) for v in present):
        return "Boolean"
    if present and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in present):
        return "Int32"
    if present and all(isinstance(v, (int, float, np.number)) and not isinstance(v, bool) for v in present):
        return "Double"
    return "String"


def dumps(model: TrainedModel) -> bytes:
    """Serialize with skops; every value outside the pipeline is a plain Python value."""
    artifact = {
        "format": FORMAT,
        "version": VERSION,
        "pipeline": model.pipeline,
        "features": [spec.to_dict() for spec in model.specs],
        "label": model.label,
        "label_type": model.label_type,
        "task": model.task,
        "classes": [to_python(c) for c in model.classes],
        "positive_label": to_python(model.positive_label),
        "metadata": model.metadata,
    }
    return sio.dumps(artifact)


def load_model(blob: bytes) -> TrainedModel:
    """Load a .ilearner this emulator wrote, trusting only ALLOWED_TYPES; anything else is InvalidModelFile."""
    if not isinstance(blob, (bytes, bytearray, memoryview)) or len(blob) == 0:
        raise InvalidModelFile("The model file is empty.")
    blob = bytes(blob)
    if not zipfile.is_zipfile(io.BytesIO(blob)):
        raise InvalidModelFile("The model file is not a skops archive (not a zip file).")
    try:
        untrusted = sio.get_untrusted_types(data=blob)
    except Exception as exc:  # noqa: BLE001 - any parse failure means "not our file"
        raise InvalidModelFile(f"The model file cannot be read as a skops archive: {exc}") from None
    refused = sorted(set(untrusted) - ALLOWED_TYPES)
    if refused:
        raise InvalidModelFile(f"The model file contains types this emulator does not trust: {', '.join(refused)}.")
    try:
        artifact = sio.loads(blob, trusted=sorted(untrusted))
    except Exception as exc:  # noqa: BLE001
        raise InvalidModelFile(f"The model file cannot be loaded: {exc}") from None
    if not isinstance(artifact, dict) or artifact.get("format") != FORMAT or not set(_REQUIRED_KEYS) <= set(artifact):
        raise InvalidModelFile("The skops archive is not a trained model written by emulators.studio.")
    if artifact["version"] != VERSION:
        raise InvalidModelFile(
            f"The model file has format version {artifact['version']}; this emulator reads {VERSION}."
        )
    try:
        specs = [FeatureSpec.from_dict(raw) for raw in artifact["features"]]
    except (KeyError, TypeError) as exc:
        raise InvalidModelFile(f"The model file's feature schema is malformed: {exc}") from None
    _check_consistent(artifact)
    return TrainedModel(
        features=[s.name for s in specs],
        label=artifact["label"],
        task=artifact["task"],
        metadata=artifact["metadata"],
        specs=specs,
        classes=list(artifact["classes"]),
        positive_label=artifact.get("positive_label"),
        label_type=artifact["label_type"],
        pipeline=artifact["pipeline"],
    )


def _check_consistent(artifact: dict) -> None:
    """The parts must agree, so scoring cannot fail later on a file that merely looks right."""
    pipeline, task, classes = artifact["pipeline"], artifact["task"], artifact["classes"]
    if not isinstance(pipeline, Pipeline) or task not in _TASKS:
        raise InvalidModelFile("The model file does not hold a scikit-learn pipeline for a known task.")
    if task == "regression":
        return
    fitted = [to_python(c) for c in getattr(pipeline, "classes_", [])]
    if not isinstance(classes, list) or len(classes) < 2 or sorted(map(str, classes)) != sorted(map(str, fitted)):
        raise InvalidModelFile("The model file's class labels do not match its pipeline.")
    if task == "binary" and len(classes) != 2:
        raise InvalidModelFile("The model file is binary but has more than two classes.")


def to_python(value: Any) -> Any:
    """numpy scalars to plain Python values (skops stores those without extra trusted types)."""
    if isinstance(value, np.generic):
        return value.item()
    return value
