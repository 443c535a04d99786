"""The host's HTTP front end on loopback: `/{routePrefix}/{route}` to HTTP functions, plus the admin routes."""

from __future__ import annotations

import json
import logging
import threading
from concurrent.futures import Future
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlsplit

import azure.functions as func
from azure.functions import _abc as azf_abc

from .app import FunctionSpec
from .errors import BindingError, DevHostError, DrainTimeout, UnknownFunctionError
from .invoker import InvocationResult, Invoker, WorkerPool
from .routes import RouteTemplate

log = logging.getLogger("devhost")

HTTP_RESPONSE_LIMIT = 230.0   # seconds: Azure's front end cuts HTTP responses here whatever the plan


@dataclass(frozen=True)
class HttpFunction:
    """An HTTP trigger: its route template, methods (None = any) and auth level."""

    spec: FunctionSpec
    route: RouteTemplate
    methods: frozenset[str] | None
    auth_level: str

    @classmethod
    def of(cls, spec: FunctionSpec) -> "HttpFunction":
        route = spec.trigger.get("route") or spec.name
        methods = spec.trigger.get("methods")
        return cls(spec=spec, route=RouteTemplate.parse(route),
                   methods=frozenset(m.upper() for m in methods) if methods else None,
                   auth_level=str(spec.trigger.get("authLevel", "FUNCTION")).upper())


@dataclass(frozen=True)
class Response:
    """What goes back on the wire."""

    status: int
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)

    @classmethod
    def json(cls, status: int, doc: Any) -> "Response":
        return cls(status, json.dumps(doc).encode(), [("Content-Type", "application/json; charset=utf-8")])


class Router:
    """Finds the function for a request: most specific template first; 404 if no route, 405 if no method."""

    def __init__(self, functions: list[HttpFunction], prefix: str) -> None:
        self.prefix = prefix.strip("/")
        self.functions = sorted(functions, key=lambda f: (f.route.precedence, f.route.template))

    def url_path(self, f: HttpFunction) -> str:
        return "/" + "/".join(p for p in (self.prefix, f.route.template.strip("/")) if p)

    def resolve(self, method: str, path: str) -> tuple[HttpFunction, dict[str, str]] | Response:
        rest = path.strip("/")
        if self.prefix:
            head, _, rest = rest.partition("/")
            if head.lower() != self.prefix.lower():
                return Response(404)
        allowed: set[str] = set()
        for f in self.functions:
            params = f.route.match(rest)
            if params is None:
                continue
            if f.methods is None or method in f.methods:
                return f, params
            allowed |= f.methods
        if allowed:
            return Response(405, headers=[("Allow", ", ".join(sorted(allowed)))])
        return Response(404)


def to_response(result: InvocationResult) -> Response:
    """func.HttpResponse (or str/bytes, or None) back to the wire; a failed invocation is a bodiless 500."""
    if not result.succeeded:
        return Response(500)
    value = result.return_value
    if value is None:
        return Response(204)
    if isinstance(value, azf_abc.HttpResponse):
        headers = [(k, v) for k, v in value.headers.items()]
        if not any(k.lower() == "content-type" for k, _ in headers):
            headers.append(("Content-Type", f"{value.mimetype}; charset={value.charset}"))
        return Response(value.status_code, value.get_body(), headers)
    if isinstance(value, (str, bytes)):
        body = value.encode() if isinstance(value, str) else value
        return Response(200, body, [("Content-Type", "text/plain; charset=utf-8")])
    log.error("function %s returned %s; an HTTP function must return func.HttpResponse", result.function,
              type(value).__name__)
    return Response(500)


class AdminTarget(Protocol):
    """What the admin routes need from the host."""

    def invoke_admin(self, name: str, payload: str) -> Future: ...

    def drain(self, timeout: float = 30.0) -> None: ...

    def describe_functions(self) -> list[dict[str, Any]]: ...


