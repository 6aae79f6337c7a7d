"""Buyers under faults: what a person placing orders notices while a process dies, restarts or
freezes. Shared by the fault tests (tests/e2e/test_staying_up.py) and `loadtest/faults.py`,
which prints the same figures for a longer run.

Every figure is what a buyer sees through the gateway: the answers by status, the longest
stretch with no paid order, and afterwards whether the books add up (stock sold, payments
standing and paid orders all agree). Traffic goes to 127.0.0.1 only; every loop is bounded in
time and stops by itself.
"""

import contextlib
import itertools
import os
import signal
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urljoin

import requests
from sqlalchemy import create_engine, text

from veloz.data.db import sqlalchemy_url

APPROVING_CARD = "4242424242424242"
MID_SAGA = ("pending", "stock_reserved")


@dataclass
class Answer:
    status: int  # 0: no answer at all (refused, reset, timed out)
    done: float  # seconds since the load started


@dataclass
class LoadResult:
    answers: list[Answer]
    seconds: float
    events: list[tuple[float, str]] = field(default_factory=list)

    def by_status(self) -> dict[int, int]:
        return dict(sorted(Counter(answer.status for answer in self.answers).items()))

    def longest_without(self, status: int = 201) -> float:
        """The longest stretch of the run in which no answer had `status`, counting the
        stretches before the first and after the last one."""
        marks = sorted(answer.done for answer in self.answers if answer.status == status)
        edges = [0.0, *marks, self.seconds]
        return max(later - earlier for earlier, later in itertools.pairwise(edges))

    def first_after(self, seconds: float, status: int = 201) -> float:
        """When the first answer with `status` came after `seconds` (the run's end if none)."""
        return min((answer.done for answer in self.answers
                    if answer.status == status and answer.done > seconds), default=self.seconds)

    def summary(self) -> dict:
        return {"answers": self.by_status(), "seconds": round(self.seconds, 2),
                "longest_without_a_paid_order_s": round(self.longest_without(), 2),
                "events": [(round(at, 2), what) for at, what in self.events]}


class Buyers:
    """`count` threads posting one-unit orders of `item_id` on keep-alive sessions of their
    own, until `seconds` have passed and every scheduled fault has run to its end (a fault
    that takes long, such as a restart, is under load the whole time).
    `at(seconds, what, action)` schedules a fault."""

    def __init__(self, gateway: str, token: str, item_id: int, count: int = 16,
                 seconds: float = 12.0, timeout: float = 20.0):
        self.gateway, self.token, self.item_id = gateway, token, item_id
        self.count, self.seconds, self.timeout = count, seconds, timeout
        self._schedule: list[tuple[float, str, Callable[[], None]]] = []
        self._answers: list[Answer] = []
        self._events: list[tuple[float, str]] = []
        self._lock = threading.Lock()
        self._faults_done = threading.Event()

    def at(self, seconds: float, what: str, action: Callable[[], None]) -> "Buyers":
        self._schedule.append((seconds, what, action))
        return self

    def run(self) -> LoadResult:
        self._started = time.monotonic()
        threads = [threading.Thread(target=self._buy, daemon=True) for _ in range(self.count)]
        for thread in threads:
            thread.start()
        try:
            self._run_schedule()
        finally:
            self._faults_done.set()
        for thread in threads:
            thread.join(self.seconds + self.timeout + 5)
        return LoadResult(self._answers, self._now(), self._events)

    def _now(self) -> float:
        return time.monotonic() - self._started

    def _run_schedule(self) -> None:
        for seconds, what, action in sorted(self._schedule, key=lambda entry: entry[0]):
            time.sleep(max(0.0, seconds - self._now()))
            self._events.append((self._now(), what))
            action()

    def _buy(self) -> None:
        body = {"customer": "Carga", "items": [{"item_id": self.item_id, "quantity": 1}],
                "payment": {"method": "credit_card", "card_number": APPROVING_CARD}}
        headers = {"Authorization": f"Bearer {self.token}"}
        with requests.Session() as session:
            while self._now() < self.seconds or not self._faults_done.is_set():
                try:
                    status = session.post(f"{self.gateway}/orders", json=body, headers=headers,
                                          timeout=self.timeout).status_code
                except requests.RequestException:
                    status = 0
                with self._lock:
                    self._answers.append(Answer(status, self._now()))


def server_workers(master_pid: int) -> list[int]:
    """The worker processes a server's main process (granian's or gunicorn's) started."""
    children = Path(f"/proc/{master_pid}/task/{master_pid}/children")
    try:
        return [int(pid) for pid in children.read_text().split()]
    except OSError:
        return []


