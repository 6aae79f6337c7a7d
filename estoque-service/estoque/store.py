"""Items and reservations in estoque_db: each method one transaction. Stock moves only by
conditional UPDATEs, taken in item-id order so concurrent reservations never deadlock.

Reservations, commits, releases, restocks and the reads of items and reservations by id are
the hot path: every paid order reserves stock, then commits it. They run SQLAlchemy Core
statements, compiled once, on a psycopg cursor (`Database.atomic` / `Database.statements`) and
build their answers straight from the rows those statements return: the ORM's unit of work
(session, flush, identity map, object loading) cost more CPU than the rest of the request, and
SQLAlchemy's execution layer per statement more than psycopg sending it. Each statement does as
much as one round trip can:

- a reservation is an INSERT ... RETURNING of its row, then one statement per line that takes
  the item's units (the conditional UPDATE) and writes the line from what it returns;
- a commit or a release is one read of the reservation and its lines, its row locked
  (FOR UPDATE), then the domain's rules, then one statement that moves the last line's units
  and sets the new status (any other lines move first, one UPDATE each, in one batch).

Item administration (create, change, delete, list) is rare and stays on the ORM, in a session
(`Database.transaction` / `Database.reading`).
"""

import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, NamedTuple

from sqlalchemy import (
    BigInteger,
    Column,
    ColumnElement,
    Integer,
    Select,
    Text,
    any_,
    bindparam,
    func,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY, insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from estoque.domain import (
    MAX_UNITS,
    DuplicateSku,
    ItemHasReservations,
    ReservationStatus,
    Shortfall,
    StockLimitReached,
    is_expired,
    may_commit,
    may_release,
    reservation_expiry,
    shortage_detail,
    unknown_items_error,
)
from estoque.models import Item, items, keyed_restocks, reservation_lines, reservations
from estoque.schemas import ItemCreate, ItemOut, ItemQuery, ReservationCreate, ReservationOut
from veloz.core.contracts import InsufficientStock, UnpricedItems
from veloz.core.errors import NotFound, Unprocessable
from veloz.core.money import total_within_limit
from veloz.data.db import Database, DriverCursor, DriverStatement, one_row, utcnow
from veloz.data.paging import SortKey, keyset_page

_SORTS = {
    "id": [SortKey(Item.id)],
    "price": [SortKey(Item.price), SortKey(Item.id)],
    "-price": [SortKey(Item.price, descending=True), SortKey(Item.id)],
    "name": [SortKey(Item.name), SortKey(Item.id)],
}

# --- statements of the hot path, built once -----------------------------------------------

_ITEM = [items.c[name] for name in ItemOut.model_fields]  # the columns an item's answer shows
_RESERVATION = [reservations.c.id, reservations.c.order_id, reservations.c.status,
                reservations.c.expires_at, reservations.c.created_at, reservations.c.updated_at]
_LINE = [reservation_lines.c.item_id, reservation_lines.c.name, reservation_lines.c.quantity,
         reservation_lines.c.unit_price]

_LIVE = items.c.deleted_at.is_(None)
_LIVE_ITEM = DriverStatement.of(select(*_ITEM).where(items.c.id == bindparam("item_id"), _LIVE))
_AVAILABLE = DriverStatement.of(
    select(items.c.id, items.c.quantity)
    .where(items.c.id == any_(bindparam("item_ids", type_=ARRAY(BigInteger))), _LIVE))
_UNITS = bindparam("units", type_=Integer)
_RESTOCK = DriverStatement.of(
    update(items)
    .where(items.c.id == bindparam("item_id"), _LIVE,
           items.c.quantity + items.c.reserved + items.c.committed <= MAX_UNITS - _UNITS)
    .values(quantity=items.c.quantity + _UNITS, updated_at=bindparam("now")).returning(*_ITEM))
# A restock's key, recorded once: a repeat inserts nothing and returns no row.
_RECORD_KEYED_RESTOCK = DriverStatement.of(
    insert(keyed_restocks).values(item_id=bindparam("item_id"), key=bindparam("key"),
                                  quantity=bindparam("units"), created_at=bindparam("now"))
    .on_conflict_do_nothing().returning(keyed_restocks.c.item_id))
_NEW_RESERVATION_VALUES = insert(reservations).values(
    order_id=bindparam("order_id"), status=bindparam("status"),
    expires_at=bindparam("expires_at"), created_at=bindparam("now"), updated_at=bindparam("now"))
_NEW_RESERVATION = DriverStatement.of(_NEW_RESERVATION_VALUES.returning(*_RESERVATION))
# The same order always gets the same reservation: a second insert for it inserts nothing.
_NEW_ORDER_RESERVATION = DriverStatement.of(
    _NEW_RESERVATION_VALUES.on_conflict_do_nothing(index_elements=[reservations.c.order_id])
    .returning(*_RESERVATION))
_NEXT_EXPIRED = DriverStatement.of(
    select(reservations.c.id)
    .where(reservations.c.status == ReservationStatus.HELD,
           reservations.c.expires_at <= func.now())
    .order_by(reservations.c.expires_at).limit(1)
    .with_for_update(skip_locked=True))


def _take_line_statement():
    """Move `units` of a live item from available to reserved, if it has that many, and write
    the reservation line that keeps them, in one statement. Returns the line, or no row."""
    taken = (update(items)
             .where(items.c.id == bindparam("item_id"), _LIVE, items.c.quantity >= _UNITS)
             .values(quantity=items.c.quantity - _UNITS, reserved=items.c.reserved + _UNITS,
                     updated_at=bindparam("now"))
             .returning(items.c.id, items.c.name, items.c.price)
             .cte("taken"))
    reserved_by = bindparam("reservation_id", type_=BigInteger)
    return DriverStatement.of(
        insert(reservation_lines)
        .from_select(["reservation_id", "item_id", "name", "quantity", "unit_price"],
                     select(reserved_by, taken.c.id, taken.c.name, _UNITS, taken.c.price))
        .returning(*_LINE))


@dataclass(frozen=True)
class _UnitsMove:
    """How a commit or a release moves a reservation's units between two stock columns: one
    UPDATE per line in item-id order, the last line's in the statement that also sets the
    reservation's status and returns its row."""

    line: DriverStatement
    last_line_and_status: DriverStatement


def _units_move(source: Column[int], target: Column[int]) -> _UnitsMove:
    line = (update(items).where(items.c.id == bindparam("item_id"))
            .values({source: source - _UNITS, target: target + _UNITS,
                     items.c.updated_at: bindparam("now")}))
    status = (update(reservations).where(reservations.c.id == bindparam("reservation_id"))
              .values(status=bindparam("new_status"), updated_at=bindparam("now"))
              .returning(*_RESERVATION).add_cte(line.cte("moved")))
    return _UnitsMove(DriverStatement.of(line), DriverStatement.of(status))


def _reservation_statement(*where: ColumnElement[bool]) -> Select:
    """A reservation's row joined to its lines' rows, one row per line in item-id order (an
    outer join, as the ORM's joinedload made: the reservation comes even without lines)."""
    joined = reservations.outerjoin(reservation_lines,
                                    reservation_lines.c.reservation_id == reservations.c.id)
    return (select(*_RESERVATION, *_LINE).select_from(joined).where(*where)
            .order_by(reservation_lines.c.item_id))


_TAKE_LINE = _take_line_statement()
_COMMIT_UNITS = _units_move(items.c.reserved, items.c.committed)
_RETURN_UNITS = _units_move(items.c.reserved, items.c.quantity)
_ONE_RESERVATION = _reservation_statement(reservations.c.id == bindparam("reservation_id"))
_RESERVATION_BY_ID = DriverStatement.of(_ONE_RESERVATION)
_LOCKED_RESERVATION = DriverStatement.of(_ONE_RESERVATION.with_for_update(of=reservations))
_RESERVATION_OF_ORDER = DriverStatement.of(_reservation_statement(
    reservations.c.order_id == bindparam("order_id")))


class StockStore:
    """Each method one transaction. A method that changes a reservation answers whether this
    call moved its stock (False for a replay that changed nothing), for the business metrics."""

    def __init__(self, db: Database):
        self.db = db

    # --- items: administration -----------------------------------------------------------

    def create_item(self, data: ItemCreate) -> ItemOut:
        with self.db.transaction() as session:
            item = Item(**data.model_dump())
            session.add(item)
            _flush_unique_sku(session)
        return ItemOut.model_validate(item)

    def list_items(self, query: ItemQuery) -> list[ItemOut]:
        keys = _SORTS[query.sort]
        with self.db.reading() as session:
            if query.q:
                _plan_for_the_term(session)
            statement = _filtered_items(query)
            cursor = _cursor_of(session, keys, query.after) if query.after is not None else None
            return [ItemOut.model_validate(item)
                    for item in session.scalars(keyset_page(statement, keys, query, cursor))]

    def update_item(self, item_id: int, changes: dict) -> ItemOut:
        with self.db.transaction() as session:
            item = _live_item(session, item_id, lock=True)
            for name, value in changes.items():
                setattr(item, name, value)
            _flush_unique_sku(session)
        return ItemOut.model_validate(item)

    def delete_item(self, item_id: int) -> None:
        with self.db.transaction() as session:
            item = _live_item(session, item_id, lock=True)
            if item.reserved:
                raise ItemHasReservations(f"Item {item_id} has {item.reserved} units held; "
                                          "release or commit them first.")
            item.deleted_at = utcnow()

    # --- items: the hot path -------------------------------------------------------------

    def get_item(self, item_id: int) -> ItemOut:
        with self.db.statements() as cursor:
            return _live_item_out(cursor, item_id)

    def restock(self, item_id: int, quantity: int, key: str | None = None) -> ItemOut:
        """Add units, as long as every unit the item ever had still fits the stock columns.
        Under a `key` only once: a repeat of the key adds nothing and answers the item as it
        stands (the key is recorded in the restock's transaction, so a restock refused or of
        a missing item records nothing)."""
        now = utcnow()
        with self.db.atomic() as cursor:
            if key is not None and _RECORD_KEYED_RESTOCK.run(
                    cursor, item_id=item_id, key=key, units=quantity, now=now).fetchone() is None:
                return _live_item_out(cursor, item_id)
            item = _RESTOCK.run(cursor, item_id=item_id, units=quantity, now=now).fetchone()
            if item is None:
                _live_item_out(cursor, item_id)  # 404 when there is no such item
                raise StockLimitReached(f"Item {item_id} cannot hold {quantity} more units: "
                                        f"its stock would pass {MAX_UNITS} units.",
                                        errors=[{"field": "quantity",
                                                 "message": "too many units"}])
            return ItemOut.model_validate(item)

    # --- reservations --------------------------------------------------------------------

    def reserve(self, request: ReservationCreate, ttl: int) -> tuple[ReservationOut, bool]:
        """All-or-nothing reservation of every line; the same order_id always gets the same
        reservation. Returns the reservation and whether this call made it."""
        with self.db.atomic() as cursor:
            return _reserve_for_order(cursor, request, ttl)

    def reserve_single_item(self, item_id: int, quantity: int,
                            ttl: int) -> tuple[ItemOut, ReservationOut]:
        """The original API's one-item reservation: a reservation without an order."""
        with self.db.atomic() as cursor:
            _live_item_out(cursor, item_id)  # 404 when there is no such item
            reservation = one_row(_NEW_RESERVATION.run(cursor,
                                                       **_new_reservation_values(None, ttl)))
            try:
                lines = _take_all(cursor, reservation.id, {item_id: quantity})
            except InsufficientStock as short:
                short.extensions["available"] = short.errors[0]["available"]
                raise
            return _live_item_out(cursor, item_id), _reservation_out(reservation, lines)

    def get_reservation(self, reservation_id: int) -> ReservationOut:
        with self.db.statements() as cursor:
            return _reservation(cursor, reservation_id)

    def commit(self, reservation_id: int) -> tuple[ReservationOut, bool]:
        with self.db.atomic() as cursor:
            return _commit(cursor, _reservation(cursor, reservation_id, lock=True))

    def write_off(self, item_id: int, reservation_id: int) -> tuple[ItemOut, bool]:
        """Commit a reservation through the item it reserves (the original API's 'baixa')."""
        with self.db.atomic() as cursor:
            reservation = _reservation(cursor, reservation_id, lock=True)
            if item_id not in {line.item_id for line in reservation.items}:
                raise NotFound(f"Reservation {reservation_id} holds nothing of item {item_id}.")
            _, moved = _commit(cursor, reservation)
            return _live_item_out(cursor, item_id), moved

    def release(self, reservation_id: int) -> tuple[ReservationOut, bool]:
        with self.db.atomic() as cursor:
            reservation = _reservation(cursor, reservation_id, lock=True)
            if not may_release(ReservationStatus(reservation.status)):
                return reservation, False
            return _return_stock(cursor, reservation, ReservationStatus.RELEASED), True

    def release_next_expired(self) -> int | None:
        """Release one expired reservation, skipping rows other sweepers have locked. Returns
        its id, or None when none is left."""
        with self.db.atomic() as cursor:
            expired = _NEXT_EXPIRED.run(cursor).fetchone()
            if expired is None:
                return None
            _return_stock(cursor, _reservation(cursor, expired.id), ReservationStatus.EXPIRED)
            return expired.id


# --- items -------------------------------------------------------------------------------

# The trigram index narrows a term with three letters or digits in a row; one without ("lu",
# "x", "5%") yields no trigram to look up, so the grams index narrows it (migration 0003 defines
# item_name_grams and item_term_grams).
_TRIGRAM_READY = re.compile(r"[^\W_]{3}")


def _holds_the_grams_of(term: str) -> ColumnElement[bool]:
    return (func.item_name_grams(Item.name, type_=ARRAY(Text))
            .contains(func.item_term_grams(term, type_=ARRAY(Text))))


def _filtered_items(query: ItemQuery):
    statement = select(Item).where(Item.deleted_at.is_(None))
    if query.q:
        pattern = query.q.replace("\\", "\\\\").replace("%", r"\%").replace("_", r"\_")
        statement = statement.where(Item.name.ilike(f"%{pattern}%", escape="\\"))
        if not _TRIGRAM_READY.search(query.q):
            statement = statement.where(_holds_the_grams_of(query.q))
    if query.in_stock is not None:
        statement = statement.where((Item.quantity > 0) == query.in_stock)
    return statement


def _plan_for_the_term(session: Session) -> None:
    """A name search's best plan depends on its term: a rare one reads the trigram index, a
    common one walks the sort's index until the page is full. psycopg prepares a statement
    it has run five times on a connection, and the server may then plan it once for any term
    and keep that plan for good: after a few searches for rare two-letter terms, every search
    on that connection walked all 1,000,000 items. So each search is planned for its term
    (this transaction only; the read rolls back at the end)."""
    session.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))


