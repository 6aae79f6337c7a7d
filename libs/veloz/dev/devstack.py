"""The whole platform as local processes, no Docker: `python -m veloz.dev.devstack up`.

Starts a private PostgreSQL (unless DATABASE_URL names a server), creates and migrates one
database per service, then runs every service on its port (the gateway under gunicorn, the
others under granian: ServiceSpec.server_command), plus the
background workers, and streams their JSON logs. Ctrl-C stops everything. The e2e tests
drive the same `Platform` on free ports.
"""

import argparse
import contextlib
import importlib.util
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import requests

from veloz.data.migrate import upgrade
from veloz.dev.devdb import ensure_database, recreate_database, start_embedded_server
from veloz.net.client import ClientPolicy
from veloz.run.server_settings import (
    DRAIN_FILE,
    GRANIAN_WORKERS,
    GUNICORN_WORKERS,
    READY_DIR,
    ServerSettings,
)

REPO_ROOT = Path(__file__).resolve().parents[3]
LOCAL = REPO_ROOT / ".local"
JWT_SECRET_FILE = LOCAL / "jwt-secret"  # the local start's generated secret (git-ignored)
PROMETHEUS_RULES = REPO_ROOT / "monitoring" / "prometheus" / "rules"
PROMETHEUS_PORT = 9090
# How `make restart` finds the running `make up`, and where it reads the answer.
UP_PID_FILE = LOCAL / "run" / "up.pid"
# How long a server told to stop keeps answering (each answer with Connection: close) before
# SIGTERM: longer than the platform client's idle limit and a request. By then each kept
# connection to the old server was either closed after an answer that said so, or sat idle too
# long to be lent again; none is lent just as the stopping server closes it (a POST sent on
# one then fails, and may not be sent again). A pod's preStop waits 10 s (k8s/base).
DRAIN_LINGER_SECONDS = ClientPolicy.idle_seconds + 1.0
RESTART_RESULT_FILE = LOCAL / "run" / "restart-result"


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    package: str
    port: int
    database: str | None = None
    workers: tuple[str, ...] = ()
    backends: dict[str, str] = field(default_factory=dict)  # env var -> service name
    edge: bool = False  # faces clients: served by gunicorn (veloz.run.gunicorn_conf), else granian

    def server_command(self) -> list[str]:
        """The command its container image runs (`make up` runs the same with its own
        interpreter): granian through veloz.run.granian for the services inside the platform."""
        if self.edge:
            return ["gunicorn", "-c", "python:veloz.run.gunicorn_conf",
                    f"{self.package}.app:create_app()"]
        return ["python", "-m", "veloz.run.granian", self.package]

    @property
    def available(self) -> bool:
        return importlib.util.find_spec(f"{self.package}.app") is not None


SERVICES = (
    ServiceSpec("estoque-service", "estoque", 5003, "estoque_db", ("estoque.sweeper",)),
    ServiceSpec("pagamentos-service", "pagamentos", 5002, "pagamentos_db"),
    ServiceSpec("pedidos-service", "pedidos", 5001, "pedidos_db", ("pedidos.recovery",),
                {"ESTOQUE_URL": "estoque-service", "PAGAMENTOS_URL": "pagamentos-service"}),
    ServiceSpec("api-gateway", "gateway", 5000, None, (),
                {"ESTOQUE_URL": "estoque-service", "PEDIDOS_URL": "pedidos-service",
                 "PAGAMENTOS_URL": "pagamentos-service"}, edge=True),
)


def free_port() -> int:
    return free_ports(1)[0]


def free_ports(count: int, avoid: Collection[int] = ()) -> list[int]:
    """`count` different ports free right now, none of them in `avoid`. Every probe stays
    bound until all are chosen, so the kernel cannot hand out one port twice: the servers
    here listen with SO_REUSEPORT, so two of them given one port would both start and split
    its connections between them."""
    with contextlib.ExitStack() as probes:
        chosen: list[int] = []
        while len(chosen) < count:
            probe = probes.enter_context(socket.socket())
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
            if port not in avoid:
                chosen.append(port)
        return chosen


def free_service_ports(specs: Iterable[ServiceSpec] = SERVICES) -> dict[str, int]:
    """A different free port for each service (a platform beside `make up`'s, for tests and
    benchmarks)."""
    names = [spec.name for spec in specs]
    return dict(zip(names, free_ports(len(names)), strict=True))


