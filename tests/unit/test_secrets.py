"""The secret-setting rule: which app settings a definition may name as keys."""

import pytest

from retrain.errors import SecretNotAllowed
from retrain.secrets import SecretRule


def rule(listed: str = "") -> SecretRule:
    return SecretRule.from_env({"RETRAIN_SECRET_SETTINGS": listed} if listed else {})


def test_settings_named_by_the_prefix_are_secrets():
    assert rule().problem("RETRAIN_SECRET_CENSUS_BES_KEY", "training.key_setting") is None


@pytest.mark.parametrize("name", ["RETRAIN_STORAGE", "RETRAIN_STORAGE__blobServiceUri", "AzureWebJobsStorage",
                                  "AzureWebJobsSecretStorageType", "AZURE_CLIENT_SECRET", "AZURE_CLIENT_ID",
                                  "IDENTITY_HEADER", "MSI_SECRET", "WEBSITE_AUTH_ENCRYPTION_KEY",
                                  "FUNCTIONS_WORKER_RUNTIME", "APPLICATIONINSIGHTS_CONNECTION_STRING",
                                  "ARM_ACCESS_TOKEN", "RETRAIN_SECRET_SETTINGS", "RETRAIN_SECRET_X__Y"])
def test_the_apps_own_settings_are_never_secrets_even_when_listed(name):
    problem = rule(listed=name).problem(name, "training.key_setting")
    assert problem and problem.startswith("training.key_setting:") and "never handed" in problem


@pytest.mark.parametrize("name", ["CENSUS_BES_KEY", "RETRAIN_SECRET_", "OTHER_MODEL_KEY"])
def test_other_names_are_refused_by_rule_not_by_existence(name):
    problem = rule().problem(name, "endpoints[0].key_setting")
    assert "RETRAIN_SECRET_<NAME>" in problem and "RETRAIN_SECRET_SETTINGS" in problem
    assert "not set" not in problem and "exist" not in problem


def test_an_explicit_list_admits_existing_vault_names():
    assert rule(listed="CENSUS_BES_KEY, CENSUS_ENDPOINT_KEY").problem("CENSUS_ENDPOINT_KEY", "f") is None


def test_require_raises_a_typed_error():
    with pytest.raises(SecretNotAllowed):
        rule().require("AzureWebJobsStorage", "f")
