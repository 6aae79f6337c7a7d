"""Every metric of the platform, named once: RED per route, platform, gateway, workers, business.

Counters and histograms are module-level prometheus_client objects; under a server of several
worker processes (PROMETHEUS_MULTIPROC_DIR set) their values live in per-process files that
/metrics adds up, so a count is right whichever worker served the request. Gauges say how
workers combine: `livesum` for amounts each worker holds a share of, `livemax` for "any worker
sees it".

State that the database already knows (orders mid-saga, units held, items at or below the
low-stock threshold, connections) is read at scrape time by `DatabaseStateCollector` instead
of being kept in counters: it is right after any restart, needs no code on the write path,
and costs a few indexed COUNT/SUM queries per scrape. Every replica reports the same number,
so queries aggregate it with `max`, never `sum`.

Labels are bounded: every recording function maps a value it does not know to "other", and
no id, customer or free text ever becomes a label.
"""

import logging
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder, start_http_server
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)
# Every metric has a label, so none shows up (as a zero) in a process that never records it.
disable_created_metrics()  # the *_created series only double the series count
OTHER = "other"
UNMATCHED_ROUTE = "<unmatched>"

# --- RED per route ------------------------------------------------------------------------
# Recorded by every service's request hooks (veloz.web.app), under the names and labels
# prometheus-flask-exporter gives them (dashboards and alerts were written against those);
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
# Not in the RED metrics: the probes and the scrape itself.
UNMEASURED_PATHS = frozenset({"/metrics", "/livez", "/readyz"})


def record_request(service: str, method: str, route_template: str, status: int,
                   seconds: float) -> None:
    """One answered request: its duration per route template, and the count per status."""
    code = str(status)
    HTTP_DURATION.labels(method, route_template, code, service).observe(seconds)
    HTTP_REQUESTS.labels(method, code, service).inc()


def record_unhandled(service: str, method: str) -> None:
    """A request whose error escaped every handler (Flask then answers a bare 500)."""
    HTTP_EXCEPTIONS.labels(method, "500", service).inc()


def route(request) -> str:
    """The route template of a request (never its raw path): the label `route` of the RED
    metrics and the `route` field of the access log. An app may name its own templates with
    `app.extensions["route_namer"]` (the gateway does, for its catch-all proxy routes)."""
    from flask import current_app

    named = request.environ.get("veloz.route")  # the metrics, the log line and the span ask
    if named is None:
        namer = current_app.extensions.get("route_namer")
        named = (namer(request) if namer is not None else
                 request.url_rule.rule if request.url_rule is not None else UNMATCHED_ROUTE)
        request.environ["veloz.route"] = named
    return named


# --- platform (every service) --------------------------------------------------------------
REQUESTS_IN_FLIGHT = Gauge(
    "veloz_http_requests_in_flight", "Requests being served right now",
    ["service"], multiprocess_mode="livesum")
WORKER_THREADS = Gauge(
    "veloz_http_worker_threads",
    "Requests the live server workers can hold at once: request threads (granian), "
    "connections (the gateway's gevent worker)",
    ["service"], multiprocess_mode="livesum")

# --- background workers (estoque sweeper, pedidos recovery) -------------------------------
WORKER_BATCHES = Counter("veloz_worker_batches_total", "Batches a background worker ran",
                         ["worker"])
WORKER_ITEMS = Counter("veloz_worker_items_total", "Items a background worker handled",
                       ["worker"])
WORKER_FAILURES = Counter("veloz_worker_failures_total",
                          "Batches that failed on a database error", ["worker"])
WORKER_LAST_SUCCESS = Gauge(
    "veloz_worker_last_success_timestamp_seconds", "When a batch last finished without error",
    ["worker"], multiprocess_mode="max")

# --- api-gateway ---------------------------------------------------------------------------
BACKENDS = frozenset({"pedidos", "pagamentos", "estoque"})
BACKEND_ERROR_KINDS = frozenset({"timeout", "unreachable", "circuit_open", "server_error"})
BREAKER_STATES = {"closed": 0, "half-open": 1, "open": 2}
REJECTIONS = {401: "unauthorized", 403: "forbidden", 429: "rate_limited"}