def jwt_secret() -> str:
    """JWT_SECRET from the environment, else a random one kept in .local/jwt-secret."""
    if os.environ.get("JWT_SECRET"):
        return os.environ["JWT_SECRET"]
    if not JWT_SECRET_FILE.exists():
        LOCAL.mkdir(exist_ok=True)
        JWT_SECRET_FILE.write_text(secrets.token_urlsafe(48))
        JWT_SECRET_FILE.chmod(0o600)
    return JWT_SECRET_FILE.read_text().strip()


def _with_this_python(command: list[str]) -> list[str]:
    """An image's command for this interpreter: `python -m X ...`, or a console script X
    as `python -m X`."""
    program, *arguments = command
    if program == "python":
        return [sys.executable, *arguments]
    return [sys.executable, "-m", program, *arguments]


class Platform:
    """Every available service as real processes. Use as a context manager."""

    def __init__(self, *, server_url: str, ports: dict[str, int] | None = None,
                 env: dict[str, str] | None = None, database_suffix: str = "",
                 log_dir: Path | None = None, run_dir: Path = LOCAL / "run",
                 only: set[str] | None = None):
        self.specs = [spec for spec in SERVICES
                      if spec.available and (only is None or spec.name in only)]
        self.server_url = server_url
        self.ports = ports or {spec.name: spec.port for spec in self.specs}
        self.extra_env = env or {}
        self.database_suffix = database_suffix
        self.log_dir = log_dir
        self.run_dir = run_dir
        self.database_urls: dict[str, str] = {}
        self.processes: dict[str, subprocess.Popen] = {}
        self._generation = 0  # servers started so far: names each one's ready folder
        self._drain_markers: dict[str, Path] = {}  # each server's DRAIN_FILE
        # Background workers serve /metrics on ports of their own, and so does the gateway
        # (its public port answers no /metrics: METRICS_BIND); none is a service's port.
        listeners = [worker for spec in self.specs for worker in spec.workers]
        listeners += [spec.name for spec in self.specs if spec.edge]
        self.metrics_ports = dict(zip(listeners, free_ports(len(listeners),
                                                            avoid=set(self.ports.values())),
                                      strict=True))

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.ports[service]}"

    def clear_metrics(self) -> None:
        shutil.rmtree(self.run_dir / "metrics", ignore_errors=True)

    def migrate(self, fresh: bool = False) -> None:
        """Create (or, when `fresh`, recreate) each service's database and upgrade it."""
        prepare = recreate_database if fresh else ensure_database
        for spec in self.specs:
            if spec.database:
                url = prepare(self.server_url, spec.database + self.database_suffix)
                upgrade(spec.package, url)
                self.database_urls[spec.name] = url

    def start(self) -> None:
        """Every service and worker, live; if one fails to come up, those started are
        stopped again before the error goes on (no process outlives a failed start)."""
        try:
            for spec in self.specs:
                self.start_service(spec.name)
                for worker in spec.workers:
                    self.start_worker(spec, worker)
            for spec in self.specs:
                self.wait_until_live(spec.name)
        except BaseException:
            self.stop()
            raise

    def start_service(self, name: str) -> Path:
        """The service's server (main process and workers), in a process group of its own.
        Returns the folder where each of its workers leaves a file once its app is built."""
        spec = self._spec(name)
        self._generation += 1
        ready = self.run_dir / "ready" / f"{name}-{self._generation}"
        ready.mkdir(parents=True, exist_ok=True)
        self._launch(name, _with_this_python(spec.server_command()),
                     {**self._environment(spec), READY_DIR: str(ready),
                      DRAIN_FILE: str(ready / "draining")})
        self._drain_markers[name] = ready / "draining"
        return ready

    def start_worker(self, spec: ServiceSpec, worker: str) -> None:
        self._launch(worker, [sys.executable, "-m", worker], self._worker_environment(spec, worker))

    def restart(self, say=print) -> None:
        """Every service and background worker replaced by a fresh process of the current
        code, one at a time: each server is surged then drained (replace_service); each
        background worker stopped, then started again."""
        for spec in self.specs:
            self.replace_service(spec.name)
            say(f"  {spec.name}: new server ready, the old one drained and stopped")
            for worker in spec.workers:
                self.stop_service(worker)
                self.start_worker(spec, worker)
                say(f"  {worker}: restarted")

    def replace_service(self, name: str, timeout: float = 60) -> None:
        """Surge, then drain, as a Deployment with maxSurge 1 and maxUnavailable 0 does: a new
        server binds the same port beside the old one (both listen with SO_REUSEPORT), and
        only once every one of its workers is ready is the old server told to stop: first its
        DRAIN_FILE, so for DRAIN_LINGER_SECONDS its answers carry Connection: close and its
        keep-alive clients move to the new one by themselves; then SIGTERM (it stops
        accepting, finishes what it has, exits). A new server that does not get ready in time
        is stopped and the old one keeps serving."""
        old, old_drain = self.processes[name], self._drain_markers[name]
        listening = _listeners(self.ports[name])
        ready = self.start_service(name)
        try:
            self._wait_until_ready(name, ready, listening, timeout)
        except RuntimeError:
            self.stop_service(name)
            self.processes[name], self._drain_markers[name] = old, old_drain
            raise
        old_drain.touch()  # its answers say Connection: close: pooled clients let go of it
        time.sleep(DRAIN_LINGER_SECONDS)
        self._stop_process(old)

    def _wait_until_ready(self, name: str, ready: Path, listening: int,
                          timeout: float) -> None:
        """Every worker of the new server has built its app and its port has more
        listening sockets than before it started (granian's workers bind their own)."""
        spec = self._spec(name)
        workers = ServerSettings.from_environment(
            self._environment(spec),
            default_workers=GUNICORN_WORKERS if spec.edge else GRANIAN_WORKERS).workers
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.processes[name].poll() is not None:
                raise RuntimeError(f"the new {name} exited with "
                                   f"{self.processes[name].returncode}")
            if (len(list(ready.iterdir())) >= workers
                    and _listeners(self.ports[name]) > listening):
                return
            time.sleep(0.05)
        raise RuntimeError(f"the new {name} was not ready within {timeout:.0f}s")

    def signal(self, name: str, signum: int) -> None:
        """Signal the whole group: SIGSTOP freezes, SIGKILL crashes master and workers alike."""
        os.killpg(self.processes[name].pid, signum)

    def crash(self, name: str) -> None:
        self.signal(name, signal.SIGKILL)
        self.processes.pop(name).wait()

    def stop_service(self, name: str, timeout: float = 10) -> None:
        self._stop_process(self.processes.pop(name), timeout)

    @staticmethod
    def _stop_process(process: subprocess.Popen, timeout: float = 40) -> None:
        """SIGTERM (the server drains), then SIGKILL to the whole group after `timeout`."""
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGCONT)
            process.terminate()
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()

    def stop(self) -> None:
        for name in reversed(list(self.processes)):
            self.stop_service(name)

    def wait_until_live(self, name: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.processes[name].poll() is not None:
                raise RuntimeError(f"{name} exited with {self.processes[name].returncode}")
            with contextlib.suppress(requests.RequestException):
                if requests.get(f"{self.url(name)}/livez", timeout=1).ok:
                    return
            time.sleep(0.2)
        raise RuntimeError(f"{name} did not come up within {timeout:.0f}s")

    def scrape_targets(self) -> dict[str, str]:
        """Prometheus job name -> address: the services and the background workers, each on
        its metrics port where it has one of its own (the gateway, the workers)."""
        targets = {spec.name: f"127.0.0.1:{self.ports[spec.name]}" for spec in self.specs}
        targets.update((worker.replace(".", "-"), f"127.0.0.1:{port}")
                       for worker, port in self.metrics_ports.items())
        return targets

    def exited(self) -> list[str]:
        return [name for name, process in self.processes.items() if process.poll() is not None]

    def __enter__(self) -> "Platform":
        self.migrate()
        self.clear_metrics()
        self.start()
        return self

    def __exit__(self, *_exc) -> None:
        self.stop()

    def _spec(self, name: str) -> ServiceSpec:
        return next(spec for spec in self.specs if spec.name == name)

    def _environment(self, spec: ServiceSpec) -> dict[str, str]:
        metrics_dir = self.run_dir / "metrics" / spec.name
        metrics_dir.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "BIND": f"127.0.0.1:{self.ports[spec.name]}",
               "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir), "JWT_SECRET": jwt_secret(),
               "PYTHONUNBUFFERED": "1", "SERVICE_NAME": spec.name}
        env.update({var: self.url(target) for var, target in spec.backends.items()})
        if spec.name in self.database_urls:
            env["DATABASE_URL"] = self.database_urls[spec.name]
        env.pop("METRICS_BIND", None)  # granian refuses it (veloz.run.granian)
        if spec.edge:
            env["METRICS_BIND"] = f"127.0.0.1:{self.metrics_ports[spec.name]}"
        env.update(self.extra_env)
        return env

    def _worker_environment(self, spec: ServiceSpec, worker: str) -> dict[str, str]:
        """A worker is one process: its metrics stay in its memory, not in the service's
        multiprocess folder (where the service's /metrics would count them too)."""
        env = self._environment(spec)
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        env.update(METRICS_PORT=str(self.metrics_ports[worker]), METRICS_HOST="127.0.0.1")
        return env

    def _launch(self, name: str, command: list[str], env: dict[str, str]) -> None:
        output = None
        if self.log_dir is not None:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            output = (self.log_dir / f"{name}.log").open("ab")
        self.processes[name] = subprocess.Popen(command, env=env, cwd=REPO_ROOT,
                                                stdout=output, stderr=subprocess.STDOUT
                                                if output else None, start_new_session=True)


