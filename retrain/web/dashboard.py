"""The operator's dashboard: server-rendered pages over the state layer; every action goes through `retrain.api`."""

from __future__ import annotations

import hashlib
import json
import logging
import mimetypes
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable
from urllib.parse import parse_qs, urlencode, urlsplit

from jinja2 import Environment, FileSystemLoader, select_autoescape

from .. import api, views
from ..context import Context
from ..errors import BadRequest, RetrainError, SettingsError
from ..events.sender import EVENTGRID
from ..events.sinks import eventgrid_endpoint
from ..events.store import Delivery, DeliveryStatus
from ..events.subscriptions import Subscription, check_name
from ..model_rows import ModelState
from ..runs import Run, Status, parse_iso
from . import csrf

log = logging.getLogger("retrain")
HERE = Path(__file__).resolve().parent
STATIC = HERE / "static"
BASE = "/api/dashboard"
MAX_FORM = 16 * 1024
TREND_RUNS = 100  # newest runs drawn in a model's trend (one page of the state layer)
PAGE = 20
TRACE_URL_SETTING = "RETRAIN_TRACE_URL_TEMPLATE"  # e.g. a portal search URL with {trace_id}; no link without it
ANSWER_SHOWN = 120  # characters of a receiver's answer shown in a deliveries table
ACTIONS = ("approve", "reject", "cancel", "retry")


@dataclass(frozen=True)
class WebRequest:
    method: str
    path: str  # below /api/dashboard, without a leading slash
    query: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class WebResponse:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def mimetype(self) -> str:
        return self.headers.get("Content-Type", "text/html").split(";")[0]


def _static_files() -> dict[str, tuple[bytes, str]]:
    """Every file under static/, read once: name -> (content, short hash for cache-busting URLs)."""
    files = {}
    for path in sorted(STATIC.rglob("*")):
        if path.is_file():
            data = path.read_bytes()
            files[path.relative_to(STATIC).as_posix()] = (data, hashlib.sha256(data).hexdigest()[:12])
    return files


STATIC_FILES = _static_files()
TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
         ".svg": "image/svg+xml", ".png": "image/png"}


def _when(value: str | None) -> str:
    moment = parse_iso(value) if value else None
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC") if moment else "—"


def _duration(start: str | None, end: str | None) -> str:
    a, b = (parse_iso(start) if start else None), (parse_iso(end) if end else None)
    if not a or not b:
        return "—"
    seconds = int((b - a).total_seconds())
    return f"{seconds // 3600}h {seconds % 3600 // 60}m" if seconds >= 3600 else \
        f"{seconds // 60}m {seconds % 60}s" if seconds >= 60 else f"{seconds}s"


def _number(value: Any) -> str:
    return "—" if value is None else f"{value:.4g}" if isinstance(value, (int, float)) else str(value)


TEMPLATES = Environment(loader=FileSystemLoader(HERE / "templates"),
                        autoescape=select_autoescape(default=True, default_for_string=True))
TEMPLATES.filters.update(when=_when, number=_number)
TEMPLATES.globals.update(duration=_duration, BASE=BASE, ACTIVE_STATES=[s.value for s in Status if not s.terminal])


def handle(ctx: Context, request: WebRequest) -> WebResponse:
    """Route one dashboard request; a user's mistake is a page that says what happened, never a 500."""
    parts = [p for p in request.path.strip("/").split("/") if p]
    page = _Page(ctx, request)
    try:
        if parts[:1] == ["static"] and request.method == "GET":
            return _static("/".join(parts[1:]), request.query.get("v"))
        if request.method == "POST":
            return page.post(parts)
        if request.method != "GET":
            return page.error(405, "Only GET and POST are served here.")
        if not parts:
            return page.overview()
        if parts[0] == "models" and len(parts) == 2:
            return page.model(parts[1])
        if parts[0] == "models" and len(parts) == 3 and parts[2] == "rollback":
            return page.confirm_rollback(parts[1])
        if parts[0] == "models" and len(parts) == 4 and parts[2] == "runs":
            return page.run(parts[1], parts[3])
        if parts[0] == "models" and len(parts) == 5 and parts[2] == "runs" and parts[4] == "live":
            return page.run(parts[1], parts[3], fragment=True)
        if parts == ["subscriptions"]:
            return page.subscriptions()
        if parts[0] == "subscriptions" and len(parts) == 2:
            return page.subscription(parts[1])
        return page.error(404, "There is no such page.")
    except RetrainError as e:
        return page.error(e.http_status if 400 <= e.http_status < 500 else 502, str(e))


