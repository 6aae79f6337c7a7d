"""Tracing each request a Flask app serves: the caller's `traceparent` kept while it runs and,
when spans are recorded, a SERVER span around it (veloz.telemetry.tracing holds the rest)."""

from collections.abc import Callable

from flask import Flask
from opentelemetry import trace

from veloz.telemetry import tracing
from veloz.web.context import current_request, request_state


def trace_requests(app: Flask, service: str, route_of: Callable) -> None:
    """Keep the caller's `traceparent` for the request; when spans are recorded, a SERVER
    span around the request, child of that `traceparent`."""
    tracer = trace.get_tracer(service)

    @app.before_request
    def open_span():
        served, state = current_request(), request_state()
        state.traceparent_token = tracing.keep_incoming(
            served.environ.get("HTTP_TRACEPARENT", ""))  # not through `headers`: a third
        if tracing.recording():
            state.trace_span, state.trace_token = tracing.open_server_span(
                tracer, f"{served.method} {route_of(served)}", served.method, served.headers)

    @app.after_request
    def record_status(response):
        span = request_state().get("trace_span")
        if span is not None:
            tracing.record_status(span, response.status_code)
        return response

    @app.teardown_request
    def close_span(_error):
        state = request_state()
        span = state.pop("trace_span", None)
        if span is not None:
            tracing.close_server_span(span, state.pop("trace_token"))
        token = state.pop("traceparent_token", None)
        if token is not None:
            tracing.forget_incoming(token)
