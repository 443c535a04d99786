"""Credentials go only where they belong: a local listener registered every way an attacker could
(training URL, classic and ARM endpoints, global parameters, the data parameter, a redirect from an
allowed host) receives no key, no token and no SAS, through runs and rollbacks alike; and every
refusal is a 400 naming the field and the rule.

Easy Auth's front end cannot exist here: identity tests set the `X-MS-CLIENT-PRINCIPAL` header it
would set (`retrain.principal.encode_principal`), with `RETRAIN_EASY_AUTH=true`.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import pytest

from devhost.world import DEV_KEY
from retrain import api
from retrain.endpoints import EndpointSpec
from retrain.principal import encode_principal
from retrain.runs import Status

from .conftest import ARM_TOKEN, RESOURCE, TRAIN_KEY, WS_TOKEN, good_data
from .test_promotion import APPROVAL, arm_url, promote_first

CLIENT_SECRET, OTHER_KEY = "client-secret-of-the-app", "another-models-bes-key"
ARM_PATH = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.MachineLearning/webServices/w"


@dataclass
class Listener:
    """A local HTTP server that records everything it is sent; `redirect_to` makes it answer 307 there."""

    redirect_to: str | None = None
    status: int = 307
    received: list[dict] = field(default_factory=list)

    def __post_init__(self):
        listener = self

        class Handler(BaseHTTPRequestHandler):
            def _any(self):
                length = int(self.headers.get("Content-Length") or 0)
                listener.received.append({"method": self.command, "path": self.path,
                                          "headers": dict(self.headers.items()),
                                          "body": self.rfile.read(length).decode("utf-8", "replace")})
                if listener.redirect_to:
                    self.send_response(listener.status)
                    self.send_header("Location", listener.redirect_to + self.path)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body = b'{"properties": {}, "Resources": []}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _any

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    @property
    def netloc(self) -> str:
        return urlsplit(self.url).netloc

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def listener():
    server = Listener()
    yield server
    server.close()


@pytest.fixture
def redirector(listener, world):
    """An allowed host (on ALLOWED_SERVICE_HOSTS) that redirects every request to the listener."""
    server = Listener(redirect_to=listener.url)
    world.ctx.env = {**world.ctx.env, "ALLOWED_SERVICE_HOSTS": f"{world.ctx.env['ALLOWED_SERVICE_HOSTS']},"
                                                               f"{server.netloc}"}
    yield server
    server.close()


@pytest.fixture
def secrets(world):
    """The app's settings an attacker wants, present in its environment as they are in Azure."""
    world.ctx.env = {**world.ctx.env, "AzureWebJobsStorage": world.ctx.env["RETRAIN_STORAGE"],
                     "AZURE_CLIENT_SECRET": CLIENT_SECRET, "RETRAIN_SECRET_OTHER_MODEL_KEY": OTHER_KEY}
    return (TRAIN_KEY, WS_TOKEN, ARM_TOKEN, CLIENT_SECRET, OTHER_KEY, DEV_KEY)


def assert_nothing_reached(listener: Listener, secrets) -> None:
    for request in listener.received:
        text = json.dumps(request)
        assert not any(k.lower() == "authorization" for k in request["headers"]), request
        for secret in secrets:
            assert secret not in text, f"{secret[:6]}... reached the listener: {request['method']} {request['path']}"
        for marker in ("sig=", "sig%3D", "AccountKey", "SharedAccessSignature", "Bearer"):
            assert marker not in text, f"{marker} reached the listener"
    assert listener.received == [], f"the listener was called: {[(r['method'], r['path']) for r in listener.received]}"


def call(world, handler, method="POST", body=None, headers=None, **route):
    request = api.ApiRequest(method, {"model": world.model, **route}, {},
                             json.dumps(body).encode() if body is not None else b"", headers or {})
    return api.handle(world.ctx, handler, request)


