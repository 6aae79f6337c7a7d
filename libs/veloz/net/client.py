"""Calls to other services: pooled keep-alive connections, explicit (connect, read) timeouts,
retries with backoff only for idempotent calls, and the current request id passed on. A call
that never reached its service (refused, connect timeout) is sent again whatever its method,
until it gets through or its connect budget runs out: a service whose workers are respawning
refuses connections for a moment, and that moment should not become a failed order.

Built on urllib3 directly: every order makes four service-to-service calls, and requests'
per-call work (session merging, hooks, cookie jars, its own Response) cost about a fifth of
the CPU of the services that call out. The answer is urllib3's response, body read."""

import errno
import logging
import random
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Self
from urllib.parse import urlencode, urlsplit

from urllib3 import BaseHTTPResponse, Timeout
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    MaxRetryError,
    NewConnectionError,
    ReadTimeoutError,
)
from urllib3.util import parse_url
from urllib3.util.retry import Retry

from veloz.core.errors import GatewayTimeout, ServiceUnavailable
from veloz.core.process import current_pid, readable_now
from veloz.net import headers
from veloz.telemetry.logs import request_id_var
from veloz.telemetry.tracing import outgoing_call, pass_on_incoming, recording

if TYPE_CHECKING:
    from types import TracebackType

    from urllib3._base_connection import BaseHTTPConnection
    from urllib3.connectionpool import ConnectionPool

log = logging.getLogger(__name__)
RETRYABLE_STATUSES = (502, 503, 504)
SAFE_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
# Waits between attempts that never reached the service: exponential from FIRST, capped at CAP,
# each drawn at random below that (full jitter), so the callers a crash turned away all at once do
# not come back all at once. A granian worker respawns in about 0.3 s: the waits reach the cap
# after four attempts, about 0.2 s in, and from then on a call finds the service back up at most
# 0.25 s (0.125 s on average) after it is; a refused connect costs well under a millisecond, so
# the ~20 attempts of a 2 s budget cost the service nothing.
CONNECT_BACKOFF_FIRST_SECONDS = 0.025
CONNECT_BACKOFF_CAP_SECONDS = 0.25
# The shortest connect timeout the last attempt gets when the budget is nearly spent: enough for a
# connect within one data centre, which takes a millisecond or two.
MIN_CONNECT_TIMEOUT_SECONDS = 0.01
# connect() errors of a service that is not listening (down, restarting, respawning its workers)
# or not reachable right now; see _never_sent.
_NOT_CONNECTED_ERRNOS = frozenset({
    errno.ECONNREFUSED, errno.ECONNRESET, errno.ECONNABORTED, errno.EHOSTUNREACH,
    errno.ENETUNREACH,
})


class UpstreamUnavailable(ServiceUnavailable):
    title, slug = "Upstream service unavailable", "upstream-unavailable"


class UpstreamTimeout(GatewayTimeout):
    title, slug = "Upstream service timed out", "upstream-timeout"


@dataclass(frozen=True)
class ClientPolicy:
    connect_timeout: float = 1.0
    read_timeout: float = 5.0
    retries: int = 2
    backoff_seconds: float = 0.2
    pool_size: int = 20
    # A pooled connection silent for longer than this is reopened before use. Below the
    # servers' keep-alive (the gateway's gunicorn closes a connection after 5 s of silence;
    # granian keeps one longer): a call sent on a connection the server is closing at that
    # moment fails without being read.
    idle_seconds: float = 4.0
    # Safe calls whose connection broke before the answer are retried, `retries` times. A read
    # timeout is not by default: against a frozen service every retry costs another full timeout.
    # A 502/503/504 answer is retried with backoff unless `retry_statuses` is False (the gateway
    # passes the service's own answer on instead).
    retry_read_timeouts: bool = False
    retry_statuses: bool = True
    # Calls that never reached the service (see _never_sent) are sent again, whatever their
    # method, until this long after the call began; 0 sends them once. Two seconds cover a worker
    # respawn (~0.3 s) several times over, even on a loaded host, and give a connect timeout (1 s)
    # one more try; a service that is really down costs each call no more than that.
    connect_budget_seconds: float = 2.0


