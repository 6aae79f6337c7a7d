"""The Flask app every service is built on: JSON, request ids, logs, errors, health, docs."""

import os
import posixpath
import re
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from urllib.parse import unquote

from flask import Blueprint, Flask, Request, Response, request
from flask.sessions import NullSession, SecureCookieSessionInterface
from werkzeug import exceptions as werkzeug_exceptions
from werkzeug.routing import IntegerConverter, Map, MapAdapter

from veloz.core.fields import MAX_ID
from veloz.data.db import Database
from veloz.run.server_settings import DrainWatch, draining, metrics_port, request_slots
from veloz.telemetry import metrics
from veloz.telemetry.logs import configure_logging, request_id_var
from veloz.telemetry.tracing import configure_tracing
from veloz.web.api import OpenApiDocument, docs_blueprint
from veloz.web.codec import DecimalJSONProvider
from veloz.web.context import RequestState, environ_key
from veloz.web.problems import register_problem_handlers
from veloz.web.request_metrics import measure_requests, route
from veloz.web.steps import add_answer_headers, add_request_step
from veloz.web.tracing import trace_requests

REQUEST_ID_HEADER = "X-Request-ID"
_REQUEST_ID_KEY = environ_key(REQUEST_ID_HEADER)
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_SLASHES = re.compile(r"/{2,}")
# RFC 9562 variant: the top two bits of the 17th hex digit are 10.
_VARIANT_DIGIT = {digit: "89ab"[int(digit, 16) & 3] for digit in "0123456789abcdef"}


def create_service_app(*, name: str, version: str, log_level: str, max_body_bytes: int,
                       blueprints: Iterable[Blueprint], readiness: Callable[[], dict[str, bool]],
                       description: str = "", health: Blueprint | None = None,
                       document: OpenApiDocument | None = None) -> Flask:
    """Assemble a service. `readiness` returns {dependency: reachable} for /health and /readyz;
    `health` replaces the standard health routes, `document` the OpenAPI document (gateway)."""
    configure_logging(name, log_level)
    app = ServiceFlask(name, root_path=str(Path(__file__).parent))  # no static or templates
    app.config["PROVIDE_AUTOMATIC_OPTIONS"] = False
    app.json = DecimalJSONProvider(app)
    app.url_map.converters["int"] = DatabaseId
    app.config.update(MAX_CONTENT_LENGTH=max_body_bytes, SERVICE_NAME=name)
    _track_requests(app)
    measure_requests(app)
    _refuse_empty_segments(app)
    _close_connections_when_draining(app)
    configure_tracing(name)
    trace_requests(app, name, route)
    register_problem_handlers(app)
    _expose_metrics(app, name)
    app.register_blueprint(health or health_blueprint(name, readiness))
    for blueprint in blueprints:
        app.register_blueprint(blueprint)
    app.register_blueprint(docs_blueprint(document or OpenApiDocument(name, version, description)))
    return app


class ExactPathMap(Map):
    """Routing that never redirects: werkzeug answers `//items//1` (merge_slashes) and a rule's
    path without its trailing slash (strict_slashes) with a 308 HTML page whose `Location` is
    built from the request's Host. Here a path names a route exactly or is a 404 problem, so
    no answer points a client anywhere else and every error is problem+json."""

    def __init__(self, *args, **kwargs):
        kwargs.update(merge_slashes=False, strict_slashes=True, redirect_defaults=False)
        super().__init__(*args, **kwargs)


class ServiceFlask(Flask):
    """Flask, deciding once per view or hook (not on every call) whether it is a coroutine:
    about ten hooks run per request, and the check inspects each one's code object.

    No route answers OPTIONS by itself: Flask's automatic answer is a 200 text/html with an
    `Allow` naming every method of the rule (the gateway's proxy rule takes them all). No
    client needs OPTIONS (no CORS), so it is a wrong method like any other: a 405 problem
    whose `Allow` lists the methods the path's routes really take."""

    url_map_class = ExactPathMap

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._callables: dict[Callable, Callable] = {}
        self.session_interface = NoSessions()

    def ensure_sync(self, func: Callable) -> Callable:
        synced = self._callables.get(func)
        if synced is None:
            synced = self._callables[func] = super().ensure_sync(func)
        return synced

    def create_url_adapter(self, request: Request | None) -> MapAdapter | None:
        """A request's routing, from what the request object already read of its environ.
        Flask's way (`request.host`, then `Map.bind_to_environ`) parses the host again and
        works out its subdomain and IDNA form, which only host matching and built URLs use:
        about 50k of a one-route request's 408k instructions (bench/README.md). Hosts matter
        to none of these apps: no SERVER_NAME, no TRUSTED_HOSTS, no host or subdomain
        matching, and no URL is built from a request (ExactPathMap never redirects), so the
        Host header is handed on as it came: one Flask would refuse as a bad IDNA name (400)
        is answered like any other. With any of those configured, Flask's own way is
        taken."""
        if request is None or not self._routes_by_path_alone():
            return super().create_url_adapter(request)
        host = request.environ.get("HTTP_HOST") or request.environ.get("SERVER_NAME", "")
        return MapAdapter(self.url_map, host, request.root_path,
                          self.url_map.default_subdomain, request.scheme, request.path,
                          request.method)

    def _routes_by_path_alone(self) -> bool:
        return (self.config["SERVER_NAME"] is None and self.config["TRUSTED_HOSTS"] is None
                and not self.url_map.host_matching and not self.subdomain_matching)


