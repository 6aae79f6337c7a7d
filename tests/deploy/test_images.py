"""The four images really build (`make images`, podman: the one Dockerfile, once per SERVICE)
and start: each answers /livez and /readyz with 200 from inside its container, as the non-root
user, on a read-only root filesystem, against a real PostgreSQL reached through a socket (the
containers have no network), serving the command of its line in deploy/image/services, with
only its own package and the shared one without its dev layer.
"""

import time
import uuid
from pathlib import Path

import pytest

from tests.deploy.conftest import REPO_ROOT, podman, table_rows
from tests.deploy.pgrelay import SOCKET_NAME, SocketRelay
from veloz.dev.devdb import start_embedded_server

pytestmark = pytest.mark.images

SERVICES = {"api-gateway": 5000, "pedidos-service": 5001, "pagamentos-service": 5002,
            "estoque-service": 5003}
DATABASES = {"pedidos-service": "pedidos_db", "pagamentos-service": "pagamentos_db",
             "estoque-service": "estoque_db"}
SOCKET_IN_CONTAINER = "/run/pgsocket"
GATEWAY_ENV = {"JWT_SECRET": "x" * 48, "ESTOQUE_URL": "http://estoque-service:5003",
               "PEDIDOS_URL": "http://pedidos-service:5001",
               "PAGAMENTOS_URL": "http://pagamentos-service:5002"}
STATUS_OF = ("import sys, urllib.request, urllib.error\n"
             "try: print(urllib.request.urlopen(sys.argv[1], timeout=2).status)\n"
             "except urllib.error.HTTPError as e: print(e.code)\n"
             "except OSError as e: print('down', e)")


@pytest.fixture(scope="session")
def socket_folder() -> Path:
    """A private embedded PostgreSQL (never the other tests' one), relayed to a socket folder
    the containers mount."""
    server_url = start_embedded_server(REPO_ROOT / ".local" / "deploy-pgdata")
    data_folder = Path(server_url.rpartition("host=")[2])
    relay = SocketRelay(REPO_ROOT / ".local" / "deploy-pgsocket", data_folder / SOCKET_NAME)
    yield relay.start().folder
    relay.stop()


def container_run(image: str, socket: Path, *command: str, env: dict[str, str] | None = None,
                  detach: bool = False, name: str | None = None):
    """Run like the manifests do: read-only root, no network, only the database socket."""
    options = ["--read-only", "--network", "none", "--cap-drop", "ALL",
               "--security-opt", "no-new-privileges",
               "--volume", f"{socket}:{SOCKET_IN_CONTAINER}"]
    for key, value in (env or {}).items():
        options += ["--env", f"{key}={value}"]
    options += ["--detach", "--name", name] if detach else ["--rm", "--no-healthcheck"]
    return podman("run", *options, image, *command)


@pytest.fixture(scope="session")
def migrated(images, socket_folder) -> dict[str, str]:
    """Each database image's migration one-shot (the command Compose and the k8s Job run): it
    creates the service's database when missing and upgrades it to the newest revision."""
    urls = {service: f"postgresql://postgres@/{database}?host={SOCKET_IN_CONTAINER}"
            for service, database in DATABASES.items()}
    for service, url in urls.items():
        package = service.removesuffix("-service")
        migration = container_run(images[service], socket_folder, "python",
                                  "/opt/veloz/migrate.py", package, env={"DATABASE_URL": url})
        assert migration.returncode == 0, migration.stdout + migration.stderr
    return urls


def service_env(service: str, database_urls: dict[str, str]) -> dict[str, str]:
    if service in database_urls:
        env = {"DATABASE_URL": database_urls[service]}
        if service == "pedidos-service":
            env |= {key: GATEWAY_ENV[key] for key in ("ESTOQUE_URL", "PAGAMENTOS_URL")}
        return env
    return GATEWAY_ENV


