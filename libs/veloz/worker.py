"""Background workers (estoque's sweeper, pedidos' recovery): drain a queue of work in batches
every interval until SIGTERM/SIGINT, surviving a database that is briefly away."""

import logging
import signal
import threading
from collections.abc import Callable

from sqlalchemy.exc import SQLAlchemyError

log = logging.getLogger(__name__)


def drain(take_one: Callable[[], object | None], batch_size: int) -> int:
    """Call `take_one` until it returns None or `batch_size` were handled; returns how many."""
    handled = 0
    while handled < batch_size and take_one() is not None:
        handled += 1
    return handled


def run_every(interval_seconds: float, batch: Callable[[], int], batch_size: int,
              stop: threading.Event, *, what: str) -> None:
    """Run `batch` until `stop`; a full batch runs again at once, a partial one waits."""
    while not stop.is_set():
        try:
            handled = batch()
        except SQLAlchemyError:
            log.exception("%s failed; retrying next interval", what)
            handled = 0
        if handled:
            log.info(what, extra={"count": handled})
        if handled < batch_size:
            stop.wait(interval_seconds)


def stop_on_signals() -> threading.Event:
    """An event set by SIGTERM or SIGINT, for a clean stop between batches."""
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    return stop
