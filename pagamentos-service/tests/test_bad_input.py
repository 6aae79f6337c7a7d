import json

import pytest

APPROVING_CARD = "4242424242424242"

VALID = {"order_id": 1, "amount": 10.5}


@pytest.fixture
def post_raw(client):
    def post(data, content_type="application/json"):
        return client.post("/payments", data=data, content_type=content_type)

    return post


def assert_problem(response, status):
    assert response.status_code == status
    assert response.content_type == "application/problem+json"
    problem = response.get_json()
    assert problem["status"] == status
    assert {"type", "title", "detail", "instance", "request_id"} <= set(problem)
    return problem


def test_malformed_json_is_a_400(post_raw, stored_payments):
    assert_problem(post_raw(b'{"order_id": 1, "amount":'), 400)
    assert stored_payments() == 0


def test_a_body_that_is_not_json_is_a_415(post_raw, stored_payments):
    assert_problem(post_raw(b"order_id=1", content_type="text/plain"), 415)
    assert stored_payments() == 0


@pytest.mark.parametrize(("change", "field"), [
    ({"amount": "abc"}, "amount"),
    ({"amount": "10.5"}, "amount"),
    ({"amount": -5}, "amount"),
    ({"amount": 0}, "amount"),
    ({"amount": 10.123}, "amount"),
    ({"amount": 10_000_000_000}, "amount"),
    ({"amount": True}, "amount"),
    ({"amount": None}, "amount"),
    ({"order_id": "1"}, "order_id"),
    ({"order_id": 0}, "order_id"),
    ({"order_id": 1.5}, "order_id"),
    ({"method": "cash"}, "method"),
    ({"card_number": "4242-4242-4242-4242"}, "card_number"),
    ({"card_number": "42424242424"}, "card_number"),
    ({"card_number": 4242424242424242}, "card_number"),
    ({"method": "pix", "card_number": APPROVING_CARD}, "card_number"),
    ({"method": "boleto", "card_number": APPROVING_CARD}, "card_number"),
    ({"currency": "BRL"}, "currency"),
])
def test_schema_violations_are_a_422_naming_the_field(post_raw, stored_payments, change, field):
    problem = assert_problem(post_raw(json.dumps({**VALID, **change})), 422)

    assert field in [error["field"] for error in problem["errors"]]
    assert stored_payments() == 0


@pytest.mark.parametrize("missing", ["order_id", "amount"])
def test_a_missing_required_field_is_a_422(post_raw, stored_payments, missing):
    body = {key: value for key, value in VALID.items() if key != missing}

    problem = assert_problem(post_raw(json.dumps(body)), 422)

    assert problem["errors"][0]["field"] == missing
    assert stored_payments() == 0


@pytest.mark.parametrize("body", [b"[]", b"null", b'"text"', b"42"])
def test_a_body_that_is_not_an_object_is_a_422(post_raw, body):
    assert_problem(post_raw(body), 422)


def test_a_body_over_1_mib_is_a_413(post_raw, stored_payments):
    padding = "x" * (2 * 1024 * 1024)

    assert_problem(post_raw(json.dumps({**VALID, "note": padding})), 413)
    assert stored_payments() == 0


def test_a_wrong_method_is_a_405_with_allow(client):
    response = client.delete("/payments")

    assert_problem(response, 405)
    assert "POST" in response.headers["Allow"]


@pytest.mark.parametrize("query", ["limit=0", "limit=501", "limit=x", "after=-1",
                                   "status=pending", "order_id=abc", "colour=red"])
def test_a_bad_list_query_is_a_422(client, query):
    assert_problem(client.get(f"/payments?{query}"), 422)


def test_an_unknown_payment_is_a_404(client):
    assert_problem(client.get("/payments/999"), 404)
    assert_problem(client.post("/payments/999/refund"), 404)


def test_a_non_numeric_payment_id_is_a_404(client):
    assert_problem(client.get("/payments/abc"), 404)
