"""Database engine and sessions, created lazily in each process (never shared across a fork).

Three ways in, all on one pool per process (README's Architecture section says which kind of
a service's work takes which):
- `statements()` / `atomic()`: psycopg cursors, for the life of orders, reservations and
  payments and for reads by id: the few statements every order runs;
- `transaction()` / `reading()`: ORM sessions, for administration and listings;
- `engine.begin()` / `autocommit.connect()`: SQLAlchemy Core connections, for this library
  (health checks), migrations, tools and tests.
  SQLAlchemy still builds those statements (`DriverStatement.of`, once, at import) and its
  pool still lends the connections; only its per-call execution layer is skipped, which cost
  more CPU than psycopg sending the statement (184 against 96 microseconds for a one-statement
  UPDATE in autocommit here: loadtest/db_paths.py). Errors surface as SQLAlchemy's
  exceptions, as on every path. Inside a `keep_one_connection()` scope (veloz.web opens one
  per request of a service with a database) every such block runs on one pooled connection.
"""

import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg.pq import TransactionStatus
from psycopg.rows import RowFactory, namedtuple_row
from sqlalchemy import ClauseElement, Engine, MetaData, Table, create_engine, event, text
from sqlalchemy.dialects.postgresql.psycopg import PGDialect_psycopg
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import PoolProxiedConnection
from sqlalchemy.sql.compiler import SQLCompiler

from veloz.core.process import current_pid, readable_now

# Constraint names every service's tables share, so migrations name things predictably.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def service_metadata() -> MetaData:
    """A service's own tables (each service has its own database), named by the convention."""
    return MetaData(naming_convention=NAMING_CONVENTION)


# A pooled connection idle for longer than this is checked with a round trip before use.
IDLE_CHECK_SECONDS = 1.0


def table_of(model) -> Table:
    """The table behind a mapped class, for Core statements (the class types it as a
    FromClause, which insert() and update() refuse)."""
    table = model.__table__
    assert isinstance(table, Table)
    return table


def utcnow() -> datetime:
    return datetime.now(UTC)


_DIALECT = PGDialect_psycopg(dbapi=psycopg)
# The cursors of `Database.statements()` and `Database.atomic()`: rows are named tuples.
DriverCursor = psycopg.Cursor[Any]


class RowsOf:
    """The row factory of one statement's results. psycopg's `namedtuple_row` reads and
    decodes every column's name again on every result to find its (cached) class: 9k
    instructions a statement with one column, 21k with twelve (bench/README.md). A statement's
    columns are the same on every run, so the class `namedtuple_row` made of its first
    result makes its rows from then on."""

    __slots__ = ("factory", "learnt")

    def __init__(self) -> None:
        self.factory: RowFactory[Any] = namedtuple_row
        self.learnt = False

    def learn(self, cursor: DriverCursor) -> None:
        """After the statement's first result (a statement that returns no rows keeps
        `namedtuple_row`, which finds that out at once)."""
        made: Any = namedtuple_row(cursor)
        if getattr(made, "__self__", None) is not None:  # a class's _make, not no_result
            self.factory = lambda _cursor: made
        self.learnt = True


@dataclass(frozen=True)
class DriverStatement:
    """A SQLAlchemy statement compiled once to psycopg's SQL, with the values it binds itself
    (literals such as `status != 'refunded'`) and its rows' class (RowsOf); run it on a cursor
    from `Database.statements()` or `Database.atomic()` with `.run(cursor, **values)`."""

    sql: str
    bound: Mapping[str, Any]
    rows: RowsOf = field(default_factory=RowsOf, compare=False, repr=False)

    @classmethod
    def of(cls, statement: ClauseElement) -> "DriverStatement":
        """Columns' Python-side defaults and onupdates are SQLAlchemy's to fill in at run
        time, which this path skips: a statement here names every value it writes."""
        compiled = statement.compile(dialect=_DIALECT)
        assert isinstance(compiled, SQLCompiler)
        filled_in = [*compiled.insert_prefetch, *compiled.update_prefetch]
        if filled_in:
            raise ValueError(f"give {', '.join(column.name for column in filled_in)} "
                             f"explicitly in: {compiled}")
        bound = {compiled.bind_names[bind]: bind.effective_value
                 for bind in compiled.binds.values() if not bind.required}
        return cls(str(compiled), bound)

    def run(self, cursor: DriverCursor, **values: Any) -> DriverCursor:
        rows = self.rows
        if cursor.row_factory is not rows.factory:
            cursor.row_factory = rows.factory
        try:
            cursor.execute(self.sql, {**self.bound, **values} if self.bound else values)
        except psycopg.Error as error:
            raise _surfaced(error, cursor.connection, self.sql) from error
        if not rows.learnt:
            rows.learn(cursor)
        return cursor

    def run_many(self, cursor: DriverCursor, rows: list[dict[str, Any]]) -> None:
        """Once per row of values, sent to the server as one batch."""
        cursor.row_factory = namedtuple_row
        try:
            cursor.executemany(self.sql, [{**self.bound, **values} for values in rows])
        except psycopg.Error as error:
            raise _surfaced(error, cursor.connection, self.sql) from error


