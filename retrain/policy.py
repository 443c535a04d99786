"""The promotion gate: a per-model policy of metric rules, and the decision it records about every retrained model."""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from retrain.errors import InvalidModelDefinition
from retrain.evaluation import Evaluation

HIGHER, LOWER = "higher", "lower"
REQUIRE_MODES = ("all", "required")
FIRST_RUN_MODES = ("bounds", "promote", "reject")
BASELINE_MODES = ("same_holdout", "require_same_holdout")

# What a decision compared the challenger with.
NO_CHAMPION = "no_champion"  # first run: bounds only (or per first_run)
SAME_HOLDOUT = "same_holdout"  # row 2 of the evaluation: the champion scored on the challenger's hold-out
CHAMPION_RECORDED = "champion_recorded"  # the champion's metrics from its own run (a different hold-out)
UNAVAILABLE = "unavailable"  # the policy demands the same hold-out and the evaluation has no row 2

_RECORD_VERSION = 1


# --- metric names ---------------------------------------------------------------------------

@dataclass(frozen=True)
class MetricInfo:
    """What the app knows about an Evaluate Model column: which way is better, and the range a bound must lie in."""

    direction: str
    low: float | None = None
    high: float | None = None


_SHARE = MetricInfo(HIGHER, 0.0, 1.0)
_ERROR = MetricInfo(LOWER, 0.0, None)

KNOWN_METRICS: dict[str, MetricInfo] = {
    # binary classification
    "Accuracy": _SHARE,
    "Precision": _SHARE,
    "Recall": _SHARE,
    "F-Score": _SHARE,
    "AUC": _SHARE,
    "Average Log Loss": _ERROR,
    "Training Log Loss": MetricInfo(HIGHER),  # Studio reports it as % improvement over a prior-only predictor
    # regression
    "Mean Absolute Error": _ERROR,
    "Root Mean Squared Error": _ERROR,
    "Relative Absolute Error": _ERROR,
    "Relative Squared Error": _ERROR,
    "Coefficient of Determination": MetricInfo(HIGHER, None, 1.0),
    "Negative Log Likelihood": MetricInfo(LOWER),
    # multiclass classification
    "Overall accuracy": _SHARE,
    "Average accuracy": _SHARE,
    "Micro-averaged precision": _SHARE,
    "Macro-averaged precision": _SHARE,
    "Micro-averaged recall": _SHARE,
    "Macro-averaged recall": _SHARE,
}


def metric_key(name: str) -> str:
    """The form names are compared in, so that "f-score", "F Score" and "F-Score" mean the same column."""
    return "".join(ch for ch in name.casefold() if ch not in " -_\t")


def find_metric(name: str, available: Iterable[str]) -> str | None:
    """The column of `available` that `name` means: the exact spelling, else ignoring case, spaces and hyphens."""
    names = list(available)
    if name in names:
        return name
    key = metric_key(name)
    return next((candidate for candidate in names if metric_key(candidate) == key), None)


def _canonical(name: str) -> str:
    """A known metric's name as Evaluate Model spells it ("auc" -> "AUC"); other names unchanged."""
    return find_metric(name, KNOWN_METRICS) or name


def known_metric(name: str) -> MetricInfo | None:
    """Defaults for an Evaluate Model metric name, or None for a name this app does not know."""
    found = find_metric(name, KNOWN_METRICS)
    return KNOWN_METRICS[found] if found else None


# --- the policy -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Rule:
    """One metric the challenger must satisfy: bounds always, improvement over the champion when there is one."""

    metric: str  # as Evaluate Model spells it ("AUC", "Root Mean Squared Error")
    direction: str  # "higher" or "lower" is better
    minimum: float | None = None
    maximum: float | None = None
    min_improvement: float | None = 0.0  # absolute, in the metric's units, positive = better
    min_relative_improvement: float | None = None  # fraction of |champion|: 0.01 = 1% better
    required: bool = True  # only read when Policy.require == "required"; others are advisory

    def to_json(self) -> dict[str, Any]:
        return {"metric": self.metric, "direction": self.direction, "min": self.minimum, "max": self.maximum,
                "min_improvement": self.min_improvement,
                "min_relative_improvement": self.min_relative_improvement, "required": self.required}


