
import pytest

from pedidos.domain import (
    Caller,
    IllegalTransition,
    OrderNotCancellable,
    OrderStatus,
    Recovery,
    charge_key,
    must_cancel,
    recovery_for,
    transition,
)

S = OrderStatus


@pytest.mark.parametrize(("current", "target"), [
    (S.PENDING, S.STOCK_RESERVED), (S.PENDING, S.REJECTED), (S.PENDING, S.FAILED),
    (S.PENDING, S.PAYMENT_DECLINED), (S.STOCK_RESERVED, S.PAID),
    (S.STOCK_RESERVED, S.PAYMENT_DECLINED), (S.STOCK_RESERVED, S.FAILED),
    (S.STOCK_RESERVED, S.CANCELLED), (S.PAID, S.CANCELLED),
])
def test_the_status_machine_allows_its_edges(current, target):
    assert transition(current, target) is target


@pytest.mark.parametrize(("current", "target"), [
    (S.PENDING, S.PAID), (S.PENDING, S.CANCELLED), (S.STOCK_RESERVED, S.REJECTED),
    (S.PAID, S.FAILED), (S.PAID, S.STOCK_RESERVED), (S.REJECTED, S.PAID),
    (S.FAILED, S.CANCELLED), (S.CANCELLED, S.PAID), (S.PAYMENT_DECLINED, S.PAID),
])
def test_the_status_machine_refuses_anything_else(current, target):
    with pytest.raises(IllegalTransition):
        transition(current, target)


def test_cancelling_has_work_only_for_reserved_or_paid_orders():
    assert must_cancel(S.STOCK_RESERVED)
    assert must_cancel(S.PAID)
    assert not must_cancel(S.CANCELLED)


@pytest.mark.parametrize("status", [S.REJECTED, S.FAILED, S.PAYMENT_DECLINED, S.PENDING])
def test_orders_that_never_sold_cannot_be_cancelled(status):
    with pytest.raises(OrderNotCancellable):
        must_cancel(status)


def test_internal_callers_and_admins_see_every_order_customers_only_theirs():
    assert Caller.from_headers(None, None).may_see("someone")
    assert Caller.from_headers("u2", "customer, admin").may_see("u1")
    assert Caller.from_headers("u1", "customer").may_see("u1")
    assert not Caller.from_headers("u2", "customer").may_see("u1")
    assert not Caller.from_headers("u2", "").may_see(None)


def test_recovery_commits_only_a_paid_order_whose_stock_is_held():
    assert recovery_for(S.STOCK_RESERVED, True, True) is Recovery.COMMIT
    assert recovery_for(S.STOCK_RESERVED, False, True) is Recovery.COMPENSATE
    assert recovery_for(S.PENDING, True, False) is Recovery.COMPENSATE
    assert recovery_for(S.PENDING, False, False) is Recovery.COMPENSATE


def test_an_order_has_one_charge_key():
    assert charge_key(7) == charge_key(7) == "order-7-charge"
    assert S.PENDING.in_flight
    assert not S.PAID.in_flight
