from pagamentos.models import metadata
from veloz.dev.testing import schema_differences


def test_health_reports_the_service_and_its_database(client):
    response = client.get("/health")

    assert response.status_code == 200
    assert response.get_json()["status"] == "healthy"
    assert response.get_json()["service"] == "pagamentos-service"


def test_readiness_and_liveness_answer_200(client):
    assert client.get("/readyz").status_code == 200
    assert client.get("/livez").status_code == 200


def test_readiness_is_503_when_the_database_is_unreachable(client_with):
    client = client_with(database_url="postgresql://nobody@127.0.0.1:1/none")

    assert client.get("/readyz").status_code == 503
    assert client.get("/health").status_code == 503


def test_metrics_are_prometheus_text(client):
    client.get("/payments")

    response = client.get("/metrics")

    assert response.status_code == 200
    assert b"flask_http_request_total" in response.data


def test_openapi_documents_every_payments_route(client):
    document = client.get("/openapi.json").get_json()

    assert set(document["paths"]) >= {"/payments", "/payments/{payment_id}",
                                      "/payments/{payment_id}/refund"}
    charge = document["paths"]["/payments"]["post"]
    assert {"201", "402", "409", "422"} <= set(charge["responses"])
    assert "ChargeRequest" in document["components"]["schemas"]
    assert client.get("/docs").status_code == 200


def test_request_id_is_echoed_and_carried_by_problems(client):
    response = client.get("/payments/404", headers={"X-Request-ID": "trace-123"})

    assert response.headers["X-Request-ID"] == "trace-123"
    assert response.get_json()["request_id"] == "trace-123"


def test_migrations_match_the_models(database_url):
    assert schema_differences(database_url, metadata) == []
