"""`retrain subscriptions ...` through click's runner against the app (devhost) and a local receiver that checks
every signature: only the HTTP API in between."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from retrain_cli.main import cli
from tests.receiver import start_receiver

from .operator_world import start_host, wait_for
from .test_events import SECRET, make_world


@pytest.fixture(scope="module")
def app(azurite, chain_emulator):
    receiver = start_receiver()
    world = make_world(azurite, chain_emulator, receiver)
    with start_host(world) as host:
        yield host, receiver
    receiver.stop()


def cli_json(app, *args: str, output: str = "json"):
    host, _ = app
    result = CliRunner(env={"COLUMNS": "250"}).invoke(cli, ["--api-url", host.url, "-o", output, *args],
                                                      catch_exceptions=False)
    return result, (json.loads(result.stdout) if result.exit_code == 0 and output == "json" else None)


def put(app, name: str, path: str, *extra: str):
    _, receiver = app
    return cli_json(app, "subscriptions", "put", name, "--url", receiver.url(path, SECRET),
                    "--secret-setting", "RETRAIN_SECRET_HOOK", *extra)


def test_put_with_options_then_list_and_show(app):
    result, body = put(app, "deploys", "/cli/deploys", "--event-type", "retrain.run.promoted", "--model", "census")
    assert result.exit_code == 0, result.output
    assert body["event_types"] == ["retrain.run.promoted"] and body["model"] == "census"
    _, listed = cli_json(app, "subscriptions", "list")
    assert "deploys" in [s["name"] for s in listed["subscriptions"]]
    _, shown = cli_json(app, "subscriptions", "show", "deploys")
    assert shown["url"].endswith("/cli/deploys") and shown["enabled"] is True


def test_put_from_a_file_with_an_option_overriding_it(app, tmp_path):
    _, receiver = app
    path = tmp_path / "sub.json"
    path.write_text(json.dumps({"url": receiver.url("/cli/file", SECRET), "secret_setting": "RETRAIN_SECRET_HOOK",
                                "description": "from the file"}))
    result, body = cli_json(app, "subscriptions", "put", "from-file", "-f", str(path), "--description", "overridden")
    assert result.exit_code == 0, result.output
    assert body["description"] == "overridden" and body["url"].endswith("/cli/file")


def test_put_without_a_file_or_url_is_a_usage_error(app):
    result, _ = cli_json(app, "subscriptions", "put", "nothing")
    assert result.exit_code == 2 and "--url and --secret-setting" in result.output


def test_a_refused_subscription_shows_each_problem(app):
    result, _ = cli_json(app, "subscriptions", "put", "bad", "--url", "http://example.com/x",
                         "--secret-setting", "RETRAIN_STORAGE")
    assert result.exit_code == 1 and "400 InvalidSubscription" in result.stderr
    assert "https" in result.stderr and "\n  - " in result.stderr


def test_test_then_deliveries_then_redeliver_sends_the_same_webhook_id_again(app):
    _, receiver = app
    put(app, "pager", "/cli/pager")
    result, sent = cli_json(app, "subscriptions", "test", "pager")
    assert result.exit_code == 0, result.output
    assert sent["event_type"] == "retrain.test"
    wait_for(lambda: len(receiver.at("/cli/pager")) == 1, timeout=60)

    def delivered():
        _, listed = cli_json(app, "subscriptions", "deliveries", "pager")
        return listed["deliveries"][0]["status"] == "delivered" and listed["deliveries"]
    (delivery,) = wait_for(delivered, timeout=30)
    assert delivery["id"] == sent["id"] and delivery["attempts"] == 1 and delivery["last_answer"]["status"] == 200
    result, again = cli_json(app, "subscriptions", "redeliver", "pager", delivery["id"])
    assert result.exit_code == 0, result.output
    assert again["status"] == "pending" and again["id"] == delivery["id"]
    posts = wait_for(lambda: len(receiver.at("/cli/pager")) == 2 and receiver.at("/cli/pager"), timeout=60)
    assert len({p.headers["webhook-id"] for p in posts}) == 1 and all(p.verified for p in posts)


def test_deliveries_as_a_table(app):
    put(app, "tabled", "/cli/tabled")
    cli_json(app, "subscriptions", "test", "tabled")
    result, _ = cli_json(app, "subscriptions", "deliveries", "tabled", output="table")
    assert result.exit_code == 0 and "retrain.test" in result.stdout and "attempts" in result.stdout


def test_delete_then_show_is_a_404(app):
    put(app, "gone", "/cli/gone")
    result, body = cli_json(app, "subscriptions", "delete", "gone")
    assert result.exit_code == 0 and body == {"name": "gone", "deleted": True}
    result, _ = cli_json(app, "subscriptions", "show", "gone")
    assert result.exit_code == 1 and "404 UnknownSubscription" in result.stderr


def test_redelivering_an_unknown_delivery_says_so(app):
    put(app, "empty", "/cli/empty")
    result, _ = cli_json(app, "subscriptions", "redeliver", "empty", "nosuch~id")
    assert result.exit_code == 1 and "404" in result.stderr
