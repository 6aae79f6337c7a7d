"""The images' HEALTHCHECK: `python /opt/veloz/healthcheck.py [PATH] [PORT]` exits 0 when
http://127.0.0.1:PORT/PATH answers 2xx. PORT defaults to the one in BIND (the service), so a
worker started from the same image passes `/metrics $METRICS_PORT`."""

import os
import sys
import urllib.error
import urllib.request


def main(argv: list[str]) -> int:
    path = argv[1] if len(argv) > 1 else "/livez"
    port = argv[2] if len(argv) > 2 else os.environ.get("BIND", "").rpartition(":")[2]
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as answer:
            return 0 if 200 <= answer.status < 300 else 1
    except (urllib.error.URLError, OSError, ValueError) as error:
        print(f"unhealthy: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
