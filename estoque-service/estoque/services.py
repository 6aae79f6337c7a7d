"""Use cases of estoque: the life of a reservation (reserved, then committed, or given back by
a release or by expiry), each one transaction of the StockStore, with the business metrics
after it. Reading and administering items, and reading a reservation, have no use case of their
own: the routes ask the StockStore."""

from collections.abc import Iterator
from contextlib import contextmanager

from estoque import telemetry
from estoque.schemas import ItemOut, ReservationCreate, ReservationOut
from estoque.store import StockStore
from veloz.core.contracts import InsufficientStock


class Reservations:
    """`ttl_seconds`: how long a reservation lives when the request does not say."""

    def __init__(self, store: StockStore, ttl_seconds: int):
        self.store = store
        self.ttl_seconds = ttl_seconds

    def reserve(self, request: ReservationCreate) -> tuple[ReservationOut, bool]:
        """All-or-nothing reservation of every line; the same order_id always gets the same
        reservation. Returns the reservation and whether this call made it."""
        with _refusals_counted():
            reservation, created = self.store.reserve(
                request, request.ttl_seconds or self.ttl_seconds)
        if created:
            telemetry.record_reservation("granted")
        return reservation, created

    def reserve_single_item(self, item_id: int, quantity: int) -> tuple[ItemOut, ReservationOut]:
        """The original API's one-item reservation: a reservation without an order."""
        with _refusals_counted():
            item, reservation = self.store.reserve_single_item(item_id, quantity,
                                                               self.ttl_seconds)
        telemetry.record_reservation("granted")
        return item, reservation

    def commit(self, reservation_id: int) -> ReservationOut:
        reservation, moved = self.store.commit(reservation_id)
        if moved:
            telemetry.record_reservation("committed")
        return reservation

    def write_off(self, item_id: int, reservation_id: int) -> ItemOut:
        """Commit a reservation through the item it reserves (the original API's 'baixa')."""
        item, moved = self.store.write_off(item_id, reservation_id)
        if moved:
            telemetry.record_reservation("committed")
        return item

    def release(self, reservation_id: int) -> ReservationOut:
        reservation, moved = self.store.release(reservation_id)
        if moved:
            telemetry.record_reservation("released")
        return reservation

    def release_next_expired(self) -> int | None:
        """Release one expired reservation (the sweeper's unit of work); its id, or None."""
        released = self.store.release_next_expired()
        if released is not None:
            telemetry.record_reservation("expired")
        return released


@contextmanager
def _refusals_counted() -> Iterator[None]:
    """A reservation refused for short stock counts as refused (unknown or unpriced items, or
    amounts past the limit, are bad requests, not refusals)."""
    try:
        yield
    except InsufficientStock:
        telemetry.record_reservation("refused")
        raise
