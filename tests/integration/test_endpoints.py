"""retrain.endpoints against the real emulators.studio: classic endpoint PATCH and the ARM webServices update.

Models are real .ilearner files (trained locally once per module) uploaded to the real Azurite;
the emulator downloads and validates each one it is pointed at. The only stand-in is the
Azure AD credential in the production-path tests (there is no Azure AD here; see those tests).
"""

from __future__ import annotations

import logging
import re
import uuid

import pytest
import requests
from azure.core.credentials import AccessToken

from retrain import identity
from retrain.endpoints import (ArmWebService, ClassicEndpoint, EndpointSpec, UpdateOutcome, arm_credential,
                               updater_for)
from retrain.errors import (AuthenticationFailed, InvalidModelDefinition, PermanentServiceError, ProvisioningFailed,
                            TransientServiceError, VerificationFailed)
from retrain.http import RetryPolicy
from retrain.identity import ARM_SCOPE, StaticTokenCredential
from retrain.locations import BlobLocation
from tests.datasets import binary_csv

FAST = RetryPolicy(attempts=4, backoff=0.05, max_backoff=0.2, budget=5.0)
PATCH = {"method": "PATCH", "path": r"/endpoints/[^/]+$"}
ENDPOINT_GET = {"method": "GET", "path": r"/endpoints/[^/]+$"}
ARM_PUT = {"method": "PUT", "path": r"/webServices/[^/]+$"}
ARM_OPERATION = {"method": "GET", "path": r"/operationsStatus/"}


# --- helpers --------------------------------------------------------------------------------

def served(faults, route: dict) -> list[int]:
    """Statuses the emulator answered for `route` (method + path pattern), oldest first."""
    return [e["status"] for e in faults.requests(method=route["method"]) if re.search(route["path"], e["path"])]


@pytest.fixture(scope="module")
def model_bytes() -> bytes:
    """A real trained model (.ilearner) the emulator accepts."""
    from emulators.training.training import Recipe, train

    return train(binary_csv(120, seed=5), Recipe(task="binary", label="label", learner="logistic_regression")).model


@pytest.fixture
def new_model(emulator_world, model_bytes):
    """Upload the model under a fresh blob name; returns a factory of BlobLocations (read SAS attached)."""
    blobs = emulator_world.blobs

    def make() -> BlobLocation:
        relative = blobs.upload(blobs.container("models"), f"{uuid.uuid4().hex[:8]}/model.ilearner", model_bytes)
        return BlobLocation(blobs.base_location, relative, blobs.sas(relative))

    return make


@pytest.fixture
def endpoint_url(emulator_world) -> str:
    """A fresh non-default endpoint on the predictive service (the default one cannot be patched)."""
    w = emulator_world
    name = f"ep-{uuid.uuid4().hex[:8]}"
    url = w.endpoint_url(w.predictive, name)
    r = requests.put(url, json={"Description": "retrain test", "ThrottleLevel": "Low"},
                     headers=w.auth(w.workspace_token), timeout=10)
    assert r.status_code in (200, 201), r.text
    return url


def classic(world, url: str, *, resource: str | None = None, key: str | None = None) -> ClassicEndpoint:
    spec = EndpointSpec("classic", url, resource or world.predictive.trained_model, key_setting="EP_KEY")
    return ClassicEndpoint(spec, key or world.workspace_token, retry=FAST)


def arm_spec(world, **kw) -> EndpointSpec:
    return EndpointSpec("arm", world.arm_url(), kw.pop("resource", world.arm.trained_model), **kw)


def arm(world, *, token: str | None = None, resource: str | None = None) -> ArmWebService:
    credential = StaticTokenCredential(token or world.arm_token)
    return ArmWebService(arm_spec(world, resource=resource or world.arm.trained_model), credential, retry=FAST,
                         poll_interval=0.05, timeout=30)


class RecordingCredential:
    """Stands in for azure-identity's DefaultAzureCredential: there is no Azure AD to ask for a token here.

    It records the scopes it is asked for and hands out the emulator's configured ARM token.
    """

    instances: list["RecordingCredential"] = []
    token = ""

    def __init__(self, **kwargs):
        self.scopes: list[tuple[str, ...]] = []
        RecordingCredential.instances.append(self)

    def get_token(self, *scopes, **kwargs) -> AccessToken:
        self.scopes.append(scopes)
        return AccessToken(self.token, 2**31 - 1)


