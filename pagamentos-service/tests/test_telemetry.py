"""pagamentos' label sets are its enums: a decline reason, method or status added to them is
counted under its own label from then on, never as `other`."""

import pytest
from prometheus_client import REGISTRY

from pagamentos import telemetry
from pagamentos.domain import DeclineReason, PaymentMethod, PaymentStatus


def payments(status: str, decline_reason: str, method: str) -> float:
    return REGISTRY.get_sample_value("pagamentos_payments_total", {
        "status": status, "decline_reason": decline_reason, "method": method}) or 0


def test_the_label_sets_are_the_enums():
    assert {reason.value for reason in DeclineReason} == telemetry.DECLINE_REASONS
    assert {method.value for method in PaymentMethod} == telemetry.PAYMENT_METHODS
    # A charge is decided approved or declined; a refund is counted by REFUNDS instead.
    assert {status.value for status in PaymentStatus} - {
        PaymentStatus.REFUNDED} == telemetry.PAYMENT_STATUSES


@pytest.mark.parametrize("reason", list(DeclineReason))
def test_every_decline_reason_is_counted_as_itself(reason):
    before = payments("declined", reason.value, "pix")

    telemetry.record_payment(PaymentStatus.DECLINED, reason, PaymentMethod.PIX)

    assert payments("declined", reason.value, "pix") == before + 1


@pytest.mark.parametrize("method", list(PaymentMethod))
def test_every_method_is_counted_as_itself(method):
    before = payments("approved", "none", method.value)

    telemetry.record_payment(PaymentStatus.APPROVED, None, method)

    assert payments("approved", "none", method.value) == before + 1


def test_a_value_outside_the_enums_is_counted_as_other():
    before = payments("declined", "other", "other")

    telemetry.record_payment("declined", "the acquirer said 'no, card 4000…0002'", "crypto")

    assert payments("declined", "other", "other") == before + 1
