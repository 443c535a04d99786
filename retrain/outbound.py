"""Where credentials may go: Azure's domains per service kind, plus hosts an operator lists, https only.

A host is allowed for a kind when it matches that kind's Azure domains (classic and BES:
`*.azureml.net`; ARM: the configured ARM host) or an entry of `ALLOWED_SERVICE_HOSTS`
(local emulators, private deployments). `https` is required, except for a loopback host listed in
`ALLOWED_SERVICE_HOSTS`. The same rule is applied when a definition is registered (a 400 naming the
field and the setting) and before every call (definitions stored earlier, settings changed since).

A backend kind adds its hosts with `register_kind(kind, hosts)`, in one place.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Callable, Iterable, Mapping
from urllib.parse import unquote_plus, urlsplit

from urllib3.util import parse_url

from .errors import DestinationNotAllowed, SettingsError

ALLOWED_HOSTS_SETTING = "ALLOWED_SERVICE_HOSTS"
ARM_HOST_SETTING = "RETRAIN_ARM_HOST"
DEFAULT_ARM_HOST = "management.azure.com"
_HOST = re.compile(r"^(?:\*\.)?[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?)*$")
_NETLOC = re.compile(r"^[A-Za-z0-9.\-]+(?::[0-9]{1,5})?$|^\[[0-9A-Fa-f:.]+\](?::[0-9]{1,5})?$")
_LOOPBACK_NAMES = {"localhost"}


def arm_host(env: Mapping[str, str]) -> str:
    """The ARM host of this app's cloud (`management.usgovcloudapi.net`, `management.chinacloudapi.cn`, ...)."""
    host = (env.get(ARM_HOST_SETTING) or "").strip().lower() or DEFAULT_ARM_HOST
    if not _HOST.match(host) or host.startswith("*."):
        raise SettingsError(f"{ARM_HOST_SETTING}={host!r} must be a host name such as {DEFAULT_ARM_HOST}")
    return host


# kind -> (label, Azure host patterns for it given the app settings)
KIND_HOSTS: dict[str, tuple[str, Callable[[Mapping[str, str]], tuple[str, ...]]]] = {
    "bes": ("Azure ML Studio (classic) training service", lambda env: ("*.azureml.net",)),
    "classic": ("Azure ML Studio (classic) endpoint", lambda env: ("*.azureml.net",)),
    "arm": ("Azure Resource Manager", lambda env: (arm_host(env),)),
}


def register_kind(kind: str, label: str, hosts: Callable[[Mapping[str, str]], tuple[str, ...]]) -> None:
    """Declare the Azure hosts a service kind talks to (a new backend calls this once, at import)."""
    KIND_HOSTS[kind] = (label, hosts)


@dataclass(frozen=True)
class HostEntry:
    """One `ALLOWED_SERVICE_HOSTS` entry: `host`, `host:port` or `*.suffix`."""

    host: str
    port: int | None = None

    def matches(self, host: str, port: int) -> bool:
        if self.port is not None and self.port != port:
            return False
        return _host_matches(self.host, host)


def _host_matches(pattern: str, host: str) -> bool:
    if pattern.startswith("*."):
        suffix = pattern[1:]
        return host.endswith(suffix) and len(host) > len(suffix)
    return host == pattern


