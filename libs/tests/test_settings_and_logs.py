"""Config fails fast; logs are one JSON object per line with the request id."""

import json
import logging
from datetime import UTC, datetime

import pytest

from veloz.core.settings import DatabaseSettings
from veloz.telemetry.logs import (
    JsonFormatter,
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


def test_a_timestamp_is_what_datetime_writes():
    for created in (1796531258.9999996, 1796531258.0000004, 1796531258.9995, 0.0, 1.5e9 + 0.5):
        assert timestamp(created) == datetime.fromtimestamp(created, UTC).isoformat(
            timespec="milliseconds")