@dataclass(frozen=True)
class ApprovalPolicy:
    """Whether a person must approve a passing model before it is promoted, and how long the offer stands."""

    required: bool = False
    expires_after_hours: float = 72.0

    def to_json(self) -> dict[str, Any]:
        return {"required": self.required, "expires_after_hours": self.expires_after_hours}


@dataclass(frozen=True)
class Policy:
    """A model's gate, validated as a whole so a user sees every mistake at once."""

    rules: tuple[Rule, ...] = ()
    require: str = "all"  # "all" | "required"
    first_run: str = "bounds"  # "bounds" | "promote" | "reject"
    approval: ApprovalPolicy = field(default_factory=ApprovalPolicy)
    baseline: str = "same_holdout"  # "same_holdout" | "require_same_holdout"

    @classmethod
    def from_json(cls, obj: Mapping[str, Any] | None) -> "Policy":
        """Validate a policy as stored in the model definition; None or {} is the default policy (no rules)."""
        if obj is None:
            return cls()
        if not isinstance(obj, Mapping):
            raise InvalidModelDefinition([f"policy: must be an object, got {type(obj).__name__}"])
        problems: list[str] = []
        _unknown_keys(obj, _POLICY_KEYS, "policy", problems)
        require = _choice(obj, "require", REQUIRE_MODES, "all", problems)
        first_run = _choice(obj, "first_run", FIRST_RUN_MODES, "bounds", problems)
        baseline = _choice(obj, "baseline", BASELINE_MODES, "same_holdout", problems)
        approval = _read_approval(obj.get("approval"), problems)
        rules = _read_rules(obj.get("rules"), require, problems)
        if problems:
            raise InvalidModelDefinition(problems)
        return cls(rules, require, first_run, approval, baseline)

    def to_json(self) -> dict[str, Any]:
        """The explicit form (every key, defaults spelled out): from_json(to_json()) == self."""
        return {"rules": [rule.to_json() for rule in self.rules], "require": self.require,
                "first_run": self.first_run, "approval": self.approval.to_json(), "baseline": self.baseline}


_POLICY_KEYS = ("rules", "require", "first_run", "approval", "baseline")
_RULE_KEYS = ("metric", "direction", "min", "max", "min_improvement", "min_relative_improvement", "required")
_APPROVAL_KEYS = ("required", "expires_after_hours")


def _unknown_keys(obj: Mapping, allowed: tuple[str, ...], where: str, problems: list[str]) -> None:
    """Report keys the policy does not read: a typo would otherwise silently weaken the gate."""
    for key in obj:
        if key in allowed:
            continue
        close = difflib.get_close_matches(str(key), allowed, n=1) or \
            [name for name in allowed if name.startswith(str(key)) or str(key).startswith(name)][:1]
        hint = f"did you mean {close[0]!r}?" if close else f"allowed: {', '.join(allowed)}"
        problems.append(f"{where}.{key}: unknown key ({hint})")


def _choice(obj: Mapping, key: str, allowed: tuple[str, ...], default: str, problems: list[str]) -> str | None:
    """One of the allowed words (the default when absent or null), or None when the value is not allowed."""
    value = obj.get(key)
    if value is None:
        return default
    if isinstance(value, str) and value in allowed:
        return value
    problems.append(f"policy.{key}: must be one of {', '.join(repr(a) for a in allowed)}, got {value!r}")
    return None


MAX_MAGNITUDE = 1e12  # no metric bound or improvement is anywhere near this; larger is a typo
MAX_APPROVAL_HOURS = 24 * 365  # a year: longer would never expire in practice (and overflows dates near 1e9)


