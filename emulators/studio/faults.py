"""Fault injection and the request log (admin routes exist only with --enable-faults), so tests can script failures."""

from __future__ import annotations

import asyncio
import re
import threading
import time
import uuid
from collections import Counter, deque
from dataclasses import dataclass
from typing import Any, Literal

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from starlette.routing import Match

from .errors import BadArgument

_ENVELOPES = {
    408: ("RequestTimeout", "RequestTimeout", "The request timed out."),
    429: ("TooManyRequests", "RequestThrottled", "Too many requests; retry after the given delay."),
    500: ("InternalError", "InternalError", "The server encountered an internal error."),
    502: ("BadGateway", "BadGateway", "The gateway received an invalid response."),
    503: ("ServiceUnavailable", "TooManyConcurrentRequests", "The service is temporarily unavailable."),
    504: ("GatewayTimeout", "GatewayTimeout", "The gateway timed out."),
}
MALFORMED_BODY = b'{"error": {"code": "Intern'


class FaultSpec(BaseModel):
    """`POST /_admin/faults` body. `type` picks the kind; the other fields belong to that kind."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["response", "slow_job", "fail_job", "fail_provisioning", "slow_provisioning"] = "response"
    count: int = Field(1, ge=1)
    # response: match a named route, or a method and/or a path regex (re.search on the URL path)
    route: str | None = None
    method: str | None = None
    path: str | None = None
    status: int = Field(503, ge=200, le=599)
    retry_after: float | None = None
    malformed: bool = False
    body: Any = None
    delay_seconds: float = Field(0.0, ge=0)
    after: bool = False  # run the real handler first (its side effect happens), then answer the fault
    # slow_job, slow_provisioning
    seconds: float = Field(0.0, ge=0)
    # fail_job / fail_provisioning
    details: str | None = None
    message: str | None = None

    @model_validator(mode="after")
    def _response_needs_a_match(self) -> "FaultSpec":
        if self.type == "response" and not (self.route or self.method or self.path):
            raise ValueError("a response fault needs route, method or path")
        if self.path:
            re.compile(self.path)
        return self


@dataclass
class _Fault:
    id: str
    spec: FaultSpec
    remaining: int

    def matches(self, method: str, path: str, route: str | None) -> bool:
        s = self.spec
        if s.route and s.route != route:
            return False
        if s.method and s.method.upper() != method:
            return False
        return not (s.path and not re.search(s.path, path))

    def describe(self) -> dict:
        return {"id": self.id, "remaining": self.remaining, **self.spec.model_dump(exclude_defaults=True),
                "type": self.spec.type}


class Faults:
    """Armed faults (each fires `count` times) and a log of requests served."""

    def __init__(self, enabled: bool, log_size: int = 20000):
        self.enabled = enabled
        self._faults: list[_Fault] = []
        self._log: deque[dict] = deque(maxlen=log_size)
        self._seq = 0
        self._lock = threading.Lock()

    def add(self, spec: FaultSpec) -> dict:
        fault = _Fault(uuid.uuid4().hex, spec, spec.count)
        with self._lock:
            self._faults.append(fault)
        return fault.describe()

    def list(self) -> list[dict]:
        with self._lock:
            return [f.describe() for f in self._faults]

    def reset(self) -> None:
        with self._lock:
            self._faults.clear()

    def _take(self, kind: str, predicate=lambda f: True) -> _Fault | None:
        if not self.enabled:
            return None
        with self._lock:
            for fault in self._faults:
                if fault.spec.type == kind and predicate(fault):
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        self._faults.remove(fault)
                    return fault
        return None

    def take_response(self, method: str, path: str, route: str | None) -> FaultSpec | None:
        fault = self._take("response", lambda f: f.matches(method, path, route))
        return fault.spec if fault else None

    def take_job(self) -> dict:
        """Faults for the job being started now: `delay_seconds` and/or `fail_details` for its spec."""
        out: dict = {}
        slow = self._take("slow_job")
        if slow:
            out["delay_seconds"] = slow.spec.seconds
        fail = self._take("fail_job")
        if fail:
            out["fail_details"] = fail.spec.details or "Error 0000: the job failed (injected fault)."
        return out

    def take_provisioning(self) -> str | None:
        fault = self._take("fail_provisioning")
        if fault is None:
            return None
        return fault.spec.message or fault.spec.details or "Provisioning failed (injected fault)."

    def take_provisioning_delay(self) -> float:
        """Extra seconds the next provisioning stays in progress (0 when no slow_provisioning fault is armed)."""
        fault = self._take("slow_provisioning")
        return fault.spec.seconds if fault else 0.0

    # --- request log -----------------------------------------------------------------------

    def record(self, method: str, path: str, route: str | None, status: int, injected: str | None) -> None:
        with self._lock:
            self._seq += 1
            self._log.append({"seq": self._seq, "time": time.time(), "method": method, "path": path,
                              "route": route, "status": status, "injected": injected})

    def requests(self, route: str | None = None, method: str | None = None) -> list[dict]:
        with self._lock:
            entries = list(self._log)
        return [e for e in entries if (route is None or e["route"] == route)
                and (method is None or e["method"] == method.upper())]

    def clear_requests(self) -> None:
        with self._lock:
            self._log.clear()


def route_name(request: Request) -> str | None:
    """The name of the route this request will reach (e.g. "bes.submit"), before routing happens."""
    for route in request.app.state.named_routes:
        match, _ = route.matches(request.scope)
        if match == Match.FULL:
            return getattr(route, "name", None)
    return None


def fault_response(spec: FaultSpec) -> Response:
    headers = {}
    if spec.retry_after is not None:
        headers["Retry-After"] = f"{spec.retry_after:g}"
    elif spec.status == 429:
        headers["Retry-After"] = "1"
    if spec.malformed:
        return Response(MALFORMED_BODY, status_code=spec.status, headers=headers, media_type="application/json")
    if spec.body is not None:
        return JSONResponse(spec.body, status_code=spec.status, headers=headers)
    code, detail, message = _ENVELOPES.get(spec.status, ("InjectedFault", "InjectedFault", "Injected fault."))
    body = {"error": {"code": code, "message": message, "details": [{"code": detail, "message": message}]}}
    return JSONResponse(body, status_code=spec.status, headers=headers)


async def middleware(request: Request, call_next):
    """Log every non-admin request and answer armed response faults instead of (or after) the handler."""
    faults: Faults = request.app.state.context.faults
    path = request.url.path
    if path.startswith("/_admin") or path == "/healthz":
        return await call_next(request)
    route = route_name(request)
    spec = faults.take_response(request.method, path, route)
    if spec is None:
        response = await call_next(request)
        faults.record(request.method, path, route, response.status_code, None)
        return response
    if spec.delay_seconds:
        await asyncio.sleep(spec.delay_seconds)
    if spec.after:
        real = await call_next(request)
        async for _ in real.body_iterator:  # let the handler finish; its answer is then lost
            pass
    response = fault_response(spec)
    faults.record(request.method, path, route, response.status_code, "malformed" if spec.malformed else "status")
    return response


router = APIRouter(prefix="/_admin", include_in_schema=False)


def _faults(request: Request) -> Faults:
    return request.app.state.context.faults


@router.post("/faults", status_code=201, name="admin.faults.add")
async def add_fault(request: Request) -> dict:
    try:
        spec = FaultSpec.model_validate_json(await request.body() or b"{}")
    except (ValidationError, re.error) as e:
        raise BadArgument("InvalidFault", str(e)) from None
    return _faults(request).add(spec)


@router.get("/faults", name="admin.faults.list")
def list_faults(request: Request) -> dict:
    return {"faults": _faults(request).list()}


@router.delete("/faults", status_code=204, name="admin.faults.reset")
def reset_faults(request: Request) -> Response:
    _faults(request).reset()
    return Response(status_code=204)


@router.get("/requests", name="admin.requests")
def list_requests(request: Request, route: str | None = None, method: str | None = None) -> dict:
    entries = _faults(request).requests(route, method)
    counts = Counter(f"{e['route']} {e['status']}" for e in entries)
    return {"requests": entries, "counts": dict(counts)}


@router.delete("/requests", status_code=204, name="admin.requests.clear")
def clear_requests(request: Request) -> Response:
    _faults(request).clear_requests()
    return Response(status_code=204)
