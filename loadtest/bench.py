"""`make bench`: one run, one table. Starts the platform on free ports as `make up` runs it,
measures it, and writes bench/results/<date>-<commit>.json and a PNG chart beside it.

Phases, all from this machine to 127.0.0.1, bounded in requests and seconds:
1. reads: `GET /items/{id}` straight to estoque, then through the gateway (the proxy's cost);
2. orders for one hot item (a flash sale: every buyer on one row), then spread over 1,000
   items: orders/s, p50/p95/p99, failures, CPU ms per paid order per service, and a check
   that the stock adds up (sold = paid orders, nothing left held);
3. the database floor for the same SQL work (loadtest/floor.py, pgbench), both shapes;
4. the cost of `GET /orders?limit=50` (and `&status=paid`) with 10,000 and 1,000,000 orders.
Figures only: nothing here fails on timing.
"""

import argparse
import json
import os
import platform as host
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import requests
from cpu_per_order import SECRET, fresh_platform, measure_orders
from floor import measure_floor
from sqlalchemy import create_engine, text

from veloz.db import sqlalchemy_url
from veloz.devstack import Platform

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"


def read_rate(url: str, clients: int, seconds: float) -> dict:
    """Requests per second of GET `url` from `clients` threads with keep-alive sessions."""
    local, stop = threading.local(), time.monotonic() + seconds
    latencies: list[float] = []
    lock = threading.Lock()

    def run(_n: int) -> int:
        session = getattr(local, "session", None) or requests.Session()
        local.session, done = session, 0
        while time.monotonic() < stop:
            started = time.perf_counter()
            session.get(url, timeout=10).raise_for_status()
            with lock:
                latencies.append(time.perf_counter() - started)
            done += 1
        return done

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=clients) as pool:
        total = sum(pool.map(run, range(clients)))
    return {"requests_per_second": round(total / (time.perf_counter() - started), 1),
            "p50_ms": round(1000 * statistics.median(latencies), 2)}


def reads(platform: Platform, item_id: int, clients: int, seconds: float) -> dict:
    path = f"/items/{item_id}"
    direct = read_rate(platform.url("estoque-service") + path, clients, seconds)
    proxied = read_rate(platform.url("api-gateway") + path, clients, seconds)
    return {"direct": direct, "through_gateway": proxied,
            "ratio": round(proxied["requests_per_second"] / direct["requests_per_second"], 2)}


def stock_adds_up(platform: Platform, items: list[dict], paid: int) -> bool:
    """Every unit is for sale, held or sold; sold = the paid orders; nothing left held."""
    engine = create_engine(sqlalchemy_url(platform.database_urls["estoque-service"]))
    with engine.connect() as connection:
        rows = connection.execute(
            text("SELECT quantity, reserved, committed FROM items WHERE id = ANY(:ids)"),
            {"ids": [item["id"] for item in items]}).all()
    engine.dispose()
    initial = sum(item["quantity"] for item in items)
    return (sum(q + r + c for q, r, c in rows) == initial
            and sum(r for _q, r, _c in rows) == 0 and sum(c for _q, _r, c in rows) == paid)


def order_phase(platform: Platform, token: str, item_count: int, orders: int,
                clients: int) -> dict:
    admin = {"Authorization": f"Bearer {token}"}
    items = [requests.post(f"{platform.url('api-gateway')}/items", headers=admin, timeout=10,
                           json={"name": f"Carga {n}", "quantity": 1_000_000,
                                 "price": 10.5}).json() for n in range(item_count)]
    figures = measure_orders(platform, token, [item["id"] for item in items], orders, clients)
    time.sleep(1)  # the last answers' commits are visible before the stock is counted
    figures["stock_adds_up"] = stock_adds_up(platform, items, figures["paid_total"])
    return figures


