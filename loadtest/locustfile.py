"""Load for Pedidos Veloz through the gateway: `locust -f loadtest/locustfile.py` (`make load`).

Without --tags every task runs: a realistic shop day of browsing, searching, item pages,
orders paid with the approving test card and declined with the declining ones, status
reads, a few cancels and orders for a nearly sold-out item. `make bench` runs only the
`browse` and `buy` tags (catalog page; approving order) to measure throughput.

Environment: TOKEN (an admin token, exempt from rate limits; required), JWT_SECRET (when
set, each simulated user buys with a customer token of its own, as real clients do),
ITEM_IDS (comma-separated ids of items with plenty of stock; when absent, the run creates
its own items at start).
"""

import itertools
import os
import random

import requests
from locust import HttpUser, between, events, tag, task

TOKEN = os.environ.get("TOKEN", "")
ITEM_IDS = [int(i) for i in os.environ.get("ITEM_IDS", "").split(",") if i]
SCARCE_IDS: list[int] = []  # items with a handful of units: orders for them get rejected
APPROVING_CARD, DECLINING_CARDS = "4242424242424242", ("4000000000000002", "4000000000009995")
SEARCH_TERMS = ("Camiseta", "Boné", "Carga", "Tênis", "xyz")
_customers = itertools.count(1)
_pick = random.Random()  # noqa: S311 - load shape, not security


@events.test_start.add_listener
def seed_catalog(environment, **_kwargs):
    """Create the items to buy when ITEM_IDS is not given: plenty of stock, and one item
    that sells out at once so some orders are rejected."""
    if ITEM_IDS:
        return
    headers = {"Authorization": f"Bearer {TOKEN}"}
    for name, quantity, price in (("Camiseta", 1_000_000, 59.9), ("Boné", 1_000_000, 39.5),
                                  ("Tênis", 1_000_000, 249.0), ("Carga", 1_000_000, 10.5),
                                  ("Edição limitada", 3, 999.0)):
        response = requests.post(f"{environment.host}/items", headers=headers, timeout=10,
                                 json={"name": name, "quantity": quantity, "price": price})
        response.raise_for_status()
        (SCARCE_IDS if quantity < 10 else ITEM_IDS).append(response.json()["id"])


def customer_token(subject: str) -> str:
    if not os.environ.get("JWT_SECRET"):
        return TOKEN
    from gateway.auth import TokenAuthority
    from gateway.config import JwtSettings

    return TokenAuthority(JwtSettings(jwt_secret=os.environ["JWT_SECRET"])).mint(
        subject, ["customer"])


class Shopper(HttpUser):
    wait_time = between(0, 0.05)

    def on_start(self):
        self.client.headers["Authorization"] = f"Bearer {TOKEN}"
        number = next(_customers)
        self.customer = f"Cliente {number}"
        self.as_customer = {"Authorization": f"Bearer {customer_token(f'load-{number}')}"}
        self.orders: list[int] = []

    # --- what make bench measures ------------------------------------------------------------
    @tag("browse")
    @task(3)
    def browse_catalog(self):
        self.client.get("/items?limit=20", name="GET /items")

    @tag("buy")
    @task(1)
    def buy(self):
        body = {"customer": self.customer,
                "items": [{"item_id": _pick.choice(ITEM_IDS), "quantity": 1}]}
        with self.client.post("/orders", json=body, name="POST /orders",
                              catch_response=True) as response:
            if response.status_code in (201, 402):  # a declined card is a correct answer
                response.success()

    # --- the rest of a shop day --------------------------------------------------------------
    @tag("mixed")
    @task(2)
    def search(self):
        self.client.get(f"/items?q={_pick.choice(SEARCH_TERMS)}&in_stock=true",
                        name="GET /items?q=")

    @tag("mixed")
    @task(2)
    def item_page(self):
        self.client.get(f"/items/{_pick.choice(ITEM_IDS)}", name="GET /items/{id}")

    @tag("mixed")
    @task(2)
    def pay_with_approving_card(self):
        self._order(APPROVING_CARD, _pick.choice(ITEM_IDS), expected=(201,))

    @tag("mixed")
    @task(1)
    def pay_with_declining_card(self):
        self._order(_pick.choice(DECLINING_CARDS), _pick.choice(ITEM_IDS), expected=(402,))

    @tag("mixed")
    @task(1)
    def want_a_sold_out_item(self):
        if SCARCE_IDS:
            self._order(APPROVING_CARD, SCARCE_IDS[0], expected=(201, 409), quantity=2)

    @tag("mixed")
    @task(3)
    def read_order_status(self):
        if self.orders:
            self.client.get(f"/orders/{_pick.choice(self.orders)}", headers=self.as_customer,
                            name="GET /orders/{id}")

    @tag("mixed")
    @task(1)
    def list_my_orders(self):
        self.client.get("/orders?limit=20", headers=self.as_customer, name="GET /orders")

    @tag("mixed")
    @task(1)
    def cancel_an_order(self):
        if self.orders and _pick.random() < 0.3:
            self.client.post(f"/orders/{self.orders.pop()}/cancel", headers=self.as_customer,
                             name="POST /orders/{id}/cancel")

    def _order(self, card: str, item_id: int, expected: tuple[int, ...], quantity: int = 1):
        body = {"customer": self.customer, "items": [{"item_id": item_id, "quantity": quantity}],
                "payment": {"method": "credit_card", "card_number": card}}
        with self.client.post("/orders", json=body, headers=self.as_customer,
                              name="POST /orders (card)", catch_response=True) as response:
            if response.status_code not in expected:
                response.failure(f"expected {expected}, got {response.status_code}")
                return
            response.success()
            if response.status_code == 201:
                self.orders = [*self.orders[-19:], response.json()["order"]["id"]]
