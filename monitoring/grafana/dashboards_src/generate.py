"""Grafana dashboards as code (grafana-foundation-sdk): Platform, Business, SLO and Logs.

`python monitoring/grafana/dashboards_src/generate.py` rewrites monitoring/grafana/dashboards/
*.json; tests/monitoring checks that the committed JSON is what this file generates, and runs
every PromQL query below against a real Prometheus scraping the platform. Metric names come
from libs/veloz/telemetry/metrics.py and each service's telemetry.py; label names of the Logs
queries from monitoring/alloy/config.alloy.
"""

import json
import sys
from collections.abc import Callable
from pathlib import Path

from grafana_foundation_sdk.builders import common as common_builder
from grafana_foundation_sdk.builders import dashboard, logs, loki, prometheus, stat, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.common import (
    BigValueColorMode,
    GraphDrawStyle,
    LegendDisplayMode,
    LogsSortOrder,
    StackingMode,
)
from grafana_foundation_sdk.models.dashboard import (
    DataSourceRef,
    Threshold,
    ThresholdsMode,
    VariableRefresh,
)

OUTPUT = Path(__file__).resolve().parents[1] / "dashboards"
PROMETHEUS = DataSourceRef(type_val="prometheus", uid="prometheus")
LOKI = DataSourceRef(type_val="loki", uid="loki")
RATE = "$__rate_interval"
TAGS = ["pedidos-veloz"]
ORDERS_SLI = 'service="api-gateway", method="POST", route="/orders"'


# --- building blocks --------------------------------------------------------------------------
def promql(expr: str, legend: str = "__auto", ref: str = "A") -> prometheus.Dataquery:
    return (prometheus.Dataquery().expr(expr).legend_format(legend).ref_id(ref)
            .datasource(PROMETHEUS))


def logql(expr: str, ref: str = "A", legend: str = "") -> loki.Dataquery:
    query = loki.Dataquery().expr(expr).ref_id(ref).datasource(LOKI)
    return query.legend_format(legend) if legend else query


def graph(title: str, description: str, unit: str, *queries: prometheus.Dataquery,
          span: int = 12, stacked: bool = False, bars: bool = False) -> timeseries.Panel:
    panel = (timeseries.Panel().title(title).description(description).unit(unit)
             .datasource(PROMETHEUS).span(span).height(8).fill_opacity(10)
             .legend(common_builder.VizLegendOptions().display_mode(LegendDisplayMode.TABLE)
                     .placement("bottom").show_legend(True).calcs(["lastNotNull", "max"])))
    if stacked:
        panel = panel.stacking(common_builder.StackingConfig().mode(StackingMode.NORMAL))
    if bars:
        panel = panel.draw_style(GraphDrawStyle.BARS)
    return _with_targets(panel, queries)


def single(title: str, description: str, unit: str, *queries: prometheus.Dataquery,
           span: int = 6, thresholds: list[tuple[float | None, str]] | None = None,
           ) -> stat.Panel:
    panel = (stat.Panel().title(title).description(description).unit(unit)
             .datasource(PROMETHEUS).span(span).height(5).color_mode(BigValueColorMode.VALUE)
             .reduce_options(common_builder.ReduceDataOptions().calcs(["lastNotNull"])))
    if thresholds:
        steps = [Threshold(value=value, color=color) for value, color in thresholds]
        panel = panel.thresholds(dashboard.ThresholdsConfig().mode(ThresholdsMode.ABSOLUTE)
                                 .steps(steps))
    return _with_targets(panel, queries)


def section(board: dashboard.Dashboard, title: str, *panels) -> dashboard.Dashboard:
    """A row, then its panels below it."""
    board = board.with_row(dashboard.Row(title))
    for panel in panels:
        board = board.with_panel(panel)
    return board


def _with_targets(panel, queries):
    for query in queries:
        panel = panel.with_target(query)
    return panel


def service_variable() -> dashboard.QueryVariable:
    return (dashboard.QueryVariable("service").label("Service").datasource(PROMETHEUS)
            .query("label_values(flask_http_request_duration_seconds_count, service)")
            .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED).multi(True).include_all(True)
            .all_value(".*"))


def new_dashboard(uid: str, title: str, description: str) -> dashboard.Dashboard:
    return (dashboard.Dashboard(title).uid(uid).description(description).tags(TAGS)
            .refresh("30s").time("now-1h", "now").timezone("browser").editable())


def _numbered(board: dashboard.Dashboard) -> dashboard.Dashboard:
    """Stable panel ids (1, 2, ...) so the JSON only changes when a panel does."""
    built = board.build()
    for number, panel in enumerate(built.panels or [], start=1):
        panel.id_val = number
    return board


