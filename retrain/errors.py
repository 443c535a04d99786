"""One exception per failure a caller must tell apart; each carries the HTTP status the API answers with."""

from __future__ import annotations

from typing import Any


class RetrainError(Exception):
    """Base of every error this package raises on purpose; `http_status` is what the HTTP API answers with.

    Keyword arguments are the extra fields of its JSON error envelope, each also an attribute
    (`Forbidden(message, role=...)` answers `{"error": {"code", "message", "role"}}` and has `.role`).
    """

    http_status = 500

    def __init__(self, message: str = "", **details: Any):
        super().__init__(message)
        self._details = details
        for name, value in details.items():
            setattr(self, name, value)

    def details(self) -> dict:
        """Extra fields of the JSON error envelope (besides code and message)."""
        return dict(self._details)


# --- configuration and input -------------------------------------------------------------

class SettingsError(RetrainError):
    """An app setting is missing or malformed; the message names the setting and the fix."""

    http_status = 500


class InvalidModelDefinition(RetrainError):
    """A model definition failed validation; `problems` lists each field and what is wrong."""

    http_status = 400

    def __init__(self, problems: list[str]):
        super().__init__("; ".join(problems), problems=problems)


class DestinationNotAllowed(SettingsError):
    """A URL would send a credential or SAS to a host the outbound rule does not allow (names the setting)."""

    http_status = 400


class SecretNotAllowed(SettingsError):
    """A key setting's name does not follow the secret-setting rule; says the rule, never whether it exists."""

    http_status = 400


class Unauthenticated(RetrainError):
    """App Service Authentication is on and the caller's principal header is missing its shape (401)."""

    http_status = 401


class Forbidden(RetrainError):
    """The caller lacks the app role an action needs; the message names the role (403), `role=` says which."""

    http_status = 403


class UnknownModel(RetrainError):
    """No model is registered under that name."""

    http_status = 404


class UnknownRun(RetrainError):
    """No run with that id exists for the model."""

    http_status = 404


class InvalidDataRef(RetrainError):
    """A training-data blob cannot be used (wrong extension, empty, escapes the container, missing)."""

    http_status = 400


class DataNotFound(InvalidDataRef):
    """The named training blob does not exist."""

    http_status = 404


class NoTrainingData(RetrainError):
    """A model has no blob under its data prefix to train on."""

    http_status = 409


class Conflict(RetrainError):
    """The request cannot be applied in the current state (e.g. cancel a finished run)."""

    http_status = 409


class InvalidSubscription(InvalidModelDefinition):
    """A subscription failed validation (URL under the host rules, event types, secret setting); `problems` lists why."""


class UnknownSubscription(RetrainError):
    """No subscription (or delivery) is stored under that name."""

    http_status = 404


class BadRequest(RetrainError):
    """The request itself is malformed (bad JSON, bad parameter)."""

    http_status = 400


class UnusableModel(Conflict):
    """The model's stored row no longer validates (rules changed since it was written); PUT it again."""

    def __init__(self, name: str, problems: list[str]):
        super().__init__(f"model {name!r} is stored with a definition that no longer validates: "
                         f"{'; '.join(problems)}; PUT the definition again to fix it", problems=problems)


class RollbackFailed(Conflict):
    """Some endpoint refused the earlier model; the champion did not move (`endpoints` says which)."""

    http_status = 502

    def __init__(self, message: str, endpoints: dict[str, dict]):
        super().__init__(message, endpoints=endpoints)


class BadMessage(RetrainError):
    """A queue message is not a step message this app wrote; it is dropped with a log line."""


class EvaluationFormatError(RetrainError):
    """A run's Evaluate Model output cannot be read as metrics; the message says what is wrong with it."""


# --- remote services (BES, endpoint management, ARM) -------------------------------------

class ServiceError(RetrainError):
    """A remote ML service answered with an error; `code`/`message` come from its error envelope."""

    http_status = 502  # the app, as a gateway, got a bad answer from the ML service

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None,
                 detail_code: str | None = None):
        self.status = status
        self.code = code
        self.detail_code = detail_code
        super().__init__(message)


class TransientServiceError(ServiceError):
    """Worth retrying later (429, 5xx, timeouts, connection errors); `retry_after` in seconds if known."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kw):
        self.retry_after = retry_after
        super().__init__(message, **kw)


class PermanentServiceError(ServiceError):
    """Retrying cannot help (bad request, bad data, missing resource); fails the run with the message."""


class AuthenticationFailed(PermanentServiceError):
    """The service rejected the key or token (401/403)."""


class JobNotFound(PermanentServiceError):
    """BES does not know the job id (404)."""


class ProvisioningFailed(PermanentServiceError):
    """An ARM update ended in provisioningState Failed."""


class VerificationFailed(PermanentServiceError):
    """An endpoint accepted the update but does not report the new model afterwards."""


# --- state -----------------------------------------------------------------------------

class ConcurrentUpdate(RetrainError):
    """Another writer changed the row since it was read (ETag mismatch); the caller re-reads or drops."""

    http_status = 409


class StorageUnavailable(RetrainError):
    """Table, queue or blob storage failed in a way this app cannot fix (an escaped SDK error), told as JSON."""

    http_status = 503
