"""Reservations of several items, line by line: what is stored, what each answer shows, and that a
refused reservation leaves no row behind."""

from datetime import datetime
from decimal import Decimal

from sqlalchemy import func, select

from estoque.models import Item, Reservation, ReservationLine


def _reserve(client, order_id, *lines):
    return client.post("/reservations", json={"order_id": order_id, "items": [
        {"item_id": item_id, "quantity": quantity} for item_id, quantity in lines]})


def _books(db, item_id):
    with db.reading() as session:
        item = session.get(Item, item_id)
        return item.quantity, item.reserved, item.committed


def _rows_held(db):
    with db.reading() as session:
        return (session.scalar(select(func.count()).select_from(Reservation)),
                session.scalar(select(func.count()).select_from(ReservationLine)))


def test_lines_are_answered_and_stored_in_item_id_order(client, db, make_item):
    cap, shirt, mug = make_item(price=25), make_item(price=59.9), make_item(price=12.5)

    response = _reserve(client, 1, (mug["id"], 3), (cap["id"], 1), (shirt["id"], 2))

    assert response.status_code == 201
    assert [line["item_id"] for line in response.json["items"]] == [
        cap["id"], shirt["id"], mug["id"]]
    assert [line["unit_price"] for line in response.json["items"]] == [
        25, Decimal("59.9"), Decimal("12.5")]
    with db.reading() as session:
        stored = session.scalars(select(ReservationLine).order_by(ReservationLine.item_id)).all()
    assert [(line.item_id, line.quantity) for line in stored] == [
        (cap["id"], 1), (shirt["id"], 2), (mug["id"], 3)]


def test_repeat_of_an_order_answers_its_first_reservation_line_for_line(client, make_item):
    shirt, cap = make_item(), make_item()
    first = _reserve(client, 5, (cap["id"], 2), (shirt["id"], 1))

    again = _reserve(client, 5, (shirt["id"], 9))

    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json == first.json
    assert again.headers["Location"] == first.headers["Location"]


def test_reservation_refused_by_a_later_line_leaves_no_reservation_nor_line(client, db, make_item):
    plenty, scarce = make_item(quantity=10), make_item(quantity=1)

    short = _reserve(client, 1, (plenty["id"], 2), (scarce["id"], 2))
    unknown = _reserve(client, 2, (plenty["id"], 2), (999, 1))

    assert (short.status_code, unknown.status_code) == (409, 422)
    assert _rows_held(db) == (0, 0)
    assert _books(db, plenty["id"]) == (10, 0, 0)


def test_reservation_beyond_the_money_limit_leaves_no_reservation_nor_line(client, db, make_item):
    yacht = make_item(quantity=10, price=9999999999.99)

    response = _reserve(client, 1, (yacht["id"], 2))

    assert response.status_code == 422
    assert _rows_held(db) == (0, 0)
    assert _books(db, yacht["id"]) == (10, 0, 0)


def test_commit_and_release_move_every_line_of_a_reservation(client, db, make_item):
    a, b, c = make_item(quantity=10), make_item(quantity=10), make_item(quantity=10)
    lines = ((c["id"], 3), (a["id"], 1), (b["id"], 2))
    sold = _reserve(client, 1, *lines).json
    returned = _reserve(client, 2, *lines).json

    committed = client.post(f"/reservations/{sold['id']}/commit")
    released = client.post(f"/reservations/{returned['id']}/release")

    assert (committed.json["status"], released.json["status"]) == ("committed", "released")
    assert committed.json["items"] == sold["items"]
    assert released.json["items"] == returned["items"]
    assert [_books(db, item["id"]) for item in (a, b, c)] == [(9, 0, 1), (8, 0, 2), (7, 0, 3)]


def test_commit_and_release_answer_the_reservation_as_stored(client, make_item):
    shirt = make_item(quantity=10)
    sold = _reserve(client, 1, (shirt["id"], 1)).json
    returned = _reserve(client, 2, (shirt["id"], 1)).json

    committed = client.post(f"/reservations/{sold['id']}/commit").json
    released = client.post(f"/reservations/{returned['id']}/release").json

    assert committed == client.get(f"/reservations/{sold['id']}").json
    assert released == client.get(f"/reservations/{returned['id']}").json
    assert datetime.fromisoformat(committed["updated_at"]) > datetime.fromisoformat(
        sold["updated_at"])
    assert committed["created_at"] == sold["created_at"]
