"""Errors as types: each knows its HTTP status and the service's error envelope, so handlers only raise."""

from __future__ import annotations

import json


class ConfigError(Exception):
    """The workspace config file is unreadable or invalid; the message names the field."""


class ServiceError(Exception):
    """An answer in the documented envelope `{"error":{"code","message","details":[{"code","message"}]}}`."""

    status = 400
    code = "BadArgument"

    def __init__(self, detail_code: str, message: str, *, headers: dict[str, str] | None = None):
        self.detail_code = detail_code
        self.message = message
        self.headers = headers or {}
        super().__init__(f"{self.code}/{detail_code}: {message}")

    def envelope(self) -> dict:
        return {"error": {"code": self.code, "message": self.message,
                          "details": [{"code": self.detail_code, "message": self.message}]}}


class BadArgument(ServiceError):
    """400: the request itself is wrong (names, extensions, missing inputs, bad JSON, missing blob)."""


class InvalidOperation(ServiceError):
    """400: the request is valid but not in the resource's current state."""

    code = "InvalidOperation"


class Unauthorized(ServiceError):
    """401: the key or token does not open this resource."""

    status = 401
    code = "Unauthorized"

    def __init__(self, detail_code: str = "ScoreRequestUnauthorized", message: str = "Invalid credentials provided."):
        super().__init__(detail_code, message)

    def envelope(self) -> dict:
        return {"error": {"code": self.code, "message": "Request is unauthorized to access resource.",
                          "details": [{"code": self.detail_code, "message": self.message}]}}


class NotFound(ServiceError):
    """404: no such workspace, web service, endpoint, job or ARM resource."""

    status = 404
    code = "NotFound"


class ArmError(ServiceError):
    """An ARM-style error: `{"error":{"code","message"}}` with the ARM code itself at top level."""

    def __init__(self, status: int, code: str, message: str):
        self.status = status
        self.code = code
        super().__init__(code, message)

    def envelope(self) -> dict:
        return {"error": {"code": self.code, "message": self.message}}


class BlobError(Exception):
    """A blob could not be read or written; `missing` tells "not there" from "not allowed / unreachable"."""

    def __init__(self, message: str, *, missing: bool = False):
        self.missing = missing
        super().__init__(message)


def module_error(code: int, message: str, module: str) -> str:
    """A failed job's `Details` as the real BES wrote them: a JSON envelope around the module's numbered error."""
    outer = (("LibraryExecutionError", "Module execution encountered an internal library error.") if code == 1000
             else ("ModuleExecutionError", "Module execution encountered an error."))
    return json.dumps({"error": {"code": outer[0], "message": outer[1], "details": [
        {"code": str(code), "target": module, "message": f"Error {code:04d}: {message}"}]}}, ensure_ascii=False)
