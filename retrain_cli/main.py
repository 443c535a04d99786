"""The `retrain` command: models, runs, approvals and rollbacks over the HTTP API; data on stdout, progress on stderr."""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import requests
from rich.console import Console
from rich.table import Table

FAILED = {"failed", "rejected", "cancelled", "superseded"}
ACTIVE_HINT = "awaiting_approval"


class ApiFailure(click.ClickException):
    """An answer the user must read: the API's own error message, or why it could not be reached."""


@dataclass
class Api:
    url: str
    key: str | None
    timeout: float = 30.0

    def call(self, method: str, path: str, body: Any = None, **params: Any) -> Any:
        headers = {"Accept": "application/json"}
        if self.key:
            headers["x-functions-key"] = self.key
        query = {k: v for k, v in params.items() if v not in (None, "")}
        try:
            response = requests.request(method, f"{self.url.rstrip('/')}/api/{path}", json=body, params=query,
                                        headers=headers, timeout=self.timeout)
        except requests.ConnectionError:
            raise ApiFailure(f"cannot reach the retrain API at {self.url}: is the app running? "
                             "(set --api-url or RETRAIN_API_URL)") from None
        except requests.Timeout:
            raise ApiFailure(f"the retrain API at {self.url} did not answer within {self.timeout:.0f}s") from None
        try:
            payload = response.json()
        except ValueError:
            payload = None
        if response.status_code >= 400:
            error = (payload or {}).get("error") if isinstance(payload, dict) else None
            if response.status_code == 401 and not error:
                raise ApiFailure("the API refused the call (401): pass a function key with --api-key or "
                                 "RETRAIN_API_KEY")
            message = error.get("message") if isinstance(error, dict) else response.text[:300]
            problems = error.get("problems") if isinstance(error, dict) else None
            detail = "".join(f"\n  - {p}" for p in problems or [])
            raise ApiFailure(f"{response.status_code} {error.get('code', '') if error else ''}: {message}{detail}")
        if payload is None:
            raise ApiFailure(f"the API answered {response.status_code} with something that is not JSON")
        return payload


@dataclass
class Out:
    """Where results go: a rich table on a terminal, JSON when piped (or as `-o` says)."""

    format: str
    console: Console
    err: Console

    def emit(self, data: Any, columns: list[tuple[str, str]] | None = None, rows: list[dict] | None = None,
             title: str | None = None) -> None:
        if self.format == "json" or columns is None:
            click.echo(json.dumps(data, indent=2))
            return
        table = Table(title=title, show_lines=False)
        for header, _ in columns:
            table.add_column(header, overflow="fold")
        for row in rows if rows is not None else [data]:
            table.add_row(*[_cell(_get(row, path)) for _, path in columns])
        self.console.print(table)


def _get(row: dict, path: str) -> Any:
    value: Any = row
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _cell(value: Any) -> str:
    """A table cell: times to the second, numbers to 4 significant digits."""
    if value is None:
        return "—"
    if isinstance(value, str) and len(value) >= 19 and value[10:11] == "T" and value[4:5] == "-":
        return value[:19].replace("T", " ")
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dict):
        return ", ".join(f"{k}={_cell(v)}" for k, v in value.items())
    return str(value)


RUN_COLUMNS = [("run", "run_id"), ("status", "status"), ("trigger", "trigger"), ("data", "data.name"),
               ("created", "created_at"), ("reason", "reason")]


@click.group()
@click.option("--api-url", envvar="RETRAIN_API_URL", default="http://127.0.0.1:7071", show_default=True,
              help="the app's base URL (env RETRAIN_API_URL)")
@click.option("--api-key", envvar="RETRAIN_API_KEY", default=None,
              help="a function key, sent as x-functions-key (env RETRAIN_API_KEY)")
@click.option("-o", "--output", type=click.Choice(["table", "json"]), default=None,
              help="table on a terminal, json when piped")
