"""What one hop of an order costs at its floor on this host: the server and Flask answering a
route that does nothing, and the client sending a call, each measured beside the platform's
own choices in one run (the host's speed drifts by half within a day: compare only figures
of one run).

A paid order makes five hops: the gateway (gunicorn's gevent worker) serves one request and
sends one call; pedidos serves one and sends three; estoque serves two and pagamentos one
(granian). What `loadtest/cpu_per_order.py` measures above five served requests and four
calls at these floors is the services' own work (SQL, validation, the saga, telemetry) and
what the processes cost each other on two cores.

- servers: CPU of the server's processes per request, 8 keep-alive clients, for a bare WSGI
  callable and for a one-route Flask app, under granian (as estoque, pagamentos and pedidos
  run, one worker) and under gunicorn's gevent worker (as the gateway runs, one worker);
- clients: CPU of this process per call, one thread, to the granian bare callable, through
  veloz.net's ServiceClient (what the services use), urllib3's pool used bare, and the
  standard library's http.client on one kept connection.

Each figure is the smallest of ROUNDS rounds taken in turns. Traffic goes to 127.0.0.1 only,
bounded in requests; every server started here is stopped by its process group.

    .venv/bin/python loadtest/hop_floor.py [--requests 4000] [--rounds 3]
"""

import argparse
import http.client
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

from cpu_per_order import cpu_seconds
from flask import Flask
from nginx_reference import stop, wait_until_ready
from urllib3 import Timeout
from urllib3.connectionpool import connection_from_url

from veloz.dev.devstack import free_port
from veloz.net.client import ServiceClient

BODY = b'{"ok":true}'
CLIENTS = 8
flask_app = Flask(__name__)


@flask_app.get("/floor")
def floor() -> dict:
    return {"ok": True}


def bare_app(environ, start_response):
    """The least a WSGI server can be asked to run."""
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(BODY)))])
    return [BODY]


def granian(app: str, port: int) -> list[str]:
    return [sys.executable, "-m", "granian", "--interface", "wsgi", "--workers", "1",
            "--blocking-threads", "4", "--http", "1", "--no-ws", "--host", "127.0.0.1",
            "--port", str(port), f"hop_floor:{app}"]


def gunicorn_gevent(app: str, _port: int) -> list[str]:
    return [sys.executable, "-m", "gunicorn", "-c", "python:veloz.run.gunicorn_conf",
            f"hop_floor:{app}"]


SERVERS: dict[str, tuple[Callable[[str, int], list[str]], str]] = {
    "granian, bare callable": (granian, "bare_app"),
    "granian, Flask": (granian, "flask_app"),
    "gunicorn gevent, bare callable": (gunicorn_gevent, "bare_app"),
    "gunicorn gevent, Flask": (gunicorn_gevent, "flask_app"),
}


@contextmanager
def serving(command: Callable[[str, int], list[str]], app: str):
    """The server on a free port, in a process group of its own, until the block ends."""
    port = free_port()
    env = {**os.environ, "BIND": f"127.0.0.1:{port}", "WEB_CONCURRENCY": "1",
           "SERVICE_NAME": "hop-floor"}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    process = subprocess.Popen(command(app, port), cwd=Path(__file__).parent, env=env,
                               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_until_ready(process, port, Path(__file__).parent, name=app, timeout=30,
                         ready=lambda: answers(port))
        yield process, port
    finally:
        stop(process, graceful=signal.SIGTERM)


def answers(port: int) -> bool:
    try:
        get(http.client.HTTPConnection("127.0.0.1", port, timeout=1))
    except OSError:
        return False
    return True


def get(connection: http.client.HTTPConnection) -> None:
    connection.request("GET", "/floor")
    answer = connection.getresponse()
    answer.read()
    if answer.status != 200:
        raise RuntimeError(f"the floor answered {answer.status}")


def server_cpu_per_request(process: subprocess.Popen, port: int, requests: int) -> float:
    """µs of the server's CPU (every process of its group) per request, CLIENTS at once."""

    def client(count: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        for _ in range(count):
            get(connection)

    def load(each: int) -> None:
        threads = [threading.Thread(target=client, args=(each,)) for _ in range(CLIENTS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    load(50)  # warm up
    before = cpu_seconds(process.pid)
    load(requests // CLIENTS)
    return 1e6 * (cpu_seconds(process.pid) - before) / (requests // CLIENTS * CLIENTS)


def client_calls(url: str) -> dict[str, Callable[[], None]]:
    host, port = url.removeprefix("http://").split(":")
    service = ServiceClient("floor", url)
    pool, timeout = connection_from_url(url, maxsize=4), Timeout(connect=1.0, read=5.0)
    kept = http.client.HTTPConnection(host, int(port), timeout=5)

    def through_service_client() -> None:
        service.request("GET", "/floor").data  # noqa: B018 - the body is read, as callers do

    def through_urllib3() -> None:
        pool.urlopen("GET", "/floor", timeout=timeout, retries=False, redirect=False).data  # noqa: B018

    return {"ServiceClient (veloz.net)": through_service_client,
            "urllib3 pool, bare": through_urllib3,
            "http.client, one connection": lambda: get(kept)}


def client_cpu_per_call(call: Callable[[], None], calls: int) -> float:
    for _ in range(50):
        call()
    started = time.process_time()
    for _ in range(calls):
        call()
    return 1e6 * (time.process_time() - started) / calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=4000, help="per target and round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    servers: dict[str, list[float]] = {name: [] for name in SERVERS}
    clients: dict[str, list[float]] = {}
    for _round in range(args.rounds):
        for name, (command, app) in SERVERS.items():
            with serving(command, app) as (process, port):
                servers[name].append(server_cpu_per_request(process, port, args.requests))
        with serving(granian, "bare_app") as (_process, port):
            for name, call in client_calls(f"http://127.0.0.1:{port}").items():
                clients.setdefault(name, []).append(client_cpu_per_call(call, args.requests))
    print(f"server CPU per request ({CLIENTS} keep-alive clients, one worker), smallest of "
          f"{args.rounds} rounds:")
    for name, figures in servers.items():
        print(f"  {name:32} {min(figures):6.0f} µs")
    print("client CPU per call (one thread, to granian's bare callable):")
    for name, figures in clients.items():
        print(f"  {name:32} {min(figures):6.0f} µs")


if __name__ == "__main__":
    main()
