"""Every answered request is in the RED metrics under its route template; probes are not."""

import itertools

import flask
import pytest
from prometheus_client.parser import text_string_to_metric_families

from veloz.web.app import create_service_app

_services = itertools.count()


@pytest.fixture
def client():
    items = flask.Blueprint("items", __name__)

    @items.get("/items/<int:item_id>")
    def item(item_id: int):
        if item_id == 404:
            flask.abort(404)
        return {"id": item_id}

    # A service name per test: the metrics are process-wide, labelled by service.
    app = create_service_app(name=f"metrics-probe-{next(_services)}", version="1",
                             log_level="WARNING", max_body_bytes=1024, blueprints=[items],
                             readiness=dict)
    return app.test_client()


def samples(client, name: str) -> dict[tuple, float]:
    """{labels (sorted pairs): value} of `name` for this test's service."""
    service = client.application.config["SERVICE_NAME"]
    text = client.get("/metrics").get_data(as_text=True)
    return {tuple(sorted((k, v) for k, v in sample.labels.items() if k != "service")):
            sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples
            if sample.name == name and sample.labels.get("service") == service}


def test_requests_are_counted_per_route_template_and_status(client):
    for item_id in (1, 2, 404):
        client.get(f"/items/{item_id}")

    counts = samples(client, "flask_http_request_duration_seconds_count")

    assert counts == {
        (("method", "GET"), ("route", "/items/<int:item_id>"), ("status", "200")): 2,
        (("method", "GET"), ("route", "/items/<int:item_id>"), ("status", "404")): 1}
    totals = samples(client, "flask_http_request_total")
    assert totals == {(("method", "GET"), ("status", "200")): 2,
                      (("method", "GET"), ("status", "404")): 1}


def test_a_request_lands_in_the_buckets_of_its_duration(client):
    client.get("/items/1")

    buckets = samples(client, "flask_http_request_duration_seconds_bucket")

    by_bound = {dict(labels)["le"]: value for labels, value in buckets.items()}
    assert by_bound["+Inf"] == 1
    assert by_bound["15.0"] == 1  # the slowest bound holds every request this fast


def test_probes_and_scrapes_are_not_measured(client):
    for path in ("/livez", "/readyz", "/metrics", "/metrics"):
        client.get(path)

    assert samples(client, "flask_http_request_duration_seconds_count") == {}
    assert samples(client, "flask_http_request_total") == {}
