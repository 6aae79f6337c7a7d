"""CPU per transaction of the ways veloz.data.db reaches PostgreSQL, for the same
UPDATE ... RETURNING: SQLAlchemy Core in a transaction and in autocommit, psycopg
(veloz.data.db's `atomic()` and `statements()`) in a transaction and in autocommit, and a
two-statement transaction both ways.
The figures behind step 4 of the performance work (bench/README.md).

    .venv/bin/python loadtest/db_paths.py [--transactions 3000]

Runs on a `veloz_db_paths` database of the development PostgreSQL (embedded unless
DATABASE_URL is set); CPU is this process's (time.process_time), wall time beside it.
"""

import argparse
import time
from collections.abc import Callable

import sqlalchemy as sa

from veloz.data.db import Database, DriverStatement
from veloz.dev.devdb import recreate_database
from veloz.dev.devstack import server_url_from_environment

ROWS = 100
metadata = sa.MetaData()
counters = sa.Table("counters", metadata, sa.Column("id", sa.Integer, primary_key=True),
                    sa.Column("n", sa.Integer, nullable=False))
BUMP = (sa.update(counters).where(counters.c.id == sa.bindparam("row"))
        .values(n=counters.c.n + 1).returning(counters.c.id, counters.c.n))
BUMP_ON_PSYCOPG = DriverStatement.of(BUMP)


def ways(db: Database) -> dict[str, Callable[[int], None]]:
    def core_transaction(k: int) -> None:
        with db.engine.begin() as connection:
            connection.execute(BUMP, {"row": k % ROWS}).one()

    def core_autocommit(k: int) -> None:
        with db.autocommit.connect() as connection:
            connection.execute(BUMP, {"row": k % ROWS}).one()

    def psycopg_transaction(k: int) -> None:
        with db.atomic() as cursor:
            BUMP_ON_PSYCOPG.run(cursor, row=k % ROWS).fetchone()

    def psycopg_autocommit(k: int) -> None:
        with db.statements() as cursor:
            BUMP_ON_PSYCOPG.run(cursor, row=k % ROWS).fetchone()

    def core_two_statements(k: int) -> None:
        with db.engine.begin() as connection:
            connection.execute(BUMP, {"row": k % ROWS}).one()
            connection.execute(BUMP, {"row": (k + 1) % ROWS}).one()

    def psycopg_two_statements(k: int) -> None:
        with db.atomic() as cursor:
            BUMP_ON_PSYCOPG.run(cursor, row=k % ROWS).fetchone()
            BUMP_ON_PSYCOPG.run(cursor, row=(k + 1) % ROWS).fetchone()

    return {"Core, transaction": core_transaction, "Core, autocommit": core_autocommit,
            "psycopg, transaction (atomic)": psycopg_transaction,
            "psycopg, autocommit (statements)": psycopg_autocommit,
            "Core, 2 statements in a transaction": core_two_statements,
            "psycopg, 2 statements in a transaction": psycopg_two_statements}


def measure(way: Callable[[int], None], transactions: int) -> tuple[float, float]:
    """(CPU µs, wall µs) per transaction."""
    cpu, wall = time.process_time(), time.perf_counter()
    for k in range(transactions):
        way(k)
    return ((time.process_time() - cpu) / transactions * 1e6,
            (time.perf_counter() - wall) / transactions * 1e6)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--transactions", type=int, default=3000)
    args = parser.parse_args()
    db = Database(recreate_database(server_url_from_environment(), "veloz_db_paths"),
                  name="db-paths", pool_size=2)
    metadata.create_all(db.engine)
    with db.engine.begin() as connection:
        connection.execute(sa.insert(counters), [{"id": row, "n": 0} for row in range(ROWS)])
    for name, way in ways(db).items():
        measure(way, min(args.transactions, 200))  # warm: pool, prepared statements
        cpu, wall = measure(way, args.transactions)
        print(f"{name:40} {cpu:7.0f} µs CPU {wall:7.0f} µs wall per transaction")
    db.dispose()


if __name__ == "__main__":
    main()
