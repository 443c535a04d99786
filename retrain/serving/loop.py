"""The loop over a model's endpoints, written once: promotion, the retry of a failed promotion, and rollback.

Each endpoint's record on the run (or the rollback) is the state its target saved: `ok` once done,
`waiting` with `wait` seconds while a rollout is under way, `error` when it failed (`transient` if
only for now). Endpoints already done are never called again, so a redelivered message changes
nothing twice; one that failed for good in this attempt waits for a retry (`reopen`).
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable

from retrain.errors import Conflict, PermanentServiceError, SettingsError, TransientServiceError
from retrain.runs import iso

from .base import Progress, Release
from .kinds import kind_of

log = logging.getLogger("retrain")
LOCK_BUSY_WAIT = 5.0  # seconds before trying an endpoint another change holds


@dataclass
class Pass:
    """One pass over the endpoints: every record, and who is waiting, failed, or failed only for now."""

    outcomes: dict[str, dict]
    waiting: dict[str, float] = field(default_factory=dict)  # name -> seconds until its next call
    failed: list[str] = field(default_factory=list)
    transient: list[str] = field(default_factory=list)

    @property
    def wait(self) -> float | None:
        return min(self.waiting.values()) if self.waiting else None

    @property
    def updated(self) -> list[str]:
        return [n for n, o in self.outcomes.items() if o.get("ok")]


def advance(ctx, specs: Iterable, release: Callable[[object], Release], outcomes: dict[str, dict], *,
            restoring: bool = False, arm_timeout: float = 300.0, rollout=None) -> Pass:
    """Move every endpoint not yet done one call on; `release(spec)` is what that endpoint should serve."""
    result = Pass(dict(outcomes))
    for spec in specs:
        record = result.outcomes.get(spec.name, {})
        if record.get("ok") or record.get("final"):
            continue  # done by an earlier delivery, or failed for good in this attempt
        state = {k: v for k, v in record.items() if k not in ("ok", "kind", "error", "transient", "waiting",
                                                             "wait", "at", "final")}
        progress = _call(ctx, spec, release(spec), state, restoring, arm_timeout, rollout)
        at = iso(ctx.clock())
        base = {**progress.state, "kind": spec.kind, "at": at}
        if progress.done:
            result.outcomes[spec.name] = {"ok": True, **base}
        elif progress.failed is not None:
            result.outcomes[spec.name] = {"ok": False, **base, "error": progress.failed[:1000],
                                          **({"transient": True} if progress.transient else {"final": True})}
            (result.transient if progress.transient else result.failed).append(spec.name)
        else:
            wait = max(0.0, float(progress.wait or 0.0))
            result.outcomes[spec.name] = {"ok": False, **base, "waiting": True, "wait": wait}
            result.waiting[spec.name] = wait
    return result


def drive(ctx, specs: list, release: Callable[[object], Release], outcomes: dict[str, dict], *,
          budget: float, restoring: bool = False, arm_timeout: float = 300.0, rollout=None) -> Pass:
    """`advance` until nothing waits or `budget` seconds are spent (an HTTP call, such as a rollback, waits in place)."""
    deadline = time.monotonic() + budget
    kw = dict(restoring=restoring, arm_timeout=arm_timeout, rollout=rollout)
    result = advance(ctx, specs, release, outcomes, **kw)
    while result.waiting and time.monotonic() + result.wait < deadline:
        time.sleep(result.wait)
        result = advance(ctx, specs, release, result.outcomes, **kw)
    return result


def reopen(outcomes: dict[str, dict]) -> dict[str, dict]:
    """The records for a retry: endpoints that failed for good in the last attempt are tried again."""
    return {name: {k: v for k, v in o.items() if k != "final"} for name, o in outcomes.items()}


def endpoint_lock(spec) -> str:
    """The name of the lease that serialises changes to one endpoint (whichever model changes it)."""
    return "~endpoint-" + hashlib.sha256(spec.url.split("?")[0].lower().encode()).hexdigest()[:32]


def _call(ctx, spec, release: Release, state: dict, restoring: bool, arm_timeout: float, rollout) -> Progress:
    try:
        target = ctx.serving(spec, arm_timeout=arm_timeout, rollout=rollout)
        if not kind_of(spec.kind).serialised:
            return (target.restore if restoring else target.promote)(release, state)
        from retrain import model_lock  # (model_lock needs the context, which needs the kinds)

        try:
            with model_lock.holding(ctx, endpoint_lock(spec), "change"):
                return (target.restore if restoring else target.promote)(release, state)
        except Conflict:
            log.info("endpoint %s: another change holds it; trying again in %.0fs", spec.name, LOCK_BUSY_WAIT)
            return Progress(state, wait=LOCK_BUSY_WAIT)
    except TransientServiceError as e:
        return Progress(state, failed=str(e), transient=True)
    except (PermanentServiceError, SettingsError) as e:
        return Progress(state, failed=str(e))
