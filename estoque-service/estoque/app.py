"""estoque-service application factory."""

from flask import Flask

from estoque import telemetry
from estoque.api import bp
from estoque.bootstrap import NAME, build
from estoque.config import EstoqueSettings
from estoque.models import idempotency_keys
from veloz.web.app import create_database_app
from veloz.web.idempotency import keep_answers

VERSION = "1.0.0"


def create_app(settings: EstoqueSettings | None = None) -> Flask:
    settings = settings or EstoqueSettings.from_env()
    app = create_database_app(name=NAME, version=VERSION, settings=settings, blueprints=[bp],
                              description="Catalog, stock and reservations",
                              state=telemetry.state_gauges(settings.low_stock_threshold))
    app.extensions["estoque"] = build(settings, app.extensions["database"])
    keep_answers(app, idempotency_keys)
    return app
