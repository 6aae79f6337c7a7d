"""Calls to other services: pooled keep-alive connections, explicit (connect, read) timeouts,
retries with backoff only for idempotent calls, and the current request id passed on. A call
that never reached its service (refused, connect timeout) is sent again whatever its method,
until it gets through or its connect budget runs out: a service whose workers are respawning
refuses connections for a moment, and that moment should not become a failed order.

Built on the standard library's http.client, with a pool of kept connections per service
(`ConnectionPool`) and the retries written out in `ServiceClient._send`: a call through
urllib3's pool (its retry and timeout objects, its response wrapper) costs 548k instructions,
one through http.client 221k, and this client over it 263k (loadtest/call_instructions.py);
a paid order makes four calls (the gateway's, pedidos' three). The answer is an `Answer`:
status, headers (http.client's message, read by veloz.net.headers) and body, read whole."""

import errno
import http.client
import json
import logging
import random
import ssl
import threading
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlencode, urlsplit

from veloz.core.errors import GatewayTimeout, ServiceUnavailable
from veloz.core.process import current_pid, readable_now
from veloz.net import headers
from veloz.telemetry.logs import request_id_var
from veloz.telemetry.tracing import outgoing_call, pass_on_incoming, recording

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
BACKOFF_JITTER_SECONDS = 0.1
# A service asking for more than this before a resend is answered with its own 503 instead.
MAX_RETRY_AFTER_SECONDS = 5.0
# A worker that dies resets every connection it held, kept ones that do not show it yet among
# them, and its listening socket goes an instant later: a connection opened at once can land in
# that socket's queue and be reset with it. So a safe call whose connection broke goes out
# again on a new connection, no sooner than this after the break.
SETTLE_AFTER_BREAK_SECONDS = 0.05
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
    # Before the n-th resend after a failed attempt (n >= 2): backoff_seconds * 2**(n-1), plus
    # up to BACKOFF_JITTER_SECONDS; the first resend goes at once. A 503's Retry-After in
    # seconds is waited instead, up to MAX_RETRY_AFTER_SECONDS.
    backoff_seconds: float = 0.2
    # Idle connections kept per service (and process); more calls at once open more, closed
    # when they come back to a full pool.
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


@dataclass(frozen=True, slots=True)
class Answer:
    """A service's answer, read whole: `headers` is http.client's message (`get` ignores the
    case of a name, `items` keeps the order and spelling sent)."""

    status: int
    headers: http.client.HTTPMessage
    data: bytes

    def json(self) -> Any:
        return json.loads(self.data)


