"""pagamentos' own metrics: charges decided and payments refunded.

Label values come from pagamentos' enums, so a new decline reason or method is a label of its
own the moment it exists. A value outside them (a bug, or free text) is counted as "other"
and logged (veloz.telemetry.metrics.bounded), never as itself.
"""

from prometheus_client import Counter

from pagamentos.domain import DeclineReason, PaymentMethod, PaymentStatus
from veloz.telemetry.metrics import bounded

# What a charge is decided as; `refunded` comes later, to an approved one, and is REFUNDS.
PAYMENT_STATUSES = frozenset(status.value for status in PaymentStatus
                             if status is not PaymentStatus.REFUNDED)
DECLINE_REASONS = frozenset(reason.value for reason in DeclineReason)
NO_DECLINE_REASON = "none"  # the decline_reason of an approved charge
PAYMENT_METHODS = frozenset(method.value for method in PaymentMethod)

PAYMENTS = Counter(
    "pagamentos_payments_total", "Charges decided, by status, decline reason and method",
    ["status", "decline_reason", "method"])
REFUNDS = Counter("pagamentos_refunds_total", "Payments refunded (first refund only), by method",
                  ["method"])


def record_payment(status: str, decline_reason: str | None, method: str) -> None:
    reason = (NO_DECLINE_REASON if decline_reason is None
              else bounded(decline_reason, DECLINE_REASONS, label="decline_reason"))
    PAYMENTS.labels(bounded(status, PAYMENT_STATUSES, label="status"), reason,
                    _method(method)).inc()


def record_refund(method: str) -> None:
    REFUNDS.labels(_method(method)).inc()


def _method(method: str) -> str:
    return bounded(method, PAYMENT_METHODS, label="method")
