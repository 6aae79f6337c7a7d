"""The purchase saga, orchestrated by pedidos, and its compensation.

    1. record    record the order `pending` (once per Idempotency-Key)
    2. reserve   reserve every line at estoque's prices -> `stock_reserved`, total in Decimal
    3. charge    pagamentos charges exactly the total (declined -> `payment_declined`)
    4. commit    estoque commits the reservation -> `paid`

Each step records the order's new status (and why) before the next call, and no transaction
stays open across HTTP, so the recovery worker can finish or compensate whatever a crash
leaves. A step that cannot finish gives back what the earlier ones took (Compensation, at the
bottom) and the order ends `rejected`, `payment_declined` or `failed`.

The order's status is where a saga and the recovery worker meet: each records how the order
ends before it gives anything back (with `compensation_pending` until that is done), and only
along the status machine's edges. So when recovery takes over an order whose saga is still
waiting on a participant (its grace ran out behind a paused database), one of them ends it
and the other finds it ended: the loser gives nothing back and answers the order as it
stands, and no order stays `paid` with its money returned. (A cancel gives back first and
records `cancelled` after: that edge is open from `paid` too.)
"""

import logging
from dataclasses import dataclass

from pedidos import telemetry
from pedidos.clients import (
    RESERVATION_REFUSALS,
    UPSTREAM_DOWN,
    EstoqueClient,
    PagamentosClient,
)
from pedidos.domain import (
    IllegalTransition,
    OrderStatus,
    SagaFailed,
    mismatch_reason,
    pays_for,
    restock_key,
    settled_problem,
)
from pedidos.schemas import PaymentIn
from pedidos.store import NewOrder, OrderRecord, OrderStore, PricedLine
from veloz.core.contracts import (
    OrderClosed,
    Payment,
    PaymentDeclined,
    PaymentMismatch,
    ReservationCommitted,
    ReservationNotHeld,
    UnpricedItems,
)
from veloz.core.errors import Problem
from veloz.core.money import total_within_limit
from veloz.data.idempotency import IdempotencyInProgress

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PlaceOrder:
    """The command: an order to place, and how to pay for it."""

    order: NewOrder
    payment: PaymentIn | None = None


@dataclass
class SagaOutcome:
    """How placing an order ended: the order, the payment if one was made, the problem if any
    (None for a sale)."""

    order: OrderRecord
    payment: Payment | None = None
    problem: Problem | None = None


