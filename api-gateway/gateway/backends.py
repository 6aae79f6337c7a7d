"""The three services behind the gateway: one pooled client and one breaker each."""

import contextvars
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

from gateway import telemetry
from gateway.breaker import CircuitBreaker, CircuitOpen
from gateway.config import GatewaySettings
from veloz.net.client import Answer, ServiceClient, UpstreamTimeout, UpstreamUnavailable

T = TypeVar("T")
# First path segment -> the service that owns it.
ROUTES = {"items": "estoque", "reservations": "estoque", "orders": "pedidos",
          "payments": "pagamentos"}


@dataclass(frozen=True)
class Backend:
    name: str
    client: ServiceClient
    breaker: CircuitBreaker[Answer]
    check_timeout: float

    def send(self, method: str, path: str, **kwargs) -> Answer:
        """One proxied call, behind this backend's circuit breaker, timed and counted. A 5xx
        answer counts against the circuit and is still returned: the gateway relays it."""
        started = time.perf_counter()
        try:
            response = self.breaker.call(lambda: self.client.request(method, path, **kwargs))
        except CircuitOpen:  # counted as a call too, so errors / calls stays a ratio
            telemetry.record_backend_call(self.name, time.perf_counter() - started,
                                          "circuit_open")
            raise
        except (UpstreamTimeout, UpstreamUnavailable) as error:
            kind = "timeout" if isinstance(error, UpstreamTimeout) else "unreachable"
            telemetry.record_backend_call(self.name, time.perf_counter() - started, kind)
            raise
        telemetry.record_backend_call(self.name, time.perf_counter() - started,
                                      "server_error" if response.status >= 500 else None)
        return response

    def health(self) -> str:
        try:
            response = self._quick_get("/health")
        except (UpstreamUnavailable, UpstreamTimeout):
            return "unreachable"
        return "healthy" if response.status == 200 else "unhealthy"

    def openapi(self) -> dict | None:
        """This service's OpenAPI document, or None when it cannot give one right now."""
        try:
            response = self._quick_get("/openapi.json")
            return response.json() if response.status == 200 else None
        except (UpstreamUnavailable, UpstreamTimeout, ValueError):
            return None

    def _quick_get(self, path: str) -> Answer:
        """One try, as /health reports what is true now: no retries and no connect budget
        (a service whose workers respawn shows as unreachable for that moment)."""
        timeout = (self.check_timeout, self.check_timeout)
        return self.client.request("GET", path, idempotent=False, timeout=timeout,
                                   connect_budget=0)


def build_backends(settings: GatewaySettings) -> dict[str, Backend]:
    for config in settings.backends():
        telemetry.declare_backend(config.name)
    return {
        config.name: Backend(
            config.name, ServiceClient(config.name, config.url, config.policy),
            CircuitBreaker(config.name, settings.breaker_policy(), is_failure=is_server_error),
            settings.backend_check_timeout_seconds)
        for config in settings.backends()
    }


def is_server_error(response: Answer) -> bool:
    """A 5xx answer counts against the backend's circuit (it was reached but is broken); a
    4xx is the client's fault and counts as a success. Either is relayed unchanged."""
    return response.status >= 500


def owner_of(path: str) -> str | None:
    """The service a path is routed to: '/items/3' -> 'estoque'."""
    return ROUTES.get(path.lstrip("/").split("/", 1)[0])


def ask_all(backends: dict[str, Backend], question: Callable[[Backend], T]) -> dict[str, T]:
    """Ask every backend at once (carrying the request id), so the slowest sets the pace."""
    with ThreadPoolExecutor(max_workers=len(backends)) as pool:
        futures = {name: pool.submit(contextvars.copy_context().run, question, backend)
                   for name, backend in backends.items()}
        return {name: future.result() for name, future in futures.items()}
