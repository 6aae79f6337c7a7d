"""The saga's participants over HTTP, through veloz's ServiceClient. Their answers become typed
results (a Reservation, a Payment) or typed errors here, so the saga never looks at a status
code or a JSON body."""

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from pedidos.config import PedidosSettings
from pedidos.domain import charge_key
from pedidos.schemas import PaymentIn
from veloz.core.codec import json_bytes, parse_json
from veloz.core.contracts import (
    AmountOutOfRange,
    InsufficientStock,
    OrderAlreadyPaid,
    OrderClosed,
    Payment,
    PaymentDeclined,
    PaymentMismatch,
    ReservationCommitted,
    ReservationNotHeld,
    UnknownItems,
    UnpricedItems,
    problem_from,
)
from veloz.data.idempotency import IdempotencyInProgress
from veloz.net.client import (
    Answer,
    ClientPolicy,
    ServiceClient,
    UpstreamTimeout,
    UpstreamUnavailable,
)

# What "a participant stayed unavailable after bounded retries" looks like to the saga.
UPSTREAM_DOWN = (UpstreamUnavailable, UpstreamTimeout)


# What estoque may refuse a reservation with; the order is then rejected.
RESERVATION_REFUSALS = (InsufficientStock, UnknownItems, AmountOutOfRange, UnpricedItems)


@dataclass(frozen=True)
class ReservationLine:
    item_id: int
    name: str
    quantity: int
    unit_price: Decimal


@dataclass(frozen=True)
class Reservation:
    id: int
    lines: tuple[ReservationLine, ...]

    @classmethod
    def of(cls, body: dict) -> "Reservation":
        lines = tuple(ReservationLine(line["item_id"], line["name"], line["quantity"],
                                      Decimal(line["unit_price"])) for line in body["items"])
        return cls(body["id"], lines)


@dataclass(frozen=True)
class Charge:
    approved: bool
    payment: Payment


def client_policy(settings: PedidosSettings) -> ClientPolicy:
    return ClientPolicy(connect_timeout=settings.upstream_connect_timeout_seconds,
                        read_timeout=settings.upstream_read_timeout_seconds,
                        retries=settings.upstream_retries,
                        backoff_seconds=settings.upstream_backoff_seconds,
                        connect_budget_seconds=settings.upstream_connect_budget_seconds)


def _json_body(payload: dict) -> dict:
    """Keyword arguments that send `payload` as JSON with money kept Decimal."""
    return {"body": json_bytes(payload),
            "headers": {"Content-Type": "application/json"}}


def _parsed(response: Answer):
    return parse_json(response.data or b"null")


def _problem_of(response: Answer) -> dict:
    body = _parsed(response)
    return body if isinstance(body, dict) else {}


def _refusal(response: Answer, status: int, *kinds):
    """The contract problem a `status` answer carries, if it is one of `kinds`."""
    if response.status != status:
        return None
    return problem_from(_problem_of(response), *kinds)


def _expect(name: str, response: Answer, *accepted: int):
    """The parsed body of an accepted answer; any other answer counts as the participant failing
    (a 5xx left after retries, or a 4xx the contract does not allow)."""
    if response.status not in accepted:
        raise UpstreamUnavailable(f"{name} answered {response.status}.")
    return _parsed(response)


class EstoqueClient:
    name = "estoque"

    def __init__(self, http: ServiceClient, reservation_ttl_seconds: int):
        self.http = http
        self.reservation_ttl_seconds = reservation_ttl_seconds

    def reserve(self, order_id: int, lines: list[tuple[int, int]]) -> Reservation:
        """All-or-nothing reservation; estoque answers the same one for the same order_id, so
        retries and look-ups are safe. Raises one of RESERVATION_REFUSALS when refused."""
        body = {"order_id": order_id, "ttl_seconds": self.reservation_ttl_seconds,
                "items": [{"item_id": item, "quantity": quantity} for item, quantity in lines]}
        response = self.http.request("POST", "/reservations", idempotent=True, **_json_body(body))
        refusal = (_refusal(response, 409, InsufficientStock)
                   or _refusal(response, 422, UnknownItems, AmountOutOfRange, UnpricedItems))
        if refusal is not None:
            raise refusal
        return Reservation.of(_expect(self.name, response, 200, 201))

    def commit(self, reservation_id: int) -> Reservation:
        """ReservationNotHeld when its stock already went back on sale."""
        return self._finish(reservation_id, "commit", ReservationNotHeld)

    def release(self, reservation_id: int) -> Reservation:
        """ReservationCommitted when its stock has left for good."""
        return self._finish(reservation_id, "release", ReservationCommitted)

    def _finish(self, reservation_id: int, action: str, refusal_kind) -> Reservation:
        response = self.http.request("POST", f"/reservations/{reservation_id}/{action}",
                                     idempotent=True)
        refusal = _refusal(response, 409, refusal_kind)
        if refusal is not None:
            raise refusal
        return Reservation.of(_expect(self.name, response, 200))

    def restock(self, item_id: int, quantity: int, key: str) -> bool:
        """Put sold units back on sale, once per Idempotency-Key `key` (a repeat answers the
        first restock and adds nothing, so it may be retried); False when the item no longer
        exists (nothing to return the units to)."""
        sent = _json_body({"quantity": quantity})
        sent["headers"]["Idempotency-Key"] = key
        response = self.http.request("POST", f"/items/{item_id}/restock", idempotent=True,
                                     **sent)
        if response.status == 404:
            return False
        _expect(self.name, response, 200)
        return True


