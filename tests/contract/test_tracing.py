"""One order placed through the gateway is one W3C trace across all four services: as spans
when they are recorded, and as the caller's `traceparent` carried unchanged when not."""

import json
import logging

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from veloz.telemetry.tracing import record_spans

TRACE_ID, CALLER_SPAN = "ab" * 16, "cd" * 8
TRACEPARENT = f"00-{TRACE_ID}-{CALLER_SPAN}-01"
SERVICES = {"api-gateway", "pedidos-service", "estoque-service", "pagamentos-service"}


@pytest.fixture(scope="module")
def exporter():
    """The SDK with an in-memory exporter, as OTEL_EXPORTER_OTLP_ENDPOINT would switch on (a
    process sets its tracer provider once; spans are recorded only while a test asks)."""
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    trace.set_tracer_provider(provider)
    return memory


@pytest.fixture
def place_order(exporter, gateway, bearer, capsys, caplog):
    """Place one order through the gateway with our `traceparent`, recording spans or not:
    returns the finished spans and the JSON log lines."""
    caplog.set_level(logging.INFO)  # another test's app may have set the process to WARNING
    admin = bearer("admin")
    client = gateway.test_client()
    item = client.post("/items", headers=admin,
                       json={"name": "Rastreio", "quantity": 5, "price": 12.5}).json

    def place(recording: bool):
        capsys.readouterr()
        exporter.clear()
        record_spans(recording)
        try:
            answer = client.post("/orders", headers={**admin, "traceparent": TRACEPARENT},
                                 json={"customer": "Ana",
                                       "items": [{"item_id": item["id"], "quantity": 1}]})
        finally:
            record_spans(False)
        assert answer.status_code == 201, answer.json
        lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()
                 if line.startswith("{")]
        return exporter.get_finished_spans(), lines

    return place


def test_an_order_through_the_gateway_is_one_trace_across_every_service(place_order):
    finished, _logs = place_order(recording=True)
    servers = [span for span in finished if span.kind is SpanKind.SERVER]

    assert {span.context.trace_id for span in finished} == {int(TRACE_ID, 16)}
    assert {span.instrumentation_scope.name for span in servers} == SERVICES
    assert {span.name for span in servers} >= {"POST /orders", "POST /reservations",
                                              "POST /payments",
                                              "POST /reservations/<int:reservation_id>/commit"}


def test_each_hop_is_the_child_of_its_callers_client_span(place_order):
    finished, _logs = place_order(recording=True)
    by_id = {span.context.span_id: span for span in finished}
    entry = next(span for span in finished if span.instrumentation_scope.name == "api-gateway"
                 and span.kind is SpanKind.SERVER)
    inner = [span for span in finished
             if span.kind is SpanKind.SERVER and span is not entry]

    assert entry.parent.span_id == int(CALLER_SPAN, 16)
    assert inner
    for span in inner:
        caller = by_id[span.parent.span_id]
        assert caller.kind is SpanKind.CLIENT, span.name
        assert caller.context.trace_id == span.context.trace_id


@pytest.mark.parametrize("recording", [True, False], ids=["spans recorded", "tracing off"])
def test_every_services_log_lines_carry_the_trace_id(place_order, recording):
    finished, lines = place_order(recording)
    access = [line for line in lines if line.get("msg") == "request"]
    routes = sorted(line["route"] for line in access)

    # In one process the lines cannot tell the services apart by name; their routes can:
    # POST /orders at the gateway and at pedidos, then estoque and pagamentos.
    assert routes == ["/orders", "/orders", "/payments", "/reservations",
                      "/reservations/<int:reservation_id>/commit"]
    assert {line["trace_id"] for line in access} == {TRACE_ID}
    assert bool(finished) is recording
