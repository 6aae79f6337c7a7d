"""What both servers read from the environment (gunicorn at the gateway, veloz.gunicorn_conf;
granian inside, veloz.serve), and what each of their workers does once its app is built.

A worker's boot leaves behind everything that lives as long as the worker (modules, the app,
its routes, schemas and compiled statements), so it leaves the cycle collector's generations
for good (`gc.freeze`) and full collections stop walking it; then the thresholds of
GC_THRESHOLDS. Measured on the order path: 3-8 % less CPU per paid order and a lower p99
(bench/README.md).
"""

import gc
import os
from collections.abc import Mapping
from dataclasses import dataclass

# CPython's default is 700,10,10: a young-generation pass every 700 net container
# allocations, each older generation after every 10 passes of the one below.
DEFAULT_THRESHOLDS = "5000,20,50"


@dataclass(frozen=True)
class ServerSettings:
    bind: str  # host:port
    workers: int  # WEB_CONCURRENCY
    threads: int  # GUNICORN_THREADS: request threads per worker, under either server
    graceful_timeout: int  # seconds a stopping worker has to finish its requests
    gc_thresholds: tuple[int, int, int]

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] = os.environ) -> "ServerSettings":
        """A bad GC_THRESHOLDS stops the process here, before any worker starts."""
        return cls(bind=environ.get("BIND", "127.0.0.1:8000"),
                   workers=int(environ.get("WEB_CONCURRENCY", "2")),
                   threads=int(environ.get("GUNICORN_THREADS", "4")),
                   graceful_timeout=int(environ.get("GRACEFUL_TIMEOUT", "10")),
                   gc_thresholds=gc_thresholds(environ.get("GC_THRESHOLDS",
                                                           DEFAULT_THRESHOLDS)))


def gc_thresholds(value: str) -> tuple[int, int, int]:
    """Three positive integers, or the process stops here, before any worker starts."""
    try:
        young, middle, old = (int(part) for part in value.split(","))
    except ValueError:
        raise SystemExit(f"GC_THRESHOLDS must be three integers, as 5000,20,50: "
                         f"{value!r}") from None
    if min(young, middle, old) < 1:
        raise SystemExit(f"GC_THRESHOLDS must be positive: {value!r}")
    return young, middle, old


def settle_collector(thresholds: tuple[int, int, int]) -> None:
    """Call once the worker's app is built."""
    gc.freeze()
    gc.set_threshold(*thresholds)
