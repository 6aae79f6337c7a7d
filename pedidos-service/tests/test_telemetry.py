"""pedidos' label sets follow its enums and the codes its use cases record: a final status,
a refusal estoque may answer or a recovery code added without its label would be counted as
`other` (what a value nobody listed becomes, by design)."""

import re
from decimal import Decimal

import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from pedidos import telemetry
from pedidos.clients import RESERVATION_REFUSALS
from pedidos.domain import OrderStatus, recovery_reason
from pedidos.models import IN_FLIGHT
from pedidos.reconciliation import Findings
from veloz.core.contracts import Payment

TOTAL = Decimal("59.90")


def settled(status: str, reason: str) -> float:
    return REGISTRY.get_sample_value("pedidos_orders_settled_total",
                                     {"status": status, "reason": reason}) or 0


def test_every_final_status_has_its_label_and_its_reasons():
    final = {status.value for status in OrderStatus if not status.in_flight}

    assert set(telemetry.ORDER_STATUSES) == final
    assert set(telemetry.SETTLE_REASONS) == final


@pytest.mark.parametrize("refusal", RESERVATION_REFUSALS)
def test_every_refusal_estoque_may_answer_is_a_rejection_reason_of_its_own(refusal):
    code = refusal.slug.replace("-", "_")  # the code the saga records
    before = settled("rejected", code)

    telemetry.record_order_settled(OrderStatus.REJECTED, code)

    assert settled("rejected", code) == before + 1


def approved_payment(amount: str) -> Payment:
    return Payment.of({"id": 1, "order_id": 1, "amount": amount, "method": "credit_card",
                       "status": "approved", "updated_at": "2026-12-06T00:00:00+00:00"})


@pytest.mark.parametrize(("status", "payment"), [
    (OrderStatus.PENDING, None),
    (OrderStatus.STOCK_RESERVED, None),
    (OrderStatus.STOCK_RESERVED, approved_payment("59.90")),
    (OrderStatus.STOCK_RESERVED, approved_payment("1.00")),
])
def test_every_code_recovery_fails_an_order_with_is_a_failure_reason(status, payment):
    code, _reason = recovery_reason(status, payment, TOTAL)

    assert code in telemetry.SETTLE_REASONS[OrderStatus.FAILED]


def test_a_reason_nobody_listed_is_counted_as_other():
    before = settled("failed", "other")

    telemetry.record_order_settled(OrderStatus.FAILED, "estoque said 'item 7 is gone'")

    assert settled("failed", "other") == before + 1


def test_the_disagreement_kinds_are_what_a_reconciliation_counts():
    assert tuple(Findings().counts()) == telemetry.DISAGREEMENT_KINDS


def test_in_flight_in_sql_names_the_statuses_of_an_order_mid_saga():
    mid_saga = {status.value for status in OrderStatus if status.in_flight}

    assert set(re.findall(r"'(\w+)'", IN_FLIGHT)) == mid_saga


def test_the_orders_mid_saga_are_read_from_the_database_at_each_scrape(client):
    text = client.get("/metrics").get_data(as_text=True)
    names = {sample.name: sample.value for family in text_string_to_metric_families(text)
             for sample in family.samples}

    assert names["veloz_state_scrape_ok"] == 1
    assert {query.name for query in telemetry.STATE_QUERIES} <= set(names)
