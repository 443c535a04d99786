"""The HTTP API's documented shapes (README "Public views"), built from stored rows; internals stay internal.

A view is a plain JSON object. Stored rows (`Run`, `ModelState`, `Promotion`) may change layout;
these shapes change only by adding fields.
"""

from __future__ import annotations

from typing import Any

from .model_rows import BrokenModel, ModelState
from .policy import Decision
from .promotions import Promotion
from .runs import Run, RunEnded


def run_link(model: str, run_id: str) -> str:
    return f"/api/models/{model}/runs/{run_id}"


def run_view(run: Run) -> dict[str, Any]:
    """A run: where it is and why, what it trained on, the decision in sentences, each endpoint's outcome."""
    return {
        "run_id": run.run_id, "model": run.model, "status": run.status.value, "terminal": run.terminal,
        "reason": run.reason, "error": run.error or None, "trigger": run.trigger.value,
        "data": {"container": run.data.container, "name": run.data.name, "etag": run.data.etag,
                 "size": run.data.size, "last_modified": run.data.last_modified or None},
        "created_at": run.created_at, "updated_at": run.updated_at or None, "deadline": run.deadline,
        "ended_at": run.ended_at or None, "step_times": dict(run.step_times),
        "attempt": run.attempt, "job_id": run.job_id or None, "baseline_run": run.baseline_run or None,
        "metrics": dict(run.metrics), "decision": decision_view(run.decision),
        "endpoints": {name: endpoint_outcome_view(o) for name, o in run.endpoints.items()},
        "approval_expires_at": run.approval_expires_at or None, "decided_by": run.decided_by or None,
        "trace_id": run.trace_id or None,
        "decision_comment": run.decision_comment or None,
        "links": {"self": run_link(run.model, run.run_id)},
    }


ROLLOUT_FIELDS = ("phase", "note", "deployment", "previous", "model_id", "traffic", "previous_traffic")


def endpoint_outcome_view(outcome: dict) -> dict[str, Any]:
    """An endpoint's outcome; an Azure ML endpoint adds its rollout: phase, deployments and traffic (no settings)."""
    view = {"ok": bool(outcome.get("ok")), "kind": outcome.get("kind"), "changed": outcome.get("changed"),
            "served": outcome.get("served"), "error": outcome.get("error"), "at": outcome.get("at")}
    if "phase" in outcome or "deployment" in outcome:
        view.update({k: outcome.get(k) for k in ROLLOUT_FIELDS}, waiting=bool(outcome.get("waiting")))
    return view


def decision_view(record: dict | None) -> dict[str, Any] | None:
    """The gate's verdict with every rule's checks as the sentences docs/policy.md promises."""
    if not record:
        return None
    try:
        decision = Decision.from_record(record)
    except (KeyError, TypeError, ValueError, IndexError):
        return {"passed": bool(record.get("passed")), "summary": record.get("summary", ""), "rules": [],
                "basis": record.get("basis")}
    return {
        "passed": decision.passed, "summary": decision.summary, "basis": decision.basis,
        "champion_run_id": decision.champion_run_id,
        "challenger_metrics": dict(decision.challenger_metrics),
        "champion_metrics": None if decision.champion_metrics is None else dict(decision.champion_metrics),
        "unreadable_metrics": list(decision.challenger_missing),
        "rules": [{"metric": r.metric, "direction": r.direction, "required": r.required,
                   "challenger": r.challenger, "champion": r.champion, "passed": r.passed,
                   "checks": [{"kind": c.kind, "threshold": c.threshold, "actual": c.actual, "passed": c.passed,
                               "text": c.text} for c in r.checks]}
                  for r in decision.rules],
    }


def model_view(model: ModelState | BrokenModel) -> dict[str, Any]:
    """A model: definition (setting names only) and live state; a row that no longer validates shows why."""
    live = {"active_run": model.active_run, "pending_run": model.pending_run, "created_at": model.created_at,
            "updated_at": model.updated_at, "links": {"self": f"/api/models/{model.name}",
                                                      "runs": f"/api/models/{model.name}/runs"}}
    if isinstance(model, BrokenModel):
        return {"name": model.name, "valid": False, "problems": list(model.problems), "champion": None, **live}
    champion = model.champion
    return {**model.definition.to_json(), "valid": True, "problems": [],
            "champion": None if champion is None else {
                "run_id": champion.run_id, "model_uri": champion.location.uri, "metrics": dict(champion.metrics),
                "since": champion.since},
            **live}


def promotion_view(promotion: Promotion) -> dict[str, Any]:
    """One history row: what serves since when, from which run, how (policy, approval, rollback) and who."""
    return {"id": promotion.key, "model": promotion.model, "from_run": promotion.from_run,
            "to_run": promotion.to_run, "model_uri": promotion.location.uri, "reason": promotion.reason.value,
            "at": promotion.at, "by": promotion.by, "note": promotion.note,
            "endpoints": {name: endpoint_outcome_view(o) for name, o in promotion.endpoints.items()},
            "actor": promotion.actor or None}


def run_ended_view(record: RunEnded) -> dict[str, Any]:
    return record.to_json()
