"""Releases expired holds: `python -m estoque.sweeper`. Safe to run in several replicas,
since each hold is taken with SKIP LOCKED and released in its own transaction."""

import logging
import threading

from estoque import services
from estoque.app import NAME
from estoque.config import EstoqueSettings
from veloz.db import Database
from veloz.logs import configure_logging
from veloz.worker import drain, run_every, stop_on_signals

log = logging.getLogger("estoque.sweeper")


def sweep_once(db: Database, batch_size: int) -> int:
    """Release up to `batch_size` expired holds; returns how many were released."""
    return drain(lambda: services.release_expired_hold(db), batch_size)


def run(settings: EstoqueSettings, stop: threading.Event) -> None:
    db = Database.for_service(f"{NAME}-sweeper", settings)
    log.info("sweeper started", extra={"interval_s": settings.sweep_interval_seconds})
    run_every(settings.sweep_interval_seconds,
              lambda: sweep_once(db, settings.sweep_batch_size),
              settings.sweep_batch_size, stop, what="released expired holds")
    db.dispose()
    log.info("sweeper stopped")


def main() -> None:
    settings = EstoqueSettings.from_env()
    configure_logging(f"{NAME}-sweeper", settings.log_level)
    run(settings, stop_on_signals())


if __name__ == "__main__":
    main()