@pytest.fixture
def started(images, socket_folder, migrated):
    """Start a service's container; removed after the test."""
    names = []

    def start(service: str, *command: str, extra_env: dict[str, str] | None = None) -> str:
        name = f"pv-test-{service}-{uuid.uuid4().hex[:8]}"
        names.append(name)
        env = {**service_env(service, migrated), **(extra_env or {})}
        result = container_run(images[service], socket_folder, *command, env=env, detach=True,
                               name=name)
        assert result.returncode == 0, result.stderr
        return name

    yield start
    for name in names:
        podman("rm", "--force", "--time", "2", name)


def status_inside(name: str, url: str) -> str:
    return podman("exec", name, "python", "-c", STATUS_OF, url, timeout=30).stdout.strip()


def wait_for_status(name: str, url: str, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    status = ""
    while time.monotonic() < deadline:
        status = status_inside(name, url)
        if status == "200":
            return status
        time.sleep(0.5)
    logs = podman("logs", name).stdout[-2000:]
    return f"{status} after {timeout:.0f}s; logs:\n{logs}"


@pytest.mark.parametrize("service", SERVICES)
def test_each_image_answers_live_and_ready_as_non_root_on_a_read_only_root(service, images,
                                                                             started):
    name = started(service)
    base = f"http://127.0.0.1:{SERVICES[service]}"

    assert wait_for_status(name, f"{base}/livez") == "200"
    assert wait_for_status(name, f"{base}/readyz") == "200"
    assert podman("exec", name, "id", "-u").stdout.strip() == "10001"
    assert podman("inspect", "--format", "{{.HostConfig.ReadonlyRootfs}}",
                  name).stdout.strip() == "true"
    assert podman("exec", name, "touch", "/app/written").returncode != 0
    no_build_tools = "! command -v gcc && ! command -v cc && ! command -v make && " \
                     "! test -e /opt/venv/bin/pip"
    assert podman("exec", name, "sh", "-c", no_build_tools).returncode == 0
    assert podman("healthcheck", "run", name).returncode == 0
    assert_holds_its_package_without_the_dev_layer_and_serves_its_table_line(
        service, images[service], name)


def assert_holds_its_package_without_the_dev_layer_and_serves_its_table_line(
        service: str, image: str, name: str) -> None:
    package, _port, _metrics, *command = table_rows()[service]
    assert podman("exec", name, "ls", "/app").stdout.split() == sorted([package, "veloz"])
    assert podman("exec", name, "test", "-e", "/app/veloz/dev").returncode != 0
    assert podman("exec", name, "python", "-c", "import veloz.dev").returncode != 0
    assert podman("exec", name, "find", "/app", "-name", "tests").stdout.strip() == ""
    assert podman("inspect", "--format", "{{json .Config.Cmd}}",
                  image).stdout.strip() == '["serve"]'
    # PID 1 is the table's command, which the entrypoint exec'd for `serve` (a script such as
    # gunicorn shows as its interpreter, then the script's path).
    cmdline = [word for word in podman("exec", name, "cat", "/proc/1/cmdline").stdout
               .split("\0") if word]
    assert cmdline[-len(command) + 1:] == command[1:]
    assert command[0] in {Path(word).name for word in cmdline[:2]}



@pytest.mark.parametrize(("service", "worker", "port"),
                         [("estoque-service", "estoque.sweeper", 9103),
                          ("pedidos-service", "pedidos.recovery", 9101)])
def test_each_worker_runs_from_its_service_image_and_serves_metrics(service, worker, port,
                                                                     started):
    name = started(service, "python", "-m", worker, extra_env={"METRICS_PORT": str(port)})

    # The probe Compose and the manifests give the workers.
    assert wait_for_status(name, f"http://127.0.0.1:{port}/metrics") == "200"
    assert podman("exec", name, "python", "/opt/veloz/healthcheck.py", "/metrics",
                  str(port)).returncode == 0
    state = podman("inspect", "--format", "{{.State.Running}}", name).stdout.strip()
    logs = podman("logs", name)
    assert state == "true", logs.stdout + logs.stderr
    assert "started" in logs.stdout + logs.stderr