BACKEND_LATENCY = Histogram(
    "gateway_backend_request_duration_seconds",
    "Time the gateway waited for a backend (answers, timeouts and refusals alike)",
    ["backend"], buckets=HTTP_BUCKETS)
BACKEND_ERRORS = Counter(
    "gateway_backend_errors_total",
    "Proxied calls that failed: timeout, unreachable, circuit_open, server_error (5xx answer)",
    ["backend", "kind"])
BREAKER_STATE = Gauge(
    "gateway_circuit_breaker_state",
    "Circuit breaker per backend: 0 closed, 1 half-open, 2 open (worst live worker)",
    ["backend"], multiprocess_mode="livemax")
BREAKER_OPENED = Counter("gateway_circuit_breaker_opened_total",
                         "Times a backend's circuit opened", ["backend"])
GATEWAY_REJECTIONS = Counter(
    "gateway_requests_rejected_total",
    "Requests the gateway itself refused: unauthorized (401), forbidden (403), "
    "rate_limited (429)", ["reason"])


def declare_backend(backend: str) -> None:
    """Create a backend's series at zero, so its error rate reads 0 rather than nothing
    before its first failure."""
    backend = _bounded(backend, BACKENDS)
    BACKEND_LATENCY.labels(backend)
    for kind in BACKEND_ERROR_KINDS:
        BACKEND_ERRORS.labels(backend, kind)


def record_backend_call(backend: str, seconds: float, error_kind: str | None = None) -> None:
    backend = _bounded(backend, BACKENDS)
    BACKEND_LATENCY.labels(backend).observe(seconds)
    if error_kind is not None:
        record_backend_error(backend, error_kind)


def record_backend_error(backend: str, kind: str) -> None:
    BACKEND_ERRORS.labels(_bounded(backend, BACKENDS), _bounded(kind, BACKEND_ERROR_KINDS)).inc()


def record_breaker_state(backend: str, state: str) -> None:
    backend = _bounded(backend, BACKENDS)
    BREAKER_STATE.labels(backend).set(BREAKER_STATES[state])
    if state == "open":
        BREAKER_OPENED.labels(backend).inc()


def record_gateway_rejection(status: int) -> None:
    """Count a 401/403/429 the gateway answered itself; other statuses are ignored."""
    if status in REJECTIONS:
        GATEWAY_REJECTIONS.labels(REJECTIONS[status]).inc()


# --- pedidos: orders and the purchase saga -------------------------------------------------
ORDER_STATUSES = ("paid", "rejected", "payment_declined", "failed", "cancelled")
SETTLE_REASONS = {
    "paid": {"approved", "recovered"},
    "rejected": {"insufficient_stock", "unknown_items", "amount_out_of_range", "unpriced_items"},
    "payment_declined": {"card_declined", "insufficient_funds", "risk_declined"},
    "failed": {"estoque_unavailable", "pagamentos_unavailable", "reservation_expired",
               "payment_mismatch", "recovered_before_reservation", "recovered_no_payment",
               "recovered_payment_mismatch", "recovered_no_reservation",
               "recovered_reservation_expired", "unpriced_items"},
    "cancelled": {"requested"},
}
SAGA_STEPS = frozenset({"reserve", "charge", "commit", "compensate"})
COMPENSATION_TRIGGERS = frozenset({"payment_declined", "saga_failed", "cancellation",
                                   "recovery"})
COMPENSATION_OUTCOMES = frozenset({"completed", "incomplete"})
RECOVERY_ACTIONS = frozenset({"committed", "failed", "compensation_finished", "postponed"})
ORDER_VALUE_BUCKETS_BRL = (10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 25000)
SAGA_STEP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

ORDERS_SETTLED = Counter(
    "pedidos_orders_settled_total", "Orders that reached a final status, by status and reason",
    ["status", "reason"])
ORDER_VALUE = Histogram(
    "pedidos_order_value_brl", "Total of each settled order that had one, in BRL, by status "
    "(status=paid is revenue)", ["status"], buckets=ORDER_VALUE_BUCKETS_BRL)
