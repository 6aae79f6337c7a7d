"""Application factory: `gunicorn "pagamentos.app:create_app()"`."""

from flask import Flask

from pagamentos import __version__, api
from pagamentos.config import PagamentosSettings
from pagamentos.services import Payments
from veloz.db import Database
from veloz.service_app import create_service_app

SERVICE_NAME = "pagamentos-service"


def create_app(settings: PagamentosSettings | None = None) -> Flask:
    settings = settings or PagamentosSettings.from_env()
    db = Database.for_service(SERVICE_NAME, settings)
    app = create_service_app(
        name=SERVICE_NAME, version=__version__, log_level=settings.log_level,
        max_body_bytes=settings.max_body_bytes, blueprints=[api.blueprint],
        readiness=lambda: {"database": db.is_reachable()},
        description="Payments of Pedidos Veloz: charges, declines and refunds.")
    app.extensions["database"] = db
    app.extensions["payments"] = Payments(db, settings)
    return app
