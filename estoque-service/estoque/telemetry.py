"""estoque's own metrics: what becomes of each stock hold, and the stock state read from its
database at each scrape (units held, items low on stock).

Label values are bounded (veloz.telemetry.metrics.bounded): one the set below does not list
is counted as "other" and logged; tests/test_telemetry.py keeps the set equal to
ReservationStatus.
"""

from prometheus_client import Counter

from estoque.domain import ReservationStatus
from veloz.telemetry.metrics import StateGauge, StateQuery, StateSetting, bounded

# An item with this many units or fewer available is low on stock (LOW_STOCK_THRESHOLD in the
# environment overrides it: EstoqueSettings.low_stock_threshold).
LOW_STOCK_THRESHOLD = 5

# A hold is granted or refused (short stock); a granted one, held, ends as one of the other
# reservation statuses.
RESERVATION_OUTCOMES = frozenset({"granted", "refused"} | {
    status.value for status in ReservationStatus if status is not ReservationStatus.HELD})

RESERVATIONS = Counter(
    "estoque_reservations_total",
    "Stock holds by outcome: granted, refused (short stock), expired, released, committed",
    ["outcome"])


def record_reservation(outcome: str) -> None:
    RESERVATIONS.labels(bounded(outcome, RESERVATION_OUTCOMES, label="outcome")).inc()


def state_gauges(low_stock_threshold: int) -> tuple[StateGauge, ...]:
    """What /metrics reads from estoque_db at each scrape (veloz.telemetry.metrics
    .DatabaseStateCollector)."""
    return (
        StateQuery("estoque_units_held", "Units held by open reservations",
                   "SELECT coalesce(sum(reserved), 0) FROM items WHERE deleted_at IS NULL"),
        StateQuery("estoque_items_low_stock",
                   "Items with estoque_low_stock_threshold or fewer units available",
                   "SELECT count(*) FROM items WHERE deleted_at IS NULL "
                   "AND quantity <= :threshold", {"threshold": low_stock_threshold}),
        StateSetting("estoque_low_stock_threshold",
                     "Units available at or below which an item is low on stock",
                     low_stock_threshold),
    )
