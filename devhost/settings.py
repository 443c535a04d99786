"""App settings the way Core Tools sees them: local.settings.json "Values" under the environment, and %NAME% lookup."""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, MutableMapping

from .errors import MissingSettingError, SettingsFileError

_PERCENT = re.compile(r"%([^%]+)%")


@dataclass(frozen=True)
class LocalSettings:
    """The parts of local.settings.json devhost uses."""

    values: dict[str, str] = field(default_factory=dict)
    local_http_port: int | None = None
    path: Path | None = None

    @classmethod
    def load(cls, path: Path, required: bool = False) -> "LocalSettings":
        """Read and validate the file; a missing file is fine unless it was asked for explicitly."""
        if not path.exists():
            if required:
                raise SettingsFileError(f"{path}: no such settings file")
            return cls(path=None)
        text = path.read_text(encoding="utf-8-sig")
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as e:
            raise SettingsFileError(f"{path}: not valid JSON: {e.msg} at line {e.lineno} column {e.colno}") from None
        if not isinstance(doc, dict):
            raise SettingsFileError(f"{path}: expected a JSON object with \"Values\", got {type(doc).__name__}")
        if doc.get("IsEncrypted") is True:
            raise SettingsFileError(f"{path}: \"IsEncrypted\" is true; devhost reads plain values only "
                                    "(run `func settings decrypt` or write the values in clear)")
        values = doc.get("Values", {})
        if not isinstance(values, dict):
            raise SettingsFileError(f"{path}: \"Values\" must be an object of string to string")
        bad = [k for k, v in values.items() if not isinstance(v, str)]
        if bad:
            raise SettingsFileError(f"{path}: \"Values\" must map strings to strings; not a string: {', '.join(bad)}")
        host = doc.get("Host", {})
        port = host.get("LocalHttpPort") if isinstance(host, dict) else None
        if port is not None and not isinstance(port, int):
            raise SettingsFileError(f"{path}: \"Host.LocalHttpPort\" must be an integer")
        return cls(values=dict(values), local_http_port=port, path=path)


@dataclass
class AppliedSettings:
    """What apply_settings changed in the environment, so it can be put back."""

    previous: dict[str, str | None] = field(default_factory=dict)

    def restore(self, environ: MutableMapping[str, str] | None = None) -> None:
        """Undo the change (used when an in-process host stops, so tests do not leak settings)."""
        env = os.environ if environ is None else environ
        for name, old in self.previous.items():
            if old is None:
                env.pop(name, None)
            else:
                env[name] = old
        self.previous.clear()


def apply_settings(file_values: Mapping[str, str], explicit: Mapping[str, str],
                   environ: MutableMapping[str, str] | None = None) -> AppliedSettings:
    """File values never override the environment (as in Core Tools); explicit values (the API's) always do."""
    env = os.environ if environ is None else environ
    applied = AppliedSettings()
    for name, value in file_values.items():
        if name not in env and name not in explicit:
            applied.previous.setdefault(name, None)
            env[name] = value
    for name, value in explicit.items():
        applied.previous.setdefault(name, env.get(name))
        env[name] = value
    return applied


def resolve(value: str, where: str, environ: Mapping[str, str] | None = None) -> str:
    """Replace each %NAME% with app setting NAME, as the host does for binding properties."""
    env = os.environ if environ is None else environ

    def one(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in env:
            raise MissingSettingError(name, where)
        return env[name]

    return _PERCENT.sub(one, value)
