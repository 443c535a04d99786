"""The chain's four step queues and the small JSON message each step receives."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace
from enum import Enum

from azure.core.exceptions import ResourceExistsError

from .errors import BadMessage  # noqa: F401 (re-exported)
from . import telemetry
from .runs import Status
from .storage import Storage

MAX_DELAY = 7 * 24 * 3600 - 60  # a queue message can stay invisible for at most 7 days


def visibility_timeout(delay: float) -> int | None:
    """A delay as a message's initial invisibility: rounded up (a fractional wait never comes back at once)."""
    return math.ceil(min(max(delay, 0), MAX_DELAY)) or None


class Step(str, Enum):
    SUBMIT = "submit"
    CHECK = "check"
    EVALUATE = "evaluate"
    PROMOTE = "promote"

    @property
    def queue(self) -> str:
        """Queue names are fixed: function_app.py binds to these literals."""
        return f"retrain-{self.value}"


STEP_FOR_STATUS = {Status.QUEUED: Step.SUBMIT, Status.RUNNING: Step.CHECK,
                   Status.EVALUATING: Step.EVALUATE, Status.PROMOTING: Step.PROMOTE}


@dataclass(frozen=True)
class StepMessage:
    model: str
    run_id: str
    step: Step
    poll: int = 0  # checks and promotions: the run's poll count this message expects (older ones are stale)
    otel: dict[str, str] = field(default_factory=dict, compare=False)  # W3C trace context of the sender

    def to_json(self) -> str:
        body = {"model": self.model, "run": self.run_id, "step": self.step.value}
        if self.step in (Step.CHECK, Step.PROMOTE):
            body["poll"] = self.poll
        if self.otel:
            body["otel"] = self.otel
        return json.dumps(body, separators=(",", ":"))

    @classmethod
    def parse(cls, text: str | bytes, expected: Step) -> "StepMessage":
        try:
            body = json.loads(text)
            message = cls(str(body["model"]), str(body["run"]), Step(body.get("step", expected.value)),
                          int(body.get("poll", 0)), _carrier(body.get("otel")))
        except (ValueError, KeyError, TypeError) as e:
            raise BadMessage(f"not a {expected.value} step message ({e.__class__.__name__}): {str(text)[:200]!r}")
        if message.step is not expected:
            raise BadMessage(f"a {message.step.value} message arrived on the {expected.queue} queue")
        return message


def _carrier(value) -> dict[str, str]:
    """The trace headers of a message, if they look like W3C trace context (anything else is ignored)."""
    if not isinstance(value, dict):
        return {}
    return {k: v for k, v in value.items() if k in ("traceparent", "tracestate") and isinstance(v, str)
            and len(v) <= 512}


class StepQueues:
    """Sends step messages, base64-encoded like the host expects, with an optional initial invisibility."""

    def __init__(self, storage: Storage):
        self.clients = {step: storage.queue(step.queue) for step in Step}

    def ensure(self) -> None:
        for client in self.clients.values():
            try:
                client.create_queue()
            except ResourceExistsError:
                pass

    def send(self, message: StepMessage, delay: float = 0) -> None:
        if not message.otel:
            message = replace(message, otel=telemetry.carrier())
        self.clients[message.step].send_message(message.to_json(), visibility_timeout=visibility_timeout(delay))

    def send_for(self, model: str, run_id: str, status: Status, *, poll: int = 0, delay: float = 0) -> bool:
        """Enqueue whatever step a run in `status` needs; False when that status needs none."""
        step = STEP_FOR_STATUS.get(status)
        if step is None:
            return False
        self.send(StepMessage(model, run_id, step, poll), delay)
        return True
