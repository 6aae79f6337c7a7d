"""How the services are served: gunicorn at the edge (veloz.run.gunicorn_conf), granian inside
(veloz.run.granian), each worker's collector tuned once its app is built
(veloz.run.server_settings)."""

import gc
import json
import os
import subprocess
import sys
from http import HTTPStatus

import pytest
from flask import Flask
from gunicorn import util
from gunicorn.workers.ggevent import GeventWorker

from veloz.dev.devstack import SERVICES, Platform, free_ports, free_service_ports
from veloz.dev.testing import migrated_test_database
from veloz.run import granian, gunicorn_conf, server_settings
from veloz.run.gunicorn_workers import (
    BodyBudget,
    ConnectionsPerPeer,
    ProblemErrors,
    app_body_limit,
    peer_address,
    refused,
)
from veloz.telemetry.logs import server_log_config


@pytest.fixture
def collector_restored():
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


def test_a_booted_gunicorn_worker_freezes_what_it_built_and_collects_less_often(
        collector_restored):
    gunicorn_conf.post_worker_init(worker=None)

    assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == gunicorn_conf.GC_THRESHOLDS != (700, 10, 10)  # CPython's


def test_a_granian_worker_gets_its_service_app_then_tunes_its_collector(
        collector_restored, monkeypatch, postgres_server_url):
    monkeypatch.setenv("DATABASE_URL", migrated_test_database(postgres_server_url, "pagamentos"))
    monkeypatch.setenv(granian.PACKAGE, "pagamentos")
    monkeypatch.setenv("GC_THRESHOLDS", "4000,15,30")

    app = granian.worker_app()

    assert app.test_client().get("/livez").json == {"status": "alive",
                                                    "service": "pagamentos-service"}
    assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == (4000, 15, 30)


def test_granian_takes_the_settings_gunicorn_reads():
    server = granian.server({"BIND": "0.0.0.0:5003", "WEB_CONCURRENCY": "3",
                           "GUNICORN_THREADS": "6", "GRACEFUL_TIMEOUT": "30",
                           "SERVICE_NAME": "estoque-service"})

    assert (server.bind_addr, server.bind_port) == ("0.0.0.0", 5003)
    assert (server.workers, server.blocking_threads) == (3, 6)
    assert server.workers_kill_timeout == 30
    assert server.respawn_failed_workers
    assert server.target == "veloz.run.granian:worker_app"
    assert server.factory
    assert not server.log_access  # the app writes one access line per request


def test_a_service_runs_one_granian_worker_and_the_gateway_two_unless_told():
    service = granian.server({"BIND": "127.0.0.1:5003", "SERVICE_NAME": "estoque-service"})
    gateway = server_settings.ServerSettings.from_environment({})

    assert (service.workers, service.blocking_threads) == (1, 4)
    assert gateway.workers == 2


def test_a_bad_gc_thresholds_stops_granian_before_any_worker(monkeypatch):
    monkeypatch.setenv("GC_THRESHOLDS", "5000,20")
    monkeypatch.setattr(granian, "server", lambda: pytest.fail("a server was built"))

    with pytest.raises(SystemExit, match="GC_THRESHOLDS"):
        granian.main(["estoque"])


def test_only_the_gateway_faces_clients_on_gunicorn():
    commands = {spec.name: spec.server_command() for spec in SERVICES}

    assert commands.pop("api-gateway")[:3] == ["gunicorn", "-c", "python:veloz.run.gunicorn_conf"]
    assert commands == {name: ["python", "-m", "veloz.run.granian", name.split("-")[0]]
                        for name in commands}


def test_both_servers_write_their_own_lines_as_json_and_no_access_lines():
    loggers = server_log_config("estoque-service")["loggers"]

    assert loggers["gunicorn.error"]["propagate"]
    assert loggers["_granian"]["propagate"]
    assert loggers["gunicorn.access"] == loggers["granian.access"] == {
        "handlers": [], "propagate": False}


@pytest.mark.parametrize("value", ["5000,20", "5000,20,x", "0,20,50", ""])
def test_gc_thresholds_that_are_not_three_positive_integers_stop_the_server(value):
    with pytest.raises(SystemExit, match="GC_THRESHOLDS"):
        server_settings.gc_thresholds(value)


def test_gc_thresholds_are_read_as_given():
    assert server_settings.gc_thresholds("700,10,10") == (700, 10, 10)


def test_a_new_granian_worker_drops_the_live_gauges_of_workers_that_are_gone(tmp_path):
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    for pid in (gone.pid, os.getpid()):
        (tmp_path / f"gauge_livesum_{pid}.db").write_bytes(b"")
    (tmp_path / f"counter_{gone.pid}.db").write_bytes(b"")  # counts outlive their worker

    granian.forget_dead_workers(str(tmp_path))

    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(
        [f"counter_{gone.pid}.db", f"gauge_livesum_{os.getpid()}.db"])


