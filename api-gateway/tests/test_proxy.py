import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.app import create_app

ADMIN, CUSTOMER = "admin", "customer"


def test_a_call_reaches_the_owning_service_with_method_path_query_and_body(client, bearer):
    response = client.post("/orders?dry=1&x=%C3%A9", data='{"customer": "João"}'.encode(),
                           content_type="application/json", headers=bearer(CUSTOMER))
    assert response.status_code == 200
    echoed = response.json
    assert (echoed["service"], echoed["method"], echoed["path"]) == ("pedidos", "POST", "/orders")
    assert echoed["query"] == "dry=1&x=%C3%A9"
    assert echoed["body"] == '{"customer": "João"}'
    assert echoed["headers"]["Content-Type"] == "application/json"


def test_each_collection_is_routed_to_its_service(client, bearer):
    owners = {path: client.get(path, headers=bearer(ADMIN)).json["service"]
              for path in ("/items/1", "/reservations/1", "/orders/1", "/payments/1")}
    assert owners == {"/items/1": "estoque", "/reservations/1": "estoque",
                      "/orders/1": "pedidos", "/payments/1": "pagamentos"}


def test_client_sent_identity_headers_are_replaced_by_the_tokens(client, bearer):
    forged = {"X-User-Id": "admin-1", "X-User-Roles": "admin"}
    headers = client.get("/orders/1", headers={**bearer(CUSTOMER, sub="u-7"), **forged}
                         ).json["headers"]
    assert (headers["X-User-Id"], headers["X-User-Roles"]) == ("u-7", "customer")
    assert "Authorization" not in headers


def test_an_anonymous_call_carries_no_identity_even_if_the_client_sends_one(client):
    headers = client.get("/items", headers={"X-User-Id": "admin-1", "X-User-Roles": "admin"}
                         ).json["headers"]
    assert "X-User-Id" not in headers
    assert "X-User-Roles" not in headers


def test_hop_by_hop_headers_stay_at_the_gateway_and_end_to_end_ones_pass(client):
    sent = {"Connection": "keep-alive, X-Private-Hop", "X-Private-Hop": "1",
            "Keep-Alive": "timeout=5", "TE": "trailers", "Proxy-Authorization": "Basic eA==",
            "Upgrade": "h2c", "Accept-Language": "pt-BR", "X-Custom": "kept"}
    received = {name.lower() for name in client.get("/items", headers=sent).json["headers"]}
    assert not received & {"x-private-hop", "keep-alive", "te", "proxy-authorization",
                           "upgrade"}
    assert {"accept-language", "x-custom", "x-forwarded-for"} <= received


def test_a_services_hop_by_hop_and_gateway_only_headers_stay_behind_the_gateway(client):
    answered = ("Connection: X-Hop-Only,X-Hop-Only: 1,Keep-Alive: timeout=5,"
                "Proxy-Authenticate: Basic,RateLimit-Remaining: 7,Server: granian,"
                "X-Kept: yes,Cache-Control: no-store")
    response = client.get("/items", headers={"X-Echo-Header": answered})
    assert response.status_code == 200
    names = [name.lower() for name, _ in response.headers]
    assert not {"x-hop-only", "keep-alive", "proxy-authenticate", "server"} & set(names)
    assert response.headers.getlist("RateLimit-Remaining") != ["7"]  # the gateway's own
    assert names.index("x-served-by") < names.index("x-kept") < names.index("cache-control")
    assert response.headers["Link"].startswith("</items?after=2")


def test_every_connection_header_of_an_answer_names_headers_to_drop():
    from http.client import HTTPMessage

    from gateway.backends import Backend
    from gateway.proxy import _relayed_headers
    from veloz.net.client import Answer

    sent = HTTPMessage()
    for name, value in [("Connection", "close"), ("X-First", "1"), ("Connection", "X-Second"),
                        ("X-Second", "2"), ("X-Third", "3")]:
        sent[name] = value
    backend = Backend.__new__(Backend)  # only its client's address is read, for Link
    assert _relayed_headers(Answer(200, sent, b""), backend) == [("X-First", "1"),
                                                                  ("X-Third", "3")]


