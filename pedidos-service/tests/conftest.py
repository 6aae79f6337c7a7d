"""pedidos against the real estoque and pagamentos apps, each on a real port with its own
migrated database (named apart from those services' own test databases)."""


import pytest
import simplejson
from sqlalchemy import func, select

from estoque.app import create_app as create_estoque
from estoque.config import EstoqueSettings
from pagamentos.app import create_app as create_pagamentos
from pagamentos.config import PagamentosSettings
from pedidos.app import create_app
from pedidos.config import PedidosSettings
from pedidos.models import Order
from pedidos.store import NewOrder
from veloz.data.migrate import upgrade
from veloz.dev.devdb import recreate_database
from veloz.dev.testing import RunningService, held_from_outside, migrated_test_database


def migrated_participant_database(server_url: str, package: str) -> str:
    url = recreate_database(server_url, f"pedidos_{package}_test")
    upgrade(package, url)
    return url


@pytest.fixture(scope="session")
def database_url(postgres_server_url):
    return migrated_test_database(postgres_server_url, "pedidos")


@pytest.fixture(scope="session")
def estoque_database_url(postgres_server_url):
    return migrated_participant_database(postgres_server_url, "estoque")


@pytest.fixture(scope="session")
def pagamentos_database_url(postgres_server_url):
    return migrated_participant_database(postgres_server_url, "pagamentos")


@pytest.fixture(scope="session")
def estoque_app(estoque_database_url):
    app = create_estoque(EstoqueSettings(database_url=estoque_database_url, db_pool_size=30))
    yield app
    app.extensions["database"].dispose()


@pytest.fixture(scope="session")
def pagamentos_app(pagamentos_database_url):
    app = create_pagamentos(PagamentosSettings(database_url=pagamentos_database_url,
                                               payment_decline_rate=0.0, db_pool_size=30))
    yield app
    app.extensions["database"].dispose()


@pytest.fixture
def estoque(estoque_app):
    service = RunningService(estoque_app)
    yield service
    service.stop()


@pytest.fixture
def pagamentos(pagamentos_app):
    service = RunningService(pagamentos_app)
    yield service
    service.stop()


@pytest.fixture
def serve():
    """Serve another app (or the same one on a new port) for the rest of the test."""
    started = []

    def start(app) -> RunningService:
        started.append(RunningService(app))
        return started[-1]

    yield start
    for service in started:
        service.stop()


@pytest.fixture
def settings(database_url, estoque, pagamentos):
    return PedidosSettings(database_url=database_url, estoque_url=estoque.url,
                           pagamentos_url=pagamentos.url, db_pool_size=30,
                           upstream_retries=1, upstream_backoff_seconds=0.05,
                           recovery_grace_seconds=0)


@pytest.fixture
def app_factory():
    return create_app


@pytest.fixture
def databases_to_wipe(database_url, estoque_database_url, pagamentos_database_url):
    return [database_url, estoque_database_url, pagamentos_database_url]


@pytest.fixture
def pedidos(app):
    """The use cases, as the app wires them."""
    return app.extensions["pedidos"]


@pytest.fixture
def held_order(pedidos):
    """An order whose saga stopped right after step 2 (stock held), as a crash would leave it:
    `held_order({item_id: quantity})` -> the order."""

    def hold(lines: dict[int, int]):
        wanted = tuple(lines.items())
        order_id = pedidos.saga.record_pending(NewOrder("Ana", None, wanted))
        return pedidos.saga.reserve(order_id, list(wanted))

    return hold


@pytest.fixture
def stock(estoque_app):
    return estoque_app.test_client()


@pytest.fixture
def payments(pagamentos_app):
    return pagamentos_app.test_client()


@pytest.fixture
def make_item(stock):
    def make(quantity=10, price="10", name="Camiseta"):
        response = stock.post("/items", data=f'{{"name": "{name}", "quantity": {quantity}, '
                                             f'"price": {price}}}',
                              content_type="application/json")
        assert response.status_code == 201, response.json
        return response.json["id"]

    return make


@pytest.fixture
def wire():
    """A response's JSON with money as Decimal, exactly as the wire carries it."""
    return lambda response: simplejson.loads(response.data, use_decimal=True)


@pytest.fixture
def item(stock, wire):
    """An item as estoque sees it now."""
    return lambda item_id: wire(stock.get(f"/items/{item_id}"))


@pytest.fixture
def buy(client):
    """POST /orders for `lines` ({item_id: quantity}); keyword arguments add body fields."""

    def post(lines, headers=None, **fields):
        payload = {"customer": "João Silva",
                   "items": [{"item_id": i, "quantity": q} for i, q in lines.items()], **fields}
        return client.post("/orders", json=payload, headers=headers or {})

    return post


@pytest.fixture
def stored_orders(app):
    """Count order rows straight from the database."""

    def count() -> int:
        with app.extensions["database"].reading() as session:
            return session.scalar(select(func.count()).select_from(Order))

    return count


@pytest.fixture
def stock_held(estoque_database_url):
    """`with stock_held(item_id):` the item's row locked from outside, so a reservation or
    restock of it waits inside estoque (as behind a paused database) until the block ends."""
    return lambda item_id: held_from_outside(
        estoque_database_url, "SELECT id FROM items WHERE id = :id FOR UPDATE", id=item_id)


@pytest.fixture
def charges_held(pagamentos_database_url):
    """`with charges_held(order_id):` the lock pagamentos takes for every charge and the
    closing of that order, held from outside until the block ends."""
    return lambda order_id: held_from_outside(
        pagamentos_database_url, "SELECT pg_advisory_xact_lock(:id)", id=order_id)
