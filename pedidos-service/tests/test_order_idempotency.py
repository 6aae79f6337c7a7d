from concurrent.futures import ThreadPoolExecutor


def test_repeating_a_key_replays_the_first_answer_and_creates_one_order(buy, make_item,
                                                                        stored_orders, item):
    shirt = make_item(quantity=5)
    key = {"Idempotency-Key": "buy-shirt-1"}

    first = buy({shirt: 1}, headers=key)
    again = buy({shirt: 1}, headers=key)

    assert first.status_code == again.status_code == 201
    assert again.json == first.json
    assert again.headers["Idempotent-Replayed"] == "true"
    assert stored_orders() == 1
    assert item(shirt)["quantity"] == 4


def test_a_replayed_failure_is_the_same_failure(buy, make_item, stored_orders):
    scarce = make_item(quantity=0)
    key = {"Idempotency-Key": "buy-scarce"}

    first, again = buy({scarce: 1}, headers=key), buy({scarce: 1}, headers=key)

    assert first.status_code == again.status_code == 409
    assert again.json == first.json
    assert stored_orders() == 1


def test_the_same_key_with_another_body_is_refused(buy, make_item, stored_orders):
    shirt = make_item(quantity=5)
    buy({shirt: 1}, headers={"Idempotency-Key": "k"})

    response = buy({shirt: 2}, headers={"Idempotency-Key": "k"})

    assert response.status_code == 422
    assert stored_orders() == 1


def test_concurrent_requests_with_one_key_create_one_order(app, make_item, stored_orders,
                                                           item):
    shirt = make_item(quantity=50)
    payload = {"customer": "Ana", "items": [{"item_id": shirt, "quantity": 1}]}

    def post(_):
        return app.test_client().post("/orders", json=payload,
                                      headers={"Idempotency-Key": "same-click"}).status_code

    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(post, range(8)))

    assert stored_orders() == 1
    assert item(shirt)["quantity"] == 49
    assert set(statuses) <= {201, 409}
    assert 201 in statuses


def test_a_replayed_decline_is_the_same_decline(buy, make_item, stored_orders):
    card = {"method": "credit_card", "card_number": "4000000000000002"}
    shirt, key = make_item(quantity=5), {"Idempotency-Key": "declined-once"}

    first = buy({shirt: 1}, headers=key, payment=card)
    again = buy({shirt: 1}, headers=key, payment=card)

    assert first.status_code == again.status_code == 402
    assert again.json == first.json
    assert stored_orders() == 1
