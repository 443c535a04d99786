"""One HTTP path for every ML-service call: pooled sessions, bounded retries, error envelopes turned into typed errors.

Retry semantics (what `send` does with one call):

* Retried, within `RetryPolicy.attempts` tries and `RetryPolicy.budget` seconds:
  HTTP 408, 429, 500, 502, 503, 504, read timeouts and connection errors.
  The delay is the response's `Retry-After` (seconds or HTTP date) when given,
  else `backoff * 2**n` capped at `max_backoff`, with full jitter in [delay/2, delay].
* A `Retry-After` (or back-off) longer than what is left of the budget is not
  slept through: `TransientServiceError(retry_after=...)` is raised at once so the
  caller can re-schedule (a queue message with a visibility delay) instead of
  holding a function instance asleep.
* Non-idempotent calls (`idempotent=False`, i.e. BES job creation) are retried only
  when the service surely did not act on the request: a connection that was never
  established (refused, DNS, connect timeout), or a 429/503 (BES answers
  `RequestThrottled` / `TooManyConcurrentRequests` before doing anything).
  A 500/502/504, a read timeout or a dropped connection after sending raises
  `TransientServiceError` at once: the job may exist. (For BES that is harmless -- a
  created job that is never started never runs -- but the decision to create
  another one is the caller's, not this module's.)
* A 2xx body that should be JSON and is not (`expect_json=True`) is treated as a
  transient failure: a garbled or truncated body almost always comes from a gateway
  or a dropped connection, not from the service's own logic. Idempotent calls retry
  it; the last one raises `TransientServiceError`.

Errors (the envelope `{"error": {"code", "message", "details": [{"code", "message"}]}}`
is read when present; `code`/`detail_code`/`status` land on the exception):

* 401/403 -> `AuthenticationFailed`
* 404 and every other 4xx (400 `BadArgument`, `InvalidOperation`, 409, 413, ...) -> `PermanentServiceError`
* retryable statuses and network failures once retries are spent -> `TransientServiceError`
* any other 5xx -> `TransientServiceError` at once (not retried within the call)

Redirects (3xx) are never followed: the call fails with `PermanentServiceError`
(code `RedirectNotFollowed`), since following one would hand the `Authorization`
header, or a body of SAS tokens (307/308 resend it), to a host nobody allowed.

Secrets: request headers are never logged or put in messages; messages carry the
URL without its query string, and any `sig=` value or bearer token the service
echoes back is masked.

Counting requests (benchmarks): every response, including each retried attempt,
passes through the session's response hooks::

    session = new_session()
    session.hooks["response"].append(lambda r, *a, **kw: counter.update([r.request.method]))
"""

from __future__ import annotations

import email.utils
import json as jsonlib
import logging
import random
import re
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Mapping
from urllib.parse import urlsplit, urlunsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import NewConnectionError

from retrain.errors import AuthenticationFailed, PermanentServiceError, ServiceError, TransientServiceError

log = logging.getLogger(__name__)

USER_AGENT = f"retrain-functions/1.0 python-requests/{requests.__version__}"
RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
REFUSED_STATUSES = frozenset({429, 503})  # the service declined before acting: safe to resend even a create
MAX_MESSAGE = 2000
# Never followed: a redirect would carry the Authorization header or a body full of SAS tokens elsewhere.
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})

# Indirection so unit tests can observe delays without sleeping.
_sleep = time.sleep
_clock = time.monotonic


@dataclass(frozen=True)
class RetryPolicy:
    """How hard one call tries before handing the failure back to the caller's own schedule."""

    attempts: int = 4  # total tries within one call
    backoff: float = 0.5  # first delay (seconds); doubles each retry, jittered
    max_backoff: float = 8.0
    budget: float = 20.0  # seconds one call may spend, sleeping included

    def delay(self, retry_number: int) -> float:
        """The jittered back-off before retry `retry_number` (0 = first retry)."""
        ceiling = min(self.max_backoff, self.backoff * (2 ** retry_number))
        return random.uniform(ceiling / 2, ceiling)


def new_session(pool_size: int = 16) -> requests.Session:
    """A pooled session with our User-Agent; transport-level retries off (send() owns retrying)."""
    session = requests.Session()
    adapter = HTTPAdapter(pool_connections=pool_size, pool_maxsize=pool_size, max_retries=0)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.headers["User-Agent"] = USER_AGENT
    session.headers["Accept"] = "application/json"
    return session


def send(session: requests.Session, method: str, url: str, *, headers: Mapping[str, str],
         json: Any = None, retry: RetryPolicy, timeout: float | tuple[float, float] = (5, 30),
         idempotent: bool, expect_json: bool = False) -> requests.Response:
    """Send one logical request with retries; return the first response below 400, else raise a typed error."""
    started = _clock()
    where = f"{method} {redact_url(url)}"
    secrets = _secrets_in(headers)
    attempt = 0
    while True:
        attempt += 1
        failure: TransientServiceError
        retryable: bool
        try:
            response = session.request(method, url, headers=dict(headers), json=json, timeout=timeout,
                                       allow_redirects=False)
        except requests.RequestException as exc:
            not_sent = _surely_not_sent(exc)
            kind = "could not connect" if not_sent else ("timed out" if isinstance(exc, requests.Timeout)
                                                         else "connection failed")
            failure = TransientServiceError(f"{where}: {kind} ({type(exc).__name__})")
            retryable = idempotent or not_sent
        else:
            status = response.status_code
            if status in REDIRECT_STATUSES:
                raise redirect_refused(response, where)
            if status < 400:
                if not expect_json or _is_json(response):
                    return response
                failure = TransientServiceError(
                    f"{where} -> {status} with a body that is not JSON: {_snippet(response.text, secrets)!r}",
                    status=status)
                retryable = idempotent
            else:
                error = error_from_response(response, where, secrets)
                if not isinstance(error, TransientServiceError):
                    raise error
                failure = error
                retryable = status in RETRYABLE_STATUSES and (idempotent or status in REFUSED_STATUSES)

        remaining = retry.budget - (_clock() - started)
        if not retryable or attempt >= retry.attempts:
            raise failure
        wait = failure.retry_after if failure.retry_after is not None else retry.delay(attempt - 1)
        if wait > remaining:
            failure.retry_after = max(wait, failure.retry_after or 0.0)
            raise failure
        log.warning("attempt %d/%d failed: %s; retrying in %.2fs", attempt, retry.attempts, failure, wait)
        _sleep(wait)


