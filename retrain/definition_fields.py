"""Field checks a definition's sections share (every problem appended to a list, never raised one by one)."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlparse

from .outbound import credential_problem

SETTING_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
PORT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _-]{0,63}$")
SECRET_KEYS = {"key", "api_key", "apikey", "primary_key", "token", "password", "secret", "sas",
               "connection_string", "account_key"}


def unknown(obj: dict, allowed: set[str], path: str, problems: list[str]) -> None:
    for key in obj:
        if key not in allowed and str(key).lower() not in SECRET_KEYS:
            problems.append(f"{path}{key}: unknown field (allowed: {', '.join(sorted(allowed))})")


def http_url(value: Any, where: str, problems: list[str]) -> str:
    parsed = urlparse(value) if isinstance(value, str) else None
    if not parsed or parsed.scheme not in ("http", "https") or not parsed.netloc:
        problems.append(f"{where}: an http(s) URL")
        return ""
    problem = credential_problem(value, where)
    if problem:
        problems.append(problem)
        return ""
    return value


def setting(value: Any, where: str, problems: list[str]) -> str:
    if not isinstance(value, str) or not SETTING_NAME.match(value):
        problems.append(f"{where}: the NAME of an app setting (letters, digits, underscores)")
        return ""
    return value


def port(value: Any, default: str, where: str, problems: list[str]) -> str:
    value = default if value is None else value
    if not isinstance(value, str) or not PORT_NAME.match(value):
        problems.append(f"{where}: a service port name such as {default!r}")
    return value


def bounded_int(value: Any, where: str, low: int, high: int, problems: list[str], default: int | None = None) -> int:
    if value is None and default is not None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        problems.append(f"{where}: a whole number from {low} to {high}")
        return default if default is not None else low
    return value


def bounded_number(value: Any, where: str, low: float, high: float, problems: list[str],
                   default: float | None = None) -> float | None:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        problems.append(f"{where}: a number from {low:g} to {high:g}")
        return default
    return float(value)
