"""Gunicorn workers whose own error answers are problem+json, like every answer of the apps.

Gunicorn refuses some requests before any app sees them: a request line longer than 4094
bytes (414), more than 100 header fields or one over 8190 bytes (431), a malformed request
(400). Its stock answer is an HTML page; these workers answer the same status as an RFC 9457
problem with a fresh request id, so a client parses every error the same way.

The gateway runs ProblemGeventWorker: one greenlet per connection, so a client that sends
slowly holds a little memory instead of one of a handful of request threads, and deadlines
(EdgeSettings) bound how long it may. ProblemThreadWorker (gthread) is what the gateway ran
before; it stays for comparison
(GUNICORN_CMD_ARGS="-k veloz.run.gunicorn_workers.ProblemThreadWorker --threads 4").
"""

import errno
import io
import json
import socket
import uuid
from collections.abc import Mapping
from http import HTTPStatus

import gevent
from gunicorn import http, util
from gunicorn.glogging import Logger
from gunicorn.http import errors
from gunicorn.http.body import LengthReader
from gunicorn.workers.ggevent import GeventWorker
from gunicorn.workers.gthread import ThreadWorker

from veloz.run.server_settings import DrainWatch, EdgeSettings

# First match wins; a ParseException not listed is a malformed request.
_STATUS_OF = (
    ((errors.InvalidResponseHeader, errors.InvalidResponseHeaderName,
      errors.ConfigurationProblem), HTTPStatus.INTERNAL_SERVER_ERROR, "internal-error"),
    ((errors.LimitRequestLine,), HTTPStatus.REQUEST_URI_TOO_LONG, "uri-too-long"),
    ((errors.LimitRequestHeaders,), HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE,
     "header-fields-too-large"),
    ((errors.UnsupportedTransferCoding,), HTTPStatus.NOT_IMPLEMENTED, "not-implemented"),
    ((errors.ExpectationFailed,), HTTPStatus.EXPECTATION_FAILED, "expectation-failed"),
    ((errors.ForbiddenProxyRequest,), HTTPStatus.FORBIDDEN, "forbidden"),
    ((errors.ParseException,), HTTPStatus.BAD_REQUEST, "malformed-request"),
)


def classify(error: BaseException) -> tuple[HTTPStatus, str]:
    for kinds, status, slug in _STATUS_OF:
        if isinstance(error, kinds):
            return status, slug
    return HTTPStatus.INTERNAL_SERVER_ERROR, "internal-error"


def problem_answer(status: HTTPStatus, slug: str, detail: str,
                   headers: Mapping[str, str] | None = None) -> bytes:
    """A complete HTTP/1.1 response carrying the problem; the connection closes after it."""
    request_id = str(uuid.uuid4())
    body = json.dumps({"type": f"urn:pedidos-veloz:problem:{slug}", "title": status.phrase,
                       "status": status.value, "detail": detail, "instance": None,
                       "request_id": request_id}).encode()
    extra = "".join(f"{name}: {value}\r\n" for name, value in (headers or {}).items())
    head = (f"HTTP/1.1 {status.value} {status.phrase}\r\nConnection: close\r\n"
            f"Content-Type: application/problem+json\r\nContent-Length: {len(body)}\r\n"
            f"X-Request-ID: {request_id}\r\n{extra}\r\n")
    return head.encode("latin-1") + body


class ProblemErrors:
    """Replaces gunicorn's `handle_error`: same status and log line, a problem+json body."""

    log: Logger

    def handle_error(self, req, client, addr, exc):
        status, slug = classify(exc)
        if status == HTTPStatus.INTERNAL_SERVER_ERROR:
            self.log.exception("Error handling request")
            detail = "An unexpected error occurred."
        else:
            peer = addr[0] if isinstance(addr, tuple) and addr else "unix"
            self.log.warning("Invalid request from ip=%s: %s", peer, exc)
            detail = str(exc)
        try:
            util.write_nonblock(client, problem_answer(status, slug, detail))
        except OSError:
            self.log.debug("Failed to send error message.")


class ProblemThreadWorker(ProblemErrors, ThreadWorker):
    """gthread (processes x threads): the gateway's worker before ProblemGeventWorker. A
    thread parses each request and reads its body from a blocking socket, so as many slow
    clients as there are threads stall the worker."""


# Before closing a connection whose client may still be sending, the worker reads (and drops)
# what comes for this long, at most this much: see linger.
LINGER_SECONDS = 1.0
LINGER_BYTES = 8 * 1024 * 1024
# The most a worker buffers of a body when the app sets no limit of its own (MAX_BODY_BYTES's
# default); beyond it the worker answers 413 itself.
DEFAULT_BODY_LIMIT = 1024 * 1024


