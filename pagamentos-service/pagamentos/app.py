"""Application factory, served by `python -m veloz.run.granian pagamentos`."""

from flask import Flask

from pagamentos import __version__
from pagamentos.api import bp
from pagamentos.bootstrap import NAME, build
from pagamentos.config import PagamentosSettings
from pagamentos.models import idempotency_keys
from veloz.web.app import create_database_app
from veloz.web.idempotency import keep_answers


def create_app(settings: PagamentosSettings | None = None) -> Flask:
    settings = settings or PagamentosSettings.from_env()
    app = create_database_app(
        name=NAME, version=__version__, settings=settings, blueprints=[bp],
        description="Payments of Pedidos Veloz: charges, declines and refunds.")
    app.extensions["pagamentos"] = build(settings, app.extensions["database"])
    keep_answers(app, idempotency_keys)
    return app