def _surfaced(error: psycopg.Error, connection: psycopg.Connection | None = None,
             sql: str | None = None) -> DBAPIError:
    """The SQLAlchemy exception Core would have raised for `error` (IntegrityError,
    OperationalError, ...), marked `connection_invalidated` when the connection is gone."""
    gone = connection is not None and (
        connection.closed or _DIALECT.is_disconnect(error, connection, None))
    wrapped = DBAPIError.instance(sql, None, error, psycopg.Error, connection_invalidated=gone)
    assert isinstance(wrapped, DBAPIError)  # a psycopg.Error always is one
    return wrapped


def one_row(cursor: DriverCursor) -> Any:
    """The row a statement that always returns one (an INSERT or UPDATE ... RETURNING of a row
    it always writes) returned."""
    row = cursor.fetchone()
    assert row is not None
    return row


def array_text(values: Iterable[object]) -> str:
    """`values` as PostgreSQL writes an array in text, for a parameter its statement casts
    (`CAST(:ids AS bigint[])`). psycopg's list dumper works out a list's element type on
    every call: about 22k instructions a list, and a paid order sends seven. Every element
    is quoted, its backslashes and double quotes escaped, so any text reads back as it was;
    None has no text here (it would read back as the word), so it is refused."""
    return "{" + ",".join([_quoted_element(value) for value in values]) + "}"


