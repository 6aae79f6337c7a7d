"""Orders in pedidos_db: every read and every recorded step of an order, each write one short
transaction. The saga, cancellation and recovery change orders only through here.

Answers are plain records: every paid order records three steps, and the ORM's unit of work
(identity map, flush planning, attribute loading) cost more CPU than the rest of pedidos
together. A step is a conditional UPDATE that moves the order along one edge of the status
machine, with the event that says why written by the same statement; only when that finds the
order elsewhere does the step lock the row and decide in Python, as the machine says.

Two ways to the database, as README's Architecture section says: the order's lifecycle (its
steps, compensation's marks, recovery's lease) and its reads by id run statements built once
on psycopg (`Database.statements` for one statement, `Database.atomic` for several in one
transaction); listings and history (`page`, `events`, reconciliation's scan) run in a read
session (`Database.reading`)."""

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Row, bindparam, or_, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from pedidos.domain import TRANSITIONS, Caller, OrderStatus, transition
from pedidos.models import IN_FLIGHT, order_events, order_items, orders
from pedidos.schemas import OrderQuery
from veloz.core.errors import NotFound
from veloz.data.db import Database, DriverCursor, DriverStatement, array_text, one_row, utcnow
from veloz.data.paging import SortKey, keyset_page

FAILURES = (OrderStatus.REJECTED, OrderStatus.PAYMENT_DECLINED, OrderStatus.FAILED)
ORDER_COLUMNS = [column for column in orders.c
                 if column.name not in ("idempotency_scope", "idempotency_key")]
LINE_COLUMNS = [order_items.c[name]
                for name in ("item_id", "quantity", "item_name", "unit_price", "restocked")]


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


@dataclass(frozen=True)
class OrderLine:
    item_id: int
    quantity: int
    item_name: str | None
    unit_price: Decimal | None
    restocked: bool


@dataclass(frozen=True)
class OrderRecord:
    """An order as stored, with its lines in item-id order."""

    id: int
    customer: str
    customer_id: str | None
    status: str
    total: Decimal | None
    currency: str
    reservation_id: int | None
    payment_id: int | None
    failure_reason: str | None
    compensation_pending: bool
    created_at: datetime
    updated_at: datetime
    items: tuple[OrderLine, ...]


@dataclass(frozen=True)
class PaidOrder:
    """What reconciliation needs of a paid order: which payment pays it, since when."""

    id: int
    payment_id: int
    updated_at: datetime


# Told of every order that reaches a status past step 2: status, reason code, total.
OnSettled = Callable[[OrderStatus, str, Decimal | None], None]


