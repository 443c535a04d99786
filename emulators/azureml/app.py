"""The FastAPI app: ARM workspace subset, jobs, endpoints, scoring, MLflow tracking, faults; errors as envelopes."""

from __future__ import annotations

import asyncio
import logging
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from emulators.studio import faults
from emulators.studio.errors import ServiceError
from emulators.studio.store import Store

from . import assets, endpoints, jobs, metrics, scoring, tracking
from .config import AzureMLConfig
from .context import Context
from .errors import ArmError, MlflowError
from .runner import JobRunner
from .serving import Serving
from .tls import TlsFiles

log = logging.getLogger("emulators.azureml")


def create_app(config: AzureMLConfig, data_dir: Path, *, base_url: str, tls: TlsFiles | None = None,
               enable_faults: bool = False, workers: int = 1) -> FastAPI:
    """The app; state lives under `data_dir`; job workers and the provisioning ticker run with its lifespan."""
    data_dir.mkdir(parents=True, exist_ok=True)
    store = Store(data_dir / "azureml.sqlite3")
    ctx = Context(config=config, data_dir=data_dir, store=store, tls=tls, faults=faults.Faults(enabled=enable_faults),
                  base_url=base_url.rstrip("/"))
    ctx.tracking = tracking.Tracking(store)
    for w in config.workspaces:  # MLflow's experiment "0"
        ctx.tracking.experiment_by_name(w, "Default", create=True)
    ctx.runner = JobRunner(ctx, workers)
    ctx.serving = Serving(ctx)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        ctx.runner.start()
        ticker = asyncio.create_task(_tick(ctx))
        yield
        ticker.cancel()
        ctx.runner.stop()
        ctx.serving.stop_all()
        store.close()

    app = FastAPI(title="emulators.azureml", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.context = ctx
    app.middleware("http")(faults.middleware)
    app.add_exception_handler(ArmError, _arm_error)
    app.add_exception_handler(MlflowError, _mlflow_error)
    app.add_exception_handler(ServiceError, _service_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)

    @app.get("/healthz", name="healthz")
    def healthz() -> dict:
        return {"status": "ok", "ca": str(tls.ca) if tls else None}

    routers = [assets.router, jobs.router, endpoints.router, scoring.router, metrics.router, tracking.router]
    if enable_faults:
        routers.append(faults.router)
    for router in routers:
        app.include_router(router)
    app.state.named_routes = [route for router in routers for route in router.routes]
    return app


async def _tick(ctx: Context) -> None:
    """Finish provisioning operations on time even when nobody polls."""
    while True:
        await asyncio.sleep(0.1)
        try:
            await asyncio.to_thread(endpoints.settle, ctx)
        except Exception:  # noqa: BLE001 - the next tick retries; a read settles too
            log.exception("provisioning tick failed")


async def _arm_error(request: Request, exc: ArmError) -> JSONResponse:
    return JSONResponse(exc.envelope(), status_code=exc.status, headers=exc.headers)


async def _mlflow_error(request: Request, exc: MlflowError) -> JSONResponse:
    return JSONResponse(exc.envelope(), status_code=exc.status)


async def _service_error(request: Request, exc: ServiceError) -> JSONResponse:
    return JSONResponse(exc.envelope(), status_code=exc.status, headers=exc.headers)


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    return await _arm_error(request, ArmError(f"The request is not valid: {exc.errors()}", code="BadRequest"))


async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    """Unknown paths and wrong methods answer in ARM's envelope."""
    codes = {404: "ResourceNotFound", 405: "MethodNotAllowed"}
    message = f"{request.method} {request.url.path}: {exc.detail}"
    return JSONResponse({"error": {"code": codes.get(exc.status_code, "BadRequest"), "message": message,
                                   "details": []}}, status_code=exc.status_code)
