"""One Azure ML workspace over ARM REST (and its MLflow tracking server): the only client both training and serving use.

Every call checks the outbound rule first (kind `azureml`), carries a bearer token from the app's
credential for the ARM host's scope, goes through `retrain.http.send` (bounded retries, typed
errors, no redirects) and names the api-version. A `409` because the entity is busy (`... in Updating
provisioning state`, "another operation ... running") is retried with back-off within a budget, then
handed back as `TransientServiceError` so the step re-queues itself. Long-running operations
(`Azure-AsyncOperation`, else `Location`) are waited for with `Retry-After` honoured and a bound.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any, Callable
from urllib.parse import urlencode, urljoin, urlsplit

import requests
from azure.core.credentials import TokenCredential

from retrain.errors import PermanentServiceError, ProvisioningFailed, ServiceError, TransientServiceError
from retrain.http import RetryPolicy, new_session, redact_url, retry_after_seconds, send
from retrain.identity import arm_scope
from retrain.outbound import OutboundRules

from .workspace import WorkspaceId

API_VERSION = "2024-10-01"
KIND = "azureml"  # the outbound rule's kind (registered in retrain.azureml)
TOKEN_REFRESH_MARGIN = 300  # seconds before expiry a token is renewed
CONFLICT_RETRY = RetryPolicy(attempts=6, backoff=1.0, max_backoff=8.0, budget=30.0)
_BUSY = re.compile(r"(?i)(creating|updating|deleting|scaling)\b.{0,40}\bstate|another operation")
_DONE = {"succeeded": "Succeeded", "failed": "Failed", "canceled": "Canceled", "cancelled": "Canceled"}

_sleep = time.sleep  # indirection so tests can observe waits
_clock = time.monotonic


@dataclass(frozen=True)
class Operation:
    """A long-running operation: where its status is polled and which resource to read once it ends; storable."""

    resource: str = ""  # the resource's URL, read back when the operation succeeded ("" for a delete)
    status_url: str = ""  # Azure-AsyncOperation: {"status": InProgress|Succeeded|Failed|Canceled}
    location: str = ""  # Location: 202 while running, then 200 (or an error)
    retry_after: float | None = None

    def to_record(self) -> dict:
        return {"resource": self.resource, "status_url": self.status_url, "location": self.location}

    @classmethod
    def from_record(cls, obj: dict) -> "Operation":
        return cls(obj.get("resource") or "", obj.get("status_url") or "", obj.get("location") or "")


@dataclass(frozen=True)
class Written:
    """A PUT/POST/DELETE's answer: the body (may be empty) and the operation to wait for, if any."""

    status: int
    body: dict
    operation: Operation | None


