"""Application factory, served by `python -m veloz.run.granian pagamentos`."""

from flask import Flask

from pagamentos import __version__, api
from pagamentos.config import PagamentosSettings
from pagamentos.models import idempotency_keys
from pagamentos.services import Payments
from veloz.web.app import create_database_app
from veloz.web.idempotency import keep_answers

SERVICE_NAME = "pagamentos-service"


def create_app(settings: PagamentosSettings | None = None) -> Flask:
    settings = settings or PagamentosSettings.from_env()
    app = create_database_app(
        name=SERVICE_NAME, version=__version__, settings=settings, blueprints=[api.blueprint],
        description="Payments of Pedidos Veloz: charges, declines and refunds.")
    app.extensions["payments"] = Payments(app.extensions["database"], settings)
    keep_answers(app, idempotency_keys)
    return app
