"""How the services are served: gunicorn at the edge (veloz.gunicorn_conf), granian inside
(veloz.serve), each worker's collector tuned once its app is built (veloz.serving)."""

import gc
import os
import subprocess
import sys

import pytest

from veloz import gunicorn_conf, serve, serving
from veloz.devstack import SERVICES
from veloz.logs import server_log_config
from veloz.testing import migrated_test_database


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
    monkeypatch.setenv(serve.PACKAGE, "pagamentos")
    monkeypatch.setenv("GC_THRESHOLDS", "4000,15,30")

    app = serve.worker_app()

    assert app.test_client().get("/livez").json == {"status": "alive",
                                                    "service": "pagamentos-service"}
    assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == (4000, 15, 30)


def test_granian_takes_the_settings_gunicorn_reads():
    server = serve.server({"BIND": "0.0.0.0:5003", "WEB_CONCURRENCY": "3",
                           "GUNICORN_THREADS": "6", "GRACEFUL_TIMEOUT": "30",
                           "SERVICE_NAME": "estoque-service"})

    assert (server.bind_addr, server.bind_port) == ("0.0.0.0", 5003)
    assert (server.workers, server.blocking_threads) == (3, 6)
    assert server.workers_kill_timeout == 30
    assert server.respawn_failed_workers
    assert server.target == "veloz.serve:worker_app"
    assert server.factory
    assert not server.log_access  # the app writes one access line per request


def test_a_bad_gc_thresholds_stops_granian_before_any_worker(monkeypatch):
    monkeypatch.setenv("GC_THRESHOLDS", "5000,20")
    monkeypatch.setattr(serve, "server", lambda: pytest.fail("a server was built"))

    with pytest.raises(SystemExit, match="GC_THRESHOLDS"):
        serve.main(["estoque"])


def test_only_the_gateway_faces_clients_on_gunicorn():
    commands = {spec.name: spec.server_command() for spec in SERVICES}

    assert commands.pop("api-gateway")[:3] == ["gunicorn", "-c", "python:veloz.gunicorn_conf"]
    assert commands == {name: ["python", "-m", "veloz.serve", name.split("-")[0]]
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
        serving.gc_thresholds(value)


def test_gc_thresholds_are_read_as_given():
    assert serving.gc_thresholds("700,10,10") == (700, 10, 10)


def test_a_new_granian_worker_drops_the_live_gauges_of_workers_that_are_gone(tmp_path):
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    for pid in (gone.pid, os.getpid()):
        (tmp_path / f"gauge_livesum_{pid}.db").write_bytes(b"")
    (tmp_path / f"counter_{gone.pid}.db").write_bytes(b"")  # counts outlive their worker

    serve.forget_dead_workers(str(tmp_path))

    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(
        [f"counter_{gone.pid}.db", f"gauge_livesum_{os.getpid()}.db"])
