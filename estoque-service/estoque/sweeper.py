"""Releases expired holds: `python -m estoque.sweeper`. Safe to run in several replicas,
since each hold is taken with SKIP LOCKED and released in its own transaction."""

import logging
import signal
import threading

from sqlalchemy.exc import SQLAlchemyError

from estoque import services
from estoque.app import NAME
from estoque.config import EstoqueSettings
from veloz.db import Database
from veloz.logs import configure_logging

log = logging.getLogger("estoque.sweeper")


def sweep_once(db: Database, batch_size: int) -> int:
    """Release up to `batch_size` expired holds; returns how many were released."""
    released = 0
    while released < batch_size and services.release_expired_hold(db) is not None:
        released += 1
    return released


def run(settings: EstoqueSettings, stop: threading.Event) -> None:
    db = Database.for_service(f"{NAME}-sweeper", settings)
    log.info("sweeper started", extra={"interval_s": settings.sweep_interval_seconds})
    while not stop.is_set():
        try:
            released = sweep_once(db, settings.sweep_batch_size)
        except SQLAlchemyError:
            log.exception("sweep failed; retrying next interval")
            released = 0
        if released:
            log.info("released expired holds", extra={"count": released})
        if released < settings.sweep_batch_size:
            stop.wait(settings.sweep_interval_seconds)
    db.dispose()
    log.info("sweeper stopped")


def main() -> None:
    settings = EstoqueSettings.from_env()
    configure_logging(f"{NAME}-sweeper", settings.log_level)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    run(settings, stop)


if __name__ == "__main__":
    main()
