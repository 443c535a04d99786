"""One BES job, run inside its own child process: read the data, train, write both outputs, report back."""

from __future__ import annotations

import csv
import io
import os
import resource
import time
import traceback
from dataclasses import asdict, dataclass

from emulators.training import training
from .blobs import BlobRef
from .errors import BlobError, module_error


@dataclass
class JobSpec:
    """Everything a child needs to run a job (credentials included; kept only under --data-dir)."""

    job_id: str
    data: BlobRef
    recipe: dict
    model_output: BlobRef
    evaluation_output: BlobRef
    baseline: BlobRef | None = None
    baseline_parameter: str = "Baseline model"
    delay_seconds: float = 0.0
    fail_details: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "JobSpec":
        refs = {k: BlobRef(**d[k]) if d.get(k) else None
                for k in ("data", "model_output", "evaluation_output", "baseline")}
        return cls(**{**d, **refs})


class JobFailed(Exception):
    """The job ends Failed; the message is the status' `Details` text."""


def run(spec_dict: dict, conn) -> None:
    """Child entry point: always sends exactly one report dict through `conn`."""
    report: dict = {"start_rss_bytes": _current_rss()}
    try:
        report.update(ok=True, **execute(JobSpec.from_dict(spec_dict)))
    except JobFailed as e:
        report.update(ok=False, details=str(e))
    except Exception as e:  # a bug: fail the job, keep the traceback for the log
        report.update(ok=False, details=module_error(0, f"Internal error in the emulator: {e!r}", "Execute"),
                      traceback=traceback.format_exc())
    report["peak_rss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    conn.send(report)
    conn.close()


def execute(spec: JobSpec) -> dict:
    """Read, train, write; raises JobFailed with a Details text in the real service's style."""
    if spec.delay_seconds:
        time.sleep(spec.delay_seconds)
    if spec.fail_details is not None:
        raise JobFailed(spec.fail_details)
    data = _read(spec.data, "Import Data")
    baseline = _read(spec.baseline, "Evaluate Model", what=f'baseline model ("{spec.baseline_parameter}")') \
        if spec.baseline else None
    recipe = training.Recipe(**spec.recipe)
    try:
        result = training.train(data, recipe, file_format=_format(spec.data), baseline=baseline)
    except training.TrainingDataError as e:
        raise JobFailed(str(e)) from None
    except training.InvalidModelFile as e:
        raise JobFailed(module_error(
            62, f'The baseline model given in "{spec.baseline_parameter}" ({spec.baseline.uri if spec.baseline else "?"}) '
                f"is not a trained model this service can read: {e}", "Evaluate Model")) from None
    del data
    _write(spec.model_output, result.model, "application/octet-stream")
    _write(spec.evaluation_output, _render(result.evaluation, spec.evaluation_output.extension), "text/plain")
    return {"metrics": result.metrics, "rows": result.rows, "columns": result.columns,
            "train_seconds": result.seconds}


def _read(ref: BlobRef, module: str, what: str = "input dataset") -> bytes:
    try:
        return ref.read()
    except BlobError as e:
        raise JobFailed(module_error(30, f"Unable to download the {what}: {e}", module)) from None


def _write(ref: BlobRef, data: bytes, content_type: str) -> None:
    try:
        ref.write(data, content_type)
    except BlobError as e:
        raise JobFailed(module_error(151, f"There was an error writing to cloud storage: {e}", "Export Data")) from None


def _format(ref: BlobRef) -> str:
    return ref.extension if ref.extension in ("csv", "tsv", "arff") else "csv"


def _render(evaluation_csv: str, extension: str) -> bytes:
    """The evaluation table in the format the output's extension asks for (.csv, .tsv or .arff)."""
    if extension == "csv":
        return evaluation_csv.encode()
    rows = list(csv.reader(io.StringIO(evaluation_csv)))
    out = io.StringIO()
    if extension == "tsv":
        csv.writer(out, delimiter="\t", lineterminator="\n").writerows(rows)
    else:  # arff
        header, body = rows[0], rows[1:]
        out.write("@relation 'Evaluate Model results'\n")
        for name in header:
            out.write(f"@attribute '{name}' numeric\n")
        out.write("@data\n")
        for row in body:
            out.write(",".join(v if v != "" else "?" for v in row) + "\n")
    return out.getvalue().encode()


def _current_rss() -> int:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return 0


def warm_up() -> None:
    """Target of a throw-away process that makes the fork server import the ML stack at boot."""