# --- Platform ---------------------------------------------------------------------------------
def platform() -> dashboard.Dashboard:
    service = 'service=~"$service"'
    board = (new_dashboard("veloz-platform", "Pedidos Veloz / Platform",
                           "Is every service up, fast and error-free, and how loaded is it?")
             .with_variable(service_variable()))
    board = section(board, "RED per service",
        graph("Requests per second", "Requests served, by service (every server worker).",
              "reqps", promql(f"sum by (service) (rate(flask_http_request_duration_seconds_count"
                              f"{{{service}}}[{RATE}]))", "{{service}}"), span=8),
        graph("5xx ratio", "Share of requests answered with a 5xx over 5 minutes.",
              "percentunit", promql(f"service:http_errors:ratio_rate5m{{{service}}}",
                                    "{{service}}"), span=8),
        graph("p95 latency", "95th percentile of request duration over 5 minutes.", "s",
              promql(f"service:http_request_duration_seconds:p95_5m{{{service}}}",
                     "{{service}}"), span=8),
        graph("Requests per second by route", "Each route template, by method and status.",
              "reqps", promql(f"sum by (service, method, route, status) (rate("
                              f"flask_http_request_duration_seconds_count{{{service}}}[{RATE}]))",
                              "{{service}} {{method}} {{route}} {{status}}")),
        graph("p95 latency by route", "95th percentile per route template over 5 minutes.",
              "s", promql(f"service_route:http_request_duration_seconds:p95_5m{{{service}}}",
                          "{{service}} {{method}} {{route}}")),
    )
    board = section(board, "Gateway per backend",
        graph("Backend calls per second", "Calls the gateway proxied to each backend.",
              "reqps", promql(f"sum by (backend) (rate("
                              f"gateway_backend_request_duration_seconds_count[{RATE}]))",
                              "{{backend}}"), span=6),
        graph("Backend p95 latency", "How long the gateway waited for each backend.", "s",
              promql("backend:gateway_backend_request_duration_seconds:p95_5m", "{{backend}}"),
              span=6),
        graph("Backend errors per second",
              "Timeouts, unreachable, circuit open and 5xx answers, by backend.", "reqps",
              promql(f"sum by (backend, kind) (rate(gateway_backend_errors_total[{RATE}]))",
                     "{{backend}} {{kind}}"), span=6),
        graph("Circuit breaker state", "0 closed, 1 half-open, 2 open (worst gateway worker).",
              "none", promql("max by (backend) (gateway_circuit_breaker_state)", "{{backend}}"),
              span=6),
        graph("Gateway refusals per second", "401 unauthorized, 403 forbidden, 429 rate-limited "
              "answered by the gateway itself.", "reqps",
              promql(f"sum by (reason) (rate(gateway_requests_rejected_total[{RATE}]))",
                     "{{reason}}"), span=12, bars=True),
        single("Targets up", "Scrape targets answering (services and workers).", "none",
               promql("sum(up)", "up"), promql("count(up)", "targets", "B"), span=6),
        single("Targets down", "Scrape targets not answering.", "none",
               promql("count(up == 0) or vector(0)", "down"), span=6,
               thresholds=[(None, "green"), (1, "red")]),
    )
    board = section(board, "Saturation",
        graph("Busy request threads", "Requests in flight over what the workers can hold at once "
              "(request threads; at the gateway, connections).",
              "percentunit", promql(f"sum by (service) (veloz_http_requests_in_flight{{{service}}})"
                                    f" / sum by (service) (veloz_http_worker_threads{{{service}}})",
                                    "{{service}}"), span=8),
        graph("CPU", "CPU cores used by each service's processes (master and workers).",
              "none", promql(f"sum by (service) (rate(veloz_process_cpu_seconds_total[{RATE}]))",
                             "{{service}}"), span=8),
        graph("Resident memory", "Memory of each service's processes.", "bytes",
              promql("sum by (service) (veloz_process_resident_memory_bytes)", "{{service}}"),
              span=8),
        graph("PostgreSQL connections", "Connections to each service's database by client "
              "and state (pg_stat_activity, read at scrape time).", "none",
              promql("max by (service, application, state) (veloz_db_connections)",
                     "{{application}} {{state}}"), span=12, stacked=True),
        graph("Background workers", "Seconds since each worker last finished a batch.", "s",
              promql("time() - max by (worker) (veloz_worker_last_success_timestamp_seconds)",
                     "{{worker}}"), span=12),
    )
    return _numbered(board)


