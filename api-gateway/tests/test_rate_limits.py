import os
import shutil
import socket
import subprocess
import time

import pytest
import redis

from veloz.dev.devstack import free_port


@pytest.fixture
def client(client_for):
    return client_for(rate_limit_anonymous="3/minute", rate_limit_default="5/minute")


def test_an_anonymous_caller_gets_429_with_retry_after_past_the_limit(client):
    assert [client.get("/items").status_code for _ in range(3)] == [200, 200, 200]
    refused = client.get("/items")
    assert refused.status_code == 429
    assert refused.content_type == "application/problem+json"
    assert 1 <= int(refused.headers["Retry-After"]) <= 61
    assert "Retry-After" not in client.get("/health").headers


def test_every_limited_answer_tells_the_caller_its_remaining_budget(client):
    answers = [client.get("/items") for _ in range(4)]

    assert [a.headers["RateLimit-Remaining"] for a in answers] == ["2", "1", "0", "0"]
    assert {a.headers["RateLimit-Limit"] for a in answers} == {"3"}
    assert all(0 <= int(a.headers["RateLimit-Reset"]) <= 61 for a in answers)
    assert [a.headers["X-RateLimit-Remaining"] for a in answers] == ["2", "1", "0", "0"]
    assert int(answers[0].headers["X-RateLimit-Reset"]) >= int(time.time())
    assert "Retry-After" not in answers[0].headers
    assert "RateLimit-Limit" not in client.get("/health").headers


def test_the_budget_is_the_gateways_alone_whatever_a_service_answers(client):
    echoed = ", ".join(f"{name}: 999" for name in (
        "RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset", "X-RateLimit-Limit",
        "X-RateLimit-Remaining", "X-RateLimit-Reset"))
    answer = client.get("/items", headers={"X-Echo-Header": echoed})

    assert answer.status_code == 200
    assert answer.headers.getlist("RateLimit-Remaining") == ["2"]
    assert answer.headers.getlist("RateLimit-Limit") == ["3"]
    assert answer.headers.getlist("X-RateLimit-Remaining") == ["2"]
    assert len(answer.headers.getlist("RateLimit-Reset")) == 1
    assert len(answer.headers.getlist("X-RateLimit-Reset")) == 1
    assert "999" not in answer.headers.getlist("X-RateLimit-Reset")
    assert answer.headers.getlist("X-Served-By") == ["estoque"]


def test_each_token_has_its_own_budget_apart_from_the_address(client, bearer):
    for _ in range(3):
        client.get("/items")
    assert client.get("/items").status_code == 429
    first, second = bearer("customer", sub="ana"), bearer("customer", sub="bia")
    assert [client.get("/items", headers=first).status_code for _ in range(6)] == \
        [200] * 5 + [429]
    assert client.get("/items", headers=second).status_code == 200


def test_admin_tokens_are_not_limited(client, bearer):
    admin = bearer("admin")
    assert {client.get("/items", headers=admin).status_code for _ in range(10)} == {200}


