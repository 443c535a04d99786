"""Builds the FastAPI app: one process serving BES, RRS, endpoint management, ARM and (optionally) the admin routes."""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from . import arm, bes, debug, faults, management, rrs
from .config import EmulatorConfig
from .context import Context
from .errors import BadArgument, ServiceError
from .jobs import JobRunner
from .models import ModelFiles
from .store import Store

log = logging.getLogger("emulators.studio")


def create_app(config: EmulatorConfig, data_dir: Path, *, enable_faults: bool = False, workers: int = 1) -> FastAPI:
    """The app; state lives under `data_dir` and job workers start with the app's lifespan."""
    data_dir.mkdir(parents=True, exist_ok=True)
    store = Store(data_dir / "emulator.sqlite3")
    ctx = Context(config=config, data_dir=data_dir, store=store, runner=JobRunner(store, workers),
                  models=ModelFiles(data_dir / "models"), faults=faults.Faults(enabled=enable_faults))
    management.seed(ctx)
    arm.seed(ctx)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        ctx.runner.open()
        arm.recover(ctx)
        yield
        ctx.runner.close()
        store.close()

    app = FastAPI(title="emulators.studio", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.context = ctx
    app.middleware("http")(faults.middleware)
    app.add_exception_handler(ServiceError, _service_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)

    @app.get("/healthz", name="healthz")
    def healthz() -> dict:
        return {"status": "ok"}

    routers = [bes.router, rrs.router, management.router, arm.router, debug.router]
    if enable_faults:
        routers.append(faults.router)
    for router in routers:
        app.include_router(router)
    # The routes themselves (FastAPI wraps included routers), so the fault middleware can name a request's route.
    app.state.named_routes = [route for router in routers for route in router.routes]
    return app


async def _service_error(request: Request, exc: ServiceError) -> JSONResponse:
    return JSONResponse(exc.envelope(), status_code=exc.status, headers=exc.headers)


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    return await _service_error(request, BadArgument("RequestBodyInvalid", f"The request is not valid: {exc.errors()}"))


async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    """Unknown paths and wrong methods still answer in the service's envelope."""
    codes = {404: ("NotFound", "ResourceNotFound"), 405: ("BadArgument", "MethodNotAllowed")}
    code, detail = codes.get(exc.status_code, ("BadArgument", "BadRequest"))
    message = f"{request.method} {request.url.path}: {exc.detail}"
    return JSONResponse({"error": {"code": code, "message": message, "details": [{"code": detail, "message": message}]}},
                        status_code=exc.status_code, headers=getattr(exc, "headers", None))
