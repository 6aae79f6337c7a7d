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
