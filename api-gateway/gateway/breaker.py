"""A per-backend circuit breaker that opens on evidence and lets calls run concurrently.

pybreaker holds its lock for the whole protected call, which would queue every gunicorn
thread behind one slow backend; here the lock only guards the counters.

It used to open after a few failures in a row, so a backend worker restarting for 0.3 s
(a handful of refused connections) paused all calls to it for seconds. Now it opens only
when, within a sliding time window, enough calls were made (`minimum_calls`) and a large
enough share of them failed (`failure_ratio`) — the resilience4j time-based / Polly
"advanced" breaker. Once open it probes again soon (`open_seconds`) and backs off,
doubling up to `max_open_seconds`, only while the probes keep failing.
"""

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Generic, TypeVar

from gateway import telemetry
from veloz.core.errors import ServiceUnavailable
from veloz.net.client import UpstreamTimeout, UpstreamUnavailable

log = logging.getLogger(__name__)
R = TypeVar("R")
# The backend did not answer in time or could not be reached: evidence it is unwell.
# Any other exception is the caller's own bug or input and says nothing about the backend.
FAILURE_ERRORS: tuple[type[Exception], ...] = (UpstreamTimeout, UpstreamUnavailable)


class CircuitOpen(ServiceUnavailable):
    title, slug = "Upstream circuit open", "circuit-open"


class State(Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half-open"


@dataclass(frozen=True)
class BreakerPolicy:
    """When a circuit opens and how long it stays open; defaults match GatewaySettings."""

    failure_ratio: float = 0.5
    minimum_calls: int = 20
    window_seconds: float = 10.0
    window_buckets: int = 10
    open_seconds: float = 1.0
    max_open_seconds: float = 30.0
    half_open_calls: int = 3


class SlidingWindow:
    """Calls and failures of the last `seconds`, kept in a ring of `buckets` time slices.

    Recording is O(1): stale slices are cleared as time moves past them (at most one pass
    over the ring), and running totals spare summing the ring on every call. The window
    therefore spans between `seconds - seconds / buckets` and `seconds` of history.
    """

    def __init__(self, seconds: float, buckets: int):
        self._slice_seconds = seconds / buckets
        self._calls = [0] * buckets
        self._failures = [0] * buckets
        self._newest: int | None = None  # absolute number of the newest time slice
        self.calls = self.failures = 0

    def record(self, now: float, failed: bool) -> None:
        slot = self._advance_to(now)
        self._calls[slot] += 1
        self.calls += 1
        if failed:
            self._failures[slot] += 1
            self.failures += 1

    def clear(self) -> None:
        for slot in range(len(self._calls)):
            self._clear(slot)
        self._newest = None

    def _advance_to(self, now: float) -> int:
        """Forget the slices that slid out of the window; the ring slot `now` falls in."""
        current = math.floor(now / self._slice_seconds)
        if current == self._newest:  # most calls: still in the newest slice
            return current % len(self._calls)
        newest = current if self._newest is None else self._newest
        for number in range(newest + 1, min(current, newest + len(self._calls)) + 1):
            self._clear(number % len(self._calls))
        self._newest = max(newest, current)
        return self._newest % len(self._calls)

    def _clear(self, slot: int) -> None:
        self.calls -= self._calls[slot]
        self.failures -= self._failures[slot]
        self._calls[slot] = self._failures[slot] = 0


class CircuitBreaker(Generic[R]):
    """Closed: every call runs and its outcome goes into a sliding window; the circuit opens
    when the window holds at least `minimum_calls` calls of which at least `failure_ratio`
    failed. Open: calls are refused with `CircuitOpen` until `open_seconds` have passed.
    Half-open: up to `half_open_calls` probes run; one failing reopens the circuit for twice
    as long (capped at `max_open_seconds`), all of them succeeding closes it.

    A failure is an exception in FAILURE_ERRORS or an answer `is_failure` says is one (a 5xx
    from the backend: it was reached but is broken). Other exceptions propagate uncounted.
    """

    def __init__(self, name: str, policy: BreakerPolicy, is_failure: Callable[[R], bool],
                 clock: Callable[[], float] = time.monotonic):
        self.name, self.policy = name, policy
        self._is_failure, self._clock = is_failure, clock
        self._lock = threading.Lock()
        self._window = SlidingWindow(policy.window_seconds, policy.window_buckets)
        self._open_for, self._opened_at = policy.open_seconds, 0.0
        self._probes_admitted = self._probes_passed = 0
        # Bumped on every transition, so a call admitted in an earlier state (a slow call
        # that began while closed and ends while half-open) is not mistaken for a probe.
        self._generation = 0
        self.state = State.CLOSED
        telemetry.record_breaker_state(name, State.CLOSED.value)

    def call(self, send: Callable[[], R]) -> R:
        """Run `send` unless the circuit is open, then count its outcome. The answer is
        returned as it came, a 5xx included; the lock is never held while `send` runs."""
        generation = self._admit()
        try:
            result = send()
        except FAILURE_ERRORS:
            self._record(generation, failed=True)
            raise
        except BaseException:
            self._release(generation)
            raise
        self._record(generation, failed=self._is_failure(result))
        return result

    def _admit(self) -> int:
        """The generation the call runs in, or CircuitOpen when it may not run now."""
        with self._lock:
            if self.state is State.OPEN:
                wait = self._opened_at + self._open_for - self._clock()
                if wait > 0:
                    raise self._refusal(wait)
                self._half_open()
            if self.state is State.HALF_OPEN:
                if self._probes_admitted >= self.policy.half_open_calls:
                    raise self._refusal(0)  # probes in flight; the next verdict is near
                self._probes_admitted += 1
            return self._generation

    def _record(self, generation: int, failed: bool) -> None:
        """Count a finished call: into the window while closed, as a probe's verdict while
        half-open. The outcome of a call admitted before the last transition is dropped."""
        with self._lock:
            if generation != self._generation:
                return
            if self.state is State.CLOSED:
                self._window.record(self._clock(), failed)
                if self._has_enough_evidence():
                    self._open(self.policy.open_seconds)
            elif failed:
                self._open(min(self._open_for * 2, self.policy.max_open_seconds))
            else:
                self._probes_passed += 1
                if self._probes_passed >= self.policy.half_open_calls:
                    self._close()

    def _release(self, generation: int) -> None:
        """A probe that ended in an uncounted exception gives its place to another probe."""
        with self._lock:
            if generation == self._generation and self.state is State.HALF_OPEN:
                self._probes_admitted -= 1

    def _has_enough_evidence(self) -> bool:
        window = self._window
        return (window.calls >= self.policy.minimum_calls
                and window.failures / window.calls >= self.policy.failure_ratio)

    def _refusal(self, wait: float) -> CircuitOpen:
        return CircuitOpen(f"{self.name} is failing; calls to it are paused.",
                           headers={"Retry-After": str(max(1, math.ceil(wait)))})

    def _open(self, seconds: float) -> None:
        log.warning("circuit opened", extra={"upstream": self.name})
        self._enter(State.OPEN)
        self._opened_at, self._open_for = self._clock(), seconds

    def _half_open(self) -> None:
        self._enter(State.HALF_OPEN)
        self._probes_admitted = self._probes_passed = 0

    def _close(self) -> None:
        log.info("circuit closed", extra={"upstream": self.name})
        self._enter(State.CLOSED)
        self._open_for = self.policy.open_seconds
        self._window.clear()

    def _enter(self, state: State) -> None:
        self.state = state
        self._generation += 1
        telemetry.record_breaker_state(self.name, state.value)
