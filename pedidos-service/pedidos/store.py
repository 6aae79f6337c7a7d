"""Orders in pedidos_db: every read and every recorded step of an order, each write one short
transaction. The saga, cancellation and recovery change orders only through here."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from pedidos.domain import Caller, OrderStatus, transition
from pedidos.models import Order, OrderEvent, OrderItem
from pedidos.schemas import OrderQuery
from veloz.db import Database, utcnow
from veloz.errors import NotFound
from veloz.paging import SortKey, keyset_page

FAILURES = (OrderStatus.REJECTED, OrderStatus.PAYMENT_DECLINED, OrderStatus.FAILED)


@dataclass(frozen=True)
class NewOrder:
    """What step 1 records: who orders what, and the Idempotency-Key that placed it."""

    customer: str
    customer_id: str | None
    lines: tuple[tuple[int, int], ...]  # (item_id, quantity)
    key_scope: str | None = None
    key: str | None = None


@dataclass(frozen=True)
class PricedLine:
    item_id: int
    name: str
    unit_price: Decimal


# Told of every order that reaches a status past step 2: status, reason code, total.
OnSettled = Callable[[OrderStatus, str, Decimal | None], None]


class OrderStore:
    def __init__(self, db: Database, on_settled: OnSettled = lambda *_: None):
        self.db = db
        self.on_settled = on_settled

    # --- reads ---------------------------------------------------------------------------

    def load(self, order_id: int) -> Order:
        with self.db.reading() as session:
            return _found(session.get(Order, order_id), order_id)

    def by_key(self, key_scope: str, key: str) -> Order | None:
        with self.db.reading() as session:
            return session.scalars(select(Order).where(
                Order.idempotency_scope == key_scope, Order.idempotency_key == key)).first()

    def visible(self, order_id: int, caller: Caller) -> Order:
        with self.db.reading() as session:
            return _visible(session, order_id, caller)

    def events(self, order_id: int, caller: Caller) -> list[OrderEvent]:
        with self.db.reading() as session:
            _visible(session, order_id, caller)
            return list(session.scalars(select(OrderEvent).where(OrderEvent.order_id == order_id)
                                        .order_by(OrderEvent.id)))

    def page(self, query: OrderQuery, caller: Caller) -> list[Order]:
        cursor = None if query.after is None else (query.after,)
        keys = [SortKey(Order.id, descending=query.sort == "-id")]
        statement = keyset_page(_filtered(query, caller), keys, query, cursor)
        with self.db.reading() as session:
            return list(session.scalars(statement))

    def lock_visible(self, order_id: int, caller: Caller) -> Order:
        """The order as it is under a row lock held to the end of this call."""
        with self.db.transaction() as session:
            return _visible(session, order_id, caller, lock=True)

    # --- recorded steps ------------------------------------------------------------------

    def insert_pending(self, new: NewOrder) -> int | None:
        """The new order's id, or None when its Idempotency-Key already placed one."""
        try:
            with self.db.transaction() as session:
                order = Order(customer=new.customer, customer_id=new.customer_id,
                              status=OrderStatus.PENDING, idempotency_scope=new.key_scope,
                              idempotency_key=new.key,
                              items=[OrderItem(item_id=item_id, quantity=quantity)
                                     for item_id, quantity in new.lines])
                session.add(order)
                session.flush()
                _add_event(session, order, "order received")
                return order.id
        except IntegrityError as error:
            if new.key is None or "uq_orders_idempotency" not in str(error.orig):
                raise
            return None

    def record_reservation(self, order_id: int, reservation_id: int,
                           lines: list[PricedLine], total: Decimal) -> Order:
        with self.db.transaction() as session:
            order = _locked(session, order_id)
            order.status = transition(OrderStatus(order.status), OrderStatus.STOCK_RESERVED)
            order.reservation_id = reservation_id
            priced = {line.item_id: line for line in lines}
            for line in order.items:
                line.item_name = priced[line.item_id].name
                line.unit_price = priced[line.item_id].unit_price
            order.total = total
            _add_event(session, order, f"stock held by reservation {reservation_id}")
        return order

    def advance(self, order_id: int, target: OrderStatus, reason: str | None, code: str,
                **changes) -> Order:
        """Change status (only along the machine's edges) and record why, in one transaction;
        `code` is the reason in a word, for metrics. A repeat (two cancels racing) changes
        nothing."""
        with self.db.transaction() as session:
            order = _locked(session, order_id)
            if order.status == target:
                return order
            order.status = transition(OrderStatus(order.status), target)
            if target in FAILURES:
                order.failure_reason = reason
            for name, value in changes.items():
                setattr(order, name, value)
            _add_event(session, order, reason)
        self.on_settled(target, code, order.total)
        return order

    def compensation_done(self, order_id: int) -> None:
        with self.db.transaction() as session:
            _locked(session, order_id).compensation_pending = False

    def mark_restocked(self, order_id: int, item_id: int, restocked: bool = True) -> bool:
        """Flip the line's `restocked` mark; True when this call flipped it (at most once)."""
        with self.db.transaction() as session:
            return session.execute(
                update(OrderItem).where(OrderItem.order_id == order_id,
                                        OrderItem.item_id == item_id,
                                        OrderItem.restocked.is_not(restocked))
                .values(restocked=restocked).returning(OrderItem.item_id)
            ).first() is not None

    def lease_unfinished(self, grace: timedelta) -> int | None:
        """Take one order left mid-saga or with compensation pending for longer than `grace`
        (SKIP LOCKED, so replicas never share one) and touch it, so no replica picks it again
        within the grace period while we call the participants."""
        with self.db.transaction() as session:
            order = session.scalars(
                select(Order)
                .where(or_(Order.status.in_([OrderStatus.PENDING, OrderStatus.STOCK_RESERVED]),
                           Order.compensation_pending),
                       Order.updated_at <= utcnow() - grace)
                .order_by(Order.updated_at).limit(1).with_for_update(skip_locked=True)
            ).first()
            if order is None:
                return None
            order.updated_at = utcnow()
            return order.id


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