class ServiceClient:
    """One per downstream service. Its connection pool is built lazily in each process
    (fork-safe); `request` is safe to call from many threads."""

    def __init__(self, name: str, base_url: str, policy: ClientPolicy | None = None):
        headers.install()  # answers' headers read without the email package (veloz.net.headers)
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.policy = policy or ClientPolicy()
        self._prefix = urlsplit(self.base_url).path
        self._timeout = Timeout(connect=self.policy.connect_timeout,
                                read=self.policy.read_timeout)
        self._retries = {safe: self._retry(safe) for safe in (True, False)}
        self._lock = threading.Lock()
        self._owner_pid: int | None = None
        self._pool: HTTPConnectionPool | None = None

    def request(self, method: str, path: str, *, idempotent: bool | None = None,
                headers: dict | None = None, body: bytes | None = None,
                params: dict | None = None, timeout: tuple[float, float] | None = None,
                connect_budget: float | None = None) -> BaseHTTPResponse:
        """Send one call and read its answer. `idempotent` defaults to the HTTP method's
        semantics; pass True for a POST that carries an Idempotency-Key or that the callee
        deduplicates. `timeout` and `connect_budget` override the policy's for this call."""
        retry_safe = method in SAFE_METHODS if idempotent is None else idempotent
        sent = self._headers(headers)
        target = f"{self._prefix}{path}?{urlencode(params)}" if params else self._prefix + path
        connect, read = timeout or (self.policy.connect_timeout, self.policy.read_timeout)
        budget = _ConnectBudget(self.policy.connect_budget_seconds if connect_budget is None
                                else connect_budget, connect, read)
        timeouts = Timeout(connect=connect, read=read) if timeout else self._timeout
        try:
            if not recording():  # no span: the caller's traceparent goes on as it came
                pass_on_incoming(sent)
                return self._send(method, target, body, sent, self._retries[retry_safe],
                                  budget, timeouts)
            with outgoing_call(method, self.name, sent) as record_status:
                response = self._send(method, target, body, sent, self._retries[retry_safe],
                                      budget, timeouts)
                record_status(response.status)
                return response
        except _NeverSent as failed:  # and the budget is spent
            self._warn("upstream unreachable", failed.error, budget)
            raise UpstreamUnavailable(f"{self.name} is unreachable.") from None
        except (MaxRetryError, ReadTimeoutError) as error:
            if _read_timed_out(error):
                raise UpstreamTimeout(f"{self.name} did not answer in time.") from None
            self._warn("upstream unreachable", error, budget)
            raise UpstreamUnavailable(f"{self.name} is unreachable.") from None
        except HTTPError as error:
            # e.g. the connection dropped mid-body because the service died while answering.
            self._warn("upstream answer broken", error, budget)
            raise UpstreamUnavailable(f"{self.name} broke off its answer.") from None

    def _send(self, method: str, target: str, body: bytes | None, headers: dict,
              retries: Retry, budget: "_ConnectBudget", timeout: Timeout) -> BaseHTTPResponse:
        """urlopen, and again after each attempt that never reached the service while the budget
        lasts. The next attempt goes on with the retry state urllib3 had reached (503s, broken
        connections), so reaching the service late does not buy a safe call more retries."""
        while True:
            try:
                response = self._connections().urlopen(
                    method, target, body=body, headers=headers, retries=retries,
                    timeout=timeout, redirect=False, assert_same_host=False)
            except _NeverSent as failed:
                if not budget.wait_for_next_attempt():
                    raise
                retries, timeout = failed.retries, budget.attempt_timeout()
                continue
            if budget.attempts > 1:
                log.info("upstream reached after retries", extra=self._context(budget))
            return response

    def _warn(self, message: str, error: Exception, budget: "_ConnectBudget") -> None:
        log.warning(message, extra={**self._context(budget), "error_type": type(error).__name__})

    def _context(self, budget: "_ConnectBudget") -> dict:
        return {"upstream": self.name, "attempts": budget.attempts,
                "elapsed_ms": round(budget.elapsed() * 1000)}

    def _headers(self, extra: dict | None) -> dict:
        headers = dict(extra) if extra else {}
        request_id = request_id_var.get()
        if request_id:
            headers.setdefault("X-Request-ID", request_id)
        return headers

    def _connections(self) -> HTTPConnectionPool:
        if self._owner_pid != current_pid() or self._pool is None:  # built, and not by a parent
            with self._lock:
                if self._owner_pid != current_pid() or self._pool is None:
                    self._pool = _pool_for(self.base_url, self.policy)
                    self._owner_pid = current_pid()
        return self._pool

    def _retry(self, retry_safe: bool) -> Retry:
        retries = self.policy.retries if retry_safe else 0
        on_status = retries if self.policy.retry_statuses else 0
        return _Retry(
            total=retries, connect=retries, status=on_status,
            read=retries if self.policy.retry_read_timeouts else 0,
            allowed_methods=None,  # the caller decided the call is safe to repeat
            status_forcelist=RETRYABLE_STATUSES if on_status else (),
            backoff_factor=self.policy.backoff_seconds, backoff_jitter=0.1,
            respect_retry_after_header=True, raise_on_status=False, redirect=False,
        )

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
        self._pool, self._owner_pid = None, None


