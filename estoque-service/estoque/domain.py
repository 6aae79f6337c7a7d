"""Stock rules with no I/O: reservation states and what each request may do to them."""

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from veloz.core.contracts import ReservationCommitted, ReservationNotHeld, UnknownItems
from veloz.core.errors import Conflict, Unprocessable


class ReservationStatus(StrEnum):
    HELD = "held"
    COMMITTED = "committed"
    RELEASED = "released"
    EXPIRED = "expired"

    @property
    def returned_stock(self) -> bool:
        return self in (ReservationStatus.RELEASED, ReservationStatus.EXPIRED)


class ItemHasReservations(Conflict):
    """Deleting an item some reservation still keeps units of (the type's slug keeps its
    first name: it is part of the HTTP contract)."""

    title, slug = "Item has held reservations", "item-has-holds"


class StockLimitReached(Unprocessable):
    title, slug = "Stock limit reached", "stock-limit-reached"


class DuplicateSku(Conflict):
    title, slug = "SKU already in use", "duplicate-sku"


# Stock columns are PostgreSQL INTEGERs: an item's units, all states summed, stay below this.
MAX_UNITS = 2**31 - 1


@dataclass(frozen=True)
class Shortfall:
    item_id: int
    requested: int
    available: int


def reservation_expiry(now: datetime, ttl_seconds: int) -> datetime:
    return now + timedelta(seconds=ttl_seconds)


def is_expired(status: ReservationStatus, expires_at: datetime, now: datetime) -> bool:
    return status is ReservationStatus.HELD and expires_at <= now


def may_commit(status: ReservationStatus, expired: bool) -> bool:
    """True when a commit must move stock; False when it is already committed (a replay)."""
    if status is ReservationStatus.COMMITTED:
        return False
    if status.returned_stock or expired:
        raise ReservationNotHeld(f"The reservation is {status.value if not expired else 'expired'}"
                                 " and its stock went back on sale; it cannot be committed.")
    return True


def may_release(status: ReservationStatus) -> bool:
    """True when a release must return stock; False for a replay. Committed stock stays sold."""
    if status is ReservationStatus.COMMITTED:
        raise ReservationCommitted("The reservation is committed; its stock has left for good.")
    return status is ReservationStatus.HELD


def shortage_detail(shortfalls: list[Shortfall]) -> str:
    names = ", ".join(f"item {s.item_id} ({s.available} of {s.requested})" for s in shortfalls)
    return f"Not enough stock for {names}."


def unknown_items_error(missing: list[int]) -> UnknownItems:
    return UnknownItems(
        f"No such items: {', '.join(map(str, missing))}.",
        errors=[{"field": "items", "item_id": item_id, "message": "unknown item"}
                for item_id in missing],
    )
