"""Items: the catalog contract of API.md, seen over HTTP."""

from decimal import Decimal

import pytest
from sqlalchemy import text


def test_new_item_is_created_with_its_price_as_an_exact_number(client):
    response = client.post("/items", json={"name": "Camiseta", "quantity": 50, "price": 59.90})

    assert response.status_code == 201
    assert response.headers["Location"] == f"/items/{response.json['id']}"
    assert b'"price":59.9' in response.data
    assert response.json["quantity"] == 50
    assert response.json["reserved"] == 0


def test_item_defaults_to_no_stock(client):
    response = client.post("/items", json={"name": "Brinde", "price": 0.01})

    assert response.status_code == 201
    assert (response.json["quantity"], response.json["price"]) == (0, Decimal("0.01"))


@pytest.mark.parametrize("body", [{"name": "Brinde"}, {"name": "Brinde", "price": 0},
                                  {"name": "Brinde", "price": 0.0}])
def test_an_item_without_a_price_above_zero_is_refused_with_a_422_naming_price(client, body):
    response = client.post("/items", json=body)

    assert response.status_code == 422
    assert response.content_type == "application/problem+json"
    assert [error["field"] for error in response.json["errors"]] == ["price"]
    assert client.get("/items").json == []


def test_an_items_price_cannot_be_changed_to_zero(client, make_item):
    item = make_item(price=5)

    response = client.patch(f"/items/{item['id']}", json={"price": 0})

    assert response.status_code == 422
    assert response.json["errors"][0]["field"] == "price"
    assert client.get(f"/items/{item['id']}").json["price"] == 5


def test_largest_allowed_price_is_kept_to_the_cent(client):
    response = client.post("/items", json={"name": "Iate", "price": 9999999999.99})

    assert response.json["price"] == Decimal("9999999999.99")


def test_unknown_item_answers_404_problem(client):
    response = client.get("/items/999")

    assert response.status_code == 404
    assert response.content_type == "application/problem+json"
    assert response.json["instance"] == "/items/999"


def test_patch_changes_only_the_fields_sent(client, make_item):
    item = make_item(quantity=5, price=10, description="algodão")

    response = client.patch(f"/items/{item['id']}", json={"price": 12.5})

    assert response.status_code == 200
    assert response.json["price"] == Decimal("12.5")
    assert response.json["description"] == "algodão"
    assert response.json["quantity"] == 5


def test_patch_cannot_change_stock_directly(client, make_item):
    item = make_item(quantity=5)

    response = client.patch(f"/items/{item['id']}", json={"quantity": 500})

    assert response.status_code == 422
    assert client.get(f"/items/{item['id']}").json["quantity"] == 5


def test_sku_is_unique_among_live_items(client, make_item):
    first = make_item(sku="CAM-01")

    other = {"name": "Outra", "price": 1, "sku": "CAM-01"}
    assert client.post("/items", json=other).status_code == 409
    client.delete(f"/items/{first['id']}")
    assert client.post("/items", json=other).status_code == 201


def test_restock_adds_to_available_stock(client, make_item):
    item = make_item(quantity=3)

    response = client.post(f"/items/{item['id']}/restock", json={"quantity": 7})
    all_of_it = client.patch(f"/items/{item['id']}/reserve", json={"quantity": 10})

    assert response.status_code == 200
    assert response.json["quantity"] == 10
    assert all_of_it.status_code == 200, "the restocked units can be reserved"


def test_a_restock_repeated_with_its_key_adds_its_units_once(client, make_item):
    item = make_item(quantity=3)
    keyed = {"Idempotency-Key": "order-7-restock-1"}

    first = client.post(f"/items/{item['id']}/restock", json={"quantity": 2}, headers=keyed)
    again = client.post(f"/items/{item['id']}/restock", json={"quantity": 2}, headers=keyed)

    assert (first.status_code, again.status_code) == (200, 200)
    assert again.json == first.json
    assert client.get(f"/items/{item['id']}").json["quantity"] == 5


