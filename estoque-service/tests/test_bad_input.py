"""Every bad input answers a 4xx problem and changes nothing."""

import pytest
from sqlalchemy import text


def _count_items(client):
    return len(client.get("/items").json)


@pytest.mark.parametrize(("body", "field"), [
    ({"quantity": 1}, "name"),
    ({"name": ""}, "name"),
    ({"name": "x" * 201}, "name"),
    ({"name": "Camiseta", "quantity": "5"}, "quantity"),
    ({"name": "Camiseta", "quantity": 1.5}, "quantity"),
    ({"name": "Camiseta", "quantity": -1}, "quantity"),
    ({"name": "Camiseta", "price": -0.01}, "price"),
    ({"name": "Camiseta", "price": 1.999}, "price"),
    ({"name": "Camiseta", "price": 10000000000}, "price"),
    ({"name": "Camiseta", "price": "abc"}, "price"),
    ({"name": "Camiseta", "price": "59.90"}, "price"),
    ({"name": "Camiseta", "colour": "blue"}, "colour"),
    ({"name": None}, "name"),
])
def test_schema_violation_answers_422_naming_the_field(client, body, field):
    response = client.post("/items", json=body)

    assert response.status_code == 422
    assert response.content_type == "application/problem+json"
    assert field in [error["field"] for error in response.json["errors"]]
    assert _count_items(client) == 0


@pytest.mark.parametrize("raw", [b"{bad json", b"", b'{"name": "x",}', b"\xff\xfe"])
def test_malformed_json_answers_400(client, raw):
    response = client.post("/items", data=raw, content_type="application/json")

    assert response.status_code == 400
    assert response.json["status"] == 400
    assert _count_items(client) == 0


def test_json_that_is_not_an_object_answers_422(client):
    assert client.post("/items", json=[1, 2]).status_code == 422


def test_body_over_one_mebibyte_answers_413(client):
    huge = b'{"name": "' + b"x" * (2 * 1024 * 1024) + b'"}'

    response = client.post("/items", data=huge, content_type="application/json")

    assert response.status_code == 413
    assert response.content_type == "application/problem+json"
    assert _count_items(client) == 0


def test_body_that_is_not_json_answers_415(client):
    response = client.post("/items", data="name=Camiseta",
                           content_type="application/x-www-form-urlencoded")

    assert response.status_code == 415


def test_wrong_method_answers_405_with_allow_header(client):
    response = client.put("/items")

    assert response.status_code == 405
    assert "POST" in response.headers["Allow"]
    assert response.content_type == "application/problem+json"


def test_unknown_path_answers_404_problem(client):
    response = client.get("/nothing-here")

    assert response.status_code == 404
    assert response.json["title"] == "Not Found"


def test_problem_carries_the_request_id_the_client_sent(client):
    response = client.get("/items/42", headers={"X-Request-ID": "trace-123"})

    assert response.json["request_id"] == "trace-123"
    assert response.headers["X-Request-ID"] == "trace-123"


def test_reservation_with_repeated_item_is_refused(client, make_item):
    item = make_item()
    lines = [{"item_id": item["id"], "quantity": 1}] * 2

    response = client.post("/reservations", json={"order_id": 1, "items": lines})

    assert response.status_code == 422
    assert client.get(f"/items/{item['id']}").json["reserved"] == 0


def test_reservation_without_items_is_refused(client):
    assert client.post("/reservations", json={"order_id": 1, "items": []}).status_code == 422


@pytest.mark.parametrize(("method", "path", "body", "field"), [
    ("post", "/items", {"name": "Cami\u0000seta", "price": 1}, "name"),
    ("post", "/items", {"name": "Camiseta", "price": 1, "description": "\u0000"}, "description"),
    ("post", "/items", {"name": "Camiseta", "price": 1, "sku": "SKU\u0000"}, "sku"),
])
def test_a_nul_character_in_a_body_string_is_a_422_naming_the_field(client, method, path,
                                                                    body, field):
    response = getattr(client, method)(path, json=body)

    assert response.status_code == 422
    assert [error["field"] for error in response.json["errors"]] == [field]
    assert _count_items(client) == 0


def test_a_nul_character_in_a_patch_is_a_422_and_changes_nothing(client, make_item):
    item = make_item()

    response = client.patch(f"/items/{item['id']}", json={"name": "x\u0000"})

    assert response.status_code == 422
    assert client.get(f"/items/{item['id']}").json["name"] == item["name"]


def test_a_nul_character_in_the_query_string_is_a_422(client):
    response = client.get("/items?q=%00")

    assert response.status_code == 422
    assert response.json["errors"][0]["field"] == "q"


def test_a_reservation_whose_amount_passes_the_money_limit_is_a_422_reserving_nothing(client,
                                                                            make_item):
    cheap, dear = make_item(price=1), make_item(price=9999999999.99)

    response = client.post("/reservations", json={
        "order_id": 1, "items": [{"item_id": cheap["id"], "quantity": 1},
                                 {"item_id": dear["id"], "quantity": 2}]})

    assert response.status_code == 422
    assert response.json["type"].endswith(":amount-out-of-range")
    assert [error["field"] for error in response.json["errors"]] == ["items[1].quantity"]
    assert [(i["quantity"], i["reserved"]) for i in client.get("/items").json] == [(10, 0)] * 2
    assert client.post("/reservations", json={
        "order_id": 1, "items": [{"item_id": cheap["id"], "quantity": 1}]}).status_code == 201


def test_a_restock_past_what_the_stock_columns_hold_is_a_422_changing_nothing(client, db,
                                                                             make_item):
    item = make_item(quantity=1_000_000_000)
    with db.transaction() as session:  # years of restocks, in one step
        session.execute(text("UPDATE items SET quantity = 2147000000"))

    response = client.post(f"/items/{item['id']}/restock", json={"quantity": 1_000_000})

    assert response.status_code == 422
    assert response.json["errors"][0]["field"] == "quantity"
    assert client.get(f"/items/{item['id']}").json["quantity"] == 2_147_000_000
