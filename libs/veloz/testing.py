"""Pytest fixtures shared by every service's tests: a real PostgreSQL, migrated, wiped per test.

Uses TEST_DATABASE_URL (a server URL; each service gets its own `<service>_test` database on
it) or else starts the embedded server under `.local/test-pgdata`.
"""

import os
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from veloz.db import sqlalchemy_url
from veloz.devdb import recreate_database, start_embedded_server
from veloz.migrate import upgrade

REPO_ROOT = Path(__file__).resolve().parents[2]


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


def migrated_test_database(server_url: str, package: str) -> str:
    """A fresh `<package>_test` database at the newest migration; returns its URL."""
    url = recreate_database(server_url, f"{package}_test")
    upgrade(package, url)
    return url


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


def assert_no_server_errors(app, *, max_examples: int = 25, headers: dict | None = None):
    """Fuzz every operation the app documents, with inputs that fit its OpenAPI schemas and
    inputs that break them (schemathesis): no answer may be a 5xx."""
    import schemathesis
    from hypothesis import HealthCheck, given, settings

    schema = schemathesis.openapi.from_wsgi("/openapi.json", app)
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in schemathesis.GenerationMode:
            @given(case=operation.as_strategy(mode, headers=headers))
            @settings(max_examples=max_examples, deadline=None, database=None,
                      suppress_health_check=list(HealthCheck))
            def answers_without_a_server_error(case):
                response = case.call()
                assert response.status_code < 500, (
                    f"{case.method} {case.formatted_path} query={case.query} "
                    f"body={case.body!r} -> {response.status_code} {response.text[:300]}")

            answers_without_a_server_error()
