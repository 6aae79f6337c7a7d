"""The dashboards: generated from code, reading only what the platform emits and the log
shipper labels."""

import re

import pytest
import yaml
from monitoring_support import (
    DASHBOARDS,
    MONITORING,
    PROMQL_DASHBOARDS,
    dashboard,
    load_generator,
    metric_names,
    panel_queries,
    panels,
    recording_rules,
)

from veloz.telemetry import metrics


def test_committed_dashboards_are_exactly_what_the_generator_writes():
    generator = load_generator()

    assert sorted(path.stem for path in DASHBOARDS) == sorted(generator.DASHBOARDS)
    for path in DASHBOARDS:
        assert path.read_text() == generator.render(path.stem), (
            f"{path.name} differs: run python monitoring/grafana/dashboards_src/generate.py")


def test_the_four_dashboards_answer_their_questions():
    titles = {name: {panel["title"] for panel in panels(dashboard(name))}
              for name in ("platform", "business", "slo", "logs")}

    assert {"Requests per second", "5xx ratio", "p95 latency", "Backend p95 latency",
            "Circuit breaker state", "Gateway refusals per second", "CPU",
            "PostgreSQL connections"} <= titles["platform"]
    assert {"Orders per minute by status", "Revenue per minute", "Payment approval ratio",
            "Saga step p95 latency", "Compensations and recoveries per minute", "Units held",
            "Items low on stock"} <= titles["business"]
    assert {"Availability budget left (30 d)", "Availability burn rate",
            "Latency burn rate"} <= titles["slo"]
    assert {"Errors only", "One request through every service"} <= titles["logs"]


def test_every_panel_reads_a_provisioned_datasource():
    provisioned = yaml.safe_load((MONITORING / "grafana" / "provisioning" / "datasources" /
                                  "datasources.yml").read_text())["datasources"]
    uids = {source["uid"]: source["type"] for source in provisioned}

    for path in DASHBOARDS:
        for panel in panels(dashboard(path.stem)):
            for target in panel["targets"]:
                assert uids[target["datasource"]["uid"]] == target["datasource"]["type"]


def test_dashboards_read_recorded_rules_that_exist():
    recorded = {rule["record"] for rule in recording_rules()}
    used = {name for board in PROMQL_DASHBOARDS for _title, expr in panel_queries(board)
            for name in metric_names(expr) if ":" in name}

    assert used <= recorded, used - recorded


# Where metric names are declared: the shared mechanics and each service's own telemetry.
TELEMETRY_MODULES = ("libs/veloz/telemetry/metrics.py", "api-gateway/gateway/telemetry.py",
                     "estoque-service/estoque/telemetry.py",
                     "pagamentos-service/pagamentos/telemetry.py",
                     "pedidos-service/pedidos/telemetry.py")


def test_every_metric_a_dashboard_names_is_declared_in_a_telemetry_module():
    """A typo in a dashboard is caught here; tests/monitoring/test_platform_telemetry.py
    shows each name is also really emitted after traffic."""
    source = "\n".join((MONITORING.parent / path).read_text() for path in TELEMETRY_MODULES)
    used = {name for board in PROMQL_DASHBOARDS for _title, expr in panel_queries(board)
            for name in metric_names(expr) if ":" not in name}
    exporter = {"flask_http_request_duration_seconds_count",
                "flask_http_request_duration_seconds_bucket", "up"}

    undeclared = {name for name in used - exporter
                  if re.sub(r"_(total|count|sum|bucket)$", "", name) not in source}
    assert not undeclared


def test_logs_dashboard_queries_only_the_labels_alloy_sets():
    alloy = (MONITORING / "alloy" / "config.alloy").read_text()
    labels = set(re.findall(r'target_label\s*=\s*"([a-z_]+)"', alloy))
    for block in re.findall(r"stage\.labels\s*\{\s*values\s*=\s*\{([^}]*)\}", alloy):
        labels |= set(re.findall(r"([a-z_]+)\s*=", block))
    queries = [target["expr"] for panel in panels(dashboard("logs"))
               for target in panel["targets"]]
    used = {name for query in queries for selector in re.findall(r"\{([^}]*)\}", query)
            for name in re.findall(r"([a-z_]+)\s*(?:=~|!=|!~|=)", selector)}

    assert labels == {"service", "level"}
    assert used == labels


@pytest.mark.parametrize("name", ["platform", "business", "slo"])
def test_no_dashboard_groups_by_an_unbounded_label(name):
    unbounded = {"request_id", "order_id", "customer", "customer_id", "item_id", "path"}
    for _title, expr in panel_queries(name):
        grouped = re.findall(r"\bby\s*\(([^)]*)\)", expr)
        assert not unbounded & {label.strip() for group in grouped for label in
                                group.split(",")}


def test_metrics_module_names_the_buckets_the_slo_reads():
    assert metrics.SLO_LATENCY_SECONDS in metrics.HTTP_BUCKETS
    assert 'le="0.5"' in (MONITORING / "prometheus" / "rules" / "slo.yml").read_text()


def test_log_links_find_the_ids_in_a_line_the_services_write(monkeypatch):
    """Grafana's derived fields must match the formatter's own output, spacing and all."""
    import logging

    from veloz.telemetry import logs

    trace = "0af7651916cd43dd8448eb211c80319c"
    monkeypatch.setattr(logs, "current_trace_id", lambda: trace)
    token = logs.request_id_var.set("req-42.a:b")
    try:
        line = logs.JsonFormatter("estoque-service").format(
            logging.makeLogRecord({"name": "veloz.access", "msg": "request", "status": 201}))
    finally:
        logs.request_id_var.reset(token)
    provisioned = yaml.safe_load((MONITORING / "grafana" / "provisioning" / "datasources" /
                                  "datasources.yml").read_text())["datasources"]
    loki = next(source for source in provisioned if source["type"] == "loki")
    found = {field["name"]: re.search(field["matcherRegex"], line).group(1)
             for field in loki["jsonData"]["derivedFields"]}

    assert found == {"request_id": "req-42.a:b", "trace_id": trace}
