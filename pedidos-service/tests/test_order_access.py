import pytest
import requests

CUSTOMER = {"X-User-Id": "user-1", "X-User-Roles": "customer"}
STRANGER = {"X-User-Id": "user-2", "X-User-Roles": "customer"}
ADMIN = {"X-User-Id": "root", "X-User-Roles": "customer,admin"}


@pytest.fixture
def order_of_user_1(buy, make_item):
    response = buy({make_item(): 1}, headers=CUSTOMER)
    assert response.status_code == 201
    return response.json["order"]


def test_an_order_belongs_to_the_user_who_placed_it(order_of_user_1, client):
    assert order_of_user_1["customer_id"] == "user-1"
    assert client.get(f"/orders/{order_of_user_1['id']}", headers=CUSTOMER).status_code == 200


@pytest.mark.parametrize(("method", "path"), [
    ("get", "/orders/{id}"), ("get", "/orders/{id}/events"), ("post", "/orders/{id}/cancel")])
def test_another_customer_cannot_tell_the_order_exists(order_of_user_1, client, method, path):
    url = path.format(id=order_of_user_1["id"])

    response = getattr(client, method)(url, headers=STRANGER)

    assert response.status_code == 404
    missing = getattr(client, method)(path.format(id=999999), headers=STRANGER)
    assert response.json["detail"] == missing.json["detail"].replace("999999", url.split("/")[2])
    assert client.get(f"/orders/{order_of_user_1['id']}").json["status"] == "paid"


def test_admins_and_internal_callers_see_every_order(order_of_user_1, client):
    url = f"/orders/{order_of_user_1['id']}"

    assert client.get(url, headers=ADMIN).status_code == 200
    assert client.get(url).status_code == 200


def test_a_customer_listing_orders_sees_only_their_own(order_of_user_1, buy, make_item, client):
    buy({make_item(): 1}, headers=STRANGER)

    assert [o["id"] for o in client.get("/orders", headers=CUSTOMER).json] == \
        [order_of_user_1["id"]]
    assert len(client.get("/orders", headers=ADMIN).json) == 2


@pytest.mark.parametrize("user_id", ["", " ", "  \t", "a\x7fb", "x" * 256, " padded"],
                         ids=["empty", "blank", "whitespace", "control", "too long", "padded"])
def test_an_empty_or_malformed_identity_is_refused_never_taken_as_internal(
        order_of_user_1, client, user_id):
    headers = {"X-User-Id": user_id, "X-User-Roles": "customer"}

    for response in (client.get(f"/orders/{order_of_user_1['id']}", headers=headers),
                     client.get("/orders", headers=headers)):
        assert response.status_code == 401
        assert response.json["type"].endswith(":unauthorized")


def test_roles_without_a_user_or_unknown_roles_are_refused(order_of_user_1, client):
    url = f"/orders/{order_of_user_1['id']}"

    assert client.get(url, headers={"X-User-Roles": "admin"}).status_code == 401
    assert client.get(url, headers={"X-User-Id": "u", "X-User-Roles": "root"}).status_code == 401


def test_orders_can_be_listed_newest_first_page_by_page(buy, make_item, client):
    item = make_item(quantity=10)
    placed = [buy({item: 1}, headers=CUSTOMER).json["order"]["id"] for _ in range(3)]

    first = client.get("/orders?sort=-id&limit=2", headers=CUSTOMER)
    next_url = requests.utils.parse_header_links(first.headers["Link"])[0]["url"]
    following = client.get(next_url, headers=CUSTOMER)

    assert [o["id"] for o in first.json] == placed[::-1][:2]
    assert "sort=-id" in first.headers["Link"]
    assert [o["id"] for o in following.json] == placed[:1]
    assert "Link" not in following.headers
