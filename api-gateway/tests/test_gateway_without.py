"""loadtest/gateway_without.py, which `gateway_cost.py --without` reads through to tell what
each feature costs: each name takes out what it says, no more, and reads are still relayed.
A feature left in by mistake would show as costing nothing."""

import importlib.util
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from gateway.app import create_app

_path = Path(__file__).parents[2] / "loadtest" / "gateway_without.py"
_spec = importlib.util.spec_from_file_location("gateway_without", _path)
assert _spec is not None
assert _spec.loader is not None
gateway_without = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(gateway_without)

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
SERVED = {"method": "GET", "status": "200", "service": "api-gateway"}


def _counted() -> float:
    return REGISTRY.get_sample_value("flask_http_request_total", SERVED) or 0.0


def traces(client, services, capsys) -> set[str]:
    """The features whose work shows on what a user or operator sees of a few calls."""
    capsys.readouterr()
    counted = _counted()
    read = client.get("/items/1", headers={"traceparent": TRACEPARENT})
    assert (read.status_code, read.json["service"]) == (200, "estoque")  # relayed, always
    logged = capsys.readouterr().out
    shown = {
        "access": '"logger":"veloz.access"' in logged,
        "metrics": _counted() > counted,
        "rate-limit": "RateLimit-Limit" in read.headers,
        "request-id": "X-Request-ID" in read.headers,
        "tracing": read.json["headers"].get("Traceparent") == TRACEPARENT,
        "auth": client.get("/orders").status_code == 401,  # anonymous
        "guards": client.get("/", environ_overrides={"PATH_INFO": "//livez"}).status_code
        == 404,  # werkzeug itself would match /livez
        "breaker": _breaker_opens(client, services["estoque"]),
    }
    return {name for name, seen in shown.items() if seen}


def _breaker_opens(client, estoque) -> bool:
    """Three 500s (the tests' `breaker_minimum_calls`): is the fourth call refused?"""
    failing = {"X-Echo-Status": "500"}
    for _ in range(3):
        client.get("/items/2", headers=failing)
    reached = estoque.calls
    client.get("/items/2", headers=failing)
    return estoque.calls == reached


def gateway(settings_for):
    return create_app(settings_for(log_level="INFO")).test_client()


def test_the_whole_gateway_shows_every_feature(settings_for, services, capsys):
    assert traces(gateway(settings_for), services, capsys) == set(gateway_without.FEATURES)


@pytest.mark.parametrize("feature", sorted(gateway_without.FEATURES))
def test_each_name_takes_out_its_feature_alone(feature, settings_for, services, capsys,
                                                monkeypatch):
    gateway_without.take_out(feature, monkeypatch.setattr)
    assert traces(gateway(settings_for), services, capsys) == (
        set(gateway_without.FEATURES) - {feature})


def test_all_takes_out_every_feature(settings_for, services, capsys, monkeypatch):
    for feature in gateway_without.taken_out("access, all"):
        gateway_without.take_out(feature, monkeypatch.setattr)
    assert traces(gateway(settings_for), services, capsys) == set()


def test_an_unknown_name_or_a_vanished_attribute_is_refused(monkeypatch):
    with pytest.raises(ValueError, match="no feature named breakers"):
        gateway_without.taken_out("access,breakers")
    monkeypatch.setitem(gateway_without.FEATURES, "gone", gateway_without.Feature(
        "renamed since", (("gateway.proxy", "authorise", None),)))
    with pytest.raises(AttributeError, match=r"gateway\.proxy\.authorise is gone"):
        gateway_without.take_out("gone", monkeypatch.setattr)


def test_the_bench_starts_it_as_gunicorn_would(monkeypatch):
    """create_app() takes out what GATEWAY_WITHOUT names, then builds the gateway."""
    monkeypatch.setenv(gateway_without.VARIABLE, "rate-limit, tracing")
    taken: list[str] = []
    monkeypatch.setattr(gateway_without, "take_out", taken.append)
    monkeypatch.setattr("gateway.app.create_app", lambda: "the gateway")
    assert gateway_without.create_app() == "the gateway"
    assert taken == ["rate-limit", "tracing"]
