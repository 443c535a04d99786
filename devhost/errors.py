"""Errors devhost raises, one type per thing that can be wrong, so callers and tests can tell them apart."""

from __future__ import annotations


class DevHostError(Exception):
    """Base: devhost cannot do what was asked; the message says what to fix."""


class SettingsFileError(DevHostError):
    """local.settings.json is missing, not JSON, or not shaped like the Core Tools file."""


class HostConfigError(DevHostError):
    """host.json is missing, not JSON, or has a value devhost cannot read."""


class MissingSettingError(DevHostError):
    """A binding names an app setting (`%NAME%` or a connection) that is not set."""

    def __init__(self, setting: str, where: str) -> None:
        self.setting = setting
        self.where = where
        super().__init__(
            f"{where} needs app setting {setting!r}, which is not set "
            f"(add it to local.settings.json \"Values\" or the environment)")


class AppLoadError(DevHostError):
    """The app module cannot be imported or holds no single FunctionApp."""


class BindingError(DevHostError):
    """A function's binding is one devhost does not support or cannot make sense of."""


class ScheduleError(BindingError):
    """A timer schedule is not a six-field NCRONTAB expression (or a TimeSpan)."""


class StorageConnectionError(DevHostError):
    """A binding's `connection` setting names neither a connection string nor identity-based settings."""


class UnknownFunctionError(DevHostError):
    """A function name that the app does not define (or not with the expected trigger)."""


class DrainTimeout(DevHostError):
    """Work was still pending when drain() ran out of time; the message lists what."""
