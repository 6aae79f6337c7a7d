"""What travels between services: one definition for the side that answers with it and the
side that reads it back (estoque -> pedidos, pagamentos -> pedidos). Problem types, and the
payment as pagamentos answers it."""

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from veloz.core.errors import Conflict, PaymentRequired, Problem, Unprocessable
from veloz.core.money import AmountOutOfRange

__all__ = ["AmountOutOfRange", "InsufficientStock", "OrderAlreadyPaid", "OrderClosed", "Payment",
           "PaymentDeclined", "PaymentMismatch", "ReservationCommitted", "ReservationNotHeld",
           "UnknownItems", "UnpricedItems", "problem_from"]


class InsufficientStock(Conflict):
    """Some line of a reservation asks for more than can be sold; `errors` lists each one."""

    title, slug = "Insufficient stock", "insufficient-stock"


class UnknownItems(Unprocessable):
    title, slug = "Unknown items", "unknown-items"


class UnpricedItems(Unprocessable):
    """Items priced 0 (rows from before prices had to be positive): an order of them would be
    `paid` with no payment, and an order is paid only by an approved payment of its total."""

    title, slug = "Items without a price", "unpriced-items"


class ReservationNotHeld(Conflict):
    """A commit of a reservation whose stock already went back on sale (released, expired)."""

    title, slug = "Reservation is not held", "reservation-not-held"


class ReservationCommitted(Conflict):
    """A release of a reservation whose stock has left for good."""

    title, slug = "Reservation is committed", "reservation-committed"


class PaymentMismatch(Conflict):
    """A charge that differs (amount or method) from a payment the order already has: never
    a replay of it, and never proof that the order is paid."""

    title, slug = "Payment does not match", "payment-mismatch"


class OrderAlreadyPaid(Conflict):
    slug, title = "order-already-paid", "Order Already Paid"


class OrderClosed(Conflict):
    """A charge of an order whose books pagamentos closed (pedidos compensated the order):
    it takes no money, however late it arrives."""

    slug, title = "order-closed", "Order Closed"


class PaymentDeclined(PaymentRequired):
    """A charge the processor declined; pagamentos' answer carries the stored payment as its
    `payment` member, and pedidos' answer carries it on with the order."""

    title = "Payment Declined"


@dataclass(frozen=True)
class Payment:
    """A payment as pagamentos answers it, read once where its answer arrives; `answer` is
    the body as it came, passed on unchanged to whoever asked pedidos."""

    id: int
    order_id: int
    amount: Decimal
    method: str
    status: str
    decline_reason: str | None
    updated_at: datetime
    answer: dict[str, Any] = field(repr=False, compare=False)

    @classmethod
    def of(cls, answer: dict[str, Any]) -> "Payment":
        return cls(answer["id"], answer["order_id"], Decimal(str(answer["amount"])),
                   answer["method"], answer["status"], answer.get("decline_reason"),
                   datetime.fromisoformat(answer["updated_at"]), answer)

    @property
    def approved(self) -> bool:
        return self.status == "approved"


def problem_from(body: Mapping[str, Any], *kinds: type[Problem]) -> Problem | None:
    """The problem a service answered, as the first of `kinds` whose type it names (None when
    it names none of them), keeping its detail, field errors and extension members."""
    for kind in kinds:
        if body.get("type") == kind.type_uri():
            extensions = {name: value for name, value in body.items()
                          if name not in _STANDARD_MEMBERS}
            return kind(body.get("detail"), errors=body.get("errors"), **extensions)
    return None


_STANDARD_MEMBERS = frozenset({"type", "title", "status", "detail", "instance", "request_id",
                               "errors"})
