"""With its database unreachable the service says so: 503s that leak nothing, never a 500."""

import pytest

from estoque.app import create_app
from estoque.config import EstoqueSettings
from veloz.dev.devstack import free_port


@pytest.fixture
def cut_off_client():
    nowhere = f"postgresql://postgres@127.0.0.1:{free_port()}/estoque_db"
    app = create_app(EstoqueSettings(database_url=nowhere))
    yield app.test_client()
    app.extensions["database"].dispose()


def test_readiness_and_health_fail_while_the_database_is_unreachable(cut_off_client):
    assert cut_off_client.get("/livez").status_code == 200
    assert cut_off_client.get("/readyz").status_code == 503
    health = cut_off_client.get("/health")
    assert health.status_code == 503
    assert health.json["checks"] == {"database": "unreachable"}


def test_requests_get_a_503_problem_without_sql_or_traces(cut_off_client):
    response = cut_off_client.post("/items", json={"name": "Camiseta", "quantity": 1,
                                                        "price": 10})

    assert response.status_code == 503
    assert response.content_type == "application/problem+json"
    assert response.headers["Retry-After"]
    text = response.get_data(as_text=True)
    assert "SELECT" not in text
    assert "INSERT" not in text
    assert "Traceback" not in text
    assert "127.0.0.1" not in text
