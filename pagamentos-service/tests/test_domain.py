import pytest

from pagamentos.domain import (
    DeclineReason,
    PaymentMethod,
    PaymentNotRefundable,
    PaymentStatus,
    accepts_card,
    card_last4,
    charge_outcome,
    processor_fails,
    refunded_status,
)


@pytest.mark.parametrize(("card", "status", "reason"), [
    ("4000000000000002", PaymentStatus.DECLINED, DeclineReason.CARD_DECLINED),
    ("4000000000009995", PaymentStatus.DECLINED, DeclineReason.INSUFFICIENT_FUNDS),
    ("4242424242424242", PaymentStatus.APPROVED, None),
])
def test_test_cards_decide_whatever_the_decline_rate(card, status, reason):
    for rate, draw in [(0.0, 0.5), (1.0, 0.0)]:
        outcome = charge_outcome(card, rate, draw)
        assert (outcome.status, outcome.decline_reason) == (status, reason)


def test_a_draw_below_the_decline_rate_is_a_risk_decline():
    outcome = charge_outcome("5555555555554444", decline_rate=0.3, draw=0.29)
    assert outcome.status == PaymentStatus.DECLINED
    assert outcome.decline_reason == DeclineReason.RISK_DECLINED


def test_a_draw_at_or_above_the_decline_rate_approves():
    assert charge_outcome(None, decline_rate=0.3, draw=0.3).approved


def test_decline_rate_one_declines_every_draw_and_zero_declines_none():
    assert not charge_outcome(None, 1.0, 0.999999).approved
    assert charge_outcome(None, 0.0, 0.0).approved


def test_only_the_last_four_digits_of_a_card_are_kept():
    assert card_last4("4242424242424242") == "4242"
    assert card_last4(None) is None


def test_only_card_methods_accept_a_card_number():
    assert accepts_card(PaymentMethod.CREDIT_CARD)
    assert accepts_card(PaymentMethod.DEBIT_CARD)
    assert not accepts_card(PaymentMethod.PIX)
    assert not accepts_card(PaymentMethod.BOLETO)


def test_processor_fails_only_when_the_draw_is_below_the_failure_rate():
    assert processor_fails(1.0, 0.999999)
    assert not processor_fails(0.0, 0.0)


def test_approved_and_refunded_payments_refund_to_refunded():
    assert refunded_status(PaymentStatus.APPROVED) == PaymentStatus.REFUNDED
    assert refunded_status(PaymentStatus.REFUNDED) == PaymentStatus.REFUNDED


def test_a_declined_payment_cannot_be_refunded():
    with pytest.raises(PaymentNotRefundable) as raised:
        refunded_status("declined")
    assert raised.value.status == 409