def _number(value: Any, where: str, problems: list[str], *, at_least: float | None = None,
            above: float | None = None, at_most: float = MAX_MAGNITUDE, nullable: bool = True) -> float | None:
    """A finite JSON number (never a bool) within the given limits, or None for null."""
    if value is None and nullable:
        return None
    number = None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            number = float(value)
        except OverflowError:  # an integer with hundreds of digits
            number = None
    ok = number is not None and math.isfinite(number) and abs(number) <= MAX_MAGNITUDE and number <= at_most
    ok = ok and (at_least is None or number >= at_least) and (above is None or number > above)
    if ok:
        return number
    shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:40] + "..."
    too_big = isinstance(value, (int, float)) and not isinstance(value, bool) and (
        number is None or abs(number) > MAX_MAGNITUDE or number > at_most)
    if too_big:
        problems.append(f"{where}: must be at most {min(at_most, MAX_MAGNITUDE):g} in size, got {shown}")
        return None
    limit = f" >= {at_least:g}" if at_least is not None else f" > {above:g}" if above is not None else ""
    problems.append(f"{where}: must be a number{limit}" + (" or null" if nullable and not limit else "")
                    + (f", got {shown}" if value is not None else ", got null"))
    return None


def _read_approval(obj: Any, problems: list[str]) -> ApprovalPolicy:
    if obj is None:
        return ApprovalPolicy()
    if not isinstance(obj, Mapping):
        problems.append("policy.approval: must be an object like {\"required\": true, \"expires_after_hours\": 72}")
        return ApprovalPolicy()
    _unknown_keys(obj, _APPROVAL_KEYS, "policy.approval", problems)
    required = obj.get("required", False)
    if not isinstance(required, bool):
        problems.append(f"policy.approval.required: must be true or false, got {required!r}")
        required = False
    hours = _number(obj.get("expires_after_hours", 72.0), "policy.approval.expires_after_hours", problems,
                    above=0, at_most=MAX_APPROVAL_HOURS, nullable=False)
    return ApprovalPolicy(required, 72.0 if hours is None else hours)


def _read_rules(obj: Any, require: str | None, problems: list[str]) -> tuple[Rule, ...]:
    if obj is None:
        return ()
    if not isinstance(obj, list):
        problems.append("policy.rules: must be a list of rules like {\"metric\": \"AUC\", \"min\": 0.75}")
        return ()
    rules: list[Rule] = []
    first_seen: dict[str, int] = {}
    for index, item in enumerate(obj):
        where = f"policy.rules[{index}]"
        rule = _read_rule(item, where, require, problems)
        metric = item.get("metric") if isinstance(item, Mapping) else None
        if isinstance(metric, str) and metric.strip():
            key = metric_key(metric)
            if key in first_seen:
                problems.append(f"{where}.metric: duplicate rule for {metric.strip()!r} "
                                f"(already in policy.rules[{first_seen[key]}])")
            else:
                first_seen[key] = index
        if rule is not None:
            rules.append(rule)
    return tuple(rules)


def _read_rule(obj: Any, where: str, require: str | None, problems: list[str]) -> Rule | None:
    """One rule, or None when it has problems (all of them appended)."""
    if not isinstance(obj, Mapping):
        problems.append(f"{where}: must be an object like {{\"metric\": \"AUC\", \"min\": 0.75}}")
        return None
    before = len(problems)
    _unknown_keys(obj, _RULE_KEYS, where, problems)
    metric = obj.get("metric")
    if not isinstance(metric, str) or not metric.strip():
        problems.append(f"{where}.metric: must be the metric's name as Evaluate Model spells it (e.g. 'AUC')")
        metric = ""
    info = known_metric(metric) if metric else None
    metric = _canonical(metric.strip())
    direction = obj.get("direction")
    if direction is None and info is not None:
        direction = info.direction
    elif direction is None and metric:
        problems.append(f"{where}.direction: {metric!r} is not an Evaluate Model metric this app knows; "
                        "say whether 'higher' or 'lower' is better")
    elif direction not in (HIGHER, LOWER, None):
        problems.append(f"{where}.direction: must be 'higher' or 'lower', got {direction!r}")
    minimum = _number(obj.get("min"), f"{where}.min", problems)
    maximum = _number(obj.get("max"), f"{where}.max", problems)
    _check_range(info, metric, minimum, f"{where}.min", problems)
    _check_range(info, metric, maximum, f"{where}.max", problems)
    if minimum is not None and maximum is not None and minimum > maximum:
        problems.append(f"{where}: min {minimum:g} is greater than max {maximum:g}")
    if "min_improvement" in obj or "min_relative_improvement" in obj:
        min_improvement = _number(obj.get("min_improvement"), f"{where}.min_improvement", problems, at_least=0)
        min_relative = _number(obj.get("min_relative_improvement"), f"{where}.min_relative_improvement",
                               problems, at_least=0)
    else:
        min_improvement, min_relative = 0.0, None  # default: the challenger must be no worse than the champion
    required = obj.get("required", True)
    if not isinstance(required, bool):
        problems.append(f"{where}.required: must be true or false, got {required!r}")
    elif not required and require == "all":
        problems.append(f"{where}.required: false has no effect while policy.require is 'all' "
                        "(set policy.require to 'required' to make this rule advisory)")
    if (minimum, maximum, min_improvement, min_relative) == (None, None, None, None) and len(problems) == before:
        problems.append(f"{where}: checks nothing (no min, no max, min_improvement and "
                        "min_relative_improvement both null)")
    if len(problems) > before:
        return None
    return Rule(metric, direction, minimum, maximum, min_improvement, min_relative, required)


