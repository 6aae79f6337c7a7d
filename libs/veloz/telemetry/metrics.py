"""Metric mechanics every service shares, in no service's words: RED per route, the platform
and background-worker metrics, the scrape-time collectors, exposition under one or many
worker processes, and bounded labels. Each service names its own metrics, label values and
state queries in its `telemetry.py`; the Flask hooks that measure requests are in
veloz.web.request_metrics (nothing here imports Flask).

Counters and histograms are module-level prometheus_client objects; under a server of several
worker processes (PROMETHEUS_MULTIPROC_DIR set) their values live in per-process files that
/metrics adds up, so a count is right whichever worker served the request. Gauges say how
workers combine: `livesum` for amounts each worker holds a share of, `livemax` for "any worker
sees it".

State that the database already knows (a service's StateQuery list) is read at scrape time by
`DatabaseStateCollector` instead of being kept in counters: it is right after any restart,
needs no code on the write path, and costs a few indexed COUNT/SUM queries per scrape. Every
replica reports the same number, so queries aggregate it with `max`, never `sum`.

Labels are bounded (`bounded`): a value outside its label's set is counted as "other" and
logged once per label, and no id, customer or free text ever becomes a label.
"""

import logging
import os
import sys
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    values,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder, start_http_server
from prometheus_client.registry import Collector

from veloz.core.process import current_pid

log = logging.getLogger(__name__)
# Every metric has a label, so none shows up (as a zero) in a process that never records it.
disable_created_metrics()  # the *_created series only double the series count


# --- multi-process values without a system call per write -----------------------------------
# Under a multi-process server each write of a value first asks whether this process is a
# fork of the one that opened its file (os.getpid(), a system call: seven per request at the
# gateway, 3 % of its CPU per proxied read). prometheus_client asks veloz.core.process instead
# (MultiProcessValue's `process_identifier`, which must differ between processes running at
# once: it is the real pid of each, renewed by os.fork in every child).
if getattr(values.ValueClass, "_multiprocess", False):  # PROMETHEUS_MULTIPROC_DIR at import
    values.ValueClass = values.MultiProcessValue(current_pid)

OTHER = "other"
_warned_labels: set[str] = set()


def bounded(value: str | None, allowed: Collection[str], *, label: str) -> str:
    """`value` when it is one of `allowed`, else "other": a label never holds an id, a customer
    or free text. A value its service did not list is a gap in that list (each service's tests
    compare its label sets with its enums), so it is logged, once per label and without the
    value itself, which may be free text."""
    if value is not None and value in allowed:
        return value
    if label not in _warned_labels:
        _warned_labels.add(label)
        log.warning("metric label value outside its set, counted as other",
                    extra={"label": label})
    return OTHER


# --- RED per route ------------------------------------------------------------------------
# Recorded by every service's request hooks (veloz.web.request_metrics), under the names and
# labels prometheus-flask-exporter gives them (dashboards and alerts were written against those);
# the histogram's _count is the request counter per route template.
HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0)
SLO_LATENCY_SECONDS = 0.5  # one of HTTP_BUCKETS: the SLO reads that bucket
HTTP_DURATION = Histogram(
    "flask_http_request_duration_seconds", "Flask HTTP request duration in seconds",
    ["method", "route", "status", "service"], buckets=HTTP_BUCKETS)
HTTP_REQUESTS = Counter("flask_http_request_total", "Total number of HTTP requests",
                        ["method", "status", "service"])
HTTP_EXCEPTIONS = Counter(
    "flask_http_request_exceptions_total",
    "Total number of HTTP requests which resulted in an exception",
    ["method", "status", "service"])


# (service, method, route template, status) -> the two series one answer is recorded in.
# `labels()` checks and converts its values and takes a lock on every call; the label values
# of a request are bounded (route templates, methods, statuses), so each pair is looked up
# once per process and kept.
_red_series: dict[tuple[str, str, str, int], tuple[Any, Any]] = {}


def record_request(service: str, method: str, route_template: str, status: int,
                   seconds: float) -> None:
    """One answered request: its duration per route template, and the count per status."""
    key = (service, method, route_template, status)
    series = _red_series.get(key)
    if series is None:
        code = str(status)
        series = _red_series[key] = (HTTP_DURATION.labels(method, route_template, code, service),
                                     HTTP_REQUESTS.labels(method, code, service))
    duration, count = series
    duration.observe(seconds)
    count.inc()


def record_unhandled(service: str, method: str) -> None:
    """A request whose error escaped every handler (Flask then answers a bare 500)."""
    HTTP_EXCEPTIONS.labels(method, "500", service).inc()


