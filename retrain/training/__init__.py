"""The training side of the chain behind one small interface, one module per kind of training service.

A kind (`studio`: Azure ML Studio classic BES; `azureml`: Azure Machine Learning v2 jobs) is
registered here with its definition section (fields, validation listing every problem, the
destinations its credentials go to) and how to build its service for a definition. `retrain.steps`
calls the service and never branches on kind.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any, Callable, Protocol

from ..artifacts import Artifact
from ..evaluation import Evaluation
from ..job_failures import JobFailure

if TYPE_CHECKING:  # the service builders take these; importing them here would be circular
    from ..context import Context
    from ..models import ModelState
    from ..runs import Run

DEFAULT_KIND = "studio"


class Phase(str, Enum):
    """Where a job is, as the chain needs it (each kind maps its own states onto these); values are telemetry outcomes."""

    ACTIVE = "active"  # not ended yet (queued, running, paused, not responding...): poll again
    COMPLETED = "finished"
    FAILED = "failed"
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class JobStatus:
    """A job's phase, the service's own state name (for the run's reason) and, when it failed, why."""

    phase: Phase
    state: str  # e.g. "Running", "NotResponding", "Finished"
    failure: JobFailure | None = None
    details: str | None = None  # the service's full failure text (kept in the run's `error`)


@dataclass(frozen=True)
class Submitted:
    """What a submit started: the job's id, the run's output records, the champion run used as baseline."""

    job_id: str
    outputs: dict[str, dict] = field(default_factory=dict)
    baseline_run: str = ""
    by_name: bool = False  # True: a redelivered submit makes the same job (idempotent by name), so never cancel it


class JobLost(Exception):
    """The service does not know the job any more (it may be resubmitted)."""


class EvaluationUnusable(Exception):
    """The finished job's metrics cannot be read; the message says why (the run fails with it)."""


class TrainingService(Protocol):
    """One model's training service; every method is safe to call again after a crash or a redelivery."""

    def submit(self, run: "Run", model: "ModelState") -> Submitted:
        """Create the job for this run's attempt (pinned data, champion as baseline), not necessarily started."""

    def start(self, run: "Run") -> None:
        """Start the submitted job; a job already started is fine."""

    def status(self, run: "Run") -> JobStatus:
        """The job's phase now; JobLost when the service lost it."""

    def cancel(self, job_id: str) -> None:
        """Stop the job; a job unknown or already ended is left alone."""

    def outputs(self, run: "Run") -> dict[str, Artifact]:
        """The run's recorded outputs (the trained model under "model")."""

    def evaluation(self, run: "Run", model: "ModelState") -> Evaluation:
        """The new model's metrics and, if scored on the same hold-out, the baseline's; EvaluationUnusable if unreadable."""


class TrainingConfig(Protocol):
    """A kind's `training` section as parsed (a frozen dataclass per kind)."""

    kind: str

    def to_json(self) -> dict:
        """The section as stored and shown (without `kind`; `training_json` adds it)."""

    def destinations(self) -> list[tuple[str, str, str]]:
        """(field, outbound kind, URL) of every place this section sends a credential or SAS."""

    def key_settings(self) -> list[tuple[str, str]]:
        """(field, app setting name) of every secret this section reads."""

    def policy_problems(self, policy: Any) -> list[str]:
        """What the policy asks for that this training cannot yield (listed at PUT)."""


@dataclass(frozen=True)
class TrainingKind:
    """What a kind is, in one place: its definition section and its service."""

    name: str
    label: str
    parse: Callable[[dict, list[str]], TrainingConfig | None]  # the raw `training` object (problems appended)
    service: Callable[["Context", Any], TrainingService]  # (context, definition) -> the service


KINDS: dict[str, TrainingKind] = {}


def register(kind: TrainingKind) -> None:
    """Declare a kind (each kind's module calls this once, at import)."""
    KINDS[kind.name] = kind


def parse_training(raw: Any, problems: list[str]) -> TrainingConfig | None:
    """The `training` section as its kind's config (`kind` absent means studio); None with problems listed."""
    from . import azureml, studio  # noqa: F401  (each registers its kind)

    if not isinstance(raw, dict):
        problems.append("training: an object; for Studio classic {url, key_setting}, for Azure ML "
                        "{kind: 'azureml', workspace, job, ...}")
        return None
    kind = raw.get("kind", DEFAULT_KIND)
    if kind not in KINDS:
        problems.append(f"training.kind: one of {', '.join(repr(k) for k in sorted(KINDS))}")
        return None
    return KINDS[kind].parse({k: v for k, v in raw.items() if k != "kind"}, problems)


def training_json(config: TrainingConfig) -> dict:
    """A training config as stored and shown: its fields, with `kind` unless it is the default."""
    body = config.to_json()
    return body if config.kind == DEFAULT_KIND else {"kind": config.kind, **body}


def service_for(ctx: "Context", definition: Any) -> TrainingService:
    """The training service of a definition's kind."""
    return KINDS[definition.training.kind].service(ctx, definition)
