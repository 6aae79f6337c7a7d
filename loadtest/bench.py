"""`make bench`: one run, one table. Starts the platform on free ports as `make up` runs it,
measures it, and writes bench/results/<date>-<commit>.json and a PNG chart beside it.

Phases, all from this machine to 127.0.0.1, bounded in requests and seconds:
1. reads: `GET /items/{id}` straight to estoque, through the gateway, and through two
   references: nginx (loadtest/nginx_reference.py) and the least a Flask proxy under gunicorn
   can do (loadtest/bare_proxy.py), in windows taken in turns: req/s, and the proxies' CPU
   per request;
2. orders for one hot item (a flash sale: every buyer on one row), then spread over 1,000
   items: orders/s, p50/p95/p99, failures, CPU ms per paid order per service (and beside
   them, PostgreSQL's and the load generator's, which share the two cores), and a check
   that the stock adds up (sold = paid orders, nothing left held);
3. the database floor for the same SQL work (loadtest/floor.py, pgbench), both shapes;
4. the cost of `GET /orders?limit=50` (and `&status=paid`) with 10,000 and 1,000,000 orders;
5. the catalog's reads with 10,000 and 1,000,000 items (loadtest/catalog_search.py): p50/p95
   of `GET /items?q=` for a rare, an absent and a common term, and for terms of one and two
   characters, of `GET /items?limit=50` and `&sort=price`.
Figures only: nothing here fails on timing. The table shows them beside those of --baseline
(the run before the performance work, same machine).
"""

import argparse
import contextlib
import json
import os
import platform as host
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests
from bare_proxy import bare_flask_proxy
from catalog_search import catalog_cost
from cpu_per_order import SECRET, cpu_seconds, fresh_platform, measure_orders, new_item, token
from floor import measure_floor
from nginx_reference import ReferenceFailed, nginx_proxy
from sqlalchemy import create_engine, text

from veloz.data.db import sqlalchemy_url
from veloz.dev.devstack import Platform

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
BASELINE = RESULTS / "2026-11-26-df15fa5.json"  # df15fa5: before the performance work


READ_SLICES = 5  # each target's reading time, cut into windows taken in turns


@dataclass
class ReadTarget:
    """One way to read the item: its URL, the process group whose CPU it costs (None
    straight to estoque: no proxy), and what its windows of reads added up to."""

    name: str
    url: str
    group: int | None
    reads: int = 0
    cpu_seconds: float = 0.0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)

    def read_for(self, clients: int, seconds: float) -> None:
        """One window: GET the URL from `clients` threads on keep-alive sessions."""
        stop, lock = time.monotonic() + seconds, threading.Lock()

        def run(_n: int) -> int:
            done = 0
            with requests.Session() as session:
                while time.monotonic() < stop:
                    started = time.perf_counter()
                    session.get(self.url, timeout=10).raise_for_status()
                    with lock:
                        self.latencies.append(time.perf_counter() - started)
                    done += 1
            return done

        cpu_before = cpu_seconds(self.group) if self.group is not None else 0.0
        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=clients) as pool:
            self.reads += sum(pool.map(run, range(clients)))
        self.seconds += time.perf_counter() - started
        if self.group is not None:
            self.cpu_seconds += cpu_seconds(self.group) - cpu_before

    def warm_up(self, clients: int, seconds: float) -> None:
        """Reads that count for nothing (pools and caches filled before the windows)."""
        ReadTarget(self.name, self.url, self.group).read_for(clients, seconds)

    def figures(self) -> dict:
        figures = {"requests_per_second": round(self.reads / self.seconds, 1),
                   "p50_ms": round(1000 * statistics.median(self.latencies), 2),
                   "requests": self.reads}
        if self.group is not None:
            figures["cpu_ms_per_request"] = round(1000 * self.cpu_seconds / max(self.reads, 1),
                                                  3)
        return figures


def reference_target(stack: contextlib.ExitStack, name: str, reference: Callable,
                     estoque: str, path: str) -> ReadTarget | str:
    """A reference proxy (`reference(upstream)`, a context manager yielding the proxy, or
    None when it is not installed) started in front of estoque for the whole read phase,
    or the reason there is none."""
    try:
        proxy = stack.enter_context(reference(estoque))
    except ReferenceFailed as error:
        return str(error)
    if proxy is None:
        return f"{name} is not installed"
    return ReadTarget(name, proxy.url + path, proxy.pid)


