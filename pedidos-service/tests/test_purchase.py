from decimal import Decimal

DECLINED_CARD = "4000000000000002"


def test_a_paid_order_costs_estoque_prices_and_takes_the_stock_for_good(buy, make_item, item,
                                                                          stock, wire):
    shirt, socks = make_item(quantity=10, price="59.90"), make_item(quantity=5, price="0.10")

    response = buy({shirt: 2, socks: 3})

    assert response.status_code == 201, response.json
    placed = wire(response)
    order, payment = placed["order"], placed["payment"]
    assert order["status"] == "paid"
    assert order["total"] == Decimal("59.90") * 2 + Decimal("0.10") * 3 == Decimal("120.1")
    assert [(line["item_id"], line["unit_price"], line["subtotal"]) for line in order["items"]] \
        == [(shirt, Decimal("59.9"), Decimal("119.8")), (socks, Decimal("0.1"), Decimal("0.3"))]
    assert payment["status"] == "approved"
    assert payment["amount"] == order["total"]
    assert order["payment_id"] == payment["id"]
    assert (item(shirt)["quantity"], item(shirt)["reserved"]) == (8, 0)
    assert stock.get(f"/reservations/{order['reservation_id']}").json["status"] == "committed"


def test_short_stock_rejects_the_order_listing_short_items_and_holds_nothing(buy, make_item,
                                                                             item):
    scarce, plenty = make_item(quantity=1), make_item(quantity=5)

    response = buy({scarce: 2, plenty: 1})

    assert response.status_code == 409
    assert response.content_type == "application/problem+json"
    assert response.json["errors"] == [{"item_id": scarce, "requested": 2, "available": 1}]
    assert response.json["order"]["status"] == "rejected"
    assert (item(scarce)["quantity"], item(scarce)["reserved"]) == (1, 0)
    assert (item(plenty)["quantity"], item(plenty)["reserved"]) == (5, 0)


def test_an_unknown_item_rejects_the_order_with_422(buy, make_item, item):
    known = make_item(quantity=5)

    response = buy({known: 1, 999_999: 1})

    assert response.status_code == 422
    assert response.json["order"]["status"] == "rejected"
    assert item(known)["quantity"] == 5


def test_a_declined_card_puts_the_stock_back_on_sale(buy, make_item, item):
    shirt = make_item(quantity=3)

    response = buy({shirt: 2}, payment={"method": "credit_card", "card_number": DECLINED_CARD})

    assert response.status_code == 402
    assert response.json["order"]["status"] == "payment_declined"
    assert response.json["payment"]["status"] == "declined"
    assert response.json["payment"]["decline_reason"] == "card_declined"
    assert (item(shirt)["quantity"], item(shirt)["reserved"]) == (3, 0)


def test_pagamentos_down_fails_the_order_and_releases_the_hold(buy, make_item, item,
                                                               pagamentos):
    shirt = make_item(quantity=3)
    pagamentos.stop()

    response = buy({shirt: 2})

    assert response.status_code == 503
    assert response.json["order"]["status"] == "failed"
    assert "pagamentos" in response.json["order"]["failure_reason"]
    assert (item(shirt)["quantity"], item(shirt)["reserved"]) == (3, 0)


def test_estoque_down_fails_the_order_without_a_charge(buy, make_item, estoque, payments):
    shirt = make_item(quantity=3)
    estoque.stop()

    response = buy({shirt: 1})

    assert response.status_code == 503
    assert response.json["order"]["status"] == "failed"
    assert payments.get("/payments").json == []


def test_events_list_every_status_change_oldest_first(buy, make_item, client):
    order = buy({make_item(): 1}).json["order"]
    client.post(f"/orders/{order['id']}/cancel")

    events = client.get(f"/orders/{order['id']}/events").json

    assert [event["status"] for event in events] == ["pending", "stock_reserved", "paid",
                                                     "cancelled"]
    assert all(event["at"] and event["reason"] for event in events)


def test_orders_are_listed_by_status_and_customer_a_page_at_a_time(buy, make_item, client):
    shirt = make_item(quantity=3)
    first = buy({shirt: 1}).json["order"]["id"]
    buy({shirt: 5})
    buy({shirt: 1}, customer="Maria")

    page = client.get("/orders?status=paid&limit=1")
    rest = client.get(page.headers["Link"].split(">")[0].lstrip("<"))

    assert [o["id"] for o in page.json] == [first]
    assert [o["customer"] for o in rest.json] == ["Maria"]
    assert [o["status"] for o in client.get("/orders?customer=Maria").json] == ["paid"]
    assert [o["status"] for o in client.get("/orders?status=rejected").json] == ["rejected"]


def test_an_order_of_an_item_priced_zero_is_rejected_never_paid_without_a_payment(
        buy, make_item, item, payments, estoque_app):
    """Items can no longer be priced 0; a row from before that rule is refused at order time,
    since an order is `paid` only for an approved payment of exactly its total."""
    gift = make_item(quantity=2, price="5")
    with estoque_app.extensions["database"].atomic() as cursor:
        cursor.execute("UPDATE items SET price = 0 WHERE id = %s", (gift,))

    response = buy({gift: 1})

    assert response.status_code == 422
    assert response.json["type"] == "urn:pedidos-veloz:problem:unpriced-items"
    assert response.json["order"]["status"] == "rejected"
    assert item(gift)["quantity"] == 2
    assert payments.get("/payments").json == []
