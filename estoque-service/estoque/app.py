"""estoque-service application factory."""

from flask import Flask

from estoque.api import bp
from estoque.config import EstoqueSettings
from veloz.db import Database
from veloz.service_app import create_service_app

NAME, VERSION = "estoque-service", "1.0.0"


def create_app(settings: EstoqueSettings | None = None) -> Flask:
    settings = settings or EstoqueSettings.from_env()
    db = Database.for_service(NAME, settings)
    app = create_service_app(
        name=NAME, version=VERSION, description="Catalog, stock and reservations",
        log_level=settings.log_level, max_body_bytes=settings.max_body_bytes,
        blueprints=[bp], readiness=lambda: {"database": db.is_reachable()},
    )
    app.extensions.update(database=db, settings=settings)
    return app
