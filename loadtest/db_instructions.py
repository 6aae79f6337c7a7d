"""Instructions per use of veloz.data.db's psycopg path, counted by valgrind's callgrind: what a
lend of a pooled connection costs (`statements()`, `atomic()`, the pool's checkout and checkin,
a psycopg cursor), what a request's kept connection saves (three lends in one scope against
three without), and what a statement's rows cost with psycopg's `namedtuple_row` against the
class a DriverStatement learnt from its first result.

Each figure is one use, nothing else (no statement in a lend, no server around it); the
database is the embedded server `make up` starts (or DATABASE_URL's), in a database of its
own. Needs valgrind (Debian's package). About a minute.

    .venv/bin/python loadtest/db_instructions.py [--uses 500] [--json FILE]
"""

from contextlib import nullcontext

import callgrind_count
import sqlalchemy as sa
from psycopg.rows import namedtuple_row

from veloz.data.db import Database, DriverStatement
from veloz.dev.devdb import recreate_database
from veloz.dev.devstack import server_url_from_environment

# Twelve columns, as wide as an order's row.
COLUMNS = ["id", "customer", "customer_id", "status", "total", "payment_id", "reservation_id",
           "reason", "created_at", "updated_at", "key_scope", "key"]
WIDE = DriverStatement.of(sa.select(*(sa.literal_column(str(number)).label(name)
                                      for number, name in enumerate(COLUMNS))))


def lending(block, times: int = 1):
    """A use: `times` empty `with block():` in a row."""
    def use():
        for _ in range(times):
            with block():
                pass
    return use


def lend_uses(db: Database) -> dict:
    three_lends = lending(db.statements, 3)

    def kept_lends():
        kept = db.keep_one_connection()
        try:
            three_lends()
        finally:
            kept.close()

    def checkout_and_checkin():
        db.engine.raw_connection().close()

    return {"statements lend": lending(db.statements), "atomic lend": lending(db.atomic),
            "checkout and checkin": checkout_and_checkin, "3 lends, no scope": three_lends,
            "3 lends, one kept connection": kept_lends}


def cursor_uses(db: Database) -> dict:
    connection = db.engine.raw_connection().driver_connection  # held to the end
    connection.autocommit = True
    plain, learnt = (connection.cursor(row_factory=namedtuple_row) for _ in range(2))

    def cursor():
        connection.cursor(row_factory=namedtuple_row).close()

    def wide_namedtuple_row():
        plain.execute(WIDE.sql).fetchone()

    def wide_learnt():
        WIDE.run(learnt).fetchone()

    return {"psycopg cursor": cursor, "12 columns, namedtuple_row": wide_namedtuple_row,
            "12 columns, the learnt class": wide_learnt}


def inner(times: int) -> None:
    db = Database(recreate_database(server_url_from_environment(), "veloz_db_instructions"),
                  name="db-instructions")
    counted = {**lend_uses(db), **cursor_uses(db)}
    callgrind_count.count({name: (use, nullcontext) for name, use in counted.items()}, times)


def main() -> None:
    callgrind_count.main(__doc__, unit="uses", default=500, inner=inner,
                         report=lambda per_use: callgrind_count.print_table(per_use, "use"))


if __name__ == "__main__":
    main()