def listing_cost(platform: Platform, total_orders: int, samples: int = 30) -> dict:
    """Median ms of GET /orders?limit=50 (and &status=paid) straight to pedidos once the
    orders table holds `total_orders` rows (filled with plain INSERTs)."""
    engine = create_engine(sqlalchemy_url(platform.database_urls["pedidos-service"]))
    with engine.begin() as connection:
        have = connection.execute(text("SELECT count(*) FROM orders")).scalar_one()
        connection.execute(text(
            "INSERT INTO orders (customer, status, currency, compensation_pending, total, "
            "created_at, updated_at) SELECT 'Carga ' || (n % 1000), "
            "(ARRAY['paid','paid','paid','payment_declined','cancelled'])[1 + n % 5], 'BRL', "
            "false, 10.5, now(), now() FROM generate_series(1, :rows) AS n"),
            {"rows": max(0, total_orders - have)})
    with engine.connect() as connection:
        connection.execute(text("ANALYZE orders"))
    engine.dispose()
    pedidos, figures = platform.url("pedidos-service"), {}
    with requests.Session() as session:
        for name, query in (("limit_50", "?limit=50"), ("paid_limit_50",
                                                        "?status=paid&limit=50")):
            times = []
            for _ in range(samples):
                started = time.perf_counter()
                session.get(f"{pedidos}/orders{query}", timeout=30).raise_for_status()
                times.append(time.perf_counter() - started)
            figures[name] = round(1000 * statistics.median(times), 2)
    return figures


