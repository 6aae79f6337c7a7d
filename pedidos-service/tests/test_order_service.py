def test_health_names_the_service(client):
    response = client.get("/health")

    assert response.status_code == 200
    assert response.json["status"] == "healthy"
    assert response.json["service"] == "pedidos-service"


def test_metrics_count_orders_by_outcome(buy, make_item, client):
    shirt = make_item(quantity=1)
    buy({shirt: 1})
    buy({shirt: 1})

    metrics = client.get("/metrics").get_data(as_text=True)

    assert 'pedidos_orders_total{outcome="paid"} 1.0' in metrics
    assert 'pedidos_orders_total{outcome="rejected"} 1.0' in metrics


def test_the_openapi_document_describes_the_order_routes(client):
    paths = client.get("/openapi.json").json["paths"]

    assert {"/orders", "/orders/{order_id}", "/orders/{order_id}/events",
            "/orders/{order_id}/cancel"} <= set(paths)
    assert "requestBody" in paths["/orders"]["post"]
