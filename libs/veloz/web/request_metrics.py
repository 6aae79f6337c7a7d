"""What every service measures of each request it answers: the RED metrics per route template,
the requests in flight and one access log line. The Flask side of veloz.telemetry.metrics,
which knows no Flask."""

import logging
import time

from flask import Flask, Request, Response, current_app

from veloz.telemetry import metrics
from veloz.telemetry.logs import log_info
from veloz.web.context import RequestState, current_request
from veloz.web.steps import add_request_step

UNMATCHED_ROUTE = "<unmatched>"
# Not in the RED metrics: the probes and the scrape itself.
UNMEASURED_PATHS = frozenset({"/metrics", "/livez", "/readyz"})
# Neither in flight nor in the access log: those, and /health, which monitors poll all day.
QUIET_PATHS = UNMEASURED_PATHS | {"/health"}
access_log = logging.getLogger("veloz.access")


def measure_requests(app: Flask) -> None:
    """Time every request from its first hook; count it in flight until its teardown unless
    it is quiet; on its answer, record it in the RED metrics and log it."""
    service = app.config["SERVICE_NAME"]
    in_flight = metrics.REQUESTS_IN_FLIGHT.labels(service)

    def start_measuring(served: Request, state: RequestState) -> None:
        state.started = time.perf_counter()
        if served.path not in QUIET_PATHS:
            in_flight.inc()
            state.in_flight = True

    def measure(served: Request, state: RequestState, response: Response) -> None:
        if served.path not in UNMEASURED_PATHS:
            _record(service, served, state, response.status_code)

    def stop_measuring(state: RequestState, error: BaseException | None) -> None:
        if error is not None:
            _record_unhandled(service, current_request())
        if state.pop("in_flight", False):
            in_flight.dec()

    add_request_step(app, before=start_measuring, after=measure, teardown=stop_measuring)


def _record_unhandled(service: str, served: Request) -> None:
    if served.path not in UNMEASURED_PATHS:
        metrics.record_unhandled(service, served.method)


def _record(service: str, served: Request, state: RequestState, status: int) -> None:
    """The RED metrics of the request being answered, and its access log line."""
    seconds = time.perf_counter() - state.get("started", time.perf_counter())
    template = route(served)
    metrics.record_request(service, served.method, template, status, seconds)
    if served.path not in QUIET_PATHS:
        log_info(access_log, "request", {
            "method": served.method, "route": template, "path": served.path,
            "status": status, "duration_ms": round(seconds * 1000, 2)})


def route(request: Request) -> str:
    """The route template of a request (never its raw path): the label `route` of the RED
    metrics, the `route` field of the access log and the name of the request's span. An app
    may name its own templates with `app.extensions["route_namer"]` (the gateway does, for
    its catch-all proxy routes)."""
    named = request.environ.get("veloz.route")  # the metrics, the log line and the span ask
    if named is None:
        namer = current_app.extensions.get("route_namer")
        named = (namer(request) if namer is not None else
                 request.url_rule.rule if request.url_rule is not None else UNMATCHED_ROUTE)
        request.environ["veloz.route"] = named
    return named
