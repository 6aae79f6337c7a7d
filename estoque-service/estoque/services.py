"""Use cases of estoque. Each owns one transaction; stock moves only by conditional UPDATEs,
taken in item-id order so concurrent holds never deadlock."""

from dataclasses import asdict

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload
from sqlalchemy.orm.attributes import set_committed_value

from estoque.domain import (
    MAX_UNITS,
    DuplicateSku,
    ItemHasHolds,
    ReservationStatus,
    Shortfall,
    StockLimitReached,
    hold_expiry,
    is_expired,
    may_commit,
    may_release,
    shortage_detail,
    unknown_items_error,
)
from estoque.models import Item, Reservation, ReservationLine
from estoque.schemas import ItemCreate, ItemQuery, ReservationCreate
from veloz import metrics
from veloz.contracts import InsufficientStock
from veloz.db import Database, utcnow
from veloz.errors import NotFound, Unprocessable
from veloz.money import total_within_limit
from veloz.paging import SortKey, keyset_page

_SORTS = {
    "id": [SortKey(Item.id)],
    "price": [SortKey(Item.price), SortKey(Item.id)],
    "-price": [SortKey(Item.price, descending=True), SortKey(Item.id)],
    "name": [SortKey(Item.name), SortKey(Item.id)],
}


# --- items -------------------------------------------------------------------------------

def create_item(db: Database, data: ItemCreate) -> Item:
    with db.transaction() as session:
        item = Item(**data.model_dump())
        session.add(item)
        _flush_unique_sku(session)
    return item


def list_items(db: Database, query: ItemQuery) -> list[Item]:
    keys = _SORTS[query.sort]
    with db.reading() as session:
        statement = _filtered_items(query)
        cursor = _cursor_of(session, keys, query.after) if query.after is not None else None
        return list(session.scalars(keyset_page(statement, keys, query, cursor)))


def get_item(db: Database, item_id: int) -> Item:
    with db.reading() as session:
        return _live_item(session, item_id)


def update_item(db: Database, item_id: int, changes: dict) -> Item:
    with db.transaction() as session:
        item = _live_item(session, item_id, lock=True)
        for name, value in changes.items():
            setattr(item, name, value)
        _flush_unique_sku(session)
    return item


def delete_item(db: Database, item_id: int) -> None:
    with db.transaction() as session:
        item = _live_item(session, item_id, lock=True)
        if item.reserved:
            raise ItemHasHolds(f"Item {item_id} has {item.reserved} units held; "
                               "release or commit them first.")
        item.deleted_at = utcnow()


def restock(db: Database, item_id: int, quantity: int) -> Item:
    """Add units, as long as every unit the item ever had still fits the stock columns."""
    with db.transaction() as session:
        moved = session.execute(
            update(Item).where(Item.id == item_id, Item.deleted_at.is_(None),
                               Item.quantity + Item.reserved + Item.committed
                               <= MAX_UNITS - quantity)
            .values(quantity=Item.quantity + quantity).returning(Item.id)
        ).first()
        if moved is None:
            _live_item(session, item_id)  # 404 when there is no such item
            raise StockLimitReached(f"Item {item_id} cannot hold {quantity} more units: "
                                    f"its stock would pass {MAX_UNITS} units.",
                                    errors=[{"field": "quantity", "message": "too many units"}])
        return _live_item(session, item_id)


def _filtered_items(query: ItemQuery):
    statement = select(Item).where(Item.deleted_at.is_(None))
    if query.q:
        pattern = query.q.replace("\\", "\\\\").replace("%", r"\%").replace("_", r"\_")
        statement = statement.where(Item.name.ilike(f"%{pattern}%", escape="\\"))
    if query.in_stock is not None:
        statement = statement.where((Item.quantity > 0) == query.in_stock)
    return statement


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

def reserve(db: Database, request: ReservationCreate, ttl: int) -> tuple[Reservation, bool]:
    """All-or-nothing hold of every line; the same order_id always gets the same hold.
    Returns the reservation and whether this call made it."""
    with db.transaction() as session:
        return _hold_for_order(session, request, ttl)


def hold_single_item(db: Database, item_id: int, quantity: int,
                     ttl: int) -> tuple[Item, Reservation]:
    """The original API's one-item hold: a reservation without an order."""
    with db.transaction() as session:
        _live_item(session, item_id)
        reservation = _new_reservation(session, ttl)
        try:
            _take_all(session, reservation, {item_id: quantity})
        except InsufficientStock as short:
            short.extensions["available"] = short.errors[0]["available"]
            raise
        metrics.record_reservation("granted")
        return _live_item(session, item_id), reservation


def get_reservation(db: Database, reservation_id: int) -> Reservation:
    with db.reading() as session:
        return _reservation(session, reservation_id)


def commit_reservation(db: Database, reservation_id: int) -> Reservation:
    with db.transaction() as session:
        return _commit(session, _reservation(session, reservation_id, lock=True))


def write_off(db: Database, item_id: int, reservation_id: int) -> Item:
    """Commit a hold through the item it holds (the original API's 'baixa')."""
    with db.transaction() as session:
        reservation = _reservation(session, reservation_id, lock=True)
        if item_id not in {line.item_id for line in reservation.lines}:
            raise NotFound(f"Reservation {reservation_id} holds nothing of item {item_id}.")
        _commit(session, reservation)
        return _live_item(session, item_id)


