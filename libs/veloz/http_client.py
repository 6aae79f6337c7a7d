"""Calls to other services: pooled keep-alive connections, explicit (connect, read) timeouts,
retries with backoff only for idempotent calls, and the current request id passed on.

Built on urllib3 directly: every order makes four service-to-service calls, and requests'
per-call work (session merging, hooks, cookie jars, its own Response) cost about a fifth of
the CPU of the services that call out. The answer is urllib3's response, body read."""

import logging
import os
import threading
import time
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlencode, urlsplit

from urllib3 import BaseHTTPResponse, Timeout
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import HTTPError, MaxRetryError, ReadTimeoutError
from urllib3.util import parse_url
from urllib3.util.retry import Retry

from veloz.errors import GatewayTimeout, ServiceUnavailable
from veloz.logs import request_id_var
from veloz.tracing import outgoing_call

if TYPE_CHECKING:
    from urllib3._base_connection import BaseHTTPConnection

log = logging.getLogger(__name__)
RETRYABLE_STATUSES = (502, 503, 504)
SAFE_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})


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
    # Calls that never reached the service (refused, connect timeout) and safe calls whose
    # connection broke before the answer are retried, `retries` times. A read timeout is not by
    # default: against a frozen service every retry costs another full timeout. A 502/503/504
    # answer is retried with backoff unless `retry_statuses` is False (the gateway passes the
    # service's own answer on instead).
    retry_read_timeouts: bool = False
    retry_statuses: bool = True


class ServiceClient:
    """One per downstream service. Its connection pool is built lazily in each process
    (fork-safe); `request` is safe to call from many threads."""

    def __init__(self, name: str, base_url: str, policy: ClientPolicy | None = None):
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
                params: dict | None = None,
                timeout: tuple[float, float] | None = None) -> BaseHTTPResponse:
        """Send one call and read its answer. `idempotent` defaults to the HTTP method's
        semantics; pass True for a POST that carries an Idempotency-Key or that the callee
        deduplicates."""
        retry_safe = method in SAFE_METHODS if idempotent is None else idempotent
        sent = self._headers(headers)
        target = f"{self._prefix}{path}?{urlencode(params)}" if params else self._prefix + path
        try:
            with outgoing_call(method, self.name, sent) as record_status:
                response = self._connections().urlopen(
                    method, target, body=body, headers=sent, retries=self._retries[retry_safe],
                    timeout=Timeout(*timeout) if timeout else self._timeout, redirect=False,
                    assert_same_host=False)
                record_status(response.status)
                return response
        except (MaxRetryError, ReadTimeoutError) as error:
            if _read_timed_out(error):
                raise UpstreamTimeout(f"{self.name} did not answer in time.") from None
            self._warn("upstream unreachable", error)
            raise UpstreamUnavailable(f"{self.name} is unreachable.") from None
        except HTTPError as error:
            # e.g. the connection dropped mid-body because the service died while answering.
            self._warn("upstream answer broken", error)
            raise UpstreamUnavailable(f"{self.name} broke off its answer.") from None

    def _warn(self, message: str, error: Exception) -> None:
        log.warning(message, extra={"upstream": self.name, "error_type": type(error).__name__})

    def _headers(self, extra: dict | None) -> dict:
        headers = dict(extra) if extra else {}
        request_id = request_id_var.get()
        if request_id:
            headers.setdefault("X-Request-ID", request_id)
        return headers

    def _connections(self) -> HTTPConnectionPool:
        if self._owner_pid != os.getpid() or self._pool is None:
            with self._lock:
                if self._owner_pid != os.getpid() or self._pool is None:
                    self._pool = _pool_for(self.base_url, self.policy)
                    self._owner_pid = os.getpid()
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
    on a new connection, and a read timeout still follows `retry_read_timeouts`."""

    def _is_read_error(self, err: Exception) -> bool:
        return isinstance(err, ReadTimeoutError)


class _ReopensIdleConnections(HTTPConnectionPool):
    """Closes a pooled connection that sat idle for longer than `idle_seconds` before lending
    it, as urllib3 does for one it finds dropped; the next call opens it again."""

    def __init__(self, *args, idle_seconds: float, **kwargs):
        super().__init__(*args, **kwargs)
        self.idle_seconds = idle_seconds
        self._idle_since: weakref.WeakKeyDictionary[BaseHTTPConnection, float] = (
            weakref.WeakKeyDictionary())

    def _get_conn(self, timeout: float | None = None) -> "BaseHTTPConnection":
        connection = super()._get_conn(timeout)
        idle_since = self._idle_since.pop(connection, None)
        if idle_since is not None and time.monotonic() - idle_since > self.idle_seconds:
            connection.close()
        return connection

    def _put_conn(self, conn: "BaseHTTPConnection | None") -> None:
        if conn is not None:
            self._idle_since[conn] = time.monotonic()
        super()._put_conn(conn)


class _ReopensIdleTlsConnections(_ReopensIdleConnections, HTTPSConnectionPool):
    pass


def _pool_for(base_url: str, policy: ClientPolicy) -> HTTPConnectionPool:
    url = parse_url(base_url)
    pool = _ReopensIdleTlsConnections if url.scheme == "https" else _ReopensIdleConnections
    return pool(url.host, url.port, maxsize=policy.pool_size, idle_seconds=policy.idle_seconds)


def _read_timed_out(error: HTTPError) -> bool:
    """With retries, urllib3 wraps the last read timeout in MaxRetryError."""
    reason = error.reason if isinstance(error, MaxRetryError) else error
    return isinstance(reason, ReadTimeoutError)
