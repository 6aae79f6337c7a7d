"""Problem types that travel between services: one definition for the side that answers with
them and the side that reads them back (estoque -> pedidos, pagamentos -> pedidos)."""

from collections.abc import Mapping
from typing import Any

from veloz.core.errors import Conflict, Problem, Unprocessable
from veloz.core.money import AmountOutOfRange

__all__ = ["AmountOutOfRange", "InsufficientStock", "OrderAlreadyPaid", "PaymentMismatch",
           "ReservationCommitted", "ReservationNotHeld", "UnknownItems", "UnpricedItems",
           "problem_from"]


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
