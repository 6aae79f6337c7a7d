"""Config fails fast; logs are one JSON object per line with the request id."""

import json
import logging
from datetime import UTC, datetime

import pytest

from veloz.core.settings import DatabaseSettings
from veloz.telemetry.logs import (
    JsonFormatter,
    StdoutHandler,
    log_info,
    request_id_var,
    timestamp,
)

ACCESS_FIELDS = {"method": "GET", "route": "/items/<int:item_id>", "path": "/items/7",
                 "status": 200, "duration_ms": 1.25}


def test_missing_required_setting_stops_the_process_with_its_name(monkeypatch):
    monkeypatch.delenv("DATABASE_URL", raising=False)

    with pytest.raises(SystemExit) as stopped:
        DatabaseSettings.from_env()

    assert "DATABASE_URL" in str(stopped.value)


def test_invalid_setting_is_reported_not_guessed(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgresql://x/y")
    monkeypatch.setenv("DB_POOL_SIZE", "lots")

    with pytest.raises(SystemExit) as stopped:
        DatabaseSettings.from_env()

    assert "DB_POOL_SIZE" in str(stopped.value)


def test_log_line_is_json_with_request_id_and_context_fields():
    record = logging.makeLogRecord({"msg": "reserved %s units", "args": (3,),
                                    "levelname": "INFO", "name": "estoque", "order_id": 9})
    token = request_id_var.set("req-1")
    try:
        line = json.loads(JsonFormatter("estoque-service").format(record))
    finally:
        request_id_var.reset(token)

    assert line["msg"] == "reserved 3 units"
    assert line["request_id"] == "req-1"
    assert line["service"] == "estoque-service"
    assert line["order_id"] == 9
    assert line["ts"].endswith("+00:00")


def test_a_timestamp_is_what_datetime_writes():
    for created in (1796531258.9999996, 1796531258.0000004, 1796531258.9995, 0.0, 1.5e9 + 0.5):
        assert timestamp(created) == datetime.fromtimestamp(created, UTC).isoformat(
            timespec="milliseconds")


@pytest.fixture
def json_logger():
    """A logger of its own with the JSON handler every service configures, and nothing else
    once the test runs: pytest hangs its capture handlers on every logger, so each test calls
    `only_json` first (after pytest has), else no line would take the direct way."""
    logger = logging.getLogger("veloz.tests.access")
    handler = StdoutHandler()
    handler.setFormatter(JsonFormatter("estoque-service"))
    logger.propagate = False
    logger.setLevel(logging.INFO)  # not `.level =`: setLevel clears what the logger cached

    def only_json() -> logging.Logger:
        logger.handlers[:] = [handler]
        return logger

    yield only_json
    logger.handlers[:], logger.filters[:], logger.propagate = [], [], True


def _through_logging_refused(*_args, **_kwargs):
    raise AssertionError("the line went through logging, not the direct way")


def test_an_access_line_written_directly_is_the_line_logging_writes(json_logger, capsys,
                                                                    monkeypatch):
    logger = json_logger()
    monkeypatch.setattr("time.time", lambda: 1796531258.25)
    token = request_id_var.set("req-7")
    try:
        with monkeypatch.context() as direct_only:
            direct_only.setattr(logger, "info", _through_logging_refused)
            log_info(logger, "request", ACCESS_FIELDS)
        logger.info("request", extra=ACCESS_FIELDS)
    finally:
        request_id_var.reset(token)

    direct, through_logging = capsys.readouterr().out.splitlines()
    assert direct == through_logging
    assert json.loads(direct) == {
        "ts": "2026-12-06T04:27:38.250+00:00", "level": "INFO", "service": "estoque-service",
        "request_id": "req-7", "trace_id": None, "logger": "veloz.tests.access",
        "msg": "request", **ACCESS_FIELDS}


def test_an_access_line_is_a_record_for_any_other_handler_or_filter(json_logger, capsys):
    logger = json_logger()
    seen: list[logging.LogRecord] = []
    other = logging.Handler()
    other.emit = seen.append  # type: ignore[method-assign]
    logger.addHandler(other)
    log_info(logger, "request", ACCESS_FIELDS)
    assert [(record.getMessage(), record.route) for record in seen] == [  # type: ignore[attr-defined]
        ("request", "/items/<int:item_id>")]
    assert json.loads(capsys.readouterr().out)["route"] == "/items/<int:item_id>"

    logger.removeHandler(other)
    logger.addFilter(lambda record: False)
    log_info(logger, "request", ACCESS_FIELDS)
    assert capsys.readouterr().out == ""


def test_no_access_line_below_the_loggers_level(json_logger, capsys):
    logger = json_logger()
    logger.setLevel(logging.WARNING)
    log_info(logger, "request", ACCESS_FIELDS)
    assert capsys.readouterr().out == ""


def test_a_line_that_cannot_be_written_fails_no_request(json_logger, monkeypatch, capsys):
    class ClosedPipe:
        def write(self, _text):
            raise BrokenPipeError(32, "Broken pipe")

        def flush(self):
            raise BrokenPipeError(32, "Broken pipe")

    logger = json_logger()
    monkeypatch.setattr("sys.stdout", ClosedPipe())
    log_info(logger, "request", ACCESS_FIELDS)  # as logger.info would: no exception

    assert "Logging error" in capsys.readouterr().err