# The gateway's gevent worker (veloz.run.gunicorn_workers.ProblemGeventWorker): its settings here,
# what it does to slow and greedy clients in tests/e2e/test_slow_clients.py.

def gateway_config(*expressions: str, **env: str) -> subprocess.CompletedProcess:
    """Load the gateway's gunicorn config as its master does, in a fresh interpreter with
    `env` added, and print each expression's value, one a line."""
    script = ("import sys\nfrom gunicorn import util\nimport veloz.run.gunicorn_conf as conf\n"
              "worker = util.load_class(conf.worker_class)\n"
              + "".join(f"print({expression})\n" for expression in expressions))
    return subprocess.run([sys.executable, "-c", script], env={**os.environ, **env},
                          capture_output=True, text=True, timeout=60, check=False)


def test_the_gateway_runs_gevent_workers_with_their_connection_budget():
    worker = gunicorn_conf.worker_class
    assert worker == "veloz.run.gunicorn_workers.ProblemGeventWorker"
    loaded = util.load_class(worker)
    assert issubclass(loaded, GeventWorker)
    assert issubclass(loaded, ProblemErrors)  # 400, 414, 431 still as problem+json
    assert gunicorn_conf.worker_connections == 1000
    assert not hasattr(gunicorn_conf, "threads")  # GUNICORN_THREADS is granian's now
    assert gunicorn_conf.preload_app is False  # gevent patches before the app is imported


def test_the_gateway_reads_its_client_bounds_from_the_environment():
    loaded = gateway_config("conf.worker_connections", "conf.edge",
                            GUNICORN_WORKER_CONNECTIONS="250", GUNICORN_THREADS="9",
                            REQUEST_HEADER_TIMEOUT_SECONDS="2.5",
                            REQUEST_BODY_TIMEOUT_SECONDS="4", MAX_CONNECTIONS_PER_CLIENT="0",
                            REQUEST_BODY_BUDGET_BYTES="4096")

    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.splitlines() == [
        "250", "EdgeSettings(worker_connections=250, header_timeout=2.5, body_timeout=4.0, "
               "max_connections_per_client=0, body_budget_bytes=4096)"]


def test_a_bad_client_bound_stops_the_gateway_before_any_worker():
    loaded = gateway_config("'a worker class was loaded'", REQUEST_BODY_TIMEOUT_SECONDS="soon")

    assert loaded.returncode != 0
    assert "REQUEST_BODY_TIMEOUT_SECONDS must be a number of seconds: 'soon'" in loaded.stderr
    assert "a worker class was loaded" not in loaded.stdout


def test_the_gateway_listens_for_metrics_on_a_second_address_loopback_unless_told():
    default = gateway_config("conf.bind", BIND="0.0.0.0:5000", METRICS_BIND="")
    told = gateway_config("conf.bind", BIND="0.0.0.0:5000", METRICS_BIND="0.0.0.0:9102")

    assert default.stdout.splitlines() == ["['0.0.0.0:5000', '127.0.0.1:9102']"], default.stderr
    assert told.stdout.splitlines() == ["['0.0.0.0:5000', '0.0.0.0:9102']"], told.stderr


@pytest.mark.parametrize(("metrics_bind", "message"), [
    ("0.0.0.0:5000", "METRICS_BIND must be another port than BIND"),
    ("127.0.0.1:5000", "METRICS_BIND must be another port than BIND"),
    ("9102", "METRICS_BIND must be host:port"),
    ("0.0.0.0:metrics", "METRICS_BIND must be host:port"),
    ("0.0.0.0:70000", "METRICS_BIND must be host:port"),
])
def test_a_metrics_bind_on_the_public_port_or_malformed_stops_the_gateway(metrics_bind,
                                                                          message):
    loaded = gateway_config("'a worker class was loaded'", BIND="0.0.0.0:5000",
                            METRICS_BIND=metrics_bind)

    assert loaded.returncode != 0
    assert message in loaded.stderr
    assert "a worker class was loaded" not in loaded.stdout


def test_a_granian_service_refuses_metrics_bind_as_it_keeps_metrics_on_its_own_port(
        monkeypatch):
    monkeypatch.setenv("METRICS_BIND", "127.0.0.1:9102")
    monkeypatch.setattr(granian, "server", lambda: pytest.fail("a server was built"))

    with pytest.raises(SystemExit, match="METRICS_BIND is for the gateway"):
        granian.main(["estoque"])


