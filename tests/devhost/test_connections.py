"""Storage connections: a connection string, UseDevelopmentStorage=true, or identity-based settings."""

from __future__ import annotations

import pytest

from devhost.connections import StorageClients, StorageConnection
from devhost.errors import StorageConnectionError


def test_an_exact_setting_is_a_connection_string():
    conn = StorageConnection.resolve("AzureWebJobsStorage", {"AzureWebJobsStorage": "UseDevelopmentStorage=true"})
    assert conn.connection_string == "UseDevelopmentStorage=true"


def test_no_connection_name_means_azurewebjobsstorage():
    assert StorageConnection.resolve(None, {"AzureWebJobsStorage": "x"}).name == "AzureWebJobsStorage"


def test_use_development_storage_points_at_azurites_default_endpoints():
    clients = StorageClients({"AzureWebJobsStorage": "UseDevelopmentStorage=true"})
    assert clients.blob_service(None).url.startswith("http://127.0.0.1:10000/devstoreaccount1")
    assert clients.queue_service(None).url.startswith("http://127.0.0.1:10001/devstoreaccount1")


def test_identity_based_settings_give_service_uris_and_credential_options():
    conn = StorageConnection.resolve("Storage", {
        "Storage__blobServiceUri": "https://acct.blob.core.windows.net",
        "Storage__queueServiceUri": "https://acct.queue.core.windows.net",
        "Storage__credential": "managedidentity", "Storage__clientId": "abc"})
    assert (conn.connection_string, conn.blob_uri, conn.queue_uri) == (
        None, "https://acct.blob.core.windows.net", "https://acct.queue.core.windows.net")
    assert (conn.credential_kind, conn.client_id) == ("managedidentity", "abc")


def test_an_exact_setting_wins_over_identity_based_ones():
    conn = StorageConnection.resolve("Storage", {"Storage": "cs", "Storage__blobServiceUri": "https://x"})
    assert conn.connection_string == "cs"


def test_neither_form_is_an_error_naming_both():
    with pytest.raises(StorageConnectionError, match=r"Storage__blobServiceUri"):
        StorageConnection.resolve("Storage", {})
