"""Errors as types in ARM's envelope `{"error": {"code", "message", "details"}}`; each knows its HTTP status."""

from __future__ import annotations


class ConfigError(Exception):
    """The workspace config is unreadable or invalid; the message names the field."""


class ArmError(Exception):
    """An ARM error answer."""

    status = 400
    code = "BadRequest"

    def __init__(self, message: str, *, code: str | None = None, headers: dict[str, str] | None = None):
        self.message = message
        if code:
            self.code = code
        self.headers = headers or {}
        super().__init__(f"{self.code}: {message}")

    def envelope(self) -> dict:
        return {"error": {"code": self.code, "message": self.message, "details": [],
                          "additionalInfo": []}}


class BadRequest(ArmError):
    """400: the body or a reference in it is wrong."""


class Unauthorized(ArmError):
    """401: no bearer token, or not the configured one."""

    status = 401
    code = "AuthenticationFailed"


class NotFound(ArmError):
    """404: no such workspace, asset, job, endpoint or deployment."""

    status = 404
    code = "ResourceNotFound"


class Conflict(ArmError):
    """409: another operation on the same entity is running (Azure's answer while Creating/Updating)."""

    status = 409
    code = "Conflict"


class InputError(Exception):
    """A job input or output cannot be materialised; the job fails with this message (a user error)."""


class MlflowError(Exception):
    """An MLflow REST error: `{"error_code", "message"}` with its HTTP status."""

    def __init__(self, status: int, error_code: str, message: str):
        self.status = status
        self.error_code = error_code
        self.message = message
        super().__init__(f"{error_code}: {message}")

    def envelope(self) -> dict:
        return {"error_code": self.error_code, "message": self.message}
