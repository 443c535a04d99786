"""`telemetry.configure`: the Azure Monitor distro once when a connection string is set, OTLP beside it when asked.

Each case runs in a fresh interpreter (providers are process-global, set once); the destinations are a
local receiver standing in for Application Insights' ingestion endpoint and an OTLP collector, so
what is checked is what reaches them. Statsbeat (the SDK's own usage reports to Microsoft) is off.
"""

from __future__ import annotations

import gzip
import importlib.metadata
import json
import os
import subprocess
import sys
import textwrap
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest


REPO = Path(__file__).resolve().parents[2]
SCRIPT = textwrap.dedent("""
    import json, logging, os, sys
    import azure.monitor.opentelemetry as distro
    calls = []
    original = distro.configure_azure_monitor
    distro.configure_azure_monitor = lambda **kw: (calls.append(sorted(kw)), original(**kw))[1]
    from opentelemetry import trace
    from retrain import telemetry
    first, second = telemetry.configure(os.environ), telemetry.configure(os.environ)
    with telemetry.run_span("retrain.step.check", model="census", run_id="r1", step="check"):
        logging.getLogger("retrain").warning("checked")
    trace.get_tracer_provider().force_flush()
    print(json.dumps({"first": first, "second": second, "distro_calls": calls}))
""")


def need_distro():
    try:  # not find_spec: azure.monitor.opentelemetry is also the exporter's namespace package
        importlib.metadata.version("azure-monitor-opentelemetry")
        return
    except importlib.metadata.PackageNotFoundError:
        message = "azure-monitor-opentelemetry is not installed: pip install -r requirements.txt"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def configure_in_a_fresh_process(**settings: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("APPLICATIONINSIGHTS_", "OTEL_"))}
    env.update(settings, APPLICATIONINSIGHTS_STATSBEAT_DISABLED_ALL="true", PYTHONPATH=str(REPO))
    done = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=120,
                          cwd=REPO)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


class Ingestion:
    """Application Insights' ingestion endpoint (`/v2.1/track`, which answers a JSON summary) and an OTLP collector."""

    def __init__(self):
        self.received: list[tuple[str, bytes]] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                if self.headers.get("content-encoding") == "gzip":
                    body = gzip.decompress(body)
                stub.received.append((self.path.split("?")[0], body))
                answer = json.dumps({"itemsReceived": 1, "itemsAccepted": 1, "errors": []}).encode() \
                    if self.path.endswith("/track") else b""
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"

    def paths(self) -> set[str]:
        return {path for path, _ in self.received}

    def tracked(self) -> list[dict]:
        return [item for path, body in self.received if path.endswith("/track") for item in json.loads(body)]


@pytest.fixture
def stub():
    ingestion = Ingestion()
    yield ingestion
    ingestion.server.shutdown()
    ingestion.server.server_close()


def connection_string(stub) -> str:
    return f"InstrumentationKey=00000000-0000-0000-0000-000000000000;IngestionEndpoint={stub.base}/"


def test_a_connection_string_configures_the_distro_once_and_spans_reach_application_insights(stub):
    need_distro()
    facts = configure_in_a_fresh_process(APPLICATIONINSIGHTS_CONNECTION_STRING=connection_string(stub))
    assert facts["first"] is True and facts["second"] is False and len(facts["distro_calls"]) == 1
    spans = [t for t in stub.tracked() if t["data"]["baseType"] == "RequestData"]
    assert [s["data"]["baseData"]["name"] for s in spans] == ["retrain.step.check"]
    assert spans[0]["data"]["baseData"]["properties"]["retrain.run_id"] == "r1"


def test_with_an_otlp_endpoint_too_spans_go_to_both(stub):
    need_distro()
    facts = configure_in_a_fresh_process(APPLICATIONINSIGHTS_CONNECTION_STRING=connection_string(stub),
                                         OTEL_EXPORTER_OTLP_ENDPOINT=stub.base)
    assert facts["first"] is True and len(facts["distro_calls"]) == 1
    assert "span_processors" in facts["distro_calls"][0]
    paths = stub.paths()
    assert "/v1/traces" in paths and any(p.endswith("/track") for p in paths)


def test_an_otlp_endpoint_alone_uses_no_distro(stub):
    need_distro()
    facts = configure_in_a_fresh_process(OTEL_EXPORTER_OTLP_ENDPOINT=stub.base)
    assert facts["first"] is True and facts["distro_calls"] == []
    assert "/v1/traces" in stub.paths() and not any(p.endswith("/track") for p in stub.paths())
