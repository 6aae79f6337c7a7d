"""Faults on real processes: pedidos killed mid-saga, pagamentos frozen."""

import signal
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

pytestmark = pytest.mark.e2e
# Slow payments keep sagas in flight long enough to be cut in half.
# A breaker that probes every second, without backing off, lets the gateway reach pedidos
# again soon after the crash test.
PLATFORM_ENV = {"PAYMENT_LATENCY_MS": "400", "BREAKER_OPEN_SECONDS": "1",
                "BREAKER_MAX_OPEN_SECONDS": "1"}
MID_SAGA = ("pending", "stock_reserved")


def _item(gateway, admin, quantity):
    return requests.post(f"{gateway}/items", headers=admin, timeout=10, json={
        "name": "Tênis", "quantity": quantity, "price": 199.9}).json()


def _buy(gateway, admin, item_id):
    try:
        return requests.post(f"{gateway}/orders", headers=admin, timeout=30, json={
            "customer": "Carga", "items": [{"item_id": item_id, "quantity": 1}]}).status_code
    except requests.RequestException:
        return None


def _orders(gateway, admin, status):
    """The orders in `status`, asking again while a gateway worker's breaker is still open."""
    url = f"{gateway}/orders?status={status}&limit=500"
    for _ in range(40):
        response = requests.get(url, headers=admin, timeout=10)
        if response.status_code != 503:
            break
        time.sleep(0.5)
    assert response.status_code == 200, response.text
    return response.json()


def _settled(gateway, admin):
    return all(_orders(gateway, admin, status) == [] for status in MID_SAGA)


def _wait_for(condition, seconds):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.5)
    return condition()


def _approved_payments(gateway, admin):
    return requests.get(f"{gateway}/payments?status=approved&limit=500", headers=admin,
                        timeout=10).json()


def test_pedidos_killed_mid_load_leaves_no_order_mid_saga(platform, gateway, admin):
    item = _item(gateway, admin, quantity=30)
    with ThreadPoolExecutor(max_workers=20) as pool:
        buying = [pool.submit(_buy, gateway, admin, item["id"]) for _ in range(20)]
        time.sleep(0.8)
        platform.crash("pedidos-service")
        statuses = [future.result() for future in buying]
    platform.start_service("pedidos-service")
    platform.wait_until_live("pedidos-service")

    settled = _wait_for(lambda: _settled(gateway, admin), 60)

    assert settled, "orders still mid-saga after recovery"
    assert 500 not in statuses
    stock = requests.get(f"{gateway}/items/{item['id']}", timeout=10).json()
    paid = [o for o in _orders(gateway, admin, "paid") if o["items"][0]["item_id"] == item["id"]]
    assert stock["reserved"] == 0
    assert stock["quantity"] == 30 - len(paid)
    paid_ids = {o["id"] for o in paid}
    assert {p["order_id"] for p in _approved_payments(gateway, admin)} == paid_ids


def test_frozen_payments_fail_the_order_fast_and_release_the_hold(platform, gateway, admin):
    item = _item(gateway, admin, quantity=3)
    platform.signal("pagamentos-service", signal.SIGSTOP)
    try:
        started = time.monotonic()
        response = requests.post(f"{gateway}/orders", headers=admin, timeout=30, json={
            "customer": "Paciente", "items": [{"item_id": item["id"], "quantity": 1}]})
        waited = time.monotonic() - started
    finally:
        platform.signal("pagamentos-service", signal.SIGCONT)

    assert response.status_code in (503, 504), response.text
    assert waited < 15  # the gateway's timeout for pedidos; the client never hangs
    order = response.json()["order"]
    assert order["status"] == "failed"
    stock = requests.get(f"{gateway}/items/{item['id']}", timeout=10).json()
    assert (stock["quantity"], stock["reserved"]) == (3, 0)
    # The charge that waited in the frozen service's socket must not keep the money.
    assert _wait_for(lambda: order["id"] not in {
        p["order_id"] for p in _approved_payments(gateway, admin)}, 30)


def test_platform_is_healthy_again_after_the_faults(platform, gateway):
    assert _wait_for(lambda: requests.get(f"{gateway}/health", timeout=10).status_code == 200,
                     20)
    assert platform.exited() == []
