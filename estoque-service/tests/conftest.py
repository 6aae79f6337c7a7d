import pytest

from estoque.app import create_app
from estoque.config import EstoqueSettings
from veloz.dev.testing import migrated_test_database


@pytest.fixture(scope="session")
def database_url(postgres_server_url):
    return migrated_test_database(postgres_server_url, "estoque")


@pytest.fixture
def settings(database_url):
    return EstoqueSettings(database_url=database_url, db_pool_size=40)


@pytest.fixture
def app_factory():
    return create_app


@pytest.fixture
def db(app):
    return app.extensions["database"]


@pytest.fixture
def estoque(app):
    """The store and the use cases, as the app wires them."""
    return app.extensions["estoque"]


@pytest.fixture
def make_item(client):
    def make(quantity=10, price=10, **fields):
        response = client.post("/items", json={"name": "Camiseta", "quantity": quantity,
                                               "price": price, **fields})
        assert response.status_code == 201, response.json
        return response.json

    return make

