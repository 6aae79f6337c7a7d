import pytest

from pedidos.bootstrap import build
from pedidos.domain import OrderStatus
from pedidos.models import Order
from pedidos.recovery import recover_once
from pedidos.store import NewOrder


@pytest.fixture
def stuck_order(held_order, make_item):
    """An order whose saga stopped right after holding stock, as a crash would leave it."""
    item_id = make_item(quantity=5, price="25.50")
    return held_order({item_id: 2}), item_id


@pytest.fixture
def status_of(app):
    def read(order_id):
        with app.extensions["database"].reading() as session:
            return session.get(Order, order_id).status

    return read


def test_recovery_finishes_a_paid_but_uncommitted_order(stuck_order, pedidos, payments, item,
                                                        status_of, client):
    order, item_id = stuck_order
    charged = payments.post("/payments", json={"order_id": order.id, "amount": 51})
    assert charged.status_code == 201

    assert recover_once(pedidos.recovery, 10) == 1

    assert status_of(order.id) == "paid"
    assert client.get(f"/orders/{order.id}").json["payment_id"] == charged.json["id"]
    assert (item(item_id)["quantity"], item(item_id)["reserved"]) == (3, 0)
    assert client.get(f"/orders/{order.id}/events").json[-1]["reason"].startswith("recovered")


def test_recovery_fails_an_unpaid_order_and_releases_its_hold(stuck_order, pedidos, item,
                                                              status_of, client):
    order, item_id = stuck_order

    recover_once(pedidos.recovery, 10)

    assert status_of(order.id) == "failed"
    assert client.get(f"/orders/{order.id}").json["failure_reason"] == \
        "recovered: the purchase stopped after stock was held and before any payment was approved"
    assert (item(item_id)["quantity"], item(item_id)["reserved"]) == (5, 0)


def test_recovery_refunds_money_taken_after_the_hold_was_released(stuck_order, pedidos, stock,
                                                                  payments, status_of):
    order, _ = stuck_order
    charged = payments.post("/payments", json={"order_id": order.id, "amount": 51}).json
    stock.post(f"/reservations/{order.reservation_id}/release")

    recover_once(pedidos.recovery, 10)

    assert status_of(order.id) == "failed"
    assert payments.get(f"/payments/{charged['id']}").json["status"] == "refunded"


def test_recovery_gives_back_a_hold_made_before_the_order_recorded_it(pedidos, make_item, item,
                                                                      status_of):
    item_id = make_item(quantity=5)
    order_id = pedidos.saga.record_pending(NewOrder("Ana", None, ((item_id, 1),)))
    pedidos.saga.estoque.reserve(order_id, [(item_id, 1)])  # estoque held it; we crashed

    recover_once(pedidos.recovery, 10)

    assert status_of(order_id) == "failed"
    assert (item(item_id)["quantity"], item(item_id)["reserved"]) == (5, 0)


def test_recovery_leaves_orders_younger_than_the_grace_period_alone(stuck_order, settings, app,
                                                                    status_of):
    order, _ = stuck_order
    patient = build(settings.model_copy(update={"recovery_grace_seconds": 3600}),
                    app.extensions["database"])

    assert recover_once(patient.recovery, 10) == 0
    assert status_of(order.id) == "stock_reserved"


def test_recovery_retries_a_compensation_a_participant_could_not_confirm(
        buy, make_item, settings, app, pagamentos, pagamentos_app, serve):
    pagamentos.stop()
    order_id = buy({make_item(quantity=3): 1}).json["order"]["id"]
    assert _compensation_pending(app, order_id)

    back = serve(pagamentos_app)
    recovered = build(settings.model_copy(update={"pagamentos_url": back.url}),
                      app.extensions["database"]).recovery

    assert recover_once(recovered, 10) == 1
    assert not _compensation_pending(app, order_id)
    assert recover_once(recovered, 10) == 0


def _compensation_pending(app, order_id) -> bool:
    with app.extensions["database"].reading() as session:
        return session.get(Order, order_id).compensation_pending


def test_recovery_finishing_a_sale_its_saga_already_failed_leaves_the_sale_given_back(
        stuck_order, pedidos, payments, item, status_of):
    """The interleaving replayed step by step: recovery saw the approved payment and the hold;
    meanwhile the saga, its own charge timed out, recorded the order failed; recovery commits
    the stock; then the saga gives everything back. Recovery's commit does not make the order
    paid, and the saga's compensation restocks what it sold."""
    order, item_id = stuck_order
    charged = payments.post("/payments", json={"order_id": order.id, "amount": 51}).json
    seen = pedidos.recovery.pagamentos.approved_payment(order.id)

    pedidos.store.advance(order.id, OrderStatus.FAILED, "charge timed out",
                          code="pagamentos_unavailable", compensation_pending=True)
    pedidos.recovery._finish_sale(order, order.reservation_id, seen)
    assert pedidos.saga.compensation.compensate(order.id, "saga_failed")

    assert status_of(order.id) == "failed"
    assert payments.get(f"/payments/{charged['id']}").json["status"] == "refunded"
    assert (item(item_id)["quantity"], item(item_id)["reserved"]) == (5, 0)