SAGA_STEP_LATENCY = Histogram(
    "pedidos_saga_step_duration_seconds", "Duration of one saga step (one participant call)",
    ["step"], buckets=SAGA_STEP_BUCKETS)
COMPENSATIONS = Counter(
    "pedidos_compensations_total",
    "Compensations run (refund and stock return), by what triggered them and how they ended",
    ["trigger", "outcome"])
RECOVERIES = Counter(
    "pedidos_recoveries_total", "Orders the recovery worker handled, by what it did",
    ["action"])


# Reconciliation of pedidos' orders with pagamentos' payments (pedidos.reconciliation).
DISAGREEMENT_KINDS = ("paid_without_payment", "payment_without_paid_order")
BOOKS_DISAGREEMENTS = Gauge(
    "pedidos_books_disagreements",
    "Orders and payments on which the two books disagree past the grace period, by kind, as "
    "the last reconciliation found them", ["kind"], multiprocess_mode="livemax")
RECONCILIATION_LAST_SUCCESS = Gauge(
    "pedidos_reconciliation_last_success_timestamp_seconds",
    "When a reconciliation last compared both books", multiprocess_mode="max")


def record_reconciliation(counts: dict[str, int]) -> None:
    """The mismatches one reconciliation found, by kind (every kind set, 0 when none)."""
    for kind in DISAGREEMENT_KINDS:
        BOOKS_DISAGREEMENTS.labels(kind).set(counts.get(kind, 0))
    RECONCILIATION_LAST_SUCCESS.set(time.time())


def record_order_settled(status: str, reason: str, total: Decimal | None = None) -> None:
    """An order reached a final status; `reason` is one of SETTLE_REASONS[status] and `total`
    its value in BRL once estoque priced it (None before that)."""
    status = _bounded(status, ORDER_STATUSES)
    ORDERS_SETTLED.labels(status, _bounded(reason, SETTLE_REASONS.get(status, ()))).inc()
    if total is not None:
        ORDER_VALUE.labels(status).observe(float(total))


@contextmanager
def observe_saga_step(step: str) -> Iterator[None]:
    """Time one saga step, whether it succeeds or raises."""
    started = time.perf_counter()
    try:
        yield
    finally:
        SAGA_STEP_LATENCY.labels(_bounded(step, SAGA_STEPS)).observe(
            time.perf_counter() - started)


def record_compensation(trigger: str, completed: bool) -> None:
    COMPENSATIONS.labels(_bounded(trigger, COMPENSATION_TRIGGERS),
                         "completed" if completed else "incomplete").inc()


def record_recovery(action: str) -> None:
    RECOVERIES.labels(_bounded(action, RECOVERY_ACTIONS)).inc()


# --- pagamentos ----------------------------------------------------------------------------
PAYMENT_STATUSES = frozenset({"approved", "declined"})
DECLINE_REASONS = frozenset({"card_declined", "insufficient_funds", "risk_declined"})
PAYMENT_METHODS = frozenset({"credit_card", "debit_card", "pix", "boleto"})

PAYMENTS = Counter(
    "pagamentos_payments_total", "Charges decided, by status, decline reason and method",
    ["status", "decline_reason", "method"])
REFUNDS = Counter("pagamentos_refunds_total", "Payments refunded (first refund only), by method",
                  ["method"])


def record_payment(status: str, decline_reason: str | None, method: str) -> None:
    reason = "none" if decline_reason is None else _bounded(decline_reason, DECLINE_REASONS)
    PAYMENTS.labels(_bounded(status, PAYMENT_STATUSES), reason,
                    _bounded(method, PAYMENT_METHODS)).inc()


def record_refund(method: str) -> None:
    REFUNDS.labels(_bounded(method, PAYMENT_METHODS)).inc()


# --- estoque -------------------------------------------------------------------------------
RESERVATION_OUTCOMES = frozenset({"granted", "refused", "expired", "released", "committed"})
LOW_STOCK_THRESHOLD = 5  # an item with this many units or fewer available is low on stock

RESERVATIONS = Counter(
    "estoque_reservations_total",
    "Stock holds by outcome: granted, refused (short stock), expired, released, committed",
    ["outcome"])


