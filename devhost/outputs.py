"""Queue output bindings: collect what the function sets, send it after the function succeeds (as the host does)."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import azure.functions as func
from azure.core.exceptions import ResourceExistsError

from .app import FunctionSpec
from .connections import StorageClients
from .settings import resolve

T = TypeVar("T")


class OutValue(func.Out, Generic[T]):
    """The `func.Out[...]` handed to a function for an output binding."""

    def __init__(self) -> None:
        self._value: Any = None

    def set(self, val: T) -> None:
        self._value = val

    def get(self) -> T:
        return self._value


@dataclass(frozen=True)
class QueueOutput:
    """One queue output binding with its queue name resolved."""

    param: str
    queue_name: str
    connection: str | None

    @classmethod
    def of(cls, spec: FunctionSpec) -> list["QueueOutput"]:
        """The function's queue outputs, %SETTING% resolved now so a missing setting fails at start-up."""
        outs = []
        for b in spec.outputs:
            where = f"function {spec.name!r} output binding {b['name']!r}"
            outs.append(cls(param=b["name"], queue_name=resolve(b["queueName"], where).lower(),
                             connection=b.get("connection")))
        return outs

    def send(self, clients: StorageClients, value: Any, encoding: str) -> int:
        """Send each message the value holds (None sends nothing); the host creates the queue if missing."""
        if value is None:
            return 0
        items = value if isinstance(value, list) else [value]
        queue = clients.queue_service(self.connection).get_queue_client(self.queue_name)
        try:
            queue.create_queue()
        except ResourceExistsError:
            pass
        for item in items:
            queue.send_message(encode_message(item, encoding))
        return len(items)


def encode_message(item: Any, encoding: str) -> str:
    """Text as the queue extension writes it: str/bytes as is, anything else as JSON; base64 unless encoding is none."""
    if isinstance(item, (bytes, bytearray)):
        raw = bytes(item)
    elif isinstance(item, str):
        raw = item.encode("utf-8")
    else:
        raw = json.dumps(item).encode("utf-8")
    if encoding == "base64":
        return base64.b64encode(raw).decode("ascii")
    return raw.decode("utf-8")
