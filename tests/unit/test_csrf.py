"""The dashboard's form tokens: HMAC of the server secret over the caller and the time."""

from retrain.web import csrf

ENV = {csrf.KEY_SETTING: "a-long-random-secret"}
ALICE = {"X-MS-CLIENT-PRINCIPAL": "eyJhbGljZSI6MX0="}
NOW = 1_800_000_000


def test_a_token_is_valid_for_the_caller_it_was_issued_to():
    assert csrf.valid(csrf.issue(ENV, ALICE, now=NOW), ENV, ALICE, now=NOW + 60)


def test_a_token_of_another_caller_is_refused():
    assert not csrf.valid(csrf.issue(ENV, ALICE, now=NOW), ENV, {}, now=NOW)


def test_a_token_expires():
    assert not csrf.valid(csrf.issue(ENV, {}, now=NOW), ENV, {}, now=NOW + csrf.LIFETIME + 1)


def test_a_tampered_or_malformed_token_is_refused():
    token = csrf.issue(ENV, {}, now=NOW)
    issued, signature = token.split(".")
    for bad in (f"{int(issued) + 1}.{signature}", f"{issued}.{signature[:-1]}0", "", "x", "1.", "a.b", "9" * 300):
        assert not csrf.valid(bad, ENV, {}, now=NOW), bad


def test_another_server_secret_refuses_the_token():
    assert not csrf.valid(csrf.issue(ENV, {}, now=NOW), {csrf.KEY_SETTING: "other"}, {}, now=NOW)


def test_without_the_setting_tokens_are_signed_with_this_process_key():
    token = csrf.issue({}, {}, now=NOW)
    assert csrf.valid(token, {}, {}, now=NOW) and not csrf.valid(token, ENV, {}, now=NOW)
