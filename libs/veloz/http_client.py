"""Calls to other services: pooled keep-alive connections, explicit (connect, read) timeouts,
retries with backoff only for idempotent calls, and the current request id passed on."""

import logging
import os
import threading
from dataclasses import dataclass

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import MaxRetryError, ReadTimeoutError
from urllib3.util.retry import Retry

from veloz.errors import GatewayTimeout, ServiceUnavailable
from veloz.logs import request_id_var
from veloz.tracing import outgoing_call

log = logging.getLogger(__name__)
RETRYABLE_STATUSES = (502, 503, 504)


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
    # Calls that never reached the service (refused, connect timeout) are always retried.
    # A read timeout is not by default: against a frozen service every retry costs another
    # full timeout. A 502/503/504 answer is retried with backoff unless `retry_statuses` is
    # False (the gateway passes the service's own answer on instead).
    retry_read_timeouts: bool = False
    retry_statuses: bool = True


class ServiceClient:
    """One per downstream service. Sessions are built lazily in each process (fork-safe)."""

    def __init__(self, name: str, base_url: str, policy: ClientPolicy | None = None):
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.policy = policy or ClientPolicy()
        self._lock = threading.Lock()
        self._owner_pid: int | None = None
        self._sessions: dict[bool, requests.Session] = {}

    def request(self, method: str, path: str, *, idempotent: bool | None = None,
                headers: dict | None = None, timeout: tuple[float, float] | None = None,
                **kwargs) -> requests.Response:
        """Send one call. `idempotent` defaults to the HTTP method's semantics; pass True for
        a POST that carries an Idempotency-Key or that the callee deduplicates."""
        retry_safe = method.upper() in ("GET", "HEAD", "PUT", "DELETE", "OPTIONS") \
            if idempotent is None else idempotent
        sent = self._headers(headers)
        try:
            with outgoing_call(method, self.name, sent) as record_status:
                response = self._session(retry_safe).request(
                    method, f"{self.base_url}{path}", headers=sent,
                    timeout=timeout or (self.policy.connect_timeout, self.policy.read_timeout),
                    **kwargs)
                record_status(response.status_code)
                return response
        except requests.ReadTimeout:
            raise UpstreamTimeout(f"{self.name} did not answer in time.") from None
        except requests.ConnectionError as error:
            if _read_timed_out(error):
                raise UpstreamTimeout(f"{self.name} did not answer in time.") from None
            log.warning("upstream unreachable", extra={"upstream": self.name,
                                                       "error_type": type(error).__name__})
            raise UpstreamUnavailable(f"{self.name} is unreachable.") from None
        except requests.RequestException as error:
            # e.g. the connection dropped mid-body because the service died while answering.
            log.warning("upstream answer broken", extra={"upstream": self.name,
                                                         "error_type": type(error).__name__})
            raise UpstreamUnavailable(f"{self.name} broke off its answer.") from None

    def _headers(self, extra: dict | None) -> dict:
        headers = dict(extra or {})
        request_id = request_id_var.get()
        if request_id:
            headers.setdefault("X-Request-ID", request_id)
        return headers

    def _session(self, retry_safe: bool) -> requests.Session:
        if self._owner_pid != os.getpid():
            with self._lock:
                if self._owner_pid != os.getpid():
                    self._sessions = {safe: self._new_session(safe) for safe in (True, False)}
                    self._owner_pid = os.getpid()
        return self._sessions[retry_safe]

    def _new_session(self, retry_safe: bool) -> requests.Session:
        retries = self.policy.retries if retry_safe else 0
        on_status = retries if self.policy.retry_statuses else 0
        retry = Retry(
            total=retries, connect=retries, status=on_status,
            read=retries if self.policy.retry_read_timeouts else 0,
            allowed_methods=None,  # the caller decided the call is safe to repeat
            status_forcelist=RETRYABLE_STATUSES if on_status else (),
            backoff_factor=self.policy.backoff_seconds, backoff_jitter=0.1,
            respect_retry_after_header=True, raise_on_status=False,
        )
        session = requests.Session()
        # Services call each other directly: no proxy or netrc lookups from the environment,
        # which requests would otherwise repeat on every call.
        session.trust_env = False
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=self.policy.pool_size,
                              max_retries=retry)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        return session

    def close(self) -> None:
        for session in self._sessions.values():
            session.close()
        self._sessions, self._owner_pid = {}, None


def _read_timed_out(error: requests.ConnectionError) -> bool:
    """With retries, urllib3 wraps the last read timeout in MaxRetryError."""
    cause = error.args[0] if error.args else None
    return isinstance(cause, MaxRetryError) and isinstance(cause.reason, ReadTimeoutError)