def _quoted_element(value: object) -> str:
    if value is None:
        raise TypeError("array_text: an element is None")
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def sqlalchemy_url(url: str) -> str:
    """Accept plain `postgresql://` URLs and drive them with psycopg 3."""
    parsed = make_url(url)
    if parsed.drivername in ("postgres", "postgresql"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


class Database:
    def __init__(self, url: str, *, name: str, pool_size: int = 5, pool_timeout: float = 5.0,
                 statement_timeout_ms: int = 5000):
        self.url = sqlalchemy_url(url)
        self._options = {
            "pool_size": pool_size,
            "max_overflow": pool_size,
            "pool_timeout": pool_timeout,
            "connect_args": {
                "connect_timeout": 3,
                "application_name": name,
                # UTC sessions: timestamps leave the database already in UTC.
                "options": f"-c statement_timeout={statement_timeout_ms} -c timezone=UTC",
            },
        }
        self._lock = threading.Lock()
        self._owner_pid: int | None = None
        self._engine: Engine | None = None
        self._autocommit: Engine | None = None
        self._sessions: sessionmaker | None = None

    @classmethod
    def for_service(cls, name: str, settings) -> "Database":
        """The database described by a service's ServiceSettings."""
        return cls(settings.database_url, name=name, pool_size=settings.db_pool_size,
                   pool_timeout=settings.db_pool_timeout_seconds,
                   statement_timeout_ms=settings.db_statement_timeout_ms)

    @property
    def engine(self) -> Engine:
        """Transactions: `engine.begin()` for work of several statements that must all commit
        or none (psycopg opens each with a BEGIN round trip and ends it with a COMMIT)."""
        return self._pools()[0]

    @property
    def autocommit(self) -> Engine:
        """The same pool, each statement committing by itself: for reads (under READ COMMITTED
        every statement reads its own snapshot in a transaction too) and for work that is one
        statement, atomic on its own. Two round trips fewer than `engine.begin()`. Never for
        locks: a row or advisory lock taken here ends with its statement."""
        self._pools()
        assert self._autocommit is not None
        return self._autocommit

    def statements(self) -> "LentCursor":
        """A psycopg cursor whose every statement commits by itself (see `autocommit`);
        rows are named tuples."""
        return LentCursor(self.engine, autocommit=True)

    def atomic(self) -> "LentCursor":
        """A psycopg cursor in one transaction: committed when the block ends, rolled back if
        it raises; rows are named tuples."""
        return LentCursor(self.engine, autocommit=False)

    def keep_one_connection(self) -> "KeptConnection":
        """From now on in this context, until `.close()`: every `statements()` and `atomic()`
        block runs on one pooled connection (KeptConnection)."""
        return KeptConnection(self.engine)

    def _pools(self) -> tuple[Engine, sessionmaker]:
        # A pool inherited through fork would share sockets between workers: build our own.
        if self._owner_pid != current_pid() or self._engine is None or self._sessions is None:
            with self._lock:
                if self._owner_pid != current_pid() or self._engine is None:
                    self._engine = create_engine(self.url, **self._options)
                    check_connections_left_idle(self._engine)
                    self._autocommit = self._engine.execution_options(
                        isolation_level="AUTOCOMMIT")
                    self._sessions = sessionmaker(self._engine, expire_on_commit=False)
                    self._owner_pid = current_pid()
        assert self._engine is not None and self._sessions is not None  # noqa: PT018
        return self._engine, self._sessions

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """One unit of work: commits when the block ends, rolls back if it raises."""
        with self._pools()[1]() as session, session.begin():
            yield session

    @contextmanager
    def reading(self) -> Iterator[Session]:
        """A session for reads; nothing it does is committed."""
        with self._pools()[1]() as session:
            yield session

    def is_reachable(self) -> bool:
        try:
            with self.autocommit.connect() as connection:
                connection.execute(text("SELECT 1"))
        except SQLAlchemyError:
            return False
        return True

    def dispose(self) -> None:
        if self._engine is not None and self._owner_pid == current_pid():
            self._engine.dispose()
        self._owner_pid = self._engine = self._autocommit = self._sessions = None


# The connection the lends of this scope (a request) run on: Database.keep_one_connection().
_kept: ContextVar["KeptConnection | None"] = ContextVar("veloz_kept_connection", default=None)


class KeptConnection:
    """One pooled connection for every lend of a scope (veloz.web opens one per request): taken
    from the pool at the scope's first lend and given back when the scope closes, so a request
    that lends three times checks out once (a checkout and its checkin are two thirds of a
    lend's instructions: bench/README.md). A lend inside another lend, or on another engine,
    gets its own connection from the pool, as it would outside a scope. Between lends the
    connection is as the pool lends it (no transaction, autocommit off) and is checked as a
    checkout checks it (check_connections_left_idle); one that is gone is replaced."""

    __slots__ = ("_engine", "_idle_since", "_in_use", "_pooled", "_token")

    def __init__(self, engine: Engine):
        self._engine, self._in_use, self._idle_since = engine, False, 0.0
        self._pooled: PoolProxiedConnection | None = None
        self._token = _kept.set(self)

    def serves(self, engine: Engine) -> bool:
        return engine is self._engine and not self._in_use

    def take(self) -> PoolProxiedConnection:
        pooled = self._pooled
        if pooled is not None and pooled.is_valid and not _still_there(
                self._engine, pooled.driver_connection, time.monotonic() - self._idle_since):
            pooled.invalidate()
        if pooled is None or not pooled.is_valid:  # none yet, or a lend's error gave it up
            pooled = self._pooled = self._engine.raw_connection()
        self._in_use = True
        return pooled

    def put_back(self) -> None:
        self._in_use, self._idle_since = False, time.monotonic()

    def close(self) -> None:
        """The scope ends: the connection goes back to the pool."""
        _kept.reset(self._token)
        pooled, self._pooled = self._pooled, None
        if pooled is not None and pooled.is_valid:
            pooled.close()


class LentCursor:
    """`with` a psycopg cursor on a connection the pool lends for the block, given back at its
    end: committed first in a transaction (autocommit off), rolled back if the block raised.
    psycopg's errors surface as SQLAlchemy's, and a connection they show gone leaves the pool.
    A class, not generator context managers: every order lends eight of them, and two nested
    generators were a sixth of the cost of a lend (bench/README.md)."""

    __slots__ = ("_autocommit", "_connection", "_cursor", "_engine", "_kept", "_pooled")

    def __init__(self, engine: Engine, *, autocommit: bool):
        self._engine, self._autocommit = engine, autocommit
        kept = _kept.get()
        self._kept = kept if kept is not None and kept.serves(engine) else None

    def __enter__(self) -> DriverCursor:
        try:
            pooled = (self._kept.take() if self._kept is not None
                      else self._engine.raw_connection())
        except psycopg.Error as error:  # no connection to lend: the server refused or is gone
            raise _surfaced(error) from error
        connection: psycopg.Connection = pooled.driver_connection  # type: ignore[assignment]
        self._pooled, self._connection = pooled, connection
        try:
            if self._autocommit:
                connection.autocommit = True
            self._cursor: DriverCursor = connection.cursor(row_factory=namedtuple_row)
        except BaseException:
            self._give_back()
            raise
        return self._cursor

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 _traceback: object) -> None:
        self._cursor.close()
        if error is None and not self._autocommit:
            try:
                self._connection.commit()
            except psycopg.Error as failed:
                error = failed
        # psycopg's own errors (the COMMIT, a statement not sent by DriverStatement) surface as
        # SQLAlchemy's; either kind takes a connection it shows gone out of the pool.
        surfaced = (_surfaced(error, self._connection) if isinstance(error, psycopg.Error)
                    else error if isinstance(error, DBAPIError) else None)
        if surfaced is not None:
            _leaving_the_pool_if_gone(surfaced, self._pooled)
        self._give_back()
        if surfaced is not None and surfaced is not error:
            raise surfaced from error

    def _give_back(self) -> None:
        """Back to the pool as it lends a connection to SQLAlchemy: no transaction open,
        autocommit off."""
        connection = self._connection
        try:
            if not connection.closed:
                if connection.pgconn.transaction_status != TransactionStatus.IDLE:
                    connection.rollback()
                if self._autocommit:
                    connection.autocommit = False
        finally:
            if self._kept is not None:
                self._kept.put_back()  # an invalidated one is replaced at the next take
            else:
                self._pooled.close()