def definition(world, training_url=None, endpoints=None, **training) -> dict:
    return {"training": {"url": training_url or world.bes_url, "key_setting": "RETRAIN_SECRET_CHAIN_BES_KEY",
                         **training},
            "endpoints": endpoints if endpoints is not None else [],
            "policy": {"rules": [{"metric": "AUC", "min": 0.6}]}}


def store_directly(world, body: dict) -> None:
    """A definition stored before the rules existed (or by a writer that skipped the API)."""
    from retrain.models import ModelDefinition

    world.ctx.models.put(ModelDefinition.from_json(world.model, body))


def classic(url: str, key_setting: str = "RETRAIN_SECRET_CHAIN_WS_TOKEN") -> dict:
    return {"kind": "classic", "url": url, "key_setting": key_setting, "resource_name": RESOURCE}


def arm(url: str) -> dict:
    return {"kind": "arm", "url": url, "resource_name": RESOURCE}


# --- refused at registration ---------------------------------------------------------------------

@pytest.mark.parametrize("where", ["training", "classic", "arm"])
def test_a_definition_naming_another_host_is_refused_naming_the_field_and_the_setting(world, listener, where):
    body = {"training": definition(world, training_url=f"{listener.url}/workspaces/w/services/s"),
            "classic": definition(world, endpoints=[classic(f"{listener.url}/workspaces/w/webservices/s/endpoints/e")]),
            "arm": definition(world, endpoints=[arm(listener.url + ARM_PATH)])}[where]
    answer = call(world, api.model, "PUT", body)
    field_name = "training.url" if where == "training" else "endpoints[0].url"
    assert answer.status == 400, answer.body
    [problem] = answer.body["error"]["problems"]
    assert problem.startswith(f"{field_name}: host {listener.netloc} is not allowed")
    assert "ALLOWED_SERVICE_HOSTS" in problem
    assert_nothing_reached(listener, ())


def test_plain_http_to_an_azure_host_is_refused(world):
    answer = call(world, api.model, "PUT", definition(
        world, training_url="http://ussouthcentral.services.azureml.net/workspaces/w/services/s"))
    assert answer.status == 400 and "must use https" in answer.body["error"]["problems"][0]


def test_an_arm_endpoint_must_be_on_the_arm_host(world):
    answer = call(world, api.model, "PUT", definition(
        world, endpoints=[arm("https://ussouthcentral.services.azureml.net" + ARM_PATH)]))
    assert answer.status == 400 and "management.azure.com" in answer.body["error"]["problems"][0]


@pytest.mark.parametrize("setting", ["RETRAIN_STORAGE", "AzureWebJobsStorage", "AZURE_CLIENT_SECRET",
                                     "ARM_ACCESS_TOKEN", "OTHER_MODEL_KEY"])
def test_a_key_setting_outside_the_rule_is_refused_without_saying_whether_it_exists(world, secrets, setting):
    body = definition(world)
    body["training"]["key_setting"] = setting
    answer = call(world, api.model, "PUT", body)
    assert answer.status == 400
    [problem] = answer.body["error"]["problems"]
    assert problem.startswith("training.key_setting:") and "RETRAIN_SECRET_" in problem
    assert "not set" not in problem and "warnings" not in answer.body


@pytest.mark.parametrize("value", ["x?sig=abc", "x?%73ig=abc", "x?%2573ig=abc", "x?access_token=abc",
                                   "x?code=abc", "https://u:p@h/x", "AccountKey=abc"])
def test_credentials_in_global_parameters_are_refused_and_never_echoed(world, value):
    answer = call(world, api.model, "PUT", definition(world, global_parameters={"Extra": f"{value}-SENTINEL"}))
    assert answer.status == 400
    assert "training.global_parameters['Extra']" in answer.text() and "SENTINEL" not in answer.text()
    with pytest.raises(Exception):
        world.ctx.models.get(world.model)  # nothing stored


