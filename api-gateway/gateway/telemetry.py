"""The gateway's own metrics: its calls to the backends, their circuit breakers, and the
requests it refused itself. The RED metrics of its routes are every service's
(veloz.web.request_metrics).

Label values are bounded (veloz.telemetry.metrics.bounded): one a set below does not list is
counted as "other" and logged; tests/test_telemetry.py keeps the sets equal to what the
gateway really says (its backends' names, its breaker's states).
"""

from prometheus_client import Counter, Gauge, Histogram

from veloz.telemetry.metrics import HTTP_BUCKETS, bounded

# The services behind the gateway (backends.ROUTES names their paths, config their URLs).
BACKENDS = frozenset({"pedidos", "pagamentos", "estoque"})
# How a proxied call failed (backends.Backend.send).
BACKEND_ERROR_KINDS = frozenset({"timeout", "unreachable", "circuit_open", "server_error"})
# breaker.State's values, as the gauge's numbers (State cannot be imported: breaker imports
# this module).
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
    backend = _backend(backend)
    BACKEND_LATENCY.labels(backend)
    for kind in BACKEND_ERROR_KINDS:
        BACKEND_ERRORS.labels(backend, kind)


# backend name -> its latency series, looked up once (labels() checks and locks every call).
_latency: dict[str, Histogram] = {}


def record_backend_call(backend: str, seconds: float, error_kind: str | None = None) -> None:
    series = _latency.get(backend)
    if series is None:
        series = _latency[backend] = BACKEND_LATENCY.labels(_backend(backend))
    series.observe(seconds)
    if error_kind is not None:
        record_backend_error(backend, error_kind)


def record_backend_error(backend: str, kind: str) -> None:
    BACKEND_ERRORS.labels(_backend(backend),
                          bounded(kind, BACKEND_ERROR_KINDS, label="kind")).inc()


def record_breaker_state(backend: str, state: str) -> None:
    """A breaker changed state; `state` is one of BREAKER_STATES (an unknown one raises
    KeyError: the gauge has no number for it)."""
    backend = _backend(backend)
    BREAKER_STATE.labels(backend).set(BREAKER_STATES[state])
    if state == "open":
        BREAKER_OPENED.labels(backend).inc()


def record_gateway_rejection(status: int) -> None:
    """Count a 401/403/429 the gateway answered itself; other statuses are ignored."""
    if status in REJECTIONS:
        GATEWAY_REJECTIONS.labels(REJECTIONS[status]).inc()


def _backend(name: str) -> str:
    return bounded(name, BACKENDS, label="backend")