def _leaving_the_pool_if_gone(error: DBAPIError, pooled) -> DBAPIError:
    """A connection the error broke leaves the pool, as Core would have made it."""
    if error.connection_invalidated:
        pooled.invalidate(error.orig)
    return error


def check_connections_left_idle(engine: Engine, idle_seconds: float = IDLE_CHECK_SECONDS) -> None:
    """Before a pooled connection is used, ask the server if it is still there, and replace it
    if not, when the connection sat idle for `idle_seconds` (the database restarted, a
    failover or a proxy cut it) or when the server sent something while nobody asked (a
    terminated backend's FATAL and the end of the stream: seen without a round trip). Others
    are not asked (SQLAlchemy's pool_pre_ping would ask on every checkout: a round trip per
    transaction); one that dies while in use fails that transaction."""

    @event.listens_for(engine, "checkin")
    def note_idle_since(_dbapi_connection, record) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def check_if_idle_long_or_cut(dbapi_connection, record, _proxy) -> None:
        idle_for = time.monotonic() - record.info.get("idle_since", 0.0)
        if not _still_there(engine, dbapi_connection, idle_for, idle_seconds):
            raise DisconnectionError("the idle connection is gone")


def _still_there(engine: Engine, connection: Any, idle_for: float,
                 idle_seconds: float = IDLE_CHECK_SECONDS) -> bool:
    """Whether `connection` (the pool's DBAPI connection: psycopg's), idle for `idle_for`
    seconds, may be used: yes without asking unless it sat idle for `idle_seconds` or the
    server spoke unasked, else the server's answer to a ping."""
    if idle_for < idle_seconds and not _server_spoke_unasked(connection):
        return True
    try:
        engine.dialect.do_ping(connection)
    except engine.dialect.loaded_dbapi.Error:
        return False
    return True


def _server_spoke_unasked(connection: psycopg.Connection) -> bool:
    """Whether an idle connection has something to read: nothing is owed to it, so the server
    sent a message of its own (most often the FATAL of a terminated backend) or hung up."""
    return connection.closed or readable_now(connection.fileno())
