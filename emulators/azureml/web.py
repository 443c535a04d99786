"""Request helpers shared by the routers: the caller's token, JSON bodies, ARM ids and resource shapes."""

from __future__ import annotations

import hmac
import json
from datetime import datetime, timezone
from typing import Any

from fastapi import Request

from .errors import BadRequest, Unauthorized

MAX_BODY = 4 * 1024 * 1024
PROVIDER = "Microsoft.MachineLearningServices"
WS = "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.MachineLearningServices/workspaces/{ws}"


def bearer(request: Request) -> str | None:
    """The token of `Authorization: Bearer <token>` (None when absent or another scheme)."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def same(secret: str | None, given: str | None) -> bool:
    """Constant-time equality of two optional secrets (None never matches)."""
    return bool(secret) and given is not None and hmac.compare_digest(secret.encode(), given.encode())


def require_token(request: Request) -> None:
    """401 unless the bearer token is the configured static token."""
    if not same(request.app.state.context.config.token, bearer(request)):
        raise Unauthorized("The access token is missing or invalid.",
                           code="InvalidAuthenticationToken" if bearer(request) else "AuthenticationFailed")


async def json_object(request: Request) -> dict:
    """The body as a JSON object; empty, oversized, malformed or non-object bodies are 400."""
    raw = await request.body()
    if len(raw) > MAX_BODY:
        raise BadRequest(f"The request body is larger than {MAX_BODY} bytes.", code="RequestTooLarge")
    if not raw.strip():
        raise BadRequest("The request body is empty; a JSON object is required.", code="InvalidRequestContent")
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise BadRequest(f"The request body is not valid JSON: {e}.", code="InvalidRequestContent") from None
    if not isinstance(body, dict):
        raise BadRequest("The request body must be a JSON object.", code="InvalidRequestContent")
    return body


def section(body: dict, key: str, default: Any = None) -> Any:
    """A nested object of the body (`properties`, `sku`...); a non-object is 400."""
    value = body.get(key)
    if value is None:
        return {} if default is None else default
    if not isinstance(value, dict):
        raise BadRequest(f"'{key}' must be a JSON object.", code="InvalidRequestContent")
    return value


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def own_url(request: Request) -> str:
    """This server's base URL as the caller reached it (no trailing slash)."""
    return str(request.base_url).rstrip("/")


def resource(arm_id: str, name: str, rtype: str, properties: dict, *, created: str, modified: str | None = None,
             **extra: Any) -> dict:
    """A complete ARM resource body (the SDK's deserialisers need every part)."""
    return {"id": arm_id, "name": name, "type": f"{PROVIDER}/workspaces/{rtype}", **extra,
            "properties": properties,
            "systemData": {"createdAt": created, "createdBy": "emulators.azureml", "createdByType": "User",
                           "lastModifiedAt": modified or created, "lastModifiedBy": "emulators.azureml",
                           "lastModifiedByType": "User"}}


def page(items: list[dict]) -> dict:
    """An ARM list answer (one page; no nextLink)."""
    return {"value": items}
