import time
from concurrent.futures import ThreadPoolExecutor
from threading import Barrier

from sqlalchemy import text

APPROVING_CARD = "4242424242424242"

RACERS = 20


def test_racing_charges_of_one_order_approve_exactly_one(app, stored_payments):
    start = Barrier(RACERS)

    def race(_):
        client = app.test_client()
        start.wait()
        return client.post("/payments", json={"order_id": 77, "amount": 25,
                                               "card_number": APPROVING_CARD})

    with ThreadPoolExecutor(RACERS) as pool:
        statuses = sorted(r.status_code for r in pool.map(race, range(RACERS)))

    assert statuses == [201] + [409] * (RACERS - 1)
    assert stored_payments(order_id=77, status="approved") == 1
    assert stored_payments() == 1


def test_racing_refunds_of_one_payment_all_answer_refunded(app, charge, stored_payments):
    payment_id = charge().get_json()["id"]
    start = Barrier(10)

    def race(_):
        client = app.test_client()
        start.wait()
        return client.post(f"/payments/{payment_id}/refund")

    with ThreadPoolExecutor(10) as pool:
        answers = list(pool.map(race, range(10)))

    assert {r.status_code for r in answers} == {200}
    assert {r.get_json()["status"] for r in answers} == {"refunded"}
    assert stored_payments(status="refunded") == 1


def test_the_database_refuses_an_approval_racing_past_the_check(app, charge, stored_payments):
    """A rival approval not yet committed is invisible to the check; the unique index wins."""
    response = _charge_behind(
        app, charge, ["INSERT INTO payments (order_id, amount, method, status, created_at,"
                      " updated_at) VALUES (55, 10, 'pix', 'approved', now(), now())"],
        order_id=55)

    assert response.status_code == 409
    assert response.get_json()["type"] == "urn:pedidos-veloz:problem:order-already-paid"
    assert stored_payments(order_id=55) == 1


def test_a_charge_waiting_for_the_order_lock_sees_what_the_holder_committed(app, charge,
                                                                           stored_payments):
    """The charge reads the order's payments only once it holds the lock, so a payment the
    holder committed meanwhile is judged: another amount is a mismatch, not a second row."""
    response = _charge_behind(
        app, charge, ["SELECT pg_advisory_xact_lock(60)",
                      "INSERT INTO payments (order_id, amount, method, status, decline_reason,"
                      " created_at, updated_at) VALUES (60, 10, 'pix', 'declined',"
                      " 'card_declined', now(), now())"],
        order_id=60, amount=20, method="pix")

    assert response.status_code == 409
    assert response.get_json()["type"] == "urn:pedidos-veloz:problem:payment-mismatch"
    assert response.get_json()["payment"]["amount"] == 10
    assert stored_payments(order_id=60) == 1

def _charge_behind(app, charge, statements: list[str], **charge_args):
    """The answer to a charge sent while another transaction, which ran `statements`, is
    open; that transaction commits once the charge waits on it."""
    other = app.extensions["database"].engine.connect()
    for statement in statements:
        other.execute(text(statement))
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(charge, **charge_args)
        _wait_until_blocked(app)
        other.commit()
        response = pending.result(timeout=10)
    other.close()
    return response


def _wait_until_blocked(app, attempts: int = 100) -> None:
    waiting = text("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                   " AND datname = current_database()")
    for _ in range(attempts):
        with app.extensions["database"].engine.connect() as connection:
            if connection.execute(waiting).scalar_one():
                return
        time.sleep(0.02)
    raise AssertionError("the charge never waited on the rival's insert")
