def test_root_says_what_the_gateway_is(client):
    assert client.get("/").json == {
        "service": "Pedidos Veloz - API Gateway", "version": "1.0.0",
        "endpoints": ["/orders", "/payments", "/items", "/health", "/docs"]}


def test_health_is_200_when_every_service_answers(client):
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json == {"status": "healthy", "service": "api-gateway", "backends": {
        "pedidos": "healthy", "pagamentos": "healthy", "estoque": "healthy"}}


def test_health_is_503_and_names_the_service_that_does_not_answer(client_for, dead_url):
    response = client_for(pedidos_url=dead_url).get("/health")
    assert response.status_code == 503
    assert response.json["status"] == "degraded"
    assert response.json["backends"] == {"pedidos": "unreachable", "pagamentos": "healthy",
                                         "estoque": "healthy"}


def test_health_marks_a_service_answering_an_error_unhealthy(client, services):
    services["estoque"].health_status = 500
    response = client.get("/health")
    assert response.status_code == 503
    assert response.json["backends"]["estoque"] == "unhealthy"


def test_health_answers_fast_even_when_a_service_is_frozen(client, services):
    import time

    services["pagamentos"].delay = services["estoque"].delay = 2
    started = time.perf_counter()
    assert client.get("/health").status_code == 200  # /health itself is not delayed
    assert time.perf_counter() - started < 1


def test_the_gateway_stays_ready_while_a_service_is_down(client_for, dead_url):
    client = client_for(estoque_url=dead_url, pedidos_url=dead_url)
    assert client.get("/readyz").status_code == 200
    assert client.get("/livez").status_code == 200


def test_metrics_are_exposed(client):
    client.get("/items")
    assert b"flask_http_request_duration_seconds" in client.get("/metrics").data


def test_openapi_merges_the_services_routed_paths(client):
    document = client.get("/openapi.json").json
    assert {"/", "/health", "/items", "/items/{item_id}", "/reservations", "/orders",
            "/orders/{order_id}", "/payments"} <= set(document["paths"])
    assert "/internal" not in document["paths"], "only paths the gateway routes"


def test_openapi_declares_bearer_auth_where_the_access_table_asks_for_it(client):
    document = client.get("/openapi.json").json
    assert document["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    paths = document["paths"]
    assert "security" not in paths["/items"]["get"]
    assert paths["/orders/{order_id}"]["get"]["security"] == [{"bearerAuth": []}]
    assert paths["/payments"]["get"]["security"] == [{"bearerAuth": []}]


def test_openapi_keeps_clashing_schema_names_apart(client):
    document = client.get("/openapi.json").json
    schemas = document["components"]["schemas"]
    assert {"Item", "estoque_Item", "Order", "ProblemDetails"} <= set(schemas)
    order_item = schemas["Order"]["properties"]["items"]["$ref"].rsplit("/", 1)[1]
    assert "item_id" in schemas[order_item]["properties"]
    assert {order_item, "estoque_Item"} == {"Item", "estoque_Item"}
    assert "sku" in schemas["estoque_Item"]["properties"]


def test_openapi_leaves_out_a_service_that_is_down(client_for, dead_url):
    paths = client_for(pagamentos_url=dead_url).get("/openapi.json").json["paths"]
    assert "/payments" not in paths
    assert "/orders" in paths


def test_swagger_ui_is_served(client):
    assert b"swagger-ui" in client.get("/docs").data


def test_the_gateway_stops_being_ready_once_its_pod_is_told_to_stop(client, tmp_path,
                                                                    monkeypatch):
    from veloz.run import drain

    monkeypatch.setenv("DRAIN_FILE", str(tmp_path / "draining"))
    drain.main(["0"])
    answer = client.get("/readyz")
    assert (answer.status_code, answer.json["status"]) == (503, "draining")
    assert client.get("/livez").status_code == 200
