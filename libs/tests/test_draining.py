"""A pod told to stop (veloz.drain, its preStop hook) stops being ready at once, and a worker
that has built its app says so to whoever started the server (veloz.serving.mark_ready)."""

import pytest

from veloz import drain
from veloz.service_app import create_service_app
from veloz.serving import DRAIN_FILE, READY_DIR, draining, mark_ready


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
