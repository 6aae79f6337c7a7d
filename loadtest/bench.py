"""`make bench`: start the platform on free ports, drive it with Locust, print the figures.

Everything runs on this machine (127.0.0.1), bounded in users and seconds, and stops by
itself. Figures are ratios measured in the same run, since absolute numbers depend on load.
"""

import argparse
import csv
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import requests
from cpu_per_order import fresh_platform

from veloz.devstack import Platform

HERE = Path(__file__).resolve().parent
SECRET = "bench-" + "k" * 40


def seed_items(gateway: str, headers: dict, count: int = 5) -> list[int]:
    body = {"name": "Carga", "quantity": 1_000_000, "price": 10.5}
    return [requests.post(f"{gateway}/items", json=body, headers=headers, timeout=10).json()["id"]
            for _ in range(count)]


def run_locust(host: str, tags: str, users: int, seconds: int, env: dict, out: Path) -> dict:
    prefix = out / f"{tags}-{host.rsplit(':', 1)[1]}"
    with open(f"{prefix}.log", "w") as log:
        subprocess.run([sys.executable, "-m", "locust", "-f", str(HERE / "locustfile.py"),
                        "--headless", "--only-summary", "-u", str(users), "-r", str(users),
                        "-t", f"{seconds}s", "--host", host, "--tags", tags,
                        "--csv", str(prefix), "--stop-timeout", "5"],
                       env=env, check=False, timeout=seconds + 60, stdout=log, stderr=log)
    with open(f"{prefix}_stats.csv") as stats:
        aggregated = next(row for row in csv.DictReader(stats) if row["Name"] == "Aggregated")
    return {"rps": float(aggregated["Requests/s"]), "p50": float(aggregated["50%"]),
            "p95": float(aggregated["95%"]), "failures": int(aggregated["Failure Count"]),
            "requests": int(aggregated["Request Count"])}


def report(name: str, figures: dict) -> None:
    print(f"{name:<34} {figures['rps']:>8.1f} req/s   p50 {figures['p50']:>5.0f} ms   "
          f"p95 {figures['p95']:>5.0f} ms   {figures['requests']} requests, "
          f"{figures['failures']} failures")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--seconds", type=int, default=20)
    args = parser.parse_args()
    run_dir = Path(tempfile.mkdtemp(prefix="veloz-bench-"))
    env = {"JWT_SECRET": SECRET, "PAYMENT_DECLINE_RATE": "0", "LOG_LEVEL": "WARNING"}
    with fresh_platform(run_dir, "_bench", env) as platform:
        measure(platform, args, run_dir)


def measure(platform: Platform, args, run_dir: Path) -> None:
    from gateway.auth import TokenAuthority
    from gateway.config import JwtSettings

    token = TokenAuthority(JwtSettings(jwt_secret=SECRET)).mint("bench", ["admin"])
    gateway, estoque = platform.url("api-gateway"), platform.url("estoque-service")
    items = seed_items(gateway, {"Authorization": f"Bearer {token}"})
    env = {**os.environ, "TOKEN": token, "ITEM_IDS": ",".join(map(str, items))}
    print(f"\n{args.users} users, {args.seconds} s each, on {os.cpu_count()} cores "
          f"(every service: {os.environ.get('WEB_CONCURRENCY', '2')} workers)\n")
    direct = run_locust(estoque, "browse", args.users, args.seconds, env, run_dir)
    proxied = run_locust(gateway, "browse", args.users, args.seconds, env, run_dir)
    orders = run_locust(gateway, "buy", args.users, args.seconds, env, run_dir)
    report("GET /items straight to estoque", direct)
    report("GET /items through the gateway", proxied)
    report("POST /orders through the gateway", orders)
    print(f"\ngateway throughput ratio (through / direct): {proxied['rps'] / direct['rps']:.2f}")
    print(f"orders per second through the gateway: {orders['rps']:.1f}")
    print(f"(Locust logs and CSVs: {run_dir})")


if __name__ == "__main__":
    main()
