"""Which app settings may be read as secrets: by name, by rule, never the app's own credentials.

The rule: a definition's `key_setting` must be named `RETRAIN_SECRET_<NAME>`, or be listed in the
app setting `RETRAIN_SECRET_SETTINGS` (comma-separated, for names that already exist in a vault).
Storage connections, `AzureWebJobs*`, identity settings (`AZURE_*`, `IDENTITY_*`, `MSI_*`), the
platform's own settings (`WEBSITE_*`, `FUNCTIONS_*`, ...) and connection sub-settings (`__`) are
never secrets, even when listed. The rule is checked at registration and before every read, and
a refusal never says whether a setting exists.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable, Mapping

from .errors import SecretNotAllowed

SECRET_PREFIX = "RETRAIN_SECRET_"
SECRET_LIST_SETTING = "RETRAIN_SECRET_SETTINGS"
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
_NEVER = re.compile(
    r"(?i)^(?:AzureWebJobs.*|RETRAIN_STORAGE.*|AZURE_.*|IDENTITY_.*|MSI_.*|WEBSITE_.*|FUNCTIONS_.*|APPSETTING_.*"
    r"|APPLICATIONINSIGHTS_.*|APPINSIGHTS_.*|SCM_.*|CONTAINER_.*|ARM_ACCESS_TOKEN|.*__.*)$")


@dataclass(frozen=True)
class SecretRule:
    """The secret-setting rule for one set of app settings."""

    listed: frozenset[str]

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "SecretRule":
        raw = env.get(SECRET_LIST_SETTING) or ""
        return cls(frozenset(n for n in (p.strip() for p in re.split(r"[,;\s]+", raw)) if n))

    def problem(self, name: str, where: str) -> str | None:
        """Why `name` may not be read as a secret (never whether it exists), None if it may."""
        if not isinstance(name, str) or not _NAME.match(name):
            return f"{where}: the NAME of an app setting (letters, digits, underscores)"
        if _NEVER.match(name) or name == SECRET_LIST_SETTING:
            return (f"{where}: {name!r} is one of the app's own settings (storage, host, identity or platform), "
                    f"which are never handed to a service; put the key in a setting named {SECRET_PREFIX}<NAME>")
        if not (name.startswith(SECRET_PREFIX) and len(name) > len(SECRET_PREFIX)) and name not in self.listed:
            return (f"{where}: {name!r} does not follow the secret-setting rule: name it {SECRET_PREFIX}<NAME>, "
                    f"or list it in the app setting {SECRET_LIST_SETTING}")
        return None

    def require(self, name: str, where: str) -> None:
        problem = self.problem(name, where)
        if problem:
            raise SecretNotAllowed(problem)

    def problems(self, names: Iterable[tuple[str, str]]) -> list[str]:
        """Every problem of (where, setting name) pairs, for a definition's 400."""
        return [p for where, name in names if (p := self.problem(name, where))]
