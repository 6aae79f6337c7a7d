"""An order is paid only by an approved payment of exactly its total, and no computed amount
ever passes the money limit: the attacks a black-box probe tried, replayed."""

from decimal import Decimal

from pedidos.recovery import recover_once


def test_a_prepaid_cent_for_the_next_order_id_does_not_pay_for_the_order(buy, make_item,
                                                                       payments, item, wire):
    """The attack: pay 0.01 for the order id the next customer will get, then let them buy."""
    shirt = make_item(quantity=5, price="10.50")
    planted = payments.post("/payments", json={"order_id": 1, "amount": 0.01})
    assert planted.status_code == 201

    response = buy({shirt: 1})

    assert response.status_code == 409, response.json
    assert response.json["type"].endswith(":payment-mismatch")
    order = wire(response)["order"]
    assert (order["id"], order["status"], order["payment_id"]) == (1, "failed", None)
    assert order["failure_reason"] == (f"payment {planted.json['id']} is for 0.01, "
                                       "not the order total 10.50")
    assert payments.get(f"/payments/{planted.json['id']}").json["status"] == "refunded"
    assert (item(shirt)["quantity"], item(shirt)["reserved"]) == (5, 0)


def test_a_prepaid_payment_of_the_exact_total_is_still_accepted(buy, make_item, payments,
                                                                item, wire):
    """Money of exactly the total by the same method is the order's payment, however made."""
    shirt = make_item(quantity=5, price="10.50")
    paid_ahead = payments.post("/payments", json={"order_id": 1, "amount": 10.50})

    response = buy({shirt: 1})

    assert response.status_code == 201, response.json
    assert wire(response)["order"]["payment_id"] == paid_ahead.json["id"]
    assert item(shirt)["quantity"] == 4


def test_recovery_refunds_a_payment_that_does_not_match_the_total(pedidos, held_order,
                                                                  make_item, payments, item,
                                                                  client):
    shirt = make_item(quantity=5, price="25.50")
    stuck = held_order({shirt: 2})
    short = payments.post("/payments", json={"order_id": stuck.id, "amount": 0.01})

    assert recover_once(pedidos.recovery, 10) == 1

    order = client.get(f"/orders/{stuck.id}").json
    assert order["status"] == "failed"
    assert order["failure_reason"] == (f"recovered: payment {short.json['id']} is for 0.01, "
                                       "not the order total 51.00")
    assert payments.get(f"/payments/{short.json['id']}").json["status"] == "refunded"
    assert (item(shirt)["quantity"], item(shirt)["reserved"]) == (5, 0)


def test_an_order_total_above_the_money_limit_is_a_422_that_holds_nothing(buy, make_item,
                                                                          item, stock):
    dear = make_item(quantity=5, price="9999999999.99")

    response = buy({dear: 2})

    assert response.status_code == 422, response.json
    assert response.json["errors"][0]["field"] == "items[0].quantity"
    assert response.json["order"]["status"] == "rejected"
    assert (item(dear)["quantity"], item(dear)["reserved"]) == (5, 0)


def test_lines_within_the_limit_whose_sum_is_not_are_refused_as_a_whole(buy, make_item, item):
    first, second = (make_item(quantity=1, price="6000000000") for _ in range(2))

    response = buy({first: 1, second: 1})

    assert response.status_code == 422
    assert response.json["errors"] == [
        {"field": "items", "message": "the total 12000000000.00 is above the limit of "
                                      "9999999999.99"}]
    assert item(first)["quantity"] == item(second)["quantity"] == 1


def test_an_order_of_exactly_the_limit_is_paid(buy, make_item, wire):
    dear = make_item(quantity=1, price="9999999999.99")

    response = buy({dear: 1})

    assert response.status_code == 201, response.json
    assert wire(response)["order"]["total"] == Decimal("9999999999.99")
