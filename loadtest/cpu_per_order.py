"""CPU per paid order, per service: the figure that stays steady on a shared machine.

Starts the platform on free ports (as `make up` runs it: the gateway under gunicorn with 2
workers, the others under granian with 1 worker x 4 threads, the background workers beside
them), seeds one item with plenty of stock, warms up, then has CLIENTS threads post one-item
orders through the gateway with the approving test card until ORDERS are placed. CPU = the
growth of utime+stime (from /proc) of every process of each service over that window, divided
by the paid orders. Beside the services, and not in their total, the same for what shares the
machine with them: the PostgreSQL server (its main process and every backend, when it runs on
this machine) and this load generator's own process. Traffic goes to 127.0.0.1 only and the
run is bounded in orders and time.

    .venv/bin/python loadtest/cpu_per_order.py [--orders 600] [--clients 16]
"""

import argparse
import json
import os
import random
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import requests

from veloz.dev.devstack import Platform, free_service_ports, server_url_from_environment
from veloz.dev.faultload import postgres_processes
from veloz.net.client import ClientPolicy, ServiceClient

SECRET = "cpu-bench-" + "k" * 40
APPROVING_CARD = "4242424242424242"
TICKS = os.sysconf("SC_CLK_TCK")
# What shares the machine with the services, measured beside them (not in their total).
DATABASE, LOAD_GENERATOR = "postgresql", "load generator"


