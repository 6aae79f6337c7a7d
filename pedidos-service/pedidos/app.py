"""pedidos-service application factory: `gunicorn "pedidos.app:create_app()"`."""

from flask import Flask
from prometheus_client import Counter

from pedidos.api import bp
from pedidos.clients import EstoqueClient, PagamentosClient, client_policy
from pedidos.config import PedidosSettings
from pedidos.services import Orders
from veloz.db import Database
from veloz.http_client import ServiceClient
from veloz.service_app import create_database_app

NAME, VERSION = "pedidos-service", "1.0.0"


def create_app(settings: PedidosSettings | None = None) -> Flask:
    settings = settings or PedidosSettings.from_env()
    app = create_database_app(name=NAME, version=VERSION, settings=settings, blueprints=[bp],
                              description="Orders and the purchase saga")
    outcomes = Counter("pedidos_orders", "Orders that reached a status, by status",
                       ["outcome"], registry=app.extensions["metrics_registry"])
    app.extensions["orders"] = orders(settings, app.extensions["database"],
                                      on_final=lambda status: outcomes.labels(status).inc())
    return app


def orders(settings: PedidosSettings, db: Database, **options) -> Orders:
    policy = client_policy(settings)
    estoque = ServiceClient("estoque", settings.estoque_url, policy)
    pagamentos = ServiceClient("pagamentos", settings.pagamentos_url, policy)
    return Orders(db, EstoqueClient(estoque, settings.reservation_ttl_seconds),
                  PagamentosClient(pagamentos),
                  recovery_grace_seconds=settings.recovery_grace_seconds, **options)