class ArmClient:
    """A workspace's ARM sub-resources (`jobs/x`, `models/m/versions/1`, `onlineEndpoints/e/deployments/d`, ...)."""

    def __init__(self, workspace: WorkspaceId, credential: TokenCredential, *, base_url: str,
                 rules: Callable[[], OutboundRules], session: requests.Session | None = None,
                 retry: RetryPolicy = RetryPolicy(), conflict_retry: RetryPolicy = CONFLICT_RETRY,
                 api_version: str = API_VERSION, poll_interval: float = 2.0, timeout: float = 300.0):
        self.workspace = workspace
        self.base_url = base_url.rstrip("/")
        self.api_version = api_version
        self.timeout = timeout
        self.poll_interval = poll_interval
        self._credential = credential
        self._rules = rules
        self._session = session or new_session()
        self._retry = retry
        self._conflict_retry = conflict_retry
        self._token: str | None = None
        self._token_expires = 0.0
        self._workspace_body: dict | None = None

    def __repr__(self) -> str:
        return f"ArmClient({self.base_url}{self.workspace.path!r})"

    # --- resources ---------------------------------------------------------------------------

    def url(self, path: str = "") -> str:
        """The URL of a workspace sub-resource path (`""` is the workspace itself), without api-version."""
        path = path.strip("/")
        return f"{self.base_url}{self.workspace.path}" + (f"/{path}" if path else "")

    def get(self, path: str, *, missing_ok: bool = False) -> dict | None:
        """The resource's JSON; None for a 404 when `missing_ok` (read-before-write), else PermanentServiceError."""
        try:
            response = self._call("GET", self.url(path), expect_json=True)
        except PermanentServiceError as e:
            if missing_ok and e.status == 404 and type(e) is PermanentServiceError:
                return None
            raise
        return _object(response)

    def put(self, path: str, body: dict) -> Written:
        """Create or replace the resource (ARM PUT is idempotent); busy-409s retried with back-off."""
        return self._write("PUT", self.url(path), body)

    def post(self, path: str, body: dict | None = None) -> Written:
        """An action (`jobs/x/cancel`, `onlineEndpoints/e/listKeys`); the answer's body and operation."""
        return self._write("POST", self.url(path), body)

    def delete(self, path: str) -> Operation | None:
        """Delete the resource; None when it is gone already or was deleted at once, else the operation to wait for."""
        try:
            written = self._write("DELETE", self.url(path), None)
        except PermanentServiceError as e:
            if e.status == 404 and type(e) is PermanentServiceError:
                return None
            raise
        return written.operation

    def list(self, path: str, *, limit: int = 1000) -> list[dict]:
        """Every item of a collection (`jobs`, `onlineEndpoints/e/deployments`), following nextLink on this host."""
        items: list[dict] = []
        url = self.url(path)
        while url and len(items) < limit:
            body = _object(self._call("GET", url, expect_json=True))
            items.extend(v for v in body.get("value") or [] if isinstance(v, dict))
            link = body.get("nextLink")
            url = urljoin(self.base_url + "/", link) if isinstance(link, str) and link else ""
            if url and urlsplit(url).netloc != urlsplit(self.base_url).netloc:
                url = ""  # a link elsewhere would receive our token
        return items[:limit]

    # --- long-running operations ---------------------------------------------------------------

    def poll(self, operation: Operation) -> tuple[str, dict, float | None]:
        """One look at the operation: (InProgress|Succeeded|Failed|Canceled, its body, its Retry-After)."""
        if operation.status_url:
            response = self._call("GET", operation.status_url, expect_json=True)
            body = _object(response)
            status = _DONE.get(str(body.get("status") or "").casefold(), "InProgress")
            return status, body, retry_after_seconds(response)
        if operation.location:
            response = self._call("GET", operation.location)
            status = "InProgress" if response.status_code == 202 else "Succeeded"
            return status, _maybe_object(response), retry_after_seconds(response)
        return "Succeeded", {}, None

    def wait(self, operation: Operation | None, *, timeout: float | None = None) -> dict | None:
        """Wait for the operation (bounded); the resource as read afterwards (None when there is none).

        Failed or Canceled raises ProvisioningFailed with the service's reason; still running at the
        bound raises TransientServiceError (the caller's step comes back later and waits again).
        """
        if operation is None:
            return None
        bound = self.timeout if timeout is None else timeout
        deadline = _clock() + bound
        what = redact_url(operation.resource or operation.status_url or operation.location)
        if operation.retry_after:
            _sleep(min(operation.retry_after, bound, self.poll_interval))
        while True:
            status, body, after = self.poll(operation)
            if status == "Succeeded":
                return _object(self._call("GET", operation.resource, expect_json=True)) if operation.resource else None
            if status in ("Failed", "Canceled"):
                error = body.get("error") if isinstance(body.get("error"), dict) else {}
                raise ProvisioningFailed(f"Azure ML operation on {what} {status.lower()}: "
                                         f"{error.get('message') or 'no reason given'}",
                                         code=str(error.get("code") or status))
            remaining = deadline - _clock()
            if remaining <= 0:
                raise TransientServiceError(f"Azure ML operation on {what} still in progress after {bound:.0f}s",
                                            retry_after=self.poll_interval, code="OperationInProgress")
            _sleep(min(remaining, after if after is not None else self.poll_interval))

    # --- the workspace and its MLflow tracking server -------------------------------------------

    def workspace_body(self) -> dict:
        """The workspace resource (read once per client: its location and tracking URI do not change)."""
        if self._workspace_body is None:
            self._workspace_body = self.get("") or {}
        return self._workspace_body

    def tracking_uri(self) -> str:
        """`properties.mlFlowTrackingUri` as an https URL (`azureml://host/...` -> `https://host/...`)."""
        uri = str((self.workspace_body().get("properties") or {}).get("mlFlowTrackingUri") or "")
        if uri.startswith("azureml://"):
            uri = "https://" + uri[len("azureml://"):]
        if not uri:
            raise PermanentServiceError(f"workspace {self.workspace.name} reports no mlFlowTrackingUri",
                                        code="NoTrackingUri")
        return uri.rstrip("/")

    def mlflow(self, route: str, params: dict[str, str]) -> dict:
        """GET an MLflow REST route (`runs/get`) with the same bearer token; its JSON object."""
        url = f"{self.tracking_uri()}/api/2.0/mlflow/{route.strip('/')}?{urlencode(params)}"
        return _object(self._call("GET", url, expect_json=True, versioned=False))

    # --- plumbing ----------------------------------------------------------------------------

    def _write(self, method: str, url: str, body: dict | None) -> Written:
        started = _clock()
        attempt = 0
        while True:
            try:
                response = self._call(method, url, json=body)
            except PermanentServiceError as e:
                if e.status != 409 or not _BUSY.search(str(e)):
                    raise
                attempt += 1
                wait = self._conflict_retry.delay(attempt - 1)
                if attempt >= self._conflict_retry.attempts or _clock() - started + wait > self._conflict_retry.budget:
                    raise TransientServiceError(f"{e} (still busy after {attempt} tries)", status=409, code=e.code,
                                                detail_code=e.detail_code, retry_after=self.poll_interval) from None
                _sleep(wait)
                continue
            return Written(response.status_code, _maybe_object(response), self._operation(response, url, method))

    def _operation(self, response: requests.Response, url: str, method: str) -> Operation | None:
        """The operation a write answered with (only URLs on this host: they receive our token)."""
        status_url = self._same_host(response.headers.get("Azure-AsyncOperation"), url)
        location = self._same_host(response.headers.get("Location"), url)
        if not status_url and not (location and response.status_code == 202):
            return None
        resource = url if method == "PUT" else ""
        return Operation(resource, status_url, "" if status_url else location, retry_after_seconds(response))

    def _same_host(self, value: str | None, url: str) -> str:
        if not value:
            return ""
        absolute = urljoin(url, value)
        return absolute if urlsplit(absolute).netloc == urlsplit(self.base_url).netloc else ""

    def _call(self, method: str, url: str, *, json: Any = None, expect_json: bool = False,
              versioned: bool = True) -> requests.Response:
        self._rules().require(url, KIND, f"Azure ML workspace {self.workspace.name}")
        if versioned and "api-version=" not in url:
            url += ("&" if "?" in url else "?") + f"api-version={self.api_version}"
        headers = {"Authorization": f"Bearer {self._bearer()}"}
        if json is not None:
            headers["Content-Type"] = "application/json"
        try:
            return send(self._session, method, url, headers=headers, json=json, retry=self._retry,
                        idempotent=True, expect_json=expect_json)
        except ServiceError as e:
            e.args = (f"Azure ML: {e}",)
            raise

    def _bearer(self) -> str:
        if self._token is None or time.time() > self._token_expires - TOKEN_REFRESH_MARGIN:
            token = self._credential.get_token(arm_scope(self.base_url))
            self._token, self._token_expires = token.token, float(token.expires_on)
        return self._token


def _object(response: requests.Response) -> dict:
    body = _maybe_object(response)
    if not body and response.content:
        raise TransientServiceError(f"{response.request.method} {redact_url(response.url)} -> "
                                    f"{response.status_code}: not a JSON object", status=response.status_code)
    return body


def _maybe_object(response: requests.Response) -> dict:
    try:
        body = response.json() if response.content else {}
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
