"""Every bad input answers a 4xx problem and changes nothing."""

import pytest


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
