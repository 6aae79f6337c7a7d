"""Reservations racing each other: never oversell, never lose a unit, never deadlock."""

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update

from estoque.models import Item, Reservation
from estoque.sweeper import sweep_once


def _race(app, requests):
    """Send every (method, url, body) at once from its own client; return the statuses."""
    def send(request):
        method, url, body = request
        return getattr(app.test_client(), method)(url, json=body).status_code

    with ThreadPoolExecutor(max_workers=len(requests)) as pool:
        return list(pool.map(send, requests))


def _books(db, item_id):
    with db.reading() as session:
        item = session.get(Item, item_id)
        return item.quantity, item.reserved, item.committed


def test_sixty_buyers_of_ten_units_get_exactly_ten_reservations(app, db, make_item):
    item = make_item(quantity=10)
    reservations = [("post", "/reservations", {"order_id": n, "items": [
        {"item_id": item["id"], "quantity": 1}]}) for n in range(1, 61)]

    statuses = _race(app, reservations)

    assert statuses.count(201) == 10
    assert statuses.count(409) == 50
    assert _books(db, item["id"]) == (0, 10, 0)


def test_multi_item_reservations_racing_single_item_reservations_never_split(app, db, make_item):
    a, b = make_item(quantity=10), make_item(quantity=10)
    pairs = [("post", "/reservations", {"order_id": n, "items": [
        {"item_id": a["id"], "quantity": 1}, {"item_id": b["id"], "quantity": 1}]})
        for n in range(1, 21)]
    singles = [("patch", f"/items/{target['id']}/reserve", {"quantity": 1})
               for target in (a, b) for _ in range(10)]

    statuses = _race(app, [r for pair in zip(pairs, singles, strict=True) for r in pair])

    pair_wins = statuses[0::2].count(201)
    single_wins = statuses[1::2].count(200)
    assert pair_wins * 2 + single_wins == 20
    assert set(statuses) <= {200, 201, 409}
    assert _books(db, a["id"])[:2] == (0, 10)
    assert _books(db, b["id"])[:2] == (0, 10)
    with db.reading() as session:
        reserved = session.scalars(select(Item.reserved).order_by(Item.id)).all()
    assert reserved == [10, 10]


def test_racing_commits_releases_and_new_reservations_keep_the_invariant(app, client, db,
                                                                        make_item):
    item = make_item(quantity=30)
    held = [client.post("/reservations", json={"order_id": n, "items": [
        {"item_id": item["id"], "quantity": 2}]}).json["id"] for n in range(1, 11)]
    mixed = [("post", f"/reservations/{rid}/{'commit' if rid % 2 else 'release'}", None)
             for rid in held]
    mixed += [("post", "/reservations", {"order_id": 100 + n, "items": [
        {"item_id": item["id"], "quantity": 3}]}) for n in range(10)]

    statuses = _race(app, mixed)

    assert all(status < 500 for status in statuses)
    quantity, reserved, committed = _books(db, item["id"])
    assert quantity + reserved + committed == 30
    assert committed == 10


def test_sweepers_running_side_by_side_release_each_expired_reservation_once(client, db, estoque,
                                                                       make_item):
    item = make_item(quantity=40)
    for order_id in range(1, 21):
        client.post("/reservations", json={"order_id": order_id, "items": [
            {"item_id": item["id"], "quantity": 2}]})
    with db.transaction() as session:
        session.execute(update(Reservation).values(
            expires_at=datetime.now(UTC) - timedelta(seconds=1)))

    with ThreadPoolExecutor(max_workers=4) as pool:
        released = list(pool.map(lambda _: sweep_once(estoque.reservations, batch_size=100),
                                 range(4)))

    assert sum(released) == 20
    assert _books(db, item["id"]) == (40, 0, 0)


def test_reservations_commits_and_releases_of_several_items_racing_never_deadlock(app, client, db,
                                                                            make_item):
    stock = [make_item(quantity=60) for _ in range(3)]
    ids = [item["id"] for item in stock]
    held = [client.post("/reservations", json={"order_id": n, "items": [
        {"item_id": item_id, "quantity": 1} for item_id in ids[n % 3:] + ids[:n % 3]]}
    ).json["id"] for n in range(1, 13)]
    mixed = [("post", f"/reservations/{rid}/{'commit' if rid % 2 else 'release'}", None)
             for rid in held]
    mixed += [("post", "/reservations", {"order_id": 100 + n, "items": [
        {"item_id": item_id, "quantity": 2} for item_id in ids[n % 3:] + ids[:n % 3]]})
        for n in range(12)]

    statuses = _race(app, mixed)

    assert statuses == [200] * 12 + [201] * 12
    for item_id in ids:
        assert _books(db, item_id) == (60 - 6 - 24, 24, 6)