def _static(name: str, version: str | None) -> WebResponse:
    found = STATIC_FILES.get(name)
    if found is None:
        return WebResponse(404, b"not found", {"Content-Type": "text/plain; charset=utf-8"})
    data, digest = found
    kind = TYPES.get(Path(name).suffix) or mimetypes.guess_type(name)[0] or "application/octet-stream"
    cache = "public, max-age=31536000, immutable" if version == digest else "public, max-age=300"
    return WebResponse(200, data, {"Content-Type": kind, "Cache-Control": cache, "ETag": f'"{digest}"',
                                   "X-Content-Type-Options": "nosniff"})


class _Page:
    """One request's rendering: links carry the function key (`code`) when the caller came with one."""

    def __init__(self, ctx: Context, request: WebRequest):
        self.ctx, self.request = ctx, request
        self.code = request.query.get("code") or ""

    def url(self, path: str = "", **query: Any) -> str:
        params = {k: v for k, v in query.items() if v not in (None, "")}
        if self.code:
            params["code"] = self.code
        return f"{BASE}/{path}".rstrip("/") + (f"?{urlencode(params)}" if params else "")

    def static(self, name: str) -> str:
        return f"{BASE}/static/{name}?v={STATIC_FILES[name][1]}"

    def render(self, template: str, http_status: int = 200, *, refresh: bool = False, **values: Any) -> WebResponse:
        html = TEMPLATES.get_template(template).render(
            url=self.url, static=self.static, refresh=refresh, code=self.code,
            csrf_field=csrf.FIELD, csrf_token=csrf.issue(self.ctx.env, self.request.headers), **values)
        return WebResponse(http_status, html.encode(), {
            "Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store",
            "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
                                       "img-src 'self' data:; frame-ancestors 'none'; form-action 'self'",
            "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"})

    def error(self, status: int, message: str) -> WebResponse:
        return self.render("error.html", status, status=status, message=message)

    # --- pages ---------------------------------------------------------------------------------
    def overview(self) -> WebResponse:
        cards = [self._card(m) for m in self.ctx.models.list_all()]
        waiting = [run for card in cards for run in card["awaiting"]]
        return self.render("overview.html", cards=cards, waiting=waiting,
                           refresh=any(card["active"] for card in cards))

    def _card(self, model) -> dict:
        view = views.model_view(model)
        card: dict[str, Any] = {"view": view, "name": model.name, "valid": view["valid"], "awaiting": [],
                                "active": None, "pending": None, "last": None, "metric": None, "spark": "",
                                "endpoints": []}
        if not isinstance(model, ModelState):
            return card
        metric = key_metric(model)
        card["metric"] = metric
        ended = self.ctx.runs.ended(model.name, limit=30).items
        values = [(parse_iso(e.ended_at), e.metrics.get(metric)) for e in reversed(ended)
                  if metric and e.metrics.get(metric) is not None]
        card["spark"] = sparkline([v for _, v in values])
        card["last"] = next((e for e in ended if e.decision_summary), None)
        card["active"] = self.ctx.runs.find(model.name, model.active_run) if model.active_run else None
        card["pending"] = self.ctx.runs.find(model.name, model.pending_run) if model.pending_run else None
        card["awaiting"] = self.ctx.runs.page(model.name, limit=10, status=Status.AWAITING_APPROVAL).items
        latest = self.ctx.promotions.page(model.name, limit=1).items
        served = latest[0].endpoints if latest else {}
        for spec in model.definition.endpoints:
            outcome = served.get(spec.name) or {}
            card["endpoints"].append({"name": spec.name, "kind": spec.kind,
                                      "run": latest[0].to_run if latest and outcome.get("ok") else None,
                                      "served": outcome.get("served"), "traffic": outcome.get("traffic")})
        return card

    def model(self, name: str) -> WebResponse:
        state = self.ctx.models.get(name)
        status_text = self.request.query.get("status") or ""
        try:
            status = Status(status_text) if status_text else None
        except ValueError:
            raise BadRequest(f"status must be one of {', '.join(s.value for s in Status)}") from None
        metrics = [r.metric for r in state.definition.policy.rules]
        metric = self.request.query.get("metric") or key_metric(state)
        if metric not in metrics and metric != key_metric(state):
            raise BadRequest(f"metric must be one of {', '.join(metrics) or 'the recorded metrics'}")
        continuation = self.request.query.get("continuation") or None
        runs = self.ctx.runs.page(name, limit=PAGE, status=status, continuation=continuation)
        history = self.ctx.promotions.page(name, limit=50).items
        trend = trend_data(state, metric, self.ctx.runs.page(name, limit=TREND_RUNS).items, history)
        active = self.ctx.runs.find(name, state.active_run) if state.active_run else None
        return self.render("model.html", view=views.model_view(state), state=state, runs=runs, status=status_text,
                           statuses=[s.value for s in Status], trend=trend, metric=metric, metrics=metrics,
                           history=history, x=self.request.query.get("x") or "time",
                           refresh=active is not None and not active.terminal, done=self.request.query.get("done"))

    def run(self, name: str, run_id: str, *, fragment: bool = False) -> WebResponse:
        run = self.ctx.runs.get(name, api.check_run_id(run_id))
        view = views.run_view(run)
        values = dict(run=view, timeline=timeline(run), actions=available_actions(run),
                      trace_url=trace_url(self.ctx.env, run.trace_id),
                      refresh=not run.terminal and run.status is not Status.AWAITING_APPROVAL,
                      done=self.request.query.get("done"))
        return self.render("run_live.html" if fragment else "run.html", **values)

    def confirm_rollback(self, name: str) -> WebResponse:
        state = self.ctx.models.get(name)
        to_run = self.request.query.get("to_run") or ""
        history = self.ctx.promotions.page(name, limit=200).items
        target = next((p for p in history if p.to_run == to_run), None)
        if to_run and target is None:
            raise BadRequest(f"run {to_run} never served as this model's champion")
        return self.render("rollback.html", state=state, target=target, to_run=to_run)

    def subscriptions(self) -> WebResponse:
        subs = sorted(self.ctx.events.subscriptions(), key=lambda sub: sub.name)
        try:
            eventgrid, eventgrid_problem = eventgrid_endpoint(self.ctx.env), ""
        except SettingsError as e:
            eventgrid, eventgrid_problem = None, str(e)
        return self.render("subscriptions.html", subs=[subscription_row(sub) for sub in subs], eventgrid=eventgrid,
                           eventgrid_problem=eventgrid_problem, EVENTGRID=EVENTGRID)

    def subscription(self, name: str) -> WebResponse:
        sub = None if name == EVENTGRID else self.ctx.events.subscription(check_name(name))
        page = self.ctx.events.deliveries(name, limit=PAGE, continuation=self.request.query.get("continuation") or None)
        return self.render("subscription.html", name=name, sub=subscription_row(sub) if sub else None,
                           deliveries=[delivery_row(d) for d in page.items], continuation=page.continuation,
                           done=self.request.query.get("done"))

    # --- actions: the API's own handlers, with the caller's headers -------------------------------
    def post(self, parts: list[str]) -> WebResponse:
        form = self._form()
        if not csrf.valid(form.get(csrf.FIELD), self.ctx.env, self.request.headers):
            return self.error(403, "This form's security token is missing or has expired. Reload the page and "
                                   "submit it again.")
        if len(parts) == 5 and parts[0] == "models" and parts[2] == "runs" and parts[4] in ACTIONS:
            model, run_id, action = parts[1], parts[3], parts[4]
            comment = form.get("comment", "").strip()
            if action in ("approve", "reject") and not comment:
                return self.error(400, f"Say why you {action} this run: the comment is required.")
            call = self._api(api.run_action, {"model": model, "run": run_id, "action": action},
                             {"by": "dashboard", "comment": comment})
            target = self.url(f"models/{model}/runs/{run_id}", done=action)
        elif len(parts) == 3 and parts[0] == "models" and parts[2] == "rollback":
            model = parts[1]
            if form.get("confirm") != "yes":
                return self.error(400, "Confirm the rollback by ticking the box on the confirmation page.")
            body = {"by": "dashboard", "note": form.get("note", "").strip()[:1000]}
            if form.get("to_run"):
                body["to_run"] = form["to_run"]
            call = self._api(api.rollback, {"model": model}, body)
            target = self.url(f"models/{model}", done="rollback")
        elif len(parts) == 3 and parts[0] == "subscriptions" and parts[2] == "test":
            call = self._api(api.test_subscription, {"name": parts[1]}, {})
            target = self.url(f"subscriptions/{parts[1]}", done="test event sent")
        elif len(parts) == 5 and parts[0] == "subscriptions" and parts[2] == "deliveries" and parts[4] == "redeliver":
            call = self._api(api.redeliver, {"name": parts[1], "delivery": parts[3]}, {"by": "dashboard"})
            target = self.url(f"subscriptions/{parts[1]}", done="redelivery queued")
        else:
            return self.error(404, "There is no such action.")
        if call.status >= 400:
            error = call.body.get("error", {}) if isinstance(call.body, dict) else {}
            return self.error(call.status, error.get("message") or "The action failed.")
        return WebResponse(303, b"", {"Location": target, "Cache-Control": "no-store"})

    def _api(self, action: Callable, route: dict[str, str], body: dict) -> api.ApiResponse:
        request = api.ApiRequest("POST", route, {}, json.dumps(body).encode(), dict(self.request.headers))
        return api.handle(self.ctx, action, request)

    def _form(self) -> dict[str, str]:
        if len(self.request.body) > MAX_FORM:
            raise BadRequest("the form is too large")
        try:
            parsed = parse_qs(self.request.body.decode("utf-8"), keep_blank_values=True, max_num_fields=20)
        except (UnicodeDecodeError, ValueError):
            raise BadRequest("the form could not be read") from None
        return {k: v[0] for k, v in parsed.items()}


