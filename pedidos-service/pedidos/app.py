"""pedidos-service application factory, served by `python -m veloz.run.granian pedidos`."""

from flask import Flask

from pedidos import telemetry
from pedidos.api import bp
from pedidos.bootstrap import NAME, build
from pedidos.config import PedidosSettings
from pedidos.models import idempotency_keys
from veloz.web.app import create_database_app
from veloz.web.idempotency import keep_answers

VERSION = "1.0.0"


def create_app(settings: PedidosSettings | None = None) -> Flask:
    settings = settings or PedidosSettings.from_env()
    app = create_database_app(name=NAME, version=VERSION, settings=settings, blueprints=[bp],
                              description="Orders and the purchase saga",
                              state=telemetry.STATE_QUERIES)
    app.extensions["pedidos"] = build(settings, app.extensions["database"])
    keep_answers(app, idempotency_keys)
    return app
