"""A pod told to stop (veloz.run.drain, its preStop hook) stops being ready at once, and a worker
that has built its app says so to whoever started the server
(veloz.run.server_settings.mark_ready)."""

import time

import pytest

from veloz.run import drain
from veloz.run.server_settings import DRAIN_FILE, READY_DIR, DrainWatch, draining, mark_ready
from veloz.web.app import create_service_app


@pytest.fixture
def marker(tmp_path, monkeypatch):
    path = tmp_path / "draining"
    monkeypatch.setenv(DRAIN_FILE, str(path))
    return path


def test_a_service_is_ready_until_the_pre_stop_hook_runs_then_never_again(marker):
    app = create_service_app(name="drain-probe", version="1", log_level="WARNING",
                             max_body_bytes=1024, blueprints=[], readiness=dict)
    client = app.test_client()
    assert client.get("/readyz").status_code == 200

    drain.main(["0"])

    answer = client.get("/readyz")
    assert (answer.status_code, answer.json["status"]) == (503, "draining")
    assert client.get("/livez").status_code == 200  # alive: it must not be restarted


def test_without_a_drain_file_setting_nothing_is_ever_draining(tmp_path, monkeypatch):
    monkeypatch.delenv(DRAIN_FILE, raising=False)
    drain.main(["0"])
    assert not draining()
    assert list(tmp_path.iterdir()) == []


def test_a_worker_marks_itself_ready_in_the_folder_it_was_given(tmp_path):
    mark_ready({READY_DIR: str(tmp_path)})
    mark_ready({})  # outside `make up`: nothing to do, nothing raised
    assert len(list(tmp_path.iterdir())) == 1


def test_a_service_told_to_stop_asks_every_client_to_close_its_connection(marker):
    app = create_service_app(name="drain-close-probe", version="1", log_level="WARNING",
                             max_body_bytes=1024, blueprints=[], readiness=dict)
    client = app.test_client()
    assert "Connection" not in client.get("/livez").headers

    drain.main(["0"])
    time.sleep(0.15)  # DrainWatch looks at the marker every 0.1 s

    assert client.get("/livez").headers["Connection"] == "close"


def test_the_drain_watch_looks_at_the_marker_at_most_every_interval_and_then_stays_draining(
        marker):
    now = [0.0]
    watch = DrainWatch(every=1.0, clock=lambda: now[0])
    assert not watch()
    marker.touch()
    now[0] = 0.5
    assert not watch()  # not looked at again yet
    now[0] = 1.0
    assert watch()
    marker.unlink()
    assert watch()  # told to stop is for good
