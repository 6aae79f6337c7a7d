"""Reservations: all-or-nothing, commit, release, expiry, and the stock invariant."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import update

from estoque.models import Item, Reservation
from estoque.sweeper import sweep_once


def _reserve(client, order_id, *lines, **extra):
    items = [{"item_id": item_id, "quantity": quantity} for item_id, quantity in lines]
    return client.post("/reservations", json={"order_id": order_id, "items": items, **extra})


def _stock(client, item_id):
    item = client.get(f"/items/{item_id}").json
    return item["quantity"], item["reserved"]


def _expire_all(db):
    with db.transaction() as session:
        session.execute(update(Reservation).values(
            expires_at=datetime.now(UTC) - timedelta(seconds=1)))


def test_reservation_takes_units_from_available_into_reserved(client, make_item):
    shirt = make_item(quantity=10, price=59.9)

    response = _reserve(client, 1, (shirt["id"], 3))

    assert response.status_code == 201
    assert response.json["status"] == "held"
    assert response.json["items"] == [{"item_id": shirt["id"], "name": "Camiseta",
                                       "quantity": 3, "unit_price": Decimal("59.9")}]
    assert _stock(client, shirt["id"]) == (7, 3)


def test_reservation_expires_after_the_requested_ttl(client, make_item):
    shirt = make_item()

    response = _reserve(client, 1, (shirt["id"], 1), ttl_seconds=60)

    expires = datetime.fromisoformat(response.json["expires_at"])
    created = datetime.fromisoformat(response.json["created_at"])
    assert timedelta(seconds=59) < expires - created <= timedelta(seconds=61)


def test_short_line_rejects_the_whole_reservation_and_lists_every_short_item(client, make_item):
    plenty, scarce, empty = make_item(quantity=10), make_item(quantity=1), make_item(quantity=0)

    response = _reserve(client, 1, (plenty["id"], 2), (scarce["id"], 2), (empty["id"], 1))

    assert response.status_code == 409
    assert response.json["errors"] == [
        {"item_id": scarce["id"], "requested": 2, "available": 1},
        {"item_id": empty["id"], "requested": 1, "available": 0},
    ]
    assert _stock(client, plenty["id"]) == (10, 0)
    assert _stock(client, scarce["id"]) == (1, 0)


def test_unknown_item_rejects_the_reservation_with_422(client, make_item):
    shirt = make_item(quantity=10)

    response = _reserve(client, 1, (shirt["id"], 1), (999, 1))

    assert response.status_code == 422
    assert response.json["errors"][0]["item_id"] == 999
    assert _stock(client, shirt["id"]) == (10, 0)


def test_an_order_reserving_an_item_priced_zero_is_a_422_and_reserves_nothing(client, make_item,
                                                                              db):
    """A row from before prices had to be above 0: an order of it would be paid by nothing."""
    shirt, gift = make_item(quantity=5, price=10), make_item(quantity=5, price=10)
    with db.transaction() as session:
        session.execute(update(Item).where(Item.id == gift["id"]).values(price=0))

    response = _reserve(client, 1, (shirt["id"], 1), (gift["id"], 1))

    assert response.status_code == 422
    assert response.json["type"] == "urn:pedidos-veloz:problem:unpriced-items"
    assert response.json["errors"] == [
        {"field": "items", "item_id": gift["id"], "message": "priced 0"}]
    assert _stock(client, shirt["id"]) == _stock(client, gift["id"]) == (5, 0)


def test_same_order_gets_the_same_reservation_and_reserves_once(client, make_item):
    shirt = make_item(quantity=10)

    first = _reserve(client, 7, (shirt["id"], 4))
    again = _reserve(client, 7, (shirt["id"], 4))

    assert again.status_code == 200
    assert again.json["id"] == first.json["id"]
    assert _stock(client, shirt["id"]) == (6, 4)


def test_order_rejected_for_short_stock_can_try_again_later(client, make_item):
    shirt = make_item(quantity=1)
    assert _reserve(client, 7, (shirt["id"], 2)).status_code == 409

    client.post(f"/items/{shirt['id']}/restock", json={"quantity": 5})

    assert _reserve(client, 7, (shirt["id"], 2)).status_code == 201


def test_idempotency_key_replays_the_first_response(client, make_item):
    shirt = make_item(quantity=10)
    body = {"order_id": 3, "items": [{"item_id": shirt["id"], "quantity": 1}]}
    headers = {"Idempotency-Key": "abc-1"}

    first = client.post("/reservations", json=body, headers=headers)
    again = client.post("/reservations", json=body, headers=headers)

    assert (again.status_code, again.data) == (first.status_code, first.data)
    assert again.headers["Idempotent-Replayed"] == "true"


def test_idempotency_key_with_a_different_body_is_refused(client, make_item):
    shirt = make_item(quantity=10)
    headers = {"Idempotency-Key": "abc-2"}
    client.post("/reservations", json={"order_id": 3, "items": [
        {"item_id": shirt["id"], "quantity": 1}]}, headers=headers)

    response = client.post("/reservations", json={"order_id": 3, "items": [
        {"item_id": shirt["id"], "quantity": 2}]}, headers=headers)

    assert response.status_code == 422
    assert _stock(client, shirt["id"]) == (9, 1)


@pytest.fixture
def three_of_ten(client, make_item):
    """3 of an item's 10 units reserved: the item's id and the reservation's path."""
    shirt = make_item(quantity=10)
    reservation = _reserve(client, 1, (shirt["id"], 3)).json
    return shirt["id"], f"/reservations/{reservation['id']}"


