"""A local webhook receiver (and Event Grid topic stub) on loopback: scripted answers, every request recorded.

Each request is checked with the `standardwebhooks` package when the path has a secret; the result
is recorded with the request, so tests can assert that every delivery was signed correctly.
"""

from __future__ import annotations

import json
import ssl
import threading
from collections import defaultdict, deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook, WebhookVerificationError


@dataclass
class Received:
    path: str  # without the query
    target: str  # as requested, with the query
    headers: dict[str, str]
    body: bytes
    verified: bool | None  # None: no secret registered for the path

    @property
    def json(self):
        return json.loads(self.body)


@dataclass
class Receiver:
    server: ThreadingHTTPServer
    received: list[Received] = field(default_factory=list)
    secrets: dict[str, str] = field(default_factory=dict)
    script: dict[str, deque] = field(default_factory=lambda: defaultdict(deque))
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def base(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def host(self) -> str:
        host, port = self.server.server_address[:2]
        return f"{host}:{port}"

    def url(self, path: str, secret: str | None = None) -> str:
        if secret is not None:
            self.secrets[path] = secret
        return self.base + path

    def answer(self, path: str, *answers: tuple[int, dict]) -> None:
        """The next answers for `path`, in order; after them every request gets 200."""
        self.script[path].extend(answers)

    def at(self, path: str) -> list[Received]:
        with self.lock:
            return [r for r in self.received if r.path == path]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def start_receiver(tls: ssl.SSLContext | None = None) -> Receiver:
    """On 127.0.0.1 and a free port; over TLS when given a server context (the base URL stays http://...)."""
    receiver: Receiver

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            path = self.path.split("?")[0]
            headers = {k.lower(): v for k, v in self.headers.items()}
            secret = receiver.secrets.get(path)
            verified = None
            if secret is not None:
                try:
                    Webhook(secret).verify(body, headers)
                    verified = True
                except WebhookVerificationError:
                    verified = False
            with receiver.lock:
                receiver.received.append(Received(path, self.path, headers, body, verified))
                queue = receiver.script.get(path)
                status, extra = queue.popleft() if queue else (200, {})
            self.send_response(status)
            for name, value in extra.items():
                self.send_header(name, value)
            self.send_header("content-length", "0")  # Event Grid answers an empty body too
            self.end_headers()

        def log_message(self, *args):  # quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    receiver = Receiver(server)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return receiver
