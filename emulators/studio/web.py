"""Small request helpers shared by the routers: bearer keys, JSON bodies, api-version, the server's own URL."""

from __future__ import annotations

import hmac
import json
from typing import Any

from fastapi import Request

from .errors import BadArgument, Unauthorized


def bearer(request: Request) -> str | None:
    """The token of `Authorization: Bearer <token>` (None when absent or another scheme)."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def require_key(request: Request, *accepted: str | None, detail_code: str = "ScoreRequestUnauthorized") -> str:
    """401 unless the bearer token equals one of the accepted keys (compared in constant time)."""
    token = bearer(request)
    if token is not None:
        for key in accepted:
            if key and hmac.compare_digest(token.encode(), key.encode()):
                return token
    raise Unauthorized(detail_code, "Invalid credentials provided.")


MAX_NUMBER_CHARS = 64


def _bounded_number(parse):
    """A JSON number parser that refuses tokens no real body carries (a 400-digit integer, say)."""
    def checked(token: str):
        if len(token) > MAX_NUMBER_CHARS:
            raise BadArgument("RequestBodyInvalid", f"The request body has a number of {len(token)} characters; "
                                                    f"at most {MAX_NUMBER_CHARS} are accepted.")
        return parse(token)
    return checked


async def json_body(request: Request) -> Any:
    """The parsed JSON body (dependency); malformed, too deep or absurd JSON is BadArgument/RequestBodyInvalid."""
    raw = await request.body()
    if not raw.strip():
        raise BadArgument("RequestBodyInvalid", "The request body is empty; a JSON object is required.")
    try:
        return json.loads(raw, parse_int=_bounded_number(int), parse_float=_bounded_number(float))
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise BadArgument("RequestBodyInvalid", f"The request body is not valid JSON: {e}.") from None


def require_api_version(request: Request, *allowed: str) -> None:
    version = request.query_params.get("api-version")
    if version not in allowed:
        shown = "missing" if version is None else f"'{version}'"
        raise BadArgument("InvalidApiVersion",
                          f"The api-version {shown} is not supported; use api-version={' or '.join(allowed)}.")


def own_url(request: Request) -> str:
    """This server's base URL as the caller reached it (no trailing slash)."""
    return str(request.base_url).rstrip("/")
