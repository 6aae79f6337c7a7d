from concurrent.futures import ThreadPoolExecutor


def test_twenty_buyers_of_five_units_leave_exactly_five_paid_orders(app, make_item, item):
    last_five = make_item(quantity=5, price="19.90")

    def buy(n):
        response = app.test_client().post("/orders", json={
            "customer": f"buyer {n}", "items": [{"item_id": last_five, "quantity": 1}]})
        return response.status_code

    with ThreadPoolExecutor(20) as pool:
        statuses = list(pool.map(buy, range(20)))

    assert statuses.count(201) == 5
    assert statuses.count(409) == 15
    assert (item(last_five)["quantity"], item(last_five)["reserved"]) == (0, 0)
    paid = app.test_client().get("/orders?status=paid").json
    assert len(paid) == 5
