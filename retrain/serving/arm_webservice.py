"""The `arm` kind: a new (ARM) Studio web service, `Microsoft.MachineLearning/webServices` (PUT its definition)."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

import requests
from azure.core.credentials import TokenCredential

from retrain.errors import PermanentServiceError, ProvisioningFailed, TransientServiceError, VerificationFailed
from retrain.http import RetryPolicy, new_session, redact_url, retry_after_seconds, scrub, send, trim
from retrain.identity import arm_scope
from retrain.locations import BlobLocation
from retrain.write_once import write_once

from .base import EndpointKind
from .studio import FIELDS, EndpointSpec, UpdateOutcome, WholeUpdate, parse

ARM_API_VERSION = "2017-01-01"
TOKEN_REFRESH_MARGIN = 300  # seconds before expiry at which a cached ARM token is renewed
_SETTLED = ("succeeded", "failed", "canceled", "cancelled")


class ArmWebService(WholeUpdate):
    """A new (ARM) web service: GET the definition, swap the Resource asset's uri, PUT it back, wait for Succeeded."""

    def __init__(self, spec: EndpointSpec, credential: TokenCredential, *, session: requests.Session | None = None,
                 retry: RetryPolicy = RetryPolicy(), poll_interval: float = 2.0, timeout: float = 300.0):
        self.spec = spec
        self.url = _with_api_version(spec.url, ARM_API_VERSION)
        self._credential = credential
        self._session = session or new_session()
        self._retry = retry
        self._poll_interval = poll_interval
        self._timeout = timeout
        self._token: str | None = None
        self._token_expires = 0.0

    def __repr__(self) -> str:
        return f"ArmWebService({redact_url(self.spec.url)!r})"

    def current_model(self) -> str | None:
        """The Resource asset's `locationInfo.uri` (query stripped)."""
        return _asset_uri(self._asset(self._get()))

    def update(self, model: BlobLocation) -> UpdateOutcome:
        """Idempotent swap; ProvisioningFailed if ARM reports Failed, VerificationFailed if the read-back differs."""
        definition = self._get()
        if not _settled(definition):  # an earlier PUT (a re-delivered promote) is still provisioning
            self._await(None)
            definition = self._get()
        asset = self._asset(definition)
        if _asset_uri(asset) == model.uri and _state(definition) != "failed":
            return UpdateOutcome(self.spec.label, False, model.uri)
        location = asset.setdefault("locationInfo", {})
        location["uri"] = model.uri
        if model.sas_token:
            location["credentials"] = model.sas_token
        else:
            location.pop("credentials", None)
        try:
            response = write_once(lambda retry: self._send("PUT", self.url, json=definition, expect_json=False,
                                                           retry=retry, idempotent=False),
                                  lambda: self._took(model), retry=self._retry, what=f"PUT {redact_url(self.url)}")
        except PermanentServiceError as exc:
            if exc.status != 409:  # 409: another operation is in progress (a concurrent writer); try later
                raise
            raise TransientServiceError(str(exc), status=409, code=exc.code, detail_code=exc.detail_code,
                                        retry_after=self._poll_interval) from None
        self._await(response)
        after = self._get()
        served = _asset_uri(self._asset(after))
        if served != model.uri or _state(after) not in ("succeeded", None):
            raise VerificationFailed(f"web service {self.spec.label} reports {served!r} "
                                     f"(provisioningState {_state(after)}) instead of {model.uri!r}")
        return UpdateOutcome(self.spec.label, True, served)

    # --- provisioning ----------------------------------------------------------------------

    def _await(self, put_response: requests.Response | None) -> None:
        """Follow Azure-AsyncOperation (same host only: it gets our token) or the definition's provisioningState."""
        deadline = time.monotonic() + self._timeout
        operation = None
        body: Any = None
        if put_response is not None:
            operation = put_response.headers.get("Azure-AsyncOperation")
            if operation:
                operation = urljoin(self.url, operation)
                if urlsplit(operation).netloc != urlsplit(self.url).netloc:
                    operation = None
            body = _json_or_none(put_response)
            if not operation and isinstance(body, dict) and _state(body) == "succeeded":
                return
        while True:
            if operation:
                response = self._send("GET", operation, expect_json=True)
                body = response.json()
                status = str((body or {}).get("status") or "").casefold() if isinstance(body, dict) else ""
                wait = retry_after_seconds(response)
            else:
                body = self._get()
                status = _state(body) or "succeeded"
                wait = None
            if status == "succeeded":
                return
            if status in _SETTLED:
                raise ProvisioningFailed(f"web service {self.spec.label} provisioning {status}: "
                                         f"{_failure_message(body)}", code=_failure_code(body))
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TransientServiceError(f"web service {self.spec.label} still provisioning "
                                            f"({status or 'unknown'}) after {self._timeout:.0f}s",
                                            retry_after=self._poll_interval)
            time.sleep(min(remaining, wait if wait is not None else self._poll_interval))

    # --- plumbing --------------------------------------------------------------------------

    def _get(self) -> dict:
        response = self._send("GET", self.url, expect_json=True)
        body = response.json()
        if not isinstance(body, dict) or not isinstance(body.get("properties"), dict):
            raise TransientServiceError(f"GET {redact_url(self.url)} returned no web service definition",
                                        status=response.status_code)
        return body

    def _asset(self, definition: dict) -> dict:
        assets = definition["properties"].get("assets") or {}
        wanted = self.spec.resource_name.strip().casefold()
        names = []
        for asset in assets.values() if isinstance(assets, dict) else []:
            if isinstance(asset, dict) and str(asset.get("type", "")).casefold() == "resource":
                names.append(str(asset.get("name")))
                if str(asset.get("name", "")).strip().casefold() == wanted:
                    return asset
        raise PermanentServiceError(
            f"web service {self.spec.label} has no Resource asset named {self.spec.resource_name!r}; "
            f"Resource assets present: {', '.join(repr(n) for n in names) or 'none'}",
            code="ResourceNotFound")

    def _took(self, model: BlobLocation) -> bool:
        """After a lost PUT answer: did that PUT take (wait out its provisioning first)?"""
        definition = self._get()
        if not _settled(definition):
            self._await(None)
            definition = self._get()
        return _asset_uri(self._asset(definition)) == model.uri and _state(definition) != "failed"

    def _send(self, method: str, url: str, *, json: Any = None, expect_json: bool,
              retry: RetryPolicy | None = None, idempotent: bool = True) -> requests.Response:
        headers = {"Authorization": f"Bearer {self._bearer()}", "Content-Type": "application/json"}
        return send(self._session, method, url, headers=headers, json=json, retry=retry or self._retry,
                    idempotent=idempotent, expect_json=expect_json)

    def _bearer(self) -> str:
        if self._token is None or time.time() > self._token_expires - TOKEN_REFRESH_MARGIN:
            token = self._credential.get_token(arm_scope(self.url))
            self._token, self._token_expires = token.token, float(token.expires_on)
        return self._token