def _listeners(port: int) -> int:
    """How many sockets listen on 127.0.0.1:`port` (IPv4, from /proc/net/tcp)."""
    wanted = f"0100007F:{port:04X}"
    lines = Path("/proc/net/tcp").read_text().splitlines()[1:]
    return sum(1 for line in lines
               if line.split()[1] == wanted and line.split()[3] == "0A")  # 0A: LISTEN


def prometheus_config(targets: dict[str, str], interval: str = "15s") -> dict:
    """monitoring/prometheus/prometheus.yml for local ports: the same jobs and rule files."""
    return {"global": {"scrape_interval": interval, "evaluation_interval": interval},
            "rule_files": [str(PROMETHEUS_RULES / "*.yml")],
            "scrape_configs": [{"job_name": job, "static_configs": [{"targets": [address]}]}
                               for job, address in targets.items()]}


def start_prometheus(platform: Platform, *, port: int = PROMETHEUS_PORT,
                     data_dir: Path = LOCAL / "prometheus",
                     interval: str = "15s") -> subprocess.Popen | None:
    """A real Prometheus scraping the platform, when a `prometheus` binary is on PATH."""
    binary = shutil.which("prometheus")
    if binary is None:
        return None
    data_dir.mkdir(parents=True, exist_ok=True)
    config = data_dir / "prometheus.yml"  # JSON is YAML: no YAML library needed
    config.write_text(json.dumps(prometheus_config(platform.scrape_targets(), interval),
                                 indent=2))
    with (data_dir / "prometheus.log").open("ab") as output:
        return subprocess.Popen(
            [binary, f"--config.file={config}", f"--storage.tsdb.path={data_dir / 'data'}",
             f"--web.listen-address=127.0.0.1:{port}", "--storage.tsdb.retention.time=2d"],
            stdout=output, stderr=subprocess.STDOUT, start_new_session=True)


