"""The safety net: re-drive runs whose next step is overdue, end runs past their deadline, free stuck models.

It reads only the open-run index and the runs it lists (one query plus one read per open run),
never the history: a run whose ending was written but whose model was not freed (a crash in
between) is still listed, so its model is freed here.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace

from . import chain
from .context import Context
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
    reconciled: list[Reconciled] = field(default_factory=list)  # newest data that had no run

    def __str__(self) -> str:
        return (f"re-driven {len(self.redriven)}, expired {len(self.expired)}, admitted {len(self.admitted)}, "
                f"released {len(self.released)}, reconciled {len(self.reconciled)}"
                + "".join(f"; {r}" for r in self.reconciled))


def sweep(ctx: Context) -> SweepReport:
    report = SweepReport()
    now = ctx.clock()
    for model, run_id, written in ctx.runs.open_entries():
        try:
            run = ctx.runs.find(model, run_id)
            if run is None or run.terminal:
                # Written just now, it may belong to a run being created or revived: left for the next sweep.
                if written is None or now - written >= ctx.settings.sweep_grace:
                    if run is not None:  # ended, maybe without freeing its model
                        _release(ctx, run, report)
                    ctx.runs.forget_open(model, run_id)
                continue
            _sweep_run(ctx, run, now, report)
        except ConcurrentUpdate:
            pass  # someone is working on it right now
        except RetrainError as e:
            log.warning("sweeper: run %s of %r: %s", run_id, model, e)
    report.reconciled = reconcile(ctx)
    if any((report.redriven, report.expired, report.admitted, report.released, report.reconciled)):
        log.info("sweeper: %s", report)
    return report


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
