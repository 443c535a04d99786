"""Read-only job measurements (timings, rows, peak RSS) for benchmarks; always on, never shows credentials."""

from __future__ import annotations

from fastapi import APIRouter, Request

from .context import context

router = APIRouter(prefix="/_debug", include_in_schema=False)


@router.get("/jobs", name="debug.jobs")
def jobs(request: Request) -> dict:
    ctx = context(request)
    return {"jobs": [ctx.runner.metadata(key) for key, _ in ctx.store.all("job")], "workers": ctx.runner.workers}


@router.get("/jobs/{job_id}", name="debug.job")
def job(job_id: str, request: Request) -> dict:
    return context(request).runner.metadata(job_id)
