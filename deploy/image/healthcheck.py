"""The images' HEALTHCHECK: `python /opt/veloz/healthcheck.py [PATH] [PORT]` exits 0 when
http://127.0.0.1:PORT/PATH answers 2xx. PORT defaults to the one in BIND, else to the port of
this image's service in the table beside this file (the HEALTHCHECK runs without the
entrypoint, so it sees BIND only where the container's environment sets it); a worker
started from the same image passes `/metrics $METRICS_PORT`."""

import os
import sys
import urllib.error
import urllib.request
from pathlib import Path

TABLE = Path(__file__).with_name("services")


def service_port(service: str, table: Path = TABLE) -> str:
    """The port column of the service's line in deploy/image/services ("" when not there)."""
    for line in table.read_text().splitlines():
        columns = line.split()
        if columns and not columns[0].startswith("#") and columns[0] == service:
            return columns[2]
    return ""


def default_port() -> str:
    bound = os.environ.get("BIND", "").rpartition(":")[2]
    return bound or service_port(os.environ.get("VELOZ_SERVICE", ""))


def main(argv: list[str]) -> int:
    path = argv[1] if len(argv) > 1 else "/livez"
    port = argv[2] if len(argv) > 2 else default_port()
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as answer:
            return 0 if 200 <= answer.status < 300 else 1
    except (urllib.error.URLError, OSError, ValueError) as error:
        print(f"unhealthy: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
