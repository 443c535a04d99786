"""retrain.http.send: which failures are retried, how long it waits, and which typed error comes out.

The peer is a real HTTP server on loopback that answers from a script (no HTTP mocks);
only the sleep function is replaced, to record the delays instead of waiting them out.
"""

from __future__ import annotations

import email.utils
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from retrain import http
from retrain.errors import AuthenticationFailed, PermanentServiceError, TransientServiceError
from retrain.http import RetryPolicy, new_session, send

KEY = "s3cr3t-api-key-0123456789"
HEADERS = {"Authorization": f"Bearer {KEY}"}
FAST = RetryPolicy(attempts=4, backoff=0.01, max_backoff=0.05, budget=5.0)


@dataclass
class Reply:
    status: int = 200
    body: bytes | str | dict | list | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


class ScriptedServer:
    """Answers each request with the next scripted Reply (the last one repeats); records what it received."""

    def __init__(self):
        self.script: list[Reply] = []
        self.requests: list[tuple[str, str, dict]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _any(self):
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                outer.requests.append((self.command, self.path, dict(self.headers)))
                reply = outer.script.pop(0) if len(outer.script) > 1 else outer.script[0]
                if reply.delay:
                    time.sleep(reply.delay)
                body = reply.body
                if isinstance(body, (dict, list)) or (body is not None and not isinstance(body, (bytes, str))):
                    body = json.dumps(body)
                data = body.encode() if isinstance(body, str) else (body or b"")
                try:
                    self.send_response(reply.status)
                    for k, v in reply.headers.items():
                        self.send_header(k, v)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _any

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/svc"

    def play(self, *replies: Reply) -> "ScriptedServer":
        self.script = list(replies)
        self.requests = []
        return self

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def server():
    s = ScriptedServer()
    yield s
    s.close()


@pytest.fixture
def sleeps(monkeypatch) -> list[float]:
    """The delays send() chose, recorded instead of slept."""
    recorded: list[float] = []
    monkeypatch.setattr(http, "_sleep", recorded.append)
    return recorded


@pytest.fixture
def session():
    with new_session() as s:
        yield s


def envelope(code: str, detail: str, message: str) -> dict:
    return {"error": {"code": code, "message": message, "details": [{"code": detail, "message": message}]}}


def test_returns_first_success_after_retrying_503(server, session, sleeps):
    server.play(Reply(503), Reply(503), Reply(200, {"ok": True}))
    response = send(session, "GET", server.url, headers=HEADERS, retry=FAST, idempotent=True)
    assert response.json() == {"ok": True}
    assert len(server.requests) == 3 and len(sleeps) == 2


def test_backoff_doubles_from_first_delay_and_is_capped():
    policy = RetryPolicy(backoff=1.0, max_backoff=3.0)
    for n, ceiling in enumerate([1.0, 2.0, 3.0, 3.0]):
        assert ceiling / 2 <= policy.delay(n) <= ceiling


def test_retry_after_seconds_is_the_delay(server, session, sleeps):
    server.play(Reply(429, headers={"Retry-After": "2"}), Reply(200, {}))
    send(session, "GET", server.url, headers=HEADERS, retry=FAST, idempotent=True)
    assert sleeps == [2.0]


def test_retry_after_http_date_is_the_delay(server, session, sleeps):
    when = email.utils.formatdate(time.time() + 3, usegmt=True)
    server.play(Reply(503, headers={"Retry-After": when}), Reply(200, {}))
    send(session, "GET", server.url, headers=HEADERS, retry=FAST, idempotent=True)
    assert len(sleeps) == 1 and 1.0 <= sleeps[0] <= 3.0


def test_retry_after_beyond_budget_raises_at_once_with_retry_after(server, session, sleeps):
    server.play(Reply(429, headers={"Retry-After": "60"}), Reply(200, {}))
    with pytest.raises(TransientServiceError) as info:
        send(session, "GET", server.url, headers=HEADERS, retry=FAST, idempotent=True)
    assert info.value.retry_after == 60 and info.value.status == 429
    assert len(server.requests) == 1 and sleeps == []


def test_gives_up_after_attempts_with_transient_error_carrying_the_envelope(server, session, sleeps):
    server.play(Reply(503, envelope("ServiceUnavailable", "TooManyConcurrentRequests", "busy")))
    with pytest.raises(TransientServiceError) as info:
        send(session, "GET", server.url, headers=HEADERS, retry=FAST, idempotent=True)
    assert len(server.requests) == FAST.attempts
    assert (info.value.status, info.value.code, info.value.detail_code) == (
        503, "ServiceUnavailable", "TooManyConcurrentRequests")


def test_stops_when_budget_is_spent(server, session, monkeypatch):
    clock = iter(range(0, 1000, 10))  # each reading of the clock is 10 s later
    monkeypatch.setattr(http, "_clock", lambda: next(clock))
    monkeypatch.setattr(http, "_sleep", lambda s: None)
    server.play(Reply(500))
    with pytest.raises(TransientServiceError):
        send(session, "GET", server.url, headers=HEADERS, idempotent=True,
             retry=RetryPolicy(attempts=10, backoff=0.01, budget=15))
    assert len(server.requests) == 2


def test_non_idempotent_call_is_not_retried_after_500(server, session, sleeps):
    server.play(Reply(500, envelope("InternalError", "InternalError", "boom")), Reply(200, "job"))
    with pytest.raises(TransientServiceError) as info:
        send(session, "POST", server.url, headers=HEADERS, json={}, retry=FAST, idempotent=False)
    assert info.value.status == 500 and len(server.requests) == 1


@pytest.mark.parametrize("status", [429, 503])
def test_non_idempotent_call_is_retried_when_the_service_refused_it(server, session, sleeps, status):
    server.play(Reply(status), Reply(200, '"job"'))
    assert send(session, "POST", server.url, headers=HEADERS, json={}, retry=FAST, idempotent=False).json() == "job"
    assert len(server.requests) == 2


def test_non_idempotent_call_is_retried_when_no_connection_was_made(session, sleeps):
    from devhost.world import free_port
    url = f"http://127.0.0.1:{free_port()}/svc"
    with pytest.raises(TransientServiceError, match="could not connect"):
        send(session, "POST", url, headers=HEADERS, json={}, retry=FAST, idempotent=False)
    assert len(sleeps) == FAST.attempts - 1


def test_non_idempotent_call_is_not_retried_after_read_timeout(server, session, sleeps):
    server.play(Reply(200, "job", delay=0.5))
    with pytest.raises(TransientServiceError, match="timed out"):
        send(session, "POST", server.url, headers=HEADERS, json={}, retry=FAST, idempotent=False,
             timeout=(2, 0.1))
    assert sleeps == []


def test_idempotent_call_is_retried_after_read_timeout(server, session, sleeps):
    server.play(Reply(200, {}, delay=0.5), Reply(200, {"ok": 1}))
    response = send(session, "GET", server.url, headers=HEADERS, retry=FAST, idempotent=True, timeout=(2, 0.1))
    assert response.json() == {"ok": 1}


def test_bad_argument_is_permanent_with_codes_and_message_and_not_retried(server, session, sleeps):
    server.play(Reply(400, envelope("BadArgument", "InvalidBlobExtension", "Output must end in .ilearner")))
    with pytest.raises(PermanentServiceError) as info:
        send(session, "POST", server.url, headers=HEADERS, json={}, retry=FAST, idempotent=True)
    error = info.value
    assert (error.status, error.code, error.detail_code) == (400, "BadArgument", "InvalidBlobExtension")
    assert "Output must end in .ilearner" in str(error)
    assert len(server.requests) == 1


def test_not_found_is_permanent(server, session, sleeps):
    server.play(Reply(404, envelope("NotFound", "WebServiceNotFound", "no such service")))
    with pytest.raises(PermanentServiceError) as info:
        send(session, "GET", server.url, headers=HEADERS, retry=FAST, idempotent=True)
    assert info.value.status == 404 and not isinstance(info.value, TransientServiceError)


@pytest.mark.parametrize("status", [401, 403])
def test_rejected_key_is_authentication_failed_without_the_key(server, session, sleeps, status):
    # The service echoes the header back: it must still not reach the message.
    server.play(Reply(status, envelope("Unauthorized", "ScoreRequestUnauthorized", f"bad header Bearer {KEY}")))
    with pytest.raises(AuthenticationFailed) as info:
        send(session, "GET", server.url, headers=HEADERS, retry=FAST, idempotent=True)
    assert KEY not in str(info.value) and KEY not in repr(info.value)
    assert len(server.requests) == 1


def test_sas_signature_in_an_error_message_is_masked(server, session, sleeps):
    server.play(Reply(400, envelope("BadArgument", "BlobNotFound",
                                    "blob https://a.blob/c/x.csv?sv=1&sig=TOPSECRETSIG&sp=r not found")))
    with pytest.raises(PermanentServiceError) as info:
        send(session, "GET", server.url + "?sig=ALSOSECRET", headers=HEADERS, retry=FAST, idempotent=True)
    assert "TOPSECRETSIG" not in str(info.value) and "ALSOSECRET" not in str(info.value)


def test_garbled_success_body_is_retried_then_transient(server, session, sleeps):
    server.play(Reply(200, "<html>Bad gateway</html>"))
    with pytest.raises(TransientServiceError, match="not JSON"):
        send(session, "GET", server.url, headers=HEADERS, retry=FAST, idempotent=True, expect_json=True)
    assert len(server.requests) == FAST.attempts


def test_garbled_success_body_then_good_body_returns_the_good_one(server, session, sleeps):
    server.play(Reply(200, '{"trunc'), Reply(200, {"StatusCode": "Running"}))
    response = send(session, "GET", server.url, headers=HEADERS, retry=FAST, idempotent=True, expect_json=True)
    assert response.json() == {"StatusCode": "Running"}


def test_retries_are_logged_without_the_key(server, session, sleeps, caplog):
    server.play(Reply(503, envelope("ServiceUnavailable", "RequestThrottled", f"slow down {KEY}")), Reply(200, {}))
    with caplog.at_level("DEBUG"):
        send(session, "GET", server.url, headers=HEADERS, retry=FAST, idempotent=True)
    assert "retrying" in caplog.text and KEY not in caplog.text


def test_session_sends_user_agent_and_hooks_see_every_attempt(server, sleeps):
    seen = []
    with new_session() as s:
        s.hooks["response"].append(lambda r, *a, **kw: seen.append(r.status_code))
        server.play(Reply(502), Reply(200, {}))
        send(s, "GET", server.url, headers=HEADERS, retry=FAST, idempotent=True)
    assert seen == [502, 200]
    assert server.requests[0][2]["User-Agent"].startswith("retrain-functions/")