def _check_range(info: MetricInfo | None, metric: str, bound: float | None, where: str,
                 problems: list[str]) -> None:
    """A bound the metric can never reach is a mistake (e.g. "min": 75 for an AUC between 0 and 1)."""
    if info is None or bound is None:
        return
    if (info.low is not None and bound < info.low) or (info.high is not None and bound > info.high):
        if info.low is not None and info.high is not None:
            span = f"lies between {info.low:g} and {info.high:g}"
        elif info.low is not None:
            span = "is never negative" if info.low == 0 else f"is never below {info.low:g}"
        else:
            span = f"is never above {info.high:g}"
        problems.append(f"{where}: {metric} {span}, got {bound:g}")


# --- the decision -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Champion:
    """The model in production, with the metrics recorded when its own run was evaluated."""

    run_id: str
    metrics: dict[str, float]


@dataclass(frozen=True)
class Check:
    """One comparison a rule made, the numbers it used, and a sentence that explains it."""

    kind: str  # "minimum" | "maximum" | "improvement" | "relative_improvement" | "present"
    threshold: float | None
    actual: float | None  # challenger value for bounds and presence; improvement (positive = better) otherwise
    passed: bool
    text: str


@dataclass(frozen=True)
class RuleResult:
    """How the challenger fared on one rule; `required` is whether a failure here blocks promotion."""

    metric: str
    direction: str
    required: bool
    challenger: float | None
    champion: float | None
    checks: tuple[Check, ...]
    passed: bool


@dataclass(frozen=True)
class Decision:
    """The gate's verdict on one run, with every number it used, kept with the run (pass or fail)."""

    passed: bool
    basis: str  # NO_CHAMPION | SAME_HOLDOUT | CHAMPION_RECORDED | UNAVAILABLE
    rules: tuple[RuleResult, ...]
    summary: str
    challenger_metrics: dict[str, float]
    champion_metrics: dict[str, float] | None  # the numbers compared with (row 2, or the champion's recorded)
    champion_run_id: str | None = None
    challenger_missing: tuple[str, ...] = ()  # columns of row 1 that were not finite numbers

    def to_record(self) -> dict[str, Any]:
        """JSON-able and compact for a 64 KiB table property: sentences and improvements are rebuilt on load."""
        return {"v": _RECORD_VERSION, "passed": self.passed, "basis": self.basis, "summary": self.summary,
                "champion_run_id": self.champion_run_id, "challenger_metrics": dict(self.challenger_metrics),
                "challenger_missing": list(self.challenger_missing),
                "champion_metrics": None if self.champion_metrics is None else dict(self.champion_metrics),
                "rules": [_rule_record(result) for result in self.rules]}

    @classmethod
    def from_record(cls, obj: Mapping[str, Any]) -> "Decision":
        challenger = dict(obj.get("challenger_metrics") or {})
        missing = tuple(obj.get("challenger_missing") or ())
        scene = _Scene(obj["basis"], tuple(challenger), missing)
        rules = tuple(_rule_from_record(item, scene) for item in obj.get("rules", ()))
        champion = obj.get("champion_metrics")
        return cls(bool(obj["passed"]), obj["basis"], rules, obj["summary"], challenger,
                   None if champion is None else dict(champion), obj.get("champion_run_id"), missing)


