"""Finishes or compensates orders a saga left behind, and reconciles the books:
`python -m pedidos.recovery`. Safe to run in several replicas: each order is leased with SKIP
LOCKED, and a reconciliation only reads (every replica reports the same counts).

Reconciliation runs here rather than in a worker of its own: it needs exactly what recovery
has (pedidos_db and a client of pagamentos), runs once a RECONCILE_INTERVAL_SECONDS, and so
adds no process, port, scrape target or NetworkPolicy to any deployment."""

from collections.abc import Callable

from pedidos.bootstrap import Pedidos, build
from pedidos.config import PedidosSettings
from pedidos.reconciliation import Every
from pedidos.services import OrderRecovery
from veloz.run.jobs import Job, drain, serve


def recover_once(recovery: OrderRecovery, batch_size: int) -> int:
    """Handle up to `batch_size` unfinished orders; returns how many were handled."""
    return drain(recovery.recover_next, batch_size)


def next_unit(pedidos: Pedidos, settings: PedidosSettings) -> Callable[[], int | None]:
    """The worker's unit of work: reconcile when due, then recover one order."""
    reconcile = Every(pedidos.reconciliation, settings.reconcile_interval_seconds)

    def take_one() -> int | None:
        reconcile.run_if_due()
        return pedidos.recovery.recover_next()

    return take_one


def main() -> None:
    settings = PedidosSettings.from_env()
    serve(Job("pedidos-recovery", "recovered unfinished orders",
              lambda db: next_unit(build(settings, db), settings),
              settings.recovery_interval_seconds, settings.recovery_batch_size), settings)


if __name__ == "__main__":
    main()
