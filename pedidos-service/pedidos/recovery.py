"""Finishes or compensates orders a saga left behind: `python -m pedidos.recovery`.
Safe to run in several replicas: each order is leased with SKIP LOCKED."""

import logging
import threading

from pedidos.app import NAME, orders
from pedidos.config import PedidosSettings
from pedidos.services import Orders
from veloz.db import Database
from veloz.logs import configure_logging
from veloz.worker import drain, run_every, stop_on_signals

log = logging.getLogger("pedidos.recovery")


def recover_once(service: Orders, batch_size: int) -> int:
    """Handle up to `batch_size` stale orders; returns how many were handled."""
    return drain(service.recover_next, batch_size)


def run(settings: PedidosSettings, stop: threading.Event) -> None:
    db = Database.for_service(f"{NAME}-recovery", settings)
    service = orders(settings, db)
    log.info("recovery started", extra={"interval_s": settings.recovery_interval_seconds,
                                        "grace_s": settings.recovery_grace_seconds})
    run_every(settings.recovery_interval_seconds,
              lambda: recover_once(service, settings.recovery_batch_size),
              settings.recovery_batch_size, stop, what="recovered stale orders")
    db.dispose()
    log.info("recovery stopped")


def main() -> None:
    settings = PedidosSettings.from_env()
    configure_logging(f"{NAME}-recovery", settings.log_level)
    run(settings, stop_on_signals())


if __name__ == "__main__":
    main()
