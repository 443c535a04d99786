"""One exception per failure a caller must tell apart."""

from __future__ import annotations


class RetrainError(Exception):
    """Base of every error this package raises on purpose."""


# --- configuration and input -------------------------------------------------------------

class SettingsError(RetrainError):
    """An app setting is missing or malformed; the message names the setting and the fix."""


class InvalidModelDefinition(RetrainError):
    """A model definition failed validation; `problems` lists each field and what is wrong."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("; ".join(problems))


class DestinationNotAllowed(SettingsError):
    """A URL would send a credential or SAS to a host the outbound rule does not allow (names the setting)."""

    status = 400


class SecretNotAllowed(SettingsError):
    """A key setting's name does not follow the secret-setting rule; says the rule, never whether it exists."""

    status = 400


class Unauthenticated(RetrainError):
    """App Service Authentication is on and the caller's principal header is missing its shape (401)."""

    status = 401


class Forbidden(RetrainError):
    """The caller lacks the app role an action needs; the message names the role (403)."""

    status = 403

    def __init__(self, message: str, *, role: str):
        self.role = role
        super().__init__(message)


class UnknownModel(RetrainError):
    """No model is registered under that name."""


class UnknownRun(RetrainError):
    """No run with that id exists for the model."""


class InvalidDataRef(RetrainError):
    """A training-data blob cannot be used (wrong extension, empty, escapes the container, missing)."""


class DataNotFound(InvalidDataRef):
    """The named training blob does not exist."""


class NoTrainingData(RetrainError):
    """A model has no blob under its data prefix to train on."""


class Conflict(RetrainError):
    """The request cannot be applied in the current state (e.g. cancel a finished run)."""


class EvaluationFormatError(RetrainError):
    """A run's Evaluate Model output cannot be read as metrics; the message says what is wrong with it."""


# --- remote services (BES, endpoint management, ARM) -------------------------------------

class ServiceError(RetrainError):
    """A remote ML service answered with an error; `code`/`message` come from its error envelope."""

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
