"""Orders and payments are two books; no route a person can take makes them disagree, and the
recovery worker's reconciliation counts it when something else does."""

import time

import pytest
import requests
from sqlalchemy import create_engine, text

pytestmark = pytest.mark.e2e
PLATFORM_ENV = {"RECONCILE_INTERVAL_SECONDS": "0.5", "RECONCILE_GRACE_SECONDS": "0"}


def _paid_order(gateway, admin, customer):
    item = requests.post(f"{gateway}/items", headers=admin, timeout=10,
                         json={"name": "Caneca", "quantity": 5, "price": 30}).json()
    placed = requests.post(f"{gateway}/orders", headers=customer, timeout=30, json={
        "customer": "Ana", "items": [{"item_id": item["id"], "quantity": 1}]})
    assert placed.status_code == 201, placed.text
    return item, placed.json()["order"]


def test_an_admin_refund_of_a_paid_orders_payment_is_sent_to_the_order(gateway, admin,
                                                                        customer):
    item, order = _paid_order(gateway, admin, customer)

    refund = requests.post(f"{gateway}/payments/{order['payment_id']}/refund", headers=admin,
                           timeout=10)

    assert refund.status_code == 409, refund.text
    assert refund.headers["Content-Type"] == "application/problem+json"
    assert refund.json()["order_route"] == f"/orders/{order['id']}/cancel"
    payment = requests.get(f"{gateway}/payments/{order['payment_id']}", headers=admin,
                           timeout=10).json()
    assert payment["status"] == "approved"
    still = requests.get(f"{gateway}/orders/{order['id']}", headers=admin, timeout=10).json()
    assert still["status"] == "paid"
    assert requests.get(f"{gateway}/items/{item['id']}", timeout=10).json()["quantity"] == 4


def test_the_order_route_named_refunds_and_restocks_together(gateway, admin, customer):
    item, order = _paid_order(gateway, admin, customer)

    cancelled = requests.post(f"{gateway}/orders/{order['id']}/cancel", headers=admin,
                              timeout=30)

    assert cancelled.json()["status"] == "cancelled"
    payment = requests.get(f"{gateway}/payments/{order['payment_id']}", headers=admin,
                           timeout=10).json()
    assert payment["status"] == "refunded"
    assert requests.get(f"{gateway}/items/{item['id']}", timeout=10).json()["quantity"] == 5


def test_reconciliation_counts_a_refund_made_behind_the_orders_back(platform, gateway, admin,
                                                                    customer):
    _, order = _paid_order(gateway, admin, customer)
    engine = create_engine(_pagamentos_db(platform))
    with engine.begin() as connection:
        connection.execute(text("UPDATE payments SET status = 'refunded' WHERE id = :id"),
                           {"id": order["payment_id"]})
    engine.dispose()

    metrics = f"http://127.0.0.1:{platform.metrics_ports['pedidos.recovery']}/metrics"
    line = 'pedidos_books_disagreements{kind="paid_without_payment"} 1.0'
    deadline = time.monotonic() + 20
    while line not in requests.get(metrics, timeout=5).text:
        assert time.monotonic() < deadline, "the reconciliation never counted the mismatch"
        time.sleep(0.3)


def _pagamentos_db(platform) -> str:
    from veloz.data.db import sqlalchemy_url

    return sqlalchemy_url(platform.database_urls["pagamentos-service"])
