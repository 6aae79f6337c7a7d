from concurrent.futures import ThreadPoolExecutor

from pedidos.domain import Caller
from pedidos.schemas import OrderCreate
from pedidos.store import NewOrder
from veloz.data.idempotency import IdempotencyKey, fingerprint_of


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


def _crash_after_step_one(app, pedidos, make_item, key, quantity=5):
    """What a process killed right after step 1 leaves: a claimed key and a pending order."""
    item_id = make_item(quantity=quantity)
    body = OrderCreate.model_validate({"customer": "Ana", "items": [
        {"item_id": item_id, "quantity": 1}]})
    scope = Caller().idempotency_scope
    app.extensions["answers"].store.claim(IdempotencyKey(scope, key, fingerprint_of(body)))
    return pedidos.saga.record_pending(NewOrder("Ana", None, ((item_id, 1),), scope, key)), item_id


def test_repeat_while_the_first_attempt_is_unfinished_is_asked_to_retry(
        client, app, pedidos, make_item):
    _, item_id = _crash_after_step_one(app, pedidos, make_item, "cut-short")

    response = client.post("/orders", headers={"Idempotency-Key": "cut-short"}, json={
        "customer": "Ana", "items": [{"item_id": item_id, "quantity": 1}]})

    assert response.status_code == 409
    assert response.headers["Retry-After"] == "1"


def test_repeat_after_recovery_answers_from_the_settled_order_every_time(
        client, app, pedidos, make_item, stored_orders):
    order_id, item_id = _crash_after_step_one(app, pedidos, make_item, "crashed-once")
    while pedidos.recovery.recover_next() is not None:
        pass
    body = {"customer": "Ana", "items": [{"item_id": item_id, "quantity": 1}]}

    first = client.post("/orders", headers={"Idempotency-Key": "crashed-once"}, json=body)
    again = client.post("/orders", headers={"Idempotency-Key": "crashed-once"}, json=body)

    assert first.status_code == 503
    assert first.json["order"]["id"] == order_id
    assert first.json["order"]["status"] == "failed"
    assert (again.status_code, again.data) == (first.status_code, first.data)
    assert stored_orders() == 1


def test_two_customers_with_the_same_key_get_their_own_orders(client, make_item,
                                                              stored_orders):
    shirt = make_item(quantity=5)
    body = {"customer": "Ana", "items": [{"item_id": shirt, "quantity": 1}]}

    alice = client.post("/orders", json=body, headers={
        "Idempotency-Key": "cart-1", "X-User-Id": "alice", "X-User-Roles": "customer"})
    bob = client.post("/orders", json=body, headers={
        "Idempotency-Key": "cart-1", "X-User-Id": "bob", "X-User-Roles": "customer"})

    assert alice.status_code == bob.status_code == 201
    assert alice.json["order"]["id"] != bob.json["order"]["id"]
    assert bob.json["order"]["customer_id"] == "bob"
    assert stored_orders() == 2
