"""A service's database becomes unreachable, then comes back: clear 503s meanwhile, no 500,
and the platform heals by itself (idle pooled connections are checked before use)."""

import time
from contextlib import contextmanager

import pytest
import requests
from sqlalchemy import create_engine, text

from veloz.data.db import sqlalchemy_url

pytestmark = pytest.mark.e2e


@contextmanager
def database_cut_off(server_url: str, database: str):
    """Refuse new connections to `database` and drop the open ones, until the block ends."""
    engine = create_engine(sqlalchemy_url(server_url), isolation_level="AUTOCOMMIT")
    with engine.connect() as admin:
        admin.execute(text(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS false'))
        admin.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                           "WHERE datname = :name"), {"name": database})
        try:
            yield
        finally:
            admin.execute(text(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true'))
    engine.dispose()


def _eventually(check, seconds=20):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.5)
    return False


def _buy(gateway, admin, item_id):
    return requests.post(f"{gateway}/orders", headers=admin, timeout=30, json={
        "customer": "Sem banco", "items": [{"item_id": item_id, "quantity": 1}]})


def test_stock_database_outage_answers_503_and_heals(platform, gateway, admin,
                                                     postgres_server_url):
    item = requests.post(f"{gateway}/items", headers=admin, timeout=10, json={
        "name": "Chinelo", "quantity": 5, "price": 29.9}).json()
    estoque = platform.url("estoque-service")

    with database_cut_off(postgres_server_url, "estoque_db_e2e"):
        health = requests.get(f"{gateway}/health", timeout=10)
        ready = requests.get(f"{estoque}/readyz", timeout=10)
        listing = requests.get(f"{gateway}/items", timeout=10)
        hold = requests.post(f"{estoque}/reservations", timeout=10, json={
            "order_id": 9000, "items": [{"item_id": item["id"], "quantity": 1}]})
        order = _buy(gateway, admin, item["id"])

    assert health.status_code == 503
    assert health.json()["backends"]["estoque"] == "unhealthy"
    assert ready.status_code == 503
    assert listing.status_code == 503
    assert listing.headers["Content-Type"] == "application/problem+json"
    assert "SELECT" not in listing.text
    assert hold.status_code == 503  # no new connection to be had: a problem, not a 500
    assert hold.headers["Content-Type"] == "application/problem+json"
    assert order.status_code == 503
    assert order.json()["order"]["status"] == "failed"
    assert _eventually(lambda: requests.get(f"{gateway}/health", timeout=10).ok)
    assert _buy(gateway, admin, item["id"]).status_code == 201


def test_orders_database_outage_answers_503_not_500(platform, gateway, admin,
                                                    postgres_server_url):
    item = requests.post(f"{gateway}/items", headers=admin, timeout=10, json={
        "name": "Boné", "quantity": 5, "price": 19.9}).json()

    with database_cut_off(postgres_server_url, "pedidos_db_e2e"):
        order = _buy(gateway, admin, item["id"])
        listing = requests.get(f"{gateway}/orders", headers=admin, timeout=10)

    assert order.status_code == 503
    assert order.headers["Content-Type"] == "application/problem+json"
    assert listing.status_code == 503
    stock = requests.get(f"{gateway}/items/{item['id']}", timeout=10)
    assert stock.status_code == 200, stock.text
    assert (stock.json()["quantity"], stock.json()["reserved"]) == (5, 0)
    assert _eventually(lambda: _buy(gateway, admin, item["id"]).status_code == 201)
