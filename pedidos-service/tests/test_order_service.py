from prometheus_client.parser import text_string_to_metric_families


def test_health_names_the_service(client):
    response = client.get("/health")

    assert response.status_code == 200
    assert response.json["status"] == "healthy"
    assert response.json["service"] == "pedidos-service"


def _settled(client, status: str, reason: str) -> float:
    """pedidos_orders_settled_total for one status and reason, as /metrics shows it now."""
    families = text_string_to_metric_families(client.get("/metrics").get_data(as_text=True))
    return sum(sample.value for family in families for sample in family.samples
               if sample.name == "pedidos_orders_settled_total"
               and sample.labels == {"status": status, "reason": reason})


def test_metrics_count_settled_orders_by_status_and_reason(buy, make_item, client):
    shirt = make_item(quantity=1)
    paid, short = _settled(client, "paid", "approved"), _settled(client, "rejected",
                                                                  "insufficient_stock")
    buy({shirt: 1})
    buy({shirt: 1})

    assert _settled(client, "paid", "approved") == paid + 1
    assert _settled(client, "rejected", "insufficient_stock") == short + 1


def test_the_openapi_document_describes_the_order_routes(client):
    paths = client.get("/openapi.json").json["paths"]

    assert {"/orders", "/orders/{order_id}", "/orders/{order_id}/events",
            "/orders/{order_id}/cancel"} <= set(paths)
    assert "requestBody" in paths["/orders"]["post"]