class RequestRefused(Exception):
    """An answer the worker gives by itself, before any app runs; the connection closes."""

    def __init__(self, status: HTTPStatus, slug: str, detail: str,
                 headers: Mapping[str, str] | None = None):
        super().__init__(detail)
        self.status, self.slug, self.detail = status, slug, detail
        self.headers = dict(headers or {})

    def answer(self) -> bytes:
        return problem_answer(self.status, self.slug, self.detail, self.headers)


# The answers a worker gives by itself: status, problem slug, the detail (filled in with the
# figures `refused` is given), and whether the client may try again in a second.
REFUSALS = {
    "request-timeout": (HTTPStatus.REQUEST_TIMEOUT,
                        "The request {part} was not complete within {seconds:g} s.", False),
    "too-many-connections": (HTTPStatus.TOO_MANY_REQUESTS,
                             "At most {limit} connections at once from one address.", True),
    "content-too-large": (HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                          "The body is larger than {limit} bytes.", False),
    "busy": (HTTPStatus.SERVICE_UNAVAILABLE,
             "This worker holds {budget} bytes of request bodies already.", True),
}


def refused(slug: str, **figures: object) -> RequestRefused:
    status, detail, retry_soon = REFUSALS[slug]
    return RequestRefused(status, slug, detail.format(**figures),
                          {"Retry-After": "1"} if retry_soon else None)


class BodyBudget:
    """The bytes of request bodies one worker holds at once (REQUEST_BODY_BUDGET_BYTES).

    A greenlet per connection lets a worker read up to GUNICORN_WORKER_CONNECTIONS bodies at
    once, each up to the app's limit: 1,000 x 1 MiB, far over a pod's memory. A body takes
    its declared length (or the limit, when chunked) before it is read and gives it back when
    its request is answered; one that does not fit gets a 503 problem with Retry-After: 1.
    One greenlet runs at a time in a worker, so plain counting is enough."""

    def __init__(self, budget: int):
        self.budget, self.held = budget, 0

    def take(self, size: int) -> bool:
        if self.held + size > self.budget:
            return False
        self.held += size
        return True

    def give_back(self, size: int) -> None:
        self.held -= size


class ConnectionsPerPeer:
    """Open connections per peer address, in one worker process.

    The peer is the address the TCP connection comes from, not X-Forwarded-For: the count is
    taken when the connection is accepted, before any header has arrived, and a header is
    whatever the client chooses to write, so a client could spread itself over invented
    addresses. Behind a proxy that pools connections (the Kubernetes Ingress) every client
    arrives from the proxy's few addresses and this cap would throttle them all together:
    there MAX_CONNECTIONS_PER_CLIENT must be 0, and the proxy's own per-client limit is the one
    to use. The greenlets of a worker share one thread and switch only on I/O, so the counts
    need no lock. A limit of 0 counts nothing."""

    def __init__(self, limit: int):
        self.limit = limit
        self._open: dict[str, int] = {}

    def admit(self, peer: str | None) -> bool:
        """Count one more connection from `peer`, unless it already holds `limit` of them.
        A peer of None (a unix socket) is not counted."""
        if not self.limit or peer is None:
            return True
        held = self._open.get(peer, 0)
        if held >= self.limit:
            return False
        self._open[peer] = held + 1
        return True

    def release(self, peer: str | None) -> None:
        """Forget one connection of an admitted `peer`; a peer with none left is dropped, so
        the table holds only the addresses connected right now."""
        if peer is None or peer not in self._open:
            return
        if self._open[peer] > 1:
            self._open[peer] -= 1
        else:
            del self._open[peer]

    def held(self, peer: str) -> int:
        return self._open.get(peer, 0)


def peer_address(addr) -> str | None:
    """The IP address of a TCP peer; None for a unix socket (addr is a path or empty)."""
    return addr[0] if isinstance(addr, tuple) and addr else None


def app_body_limit(app) -> int | None:
    """The largest body the app accepts: Flask's MAX_CONTENT_LENGTH (from MAX_BODY_BYTES in
    veloz.web.app), or None for an app that sets none."""
    config = getattr(app, "config", None)
    return config.get("MAX_CONTENT_LENGTH") if isinstance(config, Mapping) else None


def declared_length(req) -> int | None:
    """The body's Content-Length (0 without one); None for a chunked body."""
    reader = req.body.reader
    return reader.length if isinstance(reader, LengthReader) else None