class PurchaseSaga:
    def __init__(self, store: OrderStore, estoque: EstoqueClient, pagamentos: PagamentosClient):
        self.store = store
        self.estoque = estoque
        self.pagamentos = pagamentos
        self.compensation = Compensation(store, estoque, pagamentos)

    def place(self, command: PlaceOrder) -> SagaOutcome:
        order_id = self.record_pending(command.order)
        if order_id is None:  # this Idempotency-Key placed an order already
            repeat = self.settled_repeat(command.order)
            if repeat is None:
                raise IdempotencyInProgress
            return repeat
        try:
            order = self.reserve(order_id, list(command.order.lines))
        except RESERVATION_REFUSALS as refusal:
            return self.reject(order_id, refusal)
        except UPSTREAM_DOWN as error:
            return self.fail(order_id, f"estoque unavailable: {error.detail}",
                             "estoque_unavailable")
        except IllegalTransition:  # its compensation finds the reservation and releases it
            return self.ended_elsewhere(order_id)
        return self.charge_and_commit(order, command.payment)

    # --- 1. record -----------------------------------------------------------------------

    def record_pending(self, new: NewOrder) -> int | None:
        """The new order's id; None when its Idempotency-Key already placed one."""
        return self.store.insert_pending(new)

    def settled_repeat(self, new: NewOrder) -> SagaOutcome | None:
        """For a repeated Idempotency-Key: the outcome of the order it placed once settled
        (recovery settles what a crash left), None when it placed none, IdempotencyInProgress
        while that order's saga still runs."""
        order = self.store.by_key(new.key_scope or "", new.key or "")
        if order is None:
            return None
        if OrderStatus(order.status).in_flight:
            raise IdempotencyInProgress
        return self.as_it_stands(order)

    def ended_elsewhere(self, order_id: int) -> SagaOutcome:
        """The answer when a step finds its order already ended (IllegalTransition): recovery
        took it over while this saga waited on a participant (or a cancel ended it), and
        gives back whatever the saga's steps took. The order as it stands."""
        return self.as_it_stands(self.store.load(order_id))

    def as_it_stands(self, order: OrderRecord) -> SagaOutcome:
        """The outcome of an order that already ended: its payment, and its problem if any."""
        payment = self.pagamentos.payment(order.payment_id) if order.payment_id else None
        return SagaOutcome(order, payment,
                           settled_problem(OrderStatus(order.status), order.failure_reason))

    # --- 2. reserve ----------------------------------------------------------------------

    def reserve(self, order_id: int, lines: list[tuple[int, int]]) -> OrderRecord:
        """Reserve every line at estoque's prices, then record the reservation and the
        total."""
        with telemetry.observe_saga_step("reserve"):
            reservation = self.estoque.reserve(order_id, lines)
        priced = [PricedLine(line.item_id, line.name, line.unit_price)
                  for line in reservation.lines]
        total = total_within_limit([(line.unit_price, line.quantity)
                                    for line in reservation.lines])
        return self.store.record_reservation(order_id, reservation.id, priced, total)

    def reject(self, order_id: int, refusal: Problem) -> SagaOutcome:
        """estoque refused the reservation: nothing was taken, nothing to give back."""
        try:
            rejected = self.store.advance(order_id, OrderStatus.REJECTED, refusal.detail,
                                          code=refusal.slug.replace("-", "_"))
        except IllegalTransition:
            return self.ended_elsewhere(order_id)
        return SagaOutcome(rejected, problem=refusal)

    # --- 3. charge -----------------------------------------------------------------------

    def charge_and_commit(self, order: OrderRecord, payment: PaymentIn | None) -> SagaOutcome:
        """Charge exactly the total, then commit. A total of 0 (estoque refuses to reserve
        an item priced 0, so only an older estoque could price one so) is never `paid`: an
        order is paid only by an approved payment of its total, and pagamentos takes none
        of 0."""
        if not order.total:
            return self.fail(order.id, "its total is 0 and nothing can pay for it",
                             "unpriced_items", UnpricedItems)
        try:
            with telemetry.observe_saga_step("charge"):
                charge = self.pagamentos.charge(order.id, order.total, payment)
        except UPSTREAM_DOWN as error:
            return self.fail(order.id, f"pagamentos unavailable: {error.detail}",
                             "pagamentos_unavailable")
        except PaymentMismatch as mismatch:
            return self.fail(order.id, mismatch.detail or "", "payment_mismatch",
                             PaymentMismatch)
        except OrderClosed:  # recovery gave this order back while its saga was still running
            return self.fail(order.id, "it was given back before pagamentos took the charge",
                             "order_closed")
        if not charge.approved:
            return self.decline(order, charge.payment)
        if not pays_for(charge.payment, order.total):
            return self.fail(order.id, mismatch_reason(charge.payment, order.total),
                             "payment_mismatch", PaymentMismatch)
        return self.commit(order, charge.payment)

    def decline(self, order: OrderRecord, payment: Payment) -> SagaOutcome:
        why = payment.decline_reason or "no reason given"
        declined, _ = self.end(order.id, OrderStatus.PAYMENT_DECLINED, f"payment declined: {why}",
                               why, "payment_declined", payment_id=payment.id)
        if declined.status != OrderStatus.PAYMENT_DECLINED:
            return self.as_it_stands(declined)
        return SagaOutcome(declined, payment, PaymentDeclined(f"The payment was declined: {why}."))

    # --- 4. commit -----------------------------------------------------------------------

    def commit(self, order: OrderRecord, payment: Payment) -> SagaOutcome:
        payment_id = payment.id
        assert order.reservation_id is not None  # recorded by step 2
        try:
            with telemetry.observe_saga_step("commit"):
                self.estoque.commit(order.reservation_id)
        except ReservationNotHeld:
            return self.fail(order.id, "the stock reservation expired before it could be "
                                       "committed", "reservation_expired", payment_id=payment_id)
        except UPSTREAM_DOWN as error:
            return self.fail(order.id, f"estoque unavailable at commit: {error.detail}",
                             "estoque_unavailable", payment_id=payment_id)
        try:
            paid = self.store.advance(order.id, OrderStatus.PAID,
                                      f"payment {payment_id} approved", code="approved",
                                      payment_id=payment_id)
        except IllegalTransition:
            # Its release of the reservation comes after the commit above (else the commit
            # would have been refused), is refused as committed and restocks.
            return self.ended_elsewhere(order.id)
        return SagaOutcome(paid, payment)

    # --- when a step cannot finish -------------------------------------------------------

    def fail(self, order_id: int, reason: str, code: str, problem: type[Problem] = SagaFailed,
             **changes) -> SagaOutcome:
        """Record `failed` with the reason (`code`, in a word, for metrics), then compensate;
        say only what compensation did."""
        trigger = "recovery" if code.startswith("recovered") else "saga_failed"
        order, given_back = self.end(order_id, OrderStatus.FAILED, reason, code, trigger,
                                     **changes)
        if order.status != OrderStatus.FAILED:
            return self.as_it_stands(order)
        aftermath = ("everything was given back" if given_back
                     else "giving back stock and money is pending and will be retried")
        headers = {"Retry-After": "2"} if problem is SagaFailed else {}
        return SagaOutcome(order, problem=problem(f"The order failed: {reason}; {aftermath}.",
                                                  headers=headers))

    def end(self, order_id: int, status: OrderStatus, reason: str, code: str, trigger: str,
            **changes) -> tuple[OrderRecord, bool]:
        """End the order in `status` (pending its compensation), then compensate: the order
        as it stands, and whether everything was given back. When another path ended it
        otherwise first (recovery finished the sale, a cancel), that end stands and nothing is
        given back here."""
        try:
            order = self.store.advance(order_id, status, reason, code=code,
                                       compensation_pending=True, **changes)
        except IllegalTransition:  # the caller answers it as it stands
            return self.store.load(order_id), False
        if not self.compensation.compensate(order_id, trigger):
            return order, False
        return self.store.compensation_done(order_id), True


