"""The images' migration one-shot: `python /opt/veloz/migrate.py <service package>`.

DATABASE_URL is the service's own database URL, on the server itself (never through
PgBouncer). Like `make migrate`, it creates that database when the server lacks it (connecting
to the server's `postgres` database to do so), then upgrades it to the newest Alembic revision.
It prints one line of what it did: `migrate: <database> <old> -> <new>`, or `already at <new>`
(a second `docker compose up` migrates nothing). Only veloz.data: the images carry no veloz.dev.
"""

import os
import sys

from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, pool
from sqlalchemy.engine import make_url

from veloz.data.db import sqlalchemy_url
from veloz.data.migrate import create_database_if_missing, upgrade


def current_revision(url: str) -> str | None:
    engine = create_engine(url, poolclass=pool.NullPool)
    with engine.connect() as connection:
        revision = MigrationContext.configure(connection).get_current_revision()
    engine.dispose()
    return revision


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    url = make_url(sqlalchemy_url(os.environ["DATABASE_URL"]))
    server = url.set(database="postgres").render_as_string(hide_password=False)
    create_database_if_missing(server, url.database)
    database_url = url.render_as_string(hide_password=False)
    before = current_revision(database_url)
    upgrade(argv[1], database_url)
    after = current_revision(database_url)
    done = f"already at {after}" if before == after else f"{before} -> {after}"
    print(f"migrate: {url.database} {done}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
