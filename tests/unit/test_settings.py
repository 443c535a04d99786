"""App settings and storage connections are validated at start-up, naming the setting to fix."""

import pytest

from retrain.errors import SettingsError
from retrain.settings import Settings
from retrain.storage import DEVELOPMENT_STORAGE, Connection


def test_defaults_need_no_settings():
    s = Settings.from_env({})
    assert (s.training_container, s.output_container) == ("training-data", "retrain-outputs")


def test_outputs_may_not_go_into_the_watched_container():
    with pytest.raises(SettingsError, match="OUTPUT_CONTAINER must differ"):
        Settings.from_env({"OUTPUT_CONTAINER": "training-data"})


@pytest.mark.parametrize("env, named", [
    ({"TRAINING_CONTAINER": "Bad_Name"}, "TRAINING_CONTAINER"),
    ({"RUN_TIMEOUT_MINUTES": "soon"}, "RUN_TIMEOUT_MINUTES"),
    ({"CHECK_MAX_DELAY_SECONDS": "0"}, "CHECK_MAX_DELAY_SECONDS"),
    ({"RETRAIN_TABLE_PREFIX": "a-b"}, "RETRAIN_TABLE_PREFIX"),
])
def test_bad_values_name_their_setting(env, named):
    with pytest.raises(SettingsError, match=named):
        Settings.from_env(env)


def test_use_development_storage_means_azurite():
    c = Connection.from_env("RETRAIN_STORAGE", {"RETRAIN_STORAGE": "UseDevelopmentStorage=true"})
    assert c.connection_string == DEVELOPMENT_STORAGE and c.account_key[0] == "devstoreaccount1"


def test_identity_based_connection_from_service_uris():
    env = {f"RETRAIN_STORAGE__{k}ServiceUri": f"https://acct.{k}.core.windows.net" for k in ("blob", "queue", "table")}
    env["RETRAIN_STORAGE__credential"] = "managedidentity"
    env["RETRAIN_STORAGE__clientId"] = "11111111-2222-3333-4444-555555555555"
    c = Connection.from_env("RETRAIN_STORAGE", env)
    assert c.connection_string is None and c.table_uri == "https://acct.table.core.windows.net"
    assert c.credential_kind == "managedidentity" and c.account_key is None


def test_identity_based_connection_from_account_name():
    c = Connection.from_env("RETRAIN_STORAGE", {"RETRAIN_STORAGE__accountName": "acct"})
    assert c.queue_uri == "https://acct.queue.core.windows.net"


def test_a_connection_string_wins_over_the_identity_prefix():
    env = {"RETRAIN_STORAGE": DEVELOPMENT_STORAGE, "RETRAIN_STORAGE__accountName": "acct"}
    assert Connection.from_env("RETRAIN_STORAGE", env).connection_string == DEVELOPMENT_STORAGE


def test_a_missing_connection_says_how_to_configure_it():
    with pytest.raises(SettingsError, match="RETRAIN_STORAGE__blobServiceUri"):
        Connection.from_env("RETRAIN_STORAGE", {})


def test_the_app_accepts_the_azurewebjobs_prefixed_setting_like_the_host():
    c = Connection.from_env("Storage", {"AzureWebJobsStorage": "UseDevelopmentStorage=true"})
    assert c.name == "AzureWebJobsStorage" and c.connection_string == DEVELOPMENT_STORAGE


def test_the_app_accepts_the_colon_spelling_of_identity_settings():
    c = Connection.from_env("RETRAIN_STORAGE", {"RETRAIN_STORAGE:accountName": "acct"})
    assert c.table_uri == "https://acct.table.core.windows.net"


def test_the_exact_name_wins_over_the_azurewebjobs_prefixed_one():
    env = {"Storage": DEVELOPMENT_STORAGE, "AzureWebJobsStorage": "AccountName=x;AccountKey=y"}
    assert Connection.from_env("Storage", env).name == "Storage"


@pytest.mark.parametrize("env", [
    {"S": "UseDevelopmentStorage=true"}, {"AzureWebJobsS": "UseDevelopmentStorage=true"},
    {"S__accountName": "acct"}, {"S:blobServiceUri": "https://a.blob.core.windows.net",
                                 "S:queueServiceUri": "https://a.queue.core.windows.net"},
])
def test_devhost_and_the_app_resolve_a_connection_alike(env):
    from devhost.connections import StorageConnection
    from retrain.connections import resolve
    host = StorageConnection.resolve("S", env)
    app = resolve("S", env)
    assert (host.name, host.connection_string, host.blob_uri, host.queue_uri) == (
        app.name, app.connection_string, app.blob_uri, app.queue_uri)
