"""Clients that send slowly, or hold many connections, against the gateway's gunicorn worker
(veloz.run.gunicorn_workers.ProblemGeventWorker): they cost it greenlets, not request threads, and
deadlines and a per-client bound stop them holding those for long. Raw sockets to 127.0.0.1
only; every socket is closed and every wait bounded."""

import json
import re
import select
import socket
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager

import pytest
import requests

from tests.e2e.conftest import JWT_TEST_SECRET, mint, start_platform
from veloz.dev.faultload import SlowClients

pytestmark = pytest.mark.e2e

SLOW_CLIENTS = 64
CALLS = 10  # per median
# What the slow clients send: a head one byte at a time, or a whole head and 12 of 100 bytes.
TRICKLED_HEAD = (b"POST /orders HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                 b"Content-Length: 100\r\n\r\n")
STALLED_BODY = (b"POST /items HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                b"Content-Length: 100\r\n\r\n" + b'{"name": "x"')
LIVEZ = b"GET /livez HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
STRICT_SECONDS = 1  # the strict gateway's header and body deadlines
KEEPALIVE_SECONDS = 5  # veloz.run.gunicorn_conf
BODY_BUDGET = 150  # the strict gateway's bytes of bodies held at once: one STALLED_BODY fits


@pytest.fixture(scope="module")
def stock_behind_gateway(postgres_server_url, tmp_path_factory):
    """estoque behind a gateway with the default bounds: 10 s deadlines, 100 connections per
    client and worker."""
    platform = start_platform(postgres_server_url, tmp_path_factory,
                              only={"estoque-service", "api-gateway"}, database_suffix="_slow",
                              JWT_SECRET=JWT_TEST_SECRET)
    yield platform
    platform.stop()


@pytest.fixture(scope="module")
def gateway(stock_behind_gateway):
    return stock_behind_gateway.url("api-gateway")


@pytest.fixture(scope="module")
def strict_gateway(postgres_server_url, tmp_path_factory):
    """A gateway alone (no service behind it is needed), one worker, so its per-worker
    bounds are the bounds: 1 s deadlines, 4 connections per client, 150 bytes of bodies."""
    platform = start_platform(postgres_server_url, tmp_path_factory, only={"api-gateway"},
                              database_suffix="_slow", JWT_SECRET=JWT_TEST_SECRET,
                              WEB_CONCURRENCY="1", MAX_CONNECTIONS_PER_CLIENT="4",
                              REQUEST_BODY_BUDGET_BYTES=str(BODY_BUDGET),
                              REQUEST_HEADER_TIMEOUT_SECONDS=str(STRICT_SECONDS),
                              REQUEST_BODY_TIMEOUT_SECONDS=str(STRICT_SECONDS))
    yield platform.url("api-gateway")
    platform.stop()


@pytest.fixture(scope="module")
def admin_authorization():
    return f"Bearer {mint('admin', 'ops')}"


@pytest.fixture(scope="module")
def item_url(gateway, admin_authorization):
    created = requests.post(f"{gateway}/items", json={"name": "Lenta", "quantity": 5,
                                                      "price": 3},
                            headers={"Authorization": admin_authorization}, timeout=10)
    assert created.status_code == 201, created.text
    return f"{gateway}/items/{created.json()['id']}"


def item_post_head(authorization: str, *headers: str) -> bytes:
    lines = ["POST /items HTTP/1.1", "Host: 127.0.0.1", f"Authorization: {authorization}",
             "Content-Type: application/json", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def address(url: str) -> tuple[str, int]:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    return host, int(port)


@contextmanager
def connection(url: str) -> Iterator[socket.socket]:
    with socket.create_connection(address(url), timeout=5) as sock:
        yield sock


def read_to_end(sock: socket.socket, within: float = 5) -> bytes:
    """Everything the gateway sends until it closes; fails if it has not closed `within`."""
    received, deadline = b"", time.monotonic() + within
    while (remaining := deadline - time.monotonic()) > 0:
        sock.settimeout(remaining)
        try:
            data = sock.recv(65536)
        except TimeoutError:
            break
        if not data:
            return received
        received += data
    raise AssertionError(f"still open after {within} s; received {received[:200]!r}")


def read_answer(sock: socket.socket) -> bytes:
    """One answer with a Content-Length on a connection that stays open."""
    received = b""
    while b"\r\n\r\n" not in received:
        received += sock.recv(65536)
    head, body = received.split(b"\r\n\r\n", 1)
    length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))
    while len(body) < length:
        body += sock.recv(65536)
    return head + b"\r\n\r\n" + body


def problem(raw: bytes, status: int) -> tuple[dict[str, str], dict]:
    """The headers and the problem of a problem+json answer with `status`."""
    head, body = raw.split(b"\r\n\r\n", 1)
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {name.lower(): value for name, value in (line.split(": ", 1) for line in lines)}
    assert status_line.split(" ", 2)[1] == str(status), raw[:300]
    assert headers["content-type"] == "application/problem+json"
    document = json.loads(body)
    assert document["status"] == status
    assert document["request_id"] == headers["x-request-id"]
    return headers, document


def trickle_until_answered(sock: socket.socket, data: bytes, every: float,
                           within: float) -> float:
    """Send `data` a byte every `every` seconds until the gateway answers; seconds taken."""
    started = time.monotonic()
    for byte in data:
        sock.sendall(bytes([byte]))
        readable, _, _ = select.select([sock], [], [], every)
        if readable:
            return time.monotonic() - started
        if time.monotonic() - started > within:
            break
    raise AssertionError(f"no answer within {within} s")


def median_seconds(call: Callable[[], requests.Response]) -> float:
    """The median time of CALLS calls, each on a connection of its own; each must be a 200."""
    durations = []
    for _ in range(CALLS):
        started = time.perf_counter()
        answered = call()
        durations.append(time.perf_counter() - started)
        assert answered.status_code == 200, answered.text
    return statistics.median(durations)


def still_waiting(sock: socket.socket) -> bool:
    """The gateway has neither answered nor closed this connection."""
    sock.setblocking(False)
    try:
        sock.recv(1)
    except BlockingIOError:
        return True
    finally:
        sock.setblocking(True)
    return False


def test_the_gateway_boots_gevent_workers_and_gevent_warns_about_nothing(
        stock_behind_gateway, gateway):
    """gevent patches the standard library in each worker before the app is imported; had
    anything (ssl, threading) been imported unpatched, it would warn at boot."""
    requests.get(f"{gateway}/livez", timeout=5).raise_for_status()
    boot = (stock_behind_gateway.log_dir / "api-gateway.log").read_text()

    assert "Using worker: veloz.run.gunicorn_workers.ProblemGeventWorker" in boot
    assert boot.count("Booting worker with pid") == 2
    assert re.search(r"\w*Warning: ", boot) is None, boot


@pytest.mark.parametrize(("what", "trickle"), [(TRICKLED_HEAD, True), (STALLED_BODY, False)],
                         ids=["heads a byte every 0.5 s", "bodies stalled at 12 of 100 bytes"])
def test_slow_clients_leave_everyone_else_served_as_fast_as_before(
        gateway, item_url, admin_authorization, what, trickle):
    def livez() -> requests.Response:
        return requests.get(f"{gateway}/livez", timeout=5)

    def item() -> requests.Response:
        return requests.get(item_url, headers={"Authorization": admin_authorization},
                            timeout=5)

    median_seconds(item)  # warm: the gateway's pooled connection to estoque
    before = {"livez": median_seconds(livez), "item": median_seconds(item)}
    with SlowClients(address(gateway)[1], what, SLOW_CLIENTS, trickle=trickle) as held:
        time.sleep(0.5)  # every slow connection accepted and waiting
        during = {"livez": median_seconds(livez), "item": median_seconds(item)}
        assert all(still_waiting(sock) for sock in held)

    slower = {call: during[call] - before[call] for call in before}
    assert max(slower.values()) < 0.1, (before, during)


def test_a_body_sent_in_pieces_within_its_deadline_reaches_the_service_whole(
        gateway, admin_authorization):
    body = b'{"name": "Fita", "quantity": 2, "price": 4}'
    with connection(gateway) as sock:
        sock.sendall(item_post_head(admin_authorization, "Expect: 100-continue",
                                    f"Content-Length: {len(body)}"))
        assert sock.recv(100) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(body[:12])
        time.sleep(0.3)
        sock.sendall(body[12:])
        answer = read_answer(sock)

    assert answer.startswith(b"HTTP/1.1 201 "), answer[:300]
    assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["name"] == "Fita"


def test_a_chunked_body_reaches_the_service_whole(gateway, admin_authorization):
    body = b'{"name": "Fio", "quantity": 2, "price": 4}'
    with connection(gateway) as sock:
        sock.sendall(item_post_head(admin_authorization, "Transfer-Encoding: chunked") +
                     b"%x\r\n%s\r\n" % (10, body[:10]))
        time.sleep(0.3)
        sock.sendall(b"%x\r\n%s\r\n0\r\n\r\n" % (len(body) - 10, body[10:]))
        answer = read_answer(sock)

    assert answer.startswith(b"HTTP/1.1 201 "), answer[:300]
    assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["name"] == "Fio"


@pytest.mark.parametrize("framing", ["Content-Length", "chunked"])
def test_a_body_over_the_limit_gets_the_apps_own_413(gateway, admin_authorization, framing):
    """MAX_BODY_BYTES (1 MiB) as before: the app answers 413 (its problem names the path),
    the worker buffering no more than one byte past the limit."""
    with connection(gateway) as sock:
        if framing == "chunked":
            chunk = b"10000\r\n" + b"x" * 0x10000 + b"\r\n"
            sock.sendall(item_post_head(admin_authorization, "Transfer-Encoding: chunked") +
                         chunk * 17 + b"0\r\n\r\n")
        else:  # announced, and not sent
            sock.sendall(item_post_head(admin_authorization, "Content-Length: 2097152"))
        raw = read_to_end(sock)

    _, document = problem(raw, 413)
    assert document["instance"] == "/items"


def test_a_trickled_head_gets_a_408_problem_after_the_header_deadline(strict_gateway):
    with connection(strict_gateway) as sock:
        waited = trickle_until_answered(sock, TRICKLED_HEAD, every=0.25, within=5)
        raw = read_to_end(sock)

    _, document = problem(raw, 408)
    assert document["type"] == "urn:pedidos-veloz:problem:request-timeout"
    assert document["detail"] == "The request head was not complete within 1 s."
    assert STRICT_SECONDS - 0.1 < waited < STRICT_SECONDS + 1


def test_a_stalled_body_gets_a_408_problem_after_the_body_deadline(strict_gateway):
    with connection(strict_gateway) as sock:
        started = time.monotonic()
        sock.sendall(STALLED_BODY)
        raw = read_to_end(sock)
        waited = time.monotonic() - started

    _, document = problem(raw, 408)
    assert document["detail"] == "The request body was not complete within 1 s."
    assert STRICT_SECONDS - 0.1 < waited < STRICT_SECONDS + 1


def test_an_idle_kept_alive_connection_is_closed_without_a_word(strict_gateway):
    """Idle for longer than the header deadline, yet no 408: nothing of a request came."""
    with connection(strict_gateway) as sock:
        for _ in range(2):
            sock.sendall(LIVEZ)
            assert read_answer(sock).startswith(b"HTTP/1.1 200 ")
        started = time.monotonic()
        assert read_to_end(sock, within=KEEPALIVE_SECONDS + 3) == b""
        idle = time.monotonic() - started

    assert KEEPALIVE_SECONDS - 0.5 < idle < KEEPALIVE_SECONDS + 2


def test_one_connection_over_the_per_client_bound_gets_a_429_problem(strict_gateway):
    with ExitStack() as stack:
        held = [stack.enter_context(connection(strict_gateway)) for _ in range(4)]
        for sock in held:
            sock.sendall(LIVEZ)
            assert read_answer(sock).startswith(b"HTTP/1.1 200 ")
        with connection(strict_gateway) as extra:
            extra.sendall(LIVEZ)
            headers, document = problem(read_to_end(extra), 429)
        held.pop().close()
        time.sleep(0.2)  # the worker sees it closed
        with connection(strict_gateway) as again:
            again.sendall(LIVEZ)
            assert read_answer(again).startswith(b"HTTP/1.1 200 ")

    assert headers["retry-after"] == "1"
    assert document["type"] == "urn:pedidos-veloz:problem:too-many-connections"


def test_a_body_over_the_workers_body_budget_gets_a_503_problem(strict_gateway):
    with connection(strict_gateway) as holding, connection(strict_gateway) as extra:
        holding.sendall(STALLED_BODY)  # holds 100 of the 150 bytes until its deadline
        time.sleep(0.2)
        extra.sendall(STALLED_BODY)
        headers, document = problem(read_to_end(extra), 503)
        _, first = problem(read_to_end(holding), 408)  # and gives them back

    assert headers["retry-after"] == "1"
    assert document["type"] == "urn:pedidos-veloz:problem:busy"
    assert first["type"] == "urn:pedidos-veloz:problem:request-timeout"