def is_loopback(host: str) -> bool:
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class OutboundRules:
    """The allow-list in force for one set of app settings."""

    env: Mapping[str, str]
    extra: tuple[HostEntry, ...]

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "OutboundRules":
        raw = env.get(ALLOWED_HOSTS_SETTING) or ""
        entries, bad = [], []
        for item in (part.strip().lower() for part in re.split(r"[,;\s]+", raw)):
            if not item:
                continue
            host, _, port = item.rpartition(":") if re.search(r":\d+$", item) else (item, "", "")
            if not _HOST.match(host.strip("[]")) and not is_loopback(host):
                bad.append(item)
                continue
            entries.append(HostEntry(host.strip("[]"), int(port) if port else None))
        if bad:
            raise SettingsError(f"{ALLOWED_HOSTS_SETTING}: {', '.join(map(repr, bad))} are not host names; "
                                "use a comma-separated list of host, host:port or *.domain")
        return cls(env, tuple(entries))

    def problem(self, url: str, kind: str, where: str) -> str | None:
        """Why `url` may not receive this kind's credentials (naming `where` and the setting), None if it may."""
        label, hosts = KIND_HOSTS[kind]
        azure = hosts(self.env)
        parsed = _parse(url)
        if parsed is None:
            return f"{where}: not a usable https URL (a plain host name, no user name, no unusual characters)"
        scheme, host, port = parsed
        listed = any(entry.matches(host, port) for entry in self.extra)
        default_port = 443 if scheme == "https" else 80
        if not listed and not (port == default_port and any(_host_matches(p, host) for p in azure)):
            return (f"{where}: host {host}{'' if port == default_port else f':{port}'} is not allowed to receive "
                    f"{label} credentials (allowed: {', '.join(azure)}); "
                    f"to allow it, add it to the app setting {ALLOWED_HOSTS_SETTING}")
        if scheme != "https" and not (listed and is_loopback(host)):
            return f"{where}: must use https (plain http is allowed only for loopback hosts in {ALLOWED_HOSTS_SETTING})"
        return None

    def require(self, url: str, kind: str, where: str) -> None:
        """Raise `DestinationNotAllowed` unless `url` may receive this kind's credentials now."""
        problem = self.problem(url, kind, where)
        if problem:
            raise DestinationNotAllowed(problem)

    def problems(self, destinations: Iterable[tuple[str, str, str]]) -> list[str]:
        """Every problem of (where, kind, url) triples, for a definition's 400."""
        return [p for where, kind, url in destinations if (p := self.problem(url, kind, where))]


def _parse(url: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) when urllib's and urllib3's readings of the URL agree on an unambiguous host."""
    if not isinstance(url, str) or any(c.isspace() or ord(c) < 32 or c == "\\" for c in url):
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not _NETLOC.match(parts.netloc or ""):
        return None
    try:
        other = parse_url(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return None
    host = (parts.hostname or "").rstrip(".")
    if not host or (other.host or "").strip("[]").lower().rstrip(".") != host.strip("[]"):
        return None
    return parts.scheme, host, port


# --- credentials inside definitions ---------------------------------------------------------

CREDENTIAL_NAMES = ("sig", "signature", "access_token", "id_token", "refresh_token", "token", "code", "key",
                    "apikey", "api_key", "api-key", "subscription-key", "x-functions-key", "password", "passwd",
                    "pwd", "secret", "client_secret", "accountkey", "sharedaccesssignature", "sharedaccesskey",
                    "authorization", "auth")
_NAMED = re.compile(r"(?i)(?<![a-z0-9_\-])(" + "|".join(re.escape(n) for n in CREDENTIAL_NAMES) + r")\s*=")
_USERINFO = re.compile(r"(?i)[a-z][a-z0-9+.\-]*://[^/?#\s]*@")
_BEARER = re.compile(r"(?i)\bbearer\s+[A-Za-z0-9\-._~+/]{8,}")
_DECODE_ROUNDS = 5


def decoded_forms(text: str) -> list[str]:
    """`text` percent-decoded again and again until it stops changing (`%2573ig` -> `%73ig` -> `sig`)."""
    forms = [text]
    for _ in range(_DECODE_ROUNDS):
        nxt = unquote_plus(forms[-1])
        if nxt == forms[-1]:
            break
        forms.append(nxt)
    return forms


def credential_problem(value: str, where: str) -> str | None:
    """Why `value` (a URL or parameter value) looks like it carries a credential; never quotes the value."""
    for form in decoded_forms(value):
        if _USERINFO.search(form):
            return f"{where}: must not carry a user name or password (user:password@host); use key_setting"
        named = _NAMED.search(form)
        if named:
            return (f"{where}: must not carry a credential ({named.group(1).lower()}=...); put secrets in an "
                    "app setting named by key_setting, never in a definition")
        if _BEARER.search(form):
            return f"{where}: must not carry a bearer token; use key_setting"
    return None