@dataclass(frozen=True)
class _Scene:
    """What every sentence of one decision depends on besides the rule's own numbers."""

    basis: str
    columns: tuple[str, ...]  # the challenger's finite metrics
    unreadable: tuple[str, ...]  # the challenger's columns that were not finite numbers


def _rule_record(result: RuleResult) -> dict[str, Any]:
    return {"metric": result.metric, "direction": result.direction, "required": result.required,
            "challenger": result.challenger, "champion": result.champion, "passed": result.passed,
            "checks": [[c.kind, c.threshold, c.passed] for c in result.checks]}  # [kind, threshold, passed]


def _rule_from_record(obj: Mapping[str, Any], scene: _Scene) -> RuleResult:
    metric, direction = obj["metric"], obj["direction"]
    challenger, champion = obj.get("challenger"), obj.get("champion")
    checks = tuple(_check_from_record(item, metric, direction, challenger, champion, scene)
                   for item in obj.get("checks", ()))
    return RuleResult(metric, direction, bool(obj["required"]), challenger, champion, checks, bool(obj["passed"]))


def _check_from_record(obj: list, metric: str, direction: str, challenger: float | None,
                       champion: float | None, scene: _Scene) -> Check:
    """A check with the numbers and sentence rebuilt from the rule's challenger and champion values."""
    kind, threshold, passed = obj[0], obj[1], bool(obj[2])
    if kind in ("improvement", "relative_improvement") and challenger is not None:
        actual = _measure(kind, direction, challenger, champion, threshold)[0]
    else:
        actual = challenger
    return Check(kind, threshold, actual, passed,
                 _check_text(kind, metric, direction, challenger, champion, threshold, passed, scene))


def decide(policy: Policy, evaluation: Evaluation, champion: Champion | None) -> Decision:
    """Judge a challenger against the policy (and the champion, if any) and explain the verdict."""
    basis, against = _basis(policy, evaluation, champion)
    metrics = _finite_only(evaluation.challenger)
    unreadable = tuple(evaluation.challenger_missing) + tuple(n for n in evaluation.challenger if n not in metrics)
    scene = _Scene(basis, tuple(metrics), unreadable)
    results = tuple(_judge(rule, policy, metrics, against, scene) for rule in policy.rules)
    passed = _verdict(policy, basis, results)
    run_id = champion.run_id if champion is not None else None
    return Decision(passed, basis, results, _summary(policy, basis, results, passed, run_id),
                    metrics, against, run_id, unreadable)


def _basis(policy: Policy, evaluation: Evaluation,
           champion: Champion | None) -> tuple[str, dict[str, float] | None]:
    """What to compare with: row 2 when the service scored the champion on the same hold-out, else per policy."""
    if champion is None:
        return NO_CHAMPION, None
    if evaluation.baseline is not None:
        return SAME_HOLDOUT, _finite_only(evaluation.baseline)
    if policy.baseline == "require_same_holdout":
        return UNAVAILABLE, None
    return CHAMPION_RECORDED, _finite_only(champion.metrics)


def _finite_only(metrics: Mapping[str, float]) -> dict[str, float]:
    """NaN or infinite numbers never take part in a comparison (nor in a JSON record)."""
    return {name: float(value) for name, value in metrics.items()
            if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)}


def _lookup(metric: str, metrics: Mapping[str, float] | None) -> float | None:
    found = find_metric(metric, metrics) if metrics else None
    return None if found is None else metrics[found]


def _judge(rule: Rule, policy: Policy, metrics: dict[str, float], against: dict[str, float] | None,
           scene: _Scene) -> RuleResult:
    required = policy.require == "all" or rule.required
    challenger = _lookup(rule.metric, metrics)
    champion = _lookup(rule.metric, against)
    checks: tuple[Check, ...] = ()
    if challenger is not None:
        checks = _bound_checks(rule, challenger, scene)
        if scene.basis != NO_CHAMPION:
            checks += _improvement_checks(rule, challenger, champion, scene)
    if not checks:  # the metric is missing (fails: never pass on a number not seen), or no check applies
        checks = (Check("present", None, challenger, challenger is not None,
                        _present_text(rule.metric, challenger, scene)),)
    return RuleResult(rule.metric, rule.direction, required, challenger, champion, checks,
                      all(check.passed for check in checks))


