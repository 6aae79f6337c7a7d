"""The proxied call without Flask: what the gateway does for almost every request it serves,
for a fraction of what Flask's request handling costs around it.

A proxied read costs the gateway's features (auth, rate limit, request id, metrics, access
line, breaker, header filtering) a few tens of microseconds; Flask's request context, routing,
hook loops and Response objects cost more than that again (bench/README.md, "round two: the
gateway"). So `ProxyFastPath` wraps the Flask app's WSGI callable and serves the ordinary
proxied call itself, with the same pieces the Flask routes use (gateway.auth, gateway.ratelimit,
gateway.proxy, veloz.web's request id, problem documents and request records), in the same
order as the Flask hooks, so its answers, headers, metrics and log lines are the same.

Ordinary means: a method the proxy routes take, a path under one of ROUTES with no empty,
`.` or `..` segment, no body, not on the metrics listener, and no span being recorded. Every
other request, and every request while tracing records spans, goes to Flask unchanged, which
answers it as it always has (404 and 405 problems, 413, bodies, the gateway's own routes).
"""

import time
from collections.abc import Callable, Iterable

from werkzeug.http import remove_entity_headers
from werkzeug.urls import iri_to_uri
from werkzeug.wrappers import Response

from gateway import telemetry
from gateway.auth import TokenAuthority, check_access, identify
from gateway.backends import ROUTES, Backend
from gateway.proxy import METHODS, Incoming, clean_path, proxied_template, relay
from gateway.ratelimit import Budget, CallerBudgets, budget_headers, too_many
from veloz.core.codec import json_bytes
from veloz.core.errors import Problem
from veloz.run.server_settings import DrainWatch, metrics_port
from veloz.telemetry import metrics, tracing
from veloz.telemetry.logs import request_id_var
from veloz.web.app import REQUEST_ID_HEADER, arrival_port, request_id_from
from veloz.web.problems import PROBLEM_MEDIA_TYPE, problem_document, unexpected_problem
from veloz.web.request_metrics import record_answer

StartResponse = Callable[..., object]
WsgiApp = Callable[[dict, StartResponse], Iterable[bytes]]
Headers = list[tuple[str, str]]
# What Flask's Response gives an answer that names no type of its own.
DEFAULT_CONTENT_TYPE = "text/html; charset=utf-8"
_METHODS = frozenset(METHODS)


class ProxyFastPath:
    """WSGI middleware around the gateway's Flask app (see the module's docstring)."""

    def __init__(self, flask_wsgi: WsgiApp, *, service: str, backends: dict[str, Backend],
                 authority: TokenAuthority, budgets: CallerBudgets):
        self.flask_wsgi, self.service = flask_wsgi, service
        self.backends = {collection: backends[name] for collection, name in ROUTES.items()}
        self.authority, self.budgets = authority, budgets
        self.metrics_port = metrics_port()
        self.in_flight = metrics.REQUESTS_IN_FLIGHT.labels(service)
        self.told_to_stop = DrainWatch()
        self._status_lines: dict[int, str] = {}

    def __call__(self, environ: dict, start_response: StartResponse) -> Iterable[bytes]:
        collection = self.ordinary(environ)
        if collection is None:
            return self.flask_wsgi(environ, start_response)
        return self.serve(environ, start_response, collection)

    def ordinary(self, environ: dict) -> str | None:
        """The collection of an ordinary proxied call (see the module's docstring), else None."""
        path: str = environ.get("PATH_INFO") or ""
        collection = path[1:].partition("/")[0]
        if (collection not in self.backends or not path.startswith("/")
                or environ.get("REQUEST_METHOD") not in _METHODS
                or environ.get("CONTENT_LENGTH", "0") not in ("", "0")
                or "HTTP_TRANSFER_ENCODING" in environ or tracing.recording()
                or not clean_path(path)):
            return None
        if self.metrics_port is not None and arrival_port(environ) == self.metrics_port:
            return None
        return collection

    def serve(self, environ: dict, start_response: StartResponse,
              collection: str) -> Iterable[bytes]:
        """The Flask hooks' work in their order: the request id, the in-flight count, the
        caller's traceparent, the budget, then the call; on the answer the budget headers,
        the rejection count, Connection: close when draining, the RED metrics and access
        line, the request id."""
        started = time.perf_counter()
        method: str = environ["REQUEST_METHOD"]
        path: str = environ["PATH_INFO"]
        if not path.isascii():  # latin-1 text of the request's bytes, as request.path decodes
            path = path.encode("latin-1").decode("utf-8", "replace")
        request_id = request_id_from(environ.get("HTTP_X_REQUEST_ID"))
        request_id_var.set(request_id)
        self.in_flight.inc()
        traceparent = tracing.keep_incoming(environ.get("HTTP_TRACEPARENT", ""))
        try:
            status, answer, body, relayed, budget = self.answer(environ, method, path,
                                                                collection)
            added = budget_headers(budget) if budget is not None else []
            if not relayed:
                telemetry.record_gateway_rejection(status)
            if self.told_to_stop():
                added.append(("Connection", "close"))
            record_answer(self.service, method, proxied_template(collection, path[2 + len(
                collection):]), path, status, time.perf_counter() - started)
            added.append((REQUEST_ID_HEADER, request_id))
            _set_all(answer, added)
            start_response(self.status_line(status), _finished(status, answer))
            return () if method == "HEAD" or _bodiless(status) else (body,)
        finally:
            self.in_flight.dec()
            tracing.forget_incoming(traceparent)
            request_id_var.set(None)

    def answer(self, environ: dict, method: str, path: str,
               collection: str) -> tuple[int, Headers, bytes, bool, Budget | None]:
        """(status, headers, body, relayed, budget) of the call: the backend's answer, or
        the problem the gateway answers instead (as veloz.web.problems writes it)."""
        budget = None
        try:
            authorization = environ.get("HTTP_AUTHORIZATION")
            identity, token_error = identify(self.authority, authorization)
            spent = self.budgets.charge(path, identity, environ.get("REMOTE_ADDR"))
            if spent is not None:
                allowed, budget = spent
                if not allowed:
                    raise too_many(budget)
            identity = check_access(method, path, identity, token_error, authorization)
            incoming = Incoming(header_list(environ), environ.get("HTTP_CONNECTION"),
                                environ.get("HTTP_X_FORWARDED_FOR"), environ.get("REMOTE_ADDR"))
            upstream, answer = relay(self.backends[collection], method, path,
                                     environ.get("QUERY_STRING", "").encode("latin-1"),
                                     incoming, identity, body=None,
                                     keyed="HTTP_IDEMPOTENCY_KEY" in environ)
        except Problem as problem:
            return (*_problem_answer(problem, path), False, budget)
        except Exception:  # noqa: BLE001 - as Flask's handler of the unexpected: 500, logged
            return (*_problem_answer(unexpected_problem(), path), False, budget)
        body = upstream.data
        if not any(name.lower() == "content-type" for name, _ in answer):
            answer.append(("Content-Type", DEFAULT_CONTENT_TYPE))
        answer.append(("Content-Length", str(len(body))))
        return upstream.status, answer, body, True, budget

    def status_line(self, status: int) -> str:
        """`200 OK`, `404 NOT FOUND`: werkzeug's spelling, as Flask's answers have it."""
        line = self._status_lines.get(status)
        if line is None:
            line = self._status_lines[status] = Response(status=status).status
        return line