def test_the_request_id_is_passed_on_and_echoed(client):
    response = client.get("/items", headers={"X-Request-ID": "trace-42",
                                             "X-Echo-Header": "X-Request-ID: the-service-own"})
    assert response.headers.getlist("X-Request-ID") == ["trace-42"]
    assert response.json["headers"]["X-Request-Id"] == "trace-42"


def test_a_request_id_is_made_when_the_client_sends_none(client):
    response = client.get("/items")
    made = response.headers["X-Request-ID"]
    assert len(made) == 36
    assert response.json["headers"]["X-Request-Id"] == made


def test_a_protected_route_without_token_is_401_with_www_authenticate(client):
    response = client.post("/orders", json={})
    assert response.status_code == 401
    assert response.content_type == "application/problem+json"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_an_expired_token_is_401(client, settings_for):
    from gateway.auth import TokenAuthority

    expired = TokenAuthority(settings_for()).mint("u-1", [CUSTOMER], ttl_seconds=-10)
    response = client.get("/orders/1", headers={"Authorization": f"Bearer {expired}"})
    assert response.status_code == 401
    assert "expired" in response.json["detail"]


@pytest.mark.parametrize(("role", "method", "path", "status"), [
    (CUSTOMER, "GET", "/orders", 200),
    (CUSTOMER, "GET", "/payments", 403),
    (CUSTOMER, "POST", "/items", 403),
    (CUSTOMER, "POST", "/reservations", 403),
    (CUSTOMER, "POST", "/orders", 200),
    (CUSTOMER, "GET", "/orders/1", 200),
    (CUSTOMER, "GET", "/orders/1/events", 200),
    (CUSTOMER, "POST", "/orders/1/cancel", 200),
    (ADMIN, "GET", "/orders", 200),
    (ADMIN, "POST", "/payments/1/refund", 200),
    (ADMIN, "DELETE", "/items/1", 200),
    (ADMIN, "PATCH", "/items/1", 200),
    (None, "GET", "/items/1", 200),
    (None, "GET", "/payments", 401),
])
def test_the_access_table_is_enforced_at_the_door(client, bearer, role, method, path, status):
    response = client.open(path, method=method, headers=bearer(role) if role else {})
    assert response.status_code == status
    if status == 403:
        assert response.content_type == "application/problem+json"


def test_a_service_error_is_passed_through_unchanged(client, services):
    started = time.perf_counter()
    response = client.get("/items/9", headers={"X-Echo-Status": "503"})
    assert response.status_code == 503
    assert response.content_type == "application/problem+json"
    assert response.json == {"type": "urn:test", "title": "from the service", "status": 503}
    assert services["estoque"].calls == 1, "a service's own answer is not retried"
    assert time.perf_counter() - started < 0.5


def test_paging_links_point_at_the_gateway(client):
    link = client.get("/items?limit=2").headers["Link"]
    assert link == '</items?after=2&limit=2>; rel="next"'


def test_a_clients_host_header_never_becomes_part_of_a_link(client):
    """A service's absolute link loses the service's address; the Host a client sent is never
    put in its place (a link built from it would send the next request wherever it says)."""
    response = client.get("/items?limit=2", headers={"Host": "evil.example"})
    assert "evil.example" not in response.headers["Link"]
    assert response.headers["Link"].startswith("</items?")


def test_dot_segments_cannot_reach_another_route(client):
    assert client.get("/items/../payments").status_code == 404


def test_a_body_over_one_mebibyte_is_413(client, bearer, services):
    response = client.post("/items", data=b"x" * (2 * 1024 * 1024),
                           headers={**bearer(ADMIN), "Content-Type": "application/json"})
    assert response.status_code == 413
    assert response.content_type == "application/problem+json"
    assert services["estoque"].calls == 0


def test_a_dead_service_is_503_once_the_connect_budget_is_spent(client_for, dead_url):
    client = client_for(estoque_url=dead_url, upstream_connect_budget_seconds=0.3)
    started = time.perf_counter()
    response = client.get("/items")
    assert response.status_code == 503
    assert response.json["type"].endswith("upstream-unavailable")
    assert 0.25 < time.perf_counter() - started < 0.8