def error_from_response(response: requests.Response, where: str,
                        secrets: tuple[str, ...] = ()) -> ServiceError:
    """The typed error for a >= 400 response, its envelope's code, detail code and message kept."""
    status = response.status_code
    code, detail_code, message = parse_envelope(response)
    message = trim(scrub(message or _snippet(response.text, secrets) or response.reason or "", secrets))
    codes = "/".join(c for c in (code, detail_code) if c)
    text = f"{where} -> {status}{' ' + codes if codes else ''}" + (f": {message}" if message else "")
    kw = dict(status=status, code=code, detail_code=detail_code)
    if status in (401, 403):
        return AuthenticationFailed(text, **kw)
    if status in RETRYABLE_STATUSES or status >= 500:
        return TransientServiceError(text, retry_after=retry_after_seconds(response), **kw)
    return PermanentServiceError(text, **kw)


def redirect_refused(response: requests.Response, where: str) -> PermanentServiceError:
    """A redirect is an error: credentials and SAS go only to the URL the definition names."""
    target = urlsplit(response.headers.get("Location") or "")
    to = target.netloc or "the same host"
    return PermanentServiceError(f"{where} -> {response.status_code} redirect to {to}{target.path} not followed: "
                                 "credentials are sent only to the URL the definition names",
                                 status=response.status_code, code="RedirectNotFollowed")


def parse_envelope(response: requests.Response) -> tuple[str | None, str | None, str | None]:
    """(code, first detail code, message) from `{"error": {...}}`; the detail's message is appended when it adds something."""
    try:
        body = response.json()
    except ValueError:
        return None, None, None
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return None, None, None
    code = _str_or_none(error.get("code"))
    message = _str_or_none(error.get("message"))
    detail_code = None
    details = error.get("details")
    if isinstance(details, list) and details and isinstance(details[0], dict):
        detail_code = _str_or_none(details[0].get("code"))
        detail_messages = [str(d.get("message")) for d in details
                           if isinstance(d, dict) and d.get("message") and d.get("message") != message]
        if detail_messages:
            message = " ".join(filter(None, [message, *detail_messages]))
    return code, detail_code, message


def retry_after_seconds(response: requests.Response) -> float | None:
    """`Retry-After` as seconds from now: delta-seconds or an HTTP date; None when absent or unreadable."""
    value = response.headers.get("Retry-After")
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


_SIG = re.compile(r"(?i)(sig=)[^&\s\"']+")
_BEARER = re.compile(r"(?i)(bearer\s+)[A-Za-z0-9\-._~+/=]+")
_ACCOUNT_KEY = re.compile(r"(?i)(AccountKey=)[^;\s\"']+")


def scrub(text: str, secrets: tuple[str, ...] = ()) -> str:
    """`text` with SAS signatures, bearer tokens, account keys and the given secret values masked."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    text = _SIG.sub(r"\1***", text)
    text = _BEARER.sub(r"\1***", text)
    return _ACCOUNT_KEY.sub(r"\1***", text)


def redact_url(url: str) -> str:
    """The URL without its query string (which may carry a SAS)."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


def trim(text: str, limit: int = MAX_MESSAGE) -> str:
    """`text` cut to about `limit` characters, keeping its head and its tail (where stack traces end)."""
    if len(text) <= limit:
        return text
    head = limit * 2 // 3
    tail = limit - head
    return f"{text[:head]} ...[{len(text) - limit} characters trimmed]... {text[-tail:]}"


def _secrets_in(headers: Mapping[str, str]) -> tuple[str, ...]:
    values = []
    for name, value in headers.items():
        if name.lower() in ("authorization", "x-api-key", "ocp-apim-subscription-key") and value:
            values.append(value)
            if " " in value:
                values.append(value.split(" ", 1)[1])
    return tuple(values)


def _surely_not_sent(exc: requests.RequestException) -> bool:
    """True when no byte of the request can have reached the service (no connection was made)."""
    if isinstance(exc, (requests.ConnectTimeout, requests.exceptions.ProxyError, requests.exceptions.SSLError)):
        return True
    if isinstance(exc, requests.ConnectionError):
        reason = getattr(exc.args[0], "reason", None) if exc.args else None
        return isinstance(reason, NewConnectionError)  # includes NameResolutionError
    return False


def _is_json(response: requests.Response) -> bool:
    if not response.content:
        return False
    try:
        jsonlib.loads(response.content)
    except ValueError:
        return False
    return True


def _snippet(text: str, secrets: tuple[str, ...] = (), limit: int = 200) -> str:
    return scrub(trim(" ".join((text or "").split()), limit), secrets)


def _str_or_none(value: Any) -> str | None:
    return None if value is None else str(value)