def _cursor_of(session: Session, keys: list[SortKey], after: int) -> tuple:
    columns = [key.column for key in keys]
    row = session.execute(select(*columns).where(Item.id == after)).first()
    if row is None:
        raise Unprocessable(f"`after={after}` names no item.",
                            errors=[{"field": "after", "message": "unknown item id"}])
    return tuple(row)


def _live_item(session: Session, item_id: int, lock: bool = False) -> Item:
    statement = (select(Item).where(Item.id == item_id, Item.deleted_at.is_(None))
                 .execution_options(populate_existing=True))
    item = session.scalars(statement.with_for_update() if lock else statement).first()
    if item is None:
        raise _item_not_found(item_id)
    return item


def _live_item_out(cursor: DriverCursor, item_id: int) -> ItemOut:
    item = _LIVE_ITEM.run(cursor, item_id=item_id).fetchone()
    if item is None:
        raise _item_not_found(item_id)
    return ItemOut.model_validate(item)


def _item_not_found(item_id: int) -> NotFound:
    return NotFound(f"Item {item_id} does not exist.")


def _flush_unique_sku(session: Session) -> None:
    try:
        session.flush()
    except IntegrityError as error:
        if "uq_items_sku_live" in str(error.orig):
            raise DuplicateSku("Another item already uses this SKU.") from None
        raise


