from veloz.dev.faultload import wait_until


def test_cancelling_a_paid_order_refunds_it_and_puts_the_stock_back_on_sale(buy, make_item,
                                                                           item, client,
                                                                           payments):
    shirt = make_item(quantity=5)
    order = buy({shirt: 2}).json["order"]

    response = client.post(f"/orders/{order['id']}/cancel")

    assert response.status_code == 200
    assert response.json["status"] == "cancelled"
    assert payments.get(f"/payments/{order['payment_id']}").json["status"] == "refunded"
    # estoque cannot un-commit: the 2 sold units come back through a restock.
    assert (item(shirt)["quantity"], item(shirt)["reserved"]) == (5, 0)


def test_cancelling_twice_answers_the_same_cancelled_order_and_returns_stock_once(
        buy, make_item, item, client):
    shirt = make_item(quantity=5)
    order_id = buy({shirt: 2}).json["order"]["id"]

    first = client.post(f"/orders/{order_id}/cancel")
    second = client.post(f"/orders/{order_id}/cancel")

    assert second.status_code == 200
    assert second.json == first.json
    assert item(shirt)["quantity"] == 5


def test_cancelling_an_order_with_stock_held_releases_the_hold(held_order, make_item, item,
                                                               client, stock, wire):
    shirt = make_item(quantity=4)
    order = held_order({shirt: 3})
    assert item(shirt)["reserved"] == 3

    response = client.post(f"/orders/{order.id}/cancel")

    assert response.json["status"] == "cancelled"
    assert (item(shirt)["quantity"], item(shirt)["reserved"]) == (4, 0)
    assert stock.get(f"/reservations/{order.reservation_id}").json["status"] == "released"


def test_cancelling_a_rejected_order_is_a_conflict(buy, make_item, client):
    order_id = buy({make_item(quantity=0): 1}).json["order"]["id"]

    response = client.post(f"/orders/{order_id}/cancel")

    assert response.status_code == 409
    assert response.content_type == "application/problem+json"
    assert client.get(f"/orders/{order_id}").json["status"] == "rejected"


def test_cancelling_an_unknown_order_is_not_found(client):
    assert client.post("/orders/424242/cancel").status_code == 404


def test_a_restock_that_lands_after_the_cancel_gave_up_puts_the_units_back_once(
        buy, make_item, item, client, settings, app_factory, stock_held):
    """The cancel's restock waited in estoque past pedidos' read timeout and went through
    after it: the cancel answered 503 and the buyer cancelled again, as told. The sold units
    come back on sale once, not once per try."""
    shirt = make_item(quantity=5)
    order_id = buy({shirt: 2}).json["order"]["id"]
    impatient = app_factory(settings.model_copy(update={"upstream_read_timeout_seconds": 0.5,
                                                        "upstream_retries": 0}))
    try:
        with stock_held(shirt):
            first = impatient.test_client().post(f"/orders/{order_id}/cancel")
    finally:
        impatient.extensions["database"].dispose()
    answers = []

    def cancelled() -> bool:  # 503 while estoque still runs the first restock
        answers.append(client.post(f"/orders/{order_id}/cancel"))
        return answers[-1].status_code == 200

    assert wait_until(cancelled, 15), answers[-1].json

    assert first.status_code in (503, 504), first.json
    assert answers[-1].json["status"] == "cancelled"
    assert (item(shirt)["quantity"], item(shirt)["reserved"]) == (5, 0)