def cpu_seconds(group: int) -> float:
    """utime+stime of every live process whose process group is `group`."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(entry)
        if fields and int(fields[2]) == group:  # fields[0] is the state; pgrp the 5th of stat
            total += _spent(fields)
    return total


def cpu_seconds_of(pids: list[int]) -> float:
    """utime+stime of each of `pids` still alive."""
    return sum(_spent(fields) for pid in pids if (fields := _stat_fields(Path(f"/proc/{pid}"))))


def _stat_fields(process: Path) -> list[str]:
    """A process's stat fields from its state on; none when it is gone."""
    try:
        return (process / "stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return []


def _spent(fields: list[str]) -> float:
    return (int(fields[11]) + int(fields[12])) / TICKS


def database_cpu_seconds(server_url: str) -> float | None:
    """utime+stime of the PostgreSQL server's processes now (postmaster and backends); None
    when the server runs on another machine (its data directory is not here)."""
    try:
        return cpu_seconds_of(postgres_processes(server_url))
    except OSError:
        return None


def snapshot(platform: Platform) -> dict[str, float]:
    """CPU seconds so far of each service, and beside them of PostgreSQL (when it runs here)
    and of this load generator."""
    spent = {name: cpu_seconds(process.pid) for name, process in platform.processes.items()}
    database = database_cpu_seconds(platform.server_url)
    if database is not None:
        spent[DATABASE] = database
    spent[LOAD_GENERATOR] = time.process_time()
    return spent


def place_orders(gateway: str, token: str, item_ids: list[int], count: int, clients: int,
                 deadline: float) -> list[tuple[int, float]]:
    """(status, seconds) of `count` one-item orders, each for an item drawn from `item_ids`,
    posted by `clients` threads on kept connections; stops at `deadline`.

    Through the platform's own pooled client (veloz.net), with nothing sent twice: this
    process shares the two cores with the platform, and `requests` took about 1 ms of them per
    order, a tenth of what an order costs the machine (pgbench, which sets the database floor
    the orders/s are compared with, is written in C)."""
    draw = random.Random(7)  # noqa: S311 - a load shape
    orders = ServiceClient("api-gateway", gateway, ClientPolicy(
        read_timeout=30, retries=0, connect_budget_seconds=0, retry_statuses=False,
        pool_size=clients))
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    def one(_n: int) -> tuple[int, float]:
        if time.monotonic() > deadline:
            return 0, 0.0
        body = {"customer": "Carga", "items": [{"item_id": draw.choice(item_ids),
                                                "quantity": 1}],
                "payment": {"method": "credit_card", "card_number": APPROVING_CARD}}
        started = time.perf_counter()
        answer = orders.request("POST", "/orders", headers=headers,
                                body=json.dumps(body).encode())
        return answer.status, time.perf_counter() - started

    with ThreadPoolExecutor(max_workers=clients) as pool:
        return list(pool.map(one, range(count)))


def measure_orders(platform: Platform, token: str, item_ids: list[int], orders: int,
                   clients: int) -> dict:
    """Warm up, then place `orders` and report rate, latency and CPU per paid order."""
    gateway = platform.url("api-gateway")
    warm = place_orders(gateway, token, item_ids, clients * 4, clients, time.monotonic() + 60)
    before, started = snapshot(platform), time.perf_counter()
    results = place_orders(gateway, token, item_ids, orders, clients, time.monotonic() + 300)
    elapsed, after = time.perf_counter() - started, snapshot(platform)
    paid = sum(1 for status, _ in results if status == 201)
    latencies = sorted(seconds for status, seconds in results if status == 201)
    spent = {name: round(1000 * (after[name] - before[name]) / max(paid, 1), 2)
             for name in before if name in after}
    beside = {name: spent.pop(name) for name in (DATABASE, LOAD_GENERATOR) if name in spent}
    return {"paid": paid, "failed": len(results) - paid, "seconds": round(elapsed, 2),
            "paid_total": paid + sum(1 for status, _ in warm if status == 201),
            "orders_per_second": round(paid / elapsed, 1),
            **{f"p{p}_ms": _percentile(latencies, p) for p in (50, 95, 99)},
            "cpu_ms_per_order": spent,
            "cpu_ms_per_order_total": round(sum(spent.values()), 2),
            "cpu_ms_per_order_beside": beside}


def _percentile(ordered: list[float], p: int) -> float | None:
    return round(1000 * ordered[int(p / 100 * (len(ordered) - 1))], 1) if ordered else None


def token(subject: str, role: str) -> str:
    """A token the platform's gateway takes (it runs with JWT_SECRET = SECRET)."""
    from gateway.auth import TokenAuthority
    from gateway.config import JwtSettings

    return TokenAuthority(JwtSettings(jwt_secret=SECRET)).mint(subject, [role])


def new_item(platform: Platform, name: str, quantity: int, price: float) -> int:
    """An item made through the platform's gateway, by an admin; its id."""
    return requests.post(f"{platform.url('api-gateway')}/items", timeout=10,
                         headers={"Authorization": f"Bearer {token('bench', 'admin')}"},
                         json={"name": name, "quantity": quantity, "price": price}).json()["id"]


def measure(platform: Platform, orders: int, clients: int) -> dict:
    item_id = new_item(platform, "Carga", 1_000_000, 10.5)
    return measure_orders(platform, token("bench", "admin"), [item_id], orders, clients)


@contextmanager
def fresh_platform(run_dir: Path, suffix: str, env: dict[str, str]) -> Iterator[Platform]:
    """The whole platform on free ports with freshly made `*{suffix}` databases; stopped on
    the way out, whatever happens."""
    platform = Platform(server_url=server_url_from_environment(),
                        ports=free_service_ports(), database_suffix=suffix,
                        env=env, log_dir=run_dir / "logs", run_dir=run_dir)
    platform.migrate(fresh=True)
    platform.clear_metrics()
    platform.start()
    try:
        yield platform
    finally:
        platform.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=600)
    parser.add_argument("--clients", type=int, default=16)
    args = parser.parse_args()
    env = {"JWT_SECRET": SECRET, "PAYMENT_DECLINE_RATE": "0",
           "RATE_LIMIT_DEFAULT": "100000/minute"}
    with fresh_platform(Path(tempfile.mkdtemp(prefix="veloz-cpu-")), "_cpu", env) as platform:
        print(json.dumps(measure(platform, args.orders, args.clients), indent=2))


if __name__ == "__main__":
    main()
