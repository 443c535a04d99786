"""What every kind of serving endpoint offers the chain: advance one phase at a time, say what it serves, restore.

A target is driven by the loop (`retrain.serving.loop`): each call is idempotent, gets the state the
run saved for this endpoint, and answers a `Progress`: the new state to save and whether the
endpoint is done, needs another call after `wait` seconds (a delayed queue message, never a
sleeping function), or failed with a reason a person can read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Protocol

from retrain.locations import BlobLocation


@dataclass(frozen=True)
class Release:
    """What a promotion or rollback wants served: a run's trained model, in the form its backend made it."""

    run_id: str
    blob: BlobLocation | None = None  # Studio classic: the .ilearner, located with a read SAS
    job_output: str | None = None  # Azure ML: azureml://jobs/<job>/outputs/<name>
    model_id: str | None = None  # Azure ML: a registered model version's ARM id, when one exists
    record: Mapping[str, Any] = field(default_factory=dict)  # restoring: this endpoint's record of the earlier promotion


@dataclass(frozen=True)
class Progress:
    """One call's answer: the state to save, and done / call again in `wait` seconds / failed (why)."""

    state: dict
    done: bool = False
    wait: float | None = None
    failed: str | None = None
    transient: bool = False  # failed only for now (a service error): the promotion may be retried as a whole

    @property
    def waiting(self) -> bool:
        return not self.done and self.failed is None


class ServingTarget(Protocol):
    """One endpoint of one kind."""

    def promote(self, release: Release, state: dict) -> Progress:
        """Move this endpoint one phase on towards serving `release` (state: what earlier calls saved)."""
        ...

    def restore(self, release: Release, state: dict) -> Progress:
        """Move it back to what it served for `release` (a rollback: fast where the kind allows)."""
        ...

    def served(self) -> str | None:
        """What it serves now (a model uri or id, no credentials), None if it reports nothing."""
        ...


@dataclass(frozen=True)
class EndpointKind:
    """A kind of endpoint, in one place: its definition fields, validation, hosts, and target."""

    name: str
    fields: frozenset[str]
    parse: Callable[[dict, str, list[str]], Any]  # (item, where, problems) -> spec (problems appended)
    target: Callable[..., ServingTarget]  # (spec, deps) -> target
    service_kind: str  # the outbound rule (retrain.outbound) its URL is checked against
    serialised: bool = False  # changes to one endpoint are made one at a time (a blob lease per endpoint)


@dataclass(frozen=True)
class ServingDeps:
    """What a target may use: secrets by setting name, the ARM identity, HTTP, the clock, the rollout plan."""

    secret: Callable[[str], str]
    credential: Callable[[], Any]
    session: Any
    retry: Any
    clock: Callable[[], Any]
    arm_timeout: float = 300.0
    rollout: Any = None  # retrain.serving.rollout.RolloutPolicy of the model
    allowed: Callable[[str, str, str], None] = lambda url, kind, where: None  # outbound.require, for URLs a service hands back
    azureml: Callable[..., Any] | None = None  # (WorkspaceId, **ArmClient options) -> retrain.azureml.arm.ArmClient
    documents: Any = None  # retrain.serving.documents.BlobDocuments: recorded deployment settings (None: inline)
