"""Requests an attacker sends to every service and the gateway: a forged Host, paths with
empty or dot segments, OPTIONS. Each gets a problem+json or a documented success, and no
answer points anywhere the client named."""

import pytest

HOSTILE_HOST = {"Host": "evil.example"}
SERVICES = ("estoque", "pagamentos", "pedidos")
LISTS = {"estoque": "/items", "pagamentos": "/payments", "pedidos": "/orders"}


@pytest.fixture(scope="module")
def two_of_everything(gateway, bearer):
    """Two items, two orders and so two payments: every list has a next page at limit=1."""
    admin = bearer("admin")
    for _ in range(2):
        item = gateway.test_client().post(
            "/items", headers=admin, json={"name": "Meia", "quantity": 5, "price": 9.9}).json
        order = gateway.test_client().post(
            "/orders", headers=admin, json={"customer": "Ana",
                                            "items": [{"item_id": item["id"], "quantity": 1}]})
        assert order.status_code == 201, order.json
    return admin


def _clients(services, gateway):
    return {"gateway": gateway.test_client(),
            **{name: services[name].test_client() for name in SERVICES}}


@pytest.mark.parametrize("service", SERVICES)
@pytest.mark.parametrize("hop", ["direct", "gateway"])
def test_a_paging_link_never_carries_the_host_a_client_sent(
        services, gateway, two_of_everything, service, hop):
    client = gateway.test_client() if hop == "gateway" else services[service].test_client()

    response = client.get(f"{LISTS[service]}?limit=1", headers={
        **HOSTILE_HOST, **two_of_everything})

    assert response.status_code == 200
    assert "evil.example" not in response.headers["Link"]
    assert response.headers["Link"].startswith(f"<{LISTS[service]}?")


@pytest.mark.parametrize("path", [
    "//items//1", "/items//1", "//items", "/items/", "/items/1/", "/items//..//payments",
    "//orders", "/orders/", "//payments", "/health/", "//health", "//openapi.json"])
def test_a_path_with_empty_segments_or_a_trailing_slash_is_a_404_problem_never_a_redirect(
        services, gateway, two_of_everything, path):
    for name, client in _clients(services, gateway).items():
        # PATH_INFO as a server passes it: the test client would read `//x` as a host name.
        response = client.get("/", environ_overrides={"PATH_INFO": path},
                              headers={**HOSTILE_HOST, **two_of_everything})

        assert response.status_code == 404, (name, path, response.status_code)
        assert response.content_type == "application/problem+json", (name, path)
        assert "Location" not in response.headers, (name, path)


@pytest.mark.parametrize(("path", "allowed"), [
    ("/orders", {"GET", "HEAD", "POST"}),
    ("/orders/1", {"GET", "HEAD"}),
    ("/items", {"GET", "HEAD", "POST"}),
    ("/items/1", {"GET", "HEAD", "PATCH", "DELETE"}),
    ("/payments", {"GET", "HEAD", "POST"}),
])
def test_options_is_a_405_problem_whose_allow_lists_exactly_what_the_route_takes(
        services, gateway, two_of_everything, path, allowed):
    owner = {"orders": "pedidos", "items": "estoque", "payments": "pagamentos"}
    direct = services[owner[path.split("/")[1]]].test_client()
    for client in (direct, gateway.test_client()):
        response = client.options(path, headers=two_of_everything)

        assert response.status_code == 405
        assert response.content_type == "application/problem+json"
        assert set(response.headers["Allow"].replace(" ", "").split(",")) == allowed


def test_options_on_a_servers_own_route_is_a_405_problem_too(services, gateway):
    for name, client in _clients(services, gateway).items():
        response = client.options("/health")

        assert response.status_code == 405, name
        assert response.content_type == "application/problem+json", name
        assert set(response.headers["Allow"].replace(" ", "").split(",")) == {"GET", "HEAD"}


def test_options_through_the_gateway_meets_the_access_table_like_any_other_method(gateway):
    response = gateway.test_client().options("/orders")

    assert response.status_code == 401
    assert response.content_type == "application/problem+json"
