import pytest

from pagamentos.app import create_app
from pagamentos.config import PagamentosSettings
from veloz.dev.testing import migrated_test_database


@pytest.fixture(scope="session")
def database_url(postgres_server_url):
    return migrated_test_database(postgres_server_url, "pagamentos")


@pytest.fixture
def settings(database_url):
    """Deterministic by default: no random declines, no faults. Tests override fields."""
    return PagamentosSettings(database_url=database_url, payment_decline_rate=0.0,
                              db_pool_size=20)


@pytest.fixture
def app_factory():
    return create_app


@pytest.fixture
def client_with(settings, app):
    """A client of an app whose settings differ from the default ones by `overrides`
    (asking for `app` too, so what it stored is wiped after the test)."""
    apps = []

    def build(**overrides):
        apps.append(create_app(settings.model_copy(update=overrides)))
        return apps[-1].test_client()

    yield build
    for app in apps:
        app.extensions["database"].dispose()


@pytest.fixture
def stored_payments(app):
    """Count rows straight from the database, not through the API under test."""
    from sqlalchemy import func, select

    from pagamentos.models import Payment

    def count(**filters) -> int:
        with app.extensions["database"].reading() as session:
            return session.scalar(select(func.count()).select_from(Payment).filter_by(**filters))

    return count


APPROVING_CARD = "4242424242424242"
DECLINED_CARD = "4000000000000002"
NO_FUNDS_CARD = "4000000000009995"


@pytest.fixture
def charge(client):
    """POST /payments with a valid body; keyword arguments replace or add fields."""

    def post(headers=None, **fields):
        body = {"order_id": 1, "amount": 59.90, **fields}
        return client.post("/payments", json=body, headers=headers or {})

    return post