def test_health_metrics_and_docs_are_not_limited(client):
    for path in ("/health", "/metrics", "/openapi.json", "/livez"):
        assert {client.get(path).status_code for _ in range(5)} == {200}


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory):
    """A real Redis on a free local port, as several gateway replicas would share."""
    server = shutil.which("redis-server")
    if server is None:
        if os.environ.get("CI"):
            pytest.fail("redis-server is missing; `make test` installs it on Debian")
        pytest.skip("redis-server is not installed")
    port = free_port()
    process = subprocess.Popen([server, "--port", str(port), "--bind", "127.0.0.1",
                                "--save", "", "--appendonly", "no",
                                "--dir", str(tmp_path_factory.mktemp("redis"))],
                               stdout=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    _wait_for_redis(url)
    yield url
    process.terminate()
    process.wait(10)


def _wait_for_redis(url):
    client = redis.Redis.from_url(url, socket_timeout=0.5)
    for _ in range(50):
        try:
            client.ping()
            return
        except redis.ConnectionError:
            time.sleep(0.1)
    pytest.fail("redis-server did not start")


def test_replicas_sharing_redis_share_one_budget(client_for, redis_url):
    limits = {"rate_limit_anonymous": "3/minute", "ratelimit_storage_uri": redis_url}
    first_replica, second_replica = client_for(**limits), client_for(**limits)

    answers = [first_replica.get("/items").status_code, second_replica.get("/items").status_code,
               first_replica.get("/items").status_code, second_replica.get("/items").status_code]

    assert answers == [200, 200, 200, 429]


def test_an_unreachable_storage_falls_back_to_counting_per_process(client_for):
    nothing_listens = f"redis://127.0.0.1:{free_port()}/0"
    client = client_for(rate_limit_anonymous="3/minute", ratelimit_storage_uri=nothing_listens)

    answers = [client.get("/items") for _ in range(4)]

    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert [a.headers["RateLimit-Remaining"] for a in answers] == ["2", "1", "0", "0"]


def test_the_tightest_of_several_limits_is_the_one_announced(client_for):
    client = client_for(rate_limit_anonymous="2/second;5/minute")

    answers = [client.get("/items") for _ in range(3)]

    assert [a.status_code for a in answers] == [200, 200, 429]
    assert [a.headers["RateLimit-Limit"] for a in answers] == ["2", "2", "2"]
    assert 1 <= int(answers[2].headers["Retry-After"]) <= 2


def test_a_storage_that_never_answers_costs_one_short_wait_then_counts_per_process(client_for):
    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts, never answers
        storage = f"redis://127.0.0.1:{silent.getsockname()[1]}/0"
        client = client_for(rate_limit_anonymous="3/minute", ratelimit_storage_uri=storage)

        started = time.monotonic()
        answers = [client.get("/items").status_code for _ in range(4)]

    assert answers == [200, 200, 200, 429]
    assert time.monotonic() - started < 2


def test_a_callers_window_is_named_as_limits_names_it():
    """Replicas of two versions share Redis during a rollout: they must count in the same
    keys, the ones limits' own strategies use."""
    from limits import parse_many

    from gateway.ratelimit import CallerBudgets

    budgets = CallerBudgets("5/second;300/minute", "120/minute", "memory://")
    limiter = budgets._limiter()
    for limit in budgets.signed_in:
        prefix, suffix, expiry = budgets._window_of(limit)
        assert f"{prefix}sub:u-1{suffix}" == limit.key_for("sub:u-1")
        assert expiry == limit.get_expiry()
    budgets.spend("ip:10.0.0.1", parse_many("120/minute"))
    assert limiter.get_window_stats(parse_many("120/minute")[0], "ip:10.0.0.1").remaining == 119


class FakeTime:
    def __init__(self):
        self.now = time.time()  # limits' own reads (get, get_expiry) keep the real clock

    def time(self) -> float:
        return self.now

    def monotonic(self) -> float:
        return self.now


def test_the_memory_storage_counts_in_windows_that_end_and_are_swept(monkeypatch):
    from gateway import ratelimit

    clock = FakeTime()
    monkeypatch.setattr(ratelimit, "time", clock)
    storage = ratelimit.SweptMemoryStorage()

    assert storage.count("k", 60) == (1, clock.now + 60)
    assert storage.incr("k", 60) == 2
    assert storage.get("k") == 2
    assert storage.get_expiry("k") == clock.now + 60
    clock.now += 60  # the window ends: the next count starts a new one
    assert storage.count("k", 60) == (1, clock.now + 60)
    storage.count("other", 1)
    clock.now += 5  # past a sweep: the window of a second ended and is forgotten
    storage.count("k2", 60)
    assert set(storage.expirations) == {"k", "k2"}
    assert set(storage.storage) == {"k", "k2"}
