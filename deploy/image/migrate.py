"""The images' migration one-shot: `python /opt/veloz/migrate.py <service package>`.

DATABASE_URL is the service's own database URL, on the server itself (never through
PgBouncer). Like `make migrate`, it creates that database when the server lacks it (connecting
to the server's `postgres` database to do so), then upgrades it to the newest Alembic revision.
"""

import os
import sys

from sqlalchemy.engine import make_url

from veloz.data.db import sqlalchemy_url
from veloz.data.migrate import upgrade
from veloz.dev.devdb import ensure_database


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    url = make_url(sqlalchemy_url(os.environ["DATABASE_URL"]))
    server = url.set(database="postgres").render_as_string(hide_password=False)
    upgrade(argv[1], ensure_database(server, url.database))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
