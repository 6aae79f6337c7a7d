"""Payments in pagamentos_db: each charge and each refund one short transaction, and the reads.

Charges and refunds (the hot path: every paid order is one charge) and reads by id run
SQLAlchemy Core statements, compiled once, on a psycopg cursor (`Database.atomic` /
`Database.statements`), and answers are built straight from rows: the ORM's unit of work
(session, flush, object loading) cost more CPU than the rest of the charge together,
SQLAlchemy's execution layer per statement more than psycopg sending it. A first charge of an
order is two statements: the order's lock, then an INSERT that writes the payment only if no
payment of the order stands. Only when one stands are the standing payments read and judged
in Python. The lock is a statement of its own: a statement reads from a snapshot taken when it
starts, so one that also waited for the lock would miss a payment committed while it waited.
Listings run in a read session (`Database.reading`).

Closing an order (pedidos' compensation) takes the same lock as its charges, so a charge that
arrives late, after pedidos gave up on it and compensated the order, either committed first
and is refunded by the closing, or comes after it and is refused (OrderClosed).
"""

from typing import Any

from sqlalchemy import BigInteger, bindparam, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as upsert
from sqlalchemy.exc import IntegrityError

from pagamentos import domain
from pagamentos.domain import Outcome, PaymentStatus
from pagamentos.models import ONE_APPROVED_PER_ORDER, closed_orders, payments
from pagamentos.schemas import ChargeRequest, OrderClosureOut, PaymentListQuery, PaymentOut
from veloz.core.contracts import OrderAlreadyPaid, OrderClosed, PaymentMismatch
from veloz.core.errors import NotFound
from veloz.data.db import Database, DriverCursor, DriverStatement, one_row, utcnow
from veloz.data.paging import SortKey, keyset_page

# What a charge writes; the database numbers the payment.
WRITTEN = ("order_id", "amount", "method", "status", "decline_reason", "card_last4",
           "created_at", "updated_at")

# Built once: each use only binds its values to them.
_LOCK_ORDER = DriverStatement.of(
    select(func.pg_advisory_xact_lock(bindparam("order_id", type_=BigInteger))))
_STANDING_OF_ORDER = select(payments).where(payments.c.order_id == bindparam("order_id"),
                                            payments.c.status != PaymentStatus.REFUNDED)
_STANDING = DriverStatement.of(_STANDING_OF_ORDER)
_CLOSED_ORDER = select(closed_orders.c.order_id).where(
    closed_orders.c.order_id == bindparam("order_id"))
_IS_CLOSED = DriverStatement.of(_CLOSED_ORDER)
_WRITTEN_VALUES = [bindparam(name, type_=payments.c[name].type) for name in WRITTEN]
_INSERT = DriverStatement.of(
    insert(payments).values(dict(zip(WRITTEN, _WRITTEN_VALUES, strict=True)))
    .returning(*payments.c))
_INSERT_IF_NONE_STANDS = DriverStatement.of(
    insert(payments)
    .from_select(WRITTEN, select(*_WRITTEN_VALUES).where(~_STANDING_OF_ORDER.exists(),
                                                         ~_CLOSED_ORDER.exists()))
    .returning(*payments.c))
_BY_ID_STATEMENT = select(payments).where(payments.c.id == bindparam("payment_id"))
_BY_ID = DriverStatement.of(_BY_ID_STATEMENT)
_BY_ID_LOCKED = DriverStatement.of(_BY_ID_STATEMENT.with_for_update())
_SET_STATUS = DriverStatement.of(
    update(payments).where(payments.c.id == bindparam("payment_id"))
    .values(status=bindparam("new_status"), updated_at=bindparam("now"))
    .returning(*payments.c))
# A repeat keeps the first closing's time.
_CLOSE = DriverStatement.of(
    upsert(closed_orders).values(order_id=bindparam("order_id"), closed_at=bindparam("now"))
    .on_conflict_do_update(index_elements=[closed_orders.c.order_id],
                           set_={"closed_at": closed_orders.c.closed_at})
    .returning(closed_orders.c.closed_at))
_REFUND_APPROVED = DriverStatement.of(
    update(payments).where(payments.c.order_id == bindparam("order_id"),
                           payments.c.status == PaymentStatus.APPROVED)
    .values(status=PaymentStatus.REFUNDED, updated_at=bindparam("now"))
    .returning(*payments.c))
_OF_ORDER = DriverStatement.of(
    select(payments).where(payments.c.order_id == bindparam("order_id"))
    .order_by(payments.c.id))


