"""The request being served and its per-request state (`flask.g`), looked up once per hook.

Every attribute read through `flask.request` or `flask.g` goes through werkzeug's LocalProxy:
about 1.3 µs each on the development machine, against 0.04 µs on the object itself, and a
proxied read through the gateway made 63 of them. Hooks and views that read several
attributes take the object once (`_get_current_object`, the proxy's documented way out)."""

from flask import Request, g, request
from flask.ctx import _AppCtxGlobals


def current_request() -> Request:
    return request._get_current_object()  # type: ignore[attr-defined]


# What the hooks and request steps of one request hand each other: `flask.g`'s own type.
RequestState = _AppCtxGlobals


def request_state() -> RequestState:
    """`flask.g` itself: what the hooks of one request hand each other."""
    return g._get_current_object()
