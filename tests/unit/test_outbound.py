"""The outbound allow-list and the credential-in-definition checks, as specifications."""

import pytest

from retrain.errors import DestinationNotAllowed, SettingsError
from retrain.outbound import OutboundRules, credential_problem, register_kind, KIND_HOSTS

BES = "https://ussouthcentral.services.azureml.net/workspaces/ws/services/svc"
CLASSIC = "https://management.azureml.net/workspaces/ws/webservices/svc/endpoints/eu"
ARM = ("https://management.azure.com/subscriptions/s/resourceGroups/rg/providers/"
       "Microsoft.MachineLearning/webServices/w")


def rules(**env) -> OutboundRules:
    return OutboundRules.from_env(env)


@pytest.mark.parametrize("kind,url", [("bes", BES), ("classic", CLASSIC), ("arm", ARM)])
def test_azures_own_hosts_are_allowed_for_their_kind(kind, url):
    assert rules().problem(url, kind, "f") is None


def test_a_classic_host_is_not_an_arm_host_and_arm_is_not_classic():
    assert "not allowed" in rules().problem(CLASSIC, "arm", "endpoints[0].url")
    assert "not allowed" in rules().problem(ARM, "classic", "endpoints[0].url")


def test_any_other_host_is_refused_naming_the_field_and_the_setting():
    problem = rules().problem("https://attacker.example/workspaces/ws/services/s", "bes", "training.url")
    assert problem.startswith("training.url: host attacker.example is not allowed")
    assert "ALLOWED_SERVICE_HOSTS" in problem and "*.azureml.net" in problem


@pytest.mark.parametrize("url", [
    "https://azureml.net.attacker.example/x", "https://attacker.example/.azureml.net/x",
    "https://attacker.example#.azureml.net/x", "https://azureml.net/x", "https://evil.com\\@svc.azureml.net/x",
    "https://user@svc.azureml.net/x", "https://svc.azureml.net:8443/x", "https://svc.azureml.net%2f.evil.com/x",
])
def test_look_alike_hosts_and_ambiguous_urls_are_refused(url):
    assert rules().problem(url, "bes", "training.url") is not None


def test_plain_http_to_an_azure_host_is_refused():
    assert rules().problem(BES.replace("https", "http"), "bes", "training.url") is not None


def test_listed_loopback_host_may_use_http_only_on_its_port():
    allow = rules(ALLOWED_SERVICE_HOSTS="127.0.0.1:8765")
    assert allow.problem("http://127.0.0.1:8765/workspaces/ws/services/s", "bes", "f") is None
    assert "not allowed" in allow.problem("http://127.0.0.1:9999/workspaces/ws/services/s", "bes", "f")


def test_a_listed_remote_host_still_needs_https():
    allow = rules(ALLOWED_SERVICE_HOSTS="ml.internal.contoso.com, *.private.contoso.com")
    assert allow.problem("https://ml.internal.contoso.com/x", "classic", "f") is None
    assert allow.problem("https://a.private.contoso.com/x", "classic", "f") is None
    assert "https" in allow.problem("http://ml.internal.contoso.com/x", "classic", "f")


def test_a_sovereign_cloud_is_chosen_by_setting():
    gov = ARM.replace("management.azure.com", "management.usgovcloudapi.net")
    assert rules(RETRAIN_ARM_HOST="management.usgovcloudapi.net").problem(gov, "arm", "f") is None
    assert rules(RETRAIN_ARM_HOST="management.usgovcloudapi.net").problem(ARM, "arm", "f") is not None
    assert rules().problem(gov, "arm", "f") is not None


def test_a_malformed_allow_list_names_the_setting():
    with pytest.raises(SettingsError, match="ALLOWED_SERVICE_HOSTS"):
        rules(ALLOWED_SERVICE_HOSTS="https://x.example/path")


def test_require_raises_a_typed_error():
    with pytest.raises(DestinationNotAllowed, match="training.url"):
        rules().require("https://attacker.example/x", "bes", "training.url")


def test_a_new_kind_declares_its_hosts_in_one_place():
    register_kind("azureml-test", "Azure ML workspace", lambda env: ("*.api.azureml.ms",))
    try:
        assert rules().problem("https://westeurope.api.azureml.ms/mlflow", "azureml-test", "f") is None
        assert rules().problem(BES, "azureml-test", "f") is not None
    finally:
        KIND_HOSTS.pop("azureml-test")


@pytest.mark.parametrize("value,name", [
    ("https://h/x?sig=abc", "sig"), ("https://h/x?%73ig=abc", "sig"), ("https://h/x?%2573ig=abc", "sig"),
    ("https://h/x?access_token=abc", "access_token"), ("https://h/x?a=1&code=abc", "code"),
    ("https://h/x?Key=abc", "key"), ("https://h/x;password=abc", "password"),
    ("DefaultEndpointsProtocol=https;AccountName=a;AccountKey=abc", "accountkey"),
    ("https://h/x?x=1%26sig%3Dabc", "sig"), ("https://h/x#access_token=abc", "access_token"),
])
def test_credentials_are_found_after_decoding(value, name):
    problem = credential_problem(value, "training.url")
    assert problem and f"({name}=...)" in problem and "abc" not in problem


@pytest.mark.parametrize("value", ["https://user:pw@h/x", "https%3A%2F%2Fuser%3Apw%40h%2Fx", "https://u@h/x"])
def test_user_info_is_a_credential(value):
    assert "user name or password" in credential_problem(value, "f")


def test_a_bearer_token_is_a_credential():
    assert "bearer" in credential_problem("Bearer eyJhbGciOiJIUzI1NiJ9.abc", "f")


@pytest.mark.parametrize("value", ["42", "0.5", "https://svc.azureml.net/workspaces/ws/services/s?api-version=2.0",
                                   "monkey business", "keys are fine as words", "tokenizer=bert"])
def test_ordinary_values_pass(value):
    assert credential_problem(value, "f") is None


def test_an_ipv6_loopback_entry_allows_its_port():
    allow = rules(ALLOWED_SERVICE_HOSTS="[::1]:8765")
    assert allow.problem("http://[::1]:8765/x", "classic", "f") is None
    assert allow.problem("http://[::1]:8766/x", "classic", "f") is not None
