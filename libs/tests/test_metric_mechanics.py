"""veloz.telemetry.metrics knows no service: a service hands it the gauges to read at each
scrape, and label values outside a set become `other`, said once in the log."""

import logging
import os
import subprocess
import sys
from contextlib import contextmanager

from sqlalchemy.exc import OperationalError

from veloz.telemetry import metrics


class FakeResult:
    def __init__(self, value):
        self.value = value

    def scalar_one(self):
        return self.value

    def all(self):
        return self.value


class FakeDatabase:
    """Answers each statement from `answers` (by its first word after SELECT), or fails."""

    def __init__(self, answers: dict[str, object] | None = None):
        self.answers, self.statements = answers, []

    @contextmanager
    def reading(self):
        if self.answers is None:
            raise OperationalError("SELECT 1", {}, Exception("server closed the connection"))
        yield self

    def execute(self, statement, parameters=None):
        sql = str(statement)
        self.statements.append((sql, parameters))
        key = sql.split()[1] if sql.startswith("SELECT") else sql
        return FakeResult(self.answers.get(key) if self.answers else None)


def collected(collector) -> dict[str, list]:
    return {family.name: [(sample.labels, sample.value) for sample in family.samples]
            for family in collector.collect()}


def test_the_gauges_a_service_registers_are_read_at_each_scrape():
    database = FakeDatabase({"count(*)": 3, "application_name,": [
        ("shop-service", "active", 2), ("psql", "idle", 1), ("shop-service", "weird", 1)]})
    gauges = [metrics.StateQuery("shop_carts_open", "Carts open",
                                 "SELECT count(*) FROM carts WHERE age < :age", {"age": 9}),
              metrics.StateSetting("shop_cart_age_limit", "Age limit", 9)]

    families = collected(metrics.DatabaseStateCollector("shop-service", database, gauges))

    assert families["veloz_state_scrape_ok"] == [({"service": "shop-service"}, 1)]
    assert families["shop_carts_open"] == [({}, 3)]
    assert families["shop_cart_age_limit"] == [({}, 9)]
    assert ("SELECT count(*) FROM carts WHERE age < :age", {"age": 9}) in database.statements
    assert [labels for labels, _value in families["veloz_db_connections"]] == [
        {"service": "shop-service", "application": "shop-service", "state": "active"},
        {"service": "shop-service", "application": "other", "state": "idle"},
        {"service": "shop-service", "application": "shop-service", "state": "other"}]


def test_an_unreadable_database_is_a_zero_scrape_ok_and_no_state():
    gauges = [metrics.StateQuery("shop_carts_open", "Carts open", "SELECT count(*) FROM carts")]

    families = collected(metrics.DatabaseStateCollector("shop-service", FakeDatabase(), gauges))

    assert families == {"veloz_state_scrape_ok": [({"service": "shop-service"}, 0)]}


def test_a_value_outside_its_set_is_other_and_logged_once_without_the_value(caplog):
    with caplog.at_level(logging.WARNING, logger="veloz.telemetry.metrics"):
        first = metrics.bounded("card 4000000000000002", {"card_declined"}, label="test_reason")
        second = metrics.bounded("order 42", {"card_declined"}, label="test_reason")

    assert (first, second) == ("other", "other")
    assert [record.label for record in caplog.records] == ["test_reason"]
    assert "4000" not in caplog.text
    assert metrics.bounded("card_declined", {"card_declined"}, label="test_reason") == (
        "card_declined")


FORKED_WRITER = """
import os
from veloz.telemetry import metrics

metrics.record_request("forked", "GET", "/x", 200, 0.01)
child = os.fork()
if child == 0:
    metrics.record_request("forked", "GET", "/x", 200, 0.01)
    os._exit(0)
os.waitpid(child, 0)
metrics.record_request("forked", "GET", "/x", 200, 0.01)
print(child, os.getpid())
print(metrics.exposition([])[0].decode())
"""


def test_a_forked_worker_records_in_files_of_its_own(tmp_path):
    """Multi-process values learn of a fork from os.fork itself, not from a pid asked for on
    every write: the child still writes its own files, and nothing is lost or doubled."""
    run = subprocess.run([sys.executable, "-c", FORKED_WRITER], capture_output=True, text=True,
                         env={**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)},
                         check=True, timeout=60)

    pids, exposition = run.stdout.split("\n", 1)
    child, parent = pids.split()
    assert {path.name for path in tmp_path.iterdir()} == {
        f"{kind}_{pid}.db" for kind in ("counter", "histogram") for pid in (child, parent)}
    assert ('flask_http_request_total{method="GET",service="forked",status="200"} 3.0'
            in exposition)
