"""The safety net: re-drive runs whose next step is overdue, end runs past their deadline, free stuck models.

It reads only each registered model's open rows (`u~`, one key-range query per model, after the model
list) and the runs they name (one read per open run), never the history. A run's ending removes its open
row in the same transaction, so a crash before its model was freed leaves the model pointing at a run
that is not open: the sweeper reads that run and frees the model (no request when nothing is stuck).
An open row left by an older layout's ending is cleared the same way.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace

from . import chain, telemetry
from .context import Context
from .events import sender as events_sender
from .errors import ConcurrentUpdate, RetrainError
from .queues import STEP_FOR_STATUS
from .reconcile import Reconciled, reconcile
from .runs import Run, Status, iso, parse_iso

log = logging.getLogger("retrain")


@dataclass
class SweepReport:
    redriven: list[str] = field(default_factory=list)
    expired: list[str] = field(default_factory=list)
    admitted: list[str] = field(default_factory=list)
    released: list[str] = field(default_factory=list)
    events: int = 0  # outbox events dispatched here because their dispatch message was lost
    reconciled: list[Reconciled] = field(default_factory=list)  # newest data that had no run

    def __str__(self) -> str:
        return (f"re-driven {len(self.redriven)}, expired {len(self.expired)}, admitted {len(self.admitted)}, "
                f"released {len(self.released)}, reconciled {len(self.reconciled)}, events dispatched {self.events}"
                + "".join(f"; {r}" for r in self.reconciled))


def sweep(ctx: Context) -> SweepReport:
    report = SweepReport()
    now = ctx.clock()
    for model in ctx.models.list_all():  # broken ones too: their runs still time out
        open_ids = ctx.runs.open_ids(model.name)
        for run_id in open_ids:
            _sweep_open(ctx, model.name, run_id, now, report)
        for held in {model.active_run, model.pending_run} - {None, "", *open_ids}:
            _free(ctx, model.name, held, report)
    report.reconciled = reconcile(ctx)
    try:
        report.events = events_sender.reconcile(ctx, grace=ctx.settings.sweep_grace)
    except RetrainError as e:
        log.warning("sweeper: events: %s", e)
    if any((report.redriven, report.expired, report.admitted, report.released, report.reconciled, report.events)):
        log.info("sweeper: %s", report)
    return report


def _sweep_open(ctx: Context, model: str, run_id: str, now, report: SweepReport) -> None:
    try:
        run = ctx.runs.find(model, run_id)
        if run is None or run.terminal:  # an open row an older layout's ending left behind
            if run is not None:
                _release(ctx, run, report)
            ctx.runs.forget_open(model, run_id)
            return
        with telemetry.run_span("retrain.sweep", model=model, run_id=run_id, trace_id=run.trace_id):
            _sweep_run(ctx, run, now, report)
    except ConcurrentUpdate:
        pass  # someone is working on it right now
    except RetrainError as e:
        log.warning("sweeper: run %s of %r: %s", run_id, model, e)


def _free(ctx: Context, model: str, run_id: str, report: SweepReport) -> None:
    """The model still points at a run that is not open: its ending was written, the release was not (a crash)."""
    try:
        run = ctx.runs.find(model, run_id)
        if run is None or run.terminal:
            chain.release(ctx, model, run_id)
            report.released.append(run_id)
    except (ConcurrentUpdate, RetrainError) as e:
        log.warning("sweeper: model %r not freed from run %s: %s", model, run_id, e)


def _release(ctx: Context, run: Run, report: SweepReport) -> None:
    """Free the model if this run still holds its active slot (an ending, or an approval wait, cut short)."""
    state = ctx.models.get(run.model)
    if run.run_id in (state.active_run, state.pending_run):
        chain.release(ctx, run.model, run.run_id)
        report.released.append(run.run_id)


def _sweep_run(ctx: Context, run: Run, now, report: SweepReport) -> None:
    due = parse_iso(run.next_action_at)
    overdue = due is not None and now >= due + ctx.settings.sweep_grace
    # A promotion past the deadline may finish while it makes progress; a stalled one ends too.
    if now > parse_iso(run.deadline) and (run.status is not Status.PROMOTING or overdue):
        chain.time_out(ctx, run)
        report.expired.append(run.run_id)
        return
    if run.status is Status.AWAITING_APPROVAL:
        state = ctx.models.get(run.model)
        if state.active_run == run.run_id:  # the gate passed but the slot was not handed on
            chain.release(ctx, run.model, run.run_id)
            report.released.append(run.run_id)
        return
    if run.status is Status.PENDING:
        model = ctx.models.get(run.model)
        if model.pending_run != run.run_id:  # active but not yet queued, or referenced by nothing
            chain.admit(ctx, run)
            report.admitted.append(run.run_id)
        return
    if STEP_FOR_STATUS.get(run.status) is None or not overdue:
        return
    # Push the due time first so one sweep's re-drive is not repeated by the next sweep.
    saved = ctx.runs.save(replace(run, next_action_at=iso(now)))
    ctx.queues.send_for(saved.model, saved.run_id, saved.status, poll=saved.polls)
    report.redriven.append(run.run_id)
    log.warning("sweeper: run %s was overdue in %s since %s; re-driven", run.run_id, run.status.value,
                run.next_action_at)