# The pages the banner names. Debian's prometheus package serves only the classic UI, under
# /classic/ (its /targets is a 404, and / redirects to /classic/graph); upstream builds serve
# the newer UI at /targets.
PROMETHEUS_PAGES = ("targets", "alerts", "rules")


def prometheus_ui_prefix(url: str, timeout: float = 5) -> str | None:
    """Where the Prometheus at `url` serves its pages, asked of itself: the prefix "" or
    "/classic" (pages answer 503 until it is ready); None when neither answers in time."""
    deadline = time.monotonic() + timeout
    while True:
        for prefix in ("", "/classic"):
            with contextlib.suppress(requests.RequestException):
                if requests.get(f"{url}{prefix}/targets", timeout=1).status_code == 200:
                    return prefix
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.2)


def _prometheus_lines(prometheus: subprocess.Popen | None) -> list[str]:
    if prometheus is None:
        return ["", "Prometheus: not installed, so not started. To get it on "
                f":{PROMETHEUS_PORT} with the alert rules: apt-get install prometheus"]
    with contextlib.suppress(subprocess.TimeoutExpired):
        prometheus.wait(1)
    if prometheus.poll() is not None:
        return ["", f"Prometheus exited at start ({LOCAL / 'prometheus' / 'prometheus.log'})"]
    url = f"http://127.0.0.1:{PROMETHEUS_PORT}"
    prefix = prometheus_ui_prefix(url)
    if prefix is None:
        return ["", f"Prometheus: {url}  (not answering yet: {LOCAL / 'prometheus'})"]
    return ["", f"Prometheus: {url}",
            *(f"  {page:<20} {url}{prefix}/{page}" for page in PROMETHEUS_PAGES)]


