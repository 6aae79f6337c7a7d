from urllib.parse import urlsplit

DECLINED_CARD = "4000000000000002"


def test_list_returns_an_array_oldest_first(charge, client):
    ids = [charge(order_id=n).get_json()["id"] for n in (1, 2, 3)]

    response = client.get("/payments")

    assert response.status_code == 200
    assert [p["id"] for p in response.get_json()] == ids
    assert "Link" not in response.headers


def test_list_is_empty_without_payments(client):
    assert client.get("/payments").get_json() == []


def test_list_filters_by_order_and_status(charge, client):
    charge(order_id=1, card_number=DECLINED_CARD)
    charge(order_id=1)
    charge(order_id=2)

    by_order = client.get("/payments?order_id=1").get_json()
    declined = client.get("/payments?status=declined").get_json()
    both = client.get("/payments?order_id=1&status=approved").get_json()

    assert {p["order_id"] for p in by_order} == {1}
    assert len(by_order) == 2
    assert [(p["order_id"], p["status"]) for p in declined] == [(1, "declined")]
    assert [(p["order_id"], p["status"]) for p in both] == [(1, "approved")]


def test_link_header_pages_through_every_payment_once(charge, client):
    expected = [charge(order_id=n).get_json()["id"] for n in range(1, 8)]
    seen, url, pages = [], "/payments?limit=3", 0

    while url:
        response = client.get(url)
        seen += [p["id"] for p in response.get_json()]
        url, pages = _next_url(response.headers.get("Link")), pages + 1

    assert seen == expected
    assert pages == 3


def test_next_link_keeps_the_filters(charge, client):
    for order_id in (1, 2, 1, 1):
        charge(order_id=order_id, card_number=DECLINED_CARD)

    first = client.get("/payments?order_id=1&limit=2")
    second = client.get(_next_url(first.headers["Link"]))

    assert "order_id=1" in first.headers["Link"]
    assert [p["order_id"] for p in second.get_json()] == [1]
    assert "Link" not in second.headers


def _next_url(link: str | None) -> str | None:
    if not link:
        return None
    target = urlsplit(link.split(";")[0].strip("<> "))
    return f"{target.path}?{target.query}"