# --- what the pages show, computed from stored rows --------------------------------------------

def key_metric(state: ModelState) -> str | None:
    """The model's first gate rule's metric, else the champion's first metric."""
    rules = state.definition.policy.rules
    if rules:
        return rules[0].metric
    return next(iter(state.champion.metrics), None) if state.champion else None


def sparkline(values: list[float], width: int = 120, height: int = 28) -> str:
    """An SVG polyline's points for a small trend (no JavaScript needed)."""
    if len(values) < 2:
        return ""
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    step = width / (len(values) - 1)
    return " ".join(f"{i * step:.1f},{height - 2 - (v - low) / span * (height - 4):.1f}" for i, v in enumerate(values))


def trend_data(state: ModelState, metric: str | None, runs: list[Run], history: list) -> dict:
    """The chart's data, oldest first: each evaluated run's challenger and champion value, thresholds, marks."""
    points = []
    for run in sorted((r for r in runs if metric and metric in r.metrics), key=lambda r: r.ended_at or r.created_at):
        champion = (run.decision or {}).get("champion_metrics") or {}
        at = parse_iso(run.ended_at or run.updated_at or run.created_at)
        points.append({"t": int(at.timestamp()) if at else 0, "run_id": run.run_id, "status": run.status.value,
                       "challenger": run.metrics[metric], "champion": champion.get(metric)})
    for version, point in enumerate(points, start=1):
        point["version"] = version
    rule = next((r for r in state.definition.policy.rules if r.metric == metric), None)
    thresholds = [] if rule is None else [{"label": f"{label} {value:g}", "value": value}
                                          for label, value in (("min", rule.minimum), ("max", rule.maximum))
                                          if value is not None]
    marks = []
    for promotion in history:
        at = parse_iso(promotion.at)
        if at:
            marks.append({"t": int(at.timestamp()), "kind": promotion.reason.value, "to_run": promotion.to_run})
    return {"metric": metric, "points": points, "thresholds": thresholds, "marks": sorted(marks, key=lambda m: m["t"])}