class NoSessions(SecureCookieSessionInterface):
    """No service keeps a session (none has a secret key): every request gets the same
    NullSession, which refuses any write, instead of a new one made per request."""

    _shared = NullSession()

    def make_null_session(self, app: Flask) -> NullSession:
        return self._shared


class DatabaseId(IntegerConverter):
    """`<int:...>` in every route: an id beyond BIGINT names no row, so it is a 404 for every
    method (not merely "no match", which werkzeug would turn into a 405 listing the path's
    other methods), and never reaches the database as a 500."""

    def to_python(self, value: str) -> int:
        number = int(value)
        if number > MAX_ID:
            raise werkzeug_exceptions.NotFound(f"No row has the id {value}.")
        return number


def create_database_app(*, name: str, version: str, description: str, settings,
                        blueprints: Iterable[Blueprint],
                        state: Sequence[metrics.StateGauge] = ()) -> Flask:
    """A service that owns a database: its app, with the Database (made lazily in each worker)
    in `app.extensions["database"]` and the settings in `app.extensions["settings"]`. `state`:
    the service's gauges read from that database at each scrape (its telemetry module's)."""
    db = Database.for_service(name, settings)
    app = create_service_app(
        name=name, version=version, description=description, log_level=settings.log_level,
        max_body_bytes=settings.max_body_bytes, blueprints=blueprints,
        readiness=lambda: {"database": db.is_reachable()})
    app.extensions.update(database=db, settings=settings)
    app.extensions["metrics_collectors"].append(metrics.DatabaseStateCollector(name, db, state))
    _one_connection_per_request(app, db)
    return app


def _one_connection_per_request(app: Flask, db: Database) -> None:
    """A request's `statements()` and `atomic()` blocks run on one pooled connection, taken at
    its first block and given back once Flask has answered it (veloz.data.db.KeptConnection):
    pedidos' saga and pagamentos' charge lend three times each. Around Flask's WSGI app rather
    than in its request hooks, so every request is in a scope of its own, whatever hook
    answered it first, for half the instructions of a pair of hooks (no hook calls, no `g`)."""
    answer = app.wsgi_app

    def keeping_one_connection(environ, start_response):
        kept = db.keep_one_connection()
        try:
            return answer(environ, start_response)
        finally:
            kept.close()

    app.wsgi_app = keeping_one_connection  # type: ignore[method-assign]


def incoming_request_id(environ: dict) -> str:
    """The caller's X-Request-ID when it is a sane one, else a new one (read from the WSGI
    environ: a third of the instructions of going through `request.headers`)."""
    candidate = environ.get(_REQUEST_ID_KEY)
    return candidate if candidate and _VALID_REQUEST_ID.match(candidate) else new_request_id()


def new_request_id() -> str:
    """A random UUID, version 4, as `str(uuid.uuid4())` writes one, for a third of its cost
    (one per request): the 16 random bytes' hex digits with the version digit and the
    variant's two bits put in place."""
    digits = os.urandom(16).hex()
    return (f"{digits[:8]}-{digits[8:12]}-4{digits[13:16]}-{_VARIANT_DIGIT[digits[16]]}"
            f"{digits[17:20]}-{digits[20:]}")


def _expose_metrics(app: Flask, name: str) -> None:
    """GET /metrics: every server worker's RED metrics (recorded by the request hooks) and
    the collectors computed at scrape time, added up."""
    app.extensions["metrics_collectors"] = [
        metrics.ProcessGroupCollector(name, metrics.serving_root_pid)]
    metrics.WORKER_THREADS.labels(name).set(request_slots())

    @app.get("/metrics")
    def prometheus_metrics():
        body, content_type = metrics.exposition(app.extensions["metrics_collectors"],
                                                request.headers.get("Accept"))
        return Response(body, content_type=content_type)

    port = metrics_port()
    if port is not None:
        serve_metrics_only_on(app, port)


