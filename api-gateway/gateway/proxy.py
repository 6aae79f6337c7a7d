"""Routes each call to the service that owns its path, unchanged but for hop-by-hop headers
and the caller's identity, which only the gateway may assert."""

from functools import lru_cache
from urllib.parse import quote

from flask import Blueprint, Request, Response, current_app

from gateway.auth import Identity, authorize
from gateway.backends import ROUTES, Backend
from gateway.ratelimit import BUDGET_HEADERS
from veloz.core.errors import NotFound
from veloz.core.identity import ROLES_HEADER, USER_ID_HEADER
from veloz.net.client import Answer
from veloz.web.context import current_request, environ_key, request_state

# OPTIONS goes on to the service like any method: its 405 lists what the path really takes.
METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
HOP_BY_HOP = frozenset({"connection", "keep-alive", "te", "trailer", "trailers",
                        "transfer-encoding", "upgrade"})
# The gateway terminates auth and asserts identity itself; the shared client sets the
# request id; the length is recomputed and bodies travel uncompressed between services.
NOT_FORWARDED = HOP_BY_HOP | {"host", "content-length", "authorization", "x-user-id",
                              "x-user-roles", "x-request-id", "accept-encoding"}
# The request id and the caller's budget are the gateway's to state.
NOT_RETURNED = HOP_BY_HOP | BUDGET_HEADERS | {"content-length", "content-encoding", "server",
                                              "date", "x-request-id"}
# Path words kept verbatim in the metrics' route label; numbers become <id>, anything else
# <other>, so the label stays bounded whatever clients send.
SUBRESOURCES = frozenset({"cancel", "events", "commit", "release", "restock", "reserve",
                          "write-off", "refund"})
MAX_ROUTE_DEPTH = 3
_KEY_IN_ENVIRON = environ_key("Idempotency-Key")  # absent on every read


def proxy_blueprint() -> Blueprint:
    blueprint = Blueprint("proxy", __name__)
    collection = f"<any({', '.join(ROUTES)}):collection>"
    blueprint.add_url_rule(f"/{collection}", "forward", forward, methods=METHODS)
    blueprint.add_url_rule(f"/{collection}/<path:rest>", "forward", forward, methods=METHODS)
    return blueprint


def forward(collection: str, rest: str = "") -> Response:
    served = current_request()
    method, path = served.method, served.path
    if not clean_path(path):
        raise NotFound("No such path.")
    identity = authorize(method, path)
    backend: Backend = current_app.extensions["backends"][ROUTES[collection]]
    upstream = backend.send(method, _target(path, served.query_string),
                            headers=_outgoing_headers(served, identity),
                            body=served.get_data() or None,
                            idempotent=_retry_safe(method, _KEY_IN_ENVIRON in served.environ))
    request_state().relayed = True  # the backend's answer, not one the gateway made
    return Response(upstream.data, status=upstream.status,
                    headers=_relayed_headers(upstream, backend))


def clean_path(path: str) -> bool:
    """No empty, `.` or `..` segment after the leading slash: one resource, one spelling.
    (With a slash put after it, each such segment is `//`, `/./` or `/../` in the path.)"""
    ended = path + "/"
    return "//" not in ended and "/./" not in ended and "/../" not in ended


def route_template(req) -> str:
    """The metrics' `route` of a request: `/orders/<id>/cancel` for a proxied call, the
    gateway's own url rule otherwise."""
    if req.url_rule is None or req.endpoint != "proxy.forward":
        return req.url_rule.rule if req.url_rule is not None else "<unmatched>"
    args = req.view_args or {}
    return proxied_template(args.get("collection", ""), args.get("rest", ""))


def proxied_template(collection: str, rest: str) -> str:
    """`/orders/<id>/cancel` for /orders/12/cancel: numbers become <id>, words other than
    SUBRESOURCES <other>, and a path deeper than MAX_ROUTE_DEPTH below its collection
    `/<collection>/<other>`."""
    segments = [segment for segment in rest.split("/") if segment]
    if len(segments) > MAX_ROUTE_DEPTH:
        segments = ["<other>"]
    words = ["<id>" if part.isdigit() else part if part in SUBRESOURCES else "<other>"
             for part in segments]
    return "/" + "/".join([collection, *words])