@pytest.fixture
def production_identity(monkeypatch, emulator_world):
    """arm_credential() on its Azure path (no ARM_ACCESS_TOKEN), with DefaultAzureCredential replaced."""
    monkeypatch.delenv(identity.STATIC_TOKEN_SETTING, raising=False)
    RecordingCredential.instances = []
    RecordingCredential.token = emulator_world.arm_token
    monkeypatch.setattr(identity, "DefaultAzureCredential", RecordingCredential)
    identity.reset_arm_credential()
    yield RecordingCredential
    identity.reset_arm_credential()


# --- classic endpoints ------------------------------------------------------------------------

def test_classic_update_swaps_the_model_and_verifies_it(emulator_world, endpoint_url, new_model, reset_faults):
    endpoint = classic(emulator_world, endpoint_url)
    model = new_model()
    outcome = endpoint.update(model)
    assert outcome == UpdateOutcome(endpoint_url.rsplit("/", 1)[1], True, model.uri)
    assert endpoint.current_model() == model.uri
    assert served(reset_faults, ENDPOINT_GET) == [200, 200, 200]  # before, verify, and the check above


def test_classic_second_update_with_the_same_model_makes_no_patch(emulator_world, endpoint_url, new_model,
                                                                  reset_faults):
    endpoint = classic(emulator_world, endpoint_url)
    model = new_model()
    endpoint.update(model)
    again = endpoint.update(model.with_sas(emulator_world.blobs.sas(model.relative_location)))  # a fresh SAS
    assert again.changed is False and again.served == model.uri
    assert served(reset_faults, PATCH) == [204]


def test_classic_current_model_is_the_uri_without_sas(emulator_world, endpoint_url, new_model):
    endpoint = classic(emulator_world, endpoint_url)
    model = new_model()
    endpoint.update(model)
    assert "?" not in endpoint.current_model() and "sig=" not in endpoint.current_model()


def test_classic_resource_name_in_another_case_still_updates(emulator_world, endpoint_url, new_model):
    endpoint = classic(emulator_world, endpoint_url, resource=emulator_world.predictive.trained_model.upper())
    model = new_model()
    assert endpoint.update(model).served == model.uri


def test_classic_wrong_resource_name_is_permanent_with_the_service_message(emulator_world, endpoint_url, new_model):
    endpoint = classic(emulator_world, endpoint_url, resource="Some Other Model [trained model]")
    with pytest.raises(PermanentServiceError) as info:
        endpoint.update(new_model())
    error = info.value
    assert error.status == 400 and error.detail_code == "InvalidResourceName"
    assert "Some Other Model [trained model]" in str(error)
    assert emulator_world.predictive.trained_model in str(error)  # the service names the right one


def test_classic_patch_retried_after_503_then_succeeds(emulator_world, endpoint_url, new_model, reset_faults):
    reset_faults.inject(**PATCH, status=503, count=1)
    model = new_model()
    assert classic(emulator_world, endpoint_url).update(model).changed is True
    assert served(reset_faults, PATCH) == [503, 204]


def test_classic_endpoint_that_does_not_report_the_new_model_fails_verification(emulator_world, endpoint_url,
                                                                               new_model, reset_faults):
    stale = requests.get(endpoint_url, headers=emulator_world.auth(emulator_world.workspace_token), timeout=10).json()
    reset_faults.inject(**ENDPOINT_GET, status=200, body=stale, count=2)  # both reads report the old model
    with pytest.raises(VerificationFailed):
        classic(emulator_world, endpoint_url).update(new_model())


def test_classic_wrong_key_is_authentication_failed_without_the_key(emulator_world, endpoint_url, new_model,
                                                                    caplog):
    wrong = "not-the-token-8c1d4e"
    with caplog.at_level(logging.DEBUG), pytest.raises(AuthenticationFailed) as info:
        classic(emulator_world, endpoint_url, key=wrong).update(new_model())
    for text in (str(info.value), repr(info.value), caplog.text):
        assert wrong not in text


def test_classic_endpoint_own_key_opens_it(emulator_world, endpoint_url, new_model):
    own_key = requests.get(endpoint_url, headers=emulator_world.auth(emulator_world.workspace_token),
                           timeout=10).json()["PrimaryKey"]
    model = new_model()
    assert classic(emulator_world, endpoint_url, key=own_key).update(model).served == model.uri


