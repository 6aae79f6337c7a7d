"""Count the SQL statements one paid order costs in each service (a figure that, unlike
latency, does not move with the machine's load). Part of `make bench`.

Runs estoque and pagamentos on local threads and pedidos in-process, on `*_sqlcount`
databases of the development PostgreSQL (embedded unless DATABASE_URL is set).
"""

import threading
from collections import Counter

import psycopg
from sqlalchemy import event
from werkzeug.serving import make_server

from estoque.app import create_app as create_estoque
from estoque.config import EstoqueSettings
from pagamentos.app import create_app as create_pagamentos
from pagamentos.config import PagamentosSettings
from pedidos.app import create_app as create_pedidos
from pedidos.config import PedidosSettings
from veloz.data.migrate import upgrade
from veloz.dev.devdb import recreate_database
from veloz.dev.devstack import server_url_from_environment

ORDERS = 50


def migrated(server_url: str, package: str) -> str:
    url = recreate_database(server_url, f"{package}_sqlcount")
    upgrade(package, url)
    return url


def serve(app) -> str:
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_port}"


def count_statements(app, name: str, counts: Counter) -> None:
    """Count every statement the app's connections send, whether SQLAlchemy runs it or the
    service hands it to psycopg itself (veloz.data.db's `statements()` / `atomic()`)."""

    class CountingCursor(psycopg.Cursor):
        def execute(self, *args, **kwargs):
            counts.update([name])
            return super().execute(*args, **kwargs)

        def executemany(self, query, params_seq, **kwargs):
            params_seq = list(params_seq)
            counts.update([name] * len(params_seq))
            return super().executemany(query, params_seq, **kwargs)

    event.listen(app.extensions["database"].engine, "checkout",
                 lambda connection, *_: setattr(connection, "cursor_factory", CountingCursor))


def main() -> None:
    server_url = server_url_from_environment()
    estoque = create_estoque(EstoqueSettings(
        database_url=migrated(server_url, "estoque"), log_level="WARNING"))
    pagamentos = create_pagamentos(PagamentosSettings(
        database_url=migrated(server_url, "pagamentos"), log_level="WARNING",
        payment_decline_rate=0))
    pedidos = create_pedidos(PedidosSettings(
        database_url=migrated(server_url, "pedidos"), log_level="WARNING",
        estoque_url=serve(estoque), pagamentos_url=serve(pagamentos)))
    counts: Counter = Counter()
    for app, name in ((estoque, "estoque"), (pagamentos, "pagamentos"), (pedidos, "pedidos")):
        count_statements(app, name, counts)
    item = estoque.test_client().post("/items", json={
        "name": "Contagem", "quantity": 1_000_000, "price": 10}).json["id"]
    buyer = pedidos.test_client()
    order = {"customer": "Contagem", "items": [{"item_id": item, "quantity": 1}]}
    counts.clear()
    for _ in range(ORDERS):
        assert buyer.post("/orders", json=order).status_code == 201
    per_order = {name: counts[name] / ORDERS for name in sorted(counts)}
    print(f"SQL statements per paid order: {per_order} = {sum(per_order.values()):g} "
          "(connection pre-pings not counted)")


if __name__ == "__main__":
    main()
