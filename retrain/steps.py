"""The chain's four queue-triggered steps: submit, check, evaluate, promote.

Each step loads the run, drops the message unless the run is at this step, does its side effect
idempotently, writes the new state with If-Match (a lost race drops the message), then enqueues the
next step. Transient service errors re-enqueue the same step with back-off, within a budget.
"""

from __future__ import annotations

import logging
import re
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Callable

from . import chain, pinning, serving, telemetry
from .artifacts import artifact_from_record
from .context import Context
from .errors import (ConcurrentUpdate, DataNotFound, JobNotFound, PermanentServiceError,
                     SettingsError, TransientServiceError, UnknownModel, UnusableModel)
from .events import outbox
from .job_failures import MAX_ATTEMPTS
from .models import ChampionRecord, ModelState
from .policy import decide
from .promotions import Promotion, Reason
from .queues import BadMessage, Step, StepMessage
from .runs import Run, Status, iso, parse_iso
from .training import EvaluationUnusable, JobLost, Phase

log = logging.getLogger("retrain")

MIN_SAS = timedelta(minutes=5)  # an endpoint needs a little time to read the model it is handed


def handle(ctx: Context, step: Step, body: str | bytes) -> None:
    """Entry point for a step's queue message; a message this app did not write is logged and dropped."""
    try:
        message = StepMessage.parse(body, step)
    except BadMessage as e:
        log.error("%s: %s; dropped", step.queue, e)
        return
    HANDLERS[step](ctx, message)


def submit_job(ctx: Context, message: StepMessage) -> None:
    _run_step(ctx, message, Status.QUEUED, _submit)


def check_job(ctx: Context, message: StepMessage) -> None:
    _run_step(ctx, message, Status.RUNNING, _check)


def evaluate_run(ctx: Context, message: StepMessage) -> None:
    _run_step(ctx, message, Status.EVALUATING, _evaluate)


def promote_model(ctx: Context, message: StepMessage) -> None:
    _run_step(ctx, message, Status.PROMOTING, _promote)


HANDLERS = {Step.SUBMIT: submit_job, Step.CHECK: check_job, Step.EVALUATE: evaluate_run,
            Step.PROMOTE: promote_model}


def _run_step(ctx: Context, message: StepMessage, expected: Status,
              body: Callable[[Context, Run, ModelState, StepMessage], None]) -> None:
    run = ctx.runs.find(message.model, message.run_id)
    if run is None:
        log.warning("%s: run %s of model %r does not exist; message dropped", message.step.value,
                    message.run_id, message.model)
        return
    if run.status is not expected:
        log.info("%s: run %s is %s, not %s; message dropped", message.step.value, run.run_id,
                 run.status.value, expected.value)
        return
    if message.step in (Step.CHECK, Step.PROMOTE) and message.poll != run.polls:
        log.info("%s: run %s expects poll %d, message has %d; stale message dropped", message.step.value,
                 run.run_id, run.polls, message.poll)
        return
    with telemetry.run_span(f"retrain.step.{message.step.value}", model=run.model, run_id=run.run_id,
                            headers=message.otel, trace_id=run.trace_id, step=message.step.value,
                            job_id=run.job_id, attempt=run.attempt):
        _step_body(ctx, run, message, expected, body)


def _step_body(ctx: Context, run: Run, message: StepMessage, expected: Status,
               body: Callable[[Context, Run, ModelState, StepMessage], None]) -> None:
    try:
        model = ctx.models.get(run.model)
        if ctx.clock() > parse_iso(run.deadline) and expected is not Status.PROMOTING:
            chain.time_out(ctx, run)
            return
        body(ctx, run, model, message)
    except ConcurrentUpdate:
        log.info("%s: run %s changed under this step; another delivery is handling it", message.step.value,
                 run.run_id)
    except UnusableModel as e:  # left as it is: a PUT of the definition lets the sweeper re-drive it
        log.warning("%s: run %s waits: %s", message.step.value, run.run_id, e)
    except TransientServiceError as e:
        _retry_later(ctx, run, message, e)
    except (PermanentServiceError, SettingsError, UnknownModel) as e:
        _fail(ctx, run, f"{message.step.value} failed: {e}", error=str(e))