def _bound_checks(rule: Rule, challenger: float, scene: _Scene) -> tuple[Check, ...]:
    checks = []
    for kind, threshold, passed in (
            ("minimum", rule.minimum, rule.minimum is not None and _meets(challenger, rule.minimum)),
            ("maximum", rule.maximum, rule.maximum is not None and _meets(-challenger, -rule.maximum))):
        if threshold is not None:
            text = _check_text(kind, rule.metric, rule.direction, challenger, None, threshold, passed, scene)
            checks.append(Check(kind, threshold, challenger, passed, text))
    return tuple(checks)


def _improvement_checks(rule: Rule, challenger: float, champion: float | None,
                        scene: _Scene) -> tuple[Check, ...]:
    checks = []
    for kind, threshold in (("improvement", rule.min_improvement),
                            ("relative_improvement", rule.min_relative_improvement)):
        if threshold is None:
            continue
        actual, passed = _measure(kind, rule.direction, challenger, champion, threshold)
        text = _check_text(kind, rule.metric, rule.direction, challenger, champion, threshold, passed, scene)
        checks.append(Check(kind, threshold, actual, passed, text))
    return tuple(checks)


def _measure(kind: str, direction: str, challenger: float, champion: float | None,
             threshold: float) -> tuple[float | None, bool]:
    """The improvement (positive = better in the metric's direction) and whether it meets the threshold."""
    if champion is None:
        return None, False
    improvement = challenger - champion if direction == HIGHER else champion - challenger
    if kind == "improvement":
        return improvement, _meets(improvement, threshold)
    if champion == 0:  # relative change is unbounded: any real improvement meets any threshold
        return None, _meets(improvement, 0) if threshold == 0 else improvement > 0 and not _close(improvement, 0)
    relative = improvement / abs(champion)
    return relative, _meets(relative, threshold)


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


def _meets(value: float, threshold: float) -> bool:
    """value >= threshold, counting a tie within float rounding (0.82 - 0.81 is +0.01) as met."""
    return value >= threshold or _close(value, threshold)


def _verdict(policy: Policy, basis: str, results: tuple[RuleResult, ...]) -> bool:
    if basis == UNAVAILABLE:
        return False
    if basis == NO_CHAMPION and policy.first_run != "bounds":
        return policy.first_run == "promote"
    return all(result.passed for result in results if result.required)


# --- words --------------------------------------------------------------------------------------

def _num(value: float) -> str:
    return f"{value:.0f}" if abs(value) >= 1e6 else f"{value:.4g}"


def _signed(value: float) -> str:
    return ("+" if value >= 0 else "") + _num(value)


def _percent(fraction: float) -> str:
    value = fraction * 100
    return (f"{value:+.0f}" if abs(value) >= 1e3 else f"{value:+.3g}") + "%"


def _check_text(kind: str, metric: str, direction: str, challenger: float | None, champion: float | None,
                threshold: float | None, passed: bool, scene: _Scene) -> str:
    """The sentence for a check, rebuilt from its numbers (so records need not store it)."""
    basis = scene.basis
    if kind == "present":
        return _present_text(metric, challenger, scene)
    if kind == "minimum":
        return f"{metric} {_num(challenger)} {'meets' if passed else 'is below'} the minimum {_num(threshold)}"
    if kind == "maximum":
        return f"{metric} {_num(challenger)} {'is within' if passed else 'is above'} the maximum {_num(threshold)}"
    if champion is None:
        if basis == UNAVAILABLE:
            return f"{metric}: the champion was not scored on the same hold-out, which the policy requires"
        source = "the baseline row (same hold-out)" if basis == SAME_HOLDOUT else "the champion's recorded metrics"
        return f"{metric}: no value for the champion in {source}"
    sign = 1 if direction == HIGHER else -1
    better = sign * (challenger - champion)
    if better > 0:
        relation = "is better than" if passed else "improves too little on"
    else:
        relation = "is worse than" if better < 0 else "equals"
    whose = "the champion's recorded" if basis == CHAMPION_RECORDED else "the champion's"
    where = " on the same hold-out" if basis == SAME_HOLDOUT else ""
    if kind == "improvement":
        change = _signed(challenger - champion)
        need = f"needs {_signed(sign * threshold)}"
    else:
        change = "relative change unbounded against 0" if champion == 0 else \
            _percent((challenger - champion) / abs(champion))
        need = f"needs {_percent(sign * threshold)}"
    if threshold == 0:
        need = "must not be worse"
    return f"{metric} {_num(challenger)} {relation} {whose} {_num(champion)}{where} ({change}; {need})"


