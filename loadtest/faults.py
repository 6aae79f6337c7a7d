"""What a buyer notices when processes die, freeze or restart under load (veloz.dev.faultload).

Starts the whole platform on free ports (as `make up` runs it) with fresh `_faults` databases,
then runs one scenario and prints its figures as JSON:

  crash     16 buyers post orders for 12 s; every server worker of estoque, pedidos and
            pagamentos is SIGKILLed at 3, 6 and 9 s (their main processes respawn them)
  reads     16 readers GET /items/{id} through the gateway and 4 straight from estoque for
            6 s; both estoque workers SIGKILLed at 2 s: how long each path failed
  slow      /livez and orders from one client, before and while 64 slow clients hold
            connections to the gateway (32 trickle a head, 32 a POST body)
  restart   16 buyers from 0 s until the restart is over (at least 16 s); at 2 s every
            service and worker is replaced as `make restart` does (new server ready
            before the old one drains)
  pg-pause  16 buyers for 12 s; every PostgreSQL process SIGSTOPped from 3 to 8 s

Traffic goes to 127.0.0.1 only; every run is bounded in time.

    .venv/bin/python loadtest/faults.py crash
"""

import argparse
import json
import signal
import statistics
import tempfile
import threading
import time
from pathlib import Path

import requests
from cpu_per_order import SECRET, fresh_platform

from veloz.dev.devstack import Platform
from veloz.dev.faultload import (
    Buyers,
    SlowClients,
    books,
    kill_server_workers,
    postgres_processes,
    signal_each,
    wait_until,
)

ENV = {"JWT_SECRET": SECRET, "PAYMENT_DECLINE_RATE": "0",
       "RATE_LIMIT_DEFAULT": "1000000/minute", "RATE_LIMIT_ANONYMOUS": "1000000/minute"}
# What the slow clients of the `slow` scenario send: a head (with a header of 4,000 bytes to
# trickle), or a whole head of a POST promising 100 bytes of body and then only 12.
_POST = b"POST /orders HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
TRICKLED_HEAD = _POST + b"X-Slow: " + b"a" * 4000
STALLED_BODY = _POST + b"Content-Length: 100\r\n\r\n" + b'{"customer":'
SERVICES_KILLED = ("estoque-service", "pedidos-service", "pagamentos-service")


def admin_headers() -> dict[str, str]:
    from gateway.auth import TokenAuthority
    from gateway.config import JwtSettings

    token = TokenAuthority(JwtSettings(jwt_secret=SECRET)).mint("faults", ["admin"])
    return {"Authorization": f"Bearer {token}"}


def buy_under(platform: Platform, schedule, seconds: float = 12.0) -> dict:
    gateway, headers = platform.url("api-gateway"), admin_headers()
    stocked = 1_000_000
    item = requests.post(f"{gateway}/items", headers=headers, timeout=10, json={
        "name": "Carga", "quantity": stocked, "price": 10.5}).json()
    buyers = Buyers(gateway, headers["Authorization"].split()[1], item["id"], seconds=seconds)
    for seconds, what, action in schedule:
        buyers.at(seconds, what, action)
    result = buyers.run()
    wait_until(lambda: books(gateway, headers, item["id"], stocked).agree, 60, 1)
    return {**result.summary(), "books": books(gateway, headers, item["id"], stocked).__dict__}


def crash(platform: Platform) -> dict:
    return buy_under(platform, [
        (3.0 * (n + 1), f"SIGKILL every worker of {service}",
         lambda service=service: kill_server_workers(platform.processes[service].pid))
        for n, service in enumerate(SERVICES_KILLED)])


def restart(platform: Platform) -> dict:
    """`make restart` under load: every server surged then drained, every worker restarted."""
    return buy_under(platform, [(2.0, "make restart (Platform.restart)", platform.restart)],
                     seconds=16.0)


def pg_pause(platform: Platform) -> dict:
    pids: list[int] = []

    def freeze():
        pids.extend(postgres_processes(platform.server_url))
        signal_each(pids, signal.SIGSTOP)

    def thaw():
        signal_each(pids, signal.SIGCONT)

    return buy_under(platform, [(3.0, "SIGSTOP PostgreSQL", freeze),
                                (8.0, "SIGCONT PostgreSQL", thaw)])


