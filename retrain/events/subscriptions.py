"""Subscriptions: where events go (a webhook URL under the host rules), which ones, and how they are signed.

The signing secret is never stored: a subscription names the app setting holding it
(`RETRAIN_SECRET_<NAME>` or listed in `RETRAIN_SECRET_SETTINGS`), a `whsec_<base64>` value as
Standard Webhooks defines it. A webhook URL must be https on a public host; plain http and
private, loopback or link-local hosts only when listed in `ALLOWED_SERVICE_HOSTS` (local
receivers, private networks), so events and signatures cannot be aimed at the app's own network.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field, replace
from typing import Any, Mapping
from urllib.parse import urlsplit

from ..errors import InvalidSubscription, SettingsError
from .model import EventType

NAME = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
RESERVED = {"eventgrid"}  # the Event Grid sink's deliveries are listed under this name
ALLOWED_HOSTS_SETTING = "ALLOWED_SERVICE_HOSTS"
SUBSCRIBABLE = tuple(t for t in EventType if t is not EventType.TEST)
FIELDS = {"url", "event_types", "model", "secret_setting", "description", "enabled"}


def check_name(name: str) -> str:
    if not NAME.match(name or "") or name in RESERVED:
        raise InvalidSubscription([f"subscription name {name!r}: use 1-63 lowercase letters, digits and hyphens"
                                   + (" (eventgrid is reserved)" if name in RESERVED else "")])
    return name


def _listed(env: Mapping[str, str], setting: str) -> set[str]:
    return {p.strip().lower() for p in re.split(r"[,;\s]+", env.get(setting) or "") if p.strip()}


def url_problem(url: Any, env: Mapping[str, str], where: str = "url") -> str | None:
    """Why events may not be sent to `url` under the host rules, None if they may (checked again before each send)."""
    if not isinstance(url, str) or len(url) > 2000 or any(c.isspace() or ord(c) < 32 or c == "\\" for c in url):
        return f"{where}: an absolute http(s) URL is required"
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        return f"{where}: the port is not a number"
    host = (parts.hostname or "").rstrip(".")
    if parts.scheme not in ("http", "https") or not host:
        return f"{where}: an absolute http(s) URL is required"
    if parts.username or parts.password:
        return f"{where}: must not carry a user name or password; receivers check the signature instead"
    listed = _listed(env, ALLOWED_HOSTS_SETTING)
    is_listed = host in listed or (port is not None and f"{host}:{port}" in listed)
    private = host == "localhost" or host.endswith(".localhost") or host.endswith(".internal")
    try:
        address = ipaddress.ip_address(host.strip("[]"))
        private = private or not address.is_global
    except ValueError:
        pass
    if private and not is_listed:
        return (f"{where}: host {host} is a private, loopback or local address; list it in the app setting "
                f"{ALLOWED_HOSTS_SETTING} to allow it")
    if parts.scheme != "https" and not (is_listed and private):
        return f"{where}: must use https (plain http only for loopback or private hosts in {ALLOWED_HOSTS_SETTING})"
    return None


def secret_problem(name: Any, env: Mapping[str, str], where: str = "secret_setting") -> str | None:
    """The trust boundary's secret-setting rule (`retrain.secrets`): `RETRAIN_SECRET_<NAME>` or listed."""
    from ..secrets import SecretRule
    return SecretRule.from_env(env).problem(name, where)


