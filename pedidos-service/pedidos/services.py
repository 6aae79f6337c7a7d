"""Use cases of pedidos besides placing an order (saga.py) and reconciling the books
(reconciliation.py): cancelling an order, and recovering what a crash left mid-saga. Each reads
or writes through the OrderStore; none keeps a transaction open across HTTP. Reading orders has
no use case of its own: the routes ask the OrderStore."""

import logging
from datetime import timedelta

from pedidos import telemetry
from pedidos.clients import UPSTREAM_DOWN, PagamentosClient
from pedidos.domain import (
    Caller,
    IllegalTransition,
    OrderStatus,
    Recovery,
    must_cancel,
    pays_for,
    recovery_for,
    recovery_reason,
)
from pedidos.saga import Compensation, PurchaseSaga
from pedidos.store import OrderRecord, OrderStore
from veloz.core.contracts import Payment, ReservationNotHeld

log = logging.getLogger(__name__)


class Cancellation:
    def __init__(self, store: OrderStore, compensation: Compensation):
        self.store = store
        self.compensation = compensation

    def cancel(self, order_id: int, caller: Caller) -> OrderRecord:
        """Give back stock and money, then record `cancelled`. A repeat answers the same order;
        an order that never sold (rejected, failed) cannot be cancelled."""
        order = self.store.lock_visible(order_id, caller)
        if not must_cancel(OrderStatus(order.status)):
            return order
        self.compensation.give_back(order)
        telemetry.record_compensation("cancellation", completed=True)
        return self.store.advance(order_id, OrderStatus.CANCELLED, "cancelled on request",
                                  code="requested")


class OrderRecovery:
    """The use case: one unfinished order at a time, finished (`paid`) when an approved payment
    of exactly its total exists and its reservation still stands, else given back
    (`failed`)."""

    def __init__(self, saga: PurchaseSaga, pagamentos: PagamentosClient, grace_seconds: float):
        self.saga = saga
        self.store = saga.store
        self.pagamentos = pagamentos
        self.grace = timedelta(seconds=grace_seconds)

    def recover_next(self) -> int | None:
        """Finish or compensate one order left behind; returns its id, or None when none is."""
        order_id = self.store.lease_unfinished(self.grace)
        if order_id is not None:
            try:
                self._recover(self.store.load(order_id))
            except UPSTREAM_DOWN as error:
                log.warning("recovery postponed", extra={"order_id": order_id,
                                                         "error": error.detail})
                telemetry.record_recovery("postponed")
        return order_id

    def _recover(self, order: OrderRecord) -> None:
        status = OrderStatus(order.status)
        if not status.in_flight:  # settled, but its compensation did not finish
            self.saga.compensation.give_back(order)
            self.store.compensation_done(order.id)
            telemetry.record_recovery("compensation_finished")
            return
        payment = self.pagamentos.approved_payment(order.id)
        paid = payment is not None and pays_for(payment, order.total)
        reservation_id = order.reservation_id
        if (payment is not None and reservation_id is not None
                and recovery_for(status, paid, has_reservation=True) is Recovery.COMMIT):
            self._finish_sale(order, reservation_id, payment)
            return
        code, reason = recovery_reason(status, payment, order.total)
        self.saga.fail(order.id, f"recovered: {reason}", code)
        telemetry.record_recovery("failed")

    def _finish_sale(self, order: OrderRecord, reservation_id: int, payment: Payment) -> None:
        try:
            self.saga.estoque.commit(reservation_id)
        except ReservationNotHeld:
            self.saga.fail(order.id, "recovered: the stock reservation expired before the sale "
                                     "was committed", "recovered_reservation_expired")
            telemetry.record_recovery("failed")
            return
        try:
            self.store.advance(order.id, OrderStatus.PAID,
                               f"recovered: payment {payment.id} approved, stock committed",
                               code="recovered", payment_id=payment.id)
        except IllegalTransition:  # its saga ended it meanwhile; its compensation restocks
            log.info("order ended by its saga during recovery", extra={"order_id": order.id})
            return
        telemetry.record_recovery("committed")
