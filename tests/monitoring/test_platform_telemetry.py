"""The platform as real server processes, scraped every second by a real Prometheus that
loads the project's rule files, after real traffic: paid, declined, rejected and cancelled
orders, refusals by the gateway, and an order left mid-saga for the recovery worker.

Tests marked `business_metrics` need the calls of the services' telemetry modules wired into
their business code (docs/OBSERVABILITY.md lists the call sites); run them alone with
`pytest tests/monitoring -m business_metrics`.
"""

import json
import re
import shutil
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from monitoring_support import (
    PROMQL_DASHBOARDS,
    alerts,
    metric_names,
    panel_queries,
    recording_rules,
    with_variables,
)
from prometheus_client.mmap_dict import MmapedDict
from sqlalchemy import create_engine, text

from estoque import telemetry as estoque_telemetry
from pagamentos import telemetry as pagamentos_telemetry
from pedidos import telemetry as pedidos_telemetry
from veloz.data.db import sqlalchemy_url
from veloz.dev.devstack import Platform, free_ports, free_service_ports, start_prometheus

pytestmark = pytest.mark.e2e
SECRET = "monitoring-" + "m" * 40
APPROVING, DECLINING = "4242424242424242", "4000000000000002"
PLATFORM_ENV = {
    "WEB_CONCURRENCY": "2", "GUNICORN_THREADS": "4", "PAYMENT_DECLINE_RATE": "0",
    "SWEEP_INTERVAL_SECONDS": "0.5", "JWT_SECRET": SECRET, "RATE_LIMIT_DEFAULT": "20/minute",
    "RECOVERY_GRACE_SECONDS": "2", "RECOVERY_INTERVAL_SECONDS": "0.5",
}
# Counters and histograms the services' business code records (not the scrape-time state).
WIRED_IN_SERVICES = {
    metric._name for metric in (
        pedidos_telemetry.ORDERS_SETTLED, pedidos_telemetry.ORDER_VALUE,
        pedidos_telemetry.SAGA_STEP_LATENCY, pedidos_telemetry.COMPENSATIONS,
        pedidos_telemetry.RECOVERIES, pagamentos_telemetry.PAYMENTS,
        pagamentos_telemetry.REFUNDS, estoque_telemetry.RESERVATIONS)}
# Panels whose queries only need what this repository's shared code and gateway emit.
BUSINESS_STATE_PANELS = {"Orders mid-saga", "Oldest order mid-saga", "Compensations pending",
                         "Units held", "Items low on stock", "Low-stock threshold"}


# --- the platform, Prometheus and the traffic ---------------------------------------------------
@pytest.fixture(scope="module")
def watched(postgres_server_url, tmp_path_factory):
    if shutil.which("prometheus") is None:
        pytest.skip("prometheus is not installed (make test-tools installs it)")
    run_dir = tmp_path_factory.mktemp("watched")
    platform = Platform(server_url=postgres_server_url,
                        ports=free_service_ports(), env=PLATFORM_ENV,
                        database_suffix="_mon", log_dir=run_dir / "logs", run_dir=run_dir)
    platform.migrate(fresh=True)
    platform.clear_metrics()
    taken = {*platform.ports.values(), *platform.metrics_ports.values()}
    port, prometheus = free_ports(1, avoid=taken)[0], None
    try:  # a service that fails to start must not leave the others running
        platform.start()
        prometheus = start_prometheus(platform, port=port, data_dir=run_dir / "prometheus",
                                      interval="1s")
        yield platform, f"http://127.0.0.1:{port}"
    finally:
        if prometheus is not None:
            prometheus.terminate()
            prometheus.wait(15)
        platform.stop()


def token(role: str, subject: str) -> dict:
    from gateway.auth import TokenAuthority
    from gateway.config import JwtSettings

    minted = TokenAuthority(JwtSettings(jwt_secret=SECRET)).mint(subject, [role])
    return {"Authorization": f"Bearer {minted}"}


