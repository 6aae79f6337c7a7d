"""Finishes or compensates orders a saga left behind: `python -m pedidos.recovery`.
Safe to run in several replicas: each order is leased with SKIP LOCKED."""

from pedidos.bootstrap import build
from pedidos.config import PedidosSettings
from pedidos.services import OrderRecovery
from veloz.worker import Job, drain, serve


def recover_once(recovery: OrderRecovery, batch_size: int) -> int:
    """Handle up to `batch_size` unfinished orders; returns how many were handled."""
    return drain(recovery.recover_next, batch_size)


def main() -> None:
    settings = PedidosSettings.from_env()
    serve(Job("pedidos-recovery", "recovered unfinished orders",
              lambda db: build(settings, db).recovery.recover_next,
              settings.recovery_interval_seconds, settings.recovery_batch_size), settings)


if __name__ == "__main__":
    main()
