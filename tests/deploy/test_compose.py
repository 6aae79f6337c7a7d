"""docker-compose.yml: valid against the Compose specification, the whole platform is in it,
and (marker `images`) it runs: `make compose-up` from a clean state until every service is
healthy, the README's walk-through through the gateway, Prometheus scraping every service and
worker with the rules loaded, a second `up` after `down` keeping the data, `make compose-down`
leaving no container. With a Docker engine that is `docker compose`; without one, podman with
local stand-ins (deploy/compose.sh; skipped with the reason where neither can run)."""

import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request

import pytest
import yaml

from tests.deploy.conftest import REPO_ROOT, podman, run, tool

COMPOSE = REPO_ROOT / "docker-compose.yml"
PLATFORM = {"postgres", "redis", "estoque-migrate", "pagamentos-migrate", "pedidos-migrate",
            "estoque-service", "pagamentos-service", "pedidos-service", "api-gateway",
            "estoque-sweeper", "pedidos-recovery", "prometheus", "alertmanager", "grafana",
            "loki", "tempo", "alloy", "loadgen"}
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
    assert published == {"api-gateway": ["${GATEWAY_PORT:-5000}:5000"],
                         "grafana": ["${GRAFANA_PORT:-3000}:3000"],
                         "prometheus": ["${PROMETHEUS_PORT:-9090}:9090"]}


def test_every_third_party_image_is_a_variable_defaulting_to_a_pinned_image(compose):
    for name, service in compose["services"].items():
        if "build" in service:
            continue
        match = re.fullmatch(r"\$\{([A-Z]+_IMAGE):-([^}]+)\}", service["image"])
        assert match, f"{name}: {service['image']}"
        default = match[2]
        assert re.search(r":[\w.-]*\d[\w.-]*$", default), f"{name}: {default} is not pinned"


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


def test_the_compose_scripts_pass_shellcheck():
    scripts = [REPO_ROOT / "deploy" / "compose.sh", REPO_ROOT / "deploy" / "podman.sh",
               REPO_ROOT / "deploy" / "standins" / "postgres-entrypoint.sh"]
    result = run([tool("shellcheck"), *map(str, scripts)])
    assert result.returncode == 0, result.stdout


@pytest.mark.parametrize(("driver", "store"), [
    ("overlay", ["--root", "/var/lib/containers/storage-overlay",
                 "--runroot", "/run/containers/storage-overlay"]),
    ("vfs", [])])
def test_podman_runs_with_the_chosen_storage_driver_each_in_its_own_store(driver, store):
    """A store keeps the driver it was made with: overlay's is not the default store, which
    holds vfs images of earlier runs. A driver podman does not know here is refused."""
    flags = run(["bash", "deploy/podman.sh", "flags"],
                env={**os.environ, "PODMAN_STORAGE_DRIVER": driver})
    assert flags.stdout.split() == ["--runtime", "runc", "--storage-driver", driver, *store]
    refused = run(["bash", "deploy/podman.sh", "flags"],
                  env={**os.environ, "PODMAN_STORAGE_DRIVER": "btrfs"})
    assert (refused.returncode, refused.stdout) == (2, "")
    assert "overlay or vfs" in refused.stderr


def test_the_podman_override_only_adjusts_services_of_the_compose_file(compose):
    override = yaml.safe_load((REPO_ROOT / "deploy" / "compose.podman.yml").read_text())
    assert set(override["services"]) <= set(compose["services"])
    left_out = {name for name, service in override["services"].items()
                if service.get("profiles")}
    assert left_out == {"grafana", "loki", "tempo", "alloy"}
    # Each stand-in's service names the program of the official image it stands for.
    standins = {"postgres", "prometheus", "alertmanager", "redis"}
    assert all(override["services"][name]["entrypoint"] for name in standins)
    assert all(compose["services"][name]["image"].startswith(f"${{{name.upper()}_IMAGE:-")
               for name in standins)


def test_monitoring_files_it_mounts_exist(compose):
    mounts = [volume.split(":")[0] for service in compose["services"].values()
              for volume in service.get("volumes", []) if volume.startswith("./monitoring/")]
    assert len(mounts) >= 8
    if not (REPO_ROOT / "monitoring").exists():
        pytest.skip("monitoring/ has not landed yet")
    missing = [mount for mount in mounts if not (REPO_ROOT / mount).exists()]
    assert not missing


# --- It runs (marker `images`): make compose-up / compose-down ------------------------------

PROJECT = "pedidos-veloz-test"  # beside a developer's own `pedidos-veloz` stack
DATABASES = {"estoque": "estoque_db", "pagamentos": "pagamentos_db", "pedidos": "pedidos_db"}
DECLINED_CARD = "4000000000000002"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def compose_engine() -> str | None:
    """As deploy/compose.sh decides: Docker where an engine answers, else podman."""
    if shutil.which("docker") and run(["docker", "info"], timeout=30).returncode == 0:
        return "docker"
    return "podman" if shutil.which("podman") else None