def per_direct(figures: dict | None, direct: dict) -> float | None:
    return (round(figures["requests_per_second"] / direct["requests_per_second"], 2)
            if figures else None)


def reads(platform: Platform, item_id: int, clients: int, seconds: float) -> dict:
    """Straight to estoque, through the gateway, through nginx and through the bare Flask
    proxy: same clients, same time, each target's seconds cut into READ_SLICES windows
    taken in turns, so a burst of load from elsewhere on the machine falls on all alike."""
    path, estoque = f"/items/{item_id}", platform.url("estoque-service")
    with contextlib.ExitStack() as stack:
        targets = [ReadTarget("direct", estoque + path, None),
                   ReadTarget("through_gateway", platform.url("api-gateway") + path,
                              platform.processes["api-gateway"].pid)]
        missing: dict[str, str] = {}
        for name, reference in (("nginx", nginx_proxy), ("bare_flask", bare_flask_proxy)):
            started = reference_target(stack, name, reference, estoque, path)
            if isinstance(started, str):
                missing[name] = started
            else:
                targets.append(started)
        for target in targets:
            target.warm_up(clients, 1.0)
        for _slice in range(READ_SLICES):
            for target in targets:
                target.read_for(clients, seconds / READ_SLICES)
    figures: dict[str, Any] = {target.name: target.figures() for target in targets}
    for name, reason in missing.items():
        figures.update({name: None, f"{name}_reason": reason})
    direct = figures["direct"]
    return {**figures, "ratio": per_direct(figures["through_gateway"], direct),
            "nginx_ratio": per_direct(figures["nginx"], direct),
            "bare_flask_ratio": per_direct(figures["bare_flask"], direct)}


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


def order_phase(platform: Platform, admin_token: str, item_count: int, orders: int,
                clients: int) -> dict:
    admin = {"Authorization": f"Bearer {admin_token}"}
    items = [requests.post(f"{platform.url('api-gateway')}/items", headers=admin, timeout=10,
                           json={"name": f"Carga {n}", "quantity": 1_000_000,
                                 "price": 10.5}).json() for n in range(item_count)]
    figures = measure_orders(platform, admin_token, [item["id"] for item in items], orders,
                             clients)
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


NO_FIGURE = "—"
Cell = Callable[[dict], str]


def value_at(results: dict, path: str) -> Any:
    """results["a"]["b"] for "a.b"; KeyError when a run lacks it."""
    value: Any = results
    for key in path.split("."):
        value = value[key]
    return value


def values_at(*paths: str) -> Cell:
    """The figures at `paths`, NO_FIGURE for each one a run lacks or left empty (a run with
    --skip-million has the catalog's 10k figures and no 1M ones), one NO_FIGURE for none."""
    def cell(results: dict) -> str:
        figures = [_figure(results, path) for path in paths]
        if all(figure is None for figure in figures):
            return NO_FIGURE
        return " / ".join(NO_FIGURE if figure is None else str(figure) for figure in figures)
    return cell


def _figure(results: dict, path: str) -> Any:
    try:
        return value_at(results, path)
    except (KeyError, TypeError):
        return None


def saga_share(results: dict) -> str:
    spread = value_at(results, "orders_1000_items.orders_per_second")
    floor = value_at(results, "floor.orders_1000_items.orders_per_second")
    return f"{spread / floor:.3f}"


def failures(results: dict) -> str:
    return " / ".join(f"{results[key]['failed']} {results[key]['stock_adds_up']}"
                      for key in ("orders_hot_item", "orders_1000_items"))


def proxy_reads(proxy: str, ratio: str) -> Cell:
    """ratio (proxied / direct req/s) of GET /items/{id} through `proxy`."""
    def cell(results: dict) -> str:
        reads = results["reads"]
        if reads[proxy] is None:
            return f"{NO_FIGURE} ({reads.get(proxy + '_reason', 'not measured')[:50]})"
        return (f"{reads[ratio]} ({reads[proxy]['requests_per_second']} / "
                f"{reads['direct']['requests_per_second']} req/s)")
    return cell