@dataclass(frozen=True)
class Subscription:
    """A webhook receiver: per model (`model`) or for every model (None)."""

    name: str
    url: str
    secret_setting: str
    event_types: tuple[EventType, ...] = field(default_factory=tuple)  # empty: every event type
    model: str | None = None
    description: str = ""
    enabled: bool = True
    disabled_reason: str = ""
    created_at: str = ""
    updated_at: str = ""
    etag: str | None = None

    def wants(self, event_type: EventType, model: str | None) -> bool:
        if event_type is EventType.TEST:
            return True
        return (self.enabled and (not self.event_types or event_type in self.event_types)
                and (self.model is None or self.model == model))

    @classmethod
    def from_json(cls, name: str, body: Any, env: Mapping[str, str]) -> "Subscription":
        name = check_name(name)
        if not isinstance(body, dict):
            raise InvalidSubscription(['the body must be a JSON object such as {"url": "https://...", '
                                       '"secret_setting": "RETRAIN_SECRET_HOOK", "event_types": [...]}'])
        problems = [f"unknown field {k!r}" for k in sorted(set(body) - FIELDS)]
        if (p := url_problem(body.get("url"), env)):
            problems.append(p)
        if (p := secret_problem(body.get("secret_setting"), env)):
            problems.append(p)
        raw_types = body.get("event_types", [])
        types: list[EventType] = []
        if not isinstance(raw_types, list) or not all(isinstance(t, str) for t in raw_types):
            problems.append("event_types: a list of event type names")
        else:
            known = {t.value: t for t in SUBSCRIBABLE}
            for t in raw_types:
                if t in known:
                    types.append(known[t])
                else:
                    problems.append(f"event_types: {t[:100]!r} is not one of {', '.join(known)}")
        model = body.get("model")
        if model is not None and (not isinstance(model, str) or not NAME.match(model)):
            problems.append("model: a model name, or null for every model")
        description = body.get("description", "")
        if not isinstance(description, str) or len(description) > 500:
            problems.append("description: a string of at most 500 characters")
        enabled = body.get("enabled", True)
        if not isinstance(enabled, bool):
            problems.append("enabled: true or false")
        if problems:
            raise InvalidSubscription(problems)
        return cls(name, body["url"], body["secret_setting"], tuple(dict.fromkeys(types)), model, description,
                   enabled)

    def secret(self, env: Mapping[str, str]) -> str:
        """The signing secret, read now under the rule (the setting may have changed since registration)."""
        problem = secret_problem(self.secret_setting, env)
        if problem:
            raise SettingsError(f"subscription {self.name!r}: {problem}")
        value = (env.get(self.secret_setting) or "").strip()
        if not value:
            raise SettingsError(f"subscription {self.name!r}: app setting {self.secret_setting!r} is not set")
        return value

    def disabled(self, reason: str) -> "Subscription":
        return replace(self, enabled=False, disabled_reason=reason)

    def to_entity(self, partition: str) -> dict:
        return {"PartitionKey": partition, "RowKey": self.name, "Url": self.url, "SecretSetting": self.secret_setting,
                "EventTypes": ",".join(t.value for t in self.event_types), "Model": self.model or "",
                "Description": self.description, "Enabled": self.enabled, "DisabledReason": self.disabled_reason,
                "CreatedAt": self.created_at, "UpdatedAt": self.updated_at}

    @classmethod
    def from_entity(cls, e: dict) -> "Subscription":
        known = {t.value: t for t in EventType}
        types = tuple(known[t] for t in (e.get("EventTypes") or "").split(",") if t in known)
        return cls(e["RowKey"], e.get("Url", ""), e.get("SecretSetting", ""), types, e.get("Model") or None,
                   e.get("Description", ""), bool(e.get("Enabled", True)), e.get("DisabledReason", ""),
                   e.get("CreatedAt", ""), e.get("UpdatedAt", ""), e.metadata.get("etag"))

    def to_public(self) -> dict[str, Any]:
        return {"name": self.name, "url": self.url, "secret_setting": self.secret_setting,
                "event_types": [t.value for t in self.event_types] or None, "model": self.model,
                "description": self.description, "enabled": self.enabled,
                "disabled_reason": self.disabled_reason or None, "created_at": self.created_at,
                "updated_at": self.updated_at or None,
                "links": {"self": f"/api/subscriptions/{self.name}",
                          "deliveries": f"/api/subscriptions/{self.name}/deliveries",
                          "test": f"/api/subscriptions/{self.name}/test"}}
