"""The proxied call outside Flask (gateway.fastpath) answers exactly as the Flask route does:
each request here is sent to two gateways built alike, once through the fast path and once
straight to the Flask app under it, and the answers and what the service received compared."""

import pytest
from werkzeug.middleware.proxy_fix import ProxyFix

from gateway import fastpath
from gateway.app import create_app
from gateway.fastpath import ProxyFastPath
from veloz.run.server_settings import DRAIN_FILE

# Differ between two answers of the same call by a second at most.
RESET_HEADERS = {"ratelimit-reset", "x-ratelimit-reset"}
REQUEST_ID = {"X-Request-ID": "same-for-both"}


@pytest.fixture
def both(settings_for, monkeypatch):
    """A function that sends one request through the fast path and through Flask: the two
    answers, after checking which of them the fast path served."""
    served = []
    serve = ProxyFastPath.serve

    def counting(self, *args):
        served.append(args[-1])
        return serve(self, *args)

    monkeypatch.setattr(ProxyFastPath, "serve", counting)

    def send(method: str, path: str, *, fast: bool = True, settings=None, **kwargs):
        settings = settings or {}
        fast_app, flask_app = create_app(settings_for(**settings)), create_app(
            settings_for(**settings))
        through_flask = flask_only(flask_app)
        kwargs["headers"] = {**REQUEST_ID, **kwargs.get("headers", {})}
        served.clear()
        fast_answer = fast_app.test_client().open(path, method=method, **kwargs)
        assert bool(served) is fast, "served by the fast path" if fast else "served by Flask"
        return fast_answer, through_flask.open(path, method=method, **kwargs)

    return send


def flask_only(app):
    """A test client of `app` with its fast path taken out (from under ProxyFix, if any)."""
    if isinstance(app.wsgi_app, ProxyFix):
        app.wsgi_app.app = app.wsgi_app.app.flask_wsgi
    else:
        app.wsgi_app = app.wsgi_app.flask_wsgi
    return app.test_client()


def same(fast, slow) -> None:
    assert fast.status == slow.status
    assert comparable(fast.headers) == comparable(slow.headers)
    assert fast.get_data() == slow.get_data()


def comparable(headers) -> list[tuple[str, str]]:
    return [(name, "<reset>" if name.lower() in RESET_HEADERS else value)
            for name, value in headers.items()]


@pytest.mark.parametrize(("method", "path", "role"), [
    ("GET", "/items/1", None),
    ("HEAD", "/items/1", None),
    ("GET", "/items", None),
    ("GET", "/orders/7/events", "customer"),
    ("DELETE", "/items/1", "admin"),
    ("OPTIONS", "/items/1", None),
    ("GET", "/payments", None),  # 401
    ("GET", "/payments", "customer"),  # 403
])
def test_a_call_is_answered_alike_on_both_paths(both, bearer, method, path, role):
    fast, slow = both(method, path, headers=bearer(role) if role else {})

    same(fast, slow)


def test_a_service_answer_reaches_the_client_alike_with_what_the_service_received(both):
    fast, slow = both("GET", "/items/3?limit=2&x=%C3%A9", headers={
        "X-Forwarded-For": "10.0.0.9", "Connection": "keep-alive, X-Hop", "X-Hop": "1",
        "Accept-Language": "pt-BR", "traceparent": "00-" + "a" * 32 + "-" + "b" * 16 + "-01"})

    same(fast, slow)
    assert fast.json["headers"]["X-Forwarded-For"] == "10.0.0.9, 127.0.0.1"
    assert "X-Hop" not in fast.json["headers"]
    assert fast.headers["Link"] == '</items/3?after=2&limit=2>; rel="next"'


@pytest.mark.parametrize("status", [503, 404, 204])
def test_a_service_error_or_empty_answer_is_relayed_alike(both, status):
    fast, slow = both("GET", "/items/9", headers={"X-Echo-Status": str(status)})

    same(fast, slow)
    assert fast.status_code == status


