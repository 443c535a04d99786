"""OpenTelemetry with the SDK's in-memory exporters: one trace per run across its steps, attributes, metrics.

The providers are installed here, for this module only (the app never configures exporters in tests:
`telemetry.configure` acts only when APPLICATIONINSIGHTS_CONNECTION_STRING or OTEL_EXPORTER_OTLP_ENDPOINT is set).
"""

from __future__ import annotations

import uuid

import pytest
from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from retrain import api, telemetry
from retrain.runs import Status

from .conftest import good_data
from .test_events import PASSING, Twice, make_world, subscribe
from tests.receiver import start_receiver


@pytest.fixture(scope="module")
def otel():
    spans, reader = InMemorySpanExporter(), InMemoryMetricReader()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    trace.set_tracer_provider(provider)
    metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
    yield spans, reader
    provider.shutdown()
    spans.clear()


@pytest.fixture(scope="module")
def traced(otel, azurite, chain_emulator):
    receiver = start_receiver()
    world = make_world(azurite, chain_emulator, receiver)
    world.register(policy=PASSING)
    subscribe(world, receiver, "traced", f"/{uuid.uuid4().hex[:6]}/traced")
    run = world.land("census/a.csv", good_data())
    Twice(world.ctx).settle()
    run = world.run(run.run_id)
    assert run.status is Status.PROMOTED, run.reason
    spans, reader = otel
    yield run, spans.get_finished_spans(), reader.get_metrics_data(), world
    receiver.stop()


def run_spans(spans, run):
    return [s for s in spans if s.attributes.get("retrain.run_id") == run.run_id
            or (s.name == "retrain.run.start" and s.context.trace_id == int(run.trace_id, 16))]


def test_one_run_is_one_trace_across_its_steps(traced):
    run, spans, _, _ = traced
    mine = run_spans(spans, run)
    assert run.trace_id and {format(s.context.trace_id, "032x") for s in mine} == {run.trace_id}
    steps = {s.attributes.get("retrain.step") for s in mine}
    assert {"submit", "check", "evaluate", "promote"} <= steps


def test_each_step_span_is_a_child_of_the_step_that_sent_its_message(traced):
    run, spans, _, _ = traced
    mine = run_spans(spans, run)
    ids = {s.context.span_id for s in mine}
    roots = [s for s in mine if s.parent is None or s.parent.span_id not in ids]
    assert [s.name for s in roots] == ["retrain.run.start"]


def test_step_spans_carry_model_run_step_job_and_outcome(traced):
    run, spans, _, _ = traced
    promote = next(s for s in run_spans(spans, run) if s.attributes.get("retrain.step") == "promote")
    assert promote.attributes["retrain.model"] == "census" and promote.attributes["retrain.job_id"] == run.job_id
    assert promote.attributes["retrain.outcome"] == "promoted"
    submit = next(s for s in run_spans(spans, run) if s.attributes.get("retrain.step") == "submit")
    assert submit.attributes["retrain.outcome"] == "running"


def test_the_run_view_shows_its_trace_id(traced):
    run, _, _, world = traced
    view = api.handle(world.ctx, api.get_run, api.ApiRequest("GET", {"model": "census", "run": run.run_id}))
    assert view.body["trace_id"] == run.trace_id


def points(data, name):
    found = []
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                if metric.name == name:
                    found += list(metric.data.data_points)
    return found


@pytest.mark.parametrize("name, attributes", [
    ("retrain.runs", {"retrain.outcome": "promoted"}),
    ("retrain.step.duration", {"retrain.step": "evaluate"}),
    ("retrain.job.duration", {"retrain.outcome": "finished"}),
    ("retrain.data_to_promotion", {"retrain.model": "census"}),
    ("retrain.deliveries", {"retrain.outcome": "delivered", "retrain.sink": "webhook"}),
])
def test_the_chain_records_its_metrics(traced, name, attributes):
    _, _, data, _ = traced
    assert any(all(p.attributes.get(k) == v for k, v in attributes.items()) for p in points(data, name)), name


def test_transient_retries_are_counted():
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    counter = provider.get_meter("retrain").create_counter("retrain.transient_retries")
    telemetry.TRANSIENT_RETRIES, saved = counter, telemetry.TRANSIENT_RETRIES
    try:
        telemetry.transient_retry("census", "check")
    finally:
        telemetry.TRANSIENT_RETRIES = saved
    assert points(reader.get_metrics_data(), "retrain.transient_retries")[0].value == 1


def test_nothing_is_configured_without_a_destination():
    assert telemetry.configure({}) is False


def test_the_run_page_links_its_trace_when_a_template_is_set(traced):
    from retrain.web import dashboard
    run, _, _, world = traced
    page = f"models/{run.model}/runs/{run.run_id}"
    plain = dashboard.handle(world.ctx, dashboard.WebRequest("GET", page)).body.decode()
    assert run.trace_id in plain and "traces.example.com" not in plain
    world.ctx.env = {**world.ctx.env, "RETRAIN_TRACE_URL_TEMPLATE": "https://traces.example.com/trace/{trace_id}"}
    linked = dashboard.handle(world.ctx, dashboard.WebRequest("GET", page)).body.decode()
    assert f'href="https://traces.example.com/trace/{run.trace_id}"' in linked
