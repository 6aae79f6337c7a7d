"""Reconciliation against the real pagamentos app and both real databases: the books are made
to disagree on purpose by writing straight into pagamentos' database, as only a bug, a person
at a psql prompt or a lost step could."""

from datetime import timedelta

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import text

from pedidos.clients import PagamentosClient, client_policy
from pedidos.reconciliation import Every, Reconciliation
from veloz.data.db import utcnow
from veloz.dev.devstack import free_port
from veloz.net.client import ServiceClient

GRACE = 300


@pytest.fixture
def reconcile(pedidos):
    """Reconcile as if `seconds_later` had passed since now (grace: GRACE seconds)."""

    def run(seconds_later: float = GRACE + 1):
        now = utcnow() + timedelta(seconds=seconds_later)
        return Reconciliation(pedidos.store, pedidos.saga.pagamentos, GRACE,
                              clock=lambda: now).run()

    return run


@pytest.fixture
def in_pagamentos_db(pagamentos_app):
    """Run one SQL statement straight in pagamentos' own database, behind pedidos' back."""

    def run(sql: str, **values):
        with pagamentos_app.extensions["database"].autocommit.connect() as connection:
            connection.execute(text(sql), values)

    return run


@pytest.fixture
def paid_order(buy, make_item):
    def place():
        response = buy({make_item(quantity=5): 1})
        assert response.json["order"]["status"] == "paid", response.json
        return response.json["order"]

    return place


def _gauge(kind: str) -> float | None:
    return REGISTRY.get_sample_value("pedidos_books_disagreements", {"kind": kind})


def test_books_that_agree_count_no_disagreement(reconcile, paid_order, client):
    paid_order()
    client.post(f"/orders/{paid_order()['id']}/cancel")

    findings = reconcile()

    assert findings.counts() == {"paid_without_payment": 0, "payment_without_paid_order": 0}
    assert _gauge("paid_without_payment") == 0
    assert _gauge("payment_without_paid_order") == 0


def test_a_paid_order_whose_payment_was_refunded_behind_its_back_is_counted(
        reconcile, paid_order, in_pagamentos_db):
    order = paid_order()
    in_pagamentos_db("UPDATE payments SET status = 'refunded' WHERE id = :id",
                     id=order["payment_id"])

    findings = reconcile()

    assert findings.paid_without_payment == (order["id"],)
    assert findings.payment_without_paid_order == ()
    assert _gauge("paid_without_payment") == 1


def test_an_approved_payment_no_paid_order_names_is_counted(reconcile, in_pagamentos_db):
    in_pagamentos_db("INSERT INTO payments (order_id, amount, method, status, created_at, "
                     "updated_at) VALUES (987654, 10.00, 'pix', 'approved', now(), now())")

    findings = reconcile()

    assert len(findings.payment_without_paid_order) == 1
    assert findings.paid_without_payment == ()
    assert _gauge("payment_without_paid_order") == 1


def test_nothing_counts_within_the_grace_period(reconcile, paid_order, in_pagamentos_db):
    order = paid_order()
    in_pagamentos_db("UPDATE payments SET status = 'refunded' WHERE id = :id",
                     id=order["payment_id"])
    in_pagamentos_db("INSERT INTO payments (order_id, amount, method, status, created_at, "
                     "updated_at) VALUES (987655, 10.00, 'pix', 'approved', now(), now())")

    within = reconcile(seconds_later=GRACE - 5)
    after = reconcile(seconds_later=GRACE + 5)

    assert within.counts() == {"paid_without_payment": 0, "payment_without_paid_order": 0}
    assert after.counts() == {"paid_without_payment": 1, "payment_without_paid_order": 1}


def test_every_approved_payment_is_read_page_by_page(pedidos, paid_order):
    orders = [paid_order() for _ in range(5)]

    approved = pedidos.saga.pagamentos.approved_payments(page_size=2)

    assert [p.id for p in approved] == [order["payment_id"] for order in orders]


def test_pagamentos_away_postpones_a_reconciliation_without_stopping_the_worker(
        pedidos, settings):
    policy = client_policy(settings.model_copy(update={"upstream_connect_budget_seconds": 0}))
    away = PagamentosClient(ServiceClient("pagamentos", f"http://127.0.0.1:{free_port()}",
                                          policy))
    every = Every(Reconciliation(pedidos.store, away, GRACE), interval_seconds=60)

    assert every.run_if_due() is None
    assert every.run_if_due() is None  # not due again before its interval