def reads(platform: Platform) -> dict:
    headers = admin_headers()
    item = requests.post(f"{platform.url('api-gateway')}/items", headers=headers, timeout=10,
                         json={"name": "Leitura", "quantity": 1, "price": 1}).json()
    outcomes: dict[str, list[tuple[float, bool]]] = {"gateway": [], "direct": []}
    started, seconds = time.monotonic(), 6.0

    def read(path: str, base: str) -> None:
        with requests.Session() as session:
            while time.monotonic() - started < seconds:
                try:
                    ok = session.get(f"{base}/items/{item['id']}", timeout=5).status_code == 200
                except requests.RequestException:
                    ok = False
                outcomes[path].append((time.monotonic() - started, ok))

    threads = ([threading.Thread(target=read, args=("gateway", platform.url("api-gateway")))
                for _ in range(16)]
               + [threading.Thread(target=read, args=("direct", platform.url("estoque-service")))
                  for _ in range(4)])
    for thread in threads:
        thread.start()
    time.sleep(2.0)
    kill_server_workers(platform.processes["estoque-service"].pid)
    for thread in threads:
        thread.join(seconds + 10)
    return {path: _failures(answers) for path, answers in outcomes.items()}


def _latencies(gateway: str, headers: dict[str, str], item_id: int, calls: int = 10) -> dict:
    """Median and worst milliseconds of /livez and of a one-unit order (None: no answer)."""
    order = {"customer": "Outro", "items": [{"item_id": item_id, "quantity": 1}]}

    def timed(send) -> float | None:
        started = time.perf_counter()
        try:
            ok = send().status_code in (200, 201)
        except requests.RequestException:
            ok = False
        return round(1000 * (time.perf_counter() - started), 1) if ok else None

    livez = [timed(lambda: requests.get(f"{gateway}/livez", timeout=5)) for _ in range(calls)]
    orders = [timed(lambda: requests.post(f"{gateway}/orders", json=order, headers=headers,
                                          timeout=5)) for _ in range(calls)]
    return {name: {"median_ms": _median(values), "worst_ms": _worst(values),
                   "unanswered": values.count(None)}
            for name, values in (("livez", livez), ("order", orders))}


def _median(values: list[float | None]) -> float | None:
    answered = [value for value in values if value is not None]
    return statistics.median_low(answered) if answered else None


def _worst(values: list[float | None]) -> float | None:
    return max((value for value in values if value is not None), default=None)


def _failures(answers: list[tuple[float, bool]]) -> dict:
    failed = [at for at, ok in answers if not ok]
    return {"answers": len(answers), "failed": len(failed),
            "failing_for_s": round(max(failed) - min(failed), 2) if failed else 0.0}


def slow(platform: Platform) -> dict:
    """Latency of /livez and of an order from another client, before and while 64 slow
    clients hold connections to the gateway (32 trickling a head, 32 a body)."""
    gateway, headers = platform.url("api-gateway"), admin_headers()
    item = requests.post(f"{gateway}/items", headers=headers, timeout=10, json={
        "name": "Lenta", "quantity": 1000, "price": 3}).json()
    calm = _latencies(gateway, headers, item["id"])
    port = int(gateway.rsplit(":", 1)[1])
    with SlowClients(port, TRICKLED_HEAD, 32, trickle=True), \
            SlowClients(port, STALLED_BODY, 32, trickle=False):
        time.sleep(1.0)
        crowded = _latencies(gateway, headers, item["id"])
    return {"calm": calm, "with_64_slow_clients": crowded}


SCENARIOS = {"crash": crash, "reads": reads, "pg-pause": pg_pause, "slow": slow,
             "restart": restart}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("scenario", choices=sorted(SCENARIOS))
    args = parser.parse_args()
    run_dir = Path(tempfile.mkdtemp(prefix="veloz-faults-"))
    with fresh_platform(run_dir, "_faults", ENV) as platform:
        print(json.dumps({"scenario": args.scenario, "logs": str(run_dir / "logs"),
                          **SCENARIOS[args.scenario](platform)}, indent=2))


if __name__ == "__main__":
    main()
