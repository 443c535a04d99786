"""The few ARM calls the Azure ML serving targets make, one request each (no waiting: the rollout waits).

A 409 ("... is in Updating state", "Conflict of operation") is `Busy` with the service's Retry-After,
so the caller answers "call again in N seconds" instead of failing; a 404 on a GET is None.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from retrain.errors import PermanentServiceError, TransientServiceError
from retrain.http import RetryPolicy, send
from retrain.identity import arm_scope

API_VERSION = "2024-10-01"
TOKEN_MARGIN = 300


class Busy(Exception):
    """The endpoint or deployment is being changed by another operation; try again after `retry_after` s."""

    def __init__(self, message: str, retry_after: float | None):
        self.retry_after = retry_after
        super().__init__(message)


class ArmRest:
    def __init__(self, credential, session, retry: RetryPolicy, api_version: str = API_VERSION):
        self._credential = credential
        self._session = session
        self._retry = retry
        self._api_version = api_version
        self._token: str | None = None
        self._expires = 0.0

    def get(self, url: str) -> dict | None:
        try:
            return self._send("GET", url).json()
        except PermanentServiceError as e:
            if e.status == 404:
                return None
            raise

    def put(self, url: str, body: dict) -> str | None:
        """Sent once (the caller reads back before sending again); the Azure-AsyncOperation URL to follow, if any."""
        return self._send("PUT", url, json=body, idempotent=False).headers.get("Azure-AsyncOperation")

    def post(self, url: str) -> dict:
        return self._send("POST", url, json={}, idempotent=True).json()

    def delete(self, url: str) -> None:
        try:
            self._send("DELETE", url, idempotent=True, expect_json=False)
        except PermanentServiceError as e:
            if e.status != 404:
                raise

    def _send(self, method: str, url: str, *, json: Any = None, idempotent: bool = True, expect_json: bool = True):
        headers = {"Authorization": f"Bearer {self._bearer(url)}", "Content-Type": "application/json"}
        try:
            return send(self._session, method, with_api_version(url, self._api_version), headers=headers, json=json,
                        retry=self._retry, idempotent=idempotent, expect_json=expect_json)
        except PermanentServiceError as e:
            if e.status == 409:
                raise Busy(str(e), 5.0) from None
            raise
        except TransientServiceError as e:
            if e.status == 409:
                raise Busy(str(e), e.retry_after) from None
            raise

    def _bearer(self, url: str) -> str:
        if self._token is None or time.time() > self._expires - TOKEN_MARGIN:
            token = self._credential.get_token(arm_scope(url))
            self._token, self._expires = token.token, float(token.expires_on)
        return self._token


def with_api_version(url: str, version: str) -> str:
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    if not any(k.lower() == "api-version" for k, _ in query):
        query.append(("api-version", version))
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), parts.fragment))

