"""Order rules with no I/O: the status machine, who may see an order, totals and recovery."""

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from veloz.errors import Conflict, PaymentRequired, ServiceUnavailable, Unprocessable

CENT = Decimal("0.01")


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


class StockShort(Conflict):
    title, slug = "Insufficient stock", "insufficient-stock"


class UnknownItems(Unprocessable):
    title, slug = "Unknown items", "unknown-items"


class PaymentDeclined(PaymentRequired):
    title = "Payment Declined"


class SagaFailed(ServiceUnavailable):
    title, slug = "Order could not be completed", "order-failed"


class IdempotencyInProgress(Conflict):
    title, slug = "Request in progress", "idempotency-in-progress"


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


@dataclass(frozen=True)
class Caller:
    """Who is asking, as the gateway vouches for it; no user id means an internal call."""

    user_id: str | None = None
    roles: frozenset[str] = frozenset()

    @classmethod
    def from_headers(cls, user_id: str | None, roles: str | None) -> "Caller":
        names = frozenset(r.strip() for r in (roles or "").split(",") if r.strip())
        return cls(user_id or None, names)

    @property
    def sees_everything(self) -> bool:
        return self.user_id is None or "admin" in self.roles

    def may_see(self, customer_id: str | None) -> bool:
        return self.sees_everything or customer_id == self.user_id

    @property
    def idempotency_scope(self) -> str:
        """Keys are the caller's own: another caller's identical key names another order."""
        if self.user_id is None:
            return "POST /orders"
        return f"POST /orders by {hashlib.sha256(self.user_id.encode()).hexdigest()[:24]}"


def line_subtotal(unit_price: Decimal, quantity: int) -> Decimal:
    return (unit_price * quantity).quantize(CENT)


def order_total(lines: Iterable[tuple[Decimal, int]]) -> Decimal:
    """Sum of unit price x quantity, exact to the cent."""
    return sum((line_subtotal(price, quantity) for price, quantity in lines), Decimal("0.00"))


def settled_problem(status: OrderStatus, reason: str | None) -> Conflict | None:
    """The answer POST /orders gives for an order that ended in `status`: a problem, or None
    for a sale (a later cancel does not change what placing the order answered)."""
    detail = reason or status.value
    answers = {OrderStatus.REJECTED: StockShort, OrderStatus.PAYMENT_DECLINED: PaymentDeclined,
               OrderStatus.FAILED: SagaFailed}
    problem = answers.get(status)
    return problem(detail) if problem else None


def charge_key(order_id: int) -> str:
    """The Idempotency-Key of an order's one charge, so a retried charge is never a second one."""
    return f"order-{order_id}-charge"


class Recovery(StrEnum):
    """What the recovery worker does with an order a saga left unfinished."""

    COMMIT = "commit"          # money taken, stock still held: finish the sale
    COMPENSATE = "compensate"  # give everything back and fail the order


def recovery_for(status: OrderStatus, payment_approved: bool, has_hold: bool) -> Recovery:
    if payment_approved and status is OrderStatus.STOCK_RESERVED and has_hold:
        return Recovery.COMMIT
    return Recovery.COMPENSATE
