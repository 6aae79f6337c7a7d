"""Load for Pedidos Veloz through the gateway: `locust -f loadtest/locustfile.py` (`make load`).

Two profiles, chosen by LOAD_PROFILE (`make load LOAD_PROFILE=limits`):

- `shop` (the default, user class Shopper): people in a shop. Each simulated customer
  browses, searches, opens item pages, pays with the approving test card or a declining one,
  reads its orders and now and then cancels one, and thinks 1-5 s between two actions (a
  page read, a choice made), so 10 users send about 3 requests/s and each customer's token
  stays far below the gateway's 300 requests/minute. Against a healthy platform a run ends
  with no failure and exit code 0.
- `limits` (user class LimitProbe): clients that do not pace themselves, each reading the
  catalog as fast as it can (about 50 requests/s) with a customer token of its own (anonymous
  without JWT_SECRET), so each passes its 300/minute (anonymous: 120/minute per address)
  within seconds. A 429 with Retry-After is the limiter doing its job: it counts as a success,
  under its own name in the statistics ("... 429 rate-limited"); the run fails if the limiter
  never answered 429, or if anything else went wrong.

Environment: TOKEN (an admin token, exempt from rate limits; required), JWT_SECRET (when
set, each simulated user buys with a customer token of its own, as real clients do),
ITEM_IDS (comma-separated ids of items with plenty of stock; when absent, the run creates
its own items at start), LOAD_PROFILE (shop or limits).
"""

import itertools
import os
import random

import requests
from locust import HttpUser, between, constant, events, tag, task

TOKEN = os.environ.get("TOKEN", "")
ITEM_IDS = [int(i) for i in os.environ.get("ITEM_IDS", "").split(",") if i]
SCARCE_IDS: list[int] = []  # items with a handful of units: orders for them get rejected
APPROVING_CARD, DECLINING_CARDS = "4242424242424242", ("4000000000000002", "4000000000009995")
SEARCH_TERMS = ("Camiseta", "Boné", "Carga", "Tênis", "xyz")
_customers = itertools.count(1)
_pick = random.Random()  # noqa: S311 - load shape, not security
PROFILES = ("shop", "limits")
PROFILE = os.environ.get("LOAD_PROFILE") or "shop"
if PROFILE not in PROFILES:
    raise SystemExit(f"LOAD_PROFILE={PROFILE!r}: one of {', '.join(PROFILES)}")


@events.test_start.add_listener
def seed_catalog(environment, **_kwargs):
    """Create the items to buy when ITEM_IDS is not given: plenty of stock, and one item
    that sells out at once so some orders are rejected. The limits profile buys nothing."""
    if ITEM_IDS or PROFILE == "limits":
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
    """A person: 1-5 s between two actions, the time to read a page or make up one's mind."""

    abstract = PROFILE != "shop"  # Locust runs every concrete user class of the file
    wait_time = between(1, 5)

    def on_start(self):
        self.client.headers["Authorization"] = f"Bearer {TOKEN}"
        number = next(_customers)
        self.customer = f"Cliente {number}"
        self.as_customer = {"Authorization": f"Bearer {customer_token(f'load-{number}')}"}
        self.orders: list[int] = []

    # --- browsing and the plain purchase (tags browse, buy: `--tags browse buy`) -------------
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


class LimitProbe(HttpUser):
    """A client that does not pace itself: it passes its rate limit within seconds, and every
    answer must be a 200 or the limiter's 429 with Retry-After."""

    abstract = PROFILE != "limits"
    wait_time = constant(0.02)
    limited = 0  # 429s seen by every probe of this process
    answered = 0

    def on_start(self):
        token = customer_token(f"limits-{next(_customers)}")
        # Without JWT_SECRET the only token is the admin one, which is never limited: go
        # anonymous instead, limited per address.
        self.headers = {} if token == TOKEN else {"Authorization": f"Bearer {token}"}

    @tag("limits")
    @task
    def read_the_catalog_too_fast(self):
        name = "GET /items?limit=1 (limit probe)"
        with self.client.get("/items?limit=1", headers=self.headers, name=name,
                             catch_response=True) as response:
            LimitProbe.answered += 1
            if response.status_code == 200:
                response.success()
            elif response.status_code == 429 and response.headers.get("Retry-After"):
                LimitProbe.limited += 1
                response.request_meta["name"] = f"{name}: 429 rate-limited"
                response.success()
            else:
                response.failure(f"expected 200 or 429 with Retry-After, got "
                                 f"{response.status_code}")


@events.quitting.add_listener
def judge_the_limiter(environment, **_kwargs):
    """In the limits profile the run passes only if the limiter answered 429 at least once."""
    if PROFILE != "limits":
        return
    print(f"limiter: {LimitProbe.limited} of {LimitProbe.answered} answers were 429 "
          "rate-limited (Retry-After on each)")
    if LimitProbe.answered and not LimitProbe.limited:
        print("limiter: never answered 429: no limit was reached, or none is enforced")
        environment.process_exit_code = 1
