"""The purchase flow as a client sees it: curl-like calls through the gateway on real ports."""

from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
import requests

pytestmark = pytest.mark.e2e
SHIRT = {"name": "Camiseta", "quantity": 50, "price": 59.90}


def _item(gateway, admin, **fields):
    response = requests.post(f"{gateway}/items", json={**SHIRT, **fields}, headers=admin,
                             timeout=10)
    assert response.status_code == 201, response.text
    return response.json()


def _order(gateway, headers, item_id, quantity=2, **extra):
    body = {"customer": "João Silva", "items": [{"item_id": item_id, "quantity": quantity}],
            **extra}
    return requests.post(f"{gateway}/orders", json=body, headers=headers, timeout=30)


def _stock(gateway, item_id):
    item = requests.get(f"{gateway}/items/{item_id}", timeout=10).json()
    return item["quantity"], item["reserved"]


def test_readme_flow_works_as_written(gateway, admin):
    health = requests.get(f"{gateway}/health", timeout=10)
    item = _item(gateway, admin)

    order = _order(gateway, admin, item["id"])

    assert health.json() == {"status": "healthy", "service": "api-gateway", "backends": {
        "pedidos": "healthy", "pagamentos": "healthy", "estoque": "healthy"}}
    assert requests.get(f"{gateway}/items", timeout=10).status_code == 200
    assert order.status_code == 201, order.text
    assert order.json()["order"]["status"] == "paid"
    assert Decimal(str(order.json()["order"]["total"])) == Decimal("119.80")
    assert order.json()["payment"]["status"] == "approved"
    listed = requests.get(f"{gateway}/orders", headers=admin, timeout=10).json()
    assert order.json()["order"]["id"] in [o["id"] for o in listed]
    assert _stock(gateway, item["id"]) == (48, 0)


def test_declined_card_puts_the_stock_back(gateway, admin, customer):
    item = _item(gateway, admin, quantity=5)

    order = _order(gateway, customer, item["id"],
                   payment={"method": "credit_card", "card_number": "4000000000000002"})

    assert order.status_code == 402
    assert order.json()["order"]["status"] == "payment_declined"
    assert order.json()["payment"]["decline_reason"] == "card_declined"
    assert "4000000000000002" not in order.text
    assert _stock(gateway, item["id"]) == (5, 0)


def test_short_stock_rejects_the_order_and_holds_nothing(gateway, admin, customer):
    item = _item(gateway, admin, quantity=1)

    order = _order(gateway, customer, item["id"], quantity=3)

    assert order.status_code == 409
    assert order.json()["order"]["status"] == "rejected"
    assert order.json()["errors"][0]["available"] == 1
    assert _stock(gateway, item["id"]) == (1, 0)


def test_cancelling_a_paid_order_refunds_and_restocks(gateway, admin, customer):
    item = _item(gateway, admin, quantity=5)
    order = _order(gateway, customer, item["id"]).json()

    cancelled = requests.post(f"{gateway}/orders/{order['order']['id']}/cancel",
                              headers=customer, timeout=30)

    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"
    payment = requests.get(f"{gateway}/payments/{order['payment']['id']}", headers=admin,
                           timeout=10).json()
    assert payment["status"] == "refunded"
    assert _stock(gateway, item["id"]) == (5, 0)
    events = requests.get(f"{gateway}/orders/{order['order']['id']}/events",
                          headers=customer, timeout=10).json()
    assert [e["status"] for e in events] == [
        "pending", "stock_reserved", "paid", "cancelled"]


def test_idempotency_key_makes_one_order(gateway, admin, customer):
    item = _item(gateway, admin, quantity=5)
    headers = {**customer, "Idempotency-Key": "checkout-7f3a"}

    first = _order(gateway, headers, item["id"], quantity=1)
    again = _order(gateway, headers, item["id"], quantity=1)

    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert _stock(gateway, item["id"]) == (4, 0)


def test_forty_buyers_of_five_units_exactly_five_pay(gateway, admin):
    item = _item(gateway, admin, quantity=5)

    def buy(_):
        return _order(gateway, admin, item["id"], quantity=1).status_code

    with ThreadPoolExecutor(max_workers=40) as pool:
        statuses = list(pool.map(buy, range(40)))

    assert statuses.count(201) == 5
    assert statuses.count(409) == 35
    assert _stock(gateway, item["id"]) == (0, 0)


def test_request_id_is_echoed_and_reaches_the_services(gateway, admin, platform):
    item = _item(gateway, admin, quantity=5)

    order = _order(gateway, {**admin, "X-Request-ID": "trace-e2e-42"}, item["id"], quantity=1)

    assert order.headers["X-Request-ID"] == "trace-e2e-42"
    for service in ("pedidos-service", "estoque-service", "pagamentos-service"):
        log = (platform.log_dir / f"{service}.log").read_text()
        assert '"request_id":"trace-e2e-42"' in log, service
