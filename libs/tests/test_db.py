"""veloz.data.db's psycopg path (`statements`, `atomic`, `DriverStatement`) on a real PostgreSQL:
what commits, what rolls back, which exceptions surface, and what the pool gets back."""

import time
from datetime import UTC, datetime
from decimal import Decimal

import flask
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.exc import IntegrityError, OperationalError

from veloz.data.db import Database, DriverStatement, array_text
from veloz.dev.devdb import recreate_database
from veloz.dev.devstack import free_port

metadata = sa.MetaData()
notes = sa.Table(
    "notes", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("body", sa.String(40), unique=True, nullable=False),
    sa.Column("kind", sa.String(10), nullable=False, server_default="plain"),
    sa.Column("updated_at", sa.DateTime(timezone=True), onupdate=lambda: datetime.now(UTC)),
)
ADD = DriverStatement.of(
    sa.insert(notes).values(body=sa.bindparam("body")).returning(notes.c.id))
PLAIN_BODIES = DriverStatement.of(
    sa.select(notes.c.body).where(notes.c.kind == "plain").order_by(notes.c.id))
COUNT = DriverStatement.of(sa.text("SELECT count(*) AS n FROM notes"))


@pytest.fixture(scope="module")
def database_url(postgres_server_url):
    return recreate_database(postgres_server_url, "veloz_db_test")


@pytest.fixture
def db(database_url):
    database = Database(database_url, name="veloz-db-test", pool_size=1)
    metadata.drop_all(database.engine)
    metadata.create_all(database.engine)
    yield database
    database.dispose()


def count(db: Database) -> int:
    with db.statements() as cursor:
        return COUNT.run(cursor).fetchone().n


def add_then_fail(block, *bodies: str) -> None:
    """Add `bodies` in `block` (db.statements or db.atomic), then raise inside it."""
    with block() as cursor:
        for body in bodies:
            ADD.run(cursor, body=body)
        raise RuntimeError("inside the block, after the statements")


def test_a_statement_with_a_python_side_default_it_would_skip_is_refused():
    with pytest.raises(ValueError, match="updated_at"):
        DriverStatement.of(sa.update(notes).values(body=sa.bindparam("body")))


def test_values_the_statement_binds_itself_travel_with_it(db):
    with db.statements() as cursor:
        ADD.run(cursor, body="first")
        cursor.execute("INSERT INTO notes (body, kind) VALUES ('hidden', 'other')")
        assert [row.body for row in PLAIN_BODIES.run(cursor).fetchall()] == ["first"]


def test_each_statement_commits_by_itself_outside_atomic(db):
    with pytest.raises(RuntimeError):
        add_then_fail(db.statements, "kept")

    assert count(db) == 1


def test_atomic_commits_all_or_nothing(db):
    with db.atomic() as cursor:
        ADD.run(cursor, body="one")
        ADD.run(cursor, body="two")
    with pytest.raises(RuntimeError):
        add_then_fail(db.atomic, "three", "four")

    assert count(db) == 2


def test_a_constraint_violation_surfaces_as_sqlalchemys_integrity_error(db):
    with db.statements() as cursor:
        ADD.run(cursor, body="twice")

    with pytest.raises(IntegrityError) as raised:
        add_then_fail(db.atomic, "twice")

    assert raised.value.orig.diag.constraint_name == "notes_body_key"
    assert not raised.value.connection_invalidated
    assert count(db) == 1  # the pool's one connection came back usable


def test_the_pool_gets_its_connection_back_as_sqlalchemy_lent_it(db):
    with db.statements() as cursor:
        ADD.run(cursor, body="autocommitted")

    def core_transaction_that_fails():
        with db.engine.begin() as connection:
            connection.execute(sa.insert(notes).values(body="rolled back"))
            raise RuntimeError("a Core transaction on the same pooled connection")

    with pytest.raises(RuntimeError):
        core_transaction_that_fails()

    assert count(db) == 1


def backend_pid(connection) -> int:
    return connection.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()


