"""Per-caller rate limits: by token subject when signed in, by client address otherwise.

Built on `limits` (the library Flask-Limiter wraps) directly: the gateway has one budget per
caller across all routes, and Flask-Limiter's per-request work to find which of its many kinds
of limits apply (route, blueprint, application, exemptions, dynamic limits) cost 0.2 ms of the
gateway's 1.5 ms per proxied read. This asks the storage twice per limit and request (the
count, and when its window ends).
"""

import logging
import math
import threading
import time
from typing import NamedTuple

from flask import Flask, Request
from limits import RateLimitItem, parse_many
from limits.errors import StorageError
from limits.storage import MemoryStorage, Storage, storage_from_string
from limits.strategies import FixedWindowRateLimiter

from gateway.auth import Identity, caller
from gateway.config import GatewaySettings
from veloz.core.errors import Problem
from veloz.web.context import RequestState
from veloz.web.steps import add_answer_headers, add_request_step

UNLIMITED_PATHS = frozenset({"/health", "/livez", "/readyz", "/metrics", "/openapi.json"})
# After the shared storage failed, counts stay per process for this long before it is tried again.
STORAGE_RETRY_SECONDS = 5.0
# Every request waits on the storage: a slower answer than this counts as an outage.
STORAGE_TIMEOUT_SECONDS = 0.25
log = logging.getLogger(__name__)
# The caller's budget, which only the gateway states (a service's answer never carries them).
BUDGET_HEADERS = frozenset({f"{prefix}-{part}" for prefix in ("ratelimit", "x-ratelimit")
                            for part in ("limit", "remaining", "reset")})
_CALLER = "\x00caller\x00"  # stands for the caller in a limit's key: no caller key has one


class TooManyRequests(Problem):
    status, title, slug = 429, "Too Many Requests", "rate-limited"


class Budget(NamedTuple):
    """What is left of one limit for the caller of this request (a tuple: one is made per
    limit and request)."""

    limit: RateLimitItem
    remaining: int
    reset_at: float


class CallerBudgets:
    """One budget per caller for the whole API, in `storage_uri` (shared between replicas with
    redis://). A storage outage does not take the gateway down: counts fall back to this
    process for STORAGE_RETRY_SECONDS, then the storage is tried again."""

    def __init__(self, signed_in: str, anonymous: str, storage_uri: str):
        self.signed_in, self.anonymous = parse_many(signed_in), parse_many(anonymous)
        self._shared = FixedWindowRateLimiter(_storage(storage_uri))
        self._local = FixedWindowRateLimiter(SweptMemoryStorage())
        self._shared_down_until = 0.0
        self._switching = threading.Lock()
        self._windows: dict[RateLimitItem, tuple[str, str, int]] = {}

    def charge(self, identity: Identity | None, address: str | None) -> tuple[bool, Budget]:
        """Count one call by `identity` (anonymous: by client `address`) against its caller's
        budget: (allowed, the tightest budget)."""
        if identity is not None:
            return self.spend(f"sub:{identity.subject}", self.signed_in)
        return self.spend(f"ip:{address}", self.anonymous)

    def spend(self, key: str, limits: list[RateLimitItem]) -> tuple[bool, Budget]:
        """Count one call of `key` against every limit: (allowed, the tightest budget)."""
        try:
            return self._spend(self._limiter(), key, limits)
        except StorageError as error:
            self._fall_back(error)
            return self._spend(self._local, key, limits)

    def _spend(self, limiter: FixedWindowRateLimiter, key: str,
               limits: list[RateLimitItem]) -> tuple[bool, Budget]:
        """FixedWindowRateLimiter.hit, then its get_window_stats, asked of the storage in two
        calls instead of four: the count `incr` answers is what `get` would read back (and
        with Redis, one round trip fewer per limit)."""
        storage, allowed, tightest = limiter.storage, True, None
        for limit in limits:
            prefix, suffix, expiry = self._windows.get(limit) or self._window_of(limit)
            window = f"{prefix}{key}{suffix}"
            if isinstance(storage, SweptMemoryStorage):
                count, ends = storage.count(window, expiry)
            else:
                count = storage.incr(window, expiry)
                ends = storage.get_expiry(window)
            allowed = count <= limit.amount and allowed
            budget = Budget(limit, max(0, limit.amount - count), ends)
            if tightest is None or (budget.remaining, -budget.reset_at) < (
                    tightest.remaining, -tightest.reset_at):
                tightest = budget
        assert tightest is not None, "every caller has at least one limit"
        return allowed, tightest

    def _window_of(self, limit: RateLimitItem) -> tuple[str, str, int]:
        """What `limit.key_for(caller)` puts around the caller, and the window's length:
        worked out once per limit, not on every request."""
        prefix, _, suffix = limit.key_for(_CALLER).partition(_CALLER)
        window = self._windows[limit] = prefix, suffix, limit.get_expiry()
        return window

    def _limiter(self) -> FixedWindowRateLimiter:
        return self._local if time.monotonic() < self._shared_down_until else self._shared

    def _fall_back(self, error: StorageError) -> None:
        with self._switching:
            if time.monotonic() < self._shared_down_until:
                return
            self._shared_down_until = time.monotonic() + STORAGE_RETRY_SECONDS
        log.warning("rate limit storage unreachable; counting per process for a while",
                    extra={"error_type": type(error.storage_error).__name__,
                           "retry_in_seconds": STORAGE_RETRY_SECONDS})