def test_credentials_in_a_url_are_refused_after_decoding(world):
    answer = call(world, api.model, "PUT", definition(world, training_url=world.bes_url + "?%2573ig=SENTINEL"))
    assert answer.status == 400 and "(sig=...)" in answer.text() and "SENTINEL" not in answer.text()


# --- re-checked at call time -------------------------------------------------------------------------

def test_a_training_url_stored_earlier_is_refused_when_the_run_submits(world, pump, listener, secrets):
    store_directly(world, definition(world, training_url=f"{listener.url}/workspaces/w/services/s"))
    run = world.land("census/a.csv", good_data())
    pump.run()
    run = world.run(run.run_id)
    assert run.status is Status.FAILED and "ALLOWED_SERVICE_HOSTS" in run.reason
    assert_nothing_reached(listener, secrets)


def test_a_host_removed_from_the_setting_is_refused_at_call_time(world, pump):
    assert call(world, api.model, "PUT", definition(world)).status == 201
    world.ctx.env = {k: v for k, v in world.ctx.env.items() if k != "ALLOWED_SERVICE_HOSTS"}
    run = world.land("census/a.csv", good_data())
    pump.run()
    run = world.run(run.run_id)
    assert run.status is Status.FAILED and "training.url" in run.reason and "ALLOWED_SERVICE_HOSTS" in run.reason


def test_a_key_setting_stored_earlier_outside_the_rule_is_never_read(world, pump, secrets):
    body = definition(world)
    body["training"]["key_setting"] = "AZURE_CLIENT_SECRET"
    store_directly(world, body)
    run = world.land("census/a.csv", good_data())
    pump.run()
    run = world.run(run.run_id)
    assert run.status is Status.FAILED and "RETRAIN_SECRET_" in run.reason and CLIENT_SECRET not in run.reason


def test_redefining_endpoints_to_a_listener_then_rolling_back_sends_it_nothing(world, pump, listener, secrets):
    """The attack of the issue: keep the live state, point the endpoints elsewhere, call rollback."""
    world.register()
    promote_first(world, pump)
    promote_first(world, pump, name="census/second.csv", seed=2)
    store_directly(world, definition(world, endpoints=[
        classic(f"{listener.url}/workspaces/w/webservices/s/endpoints/e"),
        classic(f"{listener.url}/workspaces/w/webservices/s/endpoints/f", key_setting="RETRAIN_SECRET_OTHER_MODEL_KEY"),
        arm(listener.url + ARM_PATH)]))
    answer = call(world, api.rollback, body={})
    assert answer.status == 502
    outcomes = answer.body["error"]["endpoints"]
    assert len(outcomes) == 3 and all("ALLOWED_SERVICE_HOSTS" in o["error"] for o in outcomes.values())
    assert_nothing_reached(listener, secrets)


def test_a_promotion_to_listener_endpoints_fails_and_sends_nothing(world, pump, listener, secrets):
    store_directly(world, definition(world, endpoints=[
        classic(f"{listener.url}/workspaces/w/webservices/s/endpoints/e"), arm(listener.url + ARM_PATH)]))
    run = world.land("census/a.csv", good_data())
    pump.run()
    run = world.run(run.run_id)
    assert run.status is Status.FAILED and "promotion failed" in run.reason and "ALLOWED_SERVICE_HOSTS" in run.reason
    assert_nothing_reached(listener, secrets)


def test_global_parameters_and_the_data_parameter_pointing_at_a_listener_get_nothing(world, pump, listener, secrets):
    body = definition(world, global_parameters={"Data": f"{listener.url}/data.csv", "Notify": listener.url},
                      data_parameter="Data")
    assert call(world, api.model, "PUT", body).status == 201
    run = world.land("census/a.csv", good_data())
    pump.run()
    assert world.run(run.run_id).terminal
    assert_nothing_reached(listener, secrets)


# --- redirects from an allowed host ------------------------------------------------------------