class _Retry(Retry):
    """urllib3 files a connection that broke before the answer (the service closed it, or
    died) under read errors, with read timeouts. Here only a read timeout is one: a broken
    connection counts against the total alone, so a call that is safe to repeat is sent again
    on a new connection, and a read timeout still follows `retry_read_timeouts`.

    An attempt that never reached the service is not urllib3's to repeat (it would count it
    against `connect` and only for safe calls): it leaves urlopen as _NeverSent, and
    ServiceClient sends it again within its connect budget. Other connect failures (a name that
    does not resolve) keep urllib3's `connect` retries."""

    def _is_read_error(self, err: Exception) -> bool:
        return isinstance(err, ReadTimeoutError)

    def increment(self, method: str | None = None, url: str | None = None,
                  response: BaseHTTPResponse | None = None, error: Exception | None = None,
                  _pool: "ConnectionPool | None" = None,
                  _stacktrace: "TracebackType | None" = None) -> Self:
        if error is not None and _never_sent(error):
            raise _NeverSent(error, self)
        return super().increment(method, url, response, error, _pool, _stacktrace)


class _NeverSent(Exception):
    """An attempt failed before one byte of the call reached the service. `retries` is the retry
    state it was made with, for the next attempt to go on from."""

    def __init__(self, error: Exception, retries: Retry):
        super().__init__(error)
        self.error, self.retries = error, retries


class _ConnectBudget:
    """How long one call may keep trying to reach its service, from when it began. No wait and
    no connect timeout runs past the deadline, so a caller waits the budget and not a connect
    timeout more. The first attempt keeps its own connect timeout: the budget is for trying
    again, and 0 turns that off."""

    def __init__(self, seconds: float, connect_timeout: float, read_timeout: float):
        self.started = time.monotonic()
        self.deadline = self.started + seconds
        self.connect_timeout, self.read_timeout = connect_timeout, read_timeout
        self.attempts = 1

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def wait_for_next_attempt(self) -> bool:
        """Sleep the backoff before attempt `attempts + 1`, cut short so the attempt still has
        MIN_CONNECT_TIMEOUT_SECONDS before the deadline; False, at once, when it would not."""
        left = self.deadline - time.monotonic() - MIN_CONNECT_TIMEOUT_SECONDS
        if left <= 0:
            return False
        time.sleep(min(_connect_backoff(self.attempts), left))
        self.attempts += 1
        return True

    def attempt_timeout(self) -> Timeout:
        """The call's timeouts, connect cut to what is left of the budget."""
        left = max(self.deadline - time.monotonic(), MIN_CONNECT_TIMEOUT_SECONDS)
        return Timeout(connect=min(self.connect_timeout, left), read=self.read_timeout)


