"""HTTP routes of estoque: validate, call one use case, serialize."""

from flask import Blueprint, current_app

from estoque import services
from estoque.schemas import (
    ItemCreate,
    ItemOut,
    ItemPatch,
    ItemQuery,
    ReservationCreate,
    ReservationOut,
    Restock,
    SingleHold,
    SingleHoldOut,
    WriteOff,
)
from veloz.web.api import IDEMPOTENCY_KEY, operation, respond
from veloz.web.idempotency import answers, key_from_request
from veloz.web.paging import split_page

bp = Blueprint("estoque", __name__)
ITEMS, HOLDS = ("items",), ("reservations",)


def _db():
    return current_app.extensions["database"]


def _settings():
    return current_app.extensions["settings"]


def _item(item) -> ItemOut:
    return ItemOut.model_validate(item)


@bp.post("/items")
@operation("Create an item", body=ItemCreate, tags=ITEMS,
           responses={201: ItemOut, 409: "Another item already uses this SKU."})
def create_item(body: ItemCreate):
    item = services.create_item(_db(), body)
    return respond(_item(item), 201, {"Location": f"/items/{item.id}"})


@bp.get("/items")
@operation("List items (keyset paged)", query=ItemQuery, responses={200: [ItemOut]}, tags=ITEMS)
def list_items(query: ItemQuery):
    rows, headers = split_page(services.list_items(_db(), query), query)
    return respond([_item(row) for row in rows], 200, headers)


@bp.get("/items/<int:item_id>")
@operation("Get an item", responses={200: ItemOut}, tags=ITEMS)
def get_item(item_id: int):
    return respond(services.get_item(_db(), item_id))


@bp.patch("/items/<int:item_id>")
@operation("Change name, description, price or SKU", body=ItemPatch, tags=ITEMS,
           responses={200: ItemOut, 409: "Another item already uses this SKU."})
def update_item(item_id: int, body: ItemPatch):
    item = services.update_item(_db(), item_id, body.model_dump(exclude_unset=True))
    return respond(_item(item))


@bp.delete("/items/<int:item_id>")
@operation("Delete an item (409 while it has held units)", tags=ITEMS,
           responses={204: None, 409: "Units of the item are held; release or commit them."})
def delete_item(item_id: int):
    services.delete_item(_db(), item_id)
    return respond(None, 204)


@bp.post("/items/<int:item_id>/restock")
@operation("Add units to what can be sold", body=Restock, tags=ITEMS,
           responses={200: ItemOut, 422: "Invalid body, or the stock would pass its limit."})
def restock(item_id: int, body: Restock):
    return respond(services.restock(_db(), item_id, body.quantity))


@bp.patch("/items/<int:item_id>/reserve")
@operation("Hold units of one item", body=SingleHold, tags=ITEMS,
           responses={200: SingleHoldOut, 409: "Too few units; `available` says how many."})
def hold_single_item(item_id: int, body: SingleHold):
    item, reservation = services.hold_single_item(
        _db(), item_id, body.quantity, _settings().default_hold_seconds)
    return respond(SingleHoldOut(message=f"Reserved {body.quantity} of {item.name}",
                                 item=item, reservation_id=reservation.id))


@bp.patch("/items/<int:item_id>/write-off")
@operation("Commit a hold of this item (stock leaves for good)", body=WriteOff, tags=ITEMS,
           responses={200: ItemOut, 409: "The hold is released or expired."})
def write_off(item_id: int, body: WriteOff):
    return respond(services.write_off(_db(), item_id, body.reservation_id))


@bp.post("/reservations")
@operation("Hold every line of an order, all or nothing", body=ReservationCreate,
           headers=[IDEMPOTENCY_KEY], tags=HOLDS, responses={
               201: ReservationOut, 200: ReservationOut,
               409: "Stock is short (`errors` lists every short item), or the same "
                    "Idempotency-Key is still running.",
               422: "Invalid body, unknown items, items priced 0 (unpriced-items), or a total "
                    "above the money limit."})
def create_reservation(body: ReservationCreate):
    ttl = body.ttl_seconds or _settings().default_hold_seconds
    key = key_from_request("POST /reservations", body)

    def hold():
        reservation, created = services.reserve(_db(), body, ttl)
        return respond(reservation, 201 if created else 200,
                       {"Location": f"/reservations/{reservation.id}"})

    return answers().answer(key, hold)


@bp.get("/reservations/<int:reservation_id>")
@operation("Get a reservation", responses={200: ReservationOut}, tags=HOLDS)
def get_reservation(reservation_id: int):
    return respond(services.get_reservation(_db(), reservation_id))


@bp.post("/reservations/<int:reservation_id>/commit")
@operation("Commit a hold (idempotent)", tags=HOLDS,
           responses={200: ReservationOut, 409: "The hold is released or expired."})
def commit_reservation(reservation_id: int):
    return respond(services.commit_reservation(_db(), reservation_id))


@bp.post("/reservations/<int:reservation_id>/release")
@operation("Release a hold (idempotent)", tags=HOLDS,
           responses={200: ReservationOut, 409: "The hold is committed."})
def release_reservation(reservation_id: int):
    return respond(services.release_reservation(_db(), reservation_id))
