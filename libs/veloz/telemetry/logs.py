"""One JSON object per log line on stdout, carrying the request id of the request being served."""

import contextvars
import json
import logging
import math
import sys
import time
from datetime import UTC, datetime

import orjson

from veloz.telemetry.tracing import current_trace_id

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "request_id", default=None
)

# Attributes every LogRecord has; anything else passed in `extra=` is a context field.
_STANDARD_ATTRS = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str):
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        entry = self.entry(record.created, record.levelname, record.name, record.getMessage())
        entry.update(
            (key, value) for key, value in vars(record).items() if key not in _STANDARD_ATTRS
        )
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return _line(entry)

    def entry(self, created: float, level: str, logger: str, msg: str) -> dict:
        """The fields every line starts with, in their order."""
        return {"ts": timestamp(created), "level": level, "service": self.service,
                "request_id": request_id_var.get(), "trace_id": current_trace_id(),
                "logger": logger, "msg": msg}


def timestamp(created: float) -> str:
    """`datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds")`, with the
    text up to the second made once per second: a line a request."""
    fraction, whole = math.modf(created)
    micros = round(fraction * 1_000_000)  # as fromtimestamp rounds: half to even
    if micros >= 1_000_000:
        whole, micros = whole + 1, micros - 1_000_000
    global _second
    second, text = _second  # one tuple: threads each read a whole pair
    if second != whole:
        text = datetime.fromtimestamp(whole, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        _second = whole, text
    return f"{text}.{micros // 1000:03d}+00:00"


_second: tuple[float, str] = (-1.0, "")  # the second last written, and its text


def _line(entry: dict) -> str:
    """orjson, which writes a line in a fifth of the stdlib's time; anything it refuses (an
    integer past 64 bits, a key that is not text) still gets its line from the stdlib."""
    try:
        return orjson.dumps(entry, default=str).decode()
    except TypeError:
        return json.dumps(entry, default=str, ensure_ascii=False)


def log_info(logger: logging.Logger, msg: str, fields: dict) -> None:
    """`logger.info(msg, extra=fields)`, writing the very same line itself when nothing but
    this module's handler would see the record: the LogRecord, the handler's dispatch and
    the formatter's pass over the record's attributes cost about 55k instructions a line
    (bench/README.md), once per request in every service. Any filter, any other handler
    (pytest's capture, a library's) or another formatter gets the record as before."""
    if not logger.isEnabledFor(logging.INFO):
        return
    handler = _sole_json_handler(logger)
    if handler is None:
        logger.info(msg, extra=fields)
        return
    formatter: JsonFormatter = handler.formatter  # type: ignore[assignment]
    entry = formatter.entry(time.time(), "INFO", logger.name, msg)
    entry.update(fields)
    line = _line(entry) + "\n"
    try:
        with handler.lock:  # type: ignore[union-attr]
            stream = sys.stdout
            stream.write(line)
            stream.flush()
    except Exception:  # noqa: BLE001 - as a handler would: a line that cannot be written
        logger.info(msg, extra=fields)  # goes through logging, which reports it and goes on


def _sole_json_handler(logger: logging.Logger) -> "StdoutHandler | None":
    """The one handler a record of `logger` reaches, when it is a StdoutHandler with our
    JsonFormatter and nothing on the way filters; else None."""
    found: list[logging.Handler] = []
    current: logging.Logger | None = logger
    while current is not None:
        if current.filters:
            return None
        found.extend(current.handlers)
        if not current.propagate:
            break
        current = current.parent
    if len(found) != 1:
        return None
    handler = found[0]
    if (type(handler) is not StdoutHandler or type(handler.formatter) is not JsonFormatter
            or handler.filters or handler.level > logging.INFO):
        return None
    return handler


class StdoutHandler(logging.StreamHandler):
    """Writes to whatever sys.stdout is at the time (pytest swaps it per test)."""

    @property
    def stream(self):
        return sys.stdout

    @stream.setter
    def stream(self, _value):
        pass


def server_log_config(service: str) -> dict:
    """dictConfig of a server's own lines (start, signals, worker exits), as JSON lines of
    `service`: gunicorn's and granian's. Neither writes access lines; the app writes one per
    request, with its request id."""
    quiet = {"handlers": [], "propagate": False}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "veloz.telemetry.logs.JsonFormatter", "service": service}},
        "handlers": {"stdout": {"class": "veloz.telemetry.logs.StdoutHandler",
                                "formatter": "json"}},
        "root": {"level": "INFO", "handlers": ["stdout"]},
        "loggers": {"gunicorn.error": {"level": "INFO", "handlers": [], "propagate": True},
                    "_granian": {"level": "INFO", "handlers": [], "propagate": True},
                    "gunicorn.access": quiet, "granian.access": quiet},
    }


def configure_logging(service: str, level: str = "INFO") -> None:
    """Route every logger (ours, gunicorn's, libraries') through the JSON formatter. Records
    skip what no line of ours prints (the caller's file and line, thread and process names):
    finding the caller walks the stack on every record (the logging docs' "Optimization")."""
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    logging._srcfile = None  # the documented switch that skips findCaller
    handler = StdoutHandler()
    handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("gunicorn.error").handlers[:] = []
    logging.getLogger("gunicorn.error").propagate = True
    # Servers' own access lines would repeat the app's (which carries the request id).
    for name in ("gunicorn.access", "werkzeug"):
        # A NullHandler, not none: werkzeug adds a stderr handler of its own to a logger
        # that has no handler anywhere.
        logging.getLogger(name).handlers[:] = [logging.NullHandler()]
        logging.getLogger(name).propagate = False