# --- platform (every service) --------------------------------------------------------------
REQUESTS_IN_FLIGHT = Gauge(
    "veloz_http_requests_in_flight", "Requests being served right now",
    ["service"], multiprocess_mode="livesum")  # which requests count: veloz.web.request_metrics
WORKER_THREADS = Gauge(
    "veloz_http_worker_threads",
    "Requests the live server workers can hold at once: request threads (granian), "
    "connections (the gateway's gevent worker)",
    ["service"], multiprocess_mode="livesum")

# --- background workers (veloz.run.jobs) --------------------------------------------------
WORKER_BATCHES = Counter("veloz_worker_batches_total", "Batches a background worker ran",
                         ["worker"])
WORKER_ITEMS = Counter("veloz_worker_items_total", "Items a background worker handled",
                       ["worker"])
WORKER_FAILURES = Counter("veloz_worker_failures_total",
                          "Batches that failed on a database error", ["worker"])
WORKER_LAST_SUCCESS = Gauge(
    "veloz_worker_last_success_timestamp_seconds", "When a batch last finished without error",
    ["worker"], multiprocess_mode="max")


# --- state read from the database at scrape time --------------------------------------------
class StateGauge(Protocol):
    """One gauge of a service's state, read at scrape time (see DatabaseStateCollector)."""

    @property
    def name(self) -> str: ...

    @property
    def documentation(self) -> str: ...

    def read(self, session) -> float: ...


@dataclass(frozen=True)
class StateQuery:
    """A gauge whose value is the single number `sql` returns, given `parameters`."""

    name: str
    documentation: str
    sql: str
    parameters: Mapping[str, Any] = field(default_factory=dict)

    def read(self, session) -> float:
        from sqlalchemy import text

        return float(session.execute(text(self.sql), dict(self.parameters)).scalar_one())


@dataclass(frozen=True)
class StateSetting:
    """A gauge whose value is a setting the service's state queries depend on (a threshold),
    shown beside them so a panel can draw it."""

    name: str
    documentation: str
    value: float

    def read(self, session) -> float:
        return self.value


CONNECTIONS_SQL = (
    "SELECT application_name, coalesce(state, 'unknown'), count(*) FROM pg_stat_activity "
    "WHERE datname = current_database() GROUP BY 1, 2")
KNOWN_CONNECTION_STATES = frozenset({"active", "idle", "idle in transaction",
                                     "idle in transaction (aborted)", "fastpath function call",
                                     "disabled", "unknown"})


class DatabaseStateCollector(Collector):
    """Reads the state gauges a service registered and its PostgreSQL connections at scrape
    time, in one read-only transaction that may take at most 2 s."""

    def __init__(self, service: str, database, gauges: Sequence[StateGauge] = ()):
        self.service, self.database, self.gauges = service, database, tuple(gauges)

    def collect(self) -> Iterable[Metric]:
        from sqlalchemy import text
        from sqlalchemy.exc import SQLAlchemyError

        up = GaugeMetricFamily("veloz_state_scrape_ok",
                               "1 when the database state could be read at this scrape",
                               labels=["service"])
        try:
            with self.database.reading() as session:
                session.execute(text("SET LOCAL statement_timeout = 2000"))
                values = [gauge.read(session) for gauge in self.gauges]
                connections = session.execute(text(CONNECTIONS_SQL)).all()
        except SQLAlchemyError as error:
            log.warning("database state unreadable", extra={"error_type": type(error).__name__})
            up.add_metric([self.service], 0)
            yield up
            return
        up.add_metric([self.service], 1)
        yield up
        for gauge, value in zip(self.gauges, values, strict=True):
            yield GaugeMetricFamily(gauge.name, gauge.documentation, value=value)
        yield self._connections(connections)

    def _connections(self, rows) -> Metric:
        family = GaugeMetricFamily(
            "veloz_db_connections", "PostgreSQL connections to this service's database",
            labels=["service", "application", "state"])
        for application, state, count in rows:
            family.add_metric([self.service, _application(self.service, application),
                               bounded(state, KNOWN_CONNECTION_STATES, label="state")], count)
        return family


def _application(service: str, application: str) -> str:
    """application_name is set by veloz.data.db to the service or `<service>-<worker>`."""
    return application if application.startswith(service) and len(application) < 64 else OTHER


