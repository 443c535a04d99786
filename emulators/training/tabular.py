"""Reading a BES input dataset (CSV, TSV, ARFF bytes) into a DataFrame, failing like Studio's Import Data."""

from __future__ import annotations

import csv
import io
import re
import warnings

import numpy as np
import pandas as pd

from emulators.training.training_errors import TrainingDataError

MODULE = "Import Data"
FORMATS = ("csv", "tsv", "arff")
_PANDAS_RAGGED = re.compile(r"Expected (\d+) fields in line (\d+), saw (\d+)")
_ATTRIBUTE = re.compile(r"@attribute\s+('(?:[^']|\\')*'|\"[^\"]*\"|\S+)\s+(.+)", re.IGNORECASE)


def read_table(data: bytes, file_format: str = "csv") -> pd.DataFrame:
    """Parse the dataset with pandas' C engine; every malformed input becomes a TrainingDataError."""
    fmt = (file_format or "csv").lower().lstrip(".")
    if fmt not in FORMATS:
        raise _error(49, f'File format "{file_format}" is not supported; use one of {", ".join(FORMATS)}.')
    if not data or data.isspace():
        raise _error(3, 'Input "Dataset" is null or empty: the file has 0 bytes of data.')
    if fmt == "arff":
        return _read_arff(data)
    sep = "\t" if fmt == "tsv" else ","
    header = _header(data, sep)
    try:
        with warnings.catch_warnings():
            # Chunked parsing (low_memory) keeps the parser's peak memory down; a column whose chunks
            # disagree on type comes back as object, which the schema treats as categorical anyway.
            warnings.simplefilter("ignore", pd.errors.DtypeWarning)
            frame = pd.read_csv(io.BytesIO(data), sep=sep, engine="c", index_col=False, low_memory=True)
    except pd.errors.EmptyDataError:
        raise _error(3, 'Input "Dataset" is null or empty: no header row.') from None
    except pd.errors.ParserError as exc:
        raise _ragged_or_unparseable(str(exc), len(header)) from None
    except UnicodeDecodeError as exc:
        raise _error(49, f"Failed to parse the file: it is not UTF-8 text ({exc.reason} at byte {exc.start}).") \
            from None
    _check_short_rows(data, frame, sep, len(header))
    return frame


def _error(code: int, message: str) -> TrainingDataError:
    """A TrainingDataError raised by the Import Data step."""
    return TrainingDataError(code, message, MODULE)


def _header(data: bytes, sep: str) -> list[str]:
    """The header row's fields; blank or duplicate names are refused."""
    end = data.find(b"\n")
    first = (data if end < 0 else data[:end]).rstrip(b"\r")  # a slice, not split(): no copy of the whole file
    try:
        text = first.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _error(49, f"Failed to parse the file: the header row is not UTF-8 text ({exc.reason}).") from None
    header = next(csv.reader([text], delimiter=sep), [])
    names = [h.strip() for h in header]
    if not any(names):
        raise _error(3, 'Input "Dataset" is null or empty: the first line (the header row) is blank.')
    seen: set[str] = set()
    for position, name in enumerate(names, start=1):
        if name in seen:
            raise _error(
                18,
                f'Dataset is not valid: column name "{name}" appears more than once in the header row '
                f"(again at column {position}).",
            )
        seen.add(name)
    return header


def _ragged_or_unparseable(text: str, expected: int) -> TrainingDataError:
    """pandas' tokenizer error as Studio's ragged-rows error when it is one, else a parse error."""
    match = _PANDAS_RAGGED.search(text)
    if match:
        return _ragged(int(match.group(2)), int(match.group(3)), expected)
    return _error(49, f"Failed to parse the file: {text.strip()}")


def _ragged(line: int, seen: int, expected: int) -> TrainingDataError:
    """Studio's wording for rows of unequal length, with the line that breaks the rule."""
    return _error(
        1000,
        "AFx Library library exception: All rows must have same number of elements: "
        f"line {line} (data row {line - 1}) has {seen} fields, expected {expected} as in the header row.",
    )


def _check_short_rows(data: bytes, frame: pd.DataFrame, sep: str, expected: int) -> None:
    """pandas pads short rows with NaN silently; rescan with the csv module only when the last column has gaps."""
    if frame.empty or not frame.iloc[:, -1].isna().any():
        return
    text = io.TextIOWrapper(io.BytesIO(data), encoding="utf-8-sig", errors="replace", newline="")
    reader = csv.reader(text, delimiter=sep)
    for fields in reader:
        if fields and len(fields) != expected:
            raise _ragged(reader.line_num, len(fields), expected)


def _read_arff(data: bytes) -> pd.DataFrame:
    """A small ARFF reader: @attribute names and types, then the @data section as CSV ('?' is missing)."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _error(49, f"Failed to parse the ARFF file: it is not UTF-8 text ({exc.reason}).") from None
    names: list[str] = []
    numeric: list[bool] = []
    lines = text.splitlines()
    for index, raw in enumerate(lines):
        line = raw.strip()
        lowered = line.lower()
        if not line or line.startswith("%") or lowered.startswith("@relation"):
            continue
        if lowered.startswith("@attribute"):
            match = _ATTRIBUTE.match(line)
            if not match:
                raise _error(49, f"Failed to parse the ARFF file: bad @attribute on line {index + 1}.")
            names.append(match.group(1).strip("'\""))
            numeric.append(match.group(2).strip().lower() in ("numeric", "real", "integer"))
        elif lowered.startswith("@data"):
            if not names:
                raise _error(3, 'Input "Dataset" is null or empty: the ARFF file declares no @attribute.')
            return _arff_data(lines[index + 1 :], index + 1, names, numeric)
    raise _error(49, "Failed to parse the ARFF file: no @data section.")


def _arff_data(lines: list[str], offset: int, names: list[str], numeric: list[bool]) -> pd.DataFrame:
    """The @data lines as a frame; numeric attributes parsed as numbers."""
    body = "\n".join(line for line in lines if line.strip() and not line.lstrip().startswith("%"))
    if not body:
        return pd.DataFrame({n: pd.Series(dtype=float if k else object) for n, k in zip(names, numeric)})
    try:
        frame = pd.read_csv(
            io.StringIO(body), header=None, names=names, quotechar="'", na_values=["?"],
            skipinitialspace=True, engine="c", index_col=False,
        )
    except pd.errors.ParserError as exc:
        match = _PANDAS_RAGGED.search(str(exc))
        if match:
            raise _ragged(int(match.group(2)) + offset, int(match.group(3)), len(names)) from None
        raise _error(49, f"Failed to parse the ARFF @data section: {exc}") from None
    for name, is_numeric in zip(names, numeric):
        if is_numeric and frame[name].dtype == object:
            frame[name] = pd.to_numeric(frame[name], errors="coerce").astype(np.float64)
    return frame
