"""A run's life around the model row: start (dedup), admission (one active run), ending, cancellation."""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import timedelta

from . import pinning, serving, telemetry
from .context import Context
from .events import outbox
from .errors import Conflict, ConcurrentUpdate, RetrainError, UnusableModel
from .models import ModelState
from .events.model import run_event
from .runs import DataRef, Run, Status, Trigger, iso, run_id_for

log = logging.getLogger("retrain")


@dataclass(frozen=True)
class StartResult:
    run: Run
    created: bool  # False: this data was seen before, and this is the run it already has

    @property
    def message(self) -> str:
        if not self.created:
            return f"this data already has run {self.run.run_id} ({self.run.status.value}): {self.run.reason}"
        return f"run {self.run.run_id} {self.run.status.value}: {self.run.reason}"


def start(ctx: Context, model: str, data: DataRef, trigger: Trigger, *,
          state: ModelState | None = None) -> StartResult:
    """Create the run for (model, blob, ETag) once, then admit it; safe to call any number of times.

    `state` is the model row if the caller just read it.
    """
    with telemetry.run_span("retrain.run.start", model=model, trigger=trigger.value, data=data.path):
        return _start(ctx, model, data, trigger, state)


def _start(ctx: Context, model: str, data: DataRef, trigger: Trigger, state: ModelState | None) -> StartResult:
    now = ctx.clock()
    # A pending run may wait for the active one (itself bounded by the timeout); admission resets the clock.
    run = Run(model=model, run_id=run_id_for(model, data), trigger=trigger, data=data, status=Status.PENDING,
              reason="waiting to start", created_at=iso(now), deadline=iso(now + 2 * ctx.settings.run_timeout),
              next_action_at=iso(now), step_times={Status.PENDING.value: iso(now)},
              trace_id=telemetry.current_trace_id())
    run, created = ctx.runs.create(run)
    if run.status is Status.PENDING:
        run = admit(ctx, run, state=state)
    log.info("model=%s run=%s trigger=%s data=%s created=%s status=%s", model, run.run_id, trigger.value,
             data.path, created, run.status.value)
    return StartResult(run, created)


def admit(ctx: Context, run: Run, *, state: ModelState | None = None) -> Run:
    """Make a pending run the model's active run if it is free, else its pending run (latest data wins)."""
    verdict: dict[str, str | None] = {}

    def change(m: ModelState) -> ModelState | None:
        verdict.clear()
        if m.active_run == run.run_id:
            verdict["role"] = "active"
            return None
        other = ctx.runs.find(m.name, m.pending_run) if m.pending_run not in (None, run.run_id) else None
        newer = other is not None and other.status is Status.PENDING and other.created_at > run.created_at
        if m.active_run is None or is_finished(ctx, m.name, m.active_run):
            verdict["role"] = "active"
            if other and not newer:  # an older pending run would only train on older data
                verdict["displaces"] = other.run_id
            return replace(m, active_run=run.run_id, pending_run=other.run_id if newer else None)
        if m.pending_run == run.run_id:
            verdict["role"] = "pending"
            verdict["active"] = m.active_run
            return None
        if newer:
            verdict["role"] = "superseded"
            verdict["by"] = other.run_id
            return None
        verdict["role"] = "pending"
        verdict["displaces"] = m.pending_run
        verdict["active"] = m.active_run
        return replace(m, pending_run=run.run_id)

    ctx.models.update(run.model, change, current=state)
    role = verdict["role"]
    if role == "superseded":
        return _supersede(ctx, run, by=verdict["by"]) or ctx.runs.get(run.model, run.run_id)
    if verdict.get("displaces"):
        displaced = ctx.runs.find(run.model, verdict["displaces"])
        if displaced:
            _supersede(ctx, displaced, by=run.run_id)
    if role == "pending":
        return _save_quietly(ctx, replace(run, reason=f"waiting for run {verdict['active']} to end "
                                                      "(newer data replaces this)"))
    return _queue(ctx, run)


def _queue(ctx: Context, run: Run) -> Run:
    """Admitted: the run's own deadline starts now."""
    return enter(ctx, run, Status.QUEUED, "submitting the training job",
                 deadline=iso(ctx.clock() + ctx.settings.run_timeout))


