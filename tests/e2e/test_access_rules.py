"""Who may do what, as the gateway enforces it (API.md access table), and what the edge
refuses before any app runs."""

import pytest
import requests

pytestmark = pytest.mark.e2e


def test_anonymous_may_browse_but_not_buy(gateway):
    assert requests.get(f"{gateway}/items", timeout=10).status_code == 200
    refused = requests.post(f"{gateway}/orders", json={}, timeout=10)
    assert refused.status_code == 401
    assert refused.headers["Content-Type"] == "application/problem+json"


def test_invalid_token_is_refused(gateway):
    headers = {"Authorization": "Bearer not-a-token"}
    assert requests.get(f"{gateway}/orders/1", headers=headers, timeout=10).status_code == 401


def test_customer_may_not_manage_the_catalog_or_payments(gateway, customer):
    item = {"name": "Boné", "quantity": 1, "price": 10}
    assert requests.post(f"{gateway}/items", json=item, headers=customer,
                         timeout=10).status_code == 403
    assert requests.get(f"{gateway}/payments", headers=customer, timeout=10).status_code == 403


def test_customer_sees_only_its_own_orders(gateway, admin, bearer):
    item = requests.post(f"{gateway}/items", json={"name": "Meia", "quantity": 5, "price": 9},
                         headers=admin, timeout=10).json()
    alice, bob = bearer("customer", "alice"), bearer("customer", "bob")
    order = requests.post(f"{gateway}/orders", headers=alice, timeout=30, json={
        "customer": "Alice", "items": [{"item_id": item["id"], "quantity": 1}]}).json()
    order_url = f"{gateway}/orders/{order['order']['id']}"

    assert requests.get(order_url, headers=alice, timeout=10).status_code == 200
    assert requests.get(order_url, headers=bob, timeout=10).status_code == 404
    assert requests.post(f"{order_url}/cancel", headers=bob, timeout=10).status_code == 404
    assert [o["id"] for o in requests.get(f"{gateway}/orders", headers=alice,
                                          timeout=10).json()] == [order["order"]["id"]]
    assert requests.get(f"{gateway}/orders", headers=bob, timeout=10).json() == []


def test_busy_customer_is_slowed_down_with_retry_after(gateway, customer):
    statuses, last = [], None
    for _ in range(60):
        last = requests.get(f"{gateway}/orders/999999", headers=customer, timeout=10)
        statuses.append(last.status_code)
        if last.status_code == 429:
            break

    assert statuses[-1] == 429
    assert int(last.headers["Retry-After"]) > 0
    assert last.headers["Content-Type"] == "application/problem+json"


@pytest.mark.parametrize("subject", ["", " ", "alice\r\nX-User-Roles: admin"])
def test_a_signed_token_naming_nobody_is_refused_not_trusted(gateway, admin, bearer, subject):
    item = requests.post(f"{gateway}/items", json={"name": "Luva", "quantity": 5, "price": 9},
                         headers=admin, timeout=10).json()
    order = requests.post(f"{gateway}/orders", headers=bearer("customer", "carol"), timeout=30,
                          json={"customer": "Carol",
                                "items": [{"item_id": item["id"], "quantity": 1}]}).json()

    response = requests.get(f"{gateway}/orders/{order['order']['id']}",
                            headers=bearer("customer", subject), timeout=10)

    assert response.status_code == 401
    assert response.headers["Content-Type"] == "application/problem+json"


@pytest.mark.parametrize(("headers", "path", "status"), [
    ({}, "/items?q=" + "a" * 5000, 414),
    ({"X-Big": "a" * 9000}, "/items", 431),
    ({f"X-Many-{n}": "1" for n in range(120)}, "/items", 431),
], ids=["5000-byte URL", "9 KB header", "120 headers"])
def test_requests_the_edge_refuses_before_the_app_still_get_a_problem(
        gateway, headers, path, status):
    """The gateway's gunicorn workers (veloz.run.gunicorn_workers) answer these themselves; no
    such request reaches a service inside."""
    answer = requests.get(f"{gateway}{path}", headers=headers, timeout=5)

    assert answer.status_code == status
    assert answer.headers["Content-Type"] == "application/problem+json"
    assert answer.json()["status"] == status
    assert answer.json()["request_id"] == answer.headers["X-Request-ID"]
