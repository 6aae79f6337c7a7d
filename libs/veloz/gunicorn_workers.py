"""Gunicorn workers whose own error answers are problem+json, like every answer of the apps.

Gunicorn refuses some requests before any app sees them: a request line longer than 4094
bytes (414), more than 100 header fields or one over 8190 bytes (431), a malformed request
(400). Its stock answer is an HTML page; these workers answer the same status as an RFC 9457
problem with a fresh request id, so a client parses every error the same way.
"""

import json
import uuid
from http import HTTPStatus

from gunicorn import util
from gunicorn.glogging import Logger
from gunicorn.http import errors
from gunicorn.workers.gthread import ThreadWorker
from gunicorn.workers.sync import SyncWorker

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


def problem_answer(status: HTTPStatus, slug: str, detail: str) -> bytes:
    """A complete HTTP/1.1 response carrying the problem; the connection closes after it."""
    request_id = str(uuid.uuid4())
    body = json.dumps({"type": f"urn:pedidos-veloz:problem:{slug}", "title": status.phrase,
                       "status": status.value, "detail": detail, "instance": None,
                       "request_id": request_id}).encode()
    head = (f"HTTP/1.1 {status.value} {status.phrase}\r\nConnection: close\r\n"
            f"Content-Type: application/problem+json\r\nContent-Length: {len(body)}\r\n"
            f"X-Request-ID: {request_id}\r\n\r\n")
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
    """gthread (WEB_CONCURRENCY processes x GUNICORN_THREADS threads)."""


class ProblemSyncWorker(ProblemErrors, SyncWorker):
    """sync, when GUNICORN_THREADS is 1."""


class AppWritesAccessLines(Logger):
    """gunicorn's logger, minus its access lines: the app writes one JSON line per request
    with its request id and route. (gunicorn would otherwise build every access line's
    fields, headers and environ included, because a `logconfig_dict` is set.)"""

    @property
    def access_log_enabled(self) -> bool:
        return False
