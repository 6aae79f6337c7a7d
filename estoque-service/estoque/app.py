"""estoque-service application factory."""

from flask import Flask

from estoque.api import bp
from estoque.bootstrap import NAME, build
from estoque.config import EstoqueSettings
from estoque.models import idempotency_keys
from veloz.data.idempotency import keep_answers
from veloz.web.app import create_database_app

VERSION = "1.0.0"


def create_app(settings: EstoqueSettings | None = None) -> Flask:
    settings = settings or EstoqueSettings.from_env()
    app = create_database_app(name=NAME, version=VERSION, settings=settings, blueprints=[bp],
                              description="Catalog, stock and reservations")
    app.extensions["estoque"] = build(settings, app.extensions["database"])
    keep_answers(app, idempotency_keys)
    return app
