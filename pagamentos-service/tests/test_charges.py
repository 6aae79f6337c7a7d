import logging
from decimal import Decimal

import pytest

APPROVING_CARD = "4242424242424242"
DECLINED_CARD = "4000000000000002"
NO_FUNDS_CARD = "4000000000009995"

PROBLEM = "application/problem+json"


def test_approved_charge_answers_201_with_the_payment(charge):
    response = charge(order_id=7, amount=59.90, card_number=APPROVING_CARD)

    assert response.status_code == 201
    assert response.content_type == "application/json"
    payment = response.get_json()
    assert payment["order_id"] == 7
    assert payment["status"] == "approved"
    assert payment["method"] == "credit_card"
    assert payment["card_last4"] == "4242"
    assert payment["decline_reason"] is None
    assert set(payment) == {"id", "order_id", "amount", "method", "status", "card_last4",
                            "decline_reason", "created_at", "updated_at"}


def test_money_goes_out_as_its_shortest_exact_number(charge):
    response = charge(amount=59.90)

    assert b'"amount":59.9,' in response.data
    assert response.get_json()["amount"] == Decimal("59.9")


def test_timestamps_are_iso_8601_in_utc(charge):
    payment = charge().get_json()

    assert payment["created_at"].endswith("+00:00")
    assert payment["updated_at"].endswith("+00:00")


@pytest.mark.parametrize("method", ["pix", "boleto"])
def test_non_card_methods_are_approved_without_a_card(charge, method):
    response = charge(method=method)

    assert response.status_code == 201
    assert response.get_json()["method"] == method
    assert response.get_json()["card_last4"] is None


@pytest.mark.parametrize(("card", "reason"), [(DECLINED_CARD, "card_declined"),
                                              (NO_FUNDS_CARD, "insufficient_funds")])
def test_declined_card_is_stored_and_answers_402(charge, client, stored_payments, card, reason):
    response = charge(card_number=card, method="debit_card")

    assert response.status_code == 402
    assert response.content_type == PROBLEM
    problem = response.get_json()
    assert problem["status"] == 402
    assert problem["type"] == "urn:pedidos-veloz:problem:payment-declined"
    assert problem["payment"]["status"] == "declined"
    assert problem["payment"]["decline_reason"] == reason
    assert problem["payment"]["card_last4"] == card[-4:]
    assert stored_payments(status="declined") == 1
    assert client.get(f"/payments/{problem['payment']['id']}").get_json() == problem["payment"]


def test_an_order_declined_once_can_still_be_paid(charge):
    assert charge(card_number=DECLINED_CARD).status_code == 402
    assert charge(card_number=APPROVING_CARD).status_code == 201


def test_second_charge_of_a_paid_order_is_a_conflict(charge, stored_payments):
    assert charge(order_id=3).status_code == 201

    response = charge(order_id=3, card_number=DECLINED_CARD)

    assert response.status_code == 409
    assert response.content_type == PROBLEM
    assert response.get_json()["type"] == "urn:pedidos-veloz:problem:order-already-paid"
    assert stored_payments(order_id=3) == 1


def test_decline_rate_one_declines_every_charge(client_with):
    client = client_with(payment_decline_rate=1.0)

    answers = [client.post("/payments", json={"order_id": n, "amount": 10}) for n in (1, 2, 3)]

    assert [a.status_code for a in answers] == [402, 402, 402]
    assert {a.get_json()["payment"]["decline_reason"] for a in answers} == {"risk_declined"}


def test_decline_rate_zero_approves_every_charge(charge):
    assert [charge(order_id=n).status_code for n in range(1, 6)] == [201] * 5


def test_failure_rate_one_answers_503_and_stores_nothing(client_with, stored_payments):
    client = client_with(payment_failure_rate=1.0)

    response = client.post("/payments", json={"order_id": 1, "amount": 10})

    assert response.status_code == 503
    assert response.content_type == PROBLEM
    assert response.headers["Retry-After"] == "1"
    assert stored_payments() == 0


def test_latency_switch_delays_the_charge(client_with):
    import time

    client = client_with(payment_latency_ms=200)
    started = time.perf_counter()

    assert client.post("/payments", json={"order_id": 1, "amount": 10}).status_code == 201
    assert time.perf_counter() - started >= 0.2


def test_card_number_never_appears_in_responses_logs_or_database(
        capsys, caplog, charge, client, app):
    caplog.set_level(logging.DEBUG)
    card = "4111111111111111"

    created = charge(card_number=card, headers={"Idempotency-Key": "k-card"})
    replayed = charge(card_number=card, headers={"Idempotency-Key": "k-card"})
    declined = charge(order_id=2, card_number=DECLINED_CARD)
    listed = client.get("/payments")

    bodies = b"".join(r.data for r in (created, replayed, declined, listed))
    assert card.encode() not in bodies
    assert DECLINED_CARD.encode() not in bodies
    captured = capsys.readouterr()
    logged = captured.out + captured.err + caplog.text
    assert "payment charged" in caplog.text
    assert card not in logged
    assert DECLINED_CARD not in logged
    assert card not in _database_dump(app)
    assert DECLINED_CARD not in _database_dump(app)


def _database_dump(app) -> str:
    from sqlalchemy import text

    with app.extensions["database"].reading() as session:
        payments = session.execute(text("SELECT p::text FROM payments p")).scalars().all()
        keys = session.execute(text("SELECT k::text FROM idempotency_keys k")).scalars().all()
    return "\n".join(payments + keys)


def test_amount_is_stored_exactly(charge, app):
    from sqlalchemy import select

    from pagamentos.models import Payment

    charge(amount=0.1)
    with app.extensions["database"].reading() as session:
        assert session.scalar(select(Payment.amount)) == Decimal("0.10")


@pytest.mark.parametrize("change", [{"amount": 0.01}, {"method": "pix"}],
                         ids=["another amount", "another method"])
def test_a_charge_unlike_the_orders_payment_is_a_conflict_not_a_replay(charge, stored_payments,
                                                                        change):
    first = charge(order_id=4, amount=10.50)

    response = charge(order_id=4, **{"amount": 10.50, **change})

    assert response.status_code == 409
    assert response.get_json()["type"] == "urn:pedidos-veloz:problem:payment-mismatch"
    assert response.get_json()["payment"]["id"] == first.get_json()["id"]
    assert stored_payments(order_id=4) == 1


def test_a_charge_unlike_a_declined_payment_of_the_order_is_a_conflict(charge):
    assert charge(order_id=5, amount=20, card_number=DECLINED_CARD).status_code == 402

    assert charge(order_id=5, amount=0.01).status_code == 409


def test_a_refunded_payment_no_longer_stands_in_the_way_of_a_new_charge(charge, client):
    wrong = charge(order_id=6, amount=0.01).get_json()
    assert client.post(f"/payments/{wrong['id']}/refund").status_code == 200

    assert charge(order_id=6, amount=10.50).status_code == 201


def test_the_conflict_for_a_paid_order_carries_the_approved_payment(charge):
    paid = charge(order_id=8).get_json()

    assert charge(order_id=8).get_json()["payment"] == paid