class PagamentosClient:
    name = "pagamentos"

    def __init__(self, http: ServiceClient):
        self.http = http

    def charge(self, order_id: int, amount: Decimal, payment: PaymentIn | None) -> Charge:
        """One charge per order: the Idempotency-Key makes a retried call replay the first.
        When the order already has a payment, that payment (if approved) is the charge: the
        saga still checks its amount. PaymentMismatch when it has only a refused one;
        OrderClosed when the order was compensated (closed) before the charge arrived."""
        body = {"order_id": order_id, "amount": amount,
                **(payment.model_dump(exclude_none=True) if payment else {})}
        sent = _json_body(body)
        sent["headers"]["Idempotency-Key"] = charge_key(order_id)
        response = self.http.request("POST", "/payments", idempotent=True, **sent)
        declined = _refusal(response, 402, PaymentDeclined)
        if declined is not None:
            return Charge(False, _declined_payment(declined))
        conflict = _refusal(response, 409, OrderAlreadyPaid, PaymentMismatch, OrderClosed,
                            IdempotencyInProgress)
        if isinstance(conflict, IdempotencyInProgress):
            raise UpstreamUnavailable("pagamentos is still working on this order's charge.")
        if isinstance(conflict, OrderClosed):
            raise conflict
        if conflict is not None:
            return self._standing_charge(order_id, conflict)
        return Charge(True, Payment.of(_expect(self.name, response, 201)))

    def payments_for(self, order_id: int) -> list[Payment]:
        response = self.http.request("GET", "/payments",
                                     params={"order_id": order_id, "limit": 500})
        return [Payment.of(payment) for payment in _expect(self.name, response, 200)]

    def payment(self, payment_id: int) -> Payment:
        response = self.http.request("GET", f"/payments/{payment_id}")
        return Payment.of(_expect(self.name, response, 200))

    def approved_payment(self, order_id: int) -> Payment | None:
        return next((p for p in self.payments_for(order_id) if p.approved), None)

    def approved_payments(self, page_size: int = 500) -> list[Payment]:
        """Every approved payment, oldest first, page by page (`after` the last id seen)."""
        found: list[Payment] = []
        while True:
            params: dict[str, Any] = {"status": "approved", "limit": page_size}
            if found:
                params["after"] = found[-1].id
            page = _expect(self.name, self.http.request("GET", "/payments", params=params), 200)
            found.extend(Payment.of(payment) for payment in page)
            if len(page) < page_size:
                return found

    def close_order(self, order_id: int) -> None:
        """Refund the order's approved payment and have pagamentos refuse any later charge of
        it, in one transaction under the lock its charges take: a charge still on its way
        (one the saga gave up waiting for) cannot take money after this."""
        response = self.http.request("PUT", f"/closed-orders/{order_id}", idempotent=True)
        _expect(self.name, response, 200)

    def _standing_charge(self, order_id: int, conflict) -> Charge:
        payment = self.approved_payment(order_id)
        if payment is None:
            raise PaymentMismatch(conflict.detail, payment=conflict.extensions.get("payment"))
        return Charge(True, payment)


def _declined_payment(declined: PaymentDeclined) -> Payment:
    """The stored payment a decline carries; a decline without it breaks the contract, so it
    counts as pagamentos failing."""
    payment = declined.extensions.get("payment")
    if not isinstance(payment, dict):
        raise UpstreamUnavailable("pagamentos declined a charge without its payment.")
    return Payment.of(payment)
