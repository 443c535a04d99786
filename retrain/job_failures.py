"""Why a training job failed, in words a person reads, and whether submitting it again can help.

The rules (README, "Job failures"):

* A **data error** fails the run at once: the service names a module error numbered other than 0000 and
  0151 (`Error 0032: ...`, `Error 1000: AFx Library library exception: ...`), or its envelope's code is
  one the service uses for bad input (`ModuleExecutionError`, `LibraryExecutionError`, `BadArgument`,
  `BadUserArgument`). Resubmitting the same data would fail the same way.
* Anything else is an **interruption**: the job was interrupted or lost (a service restart), its process
  died (`Error 0000`), it could not write its outputs (`Error 0151`), or it failed without naming a data
  error. The run resubmits it to fresh outputs, with back-off, up to `MAX_ATTEMPTS` submissions; then it
  fails, saying so.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

MAX_ATTEMPTS = 3  # BES submissions per run when jobs are interrupted or lost
INFRASTRUCTURE_MODULE_ERRORS = frozenset({"0000", "0151"})  # the job's process died; a storage write failed
DATA_ERROR_CODES = frozenset({"ModuleExecutionError", "LibraryExecutionError", "BadArgument", "BadUserArgument"})
_MODULE_ERROR = re.compile(r"Error (\d{4}): ?(.*)", re.DOTALL)
MAX_REASON = 500  # characters of the service's text in a run's reason (the whole text is in `error`)


@dataclass(frozen=True)
class JobFailure:
    """A failed job's Details, read."""

    text: str  # the sentence for the run's reason, e.g. "Error 0032: Argument must be finite ..."
    data_error: bool  # True: the data (or recipe) is at fault, do not resubmit

    @property
    def retryable(self) -> bool:
        return not self.data_error


def read_failure(details: str | None) -> JobFailure:
    """Read BES `Details`: a JSON error envelope, or free text that may embed `Error NNNN: ...`."""
    raw = (details or "").strip()
    if not raw:
        return JobFailure("the service gave no details", data_error=False)
    code, messages = _envelope(raw)
    for message in messages + [raw]:
        found = _MODULE_ERROR.search(message)
        if found:
            number = found.group(1)
            sentence = _sentence(f"Error {number}: {found.group(2)}")
            return JobFailure(sentence, data_error=number not in INFRASTRUCTURE_MODULE_ERRORS)
    text = _sentence(messages[-1] if messages else raw)
    return JobFailure(text, data_error=code in DATA_ERROR_CODES)


def _envelope(raw: str) -> tuple[str | None, list[str]]:
    """(outer code, messages outer first then details) of `{"error": {...}}`; (None, []) for free text."""
    try:
        body = json.loads(raw)
    except ValueError:
        return None, []
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return None, []
    messages = [str(error["message"])] if error.get("message") else []
    for detail in error.get("details") or []:
        if isinstance(detail, dict) and detail.get("message"):
            messages.append(str(detail["message"]))
    return (str(error["code"]) if error.get("code") else None), messages


def _sentence(text: str) -> str:
    """One readable line: whitespace folded, cut at a word boundary with an ellipsis when long."""
    line = " ".join(text.split())
    if len(line) <= MAX_REASON:
        return line
    return line[:MAX_REASON].rsplit(" ", 1)[0] + " ..."