# --- Business ---------------------------------------------------------------------------------
def business() -> dashboard.Dashboard:
    board = new_dashboard("veloz-business", "Pedidos Veloz / Business",
                          "How many orders are sold, for how much, and what gets in the way?")
    board = board.with_row(dashboard.Row("Orders and revenue"))
    paid_value = f'rate(pedidos_order_value_brl_sum{{status="paid"}}[{RATE}])'
    for panel in (
        graph("Orders per minute by status", "Orders reaching a final status.", "none",
              promql(f"sum by (status) (rate(pedidos_orders_settled_total[{RATE}])) * 60",
                     "{{status}}"), span=12, stacked=True),
        graph("Revenue per minute", "Value of orders paid, in BRL.", "currencyBRL",
              promql(f"sum({paid_value}) * 60", "revenue"), span=6),
        single("Average paid order", "Mean value of a paid order.", "currencyBRL",
               promql(f"sum({paid_value}) / sum(rate("
                      f'pedidos_order_value_brl_count{{status="paid"}}[{RATE}]))', "average"),
               span=6),
        graph("Payment approval ratio", "Approved charges over all charges decided.",
              "percentunit", promql(
                  f'sum(rate(pagamentos_payments_total{{status="approved"}}[{RATE}])) / '
                  f"sum(rate(pagamentos_payments_total[{RATE}]))", "approved"), span=8),
        graph("Declines per minute by reason", "Declined charges by decline reason.", "none",
              promql(f'sum by (decline_reason) (rate(pagamentos_payments_total{{status='
                     f'"declined"}}[{RATE}])) * 60', "{{decline_reason}}"), span=8, bars=True),
        graph("Refunds per minute", "Payments refunded (cancellations and compensations).",
              "none", promql(f"sum(rate(pagamentos_refunds_total[{RATE}])) * 60", "refunds"),
              span=8),
    ):
        board = board.with_panel(panel)
    board = section(board, "Saga",
        graph("Saga step p95 latency", "Reserve (estoque), charge (pagamentos), commit "
              "(estoque) and compensate, 95th percentile.", "s",
              promql(f"histogram_quantile(0.95, sum by (step, le) (rate("
                     f"pedidos_saga_step_duration_seconds_bucket[{RATE}])))", "{{step}}"),
              span=12),
        graph("Compensations and recoveries per minute", "Compensations by trigger and "
              "outcome; the recovery worker's actions.", "none",
              promql(f"sum by (trigger, outcome) (rate(pedidos_compensations_total[{RATE}]))"
                     " * 60", "compensation {{trigger}} {{outcome}}"),
              promql(f"sum by (action) (rate(pedidos_recoveries_total[{RATE}])) * 60",
                     "recovery {{action}}", "B"), span=12, bars=True),
        single("Orders mid-saga", "Orders pending or stock_reserved right now.", "none",
               promql("max(pedidos_orders_in_flight)", "mid-saga"), span=8),
        single("Oldest order mid-saga", "Age of the oldest order not yet settled.", "s",
               promql("max(pedidos_orders_oldest_in_flight_age_seconds)", "age"), span=8,
               thresholds=[(None, "green"), (60, "orange"), (300, "red")]),
        single("Compensations pending", "Failed orders whose refund or stock return is "
               "unconfirmed.", "none", promql("max(pedidos_orders_compensation_pending)",
                                              "pending"), span=8,
               thresholds=[(None, "green"), (1, "orange")]),
    )
    board = section(board, "Stock",
        graph("Reservations per minute by outcome", "Holds granted, refused (short stock), "
              "expired, released and committed.", "none",
              promql(f"sum by (outcome) (rate(estoque_reservations_total[{RATE}])) * 60",
                     "{{outcome}}"), span=12),
        single("Units held", "Units held by open reservations.", "none",
               promql("max(estoque_units_held)", "held"), span=4),
        single("Items low on stock", "Items at or below the low-stock threshold.", "none",
               promql("max(estoque_items_low_stock)", "items"), span=4,
               thresholds=[(None, "green"), (1, "orange")]),
        single("Low-stock threshold", "Units available at or below which an item is low.",
               "none", promql("max(estoque_low_stock_threshold)", "units"), span=4),
    )
    board = section(board, "Cost", graph(
        "CPU seconds per paid order", "CPU of every service and worker over the orders paid "
        "in the same window: what telemetry and the saga cost per sale.", "s",
        promql(f"sum(rate(veloz_process_cpu_seconds_total[{RATE}])) / "
               f'sum(rate(pedidos_orders_settled_total{{status="paid"}}[{RATE}]))',
               "CPU per paid order"), span=24))
    return _numbered(board)