def enter(ctx: Context, run: Run, status: Status, reason: str, *, delay: float = 0, strict: bool = False,
          **changes) -> Run:
    """Move a run to a working status and enqueue the step it needs; a lost race leaves the winner's state.

    `strict`: a lost race raises ConcurrentUpdate instead (a person's action must learn that it lost).
    """
    now = ctx.clock()
    moved = run.moved(status, reason, at=now, next_action_at=iso(now + timedelta(seconds=delay)), **changes)
    try:
        saved = ctx.runs.save(moved)
    except ConcurrentUpdate:
        if strict:
            raise
        log.info("run=%s: another worker moved it first; leaving it", run.run_id)
        return ctx.runs.get(run.model, run.run_id)
    with telemetry.joined(saved.trace_id):  # a run admitted by another run's step keeps its own trace
        ctx.queues.send_for(saved.model, saved.run_id, saved.status, poll=saved.polls, delay=delay)
    telemetry.outcome(saved.status.value)
    return saved


def finish(ctx: Context, run: Run, status: Status, reason: str, *, release_model: bool = True,
           **changes) -> Run:
    """The one way out of a run: end it (If-Match) with its run-ended record, then free its model.

    `RunStore.save` refuses a terminal status, so every ending comes through here (or `finish_new`
    for a run that is born ended) and writes exactly one record, in the same transaction.
    `release_model=False` where the caller already moved the model's pointers past the run.
    """
    assert status.terminal, status
    saved = ctx.runs.end(run.moved(status, reason, at=ctx.clock(), next_action_at="", **changes),
                         outbox=outbox.for_run)
    log.info("model=%s run=%s ended %s: %s", saved.model, saved.run_id, status.value, reason)
    pinning.unpin(ctx, saved)
    announce(ctx, saved)
    if release_model:
        release(ctx, saved.model, saved.run_id)
    return saved


def finish_new(ctx: Context, run: Run, status: Status, reason: str) -> tuple[Run, bool]:
    """A run that ends as it is created (data that cannot be used): stored ended with its record; (run, created)."""
    assert status.terminal, status
    ended = run.moved(status, reason, at=ctx.clock(), next_action_at="", updated_at=iso(ctx.clock()))
    saved, created = ctx.runs.create(ended, outbox=outbox.for_run)
    if created:
        log.info("model=%s run=%s ended %s: %s", saved.model, saved.run_id, status.value, reason)
        announce(ctx, saved)
    return saved, created


def announce(ctx: Context, run: Run) -> None:
    """The run's change is written with its event (outbox): hand the event to the sender, count the outcome."""
    outbox.announce(ctx, run.model, run_event(run))
    if run.terminal:
        telemetry.run_ended(run.model, run.status.value)
    telemetry.outcome(run.status.value)


def release(ctx: Context, model: str, run_id: str) -> None:
    """If `run_id` holds the model's active slot, hand it to the pending run and start that one."""
    handed: dict[str, str | None] = {}

    def change(m: ModelState) -> ModelState | None:
        handed.clear()
        if m.pending_run == run_id:  # a pending run that ended (cancelled, expired) gives up its place
            return replace(m, pending_run=None)
        if m.active_run != run_id:
            return None
        handed["next"] = m.pending_run
        return replace(m, active_run=m.pending_run, pending_run=None)

    try:
        ctx.models.update(model, change)
    except UnusableModel as e:  # a stale pointer to an ended run blocks nothing (see is_finished)
        log.warning("model %r not released from run %s: %s", model, run_id, e)
        return
    nxt = handed.get("next")
    if nxt:
        run = ctx.runs.find(model, nxt)
        if run and run.status is Status.PENDING:
            _queue(ctx, run)


def time_out(ctx: Context, run: Run) -> Run:
    """End a run past its deadline: a waiting approval is rejected, anything else fails (its job cancelled)."""
    if run.status is Status.AWAITING_APPROVAL:
        return finish(ctx, run, Status.REJECTED, f"approval expired at {run.approval_expires_at}: nobody "
                      "approved the promotion in time")
    job_live = bool(run.job_id) and run.status in (Status.QUEUED, Status.RUNNING)
    if job_live:
        cancel_job_quietly(ctx, model=run.model, job_id=run.job_id)
    minutes = ctx.settings.run_timeout.total_seconds() / 60
    return finish(ctx, run, Status.FAILED, f"timed out: not finished within {minutes:g} minutes (deadline "
                  f"{run.deadline}) while {run.status.value}"
                  + ("; its training job was cancelled" if job_live else "")
                  + ("; endpoints updated so far are listed in the run (retry to finish)"
                     if run.status is Status.PROMOTING else ""))


def cancel_job_quietly(ctx: Context, *, model: str, job_id: str) -> None:
    """Best effort: a job that cannot be cancelled now ends on its own; its run is already decided."""
    try:
        ctx.training(ctx.models.get(model).definition).cancel(job_id)
    except (RetrainError, OSError) as e:
        log.warning("could not cancel training job %s: %s", job_id, e)