def _asset_uri(asset: dict) -> str | None:
    uri = (asset.get("locationInfo") or {}).get("uri")
    return redact_url(uri) if uri else None


def _state(definition: Any) -> str | None:
    if not isinstance(definition, dict):
        return None
    state = (definition.get("properties") or {}).get("provisioningState")
    return str(state).casefold() if state else None


def _settled(definition: dict) -> bool:
    state = _state(definition)
    return state is None or state in _SETTLED


def _failure_message(body: Any) -> str:
    if isinstance(body, dict):
        error = body.get("error") or (body.get("properties") or {}).get("error")
        if isinstance(error, dict) and error.get("message"):
            return trim(scrub(str(error["message"])))
    return "the service gave no reason"


def _failure_code(body: Any) -> str | None:
    if isinstance(body, dict):
        error = body.get("error") or (body.get("properties") or {}).get("error")
        if isinstance(error, dict) and error.get("code"):
            return str(error["code"])
    return None


def _json_or_none(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _with_api_version(url: str, version: str) -> str:
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    if not any(k.lower() == "api-version" for k, _ in query):
        query.append(("api-version", version))
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), parts.fragment))


def _target(spec: EndpointSpec, deps) -> ArmWebService:
    return ArmWebService(spec, deps.credential(), session=deps.session, retry=deps.retry, timeout=deps.arm_timeout)


KIND = EndpointKind("arm", FIELDS, lambda item, where, problems: parse("arm", item, where, problems),
                    _target, service_kind="arm")