def _present_text(metric: str, challenger: float | None, scene: _Scene) -> str:
    if challenger is not None:
        nothing = "nothing else to check for a first model" if scene.basis == NO_CHAMPION else "nothing to check"
        return f"{metric} {_num(challenger)} reported; {nothing}"
    if find_metric(metric, scene.unreadable) is not None:
        return f"{metric}: not a finite number in the evaluation output"
    return f"{metric}: metric missing from evaluation output (has: {_listing(scene.columns, 20) or 'no metric'})"


def _listing(names: list[str] | tuple[str, ...], limit: int = 5) -> str:
    """Names for a sentence, cut short so a summary stays readable (and a record small)."""
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _summary(policy: Policy, basis: str, results: tuple[RuleResult, ...], passed: bool,
             champion_run_id: str | None) -> str:
    """One or two sentences a person reads first: the verdict and its main reason."""
    recorded = (f" Compared with the champion's recorded metrics (run {champion_run_id}): "
                "the evaluation output had no baseline row for the same hold-out.") \
        if basis == CHAMPION_RECORDED else ""
    advisory = [r.metric for r in results if not r.required and not r.passed]
    advisory_note = f"; advisory rules failing: {_listing(advisory)}" if advisory else ""
    blocking = [r for r in results if r.required and not r.passed]
    if basis == UNAVAILABLE:
        return ("Rejected: the policy requires comparing with the champion on the same hold-out "
                "(baseline 'require_same_holdout'), but the evaluation output has no baseline row (row 2); "
                f"score the champion (run {champion_run_id}) in the training experiment's Evaluate Model.")
    if basis == NO_CHAMPION and policy.first_run == "reject":
        return ("Rejected: this is the first model (no champion) and the policy never promotes a first model "
                "automatically (first_run 'reject'); promote it by hand if it is good.")
    if basis == NO_CHAMPION and policy.first_run == "promote":
        failing = [r for r in results if not r.passed]
        note = f"; recorded but ignored: {_first_failure(failing[0])}" if failing else ""
        return f"Passed: first model (no champion), let through regardless of its rules (first_run 'promote'){note}."
    if not policy.rules:
        if basis == NO_CHAMPION:
            return "No rules configured: passed as the first model (no champion), with nothing checked."
        return ("No rules configured: passed without comparing with the champion, because the policy has "
                "no rules (add rules to gate promotion)." + recorded)
    first = " First model (no champion): bounds only." if basis == NO_CHAMPION else ""
    if not passed:
        more = blocking[1:]
        tail = f"; {len(more)} more rule{'s' if len(more) > 1 else ''} failing: " \
               f"{_listing([r.metric for r in more])}" if more else ""
        return f"Rejected: {_first_failure(blocking[0])}{tail}{advisory_note}.{first}{recorded}"
    gating = [r for r in results if r.required]
    if not gating:
        return f"Passed: no rule is required (require 'required'){advisory_note}.{first}{recorded}"
    if len(gating) == 1:
        return f"Passed: {_headline(gating[0]).text}{advisory_note}.{first}{recorded}"
    which = "required rules" if policy.require == "required" else "rules"
    against = {NO_CHAMPION: "", SAME_HOLDOUT: " against the champion on the same hold-out",
               CHAMPION_RECORDED: " against the champion's recorded metrics"}[basis]
    return f"Passed: all {len(gating)} {which} pass{against}{advisory_note}.{first}{recorded}"


def _first_failure(result: RuleResult) -> str:
    return next(check.text for check in result.checks if not check.passed)


def _headline(result: RuleResult) -> Check:
    """The check that best explains a passing rule: its comparison with the champion, else its first bound."""
    by_kind = {check.kind: check for check in result.checks}
    return by_kind.get("relative_improvement") or by_kind.get("improvement") or result.checks[0]