def test_a_keyed_restock_run_again_without_its_stored_answer_adds_nothing(client, make_item,
                                                                          db):
    """The worker that restocked died before storing the answer: the key's claim is taken
    over and the restock runs again; the units it added are not added twice."""
    item = make_item(quantity=3)
    keyed = {"Idempotency-Key": "order-8-restock-1"}
    client.post(f"/items/{item['id']}/restock", json={"quantity": 2}, headers=keyed)
    with db.transaction() as session:
        session.execute(text("DELETE FROM idempotency_keys"))

    again = client.post(f"/items/{item['id']}/restock", json={"quantity": 2}, headers=keyed)

    assert again.status_code == 200
    assert again.json["quantity"] == 5


def test_a_keyed_restock_refused_records_nothing_and_its_key_still_restocks(client, make_item,
                                                                            db):
    item = make_item(quantity=1_000_000_000)
    with db.transaction() as session:  # years of restocks, in one step
        session.execute(text("UPDATE items SET quantity = 2147000000"))
    keyed = {"Idempotency-Key": "order-9-restock-1"}

    refused = client.post(f"/items/{item['id']}/restock", json={"quantity": 1_000_000},
                          headers=keyed)
    accepted = client.post(f"/items/{item['id']}/restock", json={"quantity": 1},
                           headers=keyed)

    assert refused.status_code == 422
    assert accepted.status_code == 200
    assert accepted.json["quantity"] == 2_147_000_001


def test_restock_of_zero_units_is_refused(client, make_item):
    item = make_item(quantity=3)

    assert client.post(f"/items/{item['id']}/restock", json={"quantity": 0}).status_code == 422


def test_deleted_item_disappears_from_reads(client, make_item):
    item = make_item()

    assert client.delete(f"/items/{item['id']}").status_code == 204
    assert client.get(f"/items/{item['id']}").status_code == 404
    assert client.get("/items").json == []


def test_item_with_held_units_cannot_be_deleted(client, make_item):
    item = make_item(quantity=5)
    client.patch(f"/items/{item['id']}/reserve", json={"quantity": 2})

    response = client.delete(f"/items/{item['id']}")

    assert response.status_code == 409
    assert client.get(f"/items/{item['id']}").status_code == 200


def test_list_filters_by_name_and_stock(client, make_item):
    make_item(name="Camiseta azul", quantity=0)
    make_item(name="Camiseta verde", quantity=4)
    make_item(name="Boné", quantity=9)

    names = [i["name"] for i in client.get("/items?q=camiseta&in_stock=true").json]

    assert names == ["Camiseta verde"]


def test_name_search_treats_percent_literally(client, make_item):
    make_item(name="Desconto 50%")
    make_item(name="Camiseta")

    assert [i["name"] for i in client.get("/items?q=%25").json] == ["Desconto 50%"]


def test_list_sorts_by_price_descending(client, make_item):
    for price in (5, 30, 12):
        make_item(price=price)

    prices = [i["price"] for i in client.get("/items?sort=-price").json]

    assert prices == [30, 12, 5]


def test_pages_follow_the_link_header_until_the_end(client, make_item):
    for index in range(7):
        make_item(name=f"Item {index}")

    seen, url = [], "/items?limit=3"
    while url:
        response = client.get(url)
        seen += [item["id"] for item in response.json]
        link = response.headers.get("Link")
        url = link[link.index("/items"):link.index(">")] if link else None

    assert seen == list(range(1, 8))


def test_pages_sorted_by_price_keep_their_order_across_pages(client, make_item):
    for price in (9, 1, 5, 5, 3):
        make_item(price=price)

    first = client.get("/items?sort=price&limit=2")
    second = client.get(f"/items?sort=price&limit=2&after={first.json[-1]['id']}")
    third = client.get(f"/items?sort=price&limit=2&after={second.json[-1]['id']}")

    prices = [i["price"] for page in (first, second, third) for i in page.json]
    assert prices == [1, 3, 5, 5, 9]
    assert "Link" not in third.headers


def test_limit_above_500_is_refused(client):
    response = client.get("/items?limit=501")

    assert response.status_code == 422
    assert response.json["errors"][0]["field"] == "limit"


def test_unknown_query_parameter_is_refused(client):
    assert client.get("/items?colour=blue").status_code == 422