def kill_server_workers(master_pid: int) -> None:
    """SIGKILL every worker of a server, as a crash would; its main process respawns them."""
    signal_each(server_workers(master_pid), signal.SIGKILL)


def postgres_processes(server_url: str) -> list[int]:
    """The PostgreSQL server behind `server_url`: its postmaster (from postmaster.pid in the
    data directory the server reports) and every process the postmaster started."""
    engine = create_engine(sqlalchemy_url(server_url))
    with engine.connect() as connection:
        data_dir = connection.execute(text("SHOW data_directory")).scalar_one()
    engine.dispose()
    postmaster = int((Path(data_dir) / "postmaster.pid").read_text().split()[0])
    return [postmaster, *server_workers(postmaster)]


def signal_each(pids: list[int], signum: int) -> None:
    """A process that ended meanwhile (a backend whose client hung up) is skipped."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)


def paged(url: str, headers: dict[str, str], timeout: float = 10) -> list[dict]:
    """Every row of a keyset-paged listing, following its Link: rel="next" headers."""
    rows: list[dict] = []
    next_url: str | None = url
    while next_url:
        response = _get_past_refusals(next_url, headers, timeout)
        response.raise_for_status()
        rows += response.json()
        following = response.links.get("next", {}).get("url")  # relative: /orders?after=…
        next_url = urljoin(next_url, following) if following else None
    return rows


def _get_past_refusals(url: str, headers: dict[str, str], timeout: float,
                       seconds: float = 30) -> requests.Response:
    """A GET asked again while the gateway answers 503 (a breaker still open after a fault),
    for at most `seconds`."""
    deadline = time.monotonic() + seconds
    response = requests.get(url, headers=headers, timeout=timeout)
    while response.status_code == 503 and time.monotonic() < deadline:
        time.sleep(0.5)
        response = requests.get(url, headers=headers, timeout=timeout)
    return response


@dataclass(frozen=True)
class Books:
    paid_orders: int
    orders_mid_saga: int
    approved_payments: int
    units_sold: int
    units_reserved: int

    @property
    def agree(self) -> bool:
        return (self.orders_mid_saga == 0 and self.units_reserved == 0
                and self.paid_orders == self.approved_payments == self.units_sold)


def books(gateway: str, headers: dict[str, str], item_id: int, stocked: int) -> Books:
    """The books of one item's one-unit orders: orders by status, the approved payments of
    those orders, and the item's stock."""
    mine = [order for order in paged(f"{gateway}/orders?limit=500", headers)
            if order["items"][0]["item_id"] == item_id]
    ids = {order["id"] for order in mine}
    approved = [payment for payment in paged(f"{gateway}/payments?status=approved&limit=500",
                                             headers) if payment["order_id"] in ids]
    item = _get_past_refusals(f"{gateway}/items/{item_id}", headers, 10).json()
    return Books(paid_orders=sum(order["status"] == "paid" for order in mine),
                 orders_mid_saga=sum(order["status"] in MID_SAGA for order in mine),
                 approved_payments=len(approved), units_sold=stocked - item["quantity"],
                 units_reserved=item["reserved"])


def wait_until(condition: Callable[[], bool], seconds: float, every: float = 0.2) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(every)
    return condition()


class SlowClients:
    """`count` raw connections to 127.0.0.1:`port` holding a server up the way slow (or
    hostile) clients do: each sends `what` whole at once (a head, then a body that stops
    short) or, with `trickle`, a byte of it every `every` seconds from a thread of their own,
    as long as the block lasts. The block gets the sockets; on the way out the trickling
    stops and every socket is closed."""

    def __init__(self, port: int, what: bytes, count: int = 64, *, trickle: bool,
                 every: float = 0.5):
        self.port, self.what, self.count = port, what, count
        self.trickle, self.every = trickle, every
        self._sockets: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._send_bytes, daemon=True)

    def __enter__(self) -> list[socket.socket]:
        self._sockets = [socket.create_connection(("127.0.0.1", self.port), timeout=5)
                         for _ in range(self.count)]
        if self.trickle:
            self._thread.start()
        else:
            for sock in self._sockets:
                sock.sendall(self.what)
        return self._sockets

    def __exit__(self, *_exc) -> None:
        self._stop.set()
        if self.trickle:
            self._thread.join(5)
        for sock in self._sockets:
            sock.close()

    def _send_bytes(self) -> None:
        for offset in range(len(self.what)):
            for sock in self._sockets:
                with contextlib.suppress(OSError):  # the server may cut a slow one off
                    sock.sendall(self.what[offset:offset + 1])
            if self._stop.wait(self.every):
                return