def test_an_unreachable_service_is_the_same_problem(both, dead_url):
    fast, slow = both("GET", "/items/1", settings={"estoque_url": dead_url,
                                                   "upstream_connect_budget_seconds": 0})

    same(fast, slow)
    assert fast.status_code == 503


def test_a_second_call_over_the_budget_gets_the_same_429(settings_for):
    fast_app = create_app(settings_for(rate_limit_anonymous="1/minute"))
    flask_app = create_app(settings_for(rate_limit_anonymous="1/minute"))
    through_flask = flask_only(flask_app)
    answers = []
    for _ in range(2):
        answers.append((fast_app.test_client().get("/items/1", headers=REQUEST_ID),
                        through_flask.get("/items/1", headers=REQUEST_ID)))

    fast, slow = answers[1]
    same(fast, slow)
    assert fast.status_code == 429
    assert fast.headers["Retry-After"]
    assert fast.headers["RateLimit-Remaining"] == "0"


def test_a_draining_gateway_closes_the_connection_alike(both, tmp_path, monkeypatch):
    marker = tmp_path / "draining"
    marker.touch()
    monkeypatch.setenv(DRAIN_FILE, str(marker))

    fast, slow = both("GET", "/items/1")

    same(fast, slow)
    assert fast.headers["Connection"] == "close"


def test_an_unexpected_error_is_the_same_500_problem(both, monkeypatch):
    def broken(*_args, **_kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(fastpath, "relay", broken)
    monkeypatch.setattr("gateway.proxy.relay", broken)

    fast, slow = both("GET", "/items/1")

    same(fast, slow)
    assert fast.status_code == 500


@pytest.mark.parametrize(("method", "path", "kwargs"), [
    ("GET", "//items/1", {}),
    ("GET", "/items/", {}),
    ("GET", "/items/./1", {}),
    ("GET", "/items/%2E%2E/orders", {}),
    ("POST", "/items", {"json": {"name": "x"}}),
    ("TRACE", "/items/1", {}),
    ("GET", "/livez", {}),
    ("GET", "/nowhere", {}),
])
def test_every_other_request_is_left_to_flask(both, bearer, method, path, kwargs):
    fast, slow = both(method, path, fast=False, headers=bearer("admin"), **kwargs)

    same(fast, slow)


def test_while_spans_are_recorded_flask_serves_every_call(both):
    from veloz.telemetry import tracing

    tracing.record_spans(True)
    try:
        fast, slow = both("GET", "/items/1", fast=False)
    finally:
        tracing.record_spans(False)

    same(fast, slow)


def test_the_fast_path_counts_its_answers_under_the_route_template(client):
    def count() -> float:
        text = client.get("/metrics").get_data(as_text=True)
        return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                   if line.startswith("flask_http_request_duration_seconds_count{")
                   and 'route="/items/<id>/restock"' in line and 'method="HEAD"' in line)

    before = count()
    client.head("/items/5/restock")

    assert count() == before + 1


def test_behind_a_trusted_proxy_the_forwarded_client_is_the_caller_alike(both):
    settings = {"trusted_proxy_hops": 1}
    fast, slow = both("GET", "/items/1", settings=settings,
                      headers={"X-Forwarded-For": "203.0.113.7"})

    same(fast, slow)
    assert fast.json["headers"]["X-Forwarded-For"].endswith(", 203.0.113.7")


def test_a_clean_path_has_no_empty_dot_or_dot_dot_segment():
    from gateway.proxy import clean_path

    assert [path for path in ("/items", "/items/1", "/items/..x", "/items/.x/a", "/a.b/c..")
            if not clean_path(path)] == []
    assert [path for path in ("/", "/items/", "//items", "/items//1", "/items/.", "/items/./1",
                              "/items/..", "/items/../orders") if clean_path(path)] == []
