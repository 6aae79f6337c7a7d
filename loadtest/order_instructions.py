"""Instructions per paid order in each of the platform's apps, counted by valgrind's callgrind
instead of timed: the figure behind "CPU per paid order" that holds from run to run on a
shared host, so a change of a few per cent shows (CPU time moves by half between runs).

A paid order is five requests served: the gateway's `POST /orders`, pedidos' `POST /orders`
(the saga), estoque's `POST /reservations` and `POST /reservations/{id}/commit`, pagamentos'
`POST /payments`. This starts the platform (loadtest/cpu_per_order.py's), builds the four
apps in this process with the environment `make up` gives each, and calls each app as a WSGI
app with the requests of paid orders, under callgrind with instrumentation on only while one
app answers:

- `gateway`: `POST /orders` with a customer's token, relayed to the platform's pedidos;
- `pedidos`: `POST /orders` as the gateway relays it, the saga calling the platform's
  estoque and pagamentos;
- `estoque`: a reservation of one unit for an order of its own, then its commit;
- `pagamentos`: an approved charge for an order of its own.

Each is the app's whole work for its part of an order: the hooks, the view, its SQL through
psycopg, its calls out through the pooled client. What is not counted: the servers (gunicorn,
gevent, granian) around the apps, PostgreSQL, and the other processes. Needs valgrind
(Debian's package). About three minutes for the default 100 orders per app.

    .venv/bin/python loadtest/order_instructions.py [--orders 100] [--json FILE]

Traffic goes to 127.0.0.1 only, bounded in orders.
"""

import importlib
import io
import itertools
import json
import os
import tempfile
from contextlib import nullcontext
from pathlib import Path

import callgrind_count
from cpu_per_order import APPROVING_CARD, SECRET, fresh_platform, new_item, token
from gateway_inprocess import quiet_stdout
from werkzeug.test import EnvironBuilder

from veloz.dev.devstack import SERVICES

ENV = {"JWT_SECRET": SECRET, "PAYMENT_DECLINE_RATE": "0",
       "RATE_LIMIT_DEFAULT": "100000/minute", "RATE_LIMIT_ANONYMOUS": "1000000/minute"}
# Order ids estoque and pagamentos are asked about directly: far above pedidos' own.
OWN_ORDER_IDS = itertools.count(10**12)


def build_apps(platform) -> dict:
    """Each app with the environment `make up` gives its service, by the service's name."""
    apps = {}
    for spec in SERVICES:
        os.environ.update(platform._environment(spec))
        apps[spec.name] = importlib.import_module(f"{spec.package}.app").create_app()
    return apps


_BASE_ENVIRON = EnvironBuilder(path="/", headers={"Host": "127.0.0.1"}).get_environ()


def answer(app, method: str, path: str, body: dict | None = None,
           headers: dict | None = None) -> tuple[int, dict]:
    """One WSGI call, its answer read to the end and closed: (status, JSON body). The environ
    is a copy of one made once (werkzeug's EnvironBuilder costs more than a tenth of a
    request), so what is counted is the app's work and little else."""
    data = json.dumps(body).encode() if body is not None else b""
    environ = {**_BASE_ENVIRON, "REQUEST_METHOD": method, "PATH_INFO": path,
               "wsgi.input": io.BytesIO(data), "CONTENT_LENGTH": str(len(data))}
    if body is not None:
        environ["CONTENT_TYPE"] = "application/json"
    for name, value in (headers or {}).items():
        environ["HTTP_" + name.upper().replace("-", "_")] = value
    statuses: list[str] = []
    chunks = app(environ, lambda status, sent, exc_info=None: statuses.append(status))
    data = b"".join(chunks)
    getattr(chunks, "close", lambda: None)()
    return int(statuses[0].split()[0]), json.loads(data) if data else {}


def expect(status: int, got: tuple[int, dict], what: str) -> dict:
    if got[0] != status:
        raise RuntimeError(f"{what} answered {got[0]}: {got[1]}")
    return got[1]


def order_body(item_id: int) -> dict:
    return {"customer": "Contagem", "items": [{"item_id": item_id, "quantity": 1}],
            "payment": {"method": "credit_card", "card_number": APPROVING_CARD}}


def order_calls(apps: dict, item_id: int, token: str) -> dict:
    """What is counted, by name: each a function placing (its part of) one paid order."""
    gateway, pedidos = apps["api-gateway"], apps["pedidos-service"]
    estoque, pagamentos = apps["estoque-service"], apps["pagamentos-service"]

    def through_gateway() -> None:
        expect(201, answer(gateway, "POST", "/orders", order_body(item_id),
                           {"Authorization": f"Bearer {token}"}), "gateway POST /orders")

    def saga() -> None:
        expect(201, answer(pedidos, "POST", "/orders", order_body(item_id),
                           {"X-User-Id": "contagem", "X-User-Roles": "customer"}),
               "pedidos POST /orders")

    def reserve_and_commit() -> None:
        held = expect(201, answer(estoque, "POST", "/reservations", {  # as pedidos asks
            "order_id": next(OWN_ORDER_IDS), "ttl_seconds": 900,
            "items": [{"item_id": item_id, "quantity": 1}]}), "estoque POST /reservations")
        expect(200, answer(estoque, "POST", f"/reservations/{held['id']}/commit"),
               "estoque commit")

    def charge() -> None:  # as pedidos charges (its key: pedidos.domain.charge_key)
        order_id = next(OWN_ORDER_IDS)
        expect(201, answer(pagamentos, "POST", "/payments", {
            "order_id": order_id, "amount": 10.5, "method": "credit_card",
            "card_number": APPROVING_CARD}, {"Idempotency-Key": f"order-{order_id}-charge"}),
            "pagamentos POST /payments")

    return {"gateway": through_gateway, "pedidos": saga, "estoque": reserve_and_commit,
            "pagamentos": charge}


def inner(orders: int) -> None:
    run_dir = Path(tempfile.mkdtemp(prefix="veloz-order-instructions-"))
    with fresh_platform(run_dir, "_instructions", ENV) as platform:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="veloz-counted-")
        apps = build_apps(platform)
        calls = order_calls(apps, new_item(platform, "Contagem", 1_000_000, 10.5),
                            token("contagem", "customer"))
        with quiet_stdout():
            callgrind_count.count({name: (call, nullcontext) for name, call in calls.items()},
                                  orders)


def report(per_order: dict[str, float]) -> None:
    total = sum(per_order.values())
    print(f"{'app':12} {'instructions per paid order':>28} {'share':>7}")
    for name, figure in per_order.items():
        print(f"{name:12} {figure:28,.0f} {figure / total:7.1%}")
    print(f"{'all four':12} {total:28,.0f}")


def main() -> None:
    callgrind_count.main(__doc__, unit="orders", default=100, inner=inner, report=report)


if __name__ == "__main__":
    main()
