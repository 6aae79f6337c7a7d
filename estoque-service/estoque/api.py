"""HTTP routes of estoque: validate, call one use case (a read, or an item's administration:
the store), serialize."""

from flask import Blueprint, current_app

from estoque.bootstrap import Estoque
from estoque.schemas import (
    ItemCreate,
    ItemOut,
    ItemPatch,
    ItemQuery,
    ReservationCreate,
    ReservationOut,
    Restock,
    SingleItemReservation,
    SingleItemReservationOut,
    WriteOff,
)
from veloz.web.api import IDEMPOTENCY_KEY, operation, respond
from veloz.web.idempotency import answers, key_from_request
from veloz.web.paging import split_page

bp = Blueprint("estoque", __name__)
ITEMS, RESERVATIONS = ("items",), ("reservations",)


def _estoque() -> Estoque:
    return current_app.extensions["estoque"]


@bp.post("/items")
@operation("Create an item", body=ItemCreate, tags=ITEMS,
           responses={201: ItemOut, 409: "Another item already uses this SKU."})
def create_item(body: ItemCreate):
    item = _estoque().store.create_item(body)
    return respond(item, 201, {"Location": f"/items/{item.id}"})


@bp.get("/items")
@operation("List items (keyset paged)", query=ItemQuery, responses={200: [ItemOut]}, tags=ITEMS)
def list_items(query: ItemQuery):
    rows, headers = split_page(_estoque().store.list_items(query), query)
    return respond(rows, 200, headers)


@bp.get("/items/<int:item_id>")
@operation("Get an item", responses={200: ItemOut}, tags=ITEMS)
def get_item(item_id: int):
    return respond(_estoque().store.get_item(item_id))


@bp.patch("/items/<int:item_id>")
@operation("Change name, description, price or SKU", body=ItemPatch, tags=ITEMS,
           responses={200: ItemOut, 409: "Another item already uses this SKU."})
def update_item(item_id: int, body: ItemPatch):
    return respond(_estoque().store.update_item(item_id, body.model_dump(exclude_unset=True)))


@bp.delete("/items/<int:item_id>")
@operation("Delete an item (409 while it has reserved units)", tags=ITEMS,
           responses={204: None, 409: "Units of the item are reserved; release or commit "
                                      "them."})
def delete_item(item_id: int):
    _estoque().store.delete_item(item_id)
    return respond(None, 204)


@bp.post("/items/<int:item_id>/restock")
@operation("Add units to what can be sold", body=Restock, tags=ITEMS,
           headers=[IDEMPOTENCY_KEY],
           responses={200: ItemOut,
                      409: "The same Idempotency-Key is still running.",
                      422: "Invalid body, or the stock would pass its limit."})
def restock(item_id: int, body: Restock):
    """With an Idempotency-Key, a repeat answers the first restock and adds nothing: pedidos
    sends one per order line, so a restock that landed after pedidos stopped waiting for it
    is not made twice when the cancel or compensation is tried again. The store records the
    key with the units, so even a repeat that runs again (its stored answer lost with a
    crashed worker) adds nothing."""
    key = key_from_request(f"POST /items/{item_id}/restock", body)
    return answers().answer(key, lambda: respond(_estoque().store.restock(
        item_id, body.quantity, key.key if key else None)))


@bp.patch("/items/<int:item_id>/reserve")
@operation("Reserve units of one item", body=SingleItemReservation, tags=ITEMS,
           responses={200: SingleItemReservationOut,
                      409: "Too few units; `available` says how many."})
def reserve_single_item(item_id: int, body: SingleItemReservation):
    item, reservation = _estoque().reservations.reserve_single_item(item_id, body.quantity)
    return respond(SingleItemReservationOut(message=f"Reserved {body.quantity} of {item.name}",
                                            item=item, reservation_id=reservation.id))


@bp.patch("/items/<int:item_id>/write-off")
@operation("Commit a reservation of this item (stock leaves for good)", body=WriteOff,
           tags=ITEMS, responses={200: ItemOut, 409: "The reservation is released or expired."})
def write_off(item_id: int, body: WriteOff):
    return respond(_estoque().reservations.write_off(item_id, body.reservation_id))


@bp.post("/reservations")
@operation("Reserve every line of an order, all or nothing", body=ReservationCreate,
           headers=[IDEMPOTENCY_KEY], tags=RESERVATIONS, responses={
               201: ReservationOut, 200: ReservationOut,
               409: "Stock is short (`errors` lists every short item), or the same "
                    "Idempotency-Key is still running.",
               422: "Invalid body, unknown items, items priced 0 (unpriced-items), or a total "
                    "above the money limit."})
def create_reservation(body: ReservationCreate):
    key = key_from_request("POST /reservations", body)

    def reserve():
        reservation, created = _estoque().reservations.reserve(body)
        return respond(reservation, 201 if created else 200,
                       {"Location": f"/reservations/{reservation.id}"})

    return answers().answer(key, reserve)


@bp.get("/reservations/<int:reservation_id>")
@operation("Get a reservation", responses={200: ReservationOut}, tags=RESERVATIONS)
def get_reservation(reservation_id: int):
    return respond(_estoque().store.get_reservation(reservation_id))


@bp.post("/reservations/<int:reservation_id>/commit")
@operation("Commit a reservation (idempotent)", tags=RESERVATIONS,
           responses={200: ReservationOut, 409: "The reservation is released or expired."})
def commit_reservation(reservation_id: int):
    return respond(_estoque().reservations.commit(reservation_id))


@bp.post("/reservations/<int:reservation_id>/release")
@operation("Release a reservation (idempotent)", tags=RESERVATIONS,
           responses={200: ReservationOut, 409: "The reservation is committed."})
def release_reservation(reservation_id: int):
    return respond(_estoque().reservations.release(reservation_id))