class OrderStore:
    def __init__(self, db: Database, on_settled: OnSettled = lambda *_: None):
        self.db = db
        self.on_settled = on_settled

    # --- reads ---------------------------------------------------------------------------

    def load(self, order_id: int) -> OrderRecord:
        with self.db.statements() as cursor:
            return _found(_read(cursor, order_id), order_id)

    def by_key(self, key_scope: str, key: str) -> OrderRecord | None:
        with self.db.statements() as cursor:
            placed = _ORDER_OF_KEY.run(cursor, key_scope=key_scope, key=key).fetchone()
            return None if placed is None else _read(cursor, placed.id)

    def visible(self, order_id: int, caller: Caller) -> OrderRecord:
        with self.db.statements() as cursor:
            return _visible(_read(cursor, order_id), order_id, caller)

    def events(self, order_id: int, caller: Caller) -> list[Row]:
        self.visible(order_id, caller)
        with self.db.reading() as session:
            return list(session.execute(
                select(order_events).where(order_events.c.order_id == order_id)
                .order_by(order_events.c.id)))

    def page(self, query: OrderQuery, caller: Caller) -> list[OrderRecord]:
        cursor = None if query.after is None else (query.after,)
        keys = [SortKey(orders.c.id, descending=query.sort == "-id")]
        statement = keyset_page(_filtered(query, caller), keys, query, cursor)
        with self.db.reading() as session:
            found = list(session.execute(statement))
            lines = _lines_of(session, [order.id for order in found])
        return [_record(order, lines.get(order.id, ())) for order in found]

    def paid_with_payment(self) -> list[PaidOrder]:
        """Every paid order that a payment pays (an order of total 0 has none), for
        reconciliation: the ix_orders_status_id index serves it."""
        with self.db.reading() as session:
            return [PaidOrder(*row) for row in session.execute(
                select(orders.c.id, orders.c.payment_id, orders.c.updated_at)
                .where(orders.c.status == OrderStatus.PAID, orders.c.payment_id.is_not(None))
                .order_by(orders.c.id))]

    def lock_visible(self, order_id: int, caller: Caller) -> OrderRecord:
        """The order as it is under a row lock held to the end of this call."""
        with self.db.atomic() as cursor:
            return _visible(_read(cursor, order_id, lock=True), order_id, caller)

    # --- recorded steps ------------------------------------------------------------------

    def insert_pending(self, new: NewOrder) -> int | None:
        """The new order's id, or None when its Idempotency-Key already placed one."""
        item_ids, quantities = zip(*new.lines, strict=True)
        try:
            with self.db.statements() as cursor:
                return one_row(_INSERT_PENDING.run(
                    cursor, customer=new.customer, customer_id=new.customer_id,
                    key_scope=new.key_scope, key=new.key, now=utcnow(),
                    item_ids=array_text(item_ids), quantities=array_text(quantities)))[0]
        except IntegrityError as error:
            if new.key is None or "uq_orders_idempotency" not in str(error.orig):
                raise
            return None

    def record_reservation(self, order_id: int, reservation_id: int,
                           lines: list[PricedLine], total: Decimal) -> OrderRecord:
        """Step 2: `stock_reserved`, with the reservation, the total and each line's price
        (written only if the order moves: a refused step writes no price)."""
        order, _ = self._take_step(
            order_id, OrderStatus.STOCK_RESERVED, f"stock held by reservation {reservation_id}",
            {"reservation_id": reservation_id, "total": total}, repeat_is_fine=False,
            statement=_MOVE_AND_PRICE, item_ids=array_text(line.item_id for line in lines),
            names=array_text(line.name for line in lines),
            prices=array_text(line.unit_price for line in lines))
        return order

    def advance(self, order_id: int, target: OrderStatus, reason: str | None, code: str,
                **changes) -> OrderRecord:
        """Change status (only along the machine's edges) and record why, in one transaction;
        `code` is the reason in a word, for metrics. A repeat (two cancels racing) changes
        nothing."""
        if target in FAILURES:
            changes["failure_reason"] = reason
        order, moved = self._take_step(order_id, target, reason, changes, repeat_is_fine=True)
        if moved:
            self.on_settled(target, code, order.total)
        return order

    def _take_step(self, order_id: int, target: OrderStatus, reason: str | None,
                   changes: dict[str, Any], repeat_is_fine: bool,
                   statement: DriverStatement | None = None,
                   **values: Any) -> tuple[OrderRecord, bool]:
        """The order after the step, and whether this call moved it: the usual case in one
        statement (`_MOVE` unless given another); when the order is not where the step
        expects, it is locked and the machine decides (`_step`)."""
        statement = statement or _MOVE
        with self.db.statements() as cursor:
            order = _move(cursor, order_id, target, reason, changes, statement, **values)
        if order is not None:
            return order, True
        with self.db.atomic() as cursor:
            return _step(cursor, order_id, target, reason, changes, repeat_is_fine, statement,
                         **values)

    def compensation_done(self, order_id: int) -> OrderRecord:
        """The order, its compensation recorded as finished."""
        with self.db.statements() as cursor:
            _COMPENSATION_DONE.run(cursor, order_id=order_id, now=utcnow())
            return _found(_read(cursor, order_id), order_id)

    def mark_restocked(self, order_id: int, item_id: int) -> None:
        """Record that the line's sold units went back on sale."""
        with self.db.statements() as cursor:
            _MARK_RESTOCKED.run(cursor, order_id=order_id, item_id=item_id)

    def lease_unfinished(self, grace: timedelta) -> int | None:
        """Take one order left mid-saga or with compensation pending for longer than `grace`
        (SKIP LOCKED, so replicas never share one) and touch it, so no replica picks it again
        within the grace period while we call the participants."""
        now = utcnow()
        with self.db.atomic() as cursor:
            unfinished = _NEXT_UNFINISHED.run(cursor, cutoff=now - grace).fetchone()
            if unfinished is None:
                return None
            _TOUCH.run(cursor, order_id=unfinished.id, now=now)
            return unfinished.id


# Each recorded step is one statement. Text, not Core constructs: these run on every order,
# and building and keying a CTE statement per call cost more than running it.
_ORDER_COLUMN_LIST = ", ".join(column.name for column in ORDER_COLUMNS)
_INSERT_PENDING = DriverStatement.of(text("""
    WITH new_order AS (
        INSERT INTO orders (customer, customer_id, status, currency, compensation_pending,
                            idempotency_scope, idempotency_key, created_at, updated_at)
        VALUES (:customer, :customer_id, 'pending', 'BRL', false, :key_scope, :key,
                :now, :now)
        RETURNING id),
    lines AS (
        INSERT INTO order_items (order_id, item_id, quantity, restocked)
        SELECT new_order.id, line.item_id, line.quantity, false
        FROM new_order, unnest(CAST(:item_ids AS bigint[]), CAST(:quantities AS integer[]))
                        AS line (item_id, quantity)),
    event AS (
        INSERT INTO order_events (order_id, status, reason, at)
        SELECT id, 'pending', 'order received', :now FROM new_order)
    SELECT id FROM new_order"""))