def test_a_frozen_service_is_504_within_its_read_timeout(client_for, services):
    services["estoque"].delay = 1.5
    client = client_for(estoque_read_timeout_seconds=0.3)
    started = time.perf_counter()
    response = client.get("/items")
    assert response.status_code == 504
    assert response.content_type == "application/problem+json"
    assert time.perf_counter() - started < 0.3 + 0.3


def test_the_circuit_opens_once_enough_calls_fail_then_probes_close_it(client_for, services):
    services["estoque"].delay = 0.6
    client = client_for(estoque_read_timeout_seconds=0.2)
    assert [client.get("/items").status_code for _ in range(3)] == [504, 504, 504]
    started = time.perf_counter()
    refused = client.get("/items")
    assert refused.status_code == 503
    assert refused.json["type"].endswith("circuit-open")
    assert int(refused.headers["Retry-After"]) >= 1
    assert time.perf_counter() - started < 0.05
    services["estoque"].delay = 0
    time.sleep(0.6)
    assert [client.get("/items").status_code for _ in range(2)] == [200, 200]


def test_one_open_circuit_leaves_the_other_services_alone(client_for, dead_url, bearer):
    client = client_for(pagamentos_url=dead_url)
    for _ in range(4):
        client.get("/payments", headers=bearer(ADMIN))
    assert client.get("/payments", headers=bearer(ADMIN)).json["type"].endswith("circuit-open")
    assert client.get("/items").status_code == 200


def test_nothing_is_built_at_import_time(settings_for):
    first, second = create_app(settings_for()), create_app(settings_for())
    assert first.extensions["backends"] is not second.extensions["backends"]


def reference_outgoing_headers(served, identity) -> dict[str, str]:
    """What the gateway passed on when it read the caller's headers through werkzeug's
    `request.headers`: the meaning `_outgoing_headers` keeps while it reads the environ."""
    from gateway.proxy import NOT_FORWARDED, _connection_listed

    sent = served.headers
    dropped = NOT_FORWARDED | _connection_listed(sent.get("Connection"), NOT_FORWARDED)
    headers = {name: value for name, value in sent.items()
               if name.lower() not in dropped and not name.lower().startswith("proxy-")}
    forwarded_for, client = sent.get("X-Forwarded-For"), served.remote_addr or "unknown"
    headers["X-Forwarded-For"] = f"{forwarded_for}, {client}" if forwarded_for else client
    headers["Accept-Encoding"] = "identity"
    if identity is not None:
        headers["X-User-Id"], headers["X-User-Roles"] = identity.subject, ",".join(
            sorted(identity.roles))
    return headers


_header_names = st.sampled_from([
    "Accept", "Accept-Language", "Connection", "Keep-Alive", "Te", "Upgrade", "Host",
    "Content-Type", "Content-Length", "Authorization", "X-User-Id", "X-Request-Id",
    "Proxy-Authorization", "Proxy-Anything", "X-Forwarded-For", "X-Private-Hop", "X_Under",
    "x-lower-case", "Accept-Encoding", "Traceparent"])
_header_values = st.sampled_from(["", "1", "keep-alive", "keep-alive, X-Private-Hop",
                                  "close,  x-lower-case ,", "Upgrade, Te", "application/json"])


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(_header_names, _header_values, max_size=8),
       st.sampled_from([None, ("u-7", frozenset({"customer", "admin"}))]))
def test_the_headers_passed_on_are_those_werkzeugs_request_headers_give(sent, identity):
    from flask import Request
    from werkzeug.test import EnvironBuilder

    from gateway.auth import Identity
    from gateway.proxy import _outgoing_headers

    served = Request(EnvironBuilder(path="/items", headers=sent).get_environ())
    caller = Identity(identity[0], identity[1]) if identity else None
    assert _outgoing_headers(served, caller) == reference_outgoing_headers(served, caller)