@pytest.fixture(scope="module")
def traffic(watched):
    """Two waves of every kind of order and refusal, the second once Prometheus holds the
    first (a series' first sample has no rate), and one order left mid-saga."""
    platform, prometheus = watched
    gateway = platform.url("api-gateway")
    admin, buyer = token("admin", "ops"), token("customer", "ana")
    items = (_post(gateway, "/items", admin, {"name": "Camiseta", "quantity": 50, "price": 59.9}),
             _post(gateway, "/items", admin, {"name": "Última", "quantity": 2, "price": 10}))
    sent = {"request_id": f"follow-{uuid.uuid4()}", "token": buyer["Authorization"][7:],
            "cards": [APPROVING, DECLINING], "orders_through_gateway": 8}
    _wave(gateway, buyer, items, sent["request_id"])
    # Every counter the first wave moved must be in Prometheus before the second moves it
    # again: a series whose first sample already holds both waves has a rate of 0, and a
    # ratio of two such rates is no data.
    first_wave = ['gateway_requests_rejected_total{reason="rate_limited"}',
                  'pagamentos_payments_total{status="approved"}', "pagamentos_refunds_total",
                  'pedidos_orders_settled_total{status="paid"}',
                  'estoque_reservations_total{outcome="granted"}']
    assert poll(lambda: all(query(prometheus, series) for series in first_wave), timeout=30)
    _wave(gateway, buyer, items, None)
    _order_left_mid_saga(platform, items[0]["id"])
    return sent


def _wave(gateway: str, buyer: dict, items: tuple[dict, dict], request_id: str | None):
    item, scarce = items
    paid = _order(gateway, buyer, item, APPROVING, request_id=request_id)
    assert paid.status_code == 201, paid.text
    assert _order(gateway, buyer, item, DECLINING).status_code == 402
    assert _order(gateway, buyer, scarce, APPROVING, quantity=3).status_code == 409
    cancelled = _order(gateway, buyer, item, APPROVING).json()["order"]["id"]
    assert requests.post(f"{gateway}/orders/{cancelled}/cancel", headers=buyer,
                         timeout=30).status_code == 200
    assert requests.get(f"{gateway}/orders/{cancelled}", headers=buyer, timeout=10).ok
    _refusals(gateway, buyer)


def _post(gateway: str, path: str, headers: dict, body: dict) -> dict:
    response = requests.post(f"{gateway}{path}", json=body, headers=headers, timeout=10)
    assert response.status_code == 201, response.text
    return response.json()


def _order(gateway, headers, item, card, quantity=1, request_id=None) -> requests.Response:
    body = {"customer": "Ana", "items": [{"item_id": item["id"], "quantity": quantity}],
            "payment": {"method": "credit_card", "card_number": card}}
    extra = {"X-Request-ID": request_id} if request_id else {}
    return requests.post(f"{gateway}/orders", json=body, headers={**headers, **extra},
                         timeout=30)


def _refusals(gateway: str, buyer: dict) -> None:
    assert requests.get(f"{gateway}/orders", timeout=10).status_code == 401
    assert requests.get(f"{gateway}/payments", headers=buyer, timeout=10).status_code == 403
    greedy = token("customer", "greedy")  # 20/minute, counted in each gateway worker
    assert poll(lambda: requests.get(f"{gateway}/items", headers=greedy,
                                     timeout=10).status_code == 429, timeout=30, every=0)


def _order_left_mid_saga(platform: Platform, item_id: int) -> None:
    """What a crash right after step 1 leaves: an old `pending` order for recovery."""
    engine = create_engine(sqlalchemy_url(platform.database_urls["pedidos-service"]))
    with engine.begin() as connection:
        order_id = connection.execute(text(
            "INSERT INTO orders (customer, status, currency, created_at, updated_at) "
            "VALUES ('Crash', 'pending', 'BRL', now() - interval '1 hour', "
            "now() - interval '1 hour') RETURNING id")).scalar_one()
        connection.execute(text("INSERT INTO order_items (order_id, item_id, quantity) "
                                "VALUES (:order, :item, 1)"), {"order": order_id, "item": item_id})
    engine.dispose()


# --- Prometheus HTTP API ------------------------------------------------------------------------
def query(prometheus: str, expr: str) -> list:
    answer = requests.get(f"{prometheus}/api/v1/query", params={"query": expr}, timeout=10)
    assert answer.status_code == 200, f"{expr}: {answer.text}"
    return answer.json()["data"]["result"]