# --- SLO --------------------------------------------------------------------------------------
def slo() -> dashboard.Dashboard:
    board = new_dashboard("veloz-slo", "Pedidos Veloz / SLO: POST /orders",
                          "Availability 99.5 % and 95 % under 500 ms for POST /orders through "
                          "the gateway, over 30 days: budget left and how fast it burns.")
    budget = [(None, "red"), (0.25, "orange"), (0.5, "green")]
    for panel in (
        single("Availability budget left (30 d)", "1 = untouched, 0 = spent, below 0 = SLO "
               "missed.", "percentunit",
               promql("slo:orders_availability:error_budget_remaining", "left"),
               thresholds=budget),
        single("Latency budget left (30 d)", "Share of the 5 % allowance of slow orders left.",
               "percentunit", promql("slo:orders_latency:error_budget_remaining", "left"),
               thresholds=budget),
        single("Availability (30 d)", "Share of POST /orders answered without a 5xx.",
               "percentunit", promql("1 - slo:orders_availability:error_ratio_rate30d", "SLI"),
               thresholds=[(None, "red"), (0.995, "green")]),
        single("Under 500 ms (30 d)", "Share of POST /orders answered in under 500 ms.",
               "percentunit", promql("1 - slo:orders_latency:slow_ratio_rate30d", "SLI"),
               thresholds=[(None, "red"), (0.95, "green")]),
        graph("Availability burn rate", "Error ratio over the budget (0.5 %); alerts at 14.4 "
              "(1 h and 5 m) and 6 (6 h and 30 m).", "none",
              *[promql(f"slo:orders_availability:error_ratio_rate{window} / 0.005", window, ref)
                for window, ref in (("5m", "A"), ("30m", "B"), ("1h", "C"), ("6h", "D"))]),
        graph("Latency burn rate", "Slow ratio over the budget (5 %); alerts at 14.4 (1 h and "
              "5 m) and 6 (6 h and 30 m).", "none",
              *[promql(f"slo:orders_latency:slow_ratio_rate{window} / 0.05", window, ref)
                for window, ref in (("5m", "A"), ("30m", "B"), ("1h", "C"), ("6h", "D"))]),
        graph("POST /orders by status", "Requests per second at the gateway.", "reqps",
              promql(f"sum by (status) (rate(flask_http_request_duration_seconds_count"
                     f"{{{ORDERS_SLI}}}[{RATE}]))", "{{status}}"), span=24, stacked=True),
    ):
        board = board.with_panel(panel)
    return _numbered(board)


# --- Logs (Loki; labels `service` and `level` from monitoring/alloy/config.alloy) -------------
def logs_dashboard() -> dashboard.Dashboard:
    services = (dashboard.QueryVariable("service").label("Service").datasource(LOKI)
                .query("label_values(service)").refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
                .multi(True).include_all(True).all_value(".+"))
    request_id = dashboard.TextBoxVariable("request_id").label("Request id")
    board = (new_dashboard("veloz-logs", "Pedidos Veloz / Logs",
                           "JSON logs of every process in Loki: by service, errors only, and "
                           "one request followed through every service.")
             .with_variable(services).with_variable(request_id))
    selector = '{service=~"$service"}'
    volume = (timeseries.Panel().title("Log lines per service").datasource(LOKI).span(24)
              .height(6).draw_style(GraphDrawStyle.BARS).unit("none")
              .stacking(common_builder.StackingConfig().mode(StackingMode.NORMAL))
              .with_target(logql(f"sum by (service, level) (count_over_time({selector} "
                                 "[$__auto]))", legend="{{service}} {{level}}")))

    def lines(title: str, description: str, expr: str) -> logs.Panel:
        return (logs.Panel().title(title).description(description).datasource(LOKI)
                .span(24).height(10).show_time(True).wrap_log_message(True)
                .enable_log_details(True).sort_order(LogsSortOrder.DESCENDING)
                .with_target(logql(expr)))

    for panel in (
        volume,
        lines("Errors only", "Lines at level ERROR or CRITICAL.",
              '{service=~"$service", level=~"ERROR|CRITICAL"}'),
        lines("One request through every service", "Every line carrying the request id "
              "typed above: gateway, pedidos, estoque and pagamentos.",
              '{service=~".+"} |= "$request_id" | json | request_id = "$request_id"'),
        lines("Slow requests", "Access lines slower than 500 ms.",
              f'{selector} | json | logger = "veloz.access" | duration_ms > 500'),
        lines("All lines", "Every line of the selected services.", selector),
    ):
        board = board.with_panel(panel)
    return _numbered(board)


DASHBOARDS: dict[str, Callable[[], dashboard.Dashboard]] = {
    "platform": platform, "business": business, "slo": slo, "logs": logs_dashboard}


def render(name: str) -> str:
    return json.dumps(DASHBOARDS[name]().build(), cls=JSONEncoder, indent=2,
                      sort_keys=True) + "\n"


def main() -> int:
    OUTPUT.mkdir(exist_ok=True)
    for name in DASHBOARDS:
        (OUTPUT / f"{name}.json").write_text(render(name))
        print(f"wrote {OUTPUT / name}.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
