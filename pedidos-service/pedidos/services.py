"""Use cases of pedidos and the purchase saga.

Each step owns one short transaction and no transaction is ever open across an HTTP call: a
step writes the order's new status (and why) before the saga makes its next call, so the
recovery worker can finish or compensate whatever a crash leaves behind.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from flask import Response
from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from pedidos.clients import (
    UPSTREAM_DOWN,
    EstoqueClient,
    HoldCommitted,
    HoldNotHeld,
    PagamentosClient,
)
from pedidos.domain import (
    Caller,
    IdempotencyInProgress,
    OrderStatus,
    PaymentDeclined,
    Recovery,
    SagaFailed,
    StockShort,
    UnknownItems,
    must_cancel,
    order_total,
    recovery_for,
    settled_problem,
    transition,
)
from pedidos.models import Order, OrderEvent, OrderItem, idempotency_keys
from pedidos.schemas import OrderCreate, OrderQuery, PaymentIn
from veloz.db import Database, utcnow
from veloz.errors import NotFound, Problem
from veloz.idempotency import IdempotencyKey, StoredResponse, claim, remember
from veloz.paging import SortKey, keyset_page

log = logging.getLogger(__name__)
FAILURES = (OrderStatus.REJECTED, OrderStatus.PAYMENT_DECLINED, OrderStatus.FAILED)


@dataclass
class SagaOutcome:
    """How POST /orders ended: the order, the payment if one was made, the problem if any."""

    order: Order
    payment: dict | None = None
    problem: Problem | None = field(default=None)


class Orders:
    def __init__(self, db: Database, estoque: EstoqueClient, pagamentos: PagamentosClient,
                 *, recovery_grace_seconds: float = 30.0,
                 on_final: Callable[[str], None] = lambda status: None):
        self.db = db
        self.estoque = estoque
        self.pagamentos = pagamentos
        self.grace = timedelta(seconds=recovery_grace_seconds)
        self.on_final = on_final

    # --- reads ---------------------------------------------------------------------------

    def get(self, order_id: int, caller: Caller) -> Order:
        with self.db.reading() as session:
            return _visible(session, order_id, caller)

    def events(self, order_id: int, caller: Caller) -> list[OrderEvent]:
        with self.db.reading() as session:
            _visible(session, order_id, caller)
            return list(session.scalars(select(OrderEvent).where(OrderEvent.order_id == order_id)
                                        .order_by(OrderEvent.id)))

    def page(self, query: OrderQuery, caller: Caller) -> list[Order]:
        cursor = None if query.after is None else (query.after,)
        statement = keyset_page(_filtered(query, caller), [SortKey(Order.id)], query, cursor)
        with self.db.reading() as session:
            return list(session.scalars(statement))

    # --- the purchase saga ---------------------------------------------------------------

    def place(self, request: OrderCreate, key: IdempotencyKey | None, caller: Caller,
              render: Callable[[SagaOutcome], Response]) -> Response:
        """Run the saga once per Idempotency-Key; a repeat replays the stored answer."""
        opened = self.open(request, key, caller.user_id)
        if isinstance(opened, StoredResponse) and opened.status is not None:
            return opened.replay()
        if isinstance(opened, StoredResponse):
            return self._answer_unfinished_repeat(key, render)
        return self._remember(key, render(self.run_saga(opened, request)))

    def open(self, request: OrderCreate, key: IdempotencyKey | None,
             customer_id: str | None) -> int | StoredResponse:
        """Step 1: claim the key and insert the order `pending`, in one transaction."""
        with self.db.transaction() as session:
            if key is not None and (stored := claim(session, idempotency_keys, key)) is not None:
                return stored
            order = Order(customer=request.customer, customer_id=customer_id,
                          status=OrderStatus.PENDING,
                          idempotency_scope=key.scope if key else None,
                          idempotency_key=key.key if key else None,
                          items=[OrderItem(item_id=line.item_id, quantity=line.quantity)
                                 for line in request.items])
            session.add(order)
            session.flush()
            session.add(OrderEvent(order_id=order.id, status=OrderStatus.PENDING,
                                   reason="order received"))
            return order.id

    def _answer_unfinished_repeat(self, key: IdempotencyKey,
                                  render: Callable[[SagaOutcome], Response]) -> Response:
        """A repeat whose first attempt stored no answer: it is still running, or a crash cut
        it short. Once the order has settled (recovery finishes what a crash left), answer
        from its final state and keep that answer for later repeats."""
        with self.db.reading() as session:
            order = session.scalars(select(Order).where(
                Order.idempotency_scope == key.scope, Order.idempotency_key == key.key)).one()
        if OrderStatus(order.status).in_flight:
            raise IdempotencyInProgress("A request with this Idempotency-Key is still running; "
                                        "retry shortly.", headers={"Retry-After": "1"})
        payment = self.pagamentos.payment(order.payment_id) if order.payment_id else None
        problem = settled_problem(OrderStatus(order.status), order.failure_reason)
        return self._remember(key, render(SagaOutcome(order, payment, problem)))

    def _remember(self, key: IdempotencyKey | None, response: Response) -> Response:
        if key is not None:
            with self.db.transaction() as session:
                remember(session, idempotency_keys, key, StoredResponse.of(response))
        return response

    def run_saga(self, order_id: int, request: OrderCreate) -> SagaOutcome:
        try:
            order = self.reserve_stock(order_id, [(line.item_id, line.quantity)
                                                  for line in request.items])
        except (StockShort, UnknownItems) as refusal:
            order = self._move(order_id, OrderStatus.REJECTED, refusal.detail)
            return SagaOutcome(order, problem=refusal)
        except UPSTREAM_DOWN as error:
            return self._fail(order_id, f"estoque unavailable: {error.detail}")
        return self.charge_and_commit(order, request.payment)

    def reserve_stock(self, order_id: int, wanted: list[tuple[int, int]] | None = None) -> Order:
        """Step 2: hold every line at estoque's prices, then record the hold and the total.
        `wanted` saves reading back the lines step 1 has just written."""
        hold = self.estoque.reserve(order_id, wanted or _wanted(self._load(order_id)))
        with self.db.transaction() as session:
            order = _locked(session, order_id)
            order.status = transition(OrderStatus(order.status), OrderStatus.STOCK_RESERVED)
            order.reservation_id = hold.id
            held = {line.item_id: line for line in hold.lines}
            for line in order.items:
                line.item_name = held[line.item_id].name
                line.unit_price = held[line.item_id].unit_price
            order.total = order_total((line.unit_price, line.quantity) for line in order.items)
            _add_event(session, order, f"stock held by reservation {hold.id}")
            return order

    def charge_and_commit(self, order: Order, payment: PaymentIn | None) -> SagaOutcome:
        """Steps 3 and 4: charge the total (nothing to charge for free items), then commit."""
        if not order.total:
            return self._commit_sale(order, None)
        try:
            charge = self.pagamentos.charge(order.id, order.total, payment)
        except UPSTREAM_DOWN as error:
            return self._fail(order.id, f"pagamentos unavailable: {error.detail}")
        if not charge.approved:
            return self._decline(order, charge.payment)
        return self._commit_sale(order, charge.payment)

    def _commit_sale(self, order: Order, payment: dict | None) -> SagaOutcome:
        payment_id = payment["id"] if payment else None
        try:
            self.estoque.commit(order.reservation_id)
        except HoldNotHeld:
            return self._fail(order.id, "the stock hold expired before it could be committed",
                              payment_id=payment_id)
        except UPSTREAM_DOWN as error:
            return self._fail(order.id, f"estoque unavailable at commit: {error.detail}",
                              payment_id=payment_id)
        why = "nothing to charge" if payment is None else f"payment {payment_id} approved"
        return SagaOutcome(self._move(order.id, OrderStatus.PAID, why, payment_id=payment_id),
                           payment)

    def _decline(self, order: Order, payment: dict) -> SagaOutcome:
        why = payment.get("decline_reason") or "no reason given"
        settled = self._settle(order.id)
        declined = self._move(order.id, OrderStatus.PAYMENT_DECLINED, f"payment declined: {why}",
                              payment_id=payment.get("id"), compensation_pending=not settled)
        return SagaOutcome(declined, payment,
                           PaymentDeclined(f"The payment was declined: {why}."))

    def _fail(self, order_id: int, reason: str, **changes) -> SagaOutcome:
        settled = self._settle(order_id)
        order = self._move(order_id, OrderStatus.FAILED, reason,
                           compensation_pending=not settled, **changes)
        return SagaOutcome(order, problem=SagaFailed(
            f"The order failed and was compensated: {reason}.", headers={"Retry-After": "2"}))

    # --- compensation --------------------------------------------------------------------

    def _settle(self, order_id: int) -> bool:
        """Compensate as far as the participants allow; False leaves the rest to recovery."""
        try:
            self._compensate(self._load(order_id))
        except UPSTREAM_DOWN as error:
            log.warning("compensation incomplete", extra={"order_id": order_id,
                                                          "error": error.detail})
            return False
        return True

    def _compensate(self, order: Order) -> None:
        """Refund every approved payment of the order and give back all its stock; both are
        tried even when one participant is down, then the first failure is raised."""
        failures = []
        for step in (self._refund_payments, self._return_stock):
            try:
                step(order)
            except UPSTREAM_DOWN as error:
                failures.append(error)
        if failures:
            raise failures[0]

    def _refund_payments(self, order: Order) -> None:
        for payment in self.pagamentos.payments_for(order.id):
            if payment["status"] == "approved":
                self.pagamentos.refund(payment["id"])

    def _return_stock(self, order: Order) -> None:
        reservation_id = order.reservation_id or self._look_up_hold(order)
        if reservation_id is None:
            return
        try:
            self.estoque.release(reservation_id)
        except HoldCommitted:
            # estoque cannot un-commit: sold units go back on sale through restock.
            self._restock(order)

    def _look_up_hold(self, order: Order) -> int | None:
        """A hold estoque may have made while its answer was lost: re-posting the same order
        answers that hold (or makes one we release at once, or holds nothing when short)."""
        try:
            return self.estoque.reserve(order.id, _wanted(order)).id
        except (StockShort, UnknownItems):
            return None

    def _restock(self, order: Order) -> None:
        for line in order.items:
            if self._claim_restock(order.id, line.item_id, True):
                try:
                    self.estoque.restock(line.item_id, line.quantity)
                except UPSTREAM_DOWN:
                    self._claim_restock(order.id, line.item_id, False)
                    raise

    def _claim_restock(self, order_id: int, item_id: int, restocked: bool) -> bool:
        """Flip the line's `restocked` mark; True when this call flipped it (at most once)."""
        with self.db.transaction() as session:
            return session.execute(
                update(OrderItem).where(OrderItem.order_id == order_id,
                                        OrderItem.item_id == item_id,
                                        OrderItem.restocked.is_not(restocked))
                .values(restocked=restocked).returning(OrderItem.item_id)
            ).first() is not None

    # --- cancellation --------------------------------------------------------------------

    def cancel(self, order_id: int, caller: Caller) -> Order:
        """Give back stock and money, then mark `cancelled`. A repeat answers the same order."""
        with self.db.transaction() as session:
            order = _visible(session, order_id, caller, lock=True)
            if not must_cancel(OrderStatus(order.status)):
                return order
        self._compensate(order)
        return self._move(order_id, OrderStatus.CANCELLED, "cancelled on request")

    # --- recovery ------------------------------------------------------------------------

    def recover_next(self) -> int | None:
        """Finish or compensate one order left behind; returns its id, or None when none is."""
        order_id = self._lease_stale_order()
        if order_id is not None:
            try:
                self._recover(self._load(order_id))
            except UPSTREAM_DOWN as error:
                log.warning("recovery postponed", extra={"order_id": order_id,
                                                         "error": error.detail})
        return order_id

    def _lease_stale_order(self) -> int | None:
        """Take one stale order (SKIP LOCKED, so replicas never share one) and touch it, so no
        replica picks it again within the grace period while we call the participants."""
        with self.db.transaction() as session:
            order = session.scalars(
                select(Order)
                .where(or_(Order.status.in_([OrderStatus.PENDING, OrderStatus.STOCK_RESERVED]),
                           Order.compensation_pending),
                       Order.updated_at <= utcnow() - self.grace)
                .order_by(Order.updated_at).limit(1).with_for_update(skip_locked=True)
            ).first()
            if order is None:
                return None
            order.updated_at = utcnow()
            return order.id

    def _recover(self, order: Order) -> None:
        if not OrderStatus(order.status).in_flight:
            self._compensate(order)
            self._set(order.id, compensation_pending=False)
            return
        payment = self.pagamentos.approved_payment(order.id)
        action = recovery_for(OrderStatus(order.status), payment is not None,
                              order.reservation_id is not None)
        if action is Recovery.COMMIT:
            self._finish_sale(order, payment)
        else:
            self._fail(order.id, "recovered: " + ("no approved payment" if payment is None
                                                  else "payment refunded"))

    def _finish_sale(self, order: Order, payment: dict) -> None:
        try:
            self.estoque.commit(order.reservation_id)
        except HoldNotHeld:
            self._fail(order.id, "recovered: the stock hold expired; payment refunded")
            return
        self._move(order.id, OrderStatus.PAID,
                   f"recovered: payment {payment['id']} approved, stock committed",
                   payment_id=payment["id"])

    # --- persistence of steps ------------------------------------------------------------

    def _load(self, order_id: int) -> Order:
        with self.db.reading() as session:
            return _found(session.get(Order, order_id), order_id)

    def _set(self, order_id: int, **changes) -> None:
        with self.db.transaction() as session:
            order = _locked(session, order_id)
            for name, value in changes.items():
                setattr(order, name, value)

    def _move(self, order_id: int, target: OrderStatus, reason: str | None, **changes) -> Order:
        """Change status (only along the machine's edges) and log why, in one transaction."""
        with self.db.transaction() as session:
            order = _locked(session, order_id)
            if order.status == target:  # a repeat (e.g. two cancels racing) changes nothing
                return order
            order.status = transition(OrderStatus(order.status), target)
            if target in FAILURES:
                order.failure_reason = reason
            for name, value in changes.items():
                setattr(order, name, value)
            _add_event(session, order, reason)
        self.on_final(target.value)
        return order


