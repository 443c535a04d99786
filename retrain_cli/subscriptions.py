"""`retrain subscriptions ...`: where events go, what was sent, and sending again; over the HTTP API only."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from .main import _ctx

SUBSCRIPTION_COLUMNS = [("name", "name"), ("model", "model"), ("url", "url"), ("event types", "event_types"),
                        ("enabled", "enabled"), ("disabled because", "disabled_reason")]
DELIVERY_COLUMNS = [("id", "id"), ("event", "event_type"), ("subject", "subject"), ("status", "status"),
                    ("attempts", "attempts"), ("last answer", "last_answer.status"), ("next attempt", "next_attempt_at"),
                    ("reason", "reason")]


@click.group()
def subscriptions() -> None:
    """Webhook subscriptions: where events are sent, and their deliveries."""


@subscriptions.command("list")
def subscriptions_list() -> None:
    """Every subscription (and, on stderr, the Event Grid topic when one is configured)."""
    api, out = _ctx()
    body = api.call("GET", "subscriptions")
    out.emit(body, SUBSCRIPTION_COLUMNS, body["subscriptions"], "subscriptions")
    if body.get("eventgrid") and out.format == "table":
        out.err.print(f"Event Grid topic: {body['eventgrid']['endpoint']} (deliveries: "
                      "retrain subscriptions deliveries eventgrid)")


@subscriptions.command("show")
@click.argument("name")
def subscriptions_show(name: str) -> None:
    """One subscription."""
    api, out = _ctx()
    out.emit(api.call("GET", f"subscriptions/{name}"), SUBSCRIPTION_COLUMNS + [("description", "description")])


@subscriptions.command("put")
@click.argument("name")
@click.option("-f", "--file", "path", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="the subscription (JSON); options given too replace its fields")
@click.option("--url", default=None, help="the receiver's https URL")
@click.option("--secret-setting", default=None, help="the app setting holding the signing secret (whsec_...)")
@click.option("--event-type", "event_types", multiple=True, help="an event type to send (repeat; default: all)")
@click.option("--model", default=None, help="only this model's events (default: every model)")
@click.option("--description", default=None)
@click.option("--disabled", is_flag=True, default=None, help="register it switched off")
def subscriptions_put(name: str, path: Path | None, url: str | None, secret_setting: str | None,
                      event_types: tuple[str, ...], model: str | None, description: str | None,
                      disabled: bool | None) -> None:
    """Create or redefine subscription NAME from a JSON file and/or options."""
    api, out = _ctx()
    body: dict[str, Any] = {}
    if path is not None:
        try:
            body = json.loads(path.read_text())
        except (ValueError, UnicodeDecodeError) as e:
            raise click.BadParameter(f"{path} is not JSON: {e}", param_hint="-f") from None
        if not isinstance(body, dict):
            raise click.BadParameter(f"{path} must hold a JSON object", param_hint="-f")
    given = {"url": url, "secret_setting": secret_setting, "event_types": list(event_types) or None, "model": model,
             "description": description, "enabled": False if disabled else None}
    body.update({k: v for k, v in given.items() if v is not None})
    if path is None and not {"url", "secret_setting"} <= set(body):
        raise click.UsageError("give -f FILE, or at least --url and --secret-setting")
    stored = api.call("PUT", f"subscriptions/{name}", body)
    for warning in stored.get("warnings") or []:
        out.err.print(f"[yellow]warning:[/] {warning}")
    out.emit(stored, SUBSCRIPTION_COLUMNS)


@subscriptions.command("delete")
@click.argument("name")
def subscriptions_delete(name: str) -> None:
    """Remove subscription NAME (its deliveries stay listed)."""
    api, out = _ctx()
    out.emit(api.call("DELETE", f"subscriptions/{name}"), [("name", "name"), ("deleted", "deleted")])


@subscriptions.command("test")
@click.argument("name")
def subscriptions_test(name: str) -> None:
    """Send a retrain.test event to NAME now; its delivery is listed like any other."""
    api, out = _ctx()
    out.emit(api.call("POST", f"subscriptions/{name}/test"), DELIVERY_COLUMNS)


@subscriptions.command("deliveries")
@click.argument("name")
@click.option("--limit", type=click.IntRange(1, 1000), default=20, show_default=True)
def subscriptions_deliveries(name: str, limit: int) -> None:
    """What was sent to NAME (or `eventgrid`), newest first: status, attempts, the last answer."""
    api, out = _ctx()
    body = api.call("GET", f"subscriptions/{name}/deliveries", limit=limit)
    out.emit(body, DELIVERY_COLUMNS, body["deliveries"], f"deliveries of {name}")


@subscriptions.command("redeliver")
@click.argument("name")
@click.argument("delivery")
def subscriptions_redeliver(name: str, delivery: str) -> None:
    """Send DELIVERY of NAME again from its first attempt, with the same event id."""
    api, out = _ctx()
    out.emit(api.call("POST", f"subscriptions/{name}/deliveries/{delivery}/redeliver", {"by": "cli"}),
             DELIVERY_COLUMNS)
