"""Routes each call to the service that owns its path, unchanged but for hop-by-hop headers
and the caller's identity, which only the gateway may assert."""

from urllib.parse import quote

from flask import Blueprint, Response, current_app, g, request
from urllib3 import BaseHTTPResponse

from gateway.auth import Identity, authorize
from gateway.backends import ROUTES, Backend
from veloz.core.errors import NotFound
from veloz.core.identity import ROLES_HEADER, USER_ID_HEADER

# OPTIONS goes on to the service like any method: its 405 lists what the path really takes.
METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
HOP_BY_HOP = frozenset({"connection", "keep-alive", "te", "trailer", "trailers",
                        "transfer-encoding", "upgrade"})
# The gateway terminates auth and asserts identity itself; the shared client sets the
# request id; the length is recomputed and bodies travel uncompressed between services.
NOT_FORWARDED = HOP_BY_HOP | {"host", "content-length", "authorization", "x-user-id",
                              "x-user-roles", "x-request-id", "accept-encoding"}
NOT_RETURNED = HOP_BY_HOP | {"content-length", "content-encoding", "server", "date",
                             "x-request-id"}
# Path words kept verbatim in the metrics' route label; numbers become <id>, anything else
# <other>, so the label stays bounded whatever clients send.
SUBRESOURCES = frozenset({"cancel", "events", "commit", "release", "restock", "reserve",
                          "write-off", "refund"})
MAX_ROUTE_DEPTH = 3


def proxy_blueprint() -> Blueprint:
    blueprint = Blueprint("proxy", __name__)
    collection = f"<any({', '.join(ROUTES)}):collection>"
    blueprint.add_url_rule(f"/{collection}", "forward", forward, methods=METHODS)
    blueprint.add_url_rule(f"/{collection}/<path:rest>", "forward", forward, methods=METHODS)
    return blueprint


def forward(collection: str, rest: str = "") -> Response:
    if any(segment in ("", ".", "..") for segment in request.path.split("/")[1:]):
        raise NotFound("No such path.")
    identity = authorize(request.method, request.path)
    backend: Backend = current_app.extensions["backends"][ROUTES[collection]]
    upstream = backend.send(request.method, _target(), headers=_outgoing_headers(identity),
                            body=request.get_data() or None, idempotent=_retry_safe())
    g.relayed = True  # the backend's answer, not one the gateway made
    return _relayed(upstream, backend)


def route_template(req) -> str:
    """The metrics' `route` of a request: `/orders/<id>/cancel` for a proxied call, the
    gateway's own url rule otherwise."""
    if req.url_rule is None or req.endpoint != "proxy.forward":
        return req.url_rule.rule if req.url_rule is not None else "<unmatched>"
    args = req.view_args or {}
    rest = [segment for segment in args.get("rest", "").split("/") if segment]
    if len(rest) > MAX_ROUTE_DEPTH:
        rest = ["<other>"]
    words = ["<id>" if part.isdigit() else part if part in SUBRESOURCES else "<other>"
             for part in rest]
    return "/" + "/".join([args.get("collection", ""), *words])


def _target() -> str:
    query = request.query_string.decode("utf-8", "replace")
    return quote(request.path) + (f"?{query}" if query else "")


def _retry_safe() -> bool:
    """Repeating is harmless for reads and for a POST the service deduplicates by key."""
    return request.method in ("GET", "HEAD") or (
        request.method == "POST" and "Idempotency-Key" in request.headers)


def _outgoing_headers(identity: Identity | None) -> dict[str, str]:
    dropped = NOT_FORWARDED | _connection_listed(request.headers.get("Connection", ""))
    headers = {name: value for name, value in request.headers.items()
               if not _is_dropped(name, dropped)}
    client = request.remote_addr or "unknown"
    forwarded_for = request.headers.get("X-Forwarded-For")
    headers["X-Forwarded-For"] = f"{forwarded_for}, {client}" if forwarded_for else client
    headers["Accept-Encoding"] = "identity"
    if identity is not None:
        headers[USER_ID_HEADER] = identity.subject
        headers[ROLES_HEADER] = ",".join(sorted(identity.roles))
    return headers


def _relayed(upstream: BaseHTTPResponse, backend: Backend) -> Response:
    dropped = NOT_RETURNED | _connection_listed(upstream.headers.get("Connection", ""))
    headers = [(name, _gateway_links(value, backend) if name.lower() == "link" else value)
               for name, value in upstream.headers.items()
               if not _is_dropped(name, dropped)]
    return Response(upstream.data, status=upstream.status, headers=headers)


def _gateway_links(value: str, backend: Backend) -> str:
    """Services send relative paging links, right as they are at the gateway (same paths).
    A link to the service's own address (a service of an older version) loses that address
    and becomes relative too: the gateway never builds a link from the request's Host."""
    return value.replace(f"<{backend.client.base_url}/", "</")


def _connection_listed(connection: str) -> set[str]:
    return {token.strip().lower() for token in connection.split(",") if token.strip()}


def _is_dropped(name: str, dropped: set[str] | frozenset[str]) -> bool:
    lowered = name.lower()
    return lowered in dropped or lowered.startswith("proxy-")