def timeline(run: Run) -> list[dict]:
    """Each state the run entered, in order, with when and how long it stayed."""
    entries = sorted(run.step_times.items(), key=lambda kv: kv[1])
    out = []
    for i, (status, at) in enumerate(entries):
        until = entries[i + 1][1] if i + 1 < len(entries) else (run.ended_at or None)
        out.append({"status": status, "at": at, "took": _duration(at, until) if until else "now"})
    return out


def available_actions(run: Run) -> list[str]:
    if run.status is Status.AWAITING_APPROVAL:
        return ["approve", "reject", "cancel"]
    if run.status is Status.FAILED and any(not o.get("ok") for o in run.endpoints.values()):
        return ["retry"]
    if not run.terminal and run.status is not Status.PROMOTING:
        return ["cancel"]
    return []


def trace_url(env, trace_id: str) -> str | None:
    """The run's trace in the operator's tracing tool, when `RETRAIN_TRACE_URL_TEMPLATE` says where."""
    template = (env.get(TRACE_URL_SETTING) or "").strip()
    if not template or "{trace_id}" not in template or urlsplit(template).scheme not in ("https", "http"):
        return None
    if len(trace_id or "") != 32 or any(c not in "0123456789abcdef" for c in trace_id):
        return None
    return template.replace("{trace_id}", trace_id)


