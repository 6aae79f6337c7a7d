"""The shared HTTP client against a real local server: timeouts, retries, request ids."""

import socket
import threading
import time
from collections import Counter

import pytest
from flask import Flask, request
from werkzeug.serving import make_server

from veloz.devstack import free_port
from veloz.http_client import ClientPolicy, ServiceClient, UpstreamTimeout, UpstreamUnavailable
from veloz.logs import request_id_var


@pytest.fixture(scope="module")
def upstream():
    app, calls = Flask("upstream"), Counter()

    @app.route("/echo-id", methods=["GET", "POST"])
    def echo_id():
        return {"request_id": request.headers.get("X-Request-ID")}

    @app.get("/slow")
    def slow():
        calls["slow"] += 1
        time.sleep(1.5)
        return {}

    @app.route("/flaky/<name>", methods=["GET", "POST"])
    def flaky(name):
        calls[name] += 1
        return ({"calls": calls[name]}, 503) if calls[name] < 3 else {"calls": calls[name]}

    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}", calls
    server.shutdown()


def _client(base_url, **policy):
    return ServiceClient("upstream", base_url,
                         ClientPolicy(**{"read_timeout": 0.3, "backoff_seconds": 0.01, **policy}))


def test_current_request_id_is_passed_on(upstream):
    token = request_id_var.set("req-42")
    try:
        answer = _client(upstream[0]).request("GET", "/echo-id").json()
    finally:
        request_id_var.reset(token)

    assert answer["request_id"] == "req-42"


def test_frozen_upstream_costs_one_timeout_not_one_per_retry(upstream):
    started = time.monotonic()

    with pytest.raises(UpstreamTimeout):
        _client(upstream[0], retries=2).request("GET", "/slow")

    assert time.monotonic() - started < 1.4  # gave up before the upstream answered
    assert upstream[1]["slow"] == 1


def test_dead_upstream_raises_unavailable(upstream):
    with pytest.raises(UpstreamUnavailable):
        _client(f"http://127.0.0.1:{free_port()}").request("GET", "/anything")


def test_idempotent_call_is_retried_through_503s(upstream):
    response = _client(upstream[0], retries=3).request("GET", "/flaky/get")

    assert response.status == 200
    assert upstream[1]["get"] == 3


def test_plain_post_is_sent_once_even_when_it_fails(upstream):
    response = _client(upstream[0], retries=3).request("POST", "/flaky/post")

    assert response.status == 503
    assert upstream[1]["post"] == 1


def test_post_declared_idempotent_is_retried(upstream):
    response = _client(upstream[0], retries=3).request("POST", "/flaky/keyed", idempotent=True)

    assert response.status == 200
    assert upstream[1]["keyed"] == 3


def test_answer_cut_off_mid_body_raises_unavailable():
    listener = socket.create_server(("127.0.0.1", 0))

    def answer_half_and_hang_up():
        connection, _ = listener.accept()
        connection.recv(65536)
        connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"partial")
        connection.close()

    threading.Thread(target=answer_half_and_hang_up, daemon=True).start()
    base_url = f"http://127.0.0.1:{listener.getsockname()[1]}"

    with pytest.raises(UpstreamUnavailable):
        _client(base_url, retries=0).request("GET", "/dying")
    listener.close()


class HangsUpOnTheSecondCall:
    """Answers the first call on each connection and keeps it open, then closes it on the next
    call without answering: what a service does when its keep-alive runs out just as a call
    arrives. Records (connection number, method) for every call it reads."""

    def __init__(self):
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.calls: list[tuple[int, str]] = []
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        for number in range(1, 100):
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(connection, number), daemon=True).start()

    def _serve(self, connection, number):
        with connection:
            for answer in (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}", None):
                call = connection.recv(65536)
                if not call:
                    return
                self.calls.append((number, call.split(b" ", 1)[0].decode()))
                if answer:
                    connection.sendall(answer)

    def close(self):
        self.listener.close()


@pytest.fixture
def hangs_up():
    server = HangsUpOnTheSecondCall()
    yield server
    server.close()


def test_safe_call_goes_out_again_when_the_service_closes_its_connection(hangs_up):
    client = _client(hangs_up.url, retries=1)

    answers = [client.request("GET", "/items/1").status for _ in range(2)]

    assert answers == [200, 200]
    assert hangs_up.calls == [(1, "GET"), (1, "GET"), (2, "GET")]


def test_plain_post_is_not_sent_again_on_a_new_connection(hangs_up):
    client = _client(hangs_up.url, retries=1)
    client.request("GET", "/items/1")

    with pytest.raises(UpstreamUnavailable):
        client.request("POST", "/orders", body=b"{}")

    assert hangs_up.calls == [(1, "GET"), (1, "POST")]


def test_connection_idle_past_the_limit_is_opened_again_before_use(hangs_up):
    client = _client(hangs_up.url, retries=0, idle_seconds=0.2)
    client.request("GET", "/items/1")
    time.sleep(0.3)

    assert client.request("POST", "/orders", body=b"{}").status == 200
    assert hangs_up.calls == [(1, "GET"), (2, "POST")]


def test_https_services_get_the_same_idle_limit():
    client = _client("https://estoque.internal:8443", idle_seconds=0.2)
    pool = client._connections()

    assert pool.scheme == "https"
    assert (pool.host, pool.port, pool.idle_seconds) == ("estoque.internal", 8443, 0.2)
