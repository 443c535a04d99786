"""CSRF tokens for the dashboard's forms: an HMAC of a server secret over the caller and the time, never stored."""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import time
from typing import Mapping

log = logging.getLogger("retrain")
KEY_SETTING = "RETRAIN_SECRET_DASHBOARD_KEY"  # follows the app's secret-setting rule (RETRAIN_SECRET_*)
LIFETIME = 12 * 3600
FIELD = "csrf_token"
_process_key = secrets.token_bytes(32)  # used only while the setting is absent (one local process)
_warned = False


def key(env: Mapping[str, str]) -> bytes:
    """The signing key: the app setting when set (every instance agrees), else this process's random key."""
    global _warned
    configured = (env.get(KEY_SETTING) or "").strip()
    if configured:
        return hashlib.sha256(configured.encode()).digest()
    if not _warned:
        log.warning("%s is not set: dashboard form tokens are valid only in this process; set it when the app "
                    "runs on more than one instance", KEY_SETTING)
        _warned = True
    return _process_key


def subject(headers: Mapping[str, str]) -> str:
    """Whom a token belongs to: the signed-in principal App Service Authentication set, or the key holder."""
    principal = next((v for k, v in headers.items() if k.lower() == "x-ms-client-principal"), "")
    return hashlib.sha256(principal.encode()).hexdigest()[:32] if principal else "function-key"


def _sign(signing_key: bytes, who: str, issued: int) -> str:
    return hmac.new(signing_key, f"{who}|{issued}".encode(), hashlib.sha256).hexdigest()


def issue(env: Mapping[str, str], headers: Mapping[str, str], *, now: float | None = None) -> str:
    issued = int(now if now is not None else time.time())
    return f"{issued}.{_sign(key(env), subject(headers), issued)}"


def valid(token: str | None, env: Mapping[str, str], headers: Mapping[str, str], *, now: float | None = None) -> bool:
    """True for a token this app issued to this caller within the last LIFETIME seconds."""
    if not token or len(token) > 200 or "." not in token:
        return False
    issued_text, signature = token.split(".", 1)
    if not issued_text.isdigit():
        return False
    age = (now if now is not None else time.time()) - int(issued_text)
    if not -300 <= age <= LIFETIME:
        return False
    return hmac.compare_digest(signature, _sign(key(env), subject(headers), int(issued_text)))
