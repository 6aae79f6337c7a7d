"""What both servers read from the environment (gunicorn at the gateway, veloz.run.gunicorn_conf;
granian inside, veloz.run.granian), and what each of their workers does once its app is built.
EdgeSettings are the gateway's alone: what its gunicorn worker allows a client.

A worker's boot leaves behind everything that lives as long as the worker (modules, the app,
its routes, schemas and compiled statements), so it leaves the cycle collector's generations
for good (`gc.freeze`) and full collections stop walking it; then the thresholds of
GC_THRESHOLDS. Measured on the order path: 3-8 % less CPU per paid order and a lower p99
(bench/README.md).
"""

import gc
import math
import os
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

# CPython's default is 700,10,10: a young-generation pass every 700 net container
# allocations, each older generation after every 10 passes of the one below.
DEFAULT_THRESHOLDS = "5000,20,50"


METRICS_BIND = "METRICS_BIND"
# Where the gateway serves /metrics when METRICS_BIND is unset: loopback, so nothing off the
# machine reads it. Images set 0.0.0.0:9102 (Prometheus scrapes the pod or container); 9102,
# beside the workers' 9101 and 9103.
GATEWAY_METRICS_BIND = "127.0.0.1:9102"


# Worker processes of a service under granian when WEB_CONCURRENCY is unset: one. A
# service's crashed worker then costs the blip two crashed workers cost (granian forks a new
# one in a fraction of a second, and its callers' connect budget sends again what was
# refused), and on two cores one worker per service measured 11-22 % less CPU per paid order
# and a quarter lower p99 than two (bench/README.md). The gateway, which clients reach
# directly, keeps two: its crashed worker's twin goes on answering them.
GRANIAN_WORKERS = 1
GUNICORN_WORKERS = 2  # the gateway's, when WEB_CONCURRENCY is unset


@dataclass(frozen=True)
class ServerSettings:
    bind: str  # host:port
    workers: int  # WEB_CONCURRENCY
    # GUNICORN_THREADS: granian's blocking threads per worker inside the platform. The gateway's
    # gevent worker has no request threads: its bound is EdgeSettings.worker_connections.
    threads: int
    graceful_timeout: int  # seconds a stopping worker has to finish its requests
    gc_thresholds: tuple[int, int, int]
    metrics_bind: str | None = None  # METRICS_BIND: /metrics on this listener alone

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] = os.environ, *,
                         default_workers: int = GUNICORN_WORKERS) -> "ServerSettings":
        """A bad GC_THRESHOLDS stops the process here, before any worker starts.
        `default_workers`: WEB_CONCURRENCY when unset (the gateway's gunicorn 2, a service's
        granian GRANIAN_WORKERS)."""
        return cls(bind=environ.get("BIND", "127.0.0.1:8000"),
                   workers=int(environ.get("WEB_CONCURRENCY", str(default_workers))),
                   threads=int(environ.get("GUNICORN_THREADS", "4")),
                   graceful_timeout=int(environ.get("GRACEFUL_TIMEOUT", "10")),
                   gc_thresholds=gc_thresholds(environ.get("GC_THRESHOLDS",
                                                           DEFAULT_THRESHOLDS)),
                   metrics_bind=environ.get(METRICS_BIND) or None)


def listener_port(bind: str, name: str) -> int:
    """The port of a `host:port` address, or the process stops here naming the setting."""
    _host, colon, port = bind.rpartition(":")
    if not colon or not port.isdigit() or not 0 < int(port) < 65536:
        raise SystemExit(f"{name} must be host:port, as 0.0.0.0:9102: {bind!r}")
    return int(port)


def metrics_listener(settings: ServerSettings) -> str:
    """The gateway's second listener, the only one that answers /metrics (see
    veloz.web.app.serve_metrics_only_on): METRICS_BIND, else GATEWAY_METRICS_BIND. Its
    port must differ from BIND's, since the app tells the two apart by the port a
    connection arrived on."""
    bind = settings.metrics_bind or GATEWAY_METRICS_BIND
    if listener_port(bind, METRICS_BIND) == listener_port(settings.bind, "BIND"):
        raise SystemExit(f"METRICS_BIND must be another port than BIND: {bind!r}")
    return bind


def metrics_port(environ: Mapping[str, str] = os.environ) -> int | None:
    """The port of METRICS_BIND; None when unset, as under granian (one listener, which
    keeps /metrics) or in a test client."""
    bind = environ.get(METRICS_BIND)
    return listener_port(bind, METRICS_BIND) if bind else None