class Compensation:
    """Gives back what an order took: its payments closed (every approved one refunded, and
    any charge still on its way refused), all its stock returned."""

    def __init__(self, store: OrderStore, estoque: EstoqueClient, pagamentos: PagamentosClient):
        self.store = store
        self.estoque = estoque
        self.pagamentos = pagamentos

    def compensate(self, order_id: int, trigger: str) -> bool:
        """Compensate as far as the participants allow; False leaves the rest to recovery.
        `trigger` says why, for metrics (payment_declined, saga_failed, recovery)."""
        try:
            with telemetry.observe_saga_step("compensate"):
                self.give_back(self.store.load(order_id))
        except UPSTREAM_DOWN as error:
            log.warning("compensation incomplete", extra={"order_id": order_id,
                                                          "error": error.detail})
            telemetry.record_compensation(trigger, completed=False)
            return False
        telemetry.record_compensation(trigger, completed=True)
        return True

    def give_back(self, order: OrderRecord) -> None:
        """Both are tried even when one participant is down; then the first failure is raised."""
        failures = []
        for step in (self.close_payments, self.return_stock):
            try:
                step(order)
            except UPSTREAM_DOWN as error:
                failures.append(error)
        if failures:
            raise failures[0]

    def close_payments(self, order: OrderRecord) -> None:
        self.pagamentos.close_order(order.id)

    def return_stock(self, order: OrderRecord) -> None:
        reservation_id = order.reservation_id or self._find_reservation(order)
        if reservation_id is None:
            return
        try:
            self.estoque.release(reservation_id)
        except ReservationCommitted:
            # estoque cannot un-commit: sold units go back on sale through restock.
            self._restock(order)

    def _find_reservation(self, order: OrderRecord) -> int | None:
        """A reservation estoque may have made while its answer was lost: re-posting the same
        order answers it (or makes one we release at once, or reserves nothing when
        short)."""
        try:
            return self.estoque.reserve(order.id, _lines(order)).id
        except RESERVATION_REFUSALS:
            return None

    def _restock(self, order: OrderRecord) -> None:
        """Each sold line's units back on sale, once: the restock's key makes a repeat (this
        compensation tried again after a restock that landed unseen, or another one running
        beside it) add nothing; the line's `restocked` mark records it once done."""
        for line in order.items:
            if line.restocked:
                continue
            returned = self.estoque.restock(line.item_id, line.quantity,
                                            restock_key(order.id, line.item_id))
            self.store.mark_restocked(order.id, line.item_id)
            if not returned:
                log.warning("units not returned: the item no longer exists",
                            extra={"order_id": order.id, "item_id": line.item_id,
                                   "quantity": line.quantity})


def _lines(order: OrderRecord) -> list[tuple[int, int]]:
    return [(line.item_id, line.quantity) for line in order.items]