def serve_metrics_only_on(app: Flask, port: int) -> None:
    """METRICS_BIND set (the gateway, veloz.run.gunicorn_conf): /metrics is answered only on a
    connection that arrived on that port, and that port answers nothing else. Everywhere
    else a path meaning /metrics is a 404 problem like any unknown path, before routing (so
    `//metrics` is not redirected either): request counts by route and status are for
    Prometheus, not for whoever reaches the public port."""

    def metrics_on_their_own_port(served: Request, state: RequestState) -> None:
        if (arrival_port(served.environ) == port) != names_metrics(served.path):
            raise werkzeug_exceptions.NotFound()

    add_request_step(app, before=metrics_on_their_own_port)


def arrival_port(environ: dict) -> int | None:
    """The local port of the connection this request came on, from the socket gunicorn hands
    the app (`gunicorn.socket`): what the client wrote (Host, X-Forwarded-*, and SERVER_NAME
    where derived from Host) cannot change it. None without a TCP socket (a test client)."""
    sock = environ.get("gunicorn.socket")
    try:
        local = sock.getsockname() if sock is not None else None
    except OSError:
        return None
    return local[1] if isinstance(local, tuple) else None


def names_metrics(path: str) -> bool:
    """Does `path` mean /metrics in any spelling: any case, repeated slashes, dot segments,
    a trailing slash, or a percent-escape the server left (it decodes the path once)?"""
    if "%" not in path and "metrics" not in path.lower():
        return False
    folded = _SLASHES.sub("/", unquote(path).lower())
    return posixpath.normpath(folded) == "/metrics"


def _track_requests(app: Flask) -> None:
    """Per request: its id, answered in X-Request-ID and carried by every log line (what is
    measured of it: veloz.web.request_metrics)."""

    def start(served: Request, state: RequestState) -> None:
        request_id = state.request_id = incoming_request_id(served.environ)
        request_id_var.set(request_id)
        # The caller's id passed _VALID_REQUEST_ID; a new one is hex digits and dashes.
        add_answer_headers(served, (REQUEST_ID_HEADER, request_id))

    def forget(state: RequestState, error: BaseException | None) -> None:
        request_id_var.set(None)

    add_request_step(app, before=start, teardown=forget)


def _close_connections_when_draining(app: Flask) -> None:
    """Once this server is told to stop (DRAIN_FILE: a pod's preStop hook, or `make restart`
    before it stops the old server), every answer carries `Connection: close`. Keep-alive
    clients then let go of it by themselves, one answer at a time, instead of finding a pooled
    connection closed by the stopping server under a request they are just sending, which a
    POST could not safely send again."""
    told_to_stop = DrainWatch()

    def close_when_draining(served: Request, state: RequestState, response: Response) -> None:
        if told_to_stop():
            response.headers["Connection"] = "close"

    add_request_step(app, after=close_when_draining)


def _refuse_empty_segments(app: Flask) -> None:
    """`//items` is a 404 like `/items//1`: werkzeug strips leading slashes before matching
    (and `request.path` shows none), so without this one resource would answer at many
    spellings, each a path a rule meant for another could be written to match."""

    def exact_path(served: Request, state: RequestState) -> None:
        if "//" in served.environ.get("PATH_INFO", ""):
            raise werkzeug_exceptions.NotFound("No such path: it has an empty segment.")

    add_request_step(app, before=exact_path)


def health_blueprint(name: str, readiness: Callable[[], dict[str, bool]]) -> Blueprint:
    blueprint = Blueprint("health", __name__)

    @blueprint.get("/health")
    def health():
        checks = readiness()
        healthy = all(checks.values())
        body = {"status": "healthy" if healthy else "unhealthy", "service": name,
                "checks": {dep: "ok" if up else "unreachable" for dep, up in checks.items()}}
        return body, 200 if healthy else 503

    add_probes(blueprint, name, ready=lambda: all(readiness().values()))
    return blueprint


def add_probes(blueprint: Blueprint, name: str, ready: Callable[[], bool]) -> None:
    """/livez (the process answers) and /readyz (send it traffic: not while it drains, and
    only when `ready()`), the probes every service and the gateway give Kubernetes."""

    @blueprint.get("/livez")
    def livez():
        return {"status": "alive", "service": name}

    @blueprint.get("/readyz")
    def readyz():
        if draining():
            return {"status": "draining", "service": name}, 503
        if not ready():
            return {"status": "not ready", "service": name}, 503
        return {"status": "ready", "service": name}