# --- CPU and memory of a service's processes --------------------------------------------------
class ProcessGroupCollector(Collector):
    """CPU and resident memory of a server's main process and its workers (or of one process).

    CPU is the main process's own plus what it reaped from dead workers (cutime/cstime) plus the
    live workers', so the total only grows when a worker is replaced; per-process counters
    summed in PromQL would instead fall and fake a reset.
    """

    def __init__(self, service: str, root_pid: Callable[[], int]):
        self.service, self.root_pid = service, root_pid
        self._tick = os.sysconf("SC_CLK_TCK")
        self._page = os.sysconf("SC_PAGE_SIZE")

    def collect(self) -> Iterable[Metric]:
        root = self.root_pid()
        stats = [stat for stat in (_proc_stat(pid) for pid in [root, *_children(root)]) if stat]
        if not stats:
            return
        cpu = CounterMetricFamily("veloz_process_cpu_seconds",
                                  "CPU time (user + system) of the service's processes",
                                  labels=["service"])
        cpu.add_metric([self.service], sum(sum(stat[10:14]) for stat in stats) / self._tick)
        memory = GaugeMetricFamily("veloz_process_resident_memory_bytes",
                                   "Resident memory of the service's processes",
                                   labels=["service"])
        memory.add_metric([self.service], sum(stat[20] for stat in stats) * self._page)
        count = GaugeMetricFamily("veloz_processes", "Live processes of the service",
                                  labels=["service"])
        count.add_metric([self.service], len(stats))
        yield from (cpu, memory, count)


def _proc_stat(pid: int) -> list[int] | None:
    """Numeric fields of /proc/<pid>/stat from field 4 (ppid) on: index 0 is ppid, 10-13 are
    utime, stime, cutime, cstime (clock ticks), 20 is rss (pages)."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw.rsplit(")", 1)[1].split()[1:]
    return [int(value) if value.lstrip("-").isdigit() else 0 for value in fields]


def _children(parent: int) -> list[int]:
    children = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            stat = _proc_stat(int(entry.name))
            if stat and stat[0] == parent:
                children.append(int(entry.name))
    return children


SERVER_PID_ENV = "VELOZ_SERVER_PID"  # set by veloz.run.granian: granian's main process


def serving_root_pid() -> int:
    """The server's main process when running in one of its workers (granian's, named by
    veloz.run.granian; gunicorn's master), else this process."""
    if os.environ.get(SERVER_PID_ENV):
        return int(os.environ[SERVER_PID_ENV])
    return os.getppid() if "gunicorn.arbiter" in sys.modules else os.getpid()


# --- exposition -----------------------------------------------------------------------------
def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def exposition(live: Iterable[Collector], accept: str | None = None) -> tuple[bytes, str]:
    """The /metrics body: every process's file-backed values under a multi-process server
    (or this process's registry otherwise), plus the collectors computed at scrape time."""
    registry = CollectorRegistry(auto_describe=False)
    if multiprocess_dir():
        from prometheus_client import multiprocess

        multiprocess.MultiProcessCollector(registry)
    else:
        registry.register(REGISTRY)
    for collector in live:
        registry.register(collector)
    encoder, content_type = choose_encoder(accept or "")
    return encoder(registry), content_type


def start_worker_metrics(worker: str) -> bool:
    """Serve /metrics of a background worker on METRICS_PORT (METRICS_HOST, default all
    interfaces) when it is set; returns whether a server was started."""
    port = os.environ.get("METRICS_PORT")
    if not port:
        return False
    registry = CollectorRegistry(auto_describe=False)
    if multiprocess_dir():
        from prometheus_client import multiprocess

        multiprocess.MultiProcessCollector(registry)
    else:
        registry.register(REGISTRY)
    registry.register(ProcessGroupCollector(worker, os.getpid))
    start_http_server(int(port), addr=os.environ.get("METRICS_HOST", "0.0.0.0"),  # noqa: S104
                      registry=registry)
    log.info("metrics served", extra={"port": int(port)})
    return True


@contextmanager
def observe_worker_batch(worker: str) -> Iterator[Callable[[int], None]]:
    """Count one batch of a background worker; call the yielded function with how many items
    it handled. A raising batch counts as a failure and re-raises."""
    handled = 0

    def done(count: int) -> None:
        nonlocal handled
        handled = count

    try:
        yield done
    except Exception:
        WORKER_FAILURES.labels(worker).inc()
        raise
    WORKER_BATCHES.labels(worker).inc()
    if handled:
        WORKER_ITEMS.labels(worker).inc(handled)
    WORKER_LAST_SUCCESS.labels(worker).set(time.time())
