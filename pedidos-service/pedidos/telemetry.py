"""pedidos' own metrics: orders settled and their value, the saga's steps, compensations,
recoveries, the reconciliation of the two books, and the orders mid-saga read from pedidos_db
at each scrape.

Statuses come from OrderStatus, the reasons of a rejection from the refusals estoque may
answer (clients.RESERVATION_REFUSALS); the other reason codes, steps, triggers and actions are
the words saga.py and services.py record, listed here once. A value outside its set is counted
as "other" and logged (veloz.telemetry.metrics.bounded), never as itself;
tests/test_telemetry.py keeps the sets equal to the enums and contracts they mirror.
"""

import time
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal

from prometheus_client import Counter, Gauge, Histogram

from pedidos.clients import RESERVATION_REFUSALS
from pedidos.domain import OrderStatus
from pedidos.models import IN_FLIGHT
from veloz.telemetry.metrics import StateQuery, bounded

# --- orders and the purchase saga --------------------------------------------------------
ORDER_STATUSES = tuple(status.value for status in OrderStatus if not status.in_flight)
# pagamentos' decline_reason values, as its API answers them (pedidos never imports
# pagamentos; tests/monitoring/test_metrics_module.py compares them with its DeclineReason).
PAGAMENTOS_DECLINE_REASONS = frozenset({"card_declined", "insufficient_funds", "risk_declined"})
# Why an order ended in each final status, in a word (the `code` OrderStore.advance is given).
SETTLE_REASONS: dict[str, frozenset[str]] = {
    OrderStatus.PAID: frozenset({"approved", "recovered"}),
    OrderStatus.REJECTED: frozenset(refusal.slug.replace("-", "_")  # as the saga words it
                                    for refusal in RESERVATION_REFUSALS),
    OrderStatus.PAYMENT_DECLINED: PAGAMENTOS_DECLINE_REASONS,
    OrderStatus.FAILED: frozenset({
        "estoque_unavailable", "pagamentos_unavailable", "reservation_expired",
        "payment_mismatch", "order_closed", "unpriced_items", "recovered_before_reservation",
        "recovered_no_payment", "recovered_payment_mismatch", "recovered_no_reservation",
        "recovered_reservation_expired"}),
    OrderStatus.CANCELLED: frozenset({"requested"}),
}
SAGA_STEPS = frozenset({"reserve", "charge", "commit", "compensate"})
COMPENSATION_TRIGGERS = frozenset({"payment_declined", "saga_failed", "cancellation",
                                   "recovery"})
COMPENSATION_OUTCOMES = frozenset({"completed", "incomplete"})
RECOVERY_ACTIONS = frozenset({"committed", "failed", "compensation_finished", "postponed"})
ORDER_VALUE_BUCKETS_BRL = (10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 25000)
SAGA_STEP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

ORDERS_SETTLED = Counter(
    "pedidos_orders_settled_total", "Orders that reached a final status, by status and reason",
    ["status", "reason"])
ORDER_VALUE = Histogram(
    "pedidos_order_value_brl", "Total of each settled order that had one, in BRL, by status "
    "(status=paid is revenue)", ["status"], buckets=ORDER_VALUE_BUCKETS_BRL)
SAGA_STEP_LATENCY = Histogram(
    "pedidos_saga_step_duration_seconds", "Duration of one saga step (one participant call)",
    ["step"], buckets=SAGA_STEP_BUCKETS)
COMPENSATIONS = Counter(
    "pedidos_compensations_total",
    "Compensations run (refund and stock return), by what triggered them and how they ended",
    ["trigger", "outcome"])
RECOVERIES = Counter(
    "pedidos_recoveries_total", "Orders the recovery worker handled, by what it did",
    ["action"])


def record_order_settled(status: str, reason: str, total: Decimal | None = None) -> None:
    """An order reached a final status; `reason` is one of SETTLE_REASONS[status] and `total`
    its value in BRL once estoque priced it (None before that)."""
    status = bounded(status, ORDER_STATUSES, label="status")
    ORDERS_SETTLED.labels(status, bounded(reason, SETTLE_REASONS.get(status, ()),
                                          label="reason")).inc()
    if total is not None:
        ORDER_VALUE.labels(status).observe(float(total))


@contextmanager
def observe_saga_step(step: str) -> Iterator[None]:
    """Time one saga step, whether it succeeds or raises."""
    started = time.perf_counter()
    try:
        yield
    finally:
        SAGA_STEP_LATENCY.labels(bounded(step, SAGA_STEPS, label="step")).observe(
            time.perf_counter() - started)


def record_compensation(trigger: str, completed: bool) -> None:
    COMPENSATIONS.labels(bounded(trigger, COMPENSATION_TRIGGERS, label="trigger"),
                         "completed" if completed else "incomplete").inc()


def record_recovery(action: str) -> None:
    RECOVERIES.labels(bounded(action, RECOVERY_ACTIONS, label="action")).inc()


# --- reconciliation of pedidos' orders with pagamentos' payments (reconciliation.py) --------
# The fields of reconciliation.Findings (which imports this module, so they are named here).
DISAGREEMENT_KINDS = ("paid_without_payment", "payment_without_paid_order")
BOOKS_DISAGREEMENTS = Gauge(
    "pedidos_books_disagreements",
    "Orders and payments on which the two books disagree past the grace period, by kind, as "
    "the last reconciliation found them", ["kind"], multiprocess_mode="livemax")
RECONCILIATION_LAST_SUCCESS = Gauge(
    "pedidos_reconciliation_last_success_timestamp_seconds",
    "When a reconciliation last compared both books", multiprocess_mode="max")


def record_reconciliation(counts: dict[str, int]) -> None:
    """The mismatches one reconciliation found, by kind (every kind set, 0 when none)."""
    for kind in DISAGREEMENT_KINDS:
        BOOKS_DISAGREEMENTS.labels(kind).set(counts.get(kind, 0))
    RECONCILIATION_LAST_SUCCESS.set(time.time())


# --- state read from pedidos_db at each scrape (veloz.telemetry.metrics) -------------------
def _mid_saga(select: str) -> str:
    """`select` over the orders mid-saga (models.IN_FLIGHT: OrderStatus.in_flight in SQL)."""
    return f"SELECT {select} FROM orders WHERE {IN_FLIGHT}"  # noqa: S608 - no outside input


STATE_QUERIES = (
    StateQuery("pedidos_orders_in_flight", "Orders mid-saga (pending or stock_reserved)",
               _mid_saga("count(*)")),
    StateQuery("pedidos_orders_oldest_in_flight_age_seconds",
               "Age of the oldest order still mid-saga (0 when none is)",
               _mid_saga("coalesce(extract(epoch FROM now() - min(created_at)), 0)")),
    StateQuery("pedidos_orders_compensation_pending",
               "Failed orders whose refund or stock return is still unconfirmed",
               "SELECT count(*) FROM orders WHERE compensation_pending"),
)