def test_the_gateway_master_imports_no_app_and_no_http_client_before_gevent_patches():
    """The master forks the workers: whatever it imported is imported in each worker before
    GeventWorker.init_process patches, and a module that took the unpatched socket or thread
    lock keeps it. The app is imported by the worker itself, after the patching."""
    loaded = gateway_config("sorted(m for m in ('gateway', 'urllib3', 'requests', 'redis') "
                            "if m in sys.modules)", "'gevent.monkey' in sys.modules and "
                            "sys.modules['gevent.monkey'].is_anything_patched()")

    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.splitlines() == ["[]", "False"]


def test_the_edge_settings_default_to_ten_second_deadlines_and_a_hundred_connections():
    assert server_settings.EdgeSettings.from_environment({}) == server_settings.EdgeSettings(
        worker_connections=1000, header_timeout=10.0, body_timeout=10.0,
        max_connections_per_client=100)


@pytest.mark.parametrize(("name", "value"), [
    ("GUNICORN_WORKER_CONNECTIONS", "0"), ("GUNICORN_WORKER_CONNECTIONS", "many"),
    ("REQUEST_HEADER_TIMEOUT_SECONDS", "0"), ("REQUEST_HEADER_TIMEOUT_SECONDS", "-1"),
    ("REQUEST_HEADER_TIMEOUT_SECONDS", "inf"), ("REQUEST_BODY_TIMEOUT_SECONDS", "nan"),
    ("REQUEST_BODY_TIMEOUT_SECONDS", ""), ("MAX_CONNECTIONS_PER_CLIENT", "-1"),
    ("MAX_CONNECTIONS_PER_CLIENT", "1.5"),
])
def test_edge_settings_out_of_range_stop_the_server(name, value):
    with pytest.raises(SystemExit, match=name):
        server_settings.EdgeSettings.from_environment({name: value})


def test_a_client_holds_at_most_its_share_of_connections_and_gets_them_back():
    per_peer = ConnectionsPerPeer(limit=2)

    assert [per_peer.admit("10.0.0.1") for _ in range(3)] == [True, True, False]
    assert per_peer.admit("10.0.0.2")  # another address has its own share
    per_peer.release("10.0.0.1")
    assert per_peer.admit("10.0.0.1")
    for peer in ("10.0.0.1", "10.0.0.1", "10.0.0.2"):
        per_peer.release(peer)
    assert per_peer.held("10.0.0.1") == per_peer.held("10.0.0.2") == 0
    assert per_peer._open == {}  # only the addresses connected right now


def test_without_a_connection_limit_or_an_address_nothing_is_counted():
    unlimited, one_each = ConnectionsPerPeer(limit=0), ConnectionsPerPeer(limit=1)

    assert all(unlimited.admit("10.0.0.1") for _ in range(500))
    assert all(one_each.admit(None) for _ in range(3))
    assert peer_address(("10.0.0.1", 5000)) == "10.0.0.1"
    assert peer_address("") is None  # a unix socket


def test_the_worker_refuses_with_a_problem_and_its_headers():
    head, body = refused("too-many-connections", limit=4).answer().split(b"\r\n\r\n", 1)
    lines = head.decode().split("\r\n")
    problem = json.loads(body)

    assert lines[0] == "HTTP/1.1 429 Too Many Requests"
    assert {"Connection: close", "Content-Type: application/problem+json",
            "Retry-After: 1", f"X-Request-ID: {problem['request_id']}"} <= set(lines)
    assert problem["type"] == "urn:pedidos-veloz:problem:too-many-connections"
    timed_out = refused("request-timeout", part="head", seconds=1.5)
    assert timed_out.status == HTTPStatus.REQUEST_TIMEOUT
    assert str(timed_out) == "The request head was not complete within 1.5 s."


def test_the_worker_buffers_no_more_of_a_body_than_the_app_accepts():
    app = Flask(__name__)
    assert app_body_limit(app) is None
    app.config["MAX_CONTENT_LENGTH"] = 1024
    assert app_body_limit(app) == 1024
    assert app_body_limit(object()) is None


def test_a_body_budget_lends_what_it_has_and_takes_back_what_was_answered():
    bodies = BodyBudget(100)
    assert bodies.take(60)
    assert not bodies.take(41)  # 101 would not fit
    assert bodies.take(40)
    bodies.give_back(60)
    assert bodies.take(60)
    assert bodies.held == 100


def test_ports_for_a_platform_are_all_different_and_avoid_the_ones_taken():
    taken = set(free_ports(20))

    ports = free_ports(40, avoid=taken)

    assert len(set(ports)) == 40
    assert not taken & set(ports)
    assert len(set(free_service_ports().values())) == len(SERVICES)


def test_a_platforms_metrics_listeners_take_none_of_its_service_ports(tmp_path):
    ports = free_service_ports()

    platform = Platform(server_url="postgresql://unused", ports=ports, run_dir=tmp_path)

    assert not set(platform.metrics_ports.values()) & set(ports.values())
    assert len(set(platform.metrics_ports.values())) == len(platform.metrics_ports)