class ServiceClient:
    """One per downstream service. Its connection pool is built lazily in each process
    (fork-safe); `request` is safe to call from many threads."""

    def __init__(self, name: str, base_url: str, policy: ClientPolicy | None = None):
        headers.install()  # answers' headers read without the email package (veloz.net.headers)
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.policy = policy or ClientPolicy()
        self._prefix = urlsplit(self.base_url).path
        self._lock = threading.Lock()
        self._owner_pid: int | None = None
        self._pool: ConnectionPool | None = None

    def request(self, method: str, path: str, *, idempotent: bool | None = None,
                headers: dict | None = None, body: bytes | None = None,
                params: dict | None = None, timeout: tuple[float, float] | None = None,
                connect_budget: float | None = None) -> Answer:
        """Send one call and read its answer. `idempotent` defaults to the HTTP method's
        semantics; pass True for a POST that carries an Idempotency-Key or that the callee
        deduplicates. `timeout` and `connect_budget` override the policy's for this call."""
        retry_safe = method in SAFE_METHODS if idempotent is None else idempotent
        sent = self._headers(headers)
        target = f"{self._prefix}{path}?{urlencode(params)}" if params else self._prefix + path
        connect, read = timeout or (self.policy.connect_timeout, self.policy.read_timeout)
        budget = _ConnectBudget(self.policy.connect_budget_seconds if connect_budget is None
                                else connect_budget, connect, read)
        call = Call(method, target, body, sent, retry_safe)
        try:
            if not recording():  # no span: the caller's traceparent goes on as it came
                pass_on_incoming(sent)
                return self._send(call, budget)
            with outgoing_call(method, self.name, sent) as record_status:
                answer = self._send(call, budget)
                record_status(answer.status)
                return answer
        except _NeverSent as failed:  # and the budget is spent
            self._warn("upstream unreachable", failed.error, budget)
            raise UpstreamUnavailable(f"{self.name} is unreachable.") from None
        except _TimedOut:
            raise UpstreamTimeout(f"{self.name} did not answer in time.") from None
        except _CannotConnect as failed:
            self._warn("upstream unreachable", failed.error, budget)
            raise UpstreamUnavailable(f"{self.name} is unreachable.") from None
        except _Broken as failed:
            # Refused after it connected, reset, or cut off mid-answer (the service died).
            self._warn("upstream answer broken", failed.error, budget)
            raise UpstreamUnavailable(f"{self.name} broke off its answer.") from None

    def _send(self, call: "Call", budget: "_ConnectBudget") -> Answer:
        """The call, and again: after an attempt that never reached the service while the
        budget lasts (any method); after a broken connection, a read timeout (when the policy
        says so) or a 502/503/504 (idem) `retries` times in all, if the call is safe."""
        resends, failures, connect = self.policy.retries if call.retry_safe else 0, 0, None
        fresh = False  # on a new connection, not a kept one
        while True:
            try:
                answer = self._connections().exchange(call, connect or budget.connect_timeout,
                                                      budget.read_timeout, fresh=fresh)
            except _NeverSent:
                if not budget.wait_for_next_attempt():
                    raise
                connect = budget.attempt_connect_timeout()
                continue
            except (_Broken, _TimedOut) as failed:
                if not (resends and self._resends_after(failed)):
                    raise
                wait = self._wait_after(failed, failures + 1)
                fresh = isinstance(failed, _Broken)  # see SETTLE_AFTER_BREAK_SECONDS
            else:
                resend_in = self._wait_to_resend(answer, failures + 1) if resends else None
                if resend_in is None:
                    return self._reached(answer, budget)
                wait = resend_in
            resends, failures = resends - 1, failures + 1
            time.sleep(wait)

    def _wait_after(self, failed: "_AttemptFailed", failures: int) -> float:
        """Seconds before the resend after `failures` failed attempts in a row, the last one
        `failed`: after a broken connection, SETTLE_AFTER_BREAK_SECONDS at least."""
        wait = self._backoff(failures)
        return max(wait, SETTLE_AFTER_BREAK_SECONDS) if isinstance(failed, _Broken) else wait

    def _resends_after(self, failed: "_AttemptFailed") -> bool:
        return not isinstance(failed, _TimedOut) or self.policy.retry_read_timeouts

    def _wait_to_resend(self, answer: Answer, failures: int) -> float | None:
        """Seconds to wait before sending the call again after `answer`; None: it is the
        call's answer (a 502/503/504 is resent unless the policy says no or a 503 asks for more
        than MAX_RETRY_AFTER_SECONDS)."""
        if answer.status not in RETRYABLE_STATUSES or not self.policy.retry_statuses:
            return None
        asked = _retry_after(answer)
        if asked is None:
            return self._backoff(failures)
        return asked if asked <= MAX_RETRY_AFTER_SECONDS else None

    def _reached(self, answer: Answer, budget: "_ConnectBudget") -> Answer:
        if budget.attempts > 1:
            log.info("upstream reached after retries", extra=self._context(budget))
        return answer

    def _backoff(self, failures: int) -> float:
        """Seconds before the resend after `failures` failed attempts in a row."""
        if failures <= 1:
            return 0.0
        jitter = random.uniform(0, BACKOFF_JITTER_SECONDS)  # noqa: S311 - not crypto
        return self.policy.backoff_seconds * 2 ** (failures - 1) + jitter

    def _warn(self, message: str, error: BaseException, budget: "_ConnectBudget") -> None:
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

    def _connections(self) -> "ConnectionPool":
        if self._owner_pid != current_pid() or self._pool is None:  # built, and not by a parent
            with self._lock:
                if self._owner_pid != current_pid() or self._pool is None:
                    self._pool = ConnectionPool(self.base_url, size=self.policy.pool_size,
                                                idle_seconds=self.policy.idle_seconds)
                    self._owner_pid = current_pid()
        return self._pool

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
        self._pool, self._owner_pid = None, None


@dataclass(frozen=True, slots=True)
class Call:
    method: str
    target: str
    body: bytes | None
    headers: dict
    retry_safe: bool


