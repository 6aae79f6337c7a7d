"""The api-gateway with some of its features taken out, for `gateway_cost.py --without`: read
through beside the whole gateway and the bare Flask proxy in the same run, the difference is
what those features cost a read, on the host as it is at that moment.

gunicorn's app, as the platform serves the gateway (`veloz.run.gunicorn_conf`), with the
features named in GATEWAY_WITHOUT (comma-separated names of FEATURES, or `all`) replaced by
nothing before the app is built. Each is taken out where the app looks it up, so the gateway
is otherwise this tree's code; `api-gateway/tests/test_gateway_without.py` checks that each
name takes out what it says and that reads are still relayed.

    GATEWAY_WITHOUT=access,rate-limit gunicorn -c python:veloz.run.gunicorn_conf \
        'gateway_without:create_app()'

Never a way to run the platform: only the bench starts it, on 127.0.0.1.
"""

import os
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from flask import Flask

VARIABLE = "GATEWAY_WITHOUT"
ALL = "all"


def _nothing(*_args, **_kwargs) -> None:
    return None


def _send_unguarded(_breaker, send: Callable[[], Any]) -> Any:
    return send()


_IDLE_GAUGE = SimpleNamespace(inc=_nothing, dec=_nothing)
# What the request hooks find as `metrics`: recording nothing.
_NO_METRICS = SimpleNamespace(record_request=_nothing, record_unhandled=_nothing,
                              REQUESTS_IN_FLIGHT=SimpleNamespace(labels=lambda *_: _IDLE_GAUGE))


@dataclass(frozen=True)
class Feature:
    """What a feature does, and where it is taken out: (the module or class, by its dotted
    name; the attribute the app looks up there; what it finds instead)."""

    what: str
    replaced: tuple[tuple[str, str, object], ...]


FEATURES = {
    "access": Feature("the access log line", (
        ("veloz.web.request_metrics", "log_info", _nothing),)),
    "metrics": Feature("RED per route, requests in flight, calls per backend, rejections", (
        ("veloz.web.request_metrics", "metrics", _NO_METRICS),
        ("gateway.telemetry", "record_backend_call", _nothing),
        ("gateway.app", "_count_rejections", _nothing))),
    "rate-limit": Feature("the caller's budget: counted, stated in six headers", (
        ("gateway.app", "install_rate_limits", _nothing),)),
    "auth": Feature("the access table (a token, if any, is still decoded by the rate limit)", (
        ("gateway.proxy", "authorize", _nothing),)),
    "breaker": Feature("the circuit breaker around each call out", (
        ("gateway.breaker.CircuitBreaker", "call", _send_unguarded),)),
    "request-id": Feature("the request id: made, kept for the log lines, stated", (
        ("veloz.web.app", "_track_requests", _nothing),)),
    "tracing": Feature("the caller's traceparent kept (and spans, when recorded)", (
        ("veloz.web.app", "trace_requests", _nothing),)),
    "guards": Feature("empty segments refused, /metrics on its own port, the drain watch", (
        ("veloz.web.app", "_refuse_empty_segments", _nothing),
        ("veloz.web.app", "serve_metrics_only_on", _nothing),
        ("veloz.web.app", "_close_connections_when_draining", _nothing))),
}


def taken_out(names: str) -> list[str]:
    """The features `names` (GATEWAY_WITHOUT's value) takes out; ValueError for an unknown."""
    chosen = [name.strip() for name in names.split(",") if name.strip()]
    if ALL in chosen:
        return list(FEATURES)
    unknown = sorted(set(chosen) - set(FEATURES))
    if unknown:
        raise ValueError(f"{VARIABLE}: no feature named {', '.join(unknown)} "
                         f"(known: {', '.join(FEATURES)}, {ALL})")
    return chosen


def take_out(name: str, replace: Callable[[Any, str, object], None] = setattr) -> None:
    """Take feature `name` out of the gateway about to be built (`replace` sets an attribute:
    pytest's `monkeypatch.setattr` in the tests). An attribute that is not there any more
    raises, as the feature would otherwise silently stay in."""
    for dotted, attribute, replacement in FEATURES[name].replaced:
        target = pkgutil.resolve_name(dotted)
        if not hasattr(target, attribute):
            raise AttributeError(f"{dotted}.{attribute} is gone: update {__name__}.FEATURES")
        replace(target, attribute, replacement)


def create_app() -> Flask:
    """The gateway's app without GATEWAY_WITHOUT's features (built in each worker)."""
    for name in taken_out(os.environ.get(VARIABLE, "")):
        take_out(name)
    from gateway.app import create_app as create_gateway

    return create_gateway()
