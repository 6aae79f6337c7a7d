"""The metrics in one process (veloz.telemetry.metrics and the services' telemetry modules):
bounded labels, timing, the gateway's route label, and label sets that agree across services."""

from decimal import Decimal

import pytest
from flask import Flask, request
from prometheus_client import REGISTRY

from gateway.proxy import proxy_blueprint, route_template
from pagamentos import telemetry as pagamentos_telemetry
from pagamentos.domain import DeclineReason
from pedidos import telemetry as pedidos_telemetry
from pedidos.domain import OrderStatus
from veloz.telemetry import metrics


def value(name: str, **labels) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_an_unknown_label_value_is_counted_as_other_never_as_itself():
    before = value("pedidos_orders_settled_total", status="paid", reason="other")

    pedidos_telemetry.record_order_settled("paid", "order 42 of customer joao@example.com")

    assert value("pedidos_orders_settled_total", status="paid",
                 reason="other") == before + 1
    assert value("pedidos_orders_settled_total", status="paid",
                 reason="order 42 of customer joao@example.com") == 0


def test_a_settled_order_with_a_total_is_observed_as_its_value_in_brl():
    before = value("pedidos_order_value_brl_sum", status="paid")

    pedidos_telemetry.record_order_settled("paid", "approved", total=Decimal("119.80"))

    assert value("pedidos_order_value_brl_sum", status="paid") == pytest.approx(before + 119.8)


def test_a_saga_step_that_raises_is_still_timed():
    before = value("pedidos_saga_step_duration_seconds_count", step="charge")

    with pytest.raises(TimeoutError), pedidos_telemetry.observe_saga_step("charge"):
        raise TimeoutError

    assert value("pedidos_saga_step_duration_seconds_count", step="charge") == before + 1


def test_payment_labels_stay_within_their_sets():
    pagamentos_telemetry.record_payment("declined", "stolen card 4000000000000002", "crypto")

    assert value("pagamentos_payments_total", status="declined", decline_reason="other",
                 method="other") >= 1


def test_a_worker_batch_that_fails_counts_as_a_failure_and_not_as_a_batch():
    batches = value("veloz_worker_batches_total", worker="test-worker")
    failures = value("veloz_worker_failures_total", worker="test-worker")
    items = value("veloz_worker_items_total", worker="test-worker")

    with pytest.raises(RuntimeError), metrics.observe_worker_batch("test-worker"):
        raise RuntimeError

    with metrics.observe_worker_batch("test-worker") as done:
        done(3)

    assert value("veloz_worker_failures_total", worker="test-worker") == failures + 1
    assert value("veloz_worker_batches_total", worker="test-worker") == batches + 1
    assert value("veloz_worker_items_total", worker="test-worker") == items + 3


@pytest.mark.parametrize(("path", "route"), [
    ("/orders", "/orders"),
    ("/orders/17", "/orders/<id>"),
    ("/orders/17/cancel", "/orders/<id>/cancel"),
    ("/items/3/restock", "/items/<id>/restock"),
    ("/items/anything-a-client-sends", "/items/<other>"),
    ("/payments/1/2/3/4/5", "/payments/<other>"),
])
def test_the_gateway_names_proxied_routes_by_template_never_by_raw_path(path, route):
    app = Flask(__name__)
    app.register_blueprint(proxy_blueprint())

    with app.test_request_context(path, method="POST"):
        assert route_template(request) == route


def test_the_process_collector_reports_this_process_cpu_and_memory():
    collector = metrics.ProcessGroupCollector("test", metrics.serving_root_pid)
    families = {family.name: family.samples[0].value for family in collector.collect()}

    assert families["veloz_process_cpu_seconds"] > 0
    assert families["veloz_process_resident_memory_bytes"] > 10_000_000
    assert families["veloz_processes"] >= 1


def test_pedidos_knows_every_decline_reason_pagamentos_answers():
    """pedidos cannot import pagamentos, so it lists the reasons itself; a reason pagamentos
    adds must be added there too, or its declined orders would be counted as `other`."""
    declined = pedidos_telemetry.SETTLE_REASONS[OrderStatus.PAYMENT_DECLINED]

    assert declined == {reason.value for reason in DeclineReason}
