"""JSON from clients, parsed within bounds: size, nesting depth and number length, so no body can crash a parser."""

from __future__ import annotations

import json
from typing import Any

MAX_DEPTH = 32  # a model definition nests 5 levels; nothing legitimate comes near this
MAX_NUMBER_CHARS = 64  # a float's repr is at most ~24 characters


class JsonRejected(ValueError):
    """The body is not JSON this app accepts; the message says why."""


def loads(raw: bytes | str, *, max_bytes: int, max_depth: int = MAX_DEPTH) -> Any:
    """`json.loads` that refuses bodies too large, too deep, or with absurdly long or non-finite numbers."""
    if len(raw) > max_bytes:
        raise JsonRejected(f"the body is larger than {max_bytes // 1024} KiB")
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    except UnicodeDecodeError as e:
        raise JsonRejected(f"the body is not UTF-8: {e}") from None
    _check_depth(text, max_depth)
    try:
        return json.loads(text, parse_int=_int, parse_float=_float, parse_constant=_constant)
    except JsonRejected:
        raise
    except (ValueError, RecursionError) as e:
        raise JsonRejected(f"the body is not valid JSON: {e}") from None


def _check_depth(text: str, limit: int) -> None:
    depth, in_string, escaped = 0, False, False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > limit:
                raise JsonRejected(f"the body nests deeper than {limit} levels")
        elif char in "]}":
            depth -= 1


def _int(token: str) -> int:
    if len(token) > MAX_NUMBER_CHARS:
        raise JsonRejected(f"the body has a number of {len(token)} digits (at most {MAX_NUMBER_CHARS})")
    return int(token)


def _float(token: str) -> float:
    if len(token) > MAX_NUMBER_CHARS:
        raise JsonRejected(f"the body has a number of {len(token)} characters (at most {MAX_NUMBER_CHARS})")
    value = float(token)
    if value in (float("inf"), float("-inf")):
        raise JsonRejected(f"the body has a number too large to represent: {token[:20]}...")
    return value


def _constant(token: str) -> Any:
    raise JsonRejected(f"{token} is not a JSON number")
