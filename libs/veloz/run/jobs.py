"""Background workers (estoque's sweeper, pedidos' recovery): drain a queue of work in batches
every interval until SIGTERM/SIGINT, surviving a database that is briefly away. With
METRICS_PORT set, a worker serves its own /metrics there."""

import logging
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.exc import SQLAlchemyError

from veloz.core.settings import DatabaseSettings
from veloz.data.db import Database
from veloz.telemetry import metrics
from veloz.telemetry.logs import configure_logging
from veloz.telemetry.tracing import configure_tracing

log = logging.getLogger(__name__)


def drain(take_one: Callable[[], object | None], batch_size: int) -> int:
    """Call `take_one` until it returns None or `batch_size` were handled; returns how many."""
    handled = 0
    while handled < batch_size and take_one() is not None:
        handled += 1
    return handled


def run_every(interval_seconds: float, batch: Callable[[], int], batch_size: int,
              stop: threading.Event, *, what: str, name: str) -> None:
    """Run `batch` until `stop`; a full batch runs again at once, a partial one waits.
    `name` labels the worker's metrics (default: its module, `estoque.sweeper` ->
    `estoque-sweeper`)."""
    metrics.start_worker_metrics(name)
    while not stop.is_set():
        try:
            with metrics.observe_worker_batch(name) as done:
                handled = batch()
                done(handled)
        except SQLAlchemyError:
            log.exception("%s failed; retrying next interval", what)
            handled = 0
        if handled:
            log.info(what, extra={"count": handled})
        if handled < batch_size:
            stop.wait(interval_seconds)


@dataclass(frozen=True)
class Job:
    """A worker's work. `start(db)`, called once, gives the function that handles one unit
    and returns it (None when none is left); `what` names a batch in the logs."""

    name: str  # also its metrics' `worker` label, e.g. "estoque-sweeper"
    what: str
    start: Callable[[Database], Callable[[], object | None]]
    interval_seconds: float
    batch_size: int


def serve(job: Job, settings: DatabaseSettings, stop: threading.Event | None = None) -> None:
    """A worker process from start to clean stop: JSON logs, a database pool of its own, and
    batches every interval until SIGTERM/SIGINT (or `stop`)."""
    configure_logging(job.name, settings.log_level)
    configure_tracing(job.name)
    db = Database.for_service(job.name, settings)
    take_one = job.start(db)
    log.info("%s started", job.name, extra={"interval_s": job.interval_seconds})
    run_every(job.interval_seconds, lambda: drain(take_one, job.batch_size), job.batch_size,
              stop or stop_on_signals(), what=job.what, name=job.name)
    db.dispose()
    log.info("%s stopped", job.name)


def stop_on_signals() -> threading.Event:
    """An event set by SIGTERM or SIGINT, for a clean stop between batches."""
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    return stop