def query_range(prometheus: str, expr: str, start: float) -> list:
    answer = requests.get(f"{prometheus}/api/v1/query_range", timeout=10, params={
        "query": expr, "start": start, "end": time.time(), "step": "1s"})
    assert answer.status_code == 200, f"{expr}: {answer.text}"
    return answer.json()["data"]["result"]


def has_data(series: list) -> bool:
    return any(value not in ("NaN", "+Inf", "-Inf") for one in series
               for _at, value in one.get("values", [one.get("value", [0, "NaN"])]))


def poll(condition, timeout: float = 60, every: float = 0.5):
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(every)


@pytest.fixture(scope="module")
def scraped(watched, traffic):
    """Prometheus once it holds the traffic: every target up, the orders counted, the rules
    evaluated over it, and the stale order recovered."""
    platform, prometheus = watched
    started = time.time() - 120
    targets = set(platform.scrape_targets())
    orders = ('sum(flask_http_request_duration_seconds_count{service="api-gateway", '
              'method="POST", route="/orders"})')

    def ready():
        up = {sample["metric"]["job"] for sample in query(prometheus, "up == 1")}
        counted = query(prometheus, orders)
        recorded = query(prometheus, 'service:http_requests:rate5m{service="api-gateway"}')
        recovered = query(prometheus, "max(pedidos_orders_in_flight) == 0")
        return (up == targets and counted and float(counted[0]["value"][1]) >=
                traffic["orders_through_gateway"] and recorded and recovered)

    assert poll(ready, timeout=90), "Prometheus never saw the traffic"
    # Two more evaluations, so rate() over the newest samples covers the traffic.
    time.sleep(2)
    return prometheus, started


# --- RED counts across workers --------------------------------------------------------------------
def test_requests_spread_over_server_workers_are_all_counted(watched, traffic):
    platform, _prometheus = watched
    estoque = platform.url("estoque-service")
    series = ('flask_http_request_duration_seconds_count{method="GET",'
              'route="/items/<int:item_id>",service="estoque-service",status="404"}')
    before = _sample(requests.get(f"{estoque}/metrics", timeout=10).text, series)
    sent = 60

    def ask(_n):  # a connection of its own each time, so the kernel spreads them
        return requests.get(f"{estoque}/items/987654321", timeout=10).status_code

    with ThreadPoolExecutor(max_workers=12) as pool:
        statuses = list(pool.map(ask, range(sent)))
    after = _sample(requests.get(f"{estoque}/metrics", timeout=10).text, series)
    per_worker = _per_worker_counts(platform.run_dir / "metrics" / "estoque-service",
                                    "/items/<int:item_id>", "404")

    assert statuses == [404] * sent
    assert after - before == sent
    assert len([count for count in per_worker.values() if count]) >= 2, per_worker
    assert sum(per_worker.values()) == after