def proxy_cpu(results: dict) -> str:
    reads = results["reads"]
    return " / ".join(str(reads[proxy]["cpu_ms_per_request"]) if reads.get(proxy) else NO_FIGURE
                      for proxy in ("through_gateway", "bare_flask", "nginx"))


def service_cpu(service: str) -> Cell:
    return lambda results: str(results["orders_1000_items"]["cpu_ms_per_order"][service])


def services(*runs: dict) -> list[str]:
    names = [name for run in runs for name in
             run.get("orders_1000_items", {}).get("cpu_ms_per_order", {})]
    return list(dict.fromkeys(names))


def rows(*runs: dict) -> list[tuple[str, Cell]]:
    return [
        ("paid orders/s (hot item / 1,000 items)",
         values_at("orders_hot_item.orders_per_second", "orders_1000_items.orders_per_second")),
        ("database floor, saga's 6 transactions (hot / spread)",
         values_at("floor.orders_hot_item.orders_per_second",
                 "floor.orders_1000_items.orders_per_second")),
        ("database floor, one transaction (hot / spread)",
         values_at("floor.one_transaction_hot_item.orders_per_second",
                 "floor.one_transaction_1000_items.orders_per_second")),
        ("orders/s / floor (spread, saga's transactions)", saga_share),
        ("CPU ms per paid order, all services (hot / spread)",
         values_at("orders_hot_item.cpu_ms_per_order_total",
                 "orders_1000_items.cpu_ms_per_order_total")),
        *((f"  {service} (spread)", service_cpu(service)) for service in services(*runs)),
        ("CPU ms per paid order beside them: PostgreSQL / load generator (spread)",
         values_at("orders_1000_items.cpu_ms_per_order_beside.postgresql",
                   "orders_1000_items.cpu_ms_per_order_beside.load generator")),
        ("POST /orders p50 / p95 / p99 ms (spread)",
         values_at(*(f"orders_1000_items.{p}_ms" for p in ("p50", "p95", "p99")))),
        ("failed orders; stock adds up (hot / spread)", failures),
        ("GET /items/{id} through the gateway / straight to estoque",
         proxy_reads("through_gateway", "ratio")),
        ("GET /items/{id} through a bare Flask proxy / straight to estoque",
         proxy_reads("bare_flask", "bare_flask_ratio")),
        ("GET /items/{id} through nginx / straight to estoque",
         proxy_reads("nginx", "nginx_ratio")),
        ("proxy CPU ms per GET /items/{id} (gateway / bare Flask / nginx)", proxy_cpu),
        ("GET /orders?limit=50 ms, 10k / 1M orders",
         values_at("listing.10k.limit_50", "listing.1M.limit_50")),
        ("GET /orders?status=paid&limit=50 ms, 10k / 1M orders",
         values_at("listing.10k.paid_limit_50", "listing.1M.paid_limit_50")),
        *catalog_rows()]


def catalog_rows() -> list[tuple[str, Cell]]:
    """The catalog's reads (loadtest/catalog_search.py), p50 ms at 10k and 1M items where both
    were measured."""
    at_both = [(f"GET /items?q= {what} term p50 ms, 10k / 1M items", read)
               for what, read in (("rare", "rare"), ("absent", "absent"), ("common", "common"))]
    at_both += [("GET /items?limit=50 p50 ms, 10k / 1M items", "limit_50"),
                ("GET /items?limit=50&sort=price p50 ms, 10k / 1M items", "price_limit_50")]
    return [*((label, values_at(f"catalog.10k.{read}.p50_ms", f"catalog.1M.{read}.p50_ms"))
              for label, read in at_both),
            ("GET /items?q= p95 ms, rare / absent / common term, 1M items",
             values_at(*(f"catalog.1M.{read}.p95_ms" for read in ("rare", "absent", "common")))),
            ("GET /items?q= 1 char p50 ms, common / absent, 1M items",
             values_at("catalog.1M.one_char_common.p50_ms", "catalog.1M.one_char_absent.p50_ms")),
            ("GET /items?q= 2 chars p50 ms, rare / absent / common, 1M items",
             values_at(*(f"catalog.1M.two_chars_{read}.p50_ms"
                         for read in ("rare", "absent", "common"))))]


