"""The gateway's label sets name what the gateway really has: a backend or a breaker state
added without its label would be counted as `other` (by design: a label never holds a value
nobody listed)."""

from prometheus_client import REGISTRY

from gateway import telemetry
from gateway.backends import ROUTES
from gateway.breaker import State
from gateway.config import GatewaySettings

URLS = {"estoque_url": "http://estoque:5003", "pedidos_url": "http://pedidos:5001",
        "pagamentos_url": "http://pagamentos:5002"}


def breaker_state(backend: str) -> float | None:
    return REGISTRY.get_sample_value("gateway_circuit_breaker_state", {"backend": backend})


def test_every_backend_the_gateway_routes_to_or_configures_has_its_label():
    configured = GatewaySettings(jwt_secret="x" * 40, **URLS).backends()

    assert telemetry.BACKENDS == set(ROUTES.values()) == {backend.name for backend in configured}


def test_every_breaker_state_has_its_number_on_the_gauge():
    assert set(telemetry.BREAKER_STATES) == {state.value for state in State}


def test_each_breaker_state_sets_its_own_number():
    for state in State:
        telemetry.record_breaker_state("estoque", state.value)

        assert breaker_state("estoque") == telemetry.BREAKER_STATES[state.value]


def test_a_backend_nobody_listed_is_counted_as_other():
    before = REGISTRY.get_sample_value("gateway_backend_errors_total",
                                       {"backend": "other", "kind": "timeout"}) or 0

    telemetry.record_backend_error("http://10.0.0.7:8080", "timeout")

    assert REGISTRY.get_sample_value("gateway_backend_errors_total",
                                     {"backend": "other", "kind": "timeout"}) == before + 1
