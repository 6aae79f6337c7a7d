"""An order is paid only by an approved payment of exactly its total, and no computed amount
ever passes the money limit: the attacks a black-box probe tried, replayed. A failed order
keeps no money, even when its charge lands late or recovery takes it over from a saga still
waiting on a participant (a lock held from outside stands in for a paused database)."""

from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

from pedidos.bootstrap import build
from pedidos.domain import charge_key
from pedidos.recovery import recover_once
from veloz.dev.faultload import wait_until
from veloz.dev.testing import lock_waiters


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


def settled_charge(payments, order_id: int, amount: str):
    """pagamentos' answer to the order's one charge once it is no longer running: the saga's
    own charge, repeated with its Idempotency-Key, answers what the first call ended with."""
    answers = []

    def settled() -> bool:
        answers.append(payments.post(
            "/payments", data=f'{{"order_id": {order_id}, "amount": {amount}}}',
            content_type="application/json", headers={"Idempotency-Key": charge_key(order_id)}))
        answer = answers[-1]
        return not (answer.status_code == 409
                    and answer.json["type"].endswith(":idempotency-in-progress"))

    assert wait_until(settled, 15)
    return answers[-1]


def test_a_charge_that_lands_after_its_order_failed_keeps_no_money(
        settings, app, held_order, make_item, payments, item, charges_held):
    """The saga gave up on a charge pagamentos was still holding (its read timed out) and
    failed the order; the charge then went through. Money taken for a failed order is what
    a buyer would dispute: it must be refused, or refunded, once the order is compensated."""
    impatient = build(settings.model_copy(update={"upstream_read_timeout_seconds": 0.5,
                                                  "upstream_retries": 0}),
                      app.extensions["database"])
    shirt = make_item(quantity=5, price="10.50")
    order = held_order({shirt: 1})

    with charges_held(order.id):
        outcome = impatient.saga.charge_and_commit(order, None)
    late = settled_charge(payments, order.id, "10.50")
    recover_once(impatient.recovery, 10)  # finishes a compensation the lock held up

    assert outcome.order.status == "failed", outcome.order
    listed = payments.get(f"/payments?order_id={order.id}").json
    assert [p for p in listed if p["status"] == "approved"] == [], (late.json, listed)
    assert (item(shirt)["quantity"], item(shirt)["reserved"]) == (5, 0)


def test_recovery_taking_over_a_saga_still_charging_leaves_the_books_agreeing(
        settings, app, held_order, make_item, payments, item, client, charges_held,
        pagamentos_database_url):
    """Recovery took an order whose saga was still waiting on its charge (the grace period is
    shorter than a paused database): both finish, and whichever wins, an order is paid only
    with its payment standing and its unit sold, or failed with neither."""
    pedidos = build(settings, app.extensions["database"])
    shirt = make_item(quantity=5, price="10.50")
    order = held_order({shirt: 1})

    with ThreadPoolExecutor(2) as pool:
        with charges_held(order.id):
            saga = pool.submit(pedidos.saga.charge_and_commit, order, None)
            assert wait_until(lambda: lock_waiters(pagamentos_database_url) == 1, 10)
            recovery = pool.submit(recover_once, pedidos.recovery, 10)
            assert wait_until(lambda: lock_waiters(pagamentos_database_url) == 2, 10)
        saga.result()
        recovery.result()

    settled = client.get(f"/orders/{order.id}").json
    approved = [p for p in payments.get(f"/payments?order_id={order.id}").json
                if p["status"] == "approved"]
    sold = 5 - item(shirt)["quantity"]
    assert (settled["status"], len(approved), sold) in {("paid", 1, 1), ("failed", 0, 0)}, (
        settled["status"], approved, sold)
    assert item(shirt)["reserved"] == 0


def test_recovery_taking_over_a_saga_still_reserving_leaves_nothing_held(
        buy, make_item, pedidos, item, payments, stock_held, estoque_database_url):
    """Recovery took an order whose reservation was still on its way: it ended the order and
    went looking for the reservation while estoque was making it; the saga then finds its
    order ended and answers it as it stands. No unit stays held, no money taken."""
    shirt = make_item(quantity=5)

    with ThreadPoolExecutor(2) as pool:
        with stock_held(shirt):
            placing = pool.submit(buy, {shirt: 1})
            assert wait_until(lambda: lock_waiters(estoque_database_url) == 1, 10)
            recovery = pool.submit(recover_once, pedidos.recovery, 10)
            assert wait_until(lambda: lock_waiters(estoque_database_url) == 2, 10)
        answer = placing.result()
        assert recovery.result() == 1

    assert answer.status_code == 503, answer.json
    assert answer.json["order"]["status"] == "failed"
    assert answer.json["order"]["failure_reason"].startswith("recovered:")
    assert (item(shirt)["quantity"], item(shirt)["reserved"]) == (5, 0)
    assert payments.get(f"/payments?order_id={answer.json['order']['id']}").json == []
