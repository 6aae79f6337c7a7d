"""A per-backend circuit breaker that lets calls run concurrently.

pybreaker holds its lock for the whole protected call, which would queue every gunicorn
thread behind one slow backend; here the lock only guards the counters.
"""

import logging
import math
import threading
import time
from collections.abc import Callable
from enum import Enum
from typing import TypeVar

from veloz import metrics
from veloz.errors import ServiceUnavailable

log = logging.getLogger(__name__)
T = TypeVar("T")


class CircuitOpen(ServiceUnavailable):
    title, slug = "Upstream circuit open", "circuit-open"


class State(Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half-open"


class CircuitBreaker:
    """Opens after `failure_threshold` failures in a row; after `reset_seconds` one probe call
    is let through (half-open): success closes the circuit, failure opens it again."""

    def __init__(self, name: str, failure_threshold: int, reset_seconds: float,
                 clock: Callable[[], float] = time.monotonic):
        self.name = name
        self.failure_threshold, self.reset_seconds = failure_threshold, reset_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._failures, self._opened_at = 0, 0.0
        self.state = State.CLOSED
        metrics.record_breaker_state(name, State.CLOSED.value)

    def call(self, send: Callable[[], T]) -> T:
        """Run `send` unless the circuit is open; any exception it raises counts as a failure."""
        self._admit()
        failed = True
        try:
            result = send()
            failed = False
            return result
        finally:
            self._settle(failed)

    def _admit(self) -> None:
        with self._lock:
            if self.state is State.CLOSED:
                return
            wait = self._opened_at + self.reset_seconds - self._clock()
            if self.state is State.OPEN and wait <= 0:
                self.state = State.HALF_OPEN  # this caller is the probe
                metrics.record_breaker_state(self.name, State.HALF_OPEN.value)
                return
        raise CircuitOpen(f"{self.name} is failing; calls to it are paused.",
                          headers={"Retry-After": str(max(1, math.ceil(wait)))})

    def _settle(self, failed: bool) -> None:
        with self._lock:
            if not failed:
                self._close()
            elif self.state is State.HALF_OPEN or self._failures + 1 >= self.failure_threshold:
                self._open()
            else:
                self._failures += 1

    def _open(self) -> None:
        if self.state is not State.OPEN:
            log.warning("circuit opened", extra={"upstream": self.name})
            metrics.record_breaker_state(self.name, State.OPEN.value)
        self.state, self._opened_at, self._failures = State.OPEN, self._clock(), 0

    def _close(self) -> None:
        if self.state is not State.CLOSED:
            log.info("circuit closed", extra={"upstream": self.name})
            metrics.record_breaker_state(self.name, State.CLOSED.value)
        self.state, self._failures = State.CLOSED, 0
