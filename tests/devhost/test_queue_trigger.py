"""Queue triggers: base64 delivery, retries with a growing dequeue count, poison queues, output bindings."""

from __future__ import annotations

import base64

from .devhost_testkit import wait_for


def test_a_base64_message_is_decoded_and_delivered_as_a_queue_message(sample, start_host):
    host = start_host()
    sample.send("SAMPLE_QUEUE", "hello")
    host.drain(timeout=10)
    [delivery] = sample.results("queue")
    assert delivery["body"] == "hello"
    assert delivery["dequeue_count"] == 1
    assert delivery["is_function_message"] is True


def test_a_delivered_message_is_deleted_after_success(sample, start_host):
    host = start_host()
    sample.send("SAMPLE_QUEUE", "once")
    host.drain(timeout=10)
    assert sample.queue(sample.name("SAMPLE_QUEUE")).get_queue_properties().approximate_message_count == 0
    assert len(sample.results("queue")) == 1


def test_a_failed_delivery_comes_back_with_a_higher_dequeue_count(sample, start_host):
    host = start_host()
    sample.send("SAMPLE_QUEUE", "fail-until-2")
    host.drain(timeout=10)
    assert sorted(d["dequeue_count"] for d in sample.results("queue")) == [1, 2]
    assert sample.peek(sample.name("SAMPLE_QUEUE") + "-poison") == []


def test_a_message_that_keeps_failing_moves_to_the_poison_queue_after_max_dequeue_count(sample, start_host):
    host = start_host()   # host.json maxDequeueCount = 3
    sample.send("SAMPLE_FAIL_QUEUE", "doomed")
    host.drain(timeout=10)
    assert sorted(d["dequeue_count"] for d in sample.results("fail")) == [1, 2, 3]
    assert sample.peek(sample.name("SAMPLE_FAIL_QUEUE") + "-poison") == [base64.b64encode(b"doomed").decode()]


def test_a_message_that_is_not_base64_goes_straight_to_poison_without_an_invocation(sample, start_host):
    host = start_host()
    sample.send("SAMPLE_QUEUE", "plain text!", base64_encode=False)
    host.drain(timeout=10)
    assert sample.results("queue") == []
    assert sample.peek(sample.name("SAMPLE_QUEUE") + "-poison") == ["plain text!"]


def test_a_queue_output_binding_sends_a_base64_message_after_success(sample, start_host):
    host = start_host()
    sample.send("SAMPLE_FORWARD_IN", "payload")
    host.drain(timeout=10)   # forward -> SAMPLE_QUEUE -> record_message
    assert [d["body"] for d in sample.results("queue")] == ["forwarded:payload"]


def test_one_slow_invocation_does_not_hold_up_the_others(sample, start_host):
    host = start_host(workers=4)
    sample.send("SAMPLE_QUEUE", "sleep-2")
    sample.send("SAMPLE_QUEUE", "quick")
    wait_for(lambda: [d for d in sample.results("queue") if d["body"] == "quick"], timeout=1.8, what="quick message")
    host.drain(timeout=10)
    assert sorted(d["body"] for d in sample.results("queue")) == ["quick", "sleep-2"]


def test_a_long_invocation_keeps_its_message_invisible_by_renewing_the_lease(sample, start_host):
    host = start_host(queue_lease=1.0)   # without renewal the message would reappear after 1 s
    sample.send("SAMPLE_QUEUE", "sleep-2.5")
    host.drain(timeout=10)
    assert [d["dequeue_count"] for d in sample.results("queue")] == [1]
