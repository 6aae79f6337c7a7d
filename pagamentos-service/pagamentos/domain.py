"""Payment rules: how a charge turns out, what is kept of a card, when a refund is allowed.

Pure Python: no Flask, no SQLAlchemy. Random draws come in as numbers in [0, 1).
"""

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Protocol

from veloz.core.errors import Conflict, ServiceUnavailable


class PaymentStatus(StrEnum):
    APPROVED = "approved"
    DECLINED = "declined"
    REFUNDED = "refunded"


class PaymentMethod(StrEnum):
    CREDIT_CARD = "credit_card"
    DEBIT_CARD = "debit_card"
    PIX = "pix"
    BOLETO = "boleto"


class DeclineReason(StrEnum):
    CARD_DECLINED = "card_declined"
    INSUFFICIENT_FUNDS = "insufficient_funds"
    # A decline drawn by PAYMENT_DECLINE_RATE: the simulated acquirer's risk check said no.
    RISK_DECLINED = "risk_declined"


CARD_METHODS = frozenset({PaymentMethod.CREDIT_CARD, PaymentMethod.DEBIT_CARD})


@dataclass(frozen=True)
class Outcome:
    status: PaymentStatus
    decline_reason: DeclineReason | None = None

    @property
    def approved(self) -> bool:
        return self.status == PaymentStatus.APPROVED


APPROVED = Outcome(PaymentStatus.APPROVED)
TEST_CARDS = {
    "4000000000000002": Outcome(PaymentStatus.DECLINED, DeclineReason.CARD_DECLINED),
    "4000000000009995": Outcome(PaymentStatus.DECLINED, DeclineReason.INSUFFICIENT_FUNDS),
    "4242424242424242": APPROVED,
}


class PaymentNotRefundable(Conflict):
    slug, title = "payment-not-refundable", "Payment Not Refundable"


class ThroughTheOrder(Conflict):
    """A person asked pagamentos to move an order's money directly. Orders and payments are two
    books that must agree, so a person charges by placing an order and refunds by cancelling
    it (which also returns the stock); only pedidos moves an order's money here."""

    slug, title = "payment-through-order", "Payment Through The Order"


class ProcessorUnavailable(ServiceUnavailable):
    slug, title = "payment-processor-unavailable", "Payment Processor Unavailable"


class Charge(Protocol):
    @property
    def amount(self) -> Decimal: ...

    @property
    def method(self) -> str: ...


class StoredPayment(Protocol):
    @property
    def id(self) -> int: ...

    @property
    def order_id(self) -> int: ...

    @property
    def status(self) -> str: ...


def asks_the_same(earlier: Charge, request: Charge) -> bool:
    """A charge repeats an earlier payment of its order only if it asks for the same thing."""
    return earlier.amount == request.amount and earlier.method == request.method


def accepts_card(method: PaymentMethod) -> bool:
    return method in CARD_METHODS


def card_last4(card_number: str | None) -> str | None:
    """The only part of a card number that may be kept."""
    return card_number[-4:] if card_number else None


def charge_outcome(card_number: str | None, decline_rate: float, draw: float) -> Outcome:
    """Test cards decide; otherwise approve with probability 1 - decline_rate."""
    if card_number in TEST_CARDS:
        return TEST_CARDS[card_number]
    if draw < decline_rate:
        return Outcome(PaymentStatus.DECLINED, DeclineReason.RISK_DECLINED)
    return APPROVED


def processor_fails(failure_rate: float, draw: float) -> bool:
    return draw < failure_rate


def refunded_status(status: str) -> PaymentStatus:
    """Refunding is idempotent; money never taken cannot be given back."""
    if status == PaymentStatus.DECLINED:
        raise PaymentNotRefundable("A declined payment took no money, so it cannot be refunded.")
    return PaymentStatus.REFUNDED


def status_after_refund(payment: StoredPayment, by_person: bool) -> PaymentStatus:
    """The status a refund leaves the payment in. `by_person`: a user the gateway vouches for,
    who may not refund a standing payment here (see ThroughTheOrder)."""
    status = refunded_status(payment.status)
    if by_person and payment.status == PaymentStatus.APPROVED:
        raise order_route_for_refund(payment.id, payment.order_id)
    return status


def order_route_for_refund(payment_id: int, order_id: int) -> ThroughTheOrder:
    """The refusal of a person's refund of a standing payment: it names the order's route."""
    route = f"/orders/{order_id}/cancel"
    return ThroughTheOrder(
        f"Payment {payment_id} pays order {order_id}: refund it by cancelling the order "
        f"(POST {route}), which also returns its stock, so the order and its payment agree.",
        order_id=order_id, order_route=route)


def order_route_for_closing(order_id: int) -> ThroughTheOrder:
    """The refusal of a person's closing of an order's payments: they cancel the order."""
    route = f"/orders/{order_id}/cancel"
    return ThroughTheOrder(
        f"Order {order_id}'s payments are given back by cancelling the order (POST {route}), "
        "which also returns its stock; pagamentos closes an order only for pedidos.",
        order_id=order_id, order_route=route)


def order_route_for_charge(order_id: int) -> ThroughTheOrder:
    """The refusal of a person's direct charge: payments are made by placing an order."""
    return ThroughTheOrder(
        f"A payment for order {order_id} is made by placing the order (POST /orders), so the "
        "order and its payment agree; pagamentos takes charges only from pedidos.",
        order_id=order_id, order_route="/orders")
