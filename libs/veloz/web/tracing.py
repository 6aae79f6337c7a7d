"""Tracing each request a Flask app serves: the caller's `traceparent` kept while it runs and,
when spans are recorded, a SERVER span around it (veloz.telemetry.tracing holds the rest)."""

from collections.abc import Callable

from flask import Flask, Request, Response
from opentelemetry import trace

from veloz.telemetry import tracing
from veloz.web.context import RequestState
from veloz.web.steps import add_request_step


def trace_requests(app: Flask, service: str, route_of: Callable) -> None:
    """Keep the caller's `traceparent` for the request; when spans are recorded, a SERVER
    span around the request, child of that `traceparent`."""
    tracer = trace.get_tracer(service)

    def open_span(served: Request, state: RequestState) -> None:
        state.traceparent_token = tracing.keep_incoming(
            served.environ.get("HTTP_TRACEPARENT", ""))  # not through `headers`: a third
        if tracing.recording():
            state.trace_span, state.trace_token = tracing.open_server_span(
                tracer, f"{served.method} {route_of(served)}", served.method, served.headers)

    def record_status(served: Request, state: RequestState, response: Response) -> None:
        span = state.get("trace_span")
        if span is not None:
            tracing.record_status(span, response.status_code)

    def close_span(state: RequestState, error: BaseException | None) -> None:
        span = state.pop("trace_span", None)
        if span is not None:
            tracing.close_server_span(span, state.pop("trace_token"))
        token = state.pop("traceparent_token", None)
        if token is not None:
            tracing.forget_incoming(token)

    add_request_step(app, before=open_span, after=record_status, teardown=close_span)
