"""Instructions per call from one service to another, by HTTP client, counted by valgrind's
callgrind: what the choice of client costs each of a paid order's four calls (the gateway's
one, pedidos' three).

Starts the platform (loadtest/cpu_per_order.py's), makes one item, and reads it from estoque
in this process, `GET /items/{id}` with an X-Request-ID, through:

- `ServiceClient`: veloz.net's client as the services use it (http.client under a pool of
  kept connections, retries, connect budget, request id);
- `urllib3 pool`: urllib3's HTTPConnectionPool.urlopen used bare (no retries, a Timeout made
  once), the transport the client was built on before 2026-12-06;
- `http.client`: one kept http.client connection, no pool: the floor under both.

Each answer's body is read whole; headers are read by veloz.net.headers in every case. Only
this process is counted; estoque and PostgreSQL run natively. About a minute.

    .venv/bin/python loadtest/call_instructions.py [--calls 300] [--json FILE]

Traffic goes to 127.0.0.1 only, bounded in calls.
"""

import http.client
import tempfile
from contextlib import nullcontext
from pathlib import Path
from urllib.parse import urlsplit

import callgrind_count
from cpu_per_order import SECRET, fresh_platform, new_item
from urllib3 import Timeout
from urllib3.connectionpool import connection_from_url

from veloz.net import headers
from veloz.net.client import ServiceClient

REQUEST_ID = {"X-Request-ID": "0b6f5c1e-3f1d-4c6e-9a57-5d1b2c3d4e5f"}


def clients(url: str, path: str) -> dict:
    """Each way of making the call, by name."""
    headers.install()
    service = ServiceClient("estoque", url)
    pool, timeout = connection_from_url(url, maxsize=20), Timeout(connect=1.0, read=5.0)
    address = urlsplit(url)
    kept = http.client.HTTPConnection(address.hostname, address.port, timeout=5.0)

    def through_http_client() -> None:
        kept.request("GET", path, headers=REQUEST_ID)
        kept.getresponse().read()

    return {
        "ServiceClient": lambda: service.request("GET", path, headers=REQUEST_ID).data,
        "urllib3 pool": lambda: pool.urlopen("GET", path, headers=REQUEST_ID, retries=False,
                                             redirect=False, timeout=timeout).data,
        "http.client": through_http_client,
    }


def inner(calls: int) -> None:
    run_dir = Path(tempfile.mkdtemp(prefix="veloz-call-instructions-"))
    with fresh_platform(run_dir, "_calls", {"JWT_SECRET": SECRET}) as platform:
        item = new_item(platform, "Chamada", 1, 1)
        made = clients(platform.url("estoque-service"), f"/items/{item}")
        callgrind_count.count({name: (call, nullcontext) for name, call in made.items()},
                              calls)


def main() -> None:
    callgrind_count.main(
        __doc__, unit="calls", default=300, inner=inner,
        report=lambda per_call: callgrind_count.print_table(per_call, "client", "http.client"))


if __name__ == "__main__":
    main()
