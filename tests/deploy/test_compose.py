"""docker-compose.yml: valid against the Compose specification, and the whole platform is in it."""

import re

import pytest
import yaml

from tests.deploy.conftest import REPO_ROOT, run, tool

COMPOSE = REPO_ROOT / "docker-compose.yml"
PLATFORM = {"postgres", "estoque-migrate", "pagamentos-migrate", "pedidos-migrate",
            "estoque-service", "pagamentos-service", "pedidos-service", "api-gateway",
            "estoque-sweeper", "pedidos-recovery", "prometheus", "alertmanager", "grafana",
            "loki", "alloy", "loadgen"}
APPLICATION = {"estoque-service", "pagamentos-service", "pedidos-service", "api-gateway",
               "estoque-sweeper", "pedidos-recovery"}


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def test_compose_file_follows_the_compose_specification_schema():
    # The schema is the compose-spec project's, as vendored (with its sha256) by check-jsonschema.
    result = run([tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec",
                  str(COMPOSE)])
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_service_the_platform_needs_is_there(compose):
    assert set(compose["services"]) >= PLATFORM


def test_only_what_a_person_opens_is_published(compose):
    published = {name: service["ports"] for name, service in compose["services"].items()
                 if service.get("ports")}
    assert published == {"api-gateway": ["5000:5000"], "grafana": ["3000:3000"],
                         "prometheus": ["9090:9090"]}


def test_prometheus_scrapes_the_gateway_on_its_unpublished_metrics_port(compose):
    gateway = compose["services"]["api-gateway"]
    metrics_port = gateway["environment"]["METRICS_BIND"].rpartition(":")[2]
    scraped = yaml.safe_load((REPO_ROOT / "monitoring" / "prometheus" / "prometheus.yml")
                             .read_text())
    targets = {job["job_name"]: job["static_configs"][0]["targets"]
               for job in scraped["scrape_configs"]}

    assert metrics_port != "5000"
    assert targets["api-gateway"] == [f"api-gateway:{metrics_port}"]
    assert not any(port.endswith(f":{metrics_port}") for port in gateway["ports"])


def test_services_start_after_a_healthy_database_and_finished_migrations(compose):
    services = compose["services"]
    for name in ("estoque", "pagamentos", "pedidos"):
        depends = services[f"{name}-service"]["depends_on"]
        assert depends[f"{name}-migrate"] == {"condition": "service_completed_successfully"}
        assert services[f"{name}-migrate"]["depends_on"]["postgres"] == {
            "condition": "service_healthy"}
    assert all(dep["condition"] == "service_healthy"
               for dep in services["api-gateway"]["depends_on"].values())


def test_application_containers_are_locked_down_and_checked(compose):
    for name in APPLICATION:
        service = compose["services"][name]
        assert service["read_only"] is True, name
        assert service["cap_drop"] == ["ALL"], name
        assert service["healthcheck"]["test"][0] == "CMD", name
        assert "/tmp" in service["tmpfs"], name
    for name in ("estoque-service", "pagamentos-service", "pedidos-service", "api-gateway"):
        assert compose["services"][name]["environment"]["GRACEFUL_TIMEOUT"] == "30", name


def test_secrets_come_from_the_environment_and_grafana_is_never_admin_admin(compose):
    text = COMPOSE.read_text()
    grafana = compose["services"]["grafana"]["environment"]
    assert grafana["GF_SECURITY_ADMIN_PASSWORD"].startswith("${GRAFANA_ADMIN_PASSWORD:?")
    assert re.search(r"POSTGRES_PASSWORD: \$\{POSTGRES_PASSWORD:\?", text)
    example = dict(line.split("=", 1) for line in
                   (REPO_ROOT / ".env.example").read_text().splitlines()
                   if line and not line.startswith("#"))
    assert (example["GRAFANA_ADMIN_USER"], example["GRAFANA_ADMIN_PASSWORD"]) != ("admin",
                                                                                  "admin")
    for variable in re.findall(r"\$\{([A-Z_]+):\?", text):
        assert variable in example, f"{variable} is required but not in .env.example"


def test_monitoring_files_it_mounts_exist(compose):
    mounts = [volume.split(":")[0] for service in compose["services"].values()
              for volume in service.get("volumes", []) if volume.startswith("./monitoring/")]
    assert len(mounts) >= 8
    if not (REPO_ROOT / "monitoring").exists():
        pytest.skip("monitoring/ has not landed yet")
    missing = [mount for mount in mounts if not (REPO_ROOT / mount).exists()]
    assert not missing