def cell(accessor: Cell, results: dict) -> str:
    """The row's figure from one run, or NO_FIGURE where that run lacks it."""
    try:
        return accessor(results)
    except (KeyError, TypeError, ZeroDivisionError):
        return NO_FIGURE


def aligned(lines: list[tuple[str, ...]]) -> list[str]:
    """Columns padded to their widest value, two spaces apart (the last one unpadded)."""
    widths = [max(len(line[column]) for line in lines) for column in range(len(lines[0]) - 1)]
    return ["  ".join([*(value.ljust(width) for value, width in zip(line, widths,
                                                                    strict=False)), line[-1]])
            for line in lines]


def table(results: dict, baseline: dict | None = None) -> str:
    """One row per figure: the baseline's (when given) beside this run's."""
    runs = {"now": results} if baseline is None else {"before": baseline, "now": results}
    lines = [("", *(f"{name} ({run.get('commit', '?')})" for name, run in runs.items()))]
    lines += [(label, *(cell(accessor, run) for run in runs.values()))
              for label, accessor in rows(*runs.values())]
    text_lines = aligned(lines)
    if baseline and (baseline.get("machine"), baseline.get("clients")) != (
            results.get("machine"), results.get("clients")):
        text_lines.append(f"(before: {baseline.get('machine')}, "
                          f"{baseline.get('clients')} clients)")
    return "\n".join(text_lines)


def load_baseline(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.is_file() else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=600, help="orders per shape")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=int, default=10, help="per read phase and floor")
    parser.add_argument("--skip-million", action="store_true",
                        help="measure the order listing and the catalog at 10k rows only")
    parser.add_argument("--baseline", type=Path, default=BASELINE,
                        help="an earlier run's JSON, shown beside this one (default: %(default)s)")
    args = parser.parse_args()
    admin = token("bench", "admin")
    env = {"JWT_SECRET": SECRET, "PAYMENT_DECLINE_RATE": "0",
           "RATE_LIMIT_DEFAULT": "100000/minute", "RATE_LIMIT_ANONYMOUS": "1000000/minute"}
    results: dict = {"date": datetime.now(UTC).isoformat(timespec="seconds"),
                     "commit": commit_id(), "cores": os.cpu_count(),
                     "machine": f"{host.machine()}, {os.cpu_count()} cores",
                     "clients": args.clients}
    with fresh_platform(Path(tempfile.mkdtemp(prefix="veloz-bench-")), "_bench",
                        env) as platform:
        results["reads"] = reads(platform, new_item(platform, "Vitrine", 1, 1), args.clients,
                                 args.seconds)
        results["orders_hot_item"] = order_phase(platform, admin, 1, args.orders, args.clients)
        results["orders_1000_items"] = order_phase(platform, admin, 1000, args.orders,
                                                   args.clients)
        results["listing"] = {"10k": listing_cost(platform, 10_000)}
        if not args.skip_million:
            results["listing"]["1M"] = listing_cost(platform, 1_000_000)
        else:
            results["listing"]["1M"] = {"limit_50": None, "paid_limit_50": None}
        results["catalog"] = {"10k": catalog_cost(platform, 10_000)}
        if not args.skip_million:
            results["catalog"]["1M"] = catalog_cost(platform, 1_000_000)
    results["floor"] = {
        "orders_hot_item": measure_floor(args.clients, args.seconds, 1),
        "orders_1000_items": measure_floor(args.clients, args.seconds, 1000),
        "one_transaction_hot_item": measure_floor(args.clients, args.seconds, 1, "one"),
        "one_transaction_1000_items": measure_floor(args.clients, args.seconds, 1000, "one")}
    RESULTS.mkdir(parents=True, exist_ok=True)
    stem = RESULTS / f"{results['date'][:10]}-{results['commit']}"
    stem.with_suffix(".json").write_text(json.dumps(results, indent=2) + "\n")
    chart(results, stem.with_suffix(".png"))
    baseline = load_baseline(args.baseline)
    if baseline is None:
        print(f"no baseline at {args.baseline}: this run's figures only")
    print(table(results, baseline))
    print(f"\n{stem}.json and .png")


if __name__ == "__main__":
    main()
