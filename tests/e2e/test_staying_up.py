"""What a buyer notices while processes crash, restart or wait on a frozen database: 16 buyers
post orders through the gateway the whole time (veloz.dev.faultload), on 127.0.0.1, bounded runs.
`loadtest/faults.py` prints the same figures for longer runs."""

import signal

import pytest
import requests

from tests.e2e.conftest import JWT_TEST_SECRET, mint, start_platform
from veloz.dev.faultload import (
    Buyers,
    books,
    kill_server_workers,
    postgres_processes,
    signal_each,
    wait_until,
)

pytestmark = pytest.mark.e2e
STOCKED = 100_000


@pytest.fixture(scope="module")
def platform(postgres_server_url, tmp_path_factory):
    platform = start_platform(postgres_server_url, tmp_path_factory, only=None,
                              database_suffix="_staying_up", JWT_SECRET=JWT_TEST_SECRET,
                              RATE_LIMIT_DEFAULT="1000000/minute", PAYMENT_DECLINE_RATE="0",
                              RECOVERY_GRACE_SECONDS="2", RECOVERY_INTERVAL_SECONDS="0.5")
    yield platform
    platform.stop()


@pytest.fixture(scope="module")
def admin():
    return {"Authorization": f"Bearer {mint('admin', 'ops')}"}


@pytest.fixture
def buyers(platform, admin):
    """Buyers of a fresh item, and a check of that item's books once every order settled."""
    gateway = platform.url("api-gateway")
    item = requests.post(f"{gateway}/items", headers=admin, timeout=10, json={
        "name": "Carga", "quantity": STOCKED, "price": 10.5}).json()

    def settled_books():
        """The books once they agree, or as they stand after 60 s. A refund the saga could
        not confirm (its order failed with `compensation_pending`) is finished by the
        recovery worker a few seconds later: the books agree again, they are not exact at
        every instant."""
        wait_until(lambda: books(gateway, admin, item["id"], STOCKED).agree, 60, 0.5)
        return books(gateway, admin, item["id"], STOCKED)

    load = Buyers(gateway, mint("admin", "buyers"), item["id"], count=16, seconds=8.0)
    return load, settled_books


def test_killed_server_workers_cost_a_blip_not_an_outage(platform, buyers):
    load, settled_books = buyers
    for at, service in ((2.0, "estoque-service"), (4.0, "pedidos-service"),
                        (6.0, "pagamentos-service")):
        load.at(at, f"kill {service}",
                lambda service=service: kill_server_workers(platform.processes[service].pid))

    result = load.run()

    answers = result.by_status()
    assert answers.get(201, 0) > 100, result.summary()
    assert not {0, 500} & set(answers), result.summary()
    assert result.longest_without(201) <= 1.5, result.summary()
    assert settled_books().agree, settled_books()


def test_restart_replaces_every_process_and_every_order_is_paid(platform, buyers):
    load, settled_books = buyers
    old = {name: process.pid for name, process in platform.processes.items()}
    load.seconds = 2.0  # the buyers go on until the restart is over
    load.at(1.0, "restart", platform.restart)

    result = load.run()

    assert set(result.by_status()) == {201}, result.summary()
    assert result.longest_without(201) <= 1.5, result.summary()
    assert all(platform.processes[name].pid != pid for name, pid in old.items())
    assert platform.exited() == []
    assert settled_books().agree, settled_books()


def test_a_database_paused_five_seconds_answers_no_500_and_orders_resume(platform, buyers):
    load, settled_books = buyers
    frozen = postgres_processes(platform.server_url)
    load.seconds = 10.0
    load.at(2.0, "freeze", lambda: signal_each(frozen, signal.SIGSTOP))
    load.at(7.0, "thaw", lambda: signal_each(frozen, signal.SIGCONT))
    try:
        result = load.run()
    finally:
        signal_each(frozen, signal.SIGCONT)

    answers = result.by_status()
    assert not {0, 500} & set(answers), result.summary()
    assert result.first_after(7.0, 201) - 7.0 <= 3.0, result.summary()
    assert settled_books().agree, settled_books()
