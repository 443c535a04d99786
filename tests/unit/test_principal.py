"""Reading the caller from Easy Auth's X-MS-CLIENT-PRINCIPAL, and the roles actions need.

Easy Auth's front end cannot run here: these tests build the header value it would set.
"""

import base64
import json

import pytest

from retrain.errors import Forbidden, SettingsError, Unauthenticated
from retrain.principal import ADMIN, APPROVER, caller, encode_principal, require

ON = {"RETRAIN_EASY_AUTH": "true"}
ALICE = [("http://schemas.microsoft.com/identity/claims/objectidentifier", "oid-alice"),
         ("preferred_username", "alice@contoso.com"), ("scp", "user_impersonation"),
         ("http://schemas.microsoft.com/ws/2008/06/identity/claims/role", APPROVER)]


def header(claims, **extra) -> dict:
    return {"X-MS-CLIENT-PRINCIPAL": encode_principal(claims, **extra)}


def test_a_signed_in_person_is_read_with_their_roles():
    actor = caller(header(ALICE), ON, note="ticket 42")
    assert (actor.kind, actor.id, actor.name, actor.provider) == ("user", "oid-alice", "alice@contoso.com", "aad")
    assert actor.roles == {APPROVER} and actor.note == "ticket 42"
    assert actor.label == "alice@contoso.com (ticket 42)"


def test_an_application_token_is_recorded_as_an_application():
    actor = caller(header([("oid", "oid-app"), ("appid", "client-1"), ("idtyp", "app"), ("roles", ADMIN)]), ON)
    assert actor.kind == "application" and actor.roles == {ADMIN}


def test_without_a_principal_the_caller_is_the_function_key_with_configured_roles():
    actor = caller({}, {**ON, "RETRAIN_FUNCTION_KEY_ROLES": "Retrain.Approver"})
    assert actor.kind == "function_key" and actor.roles == {APPROVER}
    assert caller({}, ON).roles == frozenset()


def test_an_unknown_function_key_role_names_the_setting():
    with pytest.raises(SettingsError, match="RETRAIN_FUNCTION_KEY_ROLES"):
        caller({}, {**ON, "RETRAIN_FUNCTION_KEY_ROLES": "Retrain.God"})


def test_with_auth_off_the_header_is_ignored_since_anyone_could_send_it():
    actor = caller(header(ALICE), {})
    assert actor.kind == "function_key" and actor.name == "function key"


def test_a_free_text_by_is_only_a_note():
    actor = caller(header(ALICE), ON, note="the CEO")
    assert actor.name == "alice@contoso.com" and actor.to_record()["note"] == "the CEO"


@pytest.mark.parametrize("value", [
    "not base64!", base64.b64encode(b"not json").decode(), base64.b64encode(b"[]").decode(),
    base64.b64encode(json.dumps({"claims": []}).encode()).decode(),
    base64.b64encode(json.dumps({"auth_typ": "aad", "claims": [{"typ": 1, "val": "x"}]}).encode()).decode(),
    base64.b64encode(json.dumps({"auth_typ": "aad", "claims": "all"}).encode()).decode(),
    base64.b64encode(json.dumps({"auth_typ": "aad", "claims": [{"typ": "name", "val": "x"}]}).encode()).decode(),
    "A" * 20000,
])
def test_a_malformed_principal_is_refused(value):
    with pytest.raises(Unauthenticated, match="X-MS-CLIENT-PRINCIPAL"):
        caller({"x-ms-client-principal": value}, ON)


def test_a_missing_role_is_forbidden_naming_the_role():
    with pytest.raises(Forbidden, match="Retrain.Admin") as info:
        require(caller(header(ALICE), ON), ADMIN, "registering or redefining a model", ON)
    assert info.value.role == ADMIN and "alice@contoso.com" in str(info.value)


def test_roles_are_not_enforced_with_auth_off():
    require(caller({}, {}), ADMIN, "registering a model", {})
