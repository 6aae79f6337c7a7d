"""The least a Flask proxy can do, served as the gateway is: the framework's floor for
`GET /items/{id}`, read through beside the api-gateway and nginx in `make bench`.

One route, relayed to one upstream through the platform's own pooled client (veloz.net's
ServiceClient, as the gateway's calls go: so what is compared is the features, not the HTTP
client), with timeouts and nothing resent: no auth, rate limit, request id, metrics, log line,
breaker or header filtering. It runs
under gunicorn with the platform's own settings (`veloz.run.gunicorn_conf`: the same workers,
threads and worker class), so what the gateway costs above it is what its features cost.

    with bare_flask_proxy("http://127.0.0.1:8001") as proxy:
        requests.get(f"{proxy.url}/items/1")

Listens on 127.0.0.1 on a free port, in a process group of its own; stopped by its pid.
"""

import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests
from flask import Flask, Response
from nginx_reference import ReferenceProxy, stop, wait_until_ready

from veloz.dev.devstack import free_port
from veloz.net.client import ClientPolicy, ServiceClient

UPSTREAM_VARIABLE = "BARE_PROXY_UPSTREAM"


def create_app() -> Flask:
    """gunicorn's app: built in each worker (no preload), so is its connection pool."""
    upstream = ServiceClient("upstream", os.environ[UPSTREAM_VARIABLE],
                             ClientPolicy(retries=0, connect_budget_seconds=0))
    app = Flask(__name__)

    @app.get("/items/<int:item_id>")
    def item(item_id: int) -> Response:
        answer = upstream.request("GET", f"/items/{item_id}")
        return Response(answer.data, status=answer.status,
                        content_type=answer.headers.get("Content-Type"))

    return app


def answers(url: str) -> bool:
    """Any HTTP answer (a 404 for `/`) means a worker serves."""
    try:
        requests.get(url, timeout=0.5)
    except requests.RequestException:
        return False
    return True


@contextmanager
def bare_flask_proxy(upstream_url: str) -> Iterator[ReferenceProxy]:
    with tempfile.TemporaryDirectory(prefix="veloz-bare-proxy-") as directory:
        root, port = Path(directory), free_port()
        env = {**os.environ, UPSTREAM_VARIABLE: upstream_url, "BIND": f"127.0.0.1:{port}",
               "SERVICE_NAME": "bare-proxy"}
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        with (root / "out.log").open("wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "-c", "python:veloz.run.gunicorn_conf",
                 "bare_proxy:create_app()"], cwd=Path(__file__).parent, env=env,
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True)
        try:
            url = f"http://127.0.0.1:{port}"
            # gunicorn listens before its workers have booted: wait for an answer.
            wait_until_ready(process, port, root, name="gunicorn (bare Flask proxy)",
                             timeout=30, ready=lambda: answers(url))
            yield ReferenceProxy(url=url, pid=process.pid)
        finally:
            stop(process, graceful=signal.SIGTERM)
