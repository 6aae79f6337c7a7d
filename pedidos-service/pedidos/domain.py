"""Order rules with no I/O: the status machine, who may see an order, totals and recovery."""

import hashlib
from decimal import Decimal
from enum import StrEnum

from veloz.core import identity
from veloz.core.contracts import InsufficientStock, Payment, PaymentDeclined
from veloz.core.errors import Conflict, Problem, ServiceUnavailable


class OrderStatus(StrEnum):
    PENDING = "pending"
    STOCK_RESERVED = "stock_reserved"
    PAID = "paid"
    REJECTED = "rejected"
    PAYMENT_DECLINED = "payment_declined"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def in_flight(self) -> bool:
        return self in (OrderStatus.PENDING, OrderStatus.STOCK_RESERVED)


TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    OrderStatus.PENDING: frozenset({OrderStatus.STOCK_RESERVED, OrderStatus.REJECTED,
                                    OrderStatus.PAYMENT_DECLINED, OrderStatus.FAILED}),
    OrderStatus.STOCK_RESERVED: frozenset({OrderStatus.PAID, OrderStatus.PAYMENT_DECLINED,
                                           OrderStatus.FAILED, OrderStatus.CANCELLED}),
    OrderStatus.PAID: frozenset({OrderStatus.CANCELLED}),
}


class IllegalTransition(Conflict):
    title, slug = "Illegal status change", "illegal-transition"


class OrderNotCancellable(Conflict):
    title, slug = "Order cannot be cancelled", "order-not-cancellable"


class SagaFailed(ServiceUnavailable):
    title, slug = "Order could not be completed", "order-failed"


def transition(current: OrderStatus, target: OrderStatus) -> OrderStatus:
    """The new status, or IllegalTransition when the machine has no such edge."""
    if target not in TRANSITIONS.get(current, frozenset()):
        raise IllegalTransition(f"An order cannot go from {current.value} to {target.value}.")
    return target


def must_cancel(status: OrderStatus) -> bool:
    """True when cancelling has work to do; False for a repeat (already cancelled)."""
    if status is OrderStatus.CANCELLED:
        return False
    if OrderStatus.CANCELLED not in TRANSITIONS.get(status, frozenset()):
        raise OrderNotCancellable(f"An order that is {status.value} cannot be cancelled.")
    return True


class Caller(identity.Caller):
    """Who is asking (veloz.core.identity), and the scope its Idempotency-Keys live in."""

    @property
    def idempotency_scope(self) -> str:
        """Keys are the caller's own: another caller's identical key names another order."""
        if self.user_id is None:
            return "POST /orders"
        return f"POST /orders by {hashlib.sha256(self.user_id.encode()).hexdigest()[:24]}"


def settled_problem(status: OrderStatus, reason: str | None) -> Problem | None:
    """The answer POST /orders gives for an order that ended in `status`: a problem, or None
    for a sale (a later cancel does not change what placing the order answered)."""
    detail = reason or status.value
    answers = {OrderStatus.REJECTED: InsufficientStock,
               OrderStatus.PAYMENT_DECLINED: PaymentDeclined,
               OrderStatus.FAILED: SagaFailed}
    problem = answers.get(status)
    return problem(detail) if problem else None


def charge_key(order_id: int) -> str:
    """The Idempotency-Key of an order's one charge, so a retried charge is never a second one."""
    return f"order-{order_id}-charge"


def restock_key(order_id: int, item_id: int) -> str:
    """The Idempotency-Key of the restock that gives back an order line's sold units, so a
    restock tried again (after one that landed unseen) never adds them twice."""
    return f"order-{order_id}-restock-{item_id}"


class Recovery(StrEnum):
    """What the recovery worker does with an order a saga left unfinished."""

    COMMIT = "commit"          # money taken, stock still reserved: finish the sale
    COMPENSATE = "compensate"  # give everything back and fail the order


def recovery_for(status: OrderStatus, paid_in_full: bool, has_reservation: bool) -> Recovery:
    """`paid_in_full`: an approved payment of exactly the order total exists."""
    if paid_in_full and status is OrderStatus.STOCK_RESERVED and has_reservation:
        return Recovery.COMMIT
    return Recovery.COMPENSATE


def pays_for(payment: Payment, total: Decimal | None) -> bool:
    """Only an approved payment of exactly the order total pays for the order."""
    return payment.approved and total is not None and payment.amount == total


def mismatch_reason(payment: Payment, total: Decimal | None) -> str:
    return f"payment {payment.id} is for {payment.amount}, not the order total {total}"


def recovery_reason(status: OrderStatus, payment: Payment | None,
                    total: Decimal | None) -> tuple[str, str]:
    """What the recovery worker found when it had to give an unfinished order back: a short
    code (for metrics) and the reason it records."""
    if payment is not None and not pays_for(payment, total):
        return "recovered_payment_mismatch", mismatch_reason(payment, total)
    if status is OrderStatus.PENDING:
        return ("recovered_before_reservation",
                "the purchase stopped before stock was held; nothing was charged")
    if payment is None:
        return ("recovered_no_payment", "the purchase stopped after stock was held and before "
                                        "any payment was approved")
    return ("recovered_no_reservation",
            "the payment was approved but the order has no stock hold to commit")