# --- reservations ------------------------------------------------------------------------

def _reserve_for_order(cursor: DriverCursor, request: ReservationCreate,
                       ttl: int) -> tuple[ReservationOut, bool]:
    reservation = _NEW_ORDER_RESERVATION.run(
        cursor, **_new_reservation_values(request.order_id, ttl)).fetchone()
    if reservation is None:
        return _reservation_of_order(cursor, request.order_id), False
    lines = _take_all(cursor, reservation.id,
                      {line.item_id: line.quantity for line in request.items})
    _refuse_unpriced(lines)
    _refuse_amounts_beyond_limit(lines, request)
    return _reservation_out(reservation, lines), True


def _new_reservation_values(order_id: int | None, ttl: int) -> dict:
    """A new reservation's columns (`now` is both its created_at and updated_at)."""
    now = utcnow()
    return {"order_id": order_id, "status": ReservationStatus.HELD,
            "expires_at": reservation_expiry(now, ttl), "now": now}


def _refuse_unpriced(lines: Sequence[Any]) -> None:
    """An order's reservation of an item priced 0 (a row from before prices had to be above 0)
    is refused, so nothing stays reserved: such an order would be `paid` with no payment."""
    unpriced = sorted(line.item_id for line in lines if line.unit_price <= 0)
    if unpriced:
        raise UnpricedItems(
            f"Items without a price cannot be ordered: {', '.join(map(str, unpriced))}; "
            "give them a price first (PATCH /items/{id}).",
            errors=[{"field": "items", "item_id": item_id, "message": "priced 0"}
                    for item_id in unpriced])