def declare_length(req, length: int) -> None:
    """A chunked body read whole is handed to the app as what it now is: `length` bytes with
    a Content-Length, no transfer coding. werkzeug refuses a body over MAX_CONTENT_LENGTH by
    its Content-Length (413); reading a chunked one, it would stop at the limit and hand the
    app the first MAX_CONTENT_LENGTH bytes as if they were all of it."""
    req.headers = [(name, value) for name, value in req.headers
                   if name != "TRANSFER-ENCODING"] + [("CONTENT-LENGTH", str(length))]


def send_continue_if_expected(req, client) -> None:
    """A client that sent `Expect: 100-continue` waits for this before it sends the body.
    gunicorn sends it when the app starts, which here is after the body: it goes out now,
    once, and gunicorn is told it was sent (its flag has no public setter)."""
    if req._expected_100_continue:
        client.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
        req._expected_100_continue = False


def close_after(client, answer: bytes = b"") -> None:
    """Send `answer` (if any), stop writing, then linger before the caller closes the socket."""
    with gevent.Timeout(LINGER_SECONDS, False):
        try:
            if answer:
                client.sendall(answer)
            client.shutdown(socket.SHUT_WR)
            linger(client)
        except OSError:
            return


def linger(client) -> None:
    """Read and drop what the client still sends, until it closes too or LINGER_BYTES went by
    (the caller bounds the time). Closing a socket that has unread input makes the kernel
    reset the connection, and a reset can destroy the answer before the client has read it:
    the client is often still sending the request being refused."""
    dropped = 0
    while dropped < LINGER_BYTES:
        data = client.recv(65536)
        if not data:
            return
        dropped += len(data)


class Deadline:
    """`with Deadline(seconds, "head"):` the block must end within `seconds`, or it stops
    where it waits (gevent raises in the greenlet) and a 408 RequestRefused is raised."""

    def __init__(self, seconds: float, part: str):
        self.seconds, self.part = seconds, part
        self.timeout = gevent.Timeout(seconds)

    def __enter__(self) -> "Deadline":
        self.timeout.start()
        return self

    def __exit__(self, kind, error, traceback) -> None:
        self.timeout.close()
        if error is self.timeout:
            raise refused("request-timeout", part=self.part, seconds=self.seconds) from None