def test_classic_unknown_endpoint_is_permanent(emulator_world, new_model):
    endpoint = classic(emulator_world, emulator_world.endpoint_url(emulator_world.predictive, "no-such-ep"))
    with pytest.raises(PermanentServiceError) as info:
        endpoint.update(new_model())
    assert info.value.status == 404


def test_classic_sas_appears_in_no_repr_or_error(emulator_world, endpoint_url, new_model):
    model = new_model()
    endpoint = classic(emulator_world, endpoint_url, resource="Wrong [trained model]")
    with pytest.raises(PermanentServiceError) as info:
        endpoint.update(model)
    signature = re.search(r"sig=([^&]+)", model.sas_token).group(1)
    for text in (str(info.value), repr(model), repr(endpoint)):
        assert signature not in text and emulator_world.workspace_token not in text


# --- ARM web services ---------------------------------------------------------------------------

def test_arm_update_swaps_the_model_after_provisioning_succeeds(emulator_world, new_model, reset_faults):
    service = arm(emulator_world)
    model = new_model()
    outcome = service.update(model)
    assert outcome == UpdateOutcome(emulator_world.arm.name, True, model.uri)
    assert service.current_model() == model.uri
    assert served(reset_faults, ARM_PUT) == [200]
    assert served(reset_faults, ARM_OPERATION)  # it followed Azure-AsyncOperation


def test_arm_second_update_with_the_same_model_makes_no_put(emulator_world, new_model, reset_faults):
    service = arm(emulator_world)
    model = new_model()
    service.update(model)
    again = service.update(model)
    assert again.changed is False and again.served == model.uri
    assert served(reset_faults, ARM_PUT) == [200]


def test_arm_provisioning_failure_is_reported_and_the_old_model_keeps_serving(emulator_world, new_model,
                                                                              reset_faults):
    service = arm(emulator_world)
    before = service.current_model()
    reset_faults.inject("fail_provisioning", message="The trained model could not be loaded (injected).")
    with pytest.raises(ProvisioningFailed, match="could not be loaded"):
        service.update(new_model())
    assert service.current_model() == before


def test_arm_update_after_a_failed_provisioning_puts_again(emulator_world, new_model, reset_faults):
    service = arm(emulator_world)
    model = new_model()
    reset_faults.inject("fail_provisioning", message="transient provisioning failure")
    with pytest.raises(ProvisioningFailed):
        service.update(model)
    assert service.update(model).changed is True
    assert service.current_model() == model.uri


def test_arm_update_redelivered_while_provisioning_waits_and_makes_no_second_put(emulator_world, new_model,
                                                                                reset_faults):
    """A promote that PUT, crashed, and is redelivered while ARM is still provisioning that PUT."""
    model = new_model()
    url, headers = emulator_world.arm_url() + "?api-version=2017-01-01", emulator_world.auth(emulator_world.arm_token)
    definition = requests.get(url, headers=headers, timeout=10).json()
    asset = next(a for a in definition["properties"]["assets"].values() if a["type"] == "Resource")
    asset["locationInfo"] = {"uri": model.uri, "credentials": model.sas_token}
    assert requests.put(url, json=definition, headers=headers, timeout=10).status_code == 200
    outcome = arm(emulator_world).update(model)
    assert outcome.changed is False and outcome.served == model.uri
    assert served(reset_faults, ARM_PUT) == [200]  # only the first delivery's PUT


def test_arm_put_refused_by_another_operation_in_progress_is_transient(emulator_world, new_model, reset_faults):
    conflict = {"error": {"code": "AnotherOperationInProgress", "message": "still provisioning"}}
    reset_faults.inject(**ARM_PUT, status=409, body=conflict, count=1)
    with pytest.raises(TransientServiceError) as info:
        arm(emulator_world).update(new_model())
    assert info.value.status == 409 and info.value.code == "AnotherOperationInProgress"


def test_arm_put_retried_after_503_then_succeeds(emulator_world, new_model, reset_faults):
    reset_faults.inject(**ARM_PUT, status=503, count=1)
    model = new_model()
    assert arm(emulator_world).update(model).served == model.uri
    assert served(reset_faults, ARM_PUT) == [503, 200]


def test_arm_wrong_token_is_authentication_failed_without_the_token(emulator_world, new_model, caplog):
    wrong = "eyJ0eXAiOiJKV1QiLCJhbGciOiJub25lIn0.wrong"
    with caplog.at_level(logging.DEBUG), pytest.raises(AuthenticationFailed) as info:
        arm(emulator_world, token=wrong).update(new_model())
    assert info.value.status == 401
    for text in (str(info.value), repr(info.value), caplog.text):
        assert wrong not in text