def _refuse_amounts_beyond_limit(lines: Sequence[Any], request: ReservationCreate) -> None:
    """A reservation whose lines or total could not be charged is refused (the transaction
    rolls back, so nothing stays reserved); errors name the lines as the request listed
    them."""
    price = {line.item_id: line.unit_price for line in lines}
    total_within_limit([(price[line.item_id], line.quantity) for line in request.items])


def _take_all(cursor: DriverCursor, reservation_id: int, wanted: dict[int, int]) -> list[Any]:
    """Take the wanted units of every item, in item-id order, writing the reservation's lines;
    returns the lines, or raises: 422 naming unknown items, else 409 listing every short line
    (the caller's transaction then rolls back what was taken)."""
    taken = {item_id: _take(cursor, reservation_id, item_id, wanted[item_id])
             for item_id in sorted(wanted)}
    lines = [line for line in taken.values() if line is not None]
    if len(lines) < len(taken):
        refused = [item_id for item_id, line in taken.items() if line is None]
        raise _refusal(cursor, refused, wanted)
    return lines


def _take(cursor: DriverCursor, reservation_id: int, item_id: int, quantity: int) -> Any:
    return _TAKE_LINE.run(cursor, reservation_id=reservation_id, item_id=item_id,
                          units=quantity, now=utcnow()).fetchone()


