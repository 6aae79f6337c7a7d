"""Tracing each request a Flask app serves: the caller's `traceparent` kept while it runs and,
when spans are recorded, a SERVER span around it (veloz.telemetry.tracing holds the rest)."""

from collections.abc import Callable

from flask import Flask, g, request
from opentelemetry import trace

from veloz.telemetry import tracing


def trace_requests(app: Flask, service: str, route_of: Callable) -> None:
    """Keep the caller's `traceparent` for the request; when spans are recorded, a SERVER
    span around the request, child of that `traceparent`."""
    tracer = trace.get_tracer(service)

    @app.before_request
    def open_span():
        g.traceparent_token = tracing.keep_incoming(request.headers.get("traceparent", ""))
        if tracing.recording():
            g.trace_span, g.trace_token = tracing.open_server_span(
                tracer, f"{request.method} {route_of(request)}", request.method,
                request.headers)

    @app.after_request
    def record_status(response):
        span = g.get("trace_span")
        if span is not None:
            tracing.record_status(span, response.status_code)
        return response

    @app.teardown_request
    def close_span(_error):
        span = g.pop("trace_span", None)
        if span is not None:
            tracing.close_server_span(span, g.pop("trace_token"))
        token = g.pop("traceparent_token", None)
        if token is not None:
            tracing.forget_incoming(token)