class Stack:
    """The test project's compose stack: its make targets, compose commands and HTTP ports."""

    def __init__(self, engine: str, env: dict[str, str]):
        self.engine = engine
        self.env = env
        self.gateway = f"http://127.0.0.1:{env['GATEWAY_PORT']}"
        self.prometheus = f"http://127.0.0.1:{env['PROMETHEUS_PORT']}"
        self.seconds_to_healthy = 0.0

    def make(self, target: str, *args: str) -> subprocess.CompletedProcess:
        return run(["make", "--no-print-directory", target, *args], env=self.env, timeout=900)

    def compose(self, *args: str) -> subprocess.CompletedProcess:
        return run(["bash", "deploy/compose.sh", *args], env=self.env, timeout=300)

    def up(self) -> float:
        started = time.monotonic()
        result = self.make("compose-up")
        if result.returncode == 3:  # deploy/compose.sh: a tool is missing and cannot be installed
            pytest.skip(f"compose cannot run here: {result.stderr.strip()[-500:]}")
        assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
        return time.monotonic() - started

    def down(self, *args: str) -> None:
        result = self.make("compose-down", *args)
        assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]

    def token(self, role: str, sub: str | None = None) -> dict[str, str]:
        """Minted inside the gateway's container, as docs/DEPLOY.md shows."""
        minted = self.compose("exec", "-T", "api-gateway", "python", "-m", "gateway.token",
                              "--role", role, *(["--sub", sub] if sub else []))
        assert minted.returncode == 0, minted.stderr
        return {"Authorization": f"Bearer {minted.stdout.strip()}"}

    def containers(self) -> list[str]:
        engine_cli = podman if self.engine == "podman" else self._docker
        listed = engine_cli("ps", "-a", "--filter", f"label=com.docker.compose.project={PROJECT}",
                            "--format", "{{.Names}}")
        assert listed.returncode == 0, listed.stderr
        return listed.stdout.split()

    def volumes(self) -> list[str]:
        engine_cli = podman if self.engine == "podman" else self._docker
        listed = engine_cli("volume", "ls", "--format", "{{.Name}}")
        return [name for name in listed.stdout.split() if name.startswith(f"{PROJECT}_")]

    def migration_lines(self) -> dict[str, str]:
        """The line each migration one-shot printed (deploy/image/migrate.py)."""
        lines = {}
        for package, database in DATABASES.items():
            logs = self.compose("logs", "--no-color", f"{package}-migrate")
            found = re.findall(rf"migrate: {database} .*", logs.stdout + logs.stderr)
            lines[package] = found[-1] if found else logs.stdout[-1000:] + logs.stderr[-1000:]
        return lines

    @staticmethod
    def _docker(*args: str) -> subprocess.CompletedProcess:
        return run(["docker", *args], timeout=120)


@pytest.fixture(scope="module")
def stack(request) -> Stack:
    """`make compose-up` from a clean state (no container, no volume of the test project), on
    free host ports, with fresh secrets and no random declines; all of it removed afterwards."""
    engine = compose_engine()
    if engine is None:
        pytest.skip("neither a Docker engine nor podman (apt-get install podman runc "
                    "mmdebstrap docker-compose; .ci/run installs podman)")
    if engine == "podman":
        request.getfixturevalue("images")  # `make images` once per session, with test_images
    env = {**os.environ, "COMPOSE_ENGINE": engine, "COMPOSE_PROJECT_NAME": PROJECT,
           "POSTGRES_USER": "veloz", "POSTGRES_PASSWORD": secrets.token_urlsafe(24),
           "JWT_SECRET": secrets.token_urlsafe(48), "GRAFANA_ADMIN_USER": "veloz-admin",
           "GRAFANA_ADMIN_PASSWORD": secrets.token_urlsafe(24),
           "GATEWAY_PORT": str(free_port()), "PROMETHEUS_PORT": str(free_port()),
           "GRAFANA_PORT": str(free_port()), "PAYMENT_DECLINE_RATE": "0"}
    stack = Stack(engine, env)
    stack.down("VOLUMES=1")
    stack.seconds_to_healthy = stack.up()
    print(f"\ncompose ({engine}): clean state to every service healthy in "
          f"{stack.seconds_to_healthy:.0f} s")
    yield stack
    stack.down("VOLUMES=1")


