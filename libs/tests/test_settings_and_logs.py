"""Config fails fast; logs are one JSON object per line with the request id."""

import json
import logging
from datetime import UTC, datetime

import pytest

from veloz.core.settings import DatabaseSettings
from veloz.telemetry.logs import (
    JsonFormatter,
    configure_logging,
    log_info,
    request_id_var,
    timestamp,
)


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


@pytest.fixture
def json_logging():
    """Our logging configuration (made in the test itself: pytest adds a handler of its own
    to the root logger for each phase of a test), put back as it was afterwards."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level

    def configured() -> logging.Logger:
        configure_logging("test-service", "INFO")
        return logging.getLogger("veloz.access")

    yield configured
    root.handlers[:], root.level = saved


def test_a_line_written_straight_is_the_line_logging_writes(json_logging, capsys, monkeypatch):
    access = json_logging()
    made = []
    make_record = logging.Logger.makeRecord
    monkeypatch.setattr(logging.Logger, "makeRecord",
                        lambda *args, **kwargs: made.append(1) or make_record(*args, **kwargs))
    fields = {"method": "GET", "route": "/items/<id>", "path": "/items/1", "status": 200,
              "duration_ms": 1.25}
    token = request_id_var.set("req-7")
    try:
        access.info("request", extra=fields)
        log_info(access, "request", fields)
    finally:
        request_id_var.reset(token)

    through_logging, straight = (json.loads(line) for line in
                                 capsys.readouterr().out.splitlines())
    assert len(made) == 1, "the second line was written without a LogRecord"
    assert list(straight) == list(through_logging)  # the same fields, in the same order
    assert {**straight, "ts": None} == {**through_logging, "ts": None}


def test_a_filtered_logger_gets_its_record_through_logging(json_logging, capsys):
    access = json_logging()
    access.addFilter(lambda record: record.status != 404)
    try:
        log_info(access, "request", {"status": 404})
        log_info(access, "request", {"status": 200})
    finally:
        access.filters.clear()

    assert [json.loads(line)["status"] for line in capsys.readouterr().out.splitlines()] == [200]


def test_a_timestamp_is_what_datetime_writes():
    for created in (1796531258.9999996, 1796531258.0000004, 1796531258.9995, 0.0, 1.5e9 + 0.5):
        assert timestamp(created) == datetime.fromtimestamp(created, UTC).isoformat(
            timespec="milliseconds")