@pytest.mark.parametrize("status", [302, 307, 308])
def test_a_redirect_from_the_training_service_is_not_followed(world, pump, listener, redirector, secrets, status):
    redirector.status = status
    assert call(world, api.model, "PUT", definition(world, training_url=f"{redirector.url}/workspaces/w/services/s")
                ).status == 201
    run = world.land("census/a.csv", good_data())
    pump.run()
    run = world.run(run.run_id)
    assert run.status is Status.FAILED and "redirect" in run.reason and "not followed" in run.reason
    assert redirector.received
    assert_nothing_reached(listener, secrets)


def test_a_redirect_from_an_endpoint_during_rollback_is_not_followed(world, pump, listener, redirector, secrets):
    world.register()
    promote_first(world, pump)
    promote_first(world, pump, name="census/second.csv", seed=2)
    store_directly(world, definition(world, endpoints=[
        classic(f"{redirector.url}/workspaces/w/webservices/s/endpoints/e"), arm(redirector.url + ARM_PATH)]))
    answer = call(world, api.rollback, body={})
    assert answer.status == 502
    assert all("not followed" in o["error"] for o in answer.body["error"]["endpoints"].values())
    assert len(redirector.received) >= 2
    assert_nothing_reached(listener, secrets)


def test_the_arm_token_is_asked_for_the_host_it_goes_to(world):
    asked = []

    class Recording:
        def get_token(self, *scopes, **kw):
            from azure.core.credentials import AccessToken
            asked.extend(scopes)
            return AccessToken(ARM_TOKEN, 2 ** 31)

    world.ctx.credential = lambda: Recording()
    updater = world.ctx.updater(EndpointSpec("arm", arm_url(world), RESOURCE, name="w"))
    updater.current_model()
    assert asked == [f"https://{urlsplit(world.emulator.url).netloc}/.default"]


# --- operator identity and roles -----------------------------------------------------------------

APPROVER = encode_principal([("oid", "oid-carol"), ("preferred_username", "carol@contoso.com"),
                             ("scp", "user_impersonation"), ("roles", "Retrain.Approver")])
READER = encode_principal([("oid", "oid-dave"), ("preferred_username", "dave@contoso.com"),
                           ("scp", "user_impersonation")])
ADMIN = encode_principal([("oid", "oid-ada"), ("preferred_username", "ada@contoso.com"),
                          ("scp", "user_impersonation"), ("roles", "Retrain.Admin")])


@pytest.fixture
def easy_auth(world):
    world.ctx.env = {**world.ctx.env, "RETRAIN_EASY_AUTH": "true"}
    return world


def awaiting(world, pump, name="census/a.csv"):
    world.register(policy=APPROVAL)
    run = world.land(name, good_data())
    pump.run()
    assert world.run(run.run_id).status is Status.AWAITING_APPROVAL
    return run.run_id


@pytest.mark.parametrize("action", ["approve", "reject"])
def test_approving_or_rejecting_needs_the_approver_role(easy_auth, pump, action):
    world = easy_auth
    run_id = awaiting(world, pump)
    for headers in ({}, {"X-MS-CLIENT-PRINCIPAL": READER}):
        answer = call(world, api.run_action, body={"by": "me"}, headers=headers, run=run_id, action=action)
        assert answer.status == 403 and answer.body["error"]["role"] == "Retrain.Approver"
        assert "Retrain.Approver" in answer.body["error"]["message"]
    assert world.run(run_id).status is Status.AWAITING_APPROVAL


def test_an_approval_records_the_person_and_keeps_by_only_as_a_note(easy_auth, pump):
    world = easy_auth
    run_id = awaiting(world, pump)
    answer = call(world, api.run_action, body={"by": "the CEO"}, headers={"X-MS-CLIENT-PRINCIPAL": APPROVER},
                  run=run_id, action="approve")
    assert answer.status == 200 and answer.body["decided_by"] == "carol@contoso.com (the CEO)"
    pump.run()
    [promotion] = world.ctx.promotions.history(world.model)
    assert promotion.by == "carol@contoso.com (the CEO)"
    [entry] = call(world, api.audit, "GET").body["audit"]
    assert entry["action"] == "approve" and entry["target"] == run_id
    assert entry["by"] == {"kind": "user", "id": "oid-carol", "name": "carol@contoso.com", "provider": "aad",
                           "roles": ["Retrain.Approver"], "note": "the CEO"}


