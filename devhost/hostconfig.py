"""host.json, read for the settings that change how triggers behave (queues, blobs, HTTP prefix, timeout)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import HostConfigError

_TIMESPAN = re.compile(r"^(?:(\d+)\.)?(\d{1,2}):(\d{1,2}):(\d{1,2}(?:\.\d+)?)$")


def parse_timespan(value: Any, where: str) -> float | None:
    """A .NET TimeSpan ("[d.]hh:mm:ss[.fff]") in seconds; -1 means unbounded (None)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if value == -1:
            return None
        raise HostConfigError(f"host.json {where}: expected a TimeSpan string like \"00:00:30\", got {value!r}")
    if not isinstance(value, str):
        raise HostConfigError(f"host.json {where}: expected a TimeSpan string like \"00:00:30\", got {value!r}")
    if value.strip() == "-1":
        return None
    m = _TIMESPAN.match(value.strip())
    if not m:
        raise HostConfigError(f"host.json {where}: {value!r} is not a TimeSpan like \"00:00:30\"")
    days, hours, minutes, seconds = m.groups()
    return int(days or 0) * 86400 + int(hours) * 3600 + int(minutes) * 60 + float(seconds)


@dataclass(frozen=True)
class QueueOptions:
    """extensions.queues, with the host's defaults."""

    max_dequeue_count: int = 5
    visibility_timeout: float = 0.0
    batch_size: int = 16
    new_batch_threshold: int | None = None
    max_polling_interval: float = 60.0
    message_encoding: str = "base64"


@dataclass(frozen=True)
class HostConfig:
    """The parts of host.json devhost honours."""

    queues: QueueOptions = field(default_factory=QueueOptions)
    route_prefix: str = "api"
    function_timeout: float | None = None
    path: Path | None = None

    @classmethod
    def load(cls, script_root: Path) -> "HostConfig":
        """Read `<script_root>/host.json`; the host refuses to start without one, and so does devhost."""
        path = script_root / "host.json"
        if not path.exists():
            raise HostConfigError(f"{path}: no host.json in the script root (the Functions host needs one)")
        try:
            doc = json.loads(path.read_text(encoding="utf-8-sig"))
        except json.JSONDecodeError as e:
            raise HostConfigError(f"{path}: not valid JSON: {e.msg} at line {e.lineno} column {e.colno}") from None
        return cls.from_dict(doc, path)

    @classmethod
    def from_dict(cls, doc: Any, path: Path | None = None) -> "HostConfig":
        """Validate the document (version 2.0) and pick out the settings."""
        if not isinstance(doc, dict):
            raise HostConfigError("host.json: expected a JSON object")
        if doc.get("version") != "2.0":
            raise HostConfigError(f"host.json: \"version\" must be \"2.0\", got {doc.get('version')!r}")
        ext = _obj(doc.get("extensions", {}), "extensions")
        q = _obj(ext.get("queues", {}), "extensions.queues")
        queues = QueueOptions(
            max_dequeue_count=_int(q, "maxDequeueCount", 5, minimum=1),
            visibility_timeout=_span(q, "visibilityTimeout", 0.0),
            batch_size=_int(q, "batchSize", 16, minimum=1, maximum=32),
            new_batch_threshold=_int(q, "newBatchThreshold", None, minimum=0),
            max_polling_interval=_span(q, "maxPollingInterval", 60.0),
            message_encoding=_encoding(q.get("messageEncoding", "base64")),
        )
        http = _obj(ext.get("http", {}), "extensions.http")
        prefix = http.get("routePrefix", "api")
        if not isinstance(prefix, str):
            raise HostConfigError("host.json extensions.http.routePrefix: expected a string")
        timeout = parse_timespan(doc["functionTimeout"], "functionTimeout") if "functionTimeout" in doc else None
        return cls(queues=queues, route_prefix=prefix.strip("/"), function_timeout=timeout, path=path)


def _obj(value: Any, where: str) -> dict:
    if not isinstance(value, dict):
        raise HostConfigError(f"host.json {where}: expected an object")
    return value


def _int(section: dict, key: str, default: int | None, minimum: int, maximum: int | None = None) -> Any:
    value = section.get(key, default)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum or (maximum and value > maximum):
        bound = f"{minimum}..{maximum}" if maximum else f">= {minimum}"
        raise HostConfigError(f"host.json extensions.queues.{key}: expected an integer {bound}, got {value!r}")
    return value


def _span(section: dict, key: str, default: float) -> float:
    if key not in section:
        return default
    seconds = parse_timespan(section[key], f"extensions.queues.{key}")
    if seconds is None:
        raise HostConfigError(f"host.json extensions.queues.{key}: must be a finite TimeSpan")
    return seconds


def _encoding(value: Any) -> str:
    if not isinstance(value, str) or value.lower() not in ("base64", "none"):
        raise HostConfigError(f"host.json extensions.queues.messageEncoding: \"base64\" or \"none\", got {value!r}")
    return value.lower()