@dataclass(frozen=True)
class EdgeSettings:
    """What the gateway's gunicorn worker (veloz.run.gunicorn_workers.ProblemGeventWorker) allows a
    client. That worker gives each connection a greenlet, not a thread, so a slow client holds
    memory but no request thread, and these bounds are what stops one holding it for long."""

    worker_connections: int = 1000  # GUNICORN_WORKER_CONNECTIONS: open connections per worker
    header_timeout: float = 10.0  # REQUEST_HEADER_TIMEOUT_SECONDS: head, from its first byte
    body_timeout: float = 10.0  # REQUEST_BODY_TIMEOUT_SECONDS: body, from the end of the head
    max_connections_per_client: int = 100  # MAX_CONNECTIONS_PER_CLIENT, per worker; 0: none
    body_budget_bytes: int = 64 * 1024 * 1024  # REQUEST_BODY_BUDGET_BYTES: bodies held at once

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] = os.environ) -> "EdgeSettings":
        """A bad value stops the process here: the gunicorn master, before any worker starts."""
        return cls(
            worker_connections=_count(environ, "GUNICORN_WORKER_CONNECTIONS", "1000", least=1),
            header_timeout=_seconds(environ, "REQUEST_HEADER_TIMEOUT_SECONDS", "10"),
            body_timeout=_seconds(environ, "REQUEST_BODY_TIMEOUT_SECONDS", "10"),
            max_connections_per_client=_count(environ, "MAX_CONNECTIONS_PER_CLIENT", "100",
                                              least=0),
            body_budget_bytes=_count(environ, "REQUEST_BODY_BUDGET_BYTES", str(64 * 1024 * 1024),
                                     least=1))


def _count(environ: Mapping[str, str], name: str, default: str, *, least: int) -> int:
    value = environ.get(name, default)
    try:
        number = int(value)
    except ValueError:
        raise SystemExit(f"{name} must be an integer: {value!r}") from None
    if number < least:
        raise SystemExit(f"{name} must be at least {least}: {value!r}")
    return number


def _seconds(environ: Mapping[str, str], name: str, default: str) -> float:
    value = environ.get(name, default)
    try:
        seconds = float(value)
    except ValueError:
        raise SystemExit(f"{name} must be a number of seconds: {value!r}") from None
    if not (math.isfinite(seconds) and seconds > 0):
        raise SystemExit(f"{name} must be a positive number of seconds: {value!r}")
    return seconds


def gc_thresholds(value: str) -> tuple[int, int, int]:
    """Three positive integers, or the process stops here, before any worker starts."""
    try:
        young, middle, old = (int(part) for part in value.split(","))
    except ValueError:
        raise SystemExit(f"GC_THRESHOLDS must be three integers, as 5000,20,50: "
                         f"{value!r}") from None
    if min(young, middle, old) < 1:
        raise SystemExit(f"GC_THRESHOLDS must be positive: {value!r}")
    return young, middle, old


def settle_collector(thresholds: tuple[int, int, int]) -> None:
    """Call once the worker's app is built."""
    gc.freeze()
    gc.set_threshold(*thresholds)


# set by `make up` (veloz.dev.devstack) for a surge-then-drain restart
READY_DIR = "VELOZ_READY_DIR"


def mark_ready(environ: Mapping[str, str] = os.environ) -> None:
    """Tell whoever started this server that one more worker has built its app: a file named
    after the worker's pid in VELOZ_READY_DIR (unset outside `make up`: nothing to do).
    `make restart` waits for every worker of the new server before it stops the old one."""
    folder = environ.get(READY_DIR)
    if folder:
        Path(folder, str(os.getpid())).touch()


DRAIN_FILE = "DRAIN_FILE"  # the marker veloz.run.drain (a pod's preStop hook) leaves


def draining(environ: Mapping[str, str] = os.environ) -> bool:
    """Has this pod been told to stop? Then /readyz fails, so nothing new is routed here while
    the server finishes what it has. Unset (as under `make up`): never."""
    marker = environ.get(DRAIN_FILE)
    return marker is not None and Path(marker).exists()


class DrainWatch:
    """`draining()` for the hot path: the marker is looked at no more than every `every`
    seconds (one stat), and once it is there the answer stays yes."""

    def __init__(self, every: float = 0.1, clock=time.monotonic):
        self.every, self._clock = every, clock
        self._seen, self._next_look = False, 0.0

    def __call__(self) -> bool:
        if not self._seen and self._clock() >= self._next_look:
            self._seen = draining()
            self._next_look = self._clock() + self.every
        return self._seen


def request_slots(environ: Mapping[str, str] = os.environ) -> int:
    """Requests one server worker can hold at once: its request threads, or under the gateway's
    gevent worker (threads monkey-patched into greenlets) its connections."""
    if _greenlets_for_threads():
        return EdgeSettings.from_environment(environ).worker_connections
    return ServerSettings.from_environment(environ).threads


def _greenlets_for_threads() -> bool:
    monkey = sys.modules.get("gevent.monkey")
    return monkey is not None and monkey.is_module_patched("threading")