def test_a_rollback_needs_the_role_and_records_who(easy_auth, pump):
    world = easy_auth
    world.register()
    promote_first(world, pump)
    promote_first(world, pump, name="census/second.csv", seed=2)
    assert call(world, api.rollback, body={}, headers={"X-MS-CLIENT-PRINCIPAL": READER}).status == 403
    answer = call(world, api.rollback, body={"note": "bad predictions"}, headers={"X-MS-CLIENT-PRINCIPAL": APPROVER})
    assert answer.status == 200
    promotion = answer.body["promotion"]
    assert promotion["by"] == "carol@contoso.com" and promotion["actor"]["id"] == "oid-carol"
    assert call(world, api.audit, "GET").body["audit"][0]["action"] == "rollback"


def test_model_changes_need_the_admin_role_and_are_recorded(easy_auth):
    world = easy_auth
    body = definition(world)
    assert call(world, api.model, "PUT", body, headers={"X-MS-CLIENT-PRINCIPAL": APPROVER}).status == 403
    assert call(world, api.model, "PUT", body).status == 403  # a function key alone is not an admin by default
    assert call(world, api.model, "PUT", body, headers={"X-MS-CLIENT-PRINCIPAL": ADMIN}).status == 201
    assert call(world, api.model, "PUT", body, headers={"X-MS-CLIENT-PRINCIPAL": ADMIN}).status == 200
    entries = call(world, api.audit, "GET").body["audit"]
    assert [e["action"] for e in entries] == ["redefine", "create"]
    assert {e["by"]["name"] for e in entries} == {"ada@contoso.com"}


def test_a_function_key_is_an_automation_identity_with_the_configured_roles(easy_auth, pump):
    world = easy_auth
    world.ctx.env = {**world.ctx.env, "RETRAIN_FUNCTION_KEY_ROLES": "Retrain.Approver"}
    run_id = awaiting(world, pump)
    answer = call(world, api.run_action, body={"by": "release-pipeline"}, run=run_id, action="approve")
    assert answer.status == 200
    [entry] = call(world, api.audit, "GET").body["audit"]
    assert entry["by"]["kind"] == "function_key" and entry["by"]["note"] == "release-pipeline"


def test_cancel_and_retry_record_who_asked(easy_auth, pump):
    world = easy_auth
    world.register()
    run = world.land("census/a.csv", good_data())
    answer = call(world, api.run_action, body={}, headers={"X-MS-CLIENT-PRINCIPAL": READER}, run=run.run_id,
                  action="cancel")
    assert answer.status == 200 and "dave@contoso.com" in answer.body["reason"]
    retry = call(world, api.run_action, body={}, headers={"X-MS-CLIENT-PRINCIPAL": READER}, run=run.run_id,
                 action="retry")
    assert retry.status == 409
    [entry] = call(world, api.audit, "GET").body["audit"]
    assert entry["action"] == "cancel" and entry["by"]["id"] == "oid-dave"


def test_a_malformed_principal_is_a_401(easy_auth):
    answer = call(easy_auth, api.model, "PUT", definition(easy_auth), headers={"X-MS-CLIENT-PRINCIPAL": "%%%"})
    assert answer.status == 401 and "X-MS-CLIENT-PRINCIPAL" in answer.body["error"]["message"]


def test_with_auth_off_a_sent_principal_header_is_not_believed(world, pump):
    run_id = awaiting(world, pump)
    answer = call(world, api.run_action, body={}, headers={"X-MS-CLIENT-PRINCIPAL": APPROVER}, run=run_id,
                  action="reject")
    assert answer.status == 200 and answer.body["decided_by"] == "function key"