def terminate_and_wait(database_url: str, pid: int) -> None:
    """What a failover or an administrator does to a connection, finished: the backend
    has sent its FATAL and exited."""
    admin = Database(database_url, name="veloz-db-admin")
    with admin.autocommit.connect() as connection:
        connection.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        while connection.execute(sa.text("SELECT 1 FROM pg_stat_activity WHERE pid = :pid"),
                                 {"pid": pid}).first():
            time.sleep(0.01)
    admin.dispose()


def killed_midway(db: Database, database_url: str) -> None:
    """A transaction whose connection the server ends between two of its statements."""
    with db.atomic() as cursor:
        ADD.run(cursor, body="lost")
        terminate_and_wait(database_url, cursor.connection.info.backend_pid)
        ADD.run(cursor, body="never")


def test_a_connection_killed_in_use_leaves_the_pool(db, database_url):
    with pytest.raises(OperationalError) as raised:
        killed_midway(db, database_url)

    assert raised.value.connection_invalidated
    assert count(db) == 0  # a new connection, and the killed transaction wrote nothing


@pytest.mark.parametrize("path", ["psycopg", "core"])
def test_a_connection_killed_while_idle_is_replaced_before_the_next_use(db, database_url, path):
    with db.autocommit.connect() as connection:
        killed = backend_pid(connection)
    terminate_and_wait(database_url, killed)  # well within the idle check's second

    if path == "psycopg":
        assert count(db) == 0
    with db.autocommit.connect() as connection:
        assert backend_pid(connection) != killed


def test_a_database_refusing_connections_surfaces_as_sqlalchemys_operational_error():
    nowhere = Database(f"postgresql://postgres@127.0.0.1:{free_port()}/nothing",
                       name="veloz-db-test")

    with pytest.raises(OperationalError) as raised, nowhere.statements():
        pass

    assert not raised.value.connection_invalidated


SLEEP = DriverStatement.of(sa.text("SELECT pg_sleep(1)"))


def test_a_statement_the_database_did_not_finish_in_time_is_a_503_problem(database_url):
    """A frozen or overloaded database cancels the statement at its timeout: the caller gets
    the same 503 as for a database that is away, never a 500."""
    from veloz.web.app import create_service_app

    database = Database(database_url, name="veloz-db-slow", pool_size=1,
                        statement_timeout_ms=50)
    slow = flask.Blueprint("slow", __name__)

    @slow.get("/slow")
    def run_slow_statement():
        with database.statements() as cursor:
            SLEEP.run(cursor)
        return {}

    app = create_service_app(name="db-timeout-probe", version="1", log_level="WARNING",
                             max_body_bytes=1024, blueprints=[slow], readiness=dict)
    try:
        answer = app.test_client().get("/slow")
    finally:
        database.dispose()

    assert answer.status_code == 503, answer.get_data(as_text=True)
    assert answer.headers["Retry-After"] == "2"


BACKEND = DriverStatement.of(sa.text("SELECT pg_backend_pid() AS pid"))


def lend_backend(block) -> int:
    with block() as cursor:
        return BACKEND.run(cursor).fetchone().pid


def checkouts_of(db: Database) -> list[int]:
    counted: list[int] = []
    sa.event.listen(db.engine, "checkout", lambda *_args: counted.append(1))
    return counted


def test_the_lends_of_a_kept_scope_check_out_one_connection_and_give_it_back(db):
    checkouts = checkouts_of(db)
    kept = db.keep_one_connection()
    try:
        backends = {lend_backend(db.statements), lend_backend(db.atomic),
                    lend_backend(db.statements)}
        with pytest.raises(RuntimeError):  # rolls back the block's transaction alone
            add_then_fail(db.atomic, "rolled back")
        with db.statements() as cursor:
            ADD.run(cursor, body="kept")
    finally:
        kept.close()

    assert len(backends) == 1
    assert len(checkouts) == 1
    assert db.engine.pool.checkedout() == 0
    assert count(db) == 1
    lend_backend(db.statements)
    assert len(checkouts) == 3  # outside the scope, every lend checks out: count()'s, this


def test_a_lend_inside_a_lend_of_a_kept_scope_gets_its_own_connection(db):
    kept = db.keep_one_connection()
    try:
        with db.atomic() as outer:
            ADD.run(outer, body="outer")
            inner = lend_backend(db.statements)
            assert inner != outer.connection.info.backend_pid
        assert lend_backend(db.statements) == outer.connection.info.backend_pid
    finally:
        kept.close()
    assert count(db) == 1
    assert db.engine.pool.checkedout() == 0


