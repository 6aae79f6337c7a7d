"""estoque's metrics: every reservation status has its outcome label, and /metrics reads the
stock state from estoque_db at each scrape."""

from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from estoque import telemetry
from estoque.config import EstoqueSettings
from estoque.domain import ReservationStatus


def scraped(client, name: str) -> float:
    families = text_string_to_metric_families(client.get("/metrics").get_data(as_text=True))
    return next(sample.value for family in families for sample in family.samples
                if sample.name == name)


def test_every_way_a_reservation_ends_is_an_outcome_of_its_own():
    """A reservation is granted (then `held`) or refused; every other status is how a held one ends.
    A status added to ReservationStatus becomes an outcome with it."""
    ended = {status.value for status in ReservationStatus} - {ReservationStatus.HELD}

    assert {"granted", "refused"} | ended == telemetry.RESERVATION_OUTCOMES


def test_each_outcome_is_counted_under_its_own_label_and_anything_else_as_other():
    for outcome in [*telemetry.RESERVATION_OUTCOMES, "reservation 17 of order 3"]:
        label = outcome if outcome in telemetry.RESERVATION_OUTCOMES else "other"
        before = REGISTRY.get_sample_value("estoque_reservations_total",
                                           {"outcome": label}) or 0

        telemetry.record_reservation(outcome)

        assert REGISTRY.get_sample_value("estoque_reservations_total",
                                         {"outcome": label}) == before + 1


def test_the_low_stock_threshold_is_defined_once():
    assert EstoqueSettings.model_fields["low_stock_threshold"].default == (
        telemetry.LOW_STOCK_THRESHOLD)


def test_an_item_at_the_threshold_is_low_on_stock_at_the_next_scrape(client, make_item,
                                                                     settings):
    low = scraped(client, "estoque_items_low_stock")

    make_item(quantity=settings.low_stock_threshold)

    assert scraped(client, "estoque_items_low_stock") == low + 1
    assert scraped(client, "estoque_low_stock_threshold") == settings.low_stock_threshold
    assert scraped(client, "veloz_state_scrape_ok") == 1