def record_reservation(outcome: str) -> None:
    RESERVATIONS.labels(_bounded(outcome, RESERVATION_OUTCOMES)).inc()


# --- state read from the database at scrape time --------------------------------------------
@dataclass(frozen=True)
class StateQuery:
    """One gauge whose value is the single number `sql` returns."""

    name: str
    documentation: str
    sql: str


STATE_QUERIES: dict[str, tuple[StateQuery, ...]] = {
    "pedidos-service": (
        StateQuery("pedidos_orders_in_flight", "Orders mid-saga (pending or stock_reserved)",
                   "SELECT count(*) FROM orders WHERE status IN ('pending', 'stock_reserved')"),
        StateQuery("pedidos_orders_oldest_in_flight_age_seconds",
                   "Age of the oldest order still mid-saga (0 when none is)",
                   "SELECT coalesce(extract(epoch FROM now() - min(created_at)), 0) "
                   "FROM orders WHERE status IN ('pending', 'stock_reserved')"),
        StateQuery("pedidos_orders_compensation_pending",
                   "Failed orders whose refund or stock return is still unconfirmed",
                   "SELECT count(*) FROM orders WHERE compensation_pending"),
    ),
    "estoque-service": (
        StateQuery("estoque_units_held", "Units held by open reservations",
                   "SELECT coalesce(sum(reserved), 0) FROM items WHERE deleted_at IS NULL"),
        StateQuery("estoque_items_low_stock",
                   "Items with estoque_low_stock_threshold or fewer units available",
                   "SELECT count(*) FROM items WHERE deleted_at IS NULL "
                   "AND quantity <= :threshold"),
    ),
}
CONNECTIONS_SQL = (
    "SELECT application_name, coalesce(state, 'unknown'), count(*) FROM pg_stat_activity "
    "WHERE datname = current_database() GROUP BY 1, 2")
KNOWN_CONNECTION_STATES = frozenset({"active", "idle", "idle in transaction",
                                     "idle in transaction (aborted)", "fastpath function call",
                                     "disabled", "unknown"})


class DatabaseStateCollector(Collector):
    """Reads a service's state gauges and its PostgreSQL connections at scrape time."""

    def __init__(self, service: str, database, low_stock_threshold: int = LOW_STOCK_THRESHOLD):
        self.service, self.database = service, database
        self.queries = STATE_QUERIES.get(service, ())
        self.low_stock_threshold = low_stock_threshold

    def collect(self) -> Iterable[Metric]:
        from sqlalchemy import text
        from sqlalchemy.exc import SQLAlchemyError

        up = GaugeMetricFamily("veloz_state_scrape_ok",
                               "1 when the database state could be read at this scrape",
                               labels=["service"])
        try:
            with self.database.reading() as session:
                session.execute(text("SET LOCAL statement_timeout = 2000"))
                values = [session.execute(text(query.sql),
                                          {"threshold": self.low_stock_threshold}).scalar_one()
                          for query in self.queries]
                connections = session.execute(text(CONNECTIONS_SQL)).all()
        except SQLAlchemyError as error:
            log.warning("database state unreadable", extra={"error_type": type(error).__name__})
            up.add_metric([self.service], 0)
            yield up
            return
        up.add_metric([self.service], 1)
        yield up
        yield from self._state(values)
        yield self._connections(connections)

    def _state(self, values: list) -> Iterator[Metric]:
        for query, value in zip(self.queries, values, strict=True):
            yield GaugeMetricFamily(query.name, query.documentation, value=float(value))
        if self.service == "estoque-service":
            yield GaugeMetricFamily("estoque_low_stock_threshold",
                                    "Units available at or below which an item is low on stock",
                                    value=self.low_stock_threshold)

    def _connections(self, rows) -> Metric:
        family = GaugeMetricFamily(
            "veloz_db_connections", "PostgreSQL connections to this service's database",
            labels=["service", "application", "state"])
        for application, state, count in rows:
            family.add_metric([self.service, _application(self.service, application),
                               _bounded(state, KNOWN_CONNECTION_STATES)], count)
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


def _bounded(value: str | None, allowed: Iterable[str]) -> str:
    return value if value is not None and value in allowed else OTHER
