"""Pytest fixtures shared by every service's tests: a real PostgreSQL, migrated, wiped per test.

Uses TEST_DATABASE_URL (a server URL; each service gets its own `<service>_test` database on
it) or else starts the embedded server under `.local/test-pgdata`.
"""

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool
from werkzeug.serving import make_server

from veloz.data.db import sqlalchemy_url
from veloz.data.migrate import upgrade
from veloz.dev.devdb import recreate_database, start_embedded_server

REPO_ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="session")
def postgres_server_url() -> str:
    configured = os.environ.get("TEST_DATABASE_URL")
    if configured:
        return configured
    return start_embedded_server(REPO_ROOT / ".local" / "test-pgdata")


@pytest.fixture
def databases_to_wipe(database_url) -> list[str]:
    """The databases a test may write to; a service whose tests reach others extends it."""
    return [database_url]


@pytest.fixture
def app(app_factory, settings, databases_to_wipe):
    """The service under test (each conftest gives `app_factory`, `settings`, `database_url`),
    its tables emptied after the test."""
    app = app_factory(settings)
    yield app
    app.extensions["database"].dispose()
    for url in databases_to_wipe:
        wipe_tables(url)


@pytest.fixture
def client(app):
    return app.test_client()


def migrated_test_database(server_url: str, package: str, database: str | None = None) -> str:
    """A fresh database (`<package>_test` unless named) at the package's newest migration;
    returns its URL."""
    url = recreate_database(server_url, database or f"{package}_test")
    upgrade(package, url)
    return url


def schema_differences(database_url: str, metadata) -> list:
    """What Alembic's autogenerate would change to make the database's schema the models'
    (`metadata`): empty when the migrations and the models agree."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    engine = create_engine(sqlalchemy_url(database_url))
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), metadata)
    engine.dispose()
    return differences


def wipe_tables(database_url: str) -> None:
    """Empty every table the service owns (not Alembic's), restarting ids."""
    engine = create_engine(sqlalchemy_url(database_url))
    with engine.begin() as connection:
        tables = connection.execute(text(
            "SELECT quote_ident(tablename) FROM pg_tables "
            "WHERE schemaname = 'public' AND tablename <> 'alembic_version'")).scalars().all()
        if tables:
            connection.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
    engine.dispose()


@contextmanager
def held_from_outside(database_url: str, statement: str, **values) -> Iterator[None]:
    """A lock `statement` takes, held in a transaction of the test's own until the block ends:
    a service's statement that needs it waits inside the service, as it would behind a paused
    database, so a test can make a call outlive its caller's timeout or two calls overlap."""
    engine = create_engine(sqlalchemy_url(database_url), poolclass=NullPool)
    try:
        with engine.connect() as connection, connection.begin():
            connection.execute(text(statement), values)
            yield
    finally:
        engine.dispose()


def lock_waiters(database_url: str) -> int:
    """How many transactions on the database's server wait for a lock."""
    engine = create_engine(sqlalchemy_url(database_url), poolclass=NullPool)
    try:
        with engine.connect() as connection:
            return connection.execute(text(
                "SELECT count(DISTINCT pid) FROM pg_locks WHERE NOT granted")).scalar_one()
    finally:
        engine.dispose()


@contextmanager
def served(app) -> Iterator[str]:
    """Serve a WSGI app over HTTP on 127.0.0.1 for the block; yields its URL."""
    service = RunningService(app)
    try:
        yield service.url
    finally:
        service.stop()


class RunningService:
    """A WSGI app served over HTTP on 127.0.0.1 from a background thread, until `stop()`
    (a test may stop it to play an outage)."""

    def __init__(self, app):
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()
        self.running = True

    def stop(self) -> None:
        if self.running:
            self.server.shutdown()
            self.server.server_close()
            self.running = False


def assert_answers_as_documented(app, *, max_examples: int = 10, headers: dict | None = None):
    """Fuzz every operation the app documents (schemathesis), with inputs that fit its OpenAPI
    document, inputs that break it, and valid inputs naming rows the run itself has likely
    made (ids 1 to 5). Every answer must be one the document promises: never a 5xx, a
    documented status and content type, a body and headers that fit their schemas.
    Fails listing each operation that broke its promise, with the request that showed it."""
    import schemathesis
    from schemathesis.core.result import Err

    schema = schemathesis.openapi.from_wsgi("/openapi.json", app)
    broken = []
    for result in schema.get_all_operations():
        if isinstance(result, Err):  # an operation the document describes unreadably
            raise result.err()
        operation = result.ok()
        for inputs, cases in _case_sources(operation, headers).items():
            try:
                _answer_as_documented(cases, max_examples)
            except (AssertionError, BaseExceptionGroup) as failure:
                broken.append(f"{operation.label} ({inputs}): {failure}")
    assert not broken, "\n\n".join(broken)


def _case_sources(operation, headers: dict | None) -> dict:
    from hypothesis import strategies
    from schemathesis import GenerationMode

    definition = operation.definition.raw
    parameters = definition.get("parameters", [])
    sources = {"valid inputs": operation.as_strategy(GenerationMode.POSITIVE, headers=headers)}
    if parameters or "requestBody" in definition:  # else there is nothing to break
        sources["invalid inputs"] = operation.as_strategy(GenerationMode.NEGATIVE,
                                                          headers=headers)
    ids = [p["name"] for p in parameters
           if p["in"] == "path" and p["schema"].get("type") == "integer"]
    if ids:  # random ids name no row; these reach the answers for rows that exist
        sources["valid inputs, existing ids"] = strategies.integers(1, 5).flatmap(
            lambda n: operation.as_strategy(GenerationMode.POSITIVE, headers=headers,
                                            path_parameters=dict.fromkeys(ids, n)))
    return sources


def _answer_as_documented(cases, max_examples: int) -> None:
    from hypothesis import HealthCheck, given, settings
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        response_headers_conformance,
        response_schema_conformance,
        status_code_conformance,
    )

    checks = [not_a_server_error, status_code_conformance, content_type_conformance,
              response_schema_conformance, response_headers_conformance]

    @given(case=cases)
    @settings(max_examples=max_examples, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    def answers_as_documented(case):
        case.validate_response(case.call(), checks=checks)

    answers_as_documented()

