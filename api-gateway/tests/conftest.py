import json
import socket
import threading
import time

import pytest
from flask import Flask, Response, request
from werkzeug.serving import make_server

from gateway.app import create_app
from gateway.auth import TokenAuthority
from gateway.config import GatewaySettings

SECRET = "a-test-only-secret-that-is-long-enough-for-hs256"


class FakeService:
    """A real HTTP service on 127.0.0.1 that echoes what reached it; it can be made slow,
    unhealthy, answer any status (header X-Echo-Status) or add headers of its own to its
    answer (X-Echo-Header: `Name: value` pairs, comma-separated)."""

    def __init__(self, name: str, openapi: dict):
        self.name, self.openapi = name, openapi
        self.server = make_server("127.0.0.1", 0, self._app(), threaded=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.reset()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}"

    def reset(self) -> None:
        self.delay, self.health_status, self.calls = 0.0, 200, 0

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _app(self) -> Flask:
        app = Flask(self.name)
        app.add_url_rule("/health", "health", lambda: ({"status": "?"}, self.health_status))
        app.add_url_rule("/openapi.json", "openapi", lambda: self.openapi)
        app.add_url_rule("/<path:path>", "echo", self._echo,
                         methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"])
        return app

    def _echo(self, path):
        self.calls += 1
        time.sleep(self.delay)
        status = int(request.headers.get("X-Echo-Status", "200"))
        if status >= 400:
            problem = {"type": "urn:test", "title": "from the service", "status": status}
            return Response(json.dumps(problem), status, content_type="application/problem+json",
                            headers={"Retry-After": "2"})
        echoed = {"service": self.name, "method": request.method, "path": request.path,
                  "query": request.query_string.decode(), "body": request.get_data(as_text=True),
                  "headers": dict(request.headers)}
        extra = [pair.split(":", 1) for pair in request.headers.get("X-Echo-Header", "").split(",")
                 if pair]
        return echoed, status, [("Link", f'<{request.base_url}?after=2&limit=2>; rel="next"'),
                                ("X-Served-By", self.name),
                                *((name.strip(), value.strip()) for name, value in extra)]


def openapi_of(*paths: str, schemas: dict | None = None) -> dict:
    return {"openapi": "3.1.0", "info": {"title": "x", "version": "1"},
            "paths": {path: {"get": {"summary": path, "responses": {}}} for path in paths},
            "components": {"schemas": schemas or {}}}


ITEM_REF = {"$ref": "#/components/schemas/Item"}


@pytest.fixture(scope="session")
def services():
    started = {
        "estoque": FakeService("estoque", openapi_of(
            "/items", "/items/{item_id}", "/reservations", "/internal",
            schemas={"Item": {"type": "object", "properties": {"sku": {"type": "string"}}}})),
        "pedidos": FakeService("pedidos", openapi_of(
            "/orders", "/orders/{order_id}",
            schemas={"Item": {"type": "object", "properties": {"item_id": {"type": "integer"}}},
                     "Order": {"type": "object", "properties": {"items": ITEM_REF}}})),
        "pagamentos": FakeService("pagamentos", openapi_of("/payments")),
    }
    yield started
    for service in started.values():
        service.stop()


@pytest.fixture(autouse=True)
def _fresh_services(request):
    yield
    if "services" in request.fixturenames:
        for service in request.getfixturevalue("services").values():
            service.reset()


@pytest.fixture(scope="session")
def dead_url():
    """A port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture
def settings_for(services):
    def settings(**overrides) -> GatewaySettings:
        base = dict(
            jwt_secret=SECRET, estoque_url=services["estoque"].url,
            pedidos_url=services["pedidos"].url, pagamentos_url=services["pagamentos"].url,
            estoque_connect_timeout_seconds=0.5, estoque_read_timeout_seconds=1.0,
            pedidos_connect_timeout_seconds=0.5, pedidos_read_timeout_seconds=1.0,
            pagamentos_connect_timeout_seconds=0.5, pagamentos_read_timeout_seconds=1.0,
            breaker_minimum_calls=3, breaker_open_seconds=0.5,
            backend_check_timeout_seconds=0.5, openapi_cache_seconds=0,
            rate_limit_default="1000/minute", rate_limit_anonymous="1000/minute",
            log_level="WARNING")
        return GatewaySettings(**{**base, **overrides})

    return settings


@pytest.fixture
def client_for(settings_for):
    def client(**overrides):
        return create_app(settings_for(**overrides)).test_client()

    return client


@pytest.fixture
def client(client_for):
    return client_for()


@pytest.fixture
def bearer(settings_for):
    authority = TokenAuthority(settings_for())

    def headers(*roles: str, sub: str = "user-1") -> dict:
        return {"Authorization": f"Bearer {authority.mint(sub, list(roles))}"}

    return headers
