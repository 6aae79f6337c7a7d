"""pedidos' use cases wired in one place, for the web app (app.py), the recovery worker
(recovery.py) and tests: no Flask here."""

from dataclasses import dataclass

from pedidos import telemetry
from pedidos.clients import EstoqueClient, PagamentosClient, client_policy
from pedidos.config import PedidosSettings
from pedidos.reconciliation import Reconciliation
from pedidos.saga import PurchaseSaga
from pedidos.services import Cancellation, OrderRecovery
from pedidos.store import OnSettled, OrderStore
from veloz.data.db import Database
from veloz.net.client import ServiceClient

NAME = "pedidos-service"


@dataclass(frozen=True)
class Pedidos:
    """The store (reads go straight to it) and the use cases."""

    store: OrderStore
    saga: PurchaseSaga
    cancellation: Cancellation
    recovery: OrderRecovery
    reconciliation: Reconciliation


def build(settings: PedidosSettings, db: Database,
          on_settled: OnSettled = telemetry.record_order_settled) -> Pedidos:
    policy = client_policy(settings)
    estoque = EstoqueClient(ServiceClient("estoque", settings.estoque_url, policy),
                            settings.reservation_ttl_seconds)
    pagamentos = PagamentosClient(ServiceClient("pagamentos", settings.pagamentos_url, policy))
    store = OrderStore(db, on_settled)
    saga = PurchaseSaga(store, estoque, pagamentos)
    return Pedidos(store, saga, Cancellation(store, saga.compensation),
                   OrderRecovery(saga, pagamentos, settings.recovery_grace_seconds),
                   Reconciliation(store, pagamentos, settings.reconcile_grace_seconds))
