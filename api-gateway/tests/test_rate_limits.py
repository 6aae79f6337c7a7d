import pytest


@pytest.fixture
def client(client_for):
    return client_for(rate_limit_anonymous="3/minute", rate_limit_default="5/minute")


def test_an_anonymous_caller_gets_429_with_retry_after_past_the_limit(client):
    assert [client.get("/items").status_code for _ in range(3)] == [200, 200, 200]
    refused = client.get("/items")
    assert refused.status_code == 429
    assert refused.content_type == "application/problem+json"
    assert 1 <= int(refused.headers["Retry-After"]) <= 61
    assert "Retry-After" not in client.get("/health").headers


def test_each_token_has_its_own_budget_apart_from_the_address(client, bearer):
    for _ in range(3):
        client.get("/items")
    assert client.get("/items").status_code == 429
    first, second = bearer("customer", sub="ana"), bearer("customer", sub="bia")
    assert [client.get("/items", headers=first).status_code for _ in range(6)] == \
        [200] * 5 + [429]
    assert client.get("/items", headers=second).status_code == 200


def test_admin_tokens_are_not_limited(client, bearer):
    admin = bearer("admin")
    assert {client.get("/items", headers=admin).status_code for _ in range(10)} == {200}


def test_health_metrics_and_docs_are_not_limited(client):
    for path in ("/health", "/metrics", "/openapi.json", "/livez"):
        assert {client.get(path).status_code for _ in range(5)} == {200}