class PaymentStore:
    def __init__(self, db: Database):
        self.db = db

    # --- reads ---------------------------------------------------------------------------

    def get(self, payment_id: int) -> PaymentOut:
        with self.db.statements() as cursor:
            return _found(_BY_ID.run(cursor, payment_id=payment_id).fetchone(), payment_id)

    def page(self, query: PaymentListQuery) -> list[PaymentOut]:
        """One page plus one extra row that tells whether a next page exists."""
        statement = keyset_page(_filtered(query), [SortKey(payments.c.id)], query,
                                None if query.after is None else (query.after,))
        with self.db.reading() as session:
            return [_payment(row) for row in session.execute(statement)]

    # --- writes --------------------------------------------------------------------------

    def charge(self, request: ChargeRequest, outcome: Outcome) -> PaymentOut:
        """The stored payment. Charges of one order run one at a time (a transaction-scoped
        lock on the order id); a charge of an order with a standing payment must first pass
        the judgement of `_refuse_conflicting_charge`."""
        with self.db.atomic() as cursor:
            _lock_order(cursor, request.order_id)
            values = _new_payment(request, outcome)
            payment = _insert_if_none_stands(cursor, values)
            if payment is None:
                _refuse_conflicting_charge(cursor, request)
                payment = _insert(cursor, values)
            return payment

    def refund(self, payment_id: int, by_person: bool) -> tuple[PaymentOut, bool]:
        """The payment after a refund, and whether this call refunded it (a repeat answers
        it unchanged); the rules of domain.status_after_refund decide under the row lock."""
        with self.db.atomic() as cursor:
            payment = _locked(cursor, payment_id)
            status = domain.status_after_refund(payment, by_person)
            if payment.status == status:
                return payment, False
            return _set_status(cursor, payment_id, status), True

    def close(self, order_id: int) -> tuple[OrderClosureOut, list[PaymentOut]]:
        """The order's closed books (every payment of it, none approved), and the payments this
        call refunded: the approved one (a declined payment took no money, a refunded one
        gave it back already); a repeat refunds nothing and keeps the first closing's time."""
        now = utcnow()
        with self.db.atomic() as cursor:
            _lock_order(cursor, order_id)
            closed_at = one_row(_CLOSE.run(cursor, order_id=order_id, now=now)).closed_at
            refunded = _payments(_REFUND_APPROVED.run(cursor, order_id=order_id, now=now))
            of_order = _payments(_OF_ORDER.run(cursor, order_id=order_id))
        return OrderClosureOut(order_id=order_id, closed_at=closed_at, payments=of_order), refunded


def _new_payment(request: ChargeRequest, outcome: Outcome) -> dict[str, Any]:
    """The row a charge writes (each of WRITTEN)."""
    now = utcnow()
    return {"order_id": request.order_id, "amount": request.amount,
            "method": request.method, "status": outcome.status,
            "decline_reason": outcome.decline_reason,
            "card_last4": domain.card_last4(request.card_number),
            "created_at": now, "updated_at": now}


def _lock_order(cursor: DriverCursor, order_id: int) -> None:
    """Held to the end of the transaction; every statement after it sees what the order's
    previous charges committed."""
    _LOCK_ORDER.run(cursor, order_id=order_id)


def _refuse_conflicting_charge(cursor: DriverCursor, request: ChargeRequest) -> None:
    """A charge is refused when its order is closed, or already has a payment asking for
    something else, or an approved one. Refunded payments no longer stand, so they free an
    order that is not closed."""
    if _IS_CLOSED.run(cursor, order_id=request.order_id).fetchone() is not None:
        raise OrderClosed(
            f"Order {request.order_id} was given back (pedidos compensated it), so pagamentos "
            "takes no charge of it.", order_id=request.order_id)
    for payment in _standing(cursor, request.order_id):
        if not domain.asks_the_same(payment, request):
            raise PaymentMismatch(
                f"Order {request.order_id} already has payment {payment.id} of {payment.amount} "
                f"by {payment.method}; a charge of {request.amount} by {request.method} is not "
                "a repeat of it.", payment=payment.model_dump())
        if payment.status == PaymentStatus.APPROVED:
            raise OrderAlreadyPaid(
                f"Order {request.order_id} already has an approved payment.",
                payment=payment.model_dump())


def _standing(cursor: DriverCursor, order_id: int) -> list[PaymentOut]:
    """The order's payments that are not refunded."""
    return _payments(_STANDING.run(cursor, order_id=order_id))


def _payments(cursor: DriverCursor) -> list[PaymentOut]:
    return [_payment(row) for row in cursor.fetchall()]


def _insert_if_none_stands(cursor: DriverCursor, values: dict[str, Any]) -> PaymentOut | None:
    """The stored payment, in one statement when no payment of its order stands (an order's
    first charge); None, writing nothing, when one does."""
    row = _written(cursor, _INSERT_IF_NONE_STANDS, values).fetchone()
    return None if row is None else _payment(row)


def _insert(cursor: DriverCursor, values: dict[str, Any]) -> PaymentOut:
    return _payment(one_row(_written(cursor, _INSERT, values)))


def _written(cursor: DriverCursor, statement: DriverStatement,
             values: dict[str, Any]) -> DriverCursor:
    """Run an INSERT of a payment, so a concurrent approval of the same order (refused by the
    unique index) surfaces as a 409 here."""
    try:
        return statement.run(cursor, **values)
    except IntegrityError as error:
        if _violated_constraint(error) != ONE_APPROVED_PER_ORDER:
            raise
        raise OrderAlreadyPaid(
            f"Order {values['order_id']} already has an approved payment.") from None


def _violated_constraint(error: IntegrityError) -> str | None:
    diagnostics = getattr(error.orig, "diag", None)
    return getattr(diagnostics, "constraint_name", None)


def _locked(cursor: DriverCursor, payment_id: int) -> PaymentOut:
    return _found(_BY_ID_LOCKED.run(cursor, payment_id=payment_id).fetchone(), payment_id)


def _set_status(cursor: DriverCursor, payment_id: int, status: PaymentStatus) -> PaymentOut:
    """The payment with its new status (and `updated_at` moved)."""
    return _payment(one_row(_SET_STATUS.run(cursor, payment_id=payment_id, new_status=status,
                                            now=utcnow())))


def _found(row: Any, payment_id: int) -> PaymentOut:
    if row is None:
        raise NotFound(f"Payment {payment_id} does not exist.")
    return _payment(row)


def _payment(row: Any) -> PaymentOut:
    """From a row of `payments` (a named tuple from psycopg or a SQLAlchemy Row)."""
    return PaymentOut.model_validate(row._asdict())


def _filtered(query: PaymentListQuery):
    statement = select(payments)
    if query.order_id is not None:
        statement = statement.where(payments.c.order_id == query.order_id)
    if query.status is not None:
        statement = statement.where(payments.c.status == query.status)
    return statement