def test_commit_moves_held_units_out_for_good_and_is_idempotent(client, three_of_ten):
    item_id, reservation = three_of_ten

    first = client.post(f"{reservation}/commit")
    again = client.post(f"{reservation}/commit")

    assert first.json["status"] == again.json["status"] == "committed"
    assert _stock(client, item_id) == (7, 0)


def test_release_returns_units_and_is_idempotent(client, three_of_ten):
    item_id, reservation = three_of_ten

    client.post(f"{reservation}/release")
    again = client.post(f"{reservation}/release")

    assert again.status_code == 200
    assert again.json["status"] == "released"
    assert _stock(client, item_id) == (10, 0)


def test_released_reservation_cannot_be_committed(client, three_of_ten):
    item_id, reservation = three_of_ten
    client.post(f"{reservation}/release")

    assert client.post(f"{reservation}/commit").status_code == 409
    assert _stock(client, item_id) == (10, 0)


def test_committed_reservation_cannot_be_released(client, three_of_ten):
    item_id, reservation = three_of_ten
    client.post(f"{reservation}/commit")

    assert client.post(f"{reservation}/release").status_code == 409
    assert _stock(client, item_id) == (7, 0)


def test_reservation_past_its_expiry_cannot_be_committed_even_before_the_sweep(client, db,
                                                                                 three_of_ten):
    _item_id, reservation = three_of_ten
    _expire_all(db)

    assert client.post(f"{reservation}/commit").status_code == 409


def test_sweeper_returns_expired_reservations_to_stock(client, db, estoque, make_item):
    shirt = make_item(quantity=10)
    expired = _reserve(client, 1, (shirt["id"], 3)).json
    _expire_all(db)
    live = _reserve(client, 2, (shirt["id"], 2)).json

    released = sweep_once(estoque.reservations, batch_size=100)

    assert released == 1
    assert client.get(f"/reservations/{expired['id']}").json["status"] == "expired"
    assert client.get(f"/reservations/{live['id']}").json["status"] == "held"
    assert _stock(client, shirt["id"]) == (8, 2)


def test_unknown_reservation_answers_404(client):
    assert client.get("/reservations/12345").status_code == 404
    assert client.post("/reservations/12345/commit").status_code == 404


def test_single_item_reservation_answers_like_the_original_api(client, make_item):
    shirt = make_item(quantity=5)

    response = client.patch(f"/items/{shirt['id']}/reserve", json={"quantity": 2})

    assert response.status_code == 200
    assert response.json["item"]["quantity"] == 3
    assert response.json["item"]["reserved"] == 2
    assert isinstance(response.json["reservation_id"], int)
    assert response.json["message"]


def test_single_item_reservation_beyond_stock_says_what_is_available(client, make_item):
    shirt = make_item(quantity=5)

    response = client.patch(f"/items/{shirt['id']}/reserve", json={"quantity": 6})

    assert response.status_code == 409
    assert response.json["available"] == 5


def test_write_off_commits_the_reservation_of_that_item(client, make_item):
    shirt = make_item(quantity=5)
    reservation = client.patch(f"/items/{shirt['id']}/reserve", json={"quantity": 2}).json

    response = client.patch(f"/items/{shirt['id']}/write-off",
                            json={"reservation_id": reservation["reservation_id"]})

    assert response.status_code == 200
    assert (response.json["quantity"], response.json["reserved"]) == (3, 0)


def test_write_off_through_another_item_is_refused(client, make_item):
    shirt, cap = make_item(quantity=5), make_item(quantity=5)
    reservation = client.patch(f"/items/{shirt['id']}/reserve", json={"quantity": 2}).json

    response = client.patch(f"/items/{cap['id']}/write-off",
                            json={"reservation_id": reservation["reservation_id"]})

    assert response.status_code == 404
    assert _stock(client, shirt["id"]) == (3, 2)
