"""OpenTelemetry: one trace per run across its queue-triggered steps, a span per step, and the chain's metrics.

Exporters are configured once per process, and only when asked: `APPLICATIONINSIGHTS_CONNECTION_STRING`
(the Azure Monitor distro, `azure-monitor-opentelemetry`) and/or `OTEL_EXPORTER_OTLP_ENDPOINT` (OTLP over
HTTP). Without either, the API's no-op providers make every call here free, so tests see nothing unless
they install their own (in-memory) providers. Storage queues do not carry trace context, so each step message carries the
W3C `traceparent` in its body; a message without one joins the run's recorded `trace_id`.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import secrets
import threading
import time
from typing import Iterator, Mapping

from opentelemetry import metrics, propagate, trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, Status, StatusCode, TraceFlags

log = logging.getLogger("retrain")
NAME = "retrain"
AI_SETTING, OTLP_SETTING = "APPLICATIONINSIGHTS_CONNECTION_STRING", "OTEL_EXPORTER_OTLP_ENDPOINT"

tracer = trace.get_tracer(NAME)
meter = metrics.get_meter(NAME)
RUNS = meter.create_counter("retrain.runs", unit="{run}", description="Runs ended, by outcome")
STEP_DURATION = meter.create_histogram("retrain.step.duration", unit="s", description="One step's work")
JOB_DURATION = meter.create_histogram("retrain.job.duration", unit="s", description="Training job, submit to end")
DATA_TO_PROMOTION = meter.create_histogram("retrain.data_to_promotion", unit="s",
                                           description="From the data landing to its model serving")
TRANSIENT_RETRIES = meter.create_counter("retrain.transient_retries", unit="{retry}",
                                         description="Steps retried after a transient service error")
DELIVERIES = meter.create_counter("retrain.deliveries", unit="{delivery}", description="Event deliveries, by outcome")

_configured = False
_lock = threading.Lock()
run_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("retrain_run_id", default="")


class RunIdFilter(logging.Filter):
    """Every log record carries the run id of the step that wrote it (`retrain.run_id`), for KQL."""

    def filter(self, record: logging.LogRecord) -> bool:
        run_id = run_id_var.get()
        if run_id and not hasattr(record, "retrain.run_id"):
            setattr(record, "retrain.run_id", run_id)
        return True


def configure(env: Mapping[str, str]) -> bool:
    """Install exporters once if a destination is set; True when this call configured them.

    With a connection string, the Azure Monitor distro (`configure_azure_monitor`, once) sets up traces,
    metrics and logs of the `retrain` logger, and the OTLP exporters, when asked, ride along as extra
    processors; with only an OTLP endpoint, the SDK's providers export there alone.
    """
    global _configured
    ai, otlp = (env.get(AI_SETTING) or "").strip(), (env.get(OTLP_SETTING) or "").strip()
    with _lock:
        if _configured or not (ai or otlp):
            return False
        from opentelemetry.sdk._logs import LoggingHandler
        from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
        from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
        resource = Resource.create({"service.name": env.get("OTEL_SERVICE_NAME") or env.get("WEBSITE_SITE_NAME")
                                    or "retrain"})
        spans, readers, logs = [], [], []
        if otlp:
            from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
            from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
            spans.append(BatchSpanProcessor(OTLPSpanExporter()))
            readers.append(PeriodicExportingMetricReader(OTLPMetricExporter()))
            logs.append(BatchLogRecordProcessor(OTLPLogExporter()))
        if ai:
            from azure.monitor.opentelemetry import configure_azure_monitor
            # every span unless the operator chose a sampler: a run is a handful of spans, a gap breaks its trace
            sampling = {} if env.get("OTEL_TRACES_SAMPLER") else {"sampling_ratio": 1.0}
            configure_azure_monitor(connection_string=ai, resource=resource, logger_name=NAME, span_processors=spans,
                                    metric_readers=readers, log_record_processors=logs, enable_live_metrics=False,
                                    **sampling, **_entra_auth(env))
        else:
            _sdk_providers(resource, spans, readers, logs)
        for handler in log.handlers:
            if isinstance(handler, LoggingHandler):
                handler.addFilter(RunIdFilter())
        _configured = True
        return True


def _sdk_providers(resource, spans: list, readers: list, logs: list) -> None:
    """The SDK's providers with the given processors and readers (OTLP only: no distro involved)."""
    from opentelemetry._logs import set_logger_provider
    from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.trace import TracerProvider
    provider = TracerProvider(resource=resource)
    for processor in spans:
        provider.add_span_processor(processor)
    trace.set_tracer_provider(provider)
    metrics.set_meter_provider(MeterProvider(resource=resource, metric_readers=readers))
    logger_provider = LoggerProvider(resource=resource)
    for processor in logs:
        logger_provider.add_log_record_processor(processor)
    set_logger_provider(logger_provider)
    log.addHandler(LoggingHandler(logger_provider=logger_provider))


