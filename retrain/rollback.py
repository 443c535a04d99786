"""Rollback: point every endpoint back at an earlier model, in one call, with a history row."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, replace

from . import model_lock, serving
from .context import Context
from .events import outbox
from .events.model import rollback_event
from .errors import (Conflict, PermanentServiceError, RollbackFailed, SettingsError,  # noqa: F401 (re-exported)
                     TransientServiceError)
from .models import ChampionRecord
from .promotions import Promotion, Reason
from .runs import Status, iso

log = logging.getLogger("retrain")
ARM_WAIT = 150.0  # seconds per ARM endpoint: the rollback answers over HTTP, which is cut at 230 s


@dataclass(frozen=True)
class RollbackResult:
    promotion: Promotion
    endpoints: dict[str, dict]


def rollback(ctx: Context, model: str, *, to_run: str | None = None, by: str = "api",
             note: str = "", actor: dict | None = None) -> RollbackResult:
    """To the model that served before the current champion, or to a named run that was once promoted.

    One at a time per model: a concurrent call answers 409 instead of writing endpoints and history twice.
    """
    with model_lock.holding(ctx, model, "rollback"):
        return _rollback(ctx, model, to_run=to_run, by=by, note=note, actor=actor)


def _rollback(ctx: Context, model: str, *, to_run: str | None, by: str, note: str,
              actor: dict | None) -> RollbackResult:
    state = ctx.models.get(model)
    promoting = ctx.runs.list(model, limit=1000, status=Status.PROMOTING)
    if promoting:
        raise Conflict(f"run {promoting[0].run_id} is promoting right now; roll back after it ends")
    if state.champion is None:
        raise Conflict(f"model {model!r} has no champion yet: there is nothing to roll back from")
    history = ctx.promotions.history(model)
    target = _target(history, state.champion.run_id, to_run)
    run = ctx.runs.find(model, target.to_run)
    expiry = ctx.clock() + ctx.settings.model_sas_lifetime

    def release_for(spec) -> serving.Release:
        return serving.release(ctx, target.to_run, target.location, expiry=expiry,
                               record=target.endpoints.get(spec.name) or {})

    done = serving.drive(ctx, list(state.definition.endpoints), release_for, {}, budget=ARM_WAIT, restoring=True,
                         arm_timeout=ARM_WAIT, rollout=state.definition.rollout)
    outcomes = {name: {k: v for k, v in o.items() if k not in ("at", "final", "transient")}
                if o.get("ok") else {"ok": False, "kind": o.get("kind"),
                                     "error": o.get("error") or "still in progress when the call's time ran out"}
                for name, o in done.outcomes.items()}
    failed = [name for name, o in outcomes.items() if not o["ok"]]
    if failed:
        raise RollbackFailed(f"rollback to run {target.to_run} failed on endpoint(s) {', '.join(failed)}; the "
                             "champion did not change (endpoints that were updated now serve the earlier model, "
                             "and an ARM service still provisioning is not written again: retry the rollback)",
                             outcomes)
    now = iso(ctx.clock())
    promotion = Promotion(model=model, key=f"rollback-{now[:19].replace(':', '')}-{uuid.uuid4().hex[:6]}",
                          from_run=state.champion.run_id, to_run=target.to_run, location=target.location,
                          reason=Reason.ROLLBACK, at=now, by=by, note=note or f"rolled back by {by}",
                          endpoints=outcomes, actor=actor or {})
    event = rollback_event(model, promotion.key, promotion.from_run, promotion.to_run, now, by, promotion.note)
    ctx.promotions.append(promotion, outbox=[outbox.row(model, event)])
    champion = ChampionRecord(target.to_run, target.location, dict(run.metrics) if run else {}, now)
    ctx.models.update(model, lambda m: replace(m, champion=champion))
    outbox.announce(ctx, model, event, outbox.PROMOTIONS)
    log.info("model=%s rolled back from %s to %s by %s", model, state.champion.run_id, target.to_run, by)
    return RollbackResult(promotion, outcomes)


def _target(history: list[Promotion], current: str, to_run: str | None) -> Promotion:
    if to_run:
        for promotion in history:
            if promotion.to_run == to_run:
                if to_run == current:
                    raise Conflict(f"run {to_run} is already the champion")
                return promotion
        raise Conflict(f"run {to_run} never served as this model's champion; roll back to one of: "
                       + (", ".join(dict.fromkeys(p.to_run for p in history)) or "none"))
    # The newest history row that put something other than the current champion in place.
    earlier = [p for p in history if p.to_run != current]
    served_before = next((p for p in history if p.to_run == current), None)
    if served_before and served_before.from_run:
        earlier = [p for p in history if p.to_run == served_before.from_run] or earlier
    if not earlier:
        raise Conflict("there is no earlier model to roll back to (only one model was ever promoted)")
    return earlier[0]
