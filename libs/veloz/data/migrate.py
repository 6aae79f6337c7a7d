"""Alembic for every service: `python -m veloz.data.migrate <service package>` upgrades to head.

Each service keeps its revisions in `<package>/migrations/versions`; its `env.py` calls
`run_migrations(metadata)` from here, so the Alembic wiring exists once.
"""

import argparse
import importlib
import os
from pathlib import Path

from alembic import command, context
from alembic.config import Config
from sqlalchemy import create_engine, pool, text

from veloz.data.db import sqlalchemy_url


def alembic_config(package: str, database_url: str) -> Config:
    migrations = Path(importlib.import_module(package).__path__[0]) / "migrations"
    config = Config()
    config.set_main_option("script_location", str(migrations))
    config.attributes["database_url"] = sqlalchemy_url(database_url)
    return config


def create_database_if_missing(server_url: str, database: str) -> None:
    """Create `database` on the server of `server_url` (a URL of another database there, e.g.
    `postgres`) unless it exists: the first step of every migration, local or in an image."""
    engine = create_engine(sqlalchemy_url(server_url), isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        exists = connection.execute(
            text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": database}
        ).first()
        if not exists:
            connection.execute(text(f'CREATE DATABASE "{database}"'))
    engine.dispose()


def upgrade(package: str, database_url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(package, database_url), revision)


def run_migrations(metadata) -> None:
    """Body of every service's migrations/env.py (online mode only: we always have a DB)."""
    url = context.config.attributes.get("database_url") or sqlalchemy_url(
        os.environ["DATABASE_URL"])
    engine = create_engine(url, poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=metadata,
                          compare_type=True, transaction_per_migration=True)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description="Upgrade a service's database to head.")
    parser.add_argument("package", help="service package, e.g. estoque")
    parser.add_argument("--revision", default="head")
    args = parser.parse_args()
    upgrade(args.package, os.environ["DATABASE_URL"], args.revision)


if __name__ == "__main__":
    main()
