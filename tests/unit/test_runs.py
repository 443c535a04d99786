"""Run identity, states and their storage shape."""

from retrain.queues import BadMessage, Step, StepMessage
from retrain.runs import DataRef, Run, Status, Trigger, run_id_for

import pytest
from datetime import datetime, timezone

DATA = DataRef("training-data", "census/2024-06.csv", '"0x8DC1"', 1234)


def test_same_model_blob_and_etag_give_the_same_run_id():
    assert run_id_for("census", DATA) == run_id_for("census", DataRef(**{**DATA.__dict__}))


@pytest.mark.parametrize("other", [
    DataRef("training-data", "census/2024-06.csv", '"0x8DC2"', 1234),   # overwritten: new ETag
    DataRef("training-data", "census/2024-07.csv", '"0x8DC1"', 1234),
])
def test_different_data_gives_a_different_run_id(other):
    assert run_id_for("census", DATA) != run_id_for("census", other)


@pytest.mark.parametrize("spelling", ['0x8DC1', '"0x8DC1"', 'W/"0x8DC1"', ' "0x8DC1" '])
def test_every_spelling_of_one_etag_is_one_run(spelling):
    assert run_id_for("census", DataRef("training-data", "census/2024-06.csv", spelling, 1234)) == \
        run_id_for("census", DATA)


def test_run_ids_made_from_the_quoted_etag_are_unchanged():
    import hashlib
    before = hashlib.sha256('census\ntraining-data/census/2024-06.csv\n"0x8DC1"'.encode()).hexdigest()[:20]
    assert run_id_for("census", DataRef("training-data", "census/2024-06.csv", "0x8DC1", 1)) == before


def test_the_same_data_for_another_model_is_another_run():
    assert run_id_for("census", DATA) != run_id_for("census-eu", DATA)


def test_run_ids_are_safe_table_keys():
    run_id = run_id_for("census", DataRef("c", "a/b#c?d\\e", "e", 1))
    assert run_id.isalnum() and len(run_id) == 20


def test_terminal_states():
    assert {s for s in Status if s.terminal} == {Status.PROMOTED, Status.REJECTED, Status.FAILED,
                                                 Status.CANCELLED, Status.SUPERSEDED}


def test_moving_records_when_each_status_was_entered_once():
    run = Run("m", "r1", Trigger.BLOB, DATA, Status.PENDING, "waiting", "2026-01-01T00:00:00+00:00",
              "2026-01-01T02:00:00+00:00", transient_failures=3)
    queued = run.moved(Status.QUEUED, "submitting", at=datetime(2026, 1, 1, 0, 1, tzinfo=timezone.utc))
    assert queued.status is Status.QUEUED and "queued" in queued.step_times
    assert queued.transient_failures == 0
    assert queued.moved(Status.QUEUED, "again", at=datetime(2026, 1, 1, 0, 2, tzinfo=timezone.utc)).step_times == queued.step_times


def test_step_messages_round_trip():
    message = StepMessage("census", "abc", Step.CHECK, poll=3)
    assert StepMessage.parse(message.to_json(), Step.CHECK) == message


@pytest.mark.parametrize("body", ["", "not json", "[]", '{"model": "m"}', b"\xff\xfe"])
def test_foreign_messages_are_refused(body):
    with pytest.raises(BadMessage):
        StepMessage.parse(body, Step.SUBMIT)


def test_a_message_on_the_wrong_queue_is_refused():
    with pytest.raises(BadMessage):
        StepMessage.parse(StepMessage("m", "r", Step.PROMOTE).to_json(), Step.SUBMIT)