def _retry_later(ctx: Context, run: Run, message: StepMessage, error: TransientServiceError) -> None:
    run = ctx.runs.get(run.model, run.run_id)  # the step may have saved before the error
    failures = run.transient_failures + 1
    if failures > ctx.settings.transient_retry_limit:
        _fail(ctx, run, f"{message.step.value} failed: the service kept failing ({failures} tries): {error}",
              error=str(error))
        return
    delay = error.retry_after if error.retry_after is not None else min(ctx.settings.check_max_delay, 2.0 ** failures)
    try:
        saved = ctx.runs.save(replace(run, transient_failures=failures,
                                      next_action_at=iso(ctx.clock() + timedelta(seconds=delay))))
    except ConcurrentUpdate:
        return  # another delivery moved the run on; it sends whatever comes next
    ctx.queues.send(replace(message, poll=saved.polls, otel={}), delay)
    telemetry.transient_retry(run.model, message.step.value)
    telemetry.outcome("retry")
    log.warning("%s: run %s transient error (%d/%d), retrying in %.0fs: %s", message.step.value, run.run_id,
                failures, ctx.settings.transient_retry_limit, delay, error)


def _fail(ctx: Context, run: Run, reason: str, **changes) -> None:
    """Fail the run as it is now, unless it has moved on or ended meanwhile."""
    current = ctx.runs.get(run.model, run.run_id)
    if current.status is not run.status:
        return
    try:
        chain.finish(ctx, current, Status.FAILED, reason, **changes)
    except ConcurrentUpdate:
        log.info("run %s changed while failing it; leaving the newer state", run.run_id)


# --- submit --------------------------------------------------------------------------------

def _submit(ctx: Context, run: Run, model: ModelState, message: StepMessage) -> None:
    service = ctx.training(model.definition)
    if not run.job_id:
        run = _pinned(ctx, run)
        if run is None:
            return
        job = service.submit(run, model)
        try:
            run = ctx.runs.save(replace(run, job_id=job.job_id, outputs=job.outputs, baseline_run=job.baseline_run,
                                        reason=f"training job {job.job_id} submitted"))
        except ConcurrentUpdate:
            if not job.by_name:  # another delivery submitted its own job first; this one must not run
                chain.cancel_job_quietly(ctx, model=model.name, job_id=job.job_id)
            raise
    service.start(run)  # idempotent: a job already started is not an error
    delay = ctx.settings.check_initial_delay
    chain.enter(ctx, run, Status.RUNNING, f"training job {run.job_id} is running", delay=delay,
                job_started=True, polls=0)


def _pinned(ctx: Context, run: Run) -> Run | None:
    """The run with its blob version pinned, or None when that version is gone (the run is ended, saying why)."""
    try:
        return pinning.pin(ctx, run)
    except pinning.DataOverwritten as e:
        chain.finish(ctx, run, Status.SUPERSEDED, str(e))
    except DataNotFound as e:
        chain.finish(ctx, run, Status.FAILED, str(e))
    return None


# --- check ---------------------------------------------------------------------------------

