"""Who is calling: App Service Authentication's `X-MS-CLIENT-PRINCIPAL`, or a function key; and the roles actions need.

With `RETRAIN_EASY_AUTH=true` (App Service Authentication on, set by the Bicep), the front end
strips any client-sent `X-MS-*` header and sets `X-MS-CLIENT-PRINCIPAL` (base64 JSON:
`auth_typ`, `claims: [{typ, val}]`, `name_typ`, `role_typ`) for a signed-in caller. A request
without it passed on a function key alone: an automation identity whose roles are the ones the
operator grants in `RETRAIN_FUNCTION_KEY_ROLES`. With the setting off, the header is ignored
(anyone could send it), every caller is the function key, and no role is enforced.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass, field
from typing import Any, Mapping

from .errors import Forbidden, SettingsError, Unauthenticated

PRINCIPAL_HEADER = "x-ms-client-principal"
AUTH_SETTING = "RETRAIN_EASY_AUTH"
KEY_ROLES_SETTING = "RETRAIN_FUNCTION_KEY_ROLES"
APPROVER = "Retrain.Approver"  # approve, reject, roll back
ADMIN = "Retrain.Admin"  # register, redefine a model
ROLES = (APPROVER, ADMIN)
MAX_PRINCIPAL = 16 * 1024

_ROLE_TYPES = ("roles", "http://schemas.microsoft.com/ws/2008/06/identity/claims/role")
_ID_TYPES = ("http://schemas.microsoft.com/identity/claims/objectidentifier", "oid", "sub",
             "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/nameidentifier")
_NAME_TYPES = ("preferred_username", "name", "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn",
               "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress", "email")
_SCOPE_TYPES = ("scp", "http://schemas.microsoft.com/identity/claims/scope")
_TRUE = {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class Actor:
    """The identity an action is recorded under; `note` is the caller's free-text `by`, never an identity."""

    kind: str  # "user", "application" (a service principal's token) or "function_key"
    id: str
    name: str
    provider: str  # Easy Auth's auth_typ ("aad", ...) or "function_key"
    roles: frozenset[str] = field(default_factory=frozenset)
    note: str = ""

    @property
    def label(self) -> str:
        """Short text for reasons and history: the name, and the note when the caller gave one."""
        who = self.name if self.kind != "function_key" else "function key"
        return f"{who} ({self.note})" if self.note else who

    def to_record(self) -> dict[str, Any]:
        return {"kind": self.kind, "id": self.id, "name": self.name, "provider": self.provider,
                "roles": sorted(self.roles), "note": self.note}


def auth_enabled(env: Mapping[str, str]) -> bool:
    return (env.get(AUTH_SETTING) or "").strip().lower() in _TRUE


def function_key_roles(env: Mapping[str, str]) -> frozenset[str]:
    """The roles an automation caller (function key, no principal) holds while auth is on."""
    names = frozenset(n for n in re.split(r"[,;\s]+", env.get(KEY_ROLES_SETTING) or "") if n)
    unknown = names - set(ROLES)
    if unknown:
        raise SettingsError(f"{KEY_ROLES_SETTING}: unknown role(s) {', '.join(sorted(unknown))}; "
                            f"use {', '.join(ROLES)}")
    return names


def caller(headers: Mapping[str, str], env: Mapping[str, str], note: str = "") -> Actor:
    """The caller of one request, from the principal header when auth is on, else the function key."""
    note = " ".join(str(note or "").split())[:100]
    if not auth_enabled(env):  # no role is enforced, so none is recorded as held
        return Actor("function_key", "function-key", "function key", "function_key", frozenset(), note)
    raw = _header(headers, PRINCIPAL_HEADER)
    if raw is None:
        return Actor("function_key", "function-key", "function key", "function_key", function_key_roles(env), note)
    return _from_principal(raw, headers, note)


def require(actor: Actor, role: str, action: str, env: Mapping[str, str]) -> None:
    """Raise Forbidden (403, naming the role) unless auth is off or the caller holds `role`."""
    if auth_enabled(env) and role not in actor.roles:
        held = ", ".join(sorted(actor.roles)) or "none"
        how = (f"grant it in {KEY_ROLES_SETTING}, or sign in as a person who has it"
               if actor.kind == "function_key" else "assign it to the caller in the app registration")
        raise Forbidden(f"{action} needs the app role {role}; {actor.name} holds {held} ({how})", role=role)


def _from_principal(raw: str, headers: Mapping[str, str], note: str) -> Actor:
    body = _decode(raw)
    claims = body["claims"]
    role_type = body.get("role_typ") or _ROLE_TYPES[1]
    name_type = body.get("name_typ")

    def first(types) -> str:
        for typ in types:
            for claim in claims:
                if claim["typ"] == typ and claim["val"].strip():
                    return claim["val"].strip()
        return ""

    oid = first(_ID_TYPES) or (_header(headers, "x-ms-client-principal-id") or "").strip()
    if not oid:
        raise Unauthenticated(f"{PRINCIPAL_HEADER.upper()} names no object id (oid) or subject claim")
    named = first(((name_type,) if name_type else ()) + _NAME_TYPES)
    name = named or (_header(headers, "x-ms-client-principal-name") or "").strip() or oid
    roles = frozenset(c["val"] for c in claims if c["typ"] in (role_type, *_ROLE_TYPES))
    is_app = first(("idtyp",)) == "app" or (not first(_SCOPE_TYPES) and bool(first(("appid", "azp")))
                                             and not named)
    return Actor("application" if is_app else "user", oid[:128], name[:256], str(body["auth_typ"])[:32],
                 roles & set(ROLES), note)


def _decode(raw: str) -> dict:
    """The principal's JSON, its shape checked: an object with a string auth_typ and [{typ, val}] claims."""
    where = PRINCIPAL_HEADER.upper()
    if len(raw) > MAX_PRINCIPAL:
        raise Unauthenticated(f"{where} is larger than {MAX_PRINCIPAL // 1024} KiB")
    text = raw.strip()
    try:
        decoded = base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_" if re.search(r"[-_]", text)
                                   else None, validate=True)
        body = json.loads(decoded.decode("utf-8"))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise Unauthenticated(f"{where} is not base64-encoded JSON") from None
    if not isinstance(body, dict) or not isinstance(body.get("auth_typ"), str) or not body["auth_typ"]:
        raise Unauthenticated(f"{where} has no auth_typ")
    claims = body.get("claims")
    if not isinstance(claims, list) or not all(
            isinstance(c, dict) and isinstance(c.get("typ"), str) and isinstance(c.get("val"), str) for c in claims):
        raise Unauthenticated(f"{where} claims must be a list of {{typ, val}} strings")
    for key in ("name_typ", "role_typ"):
        if body.get(key) is not None and not isinstance(body[key], str):
            raise Unauthenticated(f"{where} {key} must be a string")
    return body


def _header(headers: Mapping[str, str], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return None


def encode_principal(claims: list[tuple[str, str]], auth_typ: str = "aad") -> str:
    """The header value Easy Auth would set for these claims (tests and local tools; never trusted input)."""
    body = {"auth_typ": auth_typ, "claims": [{"typ": t, "val": v} for t, v in claims],
            "name_typ": "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name",
            "role_typ": _ROLE_TYPES[1]}
    return base64.b64encode(json.dumps(body).encode()).decode()