class ProblemGeventWorker(ProblemErrors, GeventWorker):
    """gunicorn's gevent worker, serving HTTP/1.1 with deadlines and a per-client bound.

    Per request, on a connection of its own greenlet:
    - the first byte: waited for up to `keepalive` seconds (on a new connection as on a kept-
      alive one); a client silent that long is closed without a word, never with a 408: on a
      kept-alive connection a pooled client could take an answer it did not ask for as the
      answer to the request it is just sending;
    - the head (request line and headers): complete within REQUEST_HEADER_TIMEOUT_SECONDS of
      its first byte, or a 408 problem and the connection closed;
    - the body: read whole by the worker within REQUEST_BODY_TIMEOUT_SECONDS of the head (or a
      408) before the app runs, so no app code ever waits on a client's socket. A body over
      the app's own limit (MAX_CONTENT_LENGTH) is not read: the app answers its own 413, as it
      always has, and the connection closes after it;
    - MAX_CONNECTIONS_PER_CLIENT connections at once from one address (ConnectionsPerPeer);
      one more gets a 429 problem with Retry-After: 1.
    GUNICORN_THREADS does not apply (there are no request threads); GUNICORN_WORKER_CONNECTIONS
    bounds the connections of a worker. gevent patches the standard library when the worker
    starts (GeventWorker.init_process), before it imports the app: the gateway has no
    preload_app, and its gunicorn config imports no app module. HTTP/2 and the PROXY protocol
    are not served here (veloz.run.gunicorn_conf enables neither)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.edge = EdgeSettings.from_environment()
        self.per_peer = ConnectionsPerPeer(self.edge.max_connections_per_client)
        self.bodies = BodyBudget(self.edge.body_budget_bytes)
        # Told to stop (DRAIN_FILE): each answer closes its connection, so keep-alive clients
        # move to the server that replaces this one (veloz.web.app does the same in apps).
        self.told_to_stop = DrainWatch()
        self.idle_seconds = self.cfg.keepalive or self.edge.header_timeout
        self.body_limit = DEFAULT_BODY_LIMIT
        self.app_limits_body = False

    def load_wsgi(self):
        super().load_wsgi()
        limit = app_body_limit(self.wsgi)
        self.app_limits_body = limit is not None
        self.body_limit = limit if limit is not None else DEFAULT_BODY_LIMIT

    def handle(self, listener, client, addr):
        client.setblocking(1)  # as GeventWorker.handle: blocking for this greenlet only
        peer = peer_address(addr)
        try:
            if not self.per_peer.admit(peer):
                self.refuse(client, addr,
                            refused("too-many-connections", limit=self.per_peer.limit))
                return
            try:
                self.serve_connection(listener.getsockname(), client, addr)
            finally:
                self.per_peer.release(peer)
        finally:
            util.close(client)

    def serve_connection(self, listener_name, client, addr) -> None:
        """Every way a connection ends, as gunicorn's AsyncWorker.handle ends it, plus the
        worker's own refusals."""
        try:
            self.serve_requests(listener_name, client, addr)
        except RequestRefused as refusal:
            self.refuse(client, addr, refusal)
        except (StopIteration, http.errors.NoMoreData) as ended:
            self.log.debug("Closing connection. %s", ended)
        except OSError as error:
            self.log_socket_error(error)
        except Exception as error:  # noqa: BLE001 - as gunicorn: a problem answer, logged
            self.handle_error(None, client, addr, error)

    def serve_requests(self, listener_name, client, addr) -> None:
        parser = http.get_parser(self.cfg, client, addr)
        while self.next_request_begins(parser, client):
            req = self.read_head(parser)
            if self.told_to_stop():  # gunicorn drops an app's Connection header: say it here
                req.force_close()
            held = self.hold_body(req)
            try:
                body_read = self.read_body(req, client)
                self.handle_request(listener_name, req, client, addr)
            except StopIteration:  # the answer closes the connection
                if not body_read:  # the refused body may still be coming
                    close_after(client)
                return
            finally:
                self.bodies.give_back(held)

    def hold_body(self, req) -> int:
        """Room in the worker's BodyBudget for this request's body, taken before a byte of it
        is read: its declared length, or the limit when it comes chunked."""
        declared = declared_length(req)
        size = self.body_limit + 1 if declared is None else min(declared, self.body_limit)
        if not self.bodies.take(size):
            raise refused("busy", budget=self.bodies.budget)
        return size

    def next_request_begins(self, parser, client) -> bool:
        """True once a byte of the next request is at hand (maybe pipelined, already read);
        False when the client closed, or sent nothing for `keepalive` seconds."""
        client.settimeout(self.idle_seconds)
        try:
            data = parser.unreader.read()
        except TimeoutError:
            return False
        finally:
            client.settimeout(None)
        parser.unreader.unread(data)
        return bool(data)

    def read_head(self, parser):
        with Deadline(self.edge.header_timeout, "head"):
            return next(parser)

    def read_body(self, req, client) -> bool:
        """Put the whole body in `req.body` (True), or not a byte past the limit (False): the
        app refuses a body over its limit, and the connection closes after its answer."""
        declared = declared_length(req)
        if declared == 0:
            return True
        if declared is not None and declared > self.body_limit:
            req.body = io.BytesIO()  # werkzeug refuses it by its Content-Length alone
            return self.leave_to_app(req)
        send_continue_if_expected(req, client)
        with Deadline(self.edge.body_timeout, "body"):
            body = req.body.read(self.body_limit + 1)  # chunked: one byte past tells it is over
        if declared is not None and len(body) < declared:
            raise http.errors.NoMoreData(body)
        req.body = io.BytesIO(body)
        if declared is None:
            declare_length(req, len(body))
        if len(body) > self.body_limit:  # chunked, and over the limit
            return self.leave_to_app(req)
        return True

    def leave_to_app(self, req) -> bool:
        """A body over the limit is the app's to refuse, with its own 413 problem as it always
        has; an app that sets no limit gets no such body: the worker refuses it."""
        if not self.app_limits_body:
            raise refused("content-too-large", limit=self.body_limit)
        req._expected_100_continue = False  # no body is wanted
        req.force_close()
        return False

    def refuse(self, client, addr, refusal: RequestRefused) -> None:
        peer = peer_address(addr) or "unix"
        self.log.warning("Refused request from ip=%s: %s %s", peer, refusal.status.value,
                         refusal.detail)
        close_after(client, refusal.answer())

    def log_socket_error(self, error: OSError) -> None:
        if error.errno in (errno.EPIPE, errno.ECONNRESET, errno.ENOTCONN):
            self.log.debug("Ignoring socket error: %s", error)
        else:
            self.log.exception("Socket error processing request.")


class AppWritesAccessLines(Logger):
    """gunicorn's logger, minus its access lines: the app writes one JSON line per request
    with its request id and route. (gunicorn would otherwise build every access line's
    fields, headers and environ included, because a `logconfig_dict` is set.)"""

    @property
    def access_log_enabled(self) -> bool:
        return False