def _check(ctx: Context, run: Run, model: ModelState, message: StepMessage) -> None:
    try:
        status = ctx.training(model.definition).status(run)
    except JobLost as e:
        if run.attempt >= MAX_ATTEMPTS:
            raise JobNotFound(str(e), status=404) from None
        _resubmit(ctx, run, str(e))
        return
    if status.phase is not Phase.ACTIVE:
        _job_ended(ctx, run, status.phase.value)
    if status.phase is Phase.COMPLETED:
        chain.enter(ctx, run, Status.EVALUATING, f"training job {run.job_id} finished; evaluating")
    elif status.phase is Phase.FAILED:
        failure = status.failure
        if failure.retryable and run.attempt < MAX_ATTEMPTS:
            _resubmit(ctx, run, f"training job {run.job_id} failed without a data error ({failure.text})")
            return
        reason = f"the training job failed: {failure.text}"
        if failure.retryable:
            reason = (f"the training job failed {run.attempt} times without a data error; "
                      f"the last time: {failure.text}")
        chain.finish(ctx, run, Status.FAILED, reason, error=status.details or "")
    elif status.phase is Phase.CANCELLED:
        chain.finish(ctx, run, Status.CANCELLED, f"training job {run.job_id} was cancelled in the ML service")
    else:
        delay = min(ctx.settings.check_max_delay, ctx.settings.check_initial_delay * 2 ** min(run.polls + 1, 20))
        delay = max(delay, 1.0)
        saved = ctx.runs.save(replace(run, polls=run.polls + 1, transient_failures=0,
                                      next_action_at=iso(ctx.clock() + timedelta(seconds=delay)),
                                      reason=f"training job {run.job_id} is {_spaced(status.state)}"))
        ctx.queues.send(StepMessage(run.model, run.run_id, Step.CHECK, saved.polls), delay)
        telemetry.outcome("polling")


def _spaced(state: str) -> str:
    """`NotResponding` -> `not responding` (a reason reads as a sentence)."""
    return re.sub(r"(?<=[a-z])(?=[A-Z])", " ", state).lower()


def _job_ended(ctx: Context, run: Run, outcome: str) -> None:
    started = parse_iso(run.step_times.get(Status.RUNNING.value))
    if started is not None:
        telemetry.job_ended(run.model, (ctx.clock() - started).total_seconds(), outcome)


def _resubmit(ctx: Context, run: Run, why: str) -> None:
    """An interrupted or lost job: submit again to fresh outputs, after a back-off that grows per attempt."""
    delay = min(ctx.settings.check_max_delay, max(1.0, ctx.settings.check_initial_delay) * 2 ** (run.attempt - 1))
    chain.enter(ctx, run, Status.QUEUED, f"{why}; resubmitting (attempt {run.attempt + 1} of {MAX_ATTEMPTS})",
                delay=delay, attempt=run.attempt + 1, job_id="", job_started=False, outputs={})


# --- evaluate ------------------------------------------------------------------------------

def _evaluate(ctx: Context, run: Run, model: ModelState, message: StepMessage) -> None:
    try:
        evaluation = ctx.training(model.definition).evaluation(run, model)
    except EvaluationUnusable as e:
        chain.finish(ctx, run, Status.FAILED, str(e), error=str(e))
        return
    champion = model.champion
    if evaluation.baseline is not None and (not champion or run.baseline_run != champion.run_id):
        evaluation = replace(evaluation, baseline=None)  # the baseline scored a model that is no longer champion
    decision = decide(model.definition.policy, evaluation, champion.as_policy_champion() if champion else None)
    record = decision.to_record()
    if not decision.passed:
        chain.finish(ctx, run, Status.REJECTED, decision.summary, metrics=evaluation.challenger, decision=record)
        return
    approval = model.definition.policy.approval
    if approval.required:
        expires = ctx.clock() + timedelta(hours=approval.expires_after_hours)
        waiting = ctx.runs.save(run.moved(
            Status.AWAITING_APPROVAL, f"{decision.summary} Waiting for approval until {iso(expires)}.",
            at=ctx.clock(), metrics=evaluation.challenger, decision=record, approval_expires_at=iso(expires),
            deadline=iso(expires), next_action_at=""), outbox=outbox.for_run)
        chain.announce(ctx, waiting)
        chain.release(ctx, waiting.model, waiting.run_id)
        _supersede_waiting(ctx, waiting)
        return
    chain.enter(ctx, run, Status.PROMOTING, f"{decision.summary} Updating endpoints.",
                metrics=evaluation.challenger, decision=record)


