"""The Prometheus and Alertmanager configuration, checked with the field's own tools."""

import json
import re
import shutil
import subprocess

import pytest
import yaml
from monitoring_support import (
    MONITORING,
    RULE_TESTS,
    RULES,
    alerts,
    metric_names,
    recording_rules,
)

from veloz.dev.devstack import SERVICES, prometheus_config

PROMETHEUS_DIR = MONITORING / "prometheus"
COMPOSE_TARGETS = {
    "api-gateway": "api-gateway:9102", "pedidos-service": "pedidos-service:5001",
    "pagamentos-service": "pagamentos-service:5002", "estoque-service": "estoque-service:5003",
    "estoque-sweeper": "estoque-sweeper:9103", "pedidos-recovery": "pedidos-recovery:9101",
    "alertmanager": "alertmanager:9093",
}


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed (make test-tools installs it)")
    return path


def run(*command: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=cwd,
                          check=False)


def test_promtool_accepts_the_compose_config_and_its_rule_files():
    result = run(tool("promtool"), "check", "config", "prometheus.yml", cwd=PROMETHEUS_DIR)

    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(RULES)} rule files found" in result.stdout


def test_promtool_accepts_every_rule_file():
    result = run(tool("promtool"), "check", "rules", *map(str, RULES))

    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_fires_and_stays_quiet_as_its_unit_tests_say():
    result = run(tool("promtool"), "test", "rules", *map(str, RULE_TESTS))

    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == len(RULE_TESTS)


def test_amtool_accepts_the_alertmanager_config():
    result = run(tool("amtool"), "check-config", str(MONITORING / "alertmanager" /
                                                     "alertmanager.yml"))

    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 receivers" in result.stdout


def test_the_local_config_make_up_writes_is_valid_and_loads_the_same_rules(tmp_path):
    targets = {spec.name: f"127.0.0.1:{spec.port}" for spec in SERVICES}
    config = tmp_path / "prometheus.yml"
    config.write_text(json.dumps(prometheus_config(targets, "1s")))

    result = run(tool("promtool"), "check", "config", str(config))

    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(RULES)} rule files found" in result.stdout


def test_compose_prometheus_scrapes_every_service_worker_and_alertmanager_by_dns_name():
    config = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())
    jobs = {job["job_name"]: target for job in config["scrape_configs"]
            for static in job["static_configs"] for target in static["targets"]}
    alertmanagers = [target for manager in config["alerting"]["alertmanagers"]
                     for static in manager["static_configs"] for target in static["targets"]]

    assert COMPOSE_TARGETS.items() <= jobs.items()
    assert alertmanagers == ["alertmanager:9093"]


@pytest.mark.parametrize("alert", alerts(), ids=lambda alert: alert["alert"])
def test_every_alert_has_a_summary_a_description_and_a_runbook_section(alert):
    runbook = (MONITORING / "RUNBOOK.md").read_text()
    anchors = {re.sub(r"[^a-z0-9-]", "", heading.strip().lower().replace(" ", "-"))
               for heading in re.findall(r"^## (.+)$", runbook, flags=re.MULTILINE)}
    annotations = alert["annotations"]

    assert annotations["summary"]
    assert annotations["description"]
    assert annotations["runbook"] == f"monitoring/RUNBOOK.md#{alert['alert'].lower()}"
    assert alert["alert"].lower() in anchors
    assert alert["labels"]["severity"] in {"critical", "warning", "info"}


@pytest.mark.parametrize("alert", alerts(), ids=lambda alert: alert["alert"])
def test_every_alert_has_a_unit_test_where_it_fires_and_one_where_it_stays_quiet(alert):
    checks = [check for path in RULE_TESTS for test in yaml.safe_load(path.read_text())["tests"]
              for check in test.get("alert_rule_test", []) if check["alertname"] == alert["alert"]]

    assert any(check.get("exp_alerts") for check in checks), "never shown to fire"
    assert any(not check.get("exp_alerts") for check in checks), "never shown to stay quiet"


def test_alerts_read_only_recorded_rules_that_exist():
    recorded = {rule["record"] for rule in recording_rules()}
    used = {name for alert in alerts() for name in metric_names(alert["expr"]) if ":" in name}

    assert used <= recorded, used - recorded
