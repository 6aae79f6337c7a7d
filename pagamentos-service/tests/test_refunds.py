DECLINED_CARD = "4000000000000002"


def test_refund_of_an_approved_payment_answers_200_refunded(charge, client):
    payment = charge().get_json()

    response = client.post(f"/payments/{payment['id']}/refund")

    assert response.status_code == 200
    assert response.get_json()["status"] == "refunded"
    assert response.get_json()["updated_at"] >= payment["updated_at"]
    assert client.get(f"/payments/{payment['id']}").get_json()["status"] == "refunded"


def test_refunding_twice_answers_the_same_refunded_payment(charge, client):
    payment_id = charge().get_json()["id"]

    first = client.post(f"/payments/{payment_id}/refund")
    again = client.post(f"/payments/{payment_id}/refund")

    assert again.status_code == 200
    assert again.get_json() == first.get_json()


def test_refunding_a_declined_payment_is_a_conflict(charge, client):
    payment_id = charge(card_number=DECLINED_CARD).get_json()["payment"]["id"]

    response = client.post(f"/payments/{payment_id}/refund")

    assert response.status_code == 409
    assert response.get_json()["type"] == "urn:pedidos-veloz:problem:payment-not-refundable"
    assert client.get(f"/payments/{payment_id}").get_json()["status"] == "declined"


def test_a_refunded_order_can_be_charged_again(charge, client):
    payment_id = charge(order_id=9).get_json()["id"]
    client.post(f"/payments/{payment_id}/refund")

    assert charge(order_id=9).status_code == 201


def test_refund_obeys_the_failure_switch(charge, client_with, stored_payments):
    payment_id = charge().get_json()["id"]
    failing = client_with(payment_failure_rate=1.0)

    assert failing.post(f"/payments/{payment_id}/refund").status_code == 503
    assert stored_payments(status="approved") == 1


def test_reads_ignore_the_failure_switch(charge, client_with):
    payment_id = charge().get_json()["id"]
    failing = client_with(payment_failure_rate=1.0)

    assert failing.get(f"/payments/{payment_id}").status_code == 200
    assert failing.get("/payments").status_code == 200
    assert failing.get("/health").status_code == 200


# A person the gateway vouches for (it strips any client copy of these headers and sets its
# own); pedidos calls pagamentos directly, without them.
ADMIN_THROUGH_GATEWAY = {"X-User-Id": "ops", "X-User-Roles": "admin"}


def test_a_person_refunding_a_standing_payment_is_sent_to_the_orders_cancel_route(charge,
                                                                                   client):
    payment = charge(order_id=41).get_json()

    response = client.post(f"/payments/{payment['id']}/refund", headers=ADMIN_THROUGH_GATEWAY)

    assert response.status_code == 409
    assert response.content_type == "application/problem+json"
    problem = response.get_json()
    assert problem["type"] == "urn:pedidos-veloz:problem:payment-through-order"
    assert problem["order_id"] == 41
    assert problem["order_route"] == "/orders/41/cancel"
    assert "POST /orders/41/cancel" in problem["detail"]
    assert client.get(f"/payments/{payment['id']}").get_json()["status"] == "approved"


def test_pedidos_own_refund_of_the_same_payment_is_still_accepted(charge, client):
    payment_id = charge(order_id=42).get_json()["id"]
    client.post(f"/payments/{payment_id}/refund", headers=ADMIN_THROUGH_GATEWAY)

    response = client.post(f"/payments/{payment_id}/refund")

    assert response.status_code == 200
    assert response.get_json()["status"] == "refunded"


def test_a_person_repeating_a_refund_pedidos_already_made_reads_it_refunded(charge, client):
    payment_id = charge(order_id=43).get_json()["id"]
    client.post(f"/payments/{payment_id}/refund")

    response = client.post(f"/payments/{payment_id}/refund", headers=ADMIN_THROUGH_GATEWAY)

    assert response.status_code == 200
    assert response.get_json()["status"] == "refunded"


def test_a_person_charging_an_order_directly_is_sent_to_place_the_order(client,
                                                                       stored_payments):
    response = client.post("/payments", headers=ADMIN_THROUGH_GATEWAY,
                           json={"order_id": 44, "amount": 10, "method": "pix"})

    assert response.status_code == 409
    assert response.get_json()["type"] == "urn:pedidos-veloz:problem:payment-through-order"
    assert response.get_json()["order_route"] == "/orders"
    assert stored_payments(order_id=44) == 0


def test_an_identity_header_naming_nobody_is_401(charge, client):
    payment_id = charge(order_id=45).get_json()["id"]

    response = client.post(f"/payments/{payment_id}/refund", headers={"X-User-Id": " "})

    assert response.status_code == 401
    assert response.content_type == "application/problem+json"