def admin_token() -> str | None:
    """An admin token for the announcement, or None when none could be minted: the token tool
    is not installed, or it failed or was stopped (Ctrl-C reaches the whole process group,
    this child too, while `make up` is still starting)."""
    if importlib.util.find_spec("gateway.token") is None:
        return None
    try:
        result = subprocess.run([sys.executable, "-m", "gateway.token", "--role", "admin"],
                                env={**os.environ, "JWT_SECRET": jwt_secret()}, cwd=REPO_ROOT,
                                capture_output=True, text=True, timeout=30, check=True)
    except (subprocess.SubprocessError, OSError):
        return None
    return result.stdout.strip() or None


def server_url_from_environment() -> str:
    return os.environ.get("DATABASE_URL") or start_embedded_server(LOCAL / "pgdata")


def _announce(platform: Platform, prometheus: subprocess.Popen | None) -> None:
    lines = ["", "Pedidos Veloz is up:"]
    lines += [f"  {spec.name:<20} {platform.url(spec.name)}  (docs: {platform.url(spec.name)}/docs)"
              for spec in platform.specs]
    lines += [f"  {spec.name + ' metrics':<20} http://127.0.0.1:{platform.metrics_ports[spec.name]}"
              "/metrics  (internal: its public port answers /metrics 404)"
              for spec in platform.specs if spec.edge]
    lines += _prometheus_lines(prometheus)
    token = admin_token()
    if token:
        lines += ["", "Admin token (1 h):", f"  export TOKEN={token}"]
    else:
        lines += ["", "Admin token: export TOKEN=$(make -s token ROLE=admin)"]
    lines += ["", "Ctrl-C stops everything.", ""]
    print("\n".join(lines), flush=True)


def up() -> int:
    platform = Platform(server_url=server_url_from_environment())
    stopping = restarting = False

    def request_stop(*_args):
        nonlocal stopping
        stopping = True

    def request_restart(*_args):
        nonlocal restarting
        restarting = True

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGHUP, request_restart)
    with platform:
        prometheus = start_prometheus(platform)
        if not stopping:  # Ctrl-C while starting: stop, without saying it is up
            _announce(platform, prometheus)
        UP_PID_FILE.write_text(str(os.getpid()))
        while not stopping and not platform.exited():
            if restarting:
                restarting = False
                _restart(platform)
            time.sleep(0.5)
        UP_PID_FILE.unlink(missing_ok=True)
        for name in platform.exited():
            print(f"{name} exited unexpectedly; stopping the platform", file=sys.stderr)
        if prometheus is not None and prometheus.poll() is None:
            prometheus.terminate()
            prometheus.wait(10)
    return 0 if stopping else 1


def _restart(platform: Platform) -> None:
    """What `make restart` asks of a running `make up` (SIGHUP): its answer goes to
    RESTART_RESULT_FILE, which `restart()` waits for."""
    print("Restarting every service, one at a time (make restart):", flush=True)
    started = time.monotonic()
    try:
        platform.restart(say=lambda line: print(line, flush=True))
        result = f"restarted in {time.monotonic() - started:.1f}s"
    except RuntimeError as error:
        result = f"failed: {error}; the old process keeps serving"
    print(f"make restart: {result}", flush=True)
    RESTART_RESULT_FILE.write_text(result)


def restart(timeout: float = 300) -> int:
    """`make restart`: ask the running `make up` to replace every process, and wait."""
    try:
        pid = int(UP_PID_FILE.read_text())
        RESTART_RESULT_FILE.unlink(missing_ok=True)
        os.kill(pid, signal.SIGHUP)
    except (OSError, ValueError):
        print("No running `make up` found (start it first).", file=sys.stderr)
        return 1
    deadline = time.monotonic() + timeout
    while not RESTART_RESULT_FILE.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    result = RESTART_RESULT_FILE.read_text() if RESTART_RESULT_FILE.exists() else "no answer"
    print(f"make up: {result}")
    return 0 if result.startswith("restarted") else 1


def main() -> None:
    parser = argparse.ArgumentParser(description="Run Pedidos Veloz locally.")
    parser.add_argument("command", choices=["up", "migrate", "restart"])
    args = parser.parse_args()
    if args.command == "migrate":
        Platform(server_url=server_url_from_environment()).migrate()
        return
    sys.exit(up() if args.command == "up" else restart())


if __name__ == "__main__":
    main()