@click.pass_context
def cli(ctx: click.Context, api_url: str, api_key: str | None, output: str | None) -> None:
    """Operate model retraining: models, runs, approvals, rollbacks, event subscriptions."""
    fmt = output or ("table" if sys.stdout.isatty() else "json")
    ctx.obj = (Api(api_url, api_key), Out(fmt, Console(), Console(stderr=True)))


def _ctx() -> tuple[Api, Out]:
    return click.get_current_context().obj


# --- models -------------------------------------------------------------------------------------

@cli.group()
def models() -> None:
    """Registered models."""


@models.command("list")
def models_list() -> None:
    api, out = _ctx()
    body = api.call("GET", "models")
    out.emit(body, [("model", "name"), ("champion", "champion.run_id"), ("active run", "active_run"),
                    ("pending", "pending_run"), ("valid", "valid")], body["models"], "models")


@models.command("show")
@click.argument("model")
def models_show(model: str) -> None:
    api, out = _ctx()
    body = api.call("GET", f"models/{model}")
    out.emit(body, [("model", "name"), ("champion", "champion.run_id"), ("metrics", "champion.metrics"),
                    ("since", "champion.since"), ("active run", "active_run"), ("data prefix", "data_prefix")])


@models.command("put")
@click.argument("model")
@click.option("-f", "--file", "path", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=True,
              help="the definition (JSON)")
def models_put(model: str, path: Path) -> None:
    """Register or redefine MODEL from a JSON file."""
    api, out = _ctx()
    try:
        definition = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as e:
        raise click.BadParameter(f"{path} is not JSON: {e}", param_hint="-f") from None
    body = api.call("PUT", f"models/{model}", definition)
    for warning in body.get("warnings") or []:
        out.err.print(f"[yellow]warning:[/] {warning}")
    out.emit(body, [("model", "name"), ("champion", "champion.run_id"), ("data prefix", "data_prefix")])


# --- runs ---------------------------------------------------------------------------------------

@cli.group()
def runs() -> None:
    """A model's runs."""


@runs.command("list")
@click.argument("model")
@click.option("--status", default=None, help="only runs in this status")
@click.option("--limit", type=click.IntRange(1, 1000), default=20, show_default=True)
def runs_list(model: str, status: str | None, limit: int) -> None:
    api, out = _ctx()
    body = api.call("GET", f"models/{model}/runs", status=status, limit=limit)
    out.emit(body, RUN_COLUMNS, body["runs"], f"runs of {model}")


@runs.command("show")
@click.argument("model")
@click.argument("run")
def runs_show(model: str, run: str) -> None:
    api, out = _ctx()
    body = api.call("GET", f"models/{model}/runs/{run}")
    out.emit(body, RUN_COLUMNS + [("decision", "decision.summary"), ("error", "error")])


@runs.command("watch")
@click.argument("model")
@click.argument("run")
@click.option("--timeout", type=float, default=3600, show_default=True, help="seconds before giving up")
def runs_watch(model: str, run: str, timeout: float) -> None:
    """Follow RUN until it ends (or awaits approval); exit 1 if it fails or is rejected."""
    _watch(model, run, timeout)


def _watch(model: str, run_id: str, timeout: float) -> None:
    api, out = _ctx()
    seen: set[str] = set()
    deadline, delay = time.monotonic() + timeout, 0.5
    while True:
        run = api.call("GET", f"models/{model}/runs/{run_id}")
        for status, at in sorted(run.get("step_times", {}).items(), key=lambda kv: kv[1]):
            if status not in seen:
                seen.add(status)
                out.err.print(f"{at}  {status}")
        if run["terminal"] or run["status"] == ACTIVE_HINT:
            out.err.print(f"{run['status']}: {run['reason']}")
            out.emit(run, RUN_COLUMNS + [("decision", "decision.summary")])
            if run["status"] in FAILED:
                raise SystemExit(1)
            return
        if time.monotonic() > deadline:
            raise ApiFailure(f"run {run_id} is still {run['status']} after {timeout:.0f}s")
        time.sleep(delay)
        delay = min(delay * 1.5, 5.0)