def _because(comment: str) -> str:
    return f": {comment}" if comment else ""


def cancel(ctx: Context, model: str, run_id: str, *, by: str = "api", comment: str = "") -> Run:
    """Stop a run that has not started changing endpoints; its BES job is cancelled too."""
    run = ctx.runs.get(model, run_id)
    if run.terminal:
        raise Conflict(f"run {run_id} already ended ({run.status.value}): {run.reason}")
    if run.status is Status.PROMOTING:
        raise Conflict(f"run {run_id} is updating endpoints and cannot be cancelled now; "
                       "roll back after it ends instead")
    if run.job_id:
        cancel_job_quietly(ctx, model=model, job_id=run.job_id)
    try:
        return finish(ctx, run, Status.CANCELLED, f"cancelled by {by}{_because(comment)}", decided_by=by,
                      decision_comment=comment)
    except ConcurrentUpdate:
        raise _lost_race(ctx, model, run_id, "cancelling") from None


def _supersede(ctx: Context, run: Run, *, by: str) -> Run | None:
    """A pending run replaced by newer data; the model row already points past it."""
    if run.status is not Status.PENDING:
        return None
    try:
        return finish(ctx, run, Status.SUPERSEDED, f"newer data arrived (run {by}) before this run started",
                      release_model=False)
    except ConcurrentUpdate:
        return None


def _save_quietly(ctx: Context, run: Run) -> Run:
    try:
        return ctx.runs.save(run)
    except ConcurrentUpdate:
        return ctx.runs.get(run.model, run.run_id)


def is_finished(ctx: Context, model: str, run_id: str) -> bool:
    """A stale active pointer (its run ended or vanished) does not block the model."""
    run = ctx.runs.find(model, run_id)
    return run is None or run.terminal or run.status is Status.AWAITING_APPROVAL


def approve(ctx: Context, model: str, run_id: str, *, by: str, comment: str = "") -> Run:
    """A person lets a run that passed the gate go on to promotion."""
    run = _awaiting(ctx, model, run_id, "approved")
    try:
        return enter(ctx, replace(run, deadline=iso(ctx.clock() + ctx.settings.run_timeout)), Status.PROMOTING,
                     f"approved by {by}{_because(comment)}; updating endpoints", decided_by=by,
                     decision_comment=comment, strict=True)
    except ConcurrentUpdate:
        raise _lost_race(ctx, model, run_id, "approving") from None


def reject(ctx: Context, model: str, run_id: str, *, by: str, comment: str = "") -> Run:
    """A person turns down a run that passed the gate."""
    run = _awaiting(ctx, model, run_id, "rejected")
    try:
        return finish(ctx, run, Status.REJECTED, f"rejected by {by} during approval{_because(comment)}", decided_by=by,
                      decision_comment=comment)
    except ConcurrentUpdate:
        raise _lost_race(ctx, model, run_id, "rejecting") from None


def retry_promotion(ctx: Context, model: str, run_id: str, *, by: str, comment: str = "") -> Run:
    """Try the endpoints that failed again (the ones already updated are left alone)."""
    run = ctx.runs.get(model, run_id)
    failed = [name for name, outcome in run.endpoints.items() if not outcome.get("ok")]
    if run.status is not Status.FAILED or not failed:
        raise Conflict(f"run {run_id} is {run.status.value}; only a run whose promotion failed on some "
                       "endpoint can be retried")
    try:
        return enter(ctx, replace(run, deadline=iso(ctx.clock() + ctx.settings.run_timeout)), Status.PROMOTING,
                     f"retrying endpoint(s) {', '.join(failed)} (asked by {by}{_because(comment)})", error="",
                     endpoints=serving.reopen(run.endpoints), strict=True)
    except ConcurrentUpdate:
        raise _lost_race(ctx, model, run_id, "retrying") from None


def _lost_race(ctx: Context, model: str, run_id: str, doing: str) -> Conflict:
    """The 409 for a person whose action lost a race: what the run became instead, and who did it."""
    now = ctx.runs.get(model, run_id)
    who = f" by {now.decided_by}" if now.decided_by and now.status.terminal else ""
    return Conflict(f"run {run_id} changed while {doing}: it is now {now.status.value}{who} ({now.reason}); "
                    "nothing was done")


def _awaiting(ctx: Context, model: str, run_id: str, verb: str) -> Run:
    run = ctx.runs.get(model, run_id)
    if run.status is not Status.AWAITING_APPROVAL:
        raise Conflict(f"run {run_id} is {run.status.value}; only a run awaiting approval can be {verb}")
    return run