def _sample(exposition: str, series: str) -> float:
    for line in exposition.splitlines():
        if line.startswith(series + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def _per_worker_counts(folder: Path, route: str, status: str) -> dict[str, float]:
    """Requests each worker process recorded in its own file: the sum of its buckets (a
    process stores each bucket's own count; /metrics makes them cumulative)."""
    counts = {}
    for path in folder.glob("histogram_*.db"):
        total = 0.0
        for key, value, _timestamp, _pos in MmapedDict.read_all_values_from_file(str(path)):
            _metric, name, labels, _help = json.loads(key)
            if (name == "flask_http_request_duration_seconds_bucket"
                    and labels.get("route") == route and labels.get("status") == status):
                total += value
        counts[path.stem] = total
    return counts


# --- every expression evaluates; panels have data ----------------------------------------------
def test_prometheus_scrapes_every_service_and_worker(scraped, watched):
    platform, _ = watched
    prometheus, _started = scraped
    up = {sample["metric"]["job"]: sample["value"][1] for sample in query(prometheus, "up")}

    assert up == dict.fromkeys(platform.scrape_targets(), "1")


def test_every_rule_loads_and_evaluates_without_error(scraped):
    prometheus, _started = scraped
    groups = requests.get(f"{prometheus}/api/v1/rules", timeout=10).json()["data"]["groups"]
    loaded = [rule for group in groups for rule in group["rules"]]

    assert len(loaded) == len(recording_rules()) + len(alerts())
    assert [rule["name"] for rule in loaded if rule["health"] != "ok"] == []


def test_every_recording_rule_and_dashboard_expression_evaluates(scraped):
    prometheus, started = scraped
    expressions = [rule["expr"] for rule in recording_rules()] + [
        with_variables(expr) for board in PROMQL_DASHBOARDS for _t, expr in panel_queries(board)]

    for expr in expressions:
        query_range(prometheus, expr, started)  # asserts a 200 answer


def test_every_platform_panel_returns_data(scraped):
    prometheus, started = scraped
    empty = [f"{title}: {expr}" for title, expr in panel_queries("platform")
             if not has_data(query_range(prometheus, with_variables(expr), started))]

    assert empty == []


def test_the_business_state_panels_return_data(scraped):
    prometheus, started = scraped
    empty = [f"{title}: {expr}" for title, expr in panel_queries("business")
             if title in BUSINESS_STATE_PANELS
             and not has_data(query_range(prometheus, with_variables(expr), started))]

    assert empty == []


def test_every_metric_named_in_a_rule_or_dashboard_is_exposed_after_traffic(scraped):
    prometheus, _started = scraped
    missing = [name for name in _named_metrics() - _wired_names()
               if not query(prometheus, f'count({{__name__="{name}"}})')]

    assert missing == []


@pytest.mark.business_metrics
def test_every_business_metric_named_in_a_rule_or_dashboard_is_exposed(scraped):
    prometheus, _started = scraped
    missing = [name for name in _named_metrics() & _wired_names()
               if not query(prometheus, f'count({{__name__="{name}"}})')]

    assert missing == []


@pytest.mark.business_metrics
def test_every_business_panel_returns_data(scraped):
    prometheus, started = scraped
    empty = [f"{title}: {expr}" for title, expr in panel_queries("business")
             if not has_data(query_range(prometheus, with_variables(expr), started))]

    assert empty == []


def _named_metrics() -> set[str]:
    expressions = [rule["expr"] for rule in recording_rules() + alerts()] + [
        expr for board in PROMQL_DASHBOARDS for _title, expr in panel_queries(board)]
    return {name for expr in expressions for name in metric_names(expr) if ":" not in name}


def _wired_names() -> set[str]:
    return {name for name in _named_metrics()
            if re.sub(r"_(total|count|sum|bucket)$", "", name) in WIRED_IN_SERVICES}


# --- logs -----------------------------------------------------------------------------------------
def _log_lines(platform: Platform) -> dict[str, list[dict]]:
    lines = {}
    for path in (platform.log_dir).glob("*.log"):
        lines[path.stem] = [json.loads(line) for line in path.read_text().splitlines()
                            if line.startswith("{")]
    return lines


def test_one_request_id_is_followed_through_gateway_pedidos_estoque_and_pagamentos(
        watched, traffic, scraped):
    platform, _ = watched
    carrying = {name for name, lines in _log_lines(platform).items()
                if any(line.get("request_id") == traffic["request_id"] for line in lines)}

    assert {"api-gateway", "pedidos-service", "estoque-service",
            "pagamentos-service"} <= carrying


def test_access_lines_carry_method_route_status_and_duration(watched, traffic, scraped):
    platform, _ = watched
    gateway = [line for line in _log_lines(platform)["api-gateway"]
               if line.get("request_id") == traffic["request_id"] and line["msg"] == "request"]

    assert len(gateway) == 1
    assert {"ts", "level", "service", "request_id", "method", "route", "status",
            "duration_ms"} <= gateway[0].keys()
    assert (gateway[0]["method"], gateway[0]["route"], gateway[0]["status"]) == (
        "POST", "/orders", 201)


def test_no_log_line_carries_a_card_number_or_a_token(watched, traffic, scraped):
    platform, _ = watched
    logs = "".join(path.read_text() for path in platform.log_dir.glob("*.log"))

    assert logs.count('"request_id"') > 50  # the logs are really there
    for secret in [*traffic["cards"], traffic["token"], SECRET]:
        assert secret not in logs
    assert not re.search(r"eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.", logs)