def test_a_kept_connection_killed_between_lends_is_replaced(db, database_url):
    kept = db.keep_one_connection()
    try:
        killed = lend_backend(db.statements)
        terminate_and_wait(database_url, killed)
        assert lend_backend(db.atomic) != killed
    finally:
        kept.close()
    assert db.engine.pool.checkedout() == 0


def test_a_kept_connection_killed_in_a_lend_is_replaced_at_the_next(db, database_url):
    kept = db.keep_one_connection()
    try:
        with pytest.raises(OperationalError) as raised:
            killed_midway(db, database_url)
        assert raised.value.connection_invalidated
        assert count(db) == 0
    finally:
        kept.close()
    assert db.engine.pool.checkedout() == 0


def test_every_request_of_a_database_app_checks_out_once(database_url):
    from veloz.web.app import create_database_app

    class Settings:
        database_url, log_level, max_body_bytes = "", "WARNING", 1024
        db_pool_size, db_pool_timeout_seconds, db_statement_timeout_ms = 2, 5.0, 5000

    Settings.database_url = database_url
    lends = flask.Blueprint("lends", __name__)

    @lends.get("/three-lends")
    def three_lends():
        database = flask.current_app.extensions["database"]
        pids = {lend_backend(database.statements) for _ in range(3)}
        return {"backends": len(pids)}

    app = create_database_app(name="db-kept-probe", version="1", description="",
                              settings=Settings, blueprints=[lends])
    database = app.extensions["database"]
    checkouts = checkouts_of(database)
    try:
        answers = [app.test_client().get("/three-lends").get_json() for _ in range(2)]
        assert database.engine.pool.checkedout() == 0
    finally:
        database.dispose()

    assert answers == [{"backends": 1}] * 2
    assert len(checkouts) == 2


BODY_AND_SORT = DriverStatement.of(
    sa.select(notes.c.body, notes.c.kind.label("sort")).order_by(notes.c.id))
MISNAMED = DriverStatement.of(sa.text("SELECT 1 AS b").columns(sa.column("a")))


def test_every_statement_names_its_rows_as_the_server_names_its_columns(db):
    """Each statement's own row class (veloz.data.db.RowsOf), learnt from its own first result
    whatever statement ran on the cursor before; one whose columns SQLAlchemy misnames gets
    the server's names."""
    with db.statements() as cursor:
        ADD.run(cursor, body="one")
        for added in (1, 2):
            row = BODY_AND_SORT.run(cursor).fetchone()
            assert (row.body, row.sort) == ("one", "plain")
            assert COUNT.run(cursor).fetchone().n == added
            assert MISNAMED.run(cursor).fetchone().b == 1
            assert ADD.run(cursor, body=f"more {added}").fetchone().id > 1


ARRAYS_BACK = DriverStatement.of(sa.text(
    "SELECT CAST(:texts AS varchar[]) AS texts, CAST(:ids AS bigint[]) AS ids, "
    "CAST(:amounts AS numeric[]) AS amounts"))


@settings(max_examples=200, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(texts=st.lists(st.text(st.characters(codec="utf-8", exclude_characters="\x00")),
                      max_size=4),
       ids=st.lists(st.integers(-2**63, 2**63 - 1), max_size=4),
       amounts=st.lists(st.decimals(allow_nan=False, allow_infinity=False, places=2,
                                    min_value=-10**9, max_value=10**9), max_size=4))
def test_an_array_in_text_reads_back_as_the_list_it_was_made_of(db, texts, ids, amounts):
    with db.statements() as cursor:
        row = ARRAYS_BACK.run(cursor, texts=array_text(texts), ids=array_text(ids),
                              amounts=array_text(amounts)).fetchone()

    assert (row.texts, row.ids, row.amounts) == (texts, ids, amounts)
    assert all(isinstance(amount, Decimal) for amount in row.amounts)


def test_an_array_in_text_has_no_none():
    with pytest.raises(TypeError, match="None"):
        array_text(["a", None])
