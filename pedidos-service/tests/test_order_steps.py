"""Recorded steps: one statement when the order stands where the step expects; otherwise the
store locks the row and the status machine decides (a repeat changes nothing, a missing edge
is refused)."""

from decimal import Decimal

import pytest

from pedidos.domain import Caller, IllegalTransition, OrderStatus
from pedidos.store import NewOrder, PricedLine

SERVICE = Caller()  # another service of the platform: sees every order


@pytest.fixture
def store(pedidos):
    return pedidos.saga.store


def statuses_recorded(store, order_id: int) -> list[str]:
    return [event.status for event in store.events(order_id, SERVICE)]


def test_a_repeated_step_leaves_the_order_and_its_events_as_they_were(store, held_order,
                                                                      make_item):
    order = held_order({make_item(): 1})
    settled = []
    store.on_settled = lambda status, code, total: settled.append(status)

    first = store.advance(order.id, OrderStatus.FAILED, "first word", code="test")
    again = store.advance(order.id, OrderStatus.FAILED, "second word", code="test")

    assert again == first
    assert again.failure_reason == "first word"
    assert statuses_recorded(store, order.id) == ["pending", "stock_reserved", "failed"]
    assert settled == [OrderStatus.FAILED]


def test_a_step_along_no_edge_of_the_machine_is_refused_and_records_nothing(store):
    order_id = store.insert_pending(NewOrder("Ana", None, ((1, 1),)))

    with pytest.raises(IllegalTransition):
        store.advance(order_id, OrderStatus.PAID, "paid", code="test")

    assert store.load(order_id).status == OrderStatus.PENDING
    assert statuses_recorded(store, order_id) == ["pending"]


def test_recording_a_hold_for_an_order_that_moved_on_rolls_back_its_prices(store):
    order_id = store.insert_pending(NewOrder("Ana", None, ((1, 2),)))
    store.advance(order_id, OrderStatus.FAILED, "gave up", code="test")

    with pytest.raises(IllegalTransition):
        store.record_reservation(order_id, 99, [PricedLine(1, "Camiseta", Decimal("10.00"))],
                                 Decimal("20.00"))

    order = store.load(order_id)
    assert (order.status, order.reservation_id, order.total) == (OrderStatus.FAILED, None, None)
    assert [(line.item_name, line.unit_price) for line in order.items] == [(None, None)]


def test_recording_a_hold_prices_every_line_it_names_and_answers_as_stored(store):
    order_id = store.insert_pending(NewOrder("Ana", None, ((1, 2), (2, 1), (3, 1))))

    recorded = store.record_reservation(
        order_id, 7, [PricedLine(1, "Camiseta", Decimal("10.00")),
                      PricedLine(2, "Boné", Decimal("25.50"))], Decimal("45.50"))

    assert recorded == store.load(order_id)
    assert (recorded.status, recorded.reservation_id, recorded.total) == (
        OrderStatus.STOCK_RESERVED, 7, Decimal("45.50"))
    assert [(line.item_id, line.item_name, line.unit_price) for line in recorded.items] == [
        (1, "Camiseta", Decimal("10.00")), (2, "Boné", Decimal("25.50")), (3, None, None)]
    assert statuses_recorded(store, order_id) == ["pending", "stock_reserved"]
