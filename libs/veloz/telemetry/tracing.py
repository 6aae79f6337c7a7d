"""W3C Trace Context on every hop, and OpenTelemetry traces when an endpoint is configured.

Off (no OTEL_EXPORTER_OTLP_ENDPOINT, the default): nothing of OpenTelemetry runs. A valid
incoming `traceparent` is kept as it came and sent on, unchanged, with every call the request
makes, and its trace id lands in every log line: a regular expression and a context variable
per hop, so switching tracing off really costs nothing.

On: each process exports, in batches over OTLP/HTTP, a SERVER span per request (a child of
the incoming `traceparent`) and a CLIENT span per call to another service, whose context the
next hop receives. The other OTEL_* variables configure the exporter as the SDK defines them.

No web framework here: veloz.web.tracing hooks these pieces into a Flask app's requests.
"""

import contextvars
import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from opentelemetry import context, propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode

ENDPOINT_VARIABLE = "OTEL_EXPORTER_OTLP_ENDPOINT"
PROPAGATED_HEADERS = frozenset({"traceparent", "tracestate"})
_PROPAGATED_LENGTHS = frozenset(len(name) for name in PROPAGATED_HEADERS)
_TRACEPARENT = re.compile(r"[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}")
_incoming: contextvars.ContextVar[str | None] = contextvars.ContextVar("traceparent",
                                                                      default=None)
_exporting = False  # this process exports spans (configure_tracing)

RecordStatus = Callable[[int], None]


def configure_tracing(service: str) -> bool:
    """Export this process's spans when an endpoint is set (once per process); True if on."""
    global _exporting
    if not os.environ.get(ENDPOINT_VARIABLE):
        return False
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    if not isinstance(trace.get_tracer_provider(), TracerProvider):
        provider = TracerProvider(resource=Resource.create({"service.name": service}))
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        trace.set_tracer_provider(provider)
    _exporting = True
    return True


def record_spans(on: bool = True) -> None:
    """Record spans with whatever tracer provider is set (tests set one of the SDK's)."""
    global _exporting
    _exporting = on


def recording() -> bool:
    """Spans are recorded in this process (configure_tracing, record_spans)."""
    return _exporting


def keep_incoming(traceparent: str) -> contextvars.Token:
    """Keep the caller's `traceparent` for the request being served, if it is a valid one; the
    calls it makes send it on, and its log lines carry its trace id (forget_incoming undoes)."""
    return _incoming.set(traceparent if traceparent and _TRACEPARENT.fullmatch(traceparent)
                         else None)


def forget_incoming(token: contextvars.Token) -> None:
    _incoming.reset(token)


def open_server_span(tracer: trace.Tracer, name: str, method: str,
                     headers: Any) -> tuple[trace.Span, contextvars.Token]:
    """A SERVER span for a request, child of the `traceparent` in its `headers` (any mapping
    of header names, Flask's `request.headers` too), made the current span; close_server_span
    ends it with the token this returns."""
    caller = propagate.extract(headers)
    span = tracer.start_span(name, context=caller, kind=SpanKind.SERVER,
                             attributes={"http.request.method": method})
    return span, context.attach(trace.set_span_in_context(span, caller))


def close_server_span(span: trace.Span, token: contextvars.Token) -> None:
    span.end()
    context.detach(token)


@contextmanager
def outgoing_call(method: str, target: str, headers: dict[str, str]) -> Iterator[RecordStatus]:
    """Around one call to the service `target`: its `traceparent` written into `headers`
    (replacing any copy of the caller's); yields a function that records the answer's status."""
    if not _exporting:
        pass_on_incoming(headers)
        yield _ignore_status
        return
    _drop_trace_headers(headers)
    with trace.get_tracer("veloz.net.client").start_as_current_span(
            f"{method} {target}", kind=SpanKind.CLIENT,
            attributes={"http.request.method": method, "peer.service": target}) as span:
        propagate.inject(headers)
        yield lambda status: record_status(span, status)


def pass_on_incoming(headers: dict[str, str]) -> None:
    """What outgoing_call does while no span is recorded, without its context manager: the
    caller's `traceparent`, kept as it came, in place of any trace header in `headers`."""
    _drop_trace_headers(headers)
    incoming = _incoming.get()
    if incoming is not None:
        headers["traceparent"] = incoming


def _drop_trace_headers(headers: dict[str, str]) -> None:
    # Only a name of the length of one is lowercased: this runs on every call out.
    for name in [name for name in headers
                 if len(name) in _PROPAGATED_LENGTHS and name.lower() in PROPAGATED_HEADERS]:
        del headers[name]


def current_trace_id() -> str | None:
    """The trace id of the request in force, as 32 hex digits, for log lines."""
    if _exporting:
        span_context = trace.get_current_span().get_span_context()
        if span_context.is_valid:
            return format(span_context.trace_id, "032x")
    incoming = _incoming.get()
    return incoming[3:35] if incoming is not None else None


def record_status(span: trace.Span, status: int) -> None:
    """The answer's status on a span; a 5xx marks it failed."""
    span.set_attribute("http.response.status_code", status)
    if status >= 500:
        span.set_status(Status(StatusCode.ERROR))


def _ignore_status(_status: int) -> None:
    return None