def _target(path: str, query_string: bytes) -> str:
    query = query_string.decode("utf-8", "replace")
    return quote(path) + (f"?{query}" if query else "")


def _retry_safe(method: str, keyed: bool) -> bool:
    """Repeating is harmless for reads and for a POST the service deduplicates by key."""
    return method in ("GET", "HEAD") or (method == "POST" and keyed)


def _outgoing_headers(served: Request, identity: Identity | None) -> dict[str, str]:
    """The caller's end-to-end headers, named as werkzeug names them, read straight from the
    WSGI environ (a fifth of the instructions of going through `request.headers`), and the
    ones the gateway states itself."""
    environ = served.environ
    listed = _connection_listed(environ.get("HTTP_CONNECTION"), NOT_FORWARDED)
    headers = {}
    for key, value in environ.items():
        name = _forwarded_name(key)
        if name is not None and (value or key[:5] == "HTTP_") and not (
                listed and name.lower() in listed):  # an empty CONTENT_* is no header
            headers[name] = value
    forwarded_for, client = environ.get("HTTP_X_FORWARDED_FOR"), served.remote_addr or "unknown"
    headers["X-Forwarded-For"] = f"{forwarded_for}, {client}" if forwarded_for else client
    headers["Accept-Encoding"] = "identity"
    if identity is not None:
        headers[USER_ID_HEADER] = identity.subject
        headers[ROLES_HEADER] = ",".join(sorted(identity.roles))
    return headers


@lru_cache(maxsize=1024)  # bounded: clients choose header names
def _forwarded_name(key: str) -> str | None:
    """The header an environ key holds, as werkzeug's `EnvironHeaders` names it
    (`HTTP_ACCEPT_LANGUAGE` -> `Accept-Language`), if the gateway may pass it on; None for the
    server's own keys and for NOT_FORWARDED and `proxy-*` headers."""
    if key.startswith("HTTP_") and key not in ("HTTP_CONTENT_TYPE", "HTTP_CONTENT_LENGTH"):
        name = key[5:].replace("_", "-").title()
    elif key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
        name = key.replace("_", "-").title()
    else:
        return None
    lowered = name.lower()
    return None if lowered in NOT_FORWARDED or lowered.startswith("proxy-") else name


def _relayed_headers(upstream: Answer, backend: Backend) -> list[tuple[str, str]]:
    """The service's headers the client may see, in the order and spelling sent. Read with
    `raw_items()`: `items()` and `get()` pass every value through the email policy, which
    changes only a value holding undecodable bytes, and the client's reader decodes every
    answer as Latin-1, so there is none (`items()` and `get()` cost twice this function)."""
    kept, connection = [], []
    for name, value in upstream.headers.raw_items():
        lowered = name.lower()
        if lowered == "connection":  # every one of them: a hop may send it more than once
            connection.append(value)
        elif lowered not in NOT_RETURNED and not lowered.startswith("proxy-"):
            kept.append((lowered, name, value))
    listed = _connection_listed(",".join(connection), NOT_RETURNED)
    return [(name, _gateway_links(value, backend) if lowered == "link" else value)
            for lowered, name, value in kept if lowered not in listed]


def _gateway_links(value: str, backend: Backend) -> str:
    """Services send relative paging links, right as they are at the gateway (same paths).
    A link to the service's own address (a service of an older version) loses that address
    and becomes relative too: the gateway never builds a link from the request's Host."""
    return value.replace(f"<{backend.client.base_url}/", "</")


def _connection_listed(connection: str | None, always: frozenset[str]) -> frozenset[str]:
    """The header names this hop's `Connection` header lists (RFC 9110 7.6.1), lower-cased,
    other than those in `always`."""
    if not connection:
        return frozenset()
    return frozenset({token.strip().lower() for token in connection.split(",")} - always - {""})