# A step's move: the order moves to :target if it stands where the machine allows (one of
# :sources), and its event is written. A change left None keeps what the order has (no step
# clears these columns).
_MOVED = f"""
    moved AS (
        UPDATE orders
        SET status = :target, updated_at = :now,
            reservation_id = COALESCE(CAST(:reservation_id AS bigint), reservation_id),
            total = COALESCE(CAST(:total AS numeric), total),
            payment_id = COALESCE(CAST(:payment_id AS bigint), payment_id),
            failure_reason = COALESCE(CAST(:failure_reason AS text), failure_reason),
            compensation_pending = COALESCE(CAST(:compensation_pending AS boolean),
                                            compensation_pending)
        WHERE id = :order_id AND status = ANY(CAST(:sources AS varchar[]))
        RETURNING {_ORDER_COLUMN_LIST}),
    event AS (
        INSERT INTO order_events (order_id, status, reason, at)
        SELECT id, status, CAST(:reason AS text), :now FROM moved)"""  # noqa: S608 - column names
_MOVE = DriverStatement.of(text(f"""
    WITH {_MOVED}
    SELECT moved.*, order_items.item_id, order_items.quantity, order_items.item_name,
           order_items.unit_price, order_items.restocked
    FROM moved LEFT JOIN order_items ON order_items.order_id = moved.id
    ORDER BY order_items.item_id"""))  # noqa: S608 - column names from the table, not input
# Step 2 in one statement: the move, and the lines priced only if the order moved. The
# statement sees its lines as they were, so each comes back with the price just written.
_MOVE_AND_PRICE = DriverStatement.of(text(f"""
    WITH {_MOVED},
    priced AS (
        UPDATE order_items SET item_name = line.name, unit_price = line.price
        FROM moved, unnest(CAST(:item_ids AS bigint[]), CAST(:names AS varchar[]),
                           CAST(:prices AS numeric[])) AS line (item_id, name, price)
        WHERE order_items.order_id = moved.id AND order_items.item_id = line.item_id
        RETURNING order_items.item_id, order_items.item_name, order_items.unit_price)
    SELECT moved.*, order_items.item_id, order_items.quantity,
           COALESCE(priced.item_name, order_items.item_name) AS item_name,
           COALESCE(priced.unit_price, order_items.unit_price) AS unit_price,
           order_items.restocked
    FROM moved LEFT JOIN order_items ON order_items.order_id = moved.id
               LEFT JOIN priced ON priced.item_id = order_items.item_id
    ORDER BY order_items.item_id"""))  # noqa: S608 - column names from the table, not input
_ORDER_STATEMENT = select(*ORDER_COLUMNS).where(orders.c.id == bindparam("order_id"))
_ORDER = DriverStatement.of(_ORDER_STATEMENT)
_LOCKED_ORDER = DriverStatement.of(_ORDER_STATEMENT.with_for_update())
_ORDER_OF_KEY = DriverStatement.of(select(orders.c.id).where(
    orders.c.idempotency_scope == bindparam("key_scope"),
    orders.c.idempotency_key == bindparam("key")))
_COMPENSATION_DONE = DriverStatement.of(
    update(orders).where(orders.c.id == bindparam("order_id"))
    .values(compensation_pending=False, updated_at=bindparam("now")))
# The line's units are back on sale (the restock's key, not this mark, keeps it to once).
_MARK_RESTOCKED = DriverStatement.of(
    update(order_items).where(order_items.c.order_id == bindparam("order_id"),
                              order_items.c.item_id == bindparam("item_id"))
    .values(restocked=True))
# In flight: the predicate of the partial index ix_orders_in_flight_updated_at, word for word,
# so the planner may use that index even in a plan made for any parameters.
_NEXT_UNFINISHED = DriverStatement.of(
    select(orders.c.id)
    .where(or_(text(IN_FLIGHT), orders.c.compensation_pending),
           orders.c.updated_at <= bindparam("cutoff"))
    .order_by(orders.c.updated_at).limit(1).with_for_update(skip_locked=True))