def header_list(environ: dict) -> Headers:
    """The request's headers as werkzeug's EnvironHeaders lists them (`HTTP_USER_AGENT` is
    `User-Agent`; Content-Type and Content-Length from their own keys), each name converted
    once per process for the first MAX_HEADER_NAMES names seen."""
    found = []
    for key, value in environ.items():
        if key.startswith("HTTP_"):
            if key in _NOT_HEADERS:
                continue
            name = _header_names.get(key)
            if name is None:
                name = key[5:].replace("_", "-").title()
                if len(_header_names) < MAX_HEADER_NAMES:
                    _header_names[key] = name
            found.append((name, value))
        elif key in _CONTENT_KEYS and value:
            found.append((_CONTENT_KEYS[key], value))
    return found


MAX_HEADER_NAMES = 512
_header_names: dict[str, str] = {}
_NOT_HEADERS = frozenset({"HTTP_CONTENT_TYPE", "HTTP_CONTENT_LENGTH"})
_CONTENT_KEYS = {"CONTENT_TYPE": "Content-Type", "CONTENT_LENGTH": "Content-Length"}


def _problem_answer(problem: Problem, path: str) -> tuple[int, Headers, bytes]:
    """veloz.web.problems.problem_response's answer: the document as the app's JSON provider
    (veloz.web.codec) writes it, the problem media type, the problem's own headers."""
    body = json_bytes(problem_document(problem, path))
    answer = [("Content-Type", PROBLEM_MEDIA_TYPE), ("Content-Length", str(len(body)))]
    _set_all(answer, list(problem.headers.items()))
    return problem.status, answer, body


def _set_all(headers: Headers, values: Headers) -> None:
    """`Headers.set` for each of `values`: the first header of the name takes the value in
    place, any other of that name goes; a name not there yet is added at the end."""
    present = {name.lower() for name, _ in headers}
    for name, value in values:
        lowered = name.lower()
        if lowered not in present:
            headers.append((name, value))
            present.add(lowered)
            continue
        first = next(i for i, (other, _) in enumerate(headers) if other.lower() == lowered)
        headers[first] = (name, value)
        headers[first + 1:] = [header for header in headers[first + 1:]
                               if header[0].lower() != lowered]


def _bodiless(status: int) -> bool:
    return 100 <= status < 200 or status in (204, 304)


def _finished(status: int, headers: Headers) -> Headers:
    """What werkzeug's Response.get_wsgi_headers makes of the headers for the status: no
    Content-Length with a 1xx or 204, no entity headers with a 304, URIs in Location."""
    if 100 <= status < 200 or status == 204:
        headers = [header for header in headers if header[0].lower() != "content-length"]
    elif status == 304:
        remove_entity_headers(headers)
    return [(name, iri_to_uri(value) if name.lower() in ("location", "content-location")
             else value) for name, value in headers]