def subscription_row(sub: Subscription) -> dict:
    parts = urlsplit(sub.url)
    host = parts.hostname or "?"
    return {"name": sub.name, "model": sub.model, "host": f"{host}:{parts.port}" if parts.port else host,
            "event_types": [t.value for t in sub.event_types], "enabled": sub.enabled,
            "disabled_reason": sub.disabled_reason, "description": sub.description}


DELIVERY_STATES = {DeliveryStatus.DELIVERED: "delivered", DeliveryStatus.GONE: "disabled",
                   DeliveryStatus.DEAD_LETTERED: "dead-lettered"}


def delivery_row(delivery: Delivery) -> dict:
    """What an operator reads of one delivery: its state in words, the run it is about, the answer trimmed."""
    event = delivery.event
    state = DELIVERY_STATES.get(delivery.status) or ("retrying" if delivery.attempts else "sending")
    run_id = event.subject.removeprefix("runs/") if event.model and event.subject.startswith("runs/") else None
    answer = " ".join(delivery.last_answer.split())
    return {"key": delivery.key, "event_id": event.id, "type": event.type.value, "model": event.model,
            "run_id": run_id, "state": state, "attempts": delivery.attempts, "last_status": delivery.last_status,
            "answer": answer[:ANSWER_SHOWN] + ("…" if len(answer) > ANSWER_SHOWN else ""),
            "next_attempt_at": delivery.next_attempt_at if delivery.status is DeliveryStatus.PENDING else "",
            "reason": delivery.reason, "created_at": delivery.created_at,
            "redeliverable": delivery.status is not DeliveryStatus.PENDING}