def model_sas_expiry(ctx: Context, run: Run) -> datetime:
    """The new model's read SAS for endpoints: MODEL_SAS_MINUTES, never past the run's deadline (but >= 5 min)."""
    now = ctx.clock()
    return min(now + ctx.settings.model_sas_lifetime, max(parse_iso(run.deadline), now + MIN_SAS))


def _supersede_waiting(ctx: Context, newer: Run) -> None:
    """A newer passing run replaces older ones still waiting for approval."""
    for older in ctx.runs.list(newer.model, limit=1000, status=Status.AWAITING_APPROVAL):
        if older.run_id != newer.run_id and older.created_at <= newer.created_at:
            try:
                chain.finish(ctx, older, Status.SUPERSEDED, f"a newer run ({newer.run_id}) passed the gate "
                                                            "while this one waited for approval",
                             release_model=False)
            except ConcurrentUpdate:
                pass


# --- promote -------------------------------------------------------------------------------

def _promote(ctx: Context, run: Run, model: ModelState, message: StepMessage) -> None:
    target = artifact_from_record(run.outputs["model"])
    release = serving.release(ctx, run.run_id, target, expiry=model_sas_expiry(ctx, run))
    done = serving.advance(ctx, model.definition.endpoints, lambda spec: release, run.endpoints,
                           rollout=model.definition.rollout)
    outcomes = done.outcomes
    if done.waiting:  # a rollout under way: the next phase is a delayed message, never a sleep
        delay = done.wait
        saved = ctx.runs.save(replace(run, endpoints=outcomes, polls=run.polls + 1, transient_failures=0,
                                      next_action_at=iso(ctx.clock() + timedelta(seconds=delay)),
                                      reason=serving.progress_reason(outcomes, done)))
        ctx.queues.send(StepMessage(run.model, run.run_id, Step.PROMOTE, saved.polls), delay)
        telemetry.outcome("polling")
        return
    failed = done.failed + done.transient
    if failed:
        run = ctx.runs.save(replace(run, endpoints=outcomes))
        if done.transient and not done.failed and run.transient_failures < ctx.settings.transient_retry_limit:
            raise TransientServiceError(f"endpoint(s) {', '.join(done.transient)} unavailable; will retry",
                                        retry_after=None)
        updated = done.updated
        chain.finish(ctx, run, Status.FAILED,
                     "promotion failed on endpoint(s) " + ", ".join(
                         f"{n} ({outcomes[n]['error'][:200]})" for n in failed)
                     + (f"; updated: {', '.join(updated)}" if updated else "")
                     + "; the champion did not change",
                     error="; ".join(f"{n}: {outcomes[n]['error']}" for n in failed))
        return
    target = serving.served_artifact(target, outcomes)
    previous = model.champion.run_id if model.champion else None
    now = iso(ctx.clock())
    reason = Reason.APPROVAL if run.decided_by else Reason.POLICY
    ctx.promotions.append(Promotion(model=run.model, key=run.run_id, from_run=previous, to_run=run.run_id,
                                    location=target, reason=reason, at=now, by=run.decided_by or "policy",
                                    note=(run.decision or {}).get("summary", ""), endpoints=outcomes))
    champion = ChampionRecord(run.run_id, target, dict(run.metrics), now)
    ctx.models.update(run.model, lambda m: None if m.champion and m.champion.run_id == run.run_id
                      else replace(m, champion=champion), current=model)
    served = f"now serving on {len(outcomes)} endpoint(s)" if outcomes else "no endpoints configured; champion updated"
    chain.finish(ctx, run, Status.PROMOTED, f"promoted: {served}", endpoints=outcomes)
    landed = parse_iso(run.data.last_modified or run.created_at)
    if landed is not None:
        telemetry.promoted(run.model, (ctx.clock() - landed).total_seconds())