class ConnectionPool:
    """Kept-alive connections to one service, the last one given back lent first (the one
    least likely to have been closed by the server). Before it is lent, a kept connection is
    closed instead if it sat idle past `idle_seconds` or the kernel holds something to read on
    it (the server closed it, or sent what nobody asked for): one zero-timeout poll, the
    kernel's even under gevent (veloz.core.process.readable_now)."""

    def __init__(self, base_url: str, *, size: int, idle_seconds: float):
        url = urlsplit(base_url)
        self.scheme, self.host = url.scheme, url.hostname or ""
        default_port = 443 if self.scheme == "https" else 80
        self.port = url.port or default_port
        self.size, self.idle_seconds = size, idle_seconds
        self._tls = ssl.create_default_context() if self.scheme == "https" else None
        self._host = headers.host_header(self.host, self.port, default_port)
        self._kept: list[tuple[http.client.HTTPConnection, float]] = []
        self._lock = threading.Lock()

    def exchange(self, call: Call, connect_timeout: float, read_timeout: float, *,
                 fresh: bool = False) -> Answer:
        """One attempt: the call sent on a kept connection, or a new one (always with `fresh`),
        and its answer read whole. Raises _NeverSent when connecting failed (nothing was sent),
        _TimedOut when the service took longer than `read_timeout` to take the call or answer,
        _Broken when the connection failed on the way."""
        connection = (None if fresh else self._lend()) or self._open(connect_timeout)
        try:
            connection.sock.settimeout(read_timeout)
            self._send_request(connection, call)
            answer = connection.getresponse()
            data = answer.read()
        except TimeoutError as error:
            connection.close()
            raise _TimedOut(error) from error
        except (OSError, http.client.HTTPException) as error:
            connection.close()
            raise _Broken(error) from error
        if connection.sock is not None:  # http.client let go of it if the answer closes it
            self._keep(connection)
        return Answer(answer.status, answer.headers, data)

    def _send_request(self, connection: http.client.HTTPConnection, call: Call) -> None:
        """`connection.request(...)`, its header lines written by veloz.net.headers in one
        pass instead of one `putheader` call each (the request line is still http.client's,
        which keeps the connection's state)."""
        connection.putrequest(call.method, call.target, skip_host=True,
                              skip_accept_encoding=True)
        connection._output(  # type: ignore[attr-defined]  # http.client's own line buffer
            headers.request_head(self._host, call.method, call.headers, call.body))
        connection.endheaders(call.body)

    def _lend(self) -> http.client.HTTPConnection | None:
        with self._lock:
            while self._kept:
                connection, since = self._kept.pop()
                if (time.monotonic() - since <= self.idle_seconds
                        and not readable_now(connection.sock.fileno())):
                    return connection
                connection.close()
        return None

    def _open(self, connect_timeout: float) -> http.client.HTTPConnection:
        connection = (http.client.HTTPSConnection(self.host, self.port, timeout=connect_timeout,
                                                  context=self._tls)
                      if self._tls is not None else
                      http.client.HTTPConnection(self.host, self.port, timeout=connect_timeout))
        try:
            connection.connect()
        except OSError as error:
            connection.close()
            raise (_NeverSent(error) if _never_sent(error) else _CannotConnect(error)) from error
        return connection

    def _keep(self, connection: http.client.HTTPConnection) -> None:
        with self._lock:
            if len(self._kept) < self.size:
                self._kept.append((connection, time.monotonic()))
                return
        connection.close()

    def close(self) -> None:
        with self._lock:
            kept, self._kept = self._kept, []
        for connection, _since in kept:
            connection.close()


class _AttemptFailed(Exception):
    """One attempt of a call failed; `error` says how."""

    def __init__(self, error: BaseException):
        super().__init__(error)
        self.error = error


class _NeverSent(_AttemptFailed):
    """Connecting failed, so not one byte of the call reached the service."""


class _Broken(_AttemptFailed):
    """The connection failed after the call may have gone out: sent again only if safe."""


class _CannotConnect(_Broken):
    """Connecting failed in a way waiting rarely cures (a name that does not resolve, a failed
    TLS handshake): sent again, like a broken call, only if safe."""


class _TimedOut(_AttemptFailed):
    """The service did not take the call or answer within the read timeout."""


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

    def attempt_connect_timeout(self) -> float:
        """The call's connect timeout, cut to what is left of the budget."""
        left = max(self.deadline - time.monotonic(), MIN_CONNECT_TIMEOUT_SECONDS)
        return min(self.connect_timeout, left)


def _connect_backoff(failed_attempts: int) -> float:
    """Full jitter: a random wait below an exponential ceiling that stops at the cap."""
    ceiling = CONNECT_BACKOFF_FIRST_SECONDS * 2 ** min(failed_attempts - 1, 16)
    return random.uniform(0, min(ceiling, CONNECT_BACKOFF_CAP_SECONDS))  # noqa: S311 - not crypto


def _never_sent(error: OSError) -> bool:
    """Whether connect() failed in a way that says the service is not there right now, which
    makes sending the call again safe whatever its method (nothing of it was written):

    - a timeout: the TCP handshake did not finish in time (the service's accept queue is full,
      or its host drops the packets);
    - ECONNREFUSED: nothing listens on the port (the service is down, restarting, or its
      server is respawning workers);
    - ECONNRESET or ECONNABORTED: the handshake was torn down before it completed (the
      service's listener closing under it);
    - EHOSTUNREACH or ENETUNREACH: no route to the host or its network right now (its
      container is gone, being replaced).

    Left out: a name that does not resolve, a failed TLS handshake and local failures (out of
    ports or files), which waiting rarely cures."""
    return isinstance(error, TimeoutError) or error.errno in _NOT_CONNECTED_ERRNOS


def _retry_after(answer: Answer) -> float | None:
    """The seconds a 503's Retry-After asks for (a number of seconds or a date); None without
    one that can be read."""
    value = answer.headers.get("Retry-After") if answer.status == 503 else None
    if not value:
        return None
    try:
        seconds = (float(value) if value.strip().isdigit()
                   else parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None
    return max(seconds, 0.0)
