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
