"""Database engine and sessions, created lazily in each process (never shared across a fork)."""

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from sqlalchemy import Engine, Table, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

# Constraint names every service's tables share, so migrations name things predictably.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


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
        self._sessions: sessionmaker | None = None

    @classmethod
    def for_service(cls, name: str, settings) -> "Database":
        """The database described by a service's ServiceSettings."""
        return cls(settings.database_url, name=name, pool_size=settings.db_pool_size,
                   pool_timeout=settings.db_pool_timeout_seconds,
                   statement_timeout_ms=settings.db_statement_timeout_ms)

    @property
    def engine(self) -> Engine:
        return self._pools()[0]

    def _pools(self) -> tuple[Engine, sessionmaker]:
        # A pool inherited through fork would share sockets between workers: build our own.
        if self._owner_pid != os.getpid() or self._engine is None or self._sessions is None:
            with self._lock:
                if self._owner_pid != os.getpid() or self._engine is None:
                    self._engine = create_engine(self.url, **self._options)
                    check_connections_left_idle(self._engine)
                    self._sessions = sessionmaker(self._engine, expire_on_commit=False)
                    self._owner_pid = os.getpid()
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
            with self.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except SQLAlchemyError:
            return False
        return True

    def dispose(self) -> None:
        if self._engine is not None and self._owner_pid == os.getpid():
            self._engine.dispose()
        self._owner_pid = self._engine = self._sessions = None


def check_connections_left_idle(engine: Engine, idle_seconds: float = IDLE_CHECK_SECONDS) -> None:
    """Before a pooled connection that sat idle for `idle_seconds` is used, ask the server if
    it is still there, and replace it if not: the database restarted, a failover or a proxy
    cut it. Connections in steady use are not asked (SQLAlchemy's pool_pre_ping would ask on
    every checkout: a round trip per transaction); one that dies while in use fails that
    transaction, and SQLAlchemy then discards the whole pool of the process."""

    @event.listens_for(engine, "checkin")
    def note_idle_since(_dbapi_connection, record) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def check_if_idle_too_long(dbapi_connection, record, _proxy) -> None:
        if time.monotonic() - record.info.get("idle_since", 0.0) < idle_seconds:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as error:
            raise DisconnectionError("the idle connection is gone") from error