def api(method: str, url: str, headers: dict[str, str] | None = None, body=None,
        ) -> tuple[int, object]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method,
                                     headers={"Content-Type": "application/json",
                                              **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, json.loads(answer.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


@pytest.mark.images
def test_compose_up_starts_every_service_healthy_and_every_migration_done(stack):
    services = set(yaml.safe_load(COMPOSE.read_text())["services"])
    left_out = {"grafana", "loki", "tempo", "alloy"} if stack.engine == "podman" else set()
    running = {re.sub(rf"^{PROJECT}[-_](.+)[-_]1$", r"\1", name) for name in stack.containers()}

    assert running == services - left_out - {"loadgen"}
    assert all(line.startswith(f"migrate: {DATABASES[package]} None -> ")
               for package, line in stack.migration_lines().items()), stack.migration_lines()
    assert stack.seconds_to_healthy < 600


@pytest.mark.images
def test_the_readme_walk_through_answers_through_the_gateway(stack):
    gateway, admin, alice = stack.gateway, stack.token("admin"), stack.token("customer", "alice")
    assert api("GET", f"{gateway}/health")[1]["status"] == "healthy"
    assert api("GET", f"{gateway}/items")[0] == 200
    status, item = api("POST", f"{gateway}/items", admin,
                       {"name": "Camiseta", "quantity": 50, "price": 59.90})
    assert status == 201, item
    line = [{"item_id": item["id"], "quantity": 1}]

    status, paid = api("POST", f"{gateway}/orders", admin,
                       {"customer": "João Silva", "items": [{**line[0], "quantity": 2}]})
    assert (status, paid["order"]["status"]) == (201, "paid"), paid
    order_id = paid["order"]["id"]
    assert order_id in [order["id"] for order in api("GET", f"{gateway}/orders", admin)[1]]

    status, declined = api("POST", f"{gateway}/orders", admin,
                           {"customer": "Ana", "items": line,
                            "payment": {"method": "credit_card", "card_number": DECLINED_CARD}})
    assert (status, declined["order"]["status"]) == (402, "payment_declined"), declined

    key = {**admin, "Idempotency-Key": "checkout-42"}
    twice = [api("POST", f"{gateway}/orders", key, {"customer": "Bia", "items": line})
             for _ in range(2)]
    assert twice[0][0] == 201, twice
    assert twice[1] == twice[0]
    assert len(api("GET", f"{gateway}/orders?customer=Bia", admin)[1]) == 1

    assert api("POST", f"{gateway}/items", alice, {"name": "Boné"})[0] == 403
    status, own = api("POST", f"{gateway}/orders", alice, {"customer": "Alice", "items": line})
    assert status == 201, own
    assert [order["id"] for order in api("GET", f"{gateway}/orders", alice)[1]] == [
        own["order"]["id"]]

    status, cancelled = api("POST", f"{gateway}/orders/{order_id}/cancel", admin)
    assert (status, cancelled["status"]) == (200, "cancelled"), cancelled
    events = api("GET", f"{gateway}/orders/{order_id}/events", admin)[1]
    assert [event["status"] for event in events][-1] == "cancelled"
    # 50 - 2 (paid, then cancelled: back) - 1 (declined: back) - 1 (Bia) - 1 (Alice)
    assert api("GET", f"{gateway}/items/{item['id']}")[1]["quantity"] == 48


@pytest.mark.images
def test_prometheus_scrapes_every_service_and_worker_by_its_compose_name_with_the_rules(stack):
    configured = yaml.safe_load((REPO_ROOT / "monitoring" / "prometheus" / "prometheus.yml")
                                .read_text())
    expected = {job["job_name"]: job["static_configs"][0]["targets"][0]
                for job in configured["scrape_configs"]}
    deadline = time.monotonic() + 90  # a scrape every 15 s
    while True:
        targets = api("GET", f"{stack.prometheus}/api/v1/targets")[1]["data"]["activeTargets"]
        health = {target["labels"]["job"]: (target["labels"]["instance"], target["health"])
                  for target in targets}
        if all(state == "up" for _, state in health.values()) or time.monotonic() > deadline:
            break
        time.sleep(3)

    assert health == {job: (target, "up") for job, target in expected.items()}, targets
    groups = api("GET", f"{stack.prometheus}/api/v1/rules")[1]["data"]["groups"]
    loaded = {(group["file"].rpartition("/")[2], group["name"]) for group in groups}
    written = {(path.name, group["name"])
               for path in (REPO_ROOT / "monitoring" / "prometheus" / "rules").glob("*.yml")
               for group in yaml.safe_load(path.read_text())["groups"]}
    assert loaded == written
    assert all(rule["health"] == "ok" for group in groups for rule in group["rules"])


@pytest.mark.images
def test_a_second_up_after_down_keeps_the_data_and_migrates_nothing(stack):
    admin = stack.token("admin")
    status, item = api("POST", f"{stack.gateway}/items", admin,
                       {"name": "Persistente", "quantity": 3, "price": 10})
    assert status == 201, item

    stack.down()
    seconds = stack.up()
    print(f"\ncompose ({stack.engine}): second up, healthy in {seconds:.0f} s")

    assert api("GET", f"{stack.gateway}/items/{item['id']}")[1]["name"] == "Persistente"
    assert all(line.startswith(f"migrate: {DATABASES[package]} already at ")
               for package, line in stack.migration_lines().items()), stack.migration_lines()


@pytest.mark.images
def test_compose_down_leaves_no_container_and_keeps_the_volumes(stack):
    stack.down()

    assert stack.containers() == []
    assert f"{PROJECT}_pgdata" in stack.volumes()