@cli.command("retrain")
@click.argument("model")
@click.option("--blob", default=None, help="a blob in the training container (default: the newest for MODEL)")
@click.option("--wait", is_flag=True, help="follow the run; exit 1 if it fails or is rejected")
@click.option("--timeout", type=float, default=3600, show_default=True)
def retrain(model: str, blob: str | None, wait: bool, timeout: float) -> None:
    """Start a run of MODEL."""
    api, out = _ctx()
    body = api.call("POST", f"models/{model}/retrain", {"blob": blob} if blob else None)
    out.err.print(body["message"])
    if wait:
        _watch(model, body["run"]["run_id"], timeout)
    else:
        out.emit(body["run"], RUN_COLUMNS)


def _action(verb: str, model: str, run: str, comment: str | None) -> None:
    api, out = _ctx()
    body = api.call("POST", f"models/{model}/runs/{run}/{verb}", {"by": "cli", "comment": comment or ""})
    out.emit(body, RUN_COLUMNS)


def _decision(verb: str, summary: str) -> click.Command:
    """`retrain approve` and `retrain reject`: a person's decision on a run awaiting approval, with why."""

    @click.argument("model")
    @click.argument("run")
    @click.option("--comment", required=True, help="why (recorded with the decision)")
    def decide(model: str, run: str, comment: str) -> None:
        _action(verb, model, run, comment)

    decide.__doc__ = summary
    return cli.command(verb)(decide)


approve = _decision("approve", "Let RUN of MODEL, awaiting approval, be promoted.")
reject = _decision("reject", "Turn down RUN of MODEL, awaiting approval.")


@cli.command("rollback")
@click.argument("model")
@click.option("--to", "to_run", default=None, help="a run that once served (default: the one before the champion)")
@click.option("--note", default="", help="why (recorded)")
def rollback(model: str, to_run: str | None, note: str) -> None:
    """Point every endpoint of MODEL back at an earlier model."""
    api, out = _ctx()
    body = {"by": "cli", "note": note, **({"to_run": to_run} if to_run else {})}
    result = api.call("POST", f"models/{model}/rollback", body)
    out.emit(result, [("model", "model"), ("from", "promotion.from_run"), ("to", "promotion.to_run"),
                      ("at", "promotion.at")])


def _listing(model: str, what: str, limit: int, columns: list[tuple[str, str]]) -> None:
    """The first page of one of MODEL's listings (`promotions`, `audit`), newest first."""
    api, out = _ctx()
    body = api.call("GET", f"models/{model}/{what}", limit=limit)
    out.emit(body, columns, body[what], f"{what} of {model}")


@cli.command("promotions")
@click.argument("model")
@click.option("--limit", type=click.IntRange(1, 1000), default=20, show_default=True)
def promotions(model: str, limit: int) -> None:
    """What served MODEL when, and who or what put it there."""
    _listing(model, "promotions", limit, [("at", "at"), ("how", "reason"), ("from", "from_run"), ("to", "to_run"),
                                          ("by", "by"), ("note", "note")])


@cli.command("audit")
@click.argument("model")
@click.option("--limit", type=click.IntRange(1, 1000), default=20, show_default=True)
def audit(model: str, limit: int) -> None:
    """Who approved, rejected, cancelled, retried, rolled back or redefined MODEL, newest first."""
    _listing(model, "audit", limit, [("at", "at"), ("action", "action"), ("target", "target"), ("by", "by.name"),
                                     ("kind", "by.kind"), ("note", "by.note")])


from .subscriptions import subscriptions  # noqa: E402 (it uses _ctx, defined above)

cli.add_command(subscriptions)


def main() -> None:
    cli(prog_name="retrain")


if __name__ == "__main__":
    main()
