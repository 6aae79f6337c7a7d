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
    """A logger of its own with the JSON handler every service configures, and nothing else."""
    logger = logging.getLogger("veloz.tests.access")
    handler = StdoutHandler()
    handler.setFormatter(JsonFormatter("estoque-service"))
    logger.handlers[:], logger.propagate, logger.level = [handler], False, logging.INFO
    yield logger
    logger.handlers[:], logger.filters[:], logger.propagate = [], [], True


def test_an_access_line_written_directly_is_the_line_logging_writes(json_logger, capsys,
                                                                    monkeypatch):
    monkeypatch.setattr("time.time", lambda: 1796531258.25)
    token = request_id_var.set("req-7")
    try:
        log_info(json_logger, "request", ACCESS_FIELDS)
        json_logger.info("request", extra=ACCESS_FIELDS)
    finally:
        request_id_var.reset(token)

    direct, through_logging = capsys.readouterr().out.splitlines()
    assert direct == through_logging
    assert json.loads(direct) == {
        "ts": "2026-12-06T04:27:38.250+00:00", "level": "INFO", "service": "estoque-service",
        "request_id": "req-7", "trace_id": None, "logger": "veloz.tests.access",
        "msg": "request", **ACCESS_FIELDS}


def test_an_access_line_is_a_record_for_any_other_handler_or_filter(json_logger, capsys):
    seen: list[logging.LogRecord] = []
    other = logging.Handler()
    other.emit = seen.append  # type: ignore[method-assign]
    json_logger.addHandler(other)
    log_info(json_logger, "request", ACCESS_FIELDS)
    assert [(record.getMessage(), record.route) for record in seen] == [  # type: ignore[attr-defined]
        ("request", "/items/<int:item_id>")]
    assert json.loads(capsys.readouterr().out)["route"] == "/items/<int:item_id>"

    json_logger.removeHandler(other)
    json_logger.addFilter(lambda record: False)
    log_info(json_logger, "request", ACCESS_FIELDS)
    assert capsys.readouterr().out == ""


def test_no_access_line_below_the_loggers_level(json_logger, capsys):
    json_logger.setLevel(logging.WARNING)
    log_info(json_logger, "request", ACCESS_FIELDS)
    assert capsys.readouterr().out == ""