def _wanted(order: Order) -> list[tuple[int, int]]:
    return [(line.item_id, line.quantity) for line in order.items]


def _add_event(session: Session, order: Order, reason: str | None) -> None:
    session.add(OrderEvent(order_id=order.id, status=order.status, reason=reason, at=utcnow()))


def _locked(session: Session, order_id: int) -> Order:
    statement = (select(Order).where(Order.id == order_id).with_for_update()
                 .execution_options(populate_existing=True))
    return _found(session.scalars(statement).first(), order_id)


def _visible(session: Session, order_id: int, caller: Caller, lock: bool = False) -> Order:
    order = _locked(session, order_id) if lock else session.get(Order, order_id)
    if order is None or not caller.may_see(order.customer_id):
        raise _not_found(order_id)
    return order


def _found(order: Order | None, order_id: int) -> Order:
    if order is None:
        raise _not_found(order_id)
    return order


def _not_found(order_id: int) -> NotFound:
    return NotFound(f"Order {order_id} does not exist.")


def _filtered(query: OrderQuery, caller: Caller):
    statement = select(Order)
    if not caller.sees_everything:
        statement = statement.where(Order.customer_id == caller.user_id)
    if query.status is not None:
        statement = statement.where(Order.status == query.status)
    if query.customer is not None:
        statement = statement.where(or_(Order.customer == query.customer,
                                        Order.customer_id == query.customer))
    return statement
