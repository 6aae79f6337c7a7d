APPROVING_CARD = "4242424242424242"
DECLINED_CARD = "4000000000000002"

KEY = {"Idempotency-Key": "order-42-payment"}


def test_repeat_with_same_key_replays_the_201_and_charges_once(charge, stored_payments):
    first = charge(order_id=42, card_number=APPROVING_CARD, headers=KEY)
    again = charge(order_id=42, card_number=APPROVING_CARD, headers=KEY)

    assert (first.status_code, again.status_code) == (201, 201)
    assert again.data == first.data
    assert again.headers["Idempotent-Replayed"] == "true"
    assert stored_payments() == 1


def test_repeat_of_a_declined_charge_replays_the_402(charge, stored_payments):
    first = charge(order_id=42, card_number=DECLINED_CARD, headers=KEY)
    again = charge(order_id=42, card_number=DECLINED_CARD, headers=KEY)

    assert (first.status_code, again.status_code) == (402, 402)
    assert again.data == first.data
    assert again.content_type == "application/problem+json"
    assert stored_payments() == 1


def test_same_key_with_a_different_body_is_a_422(charge, stored_payments):
    charge(order_id=42, amount=10, headers=KEY)

    response = charge(order_id=42, amount=11, headers=KEY)

    assert response.status_code == 422
    assert response.content_type == "application/problem+json"
    assert stored_payments() == 1


def test_the_same_amount_written_differently_is_the_same_body(charge, stored_payments):
    first = charge(order_id=42, amount=59.9, headers=KEY)
    again = charge(order_id=42, amount=59.90, headers=KEY)

    assert again.data == first.data
    assert stored_payments() == 1


def test_a_key_longer_than_255_characters_is_a_422(charge, stored_payments):
    response = charge(headers={"Idempotency-Key": "k" * 256})

    assert response.status_code == 422
    assert stored_payments() == 0


def test_a_charge_refused_with_409_is_not_remembered_under_its_key(charge):
    charge(order_id=5)

    refused = charge(order_id=5, headers=KEY)

    assert refused.status_code == 409
    assert "Idempotent-Replayed" not in charge(order_id=5, headers=KEY).headers