def test_arm_unknown_resource_name_lists_the_resources_present(emulator_world, new_model):
    with pytest.raises(PermanentServiceError) as info:
        arm(emulator_world, resource="Nope [trained model]").update(new_model())
    assert "Nope [trained model]" in str(info.value) and emulator_world.arm.trained_model in str(info.value)


def test_arm_api_version_is_added_when_absent_and_kept_when_present(emulator_world):
    credential = StaticTokenCredential("t")
    plain = ArmWebService(arm_spec(emulator_world), credential)
    assert plain.url.endswith("?api-version=2017-01-01")
    preview = EndpointSpec("arm", emulator_world.arm_url() + "?api-version=2016-05-01-preview", "x")
    assert ArmWebService(preview, credential).url.endswith("?api-version=2016-05-01-preview")


# --- credentials and wiring ---------------------------------------------------------------------

def test_production_credential_asks_for_the_scope_of_the_arm_host_and_is_reused(emulator_world, production_identity,
                                                                               new_model):
    """A token is asked for the host it is sent to: management.azure.com's scope in Azure, the emulator's here."""
    from urllib.parse import urlsplit

    from retrain.identity import arm_scope

    spec = arm_spec(emulator_world)
    updater = updater_for(spec, secret=lambda name: pytest.fail("ARM needs no key"), credential=arm_credential)
    model = new_model()
    assert updater.update(model).served == model.uri  # several ARM calls, one token
    assert len(production_identity.instances) == 1
    assert production_identity.instances[0].scopes == [(f"https://{urlsplit(spec.url).netloc}/.default",)]
    assert arm_scope("https://management.azure.com/subscriptions/s/resourceGroups/rg") == ARM_SCOPE
    assert arm_credential() is production_identity.instances[0]  # one per process


def test_static_token_setting_selects_the_local_credential(monkeypatch, emulator_world):
    monkeypatch.setenv(identity.STATIC_TOKEN_SETTING, emulator_world.arm_token)
    identity.reset_arm_credential()
    try:
        credential = arm_credential()
        assert isinstance(credential, StaticTokenCredential)
        assert emulator_world.arm_token not in repr(credential)
        assert ArmWebService(arm_spec(emulator_world), credential, retry=FAST).current_model()
    finally:
        identity.reset_arm_credential()


def test_updater_for_classic_reads_the_key_from_the_named_setting(emulator_world, endpoint_url, new_model):
    asked = []

    def secret(name: str) -> str:
        asked.append(name)
        return emulator_world.workspace_token

    spec = EndpointSpec("classic", endpoint_url, emulator_world.predictive.trained_model, key_setting="EP_KEY")
    updater = updater_for(spec, secret=secret, credential=lambda: pytest.fail("classic needs no token"))
    model = new_model()
    assert updater.update(model).served == model.uri and asked == ["EP_KEY"]


def test_classic_spec_without_key_setting_is_an_invalid_definition():
    spec = EndpointSpec("classic", "https://management.azureml.net/workspaces/w/webservices/s/endpoints/e", "M")
    with pytest.raises(InvalidModelDefinition, match="key_setting"):
        updater_for(spec, secret=lambda n: "k", credential=lambda: StaticTokenCredential("t"))


@pytest.mark.parametrize("kind, url, resource", [
    ("v2", "https://management.azureml.net/x", "M"),
    ("classic", "management.azureml.net/x", "M"),
    ("arm", "https://management.azure.com/x", " "),
])
def test_updater_for_rejects_a_spec_with_bad_kind_url_or_resource(kind, url, resource):
    spec = EndpointSpec(kind, url, resource, key_setting="K")  # constructing it is fine: the registry reports
    assert len(spec.problems()) == 1
    with pytest.raises(InvalidModelDefinition):
        updater_for(spec, secret=lambda n: "k", credential=lambda: StaticTokenCredential("t"))


def test_endpoint_label_defaults_to_the_last_url_segment():
    spec = EndpointSpec("classic", "https://management.azureml.net/workspaces/w/webservices/s/endpoints/blue", "M")
    assert spec.label == "blue" and EndpointSpec("arm", spec.url, "M", name="prod").label == "prod"
