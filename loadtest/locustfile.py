"""Load for Pedidos Veloz through the gateway: `locust -f loadtest/locustfile.py`.

Environment: TOKEN (an admin token, exempt from rate limits), ITEM_IDS (comma-separated ids
of items with plenty of stock), SCENARIO = buy | browse | mixed (default mixed).
"""

import itertools
import os
import random

from locust import HttpUser, between, tag, task

TOKEN = os.environ.get("TOKEN", "")
ITEM_IDS = [int(i) for i in os.environ.get("ITEM_IDS", "1").split(",")]
_customers = itertools.count(1)


class Shopper(HttpUser):
    wait_time = between(0, 0.05)

    def on_start(self):
        self.client.headers["Authorization"] = f"Bearer {TOKEN}"
        self.customer = f"Cliente {next(_customers)}"

    @tag("browse")
    @task(3)
    def browse_catalog(self):
        self.client.get("/items?limit=20", name="GET /items")

    @tag("buy")
    @task(1)
    def buy(self):
        body = {"customer": self.customer,
                "items": [{"item_id": random.choice(ITEM_IDS), "quantity": 1}]}  # noqa: S311
        with self.client.post("/orders", json=body, name="POST /orders",
                              catch_response=True) as response:
            if response.status_code in (201, 402):  # a declined card is a correct answer
                response.success()