def _connect_backoff(failed_attempts: int) -> float:
    """Full jitter: a random wait below an exponential ceiling that stops at the cap."""
    ceiling = CONNECT_BACKOFF_FIRST_SECONDS * 2 ** min(failed_attempts - 1, 16)
    return random.uniform(0, min(ceiling, CONNECT_BACKOFF_CAP_SECONDS))  # noqa: S311 - not crypto


def _never_sent(error: Exception) -> bool:
    """Whether an attempt failed before one byte of the call reached the service, which makes
    sending it again safe whatever its method. urllib3 writes a call only once connect() has
    returned, so these failures of connect() qualify:

    - ConnectTimeoutError (itself, not its NewConnectionError subclass): the TCP handshake did not
      finish in time (the service's accept queue is full, or its host drops the packets);
    - NewConnectionError from ECONNREFUSED: nothing listens on the port (the service is down,
      restarting, or its server is respawning workers);
    - NewConnectionError from ECONNRESET or ECONNABORTED: the handshake was torn down before it
      completed (the service's listener closing under it);
    - NewConnectionError from EHOSTUNREACH or ENETUNREACH: no route to the host or its network
      right now (its container is gone, being replaced).

    Left out: a name that does not resolve, and local failures (out of ports or files), which
    waiting rarely cures; and anything after connect(): the call may have been read."""
    if isinstance(error, NewConnectionError):
        cause = error.__cause__
        return isinstance(cause, OSError) and cause.errno in _NOT_CONNECTED_ERRNOS
    return isinstance(error, ConnectTimeoutError)


class _Connection(HTTPConnection):
    """urllib3's connection, asking the kernel itself whether a pooled one was dropped: urllib3
    asks before every call through the standard library's poll, which gevent replaces with an
    emulation 14x as costly (veloz.core.process.readable_now)."""

    @property
    def is_connected(self) -> bool:
        return self.sock is not None and not readable_now(self.sock.fileno())


class _TlsConnection(HTTPSConnection):
    is_connected = _Connection.is_connected


class _ReopensIdleConnections(HTTPConnectionPool):
    """Closes a pooled connection that sat idle for longer than `idle_seconds` before lending
    it, as urllib3 does for one it finds dropped; the next call opens it again. When it went
    back to the pool is written on the connection itself (IDLE_SINCE)."""

    ConnectionCls: type[HTTPConnection] = _Connection

    def __init__(self, *args, idle_seconds: float, **kwargs):
        super().__init__(*args, **kwargs)
        self.idle_seconds = idle_seconds

    def _get_conn(self, timeout: float | None = None) -> "BaseHTTPConnection":
        connection = super()._get_conn(timeout)
        idle_since = getattr(connection, IDLE_SINCE, None)
        if idle_since is not None:
            setattr(connection, IDLE_SINCE, None)
            if time.monotonic() - idle_since > self.idle_seconds:
                connection.close()
        return connection

    def _put_conn(self, conn: "BaseHTTPConnection | None") -> None:
        if conn is not None:
            setattr(conn, IDLE_SINCE, time.monotonic())
        super()._put_conn(conn)


IDLE_SINCE = "_veloz_idle_since"


class _ReopensIdleTlsConnections(_ReopensIdleConnections, HTTPSConnectionPool):
    ConnectionCls = _TlsConnection


def _pool_for(base_url: str, policy: ClientPolicy) -> HTTPConnectionPool:
    url = parse_url(base_url)
    pool = _ReopensIdleTlsConnections if url.scheme == "https" else _ReopensIdleConnections
    return pool(url.host, url.port, maxsize=policy.pool_size, idle_seconds=policy.idle_seconds)


def _read_timed_out(error: HTTPError) -> bool:
    """With retries, urllib3 wraps the last read timeout in MaxRetryError."""
    reason = error.reason if isinstance(error, MaxRetryError) else error
    return isinstance(reason, ReadTimeoutError)