def _entra_auth(env: Mapping[str, str]) -> dict:
    """`APPLICATIONINSIGHTS_AUTHENTICATION_STRING=ClientId=...;Authorization=AAD`: send with the app's identity."""
    parts = dict(p.split("=", 1) for p in (env.get("APPLICATIONINSIGHTS_AUTHENTICATION_STRING") or "").split(";")
                 if "=" in p)
    if parts.get("Authorization", "").upper() != "AAD":
        return {}
    from azure.identity import ManagedIdentityCredential
    return {"credential": ManagedIdentityCredential(client_id=parts.get("ClientId") or None)}


def carrier() -> dict[str, str]:
    """The current trace context as W3C headers, for a message body ({} when nothing is traced)."""
    headers: dict[str, str] = {}
    propagate.inject(headers)
    return headers


def current_trace_id() -> str:
    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else ""


def _parent(headers: Mapping[str, str] | None, trace_id: str):
    """The message's trace context, else the run's trace (a re-driven or re-admitted step joins it)."""
    if headers:
        return propagate.extract(dict(headers))
    if len(trace_id) == 32:
        try:
            span = SpanContext(int(trace_id, 16), int.from_bytes(secrets.token_bytes(8), "big") or 1, is_remote=True,
                               trace_flags=TraceFlags(TraceFlags.SAMPLED))
        except ValueError:
            return None
        return trace.set_span_in_context(NonRecordingSpan(span))
    return None


@contextlib.contextmanager
def run_span(name: str, *, model: str, run_id: str = "", headers: Mapping[str, str] | None = None,
             trace_id: str = "", **attributes) -> Iterator[trace.Span]:
    """A span for one piece of a run's work, its attributes `retrain.*`, timed into `retrain.step.duration`."""
    attrs = {"retrain.model": model, **({"retrain.run_id": run_id} if run_id else {}),
             **{f"retrain.{k}": v for k, v in attributes.items() if v not in (None, "")}}
    token = run_id_var.set(run_id)
    started = time.perf_counter()
    try:
        with tracer.start_as_current_span(name, context=_parent(headers, trace_id), kind=SpanKind.CONSUMER,
                                          attributes=attrs) as span:
            try:
                yield span
            except Exception as e:
                span.set_status(Status(StatusCode.ERROR, type(e).__name__))
                raise
    finally:
        run_id_var.reset(token)
        if "step" in attributes:
            STEP_DURATION.record(time.perf_counter() - started, {"retrain.model": model,
                                                                 "retrain.step": attributes["step"]})


def run_ended(model: str, outcome: str) -> None:
    RUNS.add(1, {"retrain.model": model, "retrain.outcome": outcome})


def job_ended(model: str, seconds: float, outcome: str) -> None:
    JOB_DURATION.record(max(seconds, 0.0), {"retrain.model": model, "retrain.outcome": outcome})


def promoted(model: str, seconds_since_data: float) -> None:
    DATA_TO_PROMOTION.record(max(seconds_since_data, 0.0), {"retrain.model": model})


def transient_retry(model: str, step: str) -> None:
    TRANSIENT_RETRIES.add(1, {"retrain.model": model, "retrain.step": step})


def delivery(outcome: str, sink: str, event_type: str) -> None:
    DELIVERIES.add(1, {"retrain.outcome": outcome, "retrain.sink": sink, "retrain.event_type": event_type})


def outcome(value: str) -> None:
    """What the current step led to (the run's new status, `retry`, `polling`), on its span."""
    trace.get_current_span().set_attribute("retrain.outcome", value)


@contextlib.contextmanager
def joined(trace_id: str) -> Iterator[None]:
    """Work done (messages sent) here belongs to the run's trace, whatever trace the caller is in."""
    if not trace_id or current_trace_id() == trace_id:
        yield
        return
    from opentelemetry import context as otel_context
    token = otel_context.attach(_parent(None, trace_id))
    try:
        yield
    finally:
        otel_context.detach(token)