def commit_id() -> str:
    git = shutil.which("git") or "git"
    result = subprocess.run([git, "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True, cwd=REPO, check=False)
    return result.stdout.strip() or "unknown"


def chart(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    shapes = [("hot item", "orders_hot_item"), ("1,000 items", "orders_1000_items")]
    figure, (rate, cpu, latency) = pyplot.subplots(1, 3, figsize=(15, 4.5))
    names = [label for label, _ in shapes]
    rate.bar(names, [results[key]["orders_per_second"] for _, key in shapes], label="platform")
    rate.bar(names, [results["floor"][key]["orders_per_second"] for _, key in shapes],
             alpha=0.3, label="database floor (pgbench)")
    rate.set_title("paid orders/s")
    rate.legend()
    bottom = [0.0] * len(shapes)
    services = list(results["orders_hot_item"]["cpu_ms_per_order"])
    for service in services:
        values = [results[key]["cpu_ms_per_order"][service] for _, key in shapes]
        cpu.bar(names, values, bottom=bottom, label=service)
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    cpu.set_title("CPU ms per paid order")
    cpu.legend(fontsize="small")
    for label, key in shapes:
        latency.plot(["p50", "p95", "p99"], [results[key][f"{p}_ms"] for p in
                                             ("p50", "p95", "p99")], marker="o", label=label)
    latency.set_title("POST /orders latency, ms")
    latency.legend()
    figure.suptitle(f"Pedidos Veloz {results['commit']} on {results['machine']}")
    figure.tight_layout()
    figure.savefig(path, dpi=90)


def table(results: dict) -> str:
    hot, spread, floor = (results["orders_hot_item"], results["orders_1000_items"],
                          results["floor"])
    ratio = spread["orders_per_second"] / floor["orders_1000_items"]["orders_per_second"]
    gateway, direct = (results["reads"]["through_gateway"]["requests_per_second"],
                       results["reads"]["direct"]["requests_per_second"])
    rows = [("paid orders/s (hot item / 1,000 items)",
             f"{hot['orders_per_second']} / {spread['orders_per_second']}"),
            ("database floor, saga's 6 transactions (hot / spread)",
             f"{floor['orders_hot_item']['orders_per_second']} / "
             f"{floor['orders_1000_items']['orders_per_second']}"),
            ("database floor, one transaction (hot / spread)",
             f"{floor['one_transaction_hot_item']['orders_per_second']} / "
             f"{floor['one_transaction_1000_items']['orders_per_second']}"),
            ("orders/s / floor (spread, saga's transactions)",
             f"{ratio:.3f}"),
            ("CPU ms per paid order, all services (hot / spread)",
             f"{hot['cpu_ms_per_order_total']} / {spread['cpu_ms_per_order_total']}"),
            ("  per service (spread)", ", ".join(f"{k} {v}" for k, v in
                                               spread["cpu_ms_per_order"].items())),
            ("POST /orders p50 / p95 / p99 ms (spread)",
             f"{spread['p50_ms']} / {spread['p95_ms']} / {spread['p99_ms']}"),
            ("failed orders; stock adds up (hot / spread)",
             f"{hot['failed']} {hot['stock_adds_up']} / {spread['failed']} "
             f"{spread['stock_adds_up']}"),
            ("GET /items/{id} through the gateway / straight to estoque",
             f"{results['reads']['ratio']} ({gateway} / {direct} req/s)"),
            ("GET /orders?limit=50 ms, 10k / 1M orders",
             f"{results['listing']['10k']['limit_50']} / {results['listing']['1M']['limit_50']}"),
            ("GET /orders?status=paid&limit=50 ms, 10k / 1M orders",
             f"{results['listing']['10k']['paid_limit_50']} / "
             f"{results['listing']['1M']['paid_limit_50']}")]
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=600, help="orders per shape")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=int, default=10, help="per read phase and floor")
    parser.add_argument("--skip-million", action="store_true",
                        help="measure the order listing at 10k orders only")
    args = parser.parse_args()
    from gateway.auth import TokenAuthority
    from gateway.config import JwtSettings

    token = TokenAuthority(JwtSettings(jwt_secret=SECRET)).mint("bench", ["admin"])
    env = {"JWT_SECRET": SECRET, "PAYMENT_DECLINE_RATE": "0",
           "RATE_LIMIT_DEFAULT": "100000/minute", "RATE_LIMIT_ANONYMOUS": "1000000/minute"}
    results: dict = {"date": datetime.now(UTC).isoformat(timespec="seconds"),
                     "commit": commit_id(), "cores": os.cpu_count(),
                     "machine": f"{host.machine()}, {os.cpu_count()} cores",
                     "clients": args.clients}
    with fresh_platform(Path(tempfile.mkdtemp(prefix="veloz-bench-")), "_bench",
                        env) as platform:
        reads_item = requests.post(f"{platform.url('api-gateway')}/items", timeout=10,
                                   headers={"Authorization": f"Bearer {token}"},
                                   json={"name": "Vitrine", "quantity": 1, "price": 1}).json()
        results["reads"] = reads(platform, reads_item["id"], args.clients, args.seconds)
        results["orders_hot_item"] = order_phase(platform, token, 1, args.orders, args.clients)
        results["orders_1000_items"] = order_phase(platform, token, 1000, args.orders,
                                                   args.clients)
        results["listing"] = {"10k": listing_cost(platform, 10_000)}
        if not args.skip_million:
            results["listing"]["1M"] = listing_cost(platform, 1_000_000)
        else:
            results["listing"]["1M"] = {"limit_50": None, "paid_limit_50": None}
    results["floor"] = {
        "orders_hot_item": measure_floor(args.clients, args.seconds, 1),
        "orders_1000_items": measure_floor(args.clients, args.seconds, 1000),
        "one_transaction_hot_item": measure_floor(args.clients, args.seconds, 1, "one"),
        "one_transaction_1000_items": measure_floor(args.clients, args.seconds, 1000, "one")}
    RESULTS.mkdir(parents=True, exist_ok=True)
    stem = RESULTS / f"{results['date'][:10]}-{results['commit']}"
    stem.with_suffix(".json").write_text(json.dumps(results, indent=2) + "\n")
    chart(results, stem.with_suffix(".png"))
    print(table(results))
    print(f"\n{stem}.json and .png")


if __name__ == "__main__":
    main()
