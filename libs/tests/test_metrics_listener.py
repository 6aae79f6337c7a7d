"""With METRICS_BIND set, an app answers /metrics only on a connection that arrived on that
port, and that port nothing else (veloz.web.app.serve_metrics_only_on). Real listening
sockets stand for gunicorn's two listeners; a real gateway process is in
tests/e2e/test_metrics_port.py."""

import itertools
import socket
from collections.abc import Iterator

import pytest

from veloz.web.app import create_service_app, names_metrics

_apps = itertools.count()


@pytest.fixture
def listeners() -> Iterator[tuple[socket.socket, socket.socket]]:
    """(public, metrics): two sockets listening on 127.0.0.1, as gunicorn binds them."""
    public, internal = socket.socket(), socket.socket()
    try:
        for sock in (public, internal):
            sock.bind(("127.0.0.1", 0))
            sock.listen()
        yield public, internal
    finally:
        public.close()
        internal.close()


@pytest.fixture
def client(monkeypatch, listeners):
    monkeypatch.setenv("METRICS_BIND", f"127.0.0.1:{listeners[1].getsockname()[1]}")
    app = create_service_app(name=f"metrics-listener-{next(_apps)}", version="1",
                             log_level="WARNING", max_body_bytes=1024, blueprints=[],
                             readiness=dict)
    return app.test_client()


def on(sock: socket.socket) -> dict:
    return {"gunicorn.socket": sock}


@pytest.mark.parametrize("path", ["/metrics", "/metrics/", "//metrics", "/Metrics",
                                  "/%6detrics", "/./metrics", "/livez/../metrics"])
def test_the_public_listener_answers_every_spelling_of_metrics_like_an_unknown_path(
        client, listeners, path):
    answer = client.get(path, environ_overrides=on(listeners[0]))

    assert answer.status_code == 404
    assert answer.content_type == "application/problem+json"
    assert answer.json["detail"] == client.get("/nowhere",
                                               environ_overrides=on(listeners[0])).json["detail"]


def test_a_host_naming_the_metrics_port_does_not_make_the_public_listener_serve_it(
        client, listeners):
    metrics_host = f"127.0.0.1:{listeners[1].getsockname()[1]}"

    answer = client.get("/metrics", headers={"Host": metrics_host},
                        environ_overrides={**on(listeners[0]), "SERVER_PORT":
                                           str(listeners[1].getsockname()[1])})

    assert answer.status_code == 404


def test_the_metrics_listener_serves_metrics_and_nothing_else(client, listeners):
    assert client.get("/metrics", environ_overrides=on(listeners[1])).status_code == 200
    assert client.get("/livez", environ_overrides=on(listeners[1])).status_code == 404
    assert client.get("/livez", environ_overrides=on(listeners[0])).status_code == 200


def test_without_a_socket_of_the_metrics_port_nothing_serves_metrics(client):
    assert client.get("/metrics").status_code == 404


@pytest.mark.parametrize(("path", "meant"), [
    ("/metrics", True), ("/METRICS/", True), ("///metrics//", True), ("/%6Detrics", True),
    ("/x/../metrics", True), ("/metricsx", False), ("/a/metrics", False),
    ("/metrics/x", False), ("/items", False), ("/", False)])
def test_names_metrics_folds_case_slashes_dots_and_escapes(path, meant):
    assert names_metrics(path) is meant
