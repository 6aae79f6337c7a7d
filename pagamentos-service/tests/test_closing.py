"""Closing an order: pedidos' compensation refunds the order's payment and no later charge of
the order takes money, however late it arrives."""

from concurrent.futures import ThreadPoolExecutor
from threading import Barrier

DECLINED_CARD = "4000000000000002"
# A person the gateway vouches for; pedidos calls pagamentos without identity headers.
ADMIN_THROUGH_GATEWAY = {"X-User-Id": "ops", "X-User-Roles": "admin"}
RACERS = 12


def test_closing_refunds_the_approved_payment_and_lists_the_orders_payments(charge, client):
    declined = charge(order_id=5, card_number=DECLINED_CARD).get_json()["payment"]
    approved = charge(order_id=5).get_json()

    response = client.put("/closed-orders/5")

    assert response.status_code == 200, response.get_json()
    closure = response.get_json()
    assert closure["order_id"] == 5
    assert [(p["id"], p["status"]) for p in closure["payments"]] == [
        (declined["id"], "declined"), (approved["id"], "refunded")]
    assert client.get(f"/payments/{approved['id']}").get_json()["status"] == "refunded"


def test_a_charge_after_the_closing_is_refused_and_stores_nothing(charge, client,
                                                                 stored_payments):
    client.put("/closed-orders/6")

    response = charge(order_id=6)

    assert response.status_code == 409
    problem = response.get_json()
    assert problem["type"] == "urn:pedidos-veloz:problem:order-closed"
    assert problem["order_id"] == 6
    assert stored_payments(order_id=6) == 0


def test_closing_again_refunds_nothing_more_and_keeps_the_first_time(charge, client):
    charge(order_id=7)
    first = client.put("/closed-orders/7").get_json()

    again = client.put("/closed-orders/7")

    assert again.status_code == 200
    assert again.get_json() == first


def test_an_order_never_charged_can_be_closed(client):
    response = client.put("/closed-orders/8")

    assert response.status_code == 200
    assert response.get_json()["payments"] == []


def test_a_person_closing_an_order_is_sent_to_its_cancel_route(charge, client):
    payment_id = charge(order_id=9).get_json()["id"]

    response = client.put("/closed-orders/9", headers=ADMIN_THROUGH_GATEWAY)

    assert response.status_code == 409
    assert response.get_json()["type"] == "urn:pedidos-veloz:problem:payment-through-order"
    assert response.get_json()["order_route"] == "/orders/9/cancel"
    assert client.get(f"/payments/{payment_id}").get_json()["status"] == "approved"
    assert charge(order_id=9, amount=1).status_code == 409  # not closed: the order stands paid


def test_closing_obeys_the_failure_switch(charge, client_with, client, stored_payments):
    charge(order_id=10)

    assert client_with(payment_failure_rate=1.0).put("/closed-orders/10").status_code == 503
    assert stored_payments(order_id=10, status="approved") == 1
    assert charge(order_id=10).status_code == 409  # still open: the repeat of its payment


def test_charges_racing_a_closing_leave_no_money_taken(app, stored_payments):
    """Whatever order the lock grants them in, every charge committed before the closing is
    refunded by it, and every one after it is refused."""
    start = Barrier(RACERS + 1)

    def charge_once(_):
        client = app.test_client()
        start.wait()
        return client.post("/payments", json={"order_id": 11, "amount": 25}).status_code

    def close():
        client = app.test_client()
        start.wait()
        return client.put("/closed-orders/11").status_code

    with ThreadPoolExecutor(RACERS + 1) as pool:
        charges = [pool.submit(charge_once, n) for n in range(RACERS)]
        closing = pool.submit(close)
        statuses = [future.result() for future in charges]

    assert closing.result() == 200
    assert set(statuses) <= {201, 409}
    assert stored_payments(order_id=11, status="approved") == 0
    assert stored_payments(order_id=11) == statuses.count(201) <= 1
