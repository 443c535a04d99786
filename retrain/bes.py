"""Client for the Batch Execution Service (api-version 2.0): create, start, watch and cancel one training job."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import requests

from retrain.errors import (InvalidModelDefinition, JobNotFound, PermanentServiceError, TransientServiceError)
from retrain.http import RetryPolicy, new_session, redact_url, scrub, send, trim
from retrain.locations import BlobLocation

API_VERSION = "2.0"
MAX_DETAILS = 4000  # characters of a failed job's Details kept (head and tail)


class JobState(str, Enum):
    """A BES job's StatusCode; the service sends it as a name or as its number 0..4."""

    NOT_STARTED = "NotStarted"
    RUNNING = "Running"
    FAILED = "Failed"
    CANCELLED = "Cancelled"
    FINISHED = "Finished"

    @property
    def terminal(self) -> bool:
        """True when the job will not change state any more."""
        return self in (JobState.FAILED, JobState.CANCELLED, JobState.FINISHED)

    @classmethod
    def parse(cls, value: Any) -> "JobState":
        """Name (any case, also `Canceled`), number 0..4 or numeric string; ValueError otherwise."""
        if isinstance(value, bool):
            raise ValueError(f"not a job state: {value!r}")
        if isinstance(value, int) or (isinstance(value, str) and value.strip().isdigit()):
            number = int(value)
            if 0 <= number < len(_BY_NUMBER):
                return _BY_NUMBER[number]
            raise ValueError(f"not a job state number: {value!r}")
        if isinstance(value, str):
            state = _BY_NAME.get(value.strip().lower())
            if state is not None:
                return state
        raise ValueError(f"not a job state: {value!r}")


_BY_NUMBER = (JobState.NOT_STARTED, JobState.RUNNING, JobState.FAILED, JobState.CANCELLED, JobState.FINISHED)
_BY_NAME = {s.value.lower(): s for s in JobState} | {"canceled": JobState.CANCELLED}


@dataclass(frozen=True)
class JobStatus:
    """What BES says about a job; `results` (read-only SAS refs) only once Finished, `details` on failure."""

    state: JobState
    results: dict[str, BlobLocation] | None = None
    details: str | None = None

    @classmethod
    def from_wire(cls, body: Any) -> "JobStatus":
        """Parse the status object; ValueError when it is not one."""
        if not isinstance(body, dict) or "StatusCode" not in body:
            raise ValueError("status body has no StatusCode")
        state = JobState.parse(body["StatusCode"])
        results = None
        raw = body.get("Results")
        if isinstance(raw, dict):
            results = {name: _result_location(ref) for name, ref in raw.items() if isinstance(ref, dict)}
        details = body.get("Details")
        if details is not None and not isinstance(details, str):
            details = str(details)
        if details is not None:
            details = trim(scrub(details), MAX_DETAILS)
        return cls(state, results, details or None)


@dataclass(frozen=True)
class BatchJobRequest:
    """A job's inputs, output overrides and global parameters, as named by the training web service."""

    inputs: dict[str, BlobLocation] = field(default_factory=dict)
    outputs: dict[str, BlobLocation] = field(default_factory=dict)
    global_parameters: dict[str, str] = field(default_factory=dict)

    def to_wire(self) -> dict:
        """The submit body; empty parts are left out (a service without web inputs rejects `Inputs`)."""
        body: dict[str, Any] = {}
        if self.inputs:
            body["Inputs"] = {name: loc.to_wire() for name, loc in self.inputs.items()}
        if self.outputs:
            body["Outputs"] = {name: loc.to_wire() for name, loc in self.outputs.items()}
        if self.global_parameters:
            body["GlobalParameters"] = {name: str(value) for name, value in self.global_parameters.items()}
        return body