def _refusal(cursor: DriverCursor, refused: list[int], wanted: dict[int, int]) -> Exception:
    available = {row.id: row.quantity
                 for row in _AVAILABLE.run(cursor, item_ids=refused).fetchall()}
    missing = [item_id for item_id in refused if item_id not in available]
    if missing:
        return unknown_items_error(missing)
    shortfalls = [Shortfall(item_id, wanted[item_id], available[item_id]) for item_id in refused]
    return InsufficientStock(shortage_detail(shortfalls), errors=[asdict(s) for s in shortfalls])


def _reservation(cursor: DriverCursor, reservation_id: int, lock: bool = False) -> ReservationOut:
    """The reservation and its lines; with `lock`, its row stays locked (FOR UPDATE) until
    the transaction ends."""
    statement = _LOCKED_RESERVATION if lock else _RESERVATION_BY_ID
    rows = statement.run(cursor, reservation_id=reservation_id).fetchall()
    if not rows:
        raise NotFound(f"Reservation {reservation_id} does not exist.")
    return _joined_reservation_out(rows)


def _reservation_of_order(cursor: DriverCursor, order_id: int) -> ReservationOut:
    rows = _RESERVATION_OF_ORDER.run(cursor, order_id=order_id).fetchall()
    if not rows:
        raise NotFound(f"No reservation holds order {order_id}.")
    return _joined_reservation_out(rows)


def _joined_reservation_out(rows: Sequence[Any]) -> ReservationOut:
    """The answer from the rows of `_reservation_statement` (line columns are null in the one
    row of a reservation without lines)."""
    return _reservation_out(rows[0], [row for row in rows if row.item_id is not None])


def _reservation_out(reservation: NamedTuple, lines: Sequence[Any]) -> ReservationOut:
    """The answer from a reservation's row and its lines' rows (other columns are ignored)."""
    return ReservationOut.model_validate({**reservation._asdict(), "lines": lines})


def _commit(cursor: DriverCursor, reservation: ReservationOut) -> tuple[ReservationOut, bool]:
    status = ReservationStatus(reservation.status)
    if not may_commit(status, is_expired(status, reservation.expires_at, utcnow())):
        return reservation, False
    return _move_units(cursor, _COMMIT_UNITS, reservation, ReservationStatus.COMMITTED), True


def _return_stock(cursor: DriverCursor, reservation: ReservationOut,
                  status: ReservationStatus) -> ReservationOut:
    return _move_units(cursor, _RETURN_UNITS, reservation, status)


def _move_units(cursor: DriverCursor, move: _UnitsMove, reservation: ReservationOut,
                status: ReservationStatus) -> ReservationOut:
    """Move the units of every line, in item-id order (the order the lines come in), and set
    the new status; returns the reservation as it now is. Lines before the last go to the
    server as one batch, still run one after another. A reservation always has lines: the
    transaction that makes it writes them."""
    now = utcnow()
    *earlier, last = [{"item_id": line.item_id, "units": line.quantity, "now": now}
                      for line in reservation.items]
    if earlier:
        move.line.run_many(cursor, earlier)
    row = one_row(move.last_line_and_status.run(cursor, **last, reservation_id=reservation.id,
                                             new_status=status))
    return reservation.model_copy(update=row._asdict())
