import pytest

GOOD_LINE = {"item_id": 1, "quantity": 1}


@pytest.mark.parametrize(("payload", "field"), [
    ({"items": [GOOD_LINE]}, "customer"),
    ({"customer": "", "items": [GOOD_LINE]}, "customer"),
    ({"customer": "   ", "items": [GOOD_LINE]}, "customer"),
    ({"customer": "x" * 201, "items": [GOOD_LINE]}, "customer"),
    ({"customer": 7, "items": [GOOD_LINE]}, "customer"),
    ({"customer": "Ana"}, "items"),
    ({"customer": "Ana", "items": []}, "items"),
    ({"customer": "Ana", "items": [{"item_id": i, "quantity": 1} for i in range(1, 102)]},
     "items"),
    ({"customer": "Ana", "items": [GOOD_LINE, GOOD_LINE]}, "items"),
    ({"customer": "Ana", "items": [{"item_id": 1, "quantity": 0}]}, "items[0].quantity"),
    ({"customer": "Ana", "items": [{"item_id": 1, "quantity": 1001}]}, "items[0].quantity"),
    ({"customer": "Ana", "items": [{"item_id": 1, "quantity": "2"}]}, "items[0].quantity"),
    ({"customer": "Ana", "items": [{"item_id": 1, "quantity": 1.5}]}, "items[0].quantity"),
    ({"customer": "Ana", "items": [{"item_id": 0, "quantity": 1}]}, "items[0].item_id"),
    ({"customer": "Ana", "items": [{"item_id": 1}]}, "items[0].quantity"),
    ({"customer": "Ana", "items": [{**GOOD_LINE, "price": 1}]}, "items[0].price"),
    ({"customer": "Ana", "items": [GOOD_LINE], "total": 1}, "total"),
    ({"customer": "Ana", "items": [GOOD_LINE], "payment": {"method": "cheque"}},
     "payment.method"),
    ({"customer": "Ana", "items": [GOOD_LINE], "payment": {}}, "payment.method"),
    ({"customer": "Ana", "items": [GOOD_LINE],
      "payment": {"method": "pix", "card_number": "4242424242424242"}}, "payment.card_number"),
    ({"customer": "Ana", "items": [GOOD_LINE],
      "payment": {"method": "credit_card", "card_number": "4242-4242"}}, "payment.card_number"),
    ([GOOD_LINE], "body"),
])
def test_an_invalid_order_is_a_422_naming_the_field_and_stores_nothing(client, stored_orders,
                                                                       payload, field):
    response = client.post("/orders", json=payload)

    assert response.status_code == 422
    assert response.content_type == "application/problem+json"
    assert field in [error["field"] for error in response.json["errors"]]
    assert stored_orders() == 0


@pytest.mark.parametrize(("send", "status"), [
    ({"data": "{not json", "content_type": "application/json"}, 400),
    ({"data": "customer=Ana", "content_type": "application/x-www-form-urlencoded"}, 415),
    ({"data": '{"customer": "' + "x" * (1024 * 1024) + '"}',
      "content_type": "application/json"}, 413),
    ({"json": {"customer": "Ana", "items": [GOOD_LINE]},
      "headers": {"Idempotency-Key": "k" * 256}}, 422),
])
def test_a_malformed_request_is_a_problem_and_stores_nothing(client, stored_orders, send,
                                                             status):
    response = client.post("/orders", **send)

    assert response.status_code == status
    assert response.content_type == "application/problem+json"
    assert stored_orders() == 0


@pytest.mark.parametrize(("method", "path", "status"), [
    ("get", "/orders/999", 404), ("get", "/orders/999/events", 404),
    ("delete", "/orders", 405), ("put", "/orders/1", 405),
    ("get", "/orders?status=lost", 422), ("get", "/orders?limit=0", 422),
    ("get", "/orders?limit=501", 422), ("get", "/orders?after=-1", 422),
    ("get", "/orders?colour=red", 422),
])
def test_bad_reads_are_problems_not_errors(client, method, path, status):
    response = getattr(client, method)(path)

    assert response.status_code == status
    assert response.content_type == "application/problem+json"


def test_a_nul_character_in_the_customer_is_a_422_and_stores_nothing(buy, stored_orders):
    response = buy({1: 1}, customer="Jo\u0000ão")

    assert response.status_code == 422
    assert [error["field"] for error in response.json["errors"]] == ["customer"]
    assert stored_orders() == 0


def test_a_nul_character_in_a_list_filter_is_a_422(client):
    response = client.get("/orders?customer=%00")

    assert response.status_code == 422
    assert response.json["errors"][0]["field"] == "customer"
