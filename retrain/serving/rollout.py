"""A model's rollout policy: how traffic moves to a new Azure ML online deployment, as data validated at PUT.

`blue_green` moves 0 -> 100 at once; `canary` walks `steps` (e.g. 10 -> 50 -> 100) with `dwell_seconds`
between steps, during which the new deployment's error rate must stay at or under `max_error_rate`.
Optionally the new deployment first receives a `mirror` copy of live traffic, and answers the
`smoke_test` rows (through the `azureml-model-deployment` header) before any traffic moves.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from retrain.errors import InvalidModelDefinition
from retrain.definition_fields import bounded_int, bounded_number, unknown

STRATEGIES = ("blue_green", "canary")
MAX_DEPLOYMENTS = 20  # Azure's limit per online endpoint
MAX_DWELL = 7 * 24 * 3600 - 3600  # a dwell is one delayed queue message: at most 7 days
MAX_SMOKE_BYTES = 64 * 1024
FIELDS = {"strategy", "steps", "dwell_seconds", "max_error_rate", "min_requests", "mirror", "smoke_test",
          "retain", "provisioning_timeout_seconds"}


@dataclass(frozen=True)
class Mirror:
    """Copy `percent` of live requests to the new deployment for `seconds` (answers dropped) before it goes live."""

    percent: int
    seconds: int

    def to_json(self) -> dict:
        return {"percent": self.percent, "seconds": self.seconds}


@dataclass(frozen=True)
class RolloutPolicy:
    strategy: str = "blue_green"
    steps: tuple[int, ...] = (100,)
    dwell_seconds: int = 0
    max_error_rate: float | None = None  # 5xx answers / requests of the new deployment during a dwell
    min_requests: int = 1  # fewer requests than this in a dwell: the rate is not judged
    mirror: Mirror | None = None
    smoke_rows: tuple[dict, ...] = field(default_factory=tuple)  # sent as {"data": rows}
    retain: int = 1  # earlier deployments kept at 0% for an instant rollback
    provisioning_timeout_seconds: int = 1800

    def to_json(self) -> dict:
        return {"strategy": self.strategy, "steps": list(self.steps), "dwell_seconds": self.dwell_seconds,
                "max_error_rate": self.max_error_rate, "min_requests": self.min_requests,
                "mirror": self.mirror.to_json() if self.mirror else None,
                "smoke_test": {"rows": list(self.smoke_rows)} if self.smoke_rows else None,
                "retain": self.retain, "provisioning_timeout_seconds": self.provisioning_timeout_seconds}

    @property
    def smoke_body(self) -> dict | None:
        return {"data": list(self.smoke_rows)} if self.smoke_rows else None

    @classmethod
    def from_json(cls, raw: Any) -> "RolloutPolicy":
        """Every problem at once, each naming its field under `rollout.`."""
        if raw is None:
            return cls()
        if not isinstance(raw, dict):
            raise InvalidModelDefinition(["rollout: an object such as {\"strategy\": \"canary\", "
                                          "\"steps\": [10, 50, 100], \"dwell_seconds\": 300}"])
        problems: list[str] = []
        unknown(raw, FIELDS, "rollout.", problems)
        strategy = raw.get("strategy", "blue_green")
        if strategy not in STRATEGIES:
            problems.append(f"rollout.strategy: one of {', '.join(STRATEGIES)}")
        steps = _steps(raw.get("steps"), strategy, problems)
        dwell = bounded_int(raw.get("dwell_seconds"), "rollout.dwell_seconds", 0, MAX_DWELL, problems,
                            default=300 if strategy == "canary" else 0)
        rate = bounded_number(raw.get("max_error_rate"), "rollout.max_error_rate", 0.0, 1.0, problems)
        if rate is not None and not dwell and raw.get("mirror") is None:
            problems.append("rollout.max_error_rate: judged during a dwell or a mirror phase; "
                            "set dwell_seconds above 0 or add a mirror")
        min_requests = bounded_int(raw.get("min_requests"), "rollout.min_requests", 1, 1_000_000, problems,
                                   default=1)
        mirror = _mirror(raw.get("mirror"), problems)
        rows = _smoke(raw.get("smoke_test"), problems)
        retain = bounded_int(raw.get("retain"), "rollout.retain", 0, MAX_DEPLOYMENTS - 2, problems, default=1)
        timeout = bounded_int(raw.get("provisioning_timeout_seconds"), "rollout.provisioning_timeout_seconds",
                              60, 6 * 3600, problems, default=1800)
        if problems:
            raise InvalidModelDefinition(problems)
        return cls(strategy, steps, dwell, rate, min_requests, mirror, rows, retain, timeout)


def _steps(raw: Any, strategy: str, problems: list[str]) -> tuple[int, ...]:
    if strategy != "canary":
        if raw not in (None, [100]):
            problems.append("rollout.steps: only for strategy 'canary' (blue_green moves 0 -> 100 at once)")
        return (100,)
    if raw is None:
        return (10, 50, 100)
    if not isinstance(raw, list) or not 1 <= len(raw) <= 10:
        problems.append("rollout.steps: a list of 1 to 10 percentages, rising, ending at 100, e.g. [10, 50, 100]")
        return (100,)
    good = True
    for i, step in enumerate(raw):
        if isinstance(step, bool) or not isinstance(step, int) or not 1 <= step <= 100:
            problems.append(f"rollout.steps[{i}]: a whole percentage from 1 to 100")
            good = False
    if good:
        if any(b <= a for a, b in zip(raw, raw[1:])):
            problems.append("rollout.steps: each step must be larger than the one before")
        if raw[-1] != 100:
            problems.append("rollout.steps: the last step must be 100 (the new deployment takes all traffic)")
    return tuple(raw) if good else (100,)


def _mirror(raw: Any, problems: list[str]) -> Mirror | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        problems.append("rollout.mirror: an object {\"percent\": 10, \"seconds\": 300}")
        return None
    unknown(raw, {"percent", "seconds"}, "rollout.mirror.", problems)
    percent = bounded_int(raw.get("percent"), "rollout.mirror.percent", 1, 50, problems, default=10)
    seconds = bounded_int(raw.get("seconds"), "rollout.mirror.seconds", 0, MAX_DWELL, problems, default=300)
    return Mirror(percent, seconds)


def _smoke(raw: Any, problems: list[str]) -> tuple[dict, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, dict):
        problems.append("rollout.smoke_test: an object {\"rows\": [{column: value, ...}, ...]}")
        return ()
    unknown(raw, {"rows"}, "rollout.smoke_test.", problems)
    rows = raw.get("rows")
    if not isinstance(rows, list) or not 1 <= len(rows) <= 100 or not all(isinstance(r, dict) for r in rows):
        problems.append("rollout.smoke_test.rows: a list of 1 to 100 objects (column -> value), sent to the new "
                        "deployment as {\"data\": rows}")
        return ()
    if len(json.dumps(rows)) > MAX_SMOKE_BYTES:
        problems.append(f"rollout.smoke_test.rows: at most {MAX_SMOKE_BYTES // 1024} KiB of JSON")
        return ()
    return tuple(rows)


def split(new: str, step: int, previous: dict[str, int]) -> dict[str, int]:
    """Traffic with `step`% on `new` and the rest shared by `previous` in its proportions (whole percents, sum 100)."""
    rest = 100 - step
    others = {d: v for d, v in previous.items() if d != new and v > 0}
    total = sum(others.values())
    if rest == 0 or total == 0:
        return {new: 100}
    exact = {d: rest * v / total for d, v in others.items()}
    shares = {d: int(x) for d, x in exact.items()}
    for d in sorted(exact, key=lambda d: (exact[d] - shares[d], d), reverse=True)[:rest - sum(shares.values())]:
        shares[d] += 1
    return {new: step, **{d: v for d, v in shares.items() if v}}