class BesClient:
    """One training web service's BES endpoint; every call is safe to repeat after a crash."""

    def __init__(self, service_url: str, api_key: str, *, session: requests.Session | None = None,
                 retry: RetryPolicy = RetryPolicy()):
        self.base = normalise_service_url(service_url)
        self._headers = {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"}
        self._session = session or new_session()
        self._retry = retry

    def __repr__(self) -> str:
        return f"BesClient({self.base!r})"

    def submit(self, request: BatchJobRequest) -> str:
        """Create the job (not yet running) and return its id; not retried past a possibly-received request."""
        response = self._send("POST", "/jobs", json=request.to_wire(), idempotent=False, expect_json=True)
        job_id = response.json()
        if not isinstance(job_id, str) or not job_id.strip():
            raise TransientServiceError(f"POST {self.base}/jobs -> {response.status_code} returned "
                                        f"{type(job_id).__name__}, not a job id string", status=response.status_code)
        return job_id.strip()

    def start(self, job_id: str) -> None:
        """Start the job; a job already past NotStarted (re-delivered message) counts as started."""
        try:
            self._send("POST", f"/jobs/{_segment(job_id)}/start", idempotent=True, not_found=job_id)
        except PermanentServiceError as exc:
            if exc.status != 400 or not (exc.detail_code == "CannotStartJob" or exc.code == "InvalidOperation"):
                raise
            if self.status(job_id).state is JobState.NOT_STARTED:
                raise
            # Running, Finished, Failed or Cancelled: it was started before; the next status poll tells the rest.

    def status(self, job_id: str) -> JobStatus:
        """The job's state, result locations (with fresh read SAS) and failure details."""
        response = self._send("GET", f"/jobs/{_segment(job_id)}", idempotent=True, expect_json=True,
                              not_found=job_id)
        try:
            return JobStatus.from_wire(response.json())
        except ValueError as exc:
            raise TransientServiceError(f"GET {self.base}/jobs/{job_id} -> {response.status_code}: "
                                        f"unreadable status object ({exc})", status=response.status_code) from None

    def cancel(self, job_id: str) -> None:
        """Stop the job; an unknown or already-ended job is left as it is (nothing to cancel)."""
        try:
            self._send("DELETE", f"/jobs/{_segment(job_id)}", idempotent=True)
        except PermanentServiceError as exc:
            if exc.status in (404, 409) or (exc.status == 400 and exc.code == "InvalidOperation"):
                return
            raise

    def _send(self, method: str, path: str, *, json: Any = None, idempotent: bool,
              expect_json: bool = False, not_found: str | None = None) -> requests.Response:
        url = f"{self.base}{path}?api-version={API_VERSION}"
        try:
            return send(self._session, method, url, headers=self._headers, json=json, retry=self._retry,
                        idempotent=idempotent, expect_json=expect_json)
        except PermanentServiceError as exc:
            if not_found is not None and exc.status == 404 and type(exc) is PermanentServiceError:
                raise JobNotFound(str(exc), status=404, code=exc.code, detail_code=exc.detail_code) from None
            raise


def normalise_service_url(url: str) -> str:
    """`.../workspaces/{ws}/services/{svc}` from a URL that may end in /jobs, /execute or carry a query."""
    parts = urlsplit((url or "").strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InvalidModelDefinition([f"training service URL {redact_url(url or '')!r} must be an "
                                      f"http(s) URL like https://<region>.services.azureml.net/"
                                      f"workspaces/<ws>/services/<svc>"])
    path = parts.path.rstrip("/")
    for suffix in ("/jobs", "/execute"):
        if path.lower().endswith(suffix):
            path = path[: -len(suffix)]
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def _segment(job_id: str) -> str:
    if not job_id or not str(job_id).strip():
        raise PermanentServiceError("empty BES job id", code="BadArgument", detail_code="MissingJobId")
    return quote(str(job_id).strip(), safe="")


def _result_location(ref: dict) -> BlobLocation:
    """A Results entry as a BlobLocation; a connection-string form yields its blob endpoint (the key is dropped)."""
    base = ref.get("BaseLocation")
    if not base and ref.get("ConnectionString"):
        base = _blob_endpoint(ref["ConnectionString"])
    return BlobLocation(base or "", ref.get("RelativeLocation") or "", ref.get("SasBlobToken") or "")


def _blob_endpoint(connection_string: str) -> str:
    fields = dict(part.split("=", 1) for part in connection_string.split(";") if "=" in part)
    if fields.get("BlobEndpoint"):
        return fields["BlobEndpoint"].rstrip("/") + "/"
    protocol = fields.get("DefaultEndpointsProtocol", "https")
    account = fields.get("AccountName", "")
    suffix = fields.get("EndpointSuffix", "core.windows.net")
    return f"{protocol}://{account}.blob.{suffix}/" if account else ""