class FrontEnd:
    """Turns one HTTP request into a function invocation or an admin action."""

    def __init__(self, router: Router, invoker: Invoker, pool: WorkerPool, admin: AdminTarget,
                 response_limit: float = HTTP_RESPONSE_LIMIT) -> None:
        self.router = router
        self.invoker = invoker
        self.pool = pool
        self.admin = admin
        self.response_limit = response_limit

    def handle(self, method: str, target: str, headers: dict[str, str], body: bytes, base_url: str) -> Response:
        parts = urlsplit(target)
        if parts.path.rstrip("/").lower().startswith("/admin"):
            return self._admin(method, parts.path.rstrip("/"), dict(parse_qsl(parts.query)), body)
        found = self.router.resolve(method, parts.path)
        if isinstance(found, Response):
            if found.status == 404 and parts.path.strip("/") == "" and method == "GET":
                return Response(200, b"devhost: the Functions app is up and running\n",
                                [("Content-Type", "text/plain; charset=utf-8")])
            return found
        function, route_params = found
        params: dict[str, str] = {}
        for k, v in parse_qsl(parts.query, keep_blank_values=True):
            params[k] = f"{params[k]},{v}" if k in params else v
        url = base_url + target

        def bind() -> func.HttpRequest:
            return func.HttpRequest(method, url, headers=headers, params=params, route_params=route_params, body=body)

        reason = f"This function was programmatically called via the host APIs ({method} {parts.path})."
        future = self.pool.submit(lambda: self.invoker.invoke(function.spec, bind, reason))
        try:
            result = future.result(timeout=self.response_limit)
        except TimeoutError:
            log.error("function %s: no response after %.0fs; Azure would cut the request here",
                      function.spec.name, self.response_limit)
            return Response(504)
        return to_response(result)

    def _admin(self, method: str, path: str, query: dict[str, str], body: bytes) -> Response:
        segments = path.strip("/").split("/")
        if segments == ["admin", "host", "status"] and method == "GET":
            return Response.json(200, {"state": "Running", "version": "devhost"})
        if segments == ["admin", "functions"] and method == "GET":
            return Response.json(200, self.admin.describe_functions())
        if len(segments) == 3 and segments[:2] == ["admin", "functions"]:
            return self._admin_function(method, segments[2], body)
        if segments == ["admin", "devhost", "drain"] and method == "POST":
            try:
                self.admin.drain(float(query.get("timeout", "30")))
            except DrainTimeout as e:
                return Response.json(504, {"drained": False, "error": str(e)})
            except ValueError:
                return Response.json(400, {"error": "timeout must be a number of seconds"})
            return Response.json(200, {"drained": True})
        return Response(404)

    def _admin_function(self, method: str, name: str, body: bytes) -> Response:
        functions = {d["name"].lower(): d for d in self.admin.describe_functions()}
        if name.lower() not in functions:
            return Response.json(404, {"error": f"no function named {name!r}"})
        if method == "GET":
            return Response.json(200, functions[name.lower()])
        if method != "POST":
            return Response(405, headers=[("Allow", "GET, POST")])
        try:
            doc = json.loads(body or b"{}")
            payload = doc.get("input", "") if isinstance(doc, dict) else None
            if not isinstance(payload, str):
                raise ValueError
        except ValueError:
            return Response.json(400, {"error": 'body must be JSON like {"input": "..."}'})
        try:
            self.admin.invoke_admin(functions[name.lower()]["name"], payload)
        except (BindingError, UnknownFunctionError) as e:
            return Response.json(400, {"error": str(e)})
        return Response(202)


class LoopbackServer(ThreadingHTTPServer):
    """ThreadingHTTPServer whose request threads never keep the process alive."""

    daemon_threads = True
    allow_reuse_address = True


def serve(front: FrontEnd, port: int, host: str = "127.0.0.1") -> tuple[LoopbackServer, threading.Thread]:
    """Bind (port 0 = any free port) and serve on a daemon thread; returns once listening."""
    handler = _handler_class(front)
    try:
        server = LoopbackServer((host, port), handler)
    except OSError as e:
        raise DevHostError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1},
                              name="devhost-http", daemon=True)
    thread.start()
    return server, thread


def _handler_class(front: FrontEnd) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "devhost"

        def _handle(self) -> None:
            try:
                body = self._read_body()
            except ValueError as e:
                self._send(Response.json(400, {"error": str(e)}))
                return
            host = self.headers.get("Host") or f"{self.server.server_address[0]}:{self.server.server_address[1]}"
            headers = {k: v for k, v in self.headers.items()}
            try:
                response = front.handle(self.command, self.path, headers, body, f"http://{host}")
            except Exception:  # noqa: BLE001 - never let a host bug kill the connection silently
                log.exception("devhost: error handling %s %s", self.command, self.path)
                response = Response(500)
            self._send(response)

        def _read_body(self) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                chunks = []
                while True:
                    size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                    if size == 0:
                        self.rfile.readline()
                        return b"".join(chunks)
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
            length = self.headers.get("Content-Length")
            if length is None:
                return b""
            if not length.isdigit():
                raise ValueError("bad Content-Length")
            return self.rfile.read(int(length))

        def _send(self, response: Response) -> None:
            self.send_response(response.status)
            for k, v in response.headers:
                if k.lower() not in ("content-length", "transfer-encoding", "connection"):
                    self.send_header(k, v)
            self.send_header("Content-Length", str(len(response.body)))
            self.end_headers()
            if self.command != "HEAD" and response.body:
                self.wfile.write(response.body)

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("http: " + format, *args)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _handle

    return Handler