class SweptMemoryStorage(MemoryStorage):
    """limits' MemoryStorage without a thread per 10 ms. Its `incr` makes sure a timer thread
    is alive that drops the windows that ended, and starts a new one when the last has run:
    under load, a thread (a greenlet, in the gateway's gevent worker) every 10 ms and a check
    on every count. Here counting sweeps the ended windows itself, at most every
    SWEEP_SECONDS, and a count in a window that ended starts a new one (as `get` has it), so
    no count outlives its window either way, and memory holds the windows of at most the last
    second more. One lock serves every key: counting is a few dictionary operations."""

    SWEEP_SECONDS = 1.0

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.timer.cancel()  # the one the constructor started
        self._next_sweep = time.monotonic() + self.SWEEP_SECONDS
        self._counting = threading.Lock()

    def incr(self, key: str, expiry: float, amount: int = 1) -> int:
        return self.count(key, expiry, amount)[0]

    def count(self, key: str, expiry: float, amount: int = 1) -> tuple[int, float]:
        """`incr`, and when the key's window ends (`get_expiry`), in one call: what the
        gateway asks of its storage on every request. A window that ended starts again
        from nothing, as `get` would have it."""
        now = time.time()
        with self._counting:
            if time.monotonic() >= self._next_sweep:
                self._next_sweep = time.monotonic() + self.SWEEP_SECONDS
                self._sweep(now)
            ends = self.expirations.get(key)
            if ends is None or ends <= now:
                ends = self.expirations[key] = now + expiry
                count = self.storage[key] = amount
            else:
                count = self.storage[key] = self.storage[key] + amount
        return count, ends

    def _sweep(self, now: float) -> None:
        for key in [key for key, ends in self.expirations.items() if ends <= now]:
            self.storage.pop(key, None)
            self.expirations.pop(key, None)
            self.locks.pop(key, None)


def _storage(uri: str) -> Storage:
    if uri.startswith("memory://"):
        return SweptMemoryStorage(uri, wrap_exceptions=True)
    timeouts = ({"socket_timeout": STORAGE_TIMEOUT_SECONDS,
                 "socket_connect_timeout": STORAGE_TIMEOUT_SECONDS}
                if uri.startswith("redis") else {})
    storage = storage_from_string(uri, wrap_exceptions=True, **timeouts)
    if not isinstance(storage, Storage):
        raise ValueError(f"{uri}: the gateway counts with a synchronous storage")
    return storage


def install_rate_limits(app: Flask, settings: GatewaySettings) -> None:
    """One budget per caller across all routes; over it -> 429 problem with Retry-After.
    Every limited answer carries the caller's budget."""
    budgets = CallerBudgets(settings.rate_limit_default, settings.rate_limit_anonymous,
                            settings.ratelimit_storage_uri)

    def spend_budget(served: Request, state: RequestState) -> None:
        if served.url_rule is None or exempt_path(served.path):
            return  # (before caller(): no token is decoded for a probe)
        identity = caller()
        if identity is not None and identity.is_admin:
            return  # an admin's calls are not counted
        allowed, budget = budgets.charge(identity, served.remote_addr)
        add_answer_headers(served, *_budget_headers(budget))
        if not allowed:
            raise _too_many(budget)

    add_request_step(app, before=spend_budget)


def _budget_headers(budget: Budget) -> tuple[tuple[str, str], ...]:
    """What every limited caller is told of its budget as this call is counted: the IETF
    draft's RateLimit-* (reset in seconds) and the customary X-RateLimit-* (reset as a Unix
    time). Digits only: stated as they are (veloz.web.steps.add_answer_headers)."""
    reset_in = max(0, math.ceil(budget.reset_at - time.time()))
    limit, remaining = str(budget.limit.amount), str(budget.remaining)
    return (("RateLimit-Limit", limit), ("RateLimit-Remaining", remaining),
            ("RateLimit-Reset", str(reset_in)), ("X-RateLimit-Limit", limit),
            ("X-RateLimit-Remaining", remaining),
            ("X-RateLimit-Reset", str(math.ceil(budget.reset_at))))


def _too_many(budget: Budget) -> TooManyRequests:
    wait = max(1, math.ceil(budget.reset_at - time.time()))
    return TooManyRequests(f"Rate limit of {budget.limit} exceeded; try again later.",
                           headers={"Retry-After": str(wait)})


def exempt_path(path: str) -> bool:
    """The probes, the scrape and the docs are not counted (nor are an admin's calls)."""
    return path in UNLIMITED_PATHS or path.startswith("/docs")
