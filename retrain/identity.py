"""The Azure AD credential for ARM calls: azure-identity in Azure, a static token for a local ARM stand-in."""

from __future__ import annotations

import os
import threading
import time
from urllib.parse import urlsplit

from azure.core.credentials import AccessToken, TokenCredential
from azure.identity import DefaultAzureCredential

ARM_SCOPE = "https://management.azure.com/.default"
STATIC_TOKEN_SETTING = "ARM_ACCESS_TOKEN"  # local/dev only: a fixed bearer token the emulator's ARM accepts

_lock = threading.Lock()
_credential: TokenCredential | None = None


def arm_scope(url: str) -> str:
    """The token scope of the ARM host `url` is on: a token is only ever good for the host it is sent to."""
    return f"https://{urlsplit(url).netloc}/.default"


class StaticTokenCredential:
    """A TokenCredential that always hands out one configured token (local ARM emulator only; never in Azure)."""

    def __init__(self, token: str, lifetime: int = 3600):
        self._token = token
        self._lifetime = lifetime

    def get_token(self, *scopes: str, **kwargs) -> AccessToken:
        return AccessToken(self._token, int(time.time()) + self._lifetime)

    def __repr__(self) -> str:
        return "StaticTokenCredential(token=***)"


def arm_credential() -> TokenCredential:
    """The process-wide ARM credential, made on first use.

    `ARM_ACCESS_TOKEN` set -> StaticTokenCredential (local/dev only: the emulator checks
    a configured static token, the only check a local ARM can make). Otherwise
    `DefaultAzureCredential()`, which tries environment (service principal), workload
    identity, then managed identity -- a user-assigned identity via `AZURE_CLIENT_ID`
    -- so one code path serves both system- and user-assigned identities.
    """
    global _credential
    with _lock:
        if _credential is None:
            static = os.environ.get(STATIC_TOKEN_SETTING)
            if static:
                _credential = StaticTokenCredential(static)
            else:
                _credential = DefaultAzureCredential()
        return _credential


def reset_arm_credential() -> None:
    """Forget the process-wide credential (tests; settings reloaded)."""
    global _credential
    with _lock:
        _credential = None
