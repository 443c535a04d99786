"""Blob triggers: once per ETag, again after an overwrite, not again after a restart; SDK client or stream; poison."""

from __future__ import annotations

import base64
import json

from azure.storage.queue import QueueClient

from devhost.blobs import HOSTS_CONTAINER, POISON_QUEUE


def test_a_new_blob_fires_the_trigger_once_with_a_storage_blob_client(sample, start_host):
    host = start_host()
    etag = sample.upload("SAMPLE_CONTAINER", "incoming/m1/data.csv", b"a,b\n1,2\n")
    host.drain(timeout=10)
    [call] = sample.results("blobclient")
    assert call["name"] == "incoming/m1/data.csv"   # {name} spans slashes
    assert call["etag"].strip('"') == etag.strip('"')
    assert call["is_storage_client"] is True


def test_blobs_outside_the_path_pattern_do_not_fire(sample, start_host):
    host = start_host()
    sample.upload("SAMPLE_CONTAINER", "elsewhere/data.csv", b"x")
    host.drain(timeout=10)
    assert sample.results("blobclient") == []


def test_an_overwrite_is_a_new_etag_and_fires_again(sample, start_host):
    host = start_host()
    sample.upload("SAMPLE_CONTAINER", "incoming/data.csv", b"v1")
    host.drain(timeout=10)
    sample.upload("SAMPLE_CONTAINER", "incoming/data.csv", b"version 2")
    host.drain(timeout=10)
    assert sorted(c["size"] for c in sample.results("blobclient")) == [2, 9]


def test_a_restarted_host_does_not_fire_again_for_blobs_it_has_receipts_for(sample, start_host):
    first = start_host()
    sample.upload("SAMPLE_CONTAINER", "incoming/data.csv", b"v1")
    first.drain(timeout=10)
    first.stop()
    second = start_host()
    second.drain(timeout=10)
    assert len(sample.results("blobclient")) == 1
    assert [i.function for i in second.invocations] == []


def test_receipts_are_kept_in_azure_webjobs_hosts_by_host_function_etag_and_blob(sample, start_host):
    host = start_host()
    etag = sample.upload("SAMPLE_CONTAINER", "incoming/data.csv", b"v1").strip('"')
    host.drain(timeout=10)
    hosts = sample.blobs.get_container_client(HOSTS_CONTAINER)
    names = [b.name for b in hosts.list_blobs(name_starts_with=f"blobreceipts/{host.host_id}/")]
    assert names == [f"blobreceipts/{host.host_id}/Host.Functions.on_upload_client/{etag}/"
                     f"{sample.name('SAMPLE_CONTAINER')}/incoming/data.csv"]


def test_an_input_stream_trigger_gets_the_whole_blob_with_its_container_path_as_name(sample, start_host):
    host = start_host()
    sample.upload("SAMPLE_STREAM_CONTAINER", "dir/file.txt", b"hello blob")
    host.drain(timeout=10)
    [call] = sample.results("stream")
    assert call["name"] == f"{sample.name('SAMPLE_STREAM_CONTAINER')}/dir/file.txt"
    assert call["data"] == "hello blob"
    assert call["length"] == 10
    assert call["uri"].endswith("/dir/file.txt")


def test_a_blob_whose_function_keeps_failing_is_retried_then_reported_to_the_poison_queue(sample, start_host):
    host = start_host()   # host.json maxDequeueCount = 3 also bounds blob retries
    etag = sample.upload("SAMPLE_CONTAINER", "incoming/fail.csv", b"bad").strip('"')
    host.drain(timeout=10)
    assert len(sample.results("blobclient")) == 3
    poison = QueueClient.from_connection_string(sample.connection_string, POISON_QUEUE)
    bodies = [json.loads(base64.b64decode(m.content)) for m in poison.receive_messages(max_messages=32)]
    mine = [b for b in bodies if b["ContainerName"] == sample.name("SAMPLE_CONTAINER")]
    assert mine == [{"Type": "BlobTrigger", "FunctionId": "Host.Functions.on_upload_client", "BlobType": "BlockBlob",
                     "ContainerName": sample.name("SAMPLE_CONTAINER"), "BlobName": "incoming/fail.csv",
                     "ETag": etag}]


def test_a_poisoned_blob_is_not_retried_after_a_restart(sample, start_host):
    first = start_host()
    sample.upload("SAMPLE_CONTAINER", "incoming/fail.csv", b"bad")
    first.drain(timeout=10)
    first.stop()
    second = start_host()
    second.drain(timeout=10)
    assert len(sample.results("blobclient")) == 3
