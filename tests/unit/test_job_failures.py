"""Reading a failed job's Details: the module error as a sentence, and whether resubmitting can help."""

import json

import pytest

from retrain.job_failures import MAX_REASON, read_failure


def envelope(code: str, detail: str) -> str:
    return json.dumps({"error": {"code": code, "message": "Module execution encountered an error.",
                                 "details": [{"code": "32", "target": "Train Model", "message": detail}]}})


def test_the_module_error_is_extracted_from_the_envelope():
    failure = read_failure(envelope("ModuleExecutionError", "Error 0032: Argument must be finite."))
    assert failure.text == "Error 0032: Argument must be finite." and failure.data_error


def test_a_module_error_inside_free_text_is_found():
    failure = read_failure("Job 5 failed ... Error 1000: AFx Library library exception: All rows must have "
                           "same number of elements")
    assert failure.text.startswith("Error 1000: AFx Library") and failure.data_error


@pytest.mark.parametrize("details", [
    "The job was interrupted because the service restarted while it was Running; submit it again.",
    envelope("ModuleExecutionError", "Error 0000: The job's process ended unexpectedly (exit code -9)."),
    json.dumps({"error": {"code": "InternalError", "message": "The server encountered an internal error."}}),
    "",
    None,
])
def test_interruptions_and_failures_without_a_data_error_are_retryable(details):
    assert read_failure(details).retryable


def test_a_data_error_code_without_a_module_number_is_not_retried():
    failure = read_failure(json.dumps({"error": {"code": "BadArgument", "message": "The input is bad."}}))
    assert failure.data_error and failure.text == "The input is bad."


def test_a_long_message_is_cut_at_a_word_with_an_ellipsis_never_mid_json():
    failure = read_failure(envelope("ModuleExecutionError", "Error 0018: " + "word " * 400))
    assert len(failure.text) <= MAX_REASON + 4 and failure.text.endswith(" ...") and "{" not in failure.text
