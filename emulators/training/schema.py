"""The feature schema a model was trained with, and coercion of new data (training or RRS) to it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

NUMERIC, BOOLEAN, CATEGORICAL = "numeric", "boolean", "categorical"
MAX_STORED_LEVELS = 1000
_INT32 = (np.iinfo(np.int32).min, np.iinfo(np.int32).max)
_TRUE = {"true", "1", "yes", "t", "y"}
_FALSE = {"false", "0", "no", "f", "n"}


@dataclass
class FeatureSpec:
    """One input column as the model expects it; stored in the .ilearner as a plain dict."""

    name: str
    kind: str  # numeric | boolean | categorical
    dtype: str  # the pandas dtype seen in training
    studio_type: str  # Int32 | Int64 | Double | Boolean | String
    levels: list[str] = field(default_factory=list)  # categorical levels (capped at MAX_STORED_LEVELS)
    distinct: int = 0  # number of distinct non-missing values seen in training

    def to_dict(self) -> dict:
        """Plain values only, so the skops archive needs no extra trusted type."""
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict) -> "FeatureSpec":
        """The inverse of to_dict; a missing key is a malformed model file (KeyError)."""
        return cls(**{k: raw[k] for k in ("name", "kind", "dtype", "studio_type", "levels", "distinct")})


class CoercionError(ValueError):
    """A value does not fit its column's kind; carries where, for the caller to word."""

    def __init__(self, column: str, row: int, value: object, kind: str) -> None:
        self.column, self.row, self.value, self.kind = column, row, value, kind
        super().__init__(f'column "{column}" expects {kind} values, got "{value}" at row {row}')


def studio_type_of(series: pd.Series) -> str:
    """The Studio column type name a pandas column maps to."""
    if pd.api.types.is_bool_dtype(series.dtype):
        return "Boolean"
    if pd.api.types.is_integer_dtype(series.dtype):
        if series.empty:
            return "Int32"
        low, high = series.min(), series.max()
        return "Int32" if _INT32[0] <= low and high <= _INT32[1] else "Int64"
    if pd.api.types.is_numeric_dtype(series.dtype):
        return "Double"
    return "String"


def infer_feature(name: str, series: pd.Series) -> FeatureSpec:
    """Numeric and boolean columns go to the numeric branch; everything else is categorical."""
    studio_type = studio_type_of(series)
    if studio_type == "Boolean":
        return FeatureSpec(name, BOOLEAN, str(series.dtype), studio_type)
    if studio_type != "String":
        return FeatureSpec(name, NUMERIC, str(series.dtype), studio_type)
    levels = sorted(str(v) for v in series.dropna().unique())
    return FeatureSpec(name, CATEGORICAL, str(series.dtype), studio_type, levels[:MAX_STORED_LEVELS], len(levels))


def prepare_training_column(spec: FeatureSpec, series: pd.Series) -> pd.Series:
    """The column as the pipeline sees it in training: floats for numeric/boolean, text or NaN for categorical."""
    if spec.kind == CATEGORICAL:
        return _as_categorical(series)
    if spec.kind == BOOLEAN:
        return series.astype(np.float64)
    return series


def coerce_column(spec: FeatureSpec, series: pd.Series, first_row: int = 1) -> pd.Series:
    """Bring a column of strings or typed values (RRS input, a baseline's hold-out) to the spec's kind."""
    if spec.kind == CATEGORICAL:
        return _as_categorical(series)
    if spec.kind == BOOLEAN and not pd.api.types.is_numeric_dtype(series.dtype):
        return _as_boolean(spec, series, first_row)
    if pd.api.types.is_bool_dtype(series.dtype):
        return series.astype(np.float64)
    if pd.api.types.is_numeric_dtype(series.dtype):
        return series.astype(np.float64)
    return _as_numeric(spec, series, first_row)


def coerce_values(spec: FeatureSpec, values: list, first_row: int = 1) -> np.ndarray | pd.Series:
    """coerce_column for a plain list (an RRS column), with a numpy fast path for clean numbers."""
    if spec.kind == NUMERIC:
        try:
            numbers = np.asarray(values, dtype=np.float64)  # numbers, numeric strings, None -> NaN
        except (TypeError, ValueError):
            pass  # blanks, words, booleans-as-text: the careful path says which value is wrong
        else:
            infinite = np.isinf(numbers)
            if infinite.any():
                position = int(np.flatnonzero(infinite)[0])
                raise CoercionError(spec.name, first_row + position, values[position], "finite numeric")
            return numbers
    elif spec.kind == CATEGORICAL:
        return np.asarray([_level(v) for v in values], dtype=object)
    return coerce_column(spec, pd.Series(values, dtype=object), first_row)


def _level(value: object) -> object:
    """One categorical value: text as is, other values as text, missing (None, NaN, blank) as NaN."""
    if value is None or (isinstance(value, float) and value != value):
        return np.nan
    if isinstance(value, str):
        return value if value.strip() else np.nan
    return str(value)


def _missing(series: pd.Series) -> pd.Series:
    """None, NaN and empty/blank strings are missing values (CSV readers treat an empty field as missing)."""
    blank = series.map(lambda v: isinstance(v, str) and not v.strip())
    return series.isna() | blank.astype(bool)


def _as_categorical(series: pd.Series) -> pd.Series:
    """Text values with NaN for missing (the one-hot encoder keeps NaN as a level of its own)."""
    if pd.api.types.is_string_dtype(series.dtype) and series.dtype != object:
        return series.astype(object).where(series.notna(), np.nan)

    return pd.Series([_level(v) for v in series.tolist()], index=series.index, dtype=object)


def _as_numeric(spec: FeatureSpec, series: pd.Series, first_row: int) -> pd.Series:
    """Floats; blanks are missing; anything else unparseable is a CoercionError naming its row."""
    missing = _missing(series)
    values = series.map(lambda v: int(v) if isinstance(v, bool) else v)
    parsed = pd.to_numeric(values.where(~missing, np.nan), errors="coerce").astype(np.float64)
    bad = parsed.isna() & ~missing
    if bad.any():
        position = int(np.flatnonzero(bad.to_numpy())[0])
        raise CoercionError(spec.name, first_row + position, series.iloc[position], "numeric")
    return parsed


def _as_boolean(spec: FeatureSpec, series: pd.Series, first_row: int) -> pd.Series:
    """1.0/0.0 from booleans or their usual spellings (true/false, yes/no, 1/0)."""
    def parse(position: int, value: object) -> float:
        if value is None or (isinstance(value, float) and value != value):
            return np.nan
        if isinstance(value, bool):
            return float(value)
        text = str(value).strip().lower()
        if not text:
            return np.nan
        if text in _TRUE:
            return 1.0
        if text in _FALSE:
            return 0.0
        raise CoercionError(spec.name, first_row + position, value, "Boolean")

    return pd.Series([parse(i, v) for i, v in enumerate(series.tolist())], index=series.index, dtype=np.float64)