_TOUCH = DriverStatement.of(
    update(orders).where(orders.c.id == bindparam("order_id")).values(updated_at=bindparam("now")))
_LINES_OF_ORDER = DriverStatement.of(
    select(*LINE_COLUMNS).where(order_items.c.order_id == bindparam("order_id"))
    .order_by(order_items.c.item_id))
_CHANGEABLE = ("reservation_id", "total", "payment_id", "failure_reason",
               "compensation_pending")
_SOURCES = {target: array_text(source for source, targets in TRANSITIONS.items()
                                if target in targets)
            for target in OrderStatus}


def _move(cursor: DriverCursor, order_id: int, target: OrderStatus, reason: str | None,
          changes: dict[str, Any], statement: DriverStatement = _MOVE,
          **values: Any) -> OrderRecord | None:
    """One statement (`_MOVE`, or one built on it given its own `values`): the order moves to
    `target` if it stands where the machine allows, and its event is written; None when it
    stood anywhere else."""
    rows = statement.run(cursor, **values,
                         **_move_values(order_id, target, reason, changes)).fetchall()
    return _record(rows[0], rows) if rows else None


def _move_values(order_id: int, target: OrderStatus, reason: str | None,
                 changes: dict[str, Any]) -> dict[str, Any]:
    unknown = changes.keys() - _CHANGEABLE
    assert not unknown, f"a step cannot change {unknown}"
    return {"order_id": order_id, "target": str(target), "sources": _SOURCES[target],
            "reason": reason, "now": utcnow(),
            **{name: changes.get(name) for name in _CHANGEABLE}}


def _step(cursor: DriverCursor, order_id: int, target: OrderStatus, reason: str | None,
          changes: dict[str, Any], repeat_is_fine: bool, statement: DriverStatement = _MOVE,
          **values: Any) -> tuple[OrderRecord, bool]:
    """The order after a step to `target`, and whether this call moved it. When the order is
    not where the step expects, its row is locked and the machine decides: a repeat of a step
    already taken leaves it unchanged when `repeat_is_fine`; a missing edge is
    IllegalTransition."""
    moved = _move(cursor, order_id, target, reason, changes, statement, **values)
    if moved is not None:
        return moved, True
    order = _found(_read(cursor, order_id, lock=True), order_id)
    if order.status == target and repeat_is_fine:
        return order, False
    transition(OrderStatus(order.status), target)
    moved = _move(cursor, order_id, target, reason, changes, statement, **values)
    assert moved is not None
    return moved, True


def _read(cursor: DriverCursor, order_id: int, lock: bool = False) -> OrderRecord | None:
    """The order; with `lock`, its row stays locked to the end of the transaction."""
    order = (_LOCKED_ORDER if lock else _ORDER).run(cursor, order_id=order_id).fetchone()
    if order is None:
        return None
    return _record(order, _LINES_OF_ORDER.run(cursor, order_id=order_id).fetchall())


def _lines_of(session: Session, order_ids: list[int]) -> dict[int, list[Row]]:
    lines: dict[int, list[Row]] = {}
    if order_ids:
        for line in session.execute(
                select(order_items.c.order_id, *LINE_COLUMNS)
                .where(order_items.c.order_id.in_(order_ids)).order_by(order_items.c.item_id)):
            lines.setdefault(line.order_id, []).append(line)
    return lines


def _record(order: Any, lines: Iterable[Any]) -> OrderRecord:
    """From an order's row and its lines' rows (SQLAlchemy Rows or psycopg named tuples)."""
    return OrderRecord(
        **{column.name: getattr(order, column.name) for column in ORDER_COLUMNS},
        items=tuple(OrderLine(line.item_id, line.quantity, line.item_name, line.unit_price,
                              line.restocked) for line in lines if line.item_id is not None))


def _visible(order: OrderRecord | None, order_id: int, caller: Caller) -> OrderRecord:
    if order is None or not caller.may_see(order.customer_id):
        raise _not_found(order_id)
    return order


def _found(order: OrderRecord | None, order_id: int) -> OrderRecord:
    if order is None:
        raise _not_found(order_id)
    return order


def _not_found(order_id: int) -> NotFound:
    return NotFound(f"Order {order_id} does not exist.")


def _filtered(query: OrderQuery, caller: Caller):
    statement = select(*ORDER_COLUMNS)
    if not caller.sees_everything:
        statement = statement.where(orders.c.customer_id == caller.user_id)
    if query.status is not None:
        statement = statement.where(orders.c.status == query.status)
    if query.customer is not None:
        statement = statement.where(or_(orders.c.customer == query.customer,
                                        orders.c.customer_id == query.customer))
    return statement