def release_reservation(db: Database, reservation_id: int) -> Reservation:
    with db.transaction() as session:
        reservation = _reservation(session, reservation_id, lock=True)
        if may_release(ReservationStatus(reservation.status)):
            _return_stock(session, reservation, ReservationStatus.RELEASED)
        return reservation


def release_expired_hold(db: Database) -> int | None:
    """Release one expired hold, skipping rows other sweepers hold. Returns its id, or None."""
    with db.transaction() as session:
        reservation = session.scalars(
            select(Reservation)
            .where(Reservation.status == ReservationStatus.HELD,
                   Reservation.expires_at <= func.now())
            .order_by(Reservation.expires_at).limit(1).with_for_update(skip_locked=True)
        ).first()
        if reservation is None:
            return None
        _return_stock(session, reservation, ReservationStatus.EXPIRED)
        return reservation.id


def _hold_for_order(session: Session, request: ReservationCreate,
                    ttl: int) -> tuple[Reservation, bool]:
    reservation = session.scalars(
        insert(Reservation).values(order_id=request.order_id, status=ReservationStatus.HELD,
                                   expires_at=hold_expiry(utcnow(), ttl),
                                   created_at=utcnow(), updated_at=utcnow())
        .on_conflict_do_nothing(index_elements=[Reservation.order_id]).returning(Reservation)
    ).first()
    if reservation is None:
        existing = select(Reservation).where(Reservation.order_id == request.order_id)
        return session.scalars(existing).one(), False
    _take_all(session, reservation, {line.item_id: line.quantity for line in request.items})
    _refuse_amounts_beyond_limit(reservation, request)
    metrics.record_reservation("granted")
    return reservation, True


def _refuse_amounts_beyond_limit(reservation: Reservation, request: ReservationCreate) -> None:
    """A hold whose lines or total could not be charged is refused (the transaction rolls
    back, so nothing stays held); errors name the lines as the request listed them."""
    price = {line.item_id: line.unit_price for line in reservation.lines}
    total_within_limit([(price[line.item_id], line.quantity) for line in request.items])


def _new_reservation(session: Session, ttl: int) -> Reservation:
    reservation = Reservation(order_id=None, status=ReservationStatus.HELD,
                              expires_at=hold_expiry(utcnow(), ttl))
    session.add(reservation)
    session.flush()
    return reservation


def _take_all(session: Session, reservation: Reservation, wanted: dict[int, int]) -> None:
    """Move every line from available to reserved, or raise: 422 naming unknown items,
    else 409 listing every short line."""
    taken = {item_id: _take(session, item_id, wanted[item_id]) for item_id in sorted(wanted)}
    refused = [item_id for item_id, row in taken.items() if row is None]
    if refused:
        refusal = _refusal(session, refused, wanted)
        if isinstance(refusal, InsufficientStock):
            metrics.record_reservation("refused")
        raise refusal
    lines = [ReservationLine(reservation_id=reservation.id, item_id=item_id, name=row.name,
                             quantity=wanted[item_id], unit_price=row.price)
             for item_id, row in taken.items()]
    session.add_all(lines)
    session.flush()
    # The lines are known without reading them back.
    set_committed_value(reservation, "lines", lines)


def _refusal(session: Session, refused: list[int], wanted: dict[int, int]) -> Exception:
    rows = session.execute(
        select(Item.id, Item.quantity).where(Item.id.in_(refused), Item.deleted_at.is_(None)))
    available = {row.id: row.quantity for row in rows}
    missing = [item_id for item_id in refused if item_id not in available]
    if missing:
        return unknown_items_error(missing)
    shortfalls = [Shortfall(item_id, wanted[item_id], available[item_id]) for item_id in refused]
    return InsufficientStock(shortage_detail(shortfalls), errors=[asdict(s) for s in shortfalls])


def _take(session: Session, item_id: int, quantity: int):
    return session.execute(
        update(Item)
        .where(Item.id == item_id, Item.deleted_at.is_(None), Item.quantity >= quantity)
        .values(quantity=Item.quantity - quantity, reserved=Item.reserved + quantity)
        .returning(Item.name, Item.price)
        .execution_options(synchronize_session=False)
    ).first()


def _reservation(session: Session, reservation_id: int, lock: bool = False) -> Reservation:
    statement = (select(Reservation).options(joinedload(Reservation.lines))
                 .where(Reservation.id == reservation_id))
    if lock:
        statement = statement.with_for_update(of=Reservation)
    reservation = session.scalars(statement).unique().first()
    if reservation is None:
        raise NotFound(f"Reservation {reservation_id} does not exist.")
    return reservation


def _commit(session: Session, reservation: Reservation) -> Reservation:
    status = ReservationStatus(reservation.status)
    if may_commit(status, is_expired(status, reservation.expires_at, utcnow())):
        for line in reservation.lines:
            _shift(session, line, reserved=-line.quantity, committed=line.quantity)
        reservation.status = ReservationStatus.COMMITTED
        metrics.record_reservation("committed")
    return reservation


def _return_stock(session: Session, reservation: Reservation, status: ReservationStatus):
    for line in reservation.lines:
        _shift(session, line, reserved=-line.quantity, quantity=line.quantity)
    reservation.status = status
    metrics.record_reservation(status.value)


def _shift(session: Session, line: ReservationLine, **deltas: int) -> None:
    session.execute(
        update(Item).where(Item.id == line.item_id)
        .values({getattr(Item, name): getattr(Item, name) + delta
                 for name, delta in deltas.items()})
        .execution_options(synchronize_session=False)
    )
