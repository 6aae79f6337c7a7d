"""A pod's preStop hook: `python -m veloz.run.drain SECONDS`.

Kubernetes runs it when it decides to stop a pod, before SIGTERM. It leaves the DRAIN_FILE
marker, so /readyz answers 503 from then on in every worker
(veloz.run.server_settings.draining) and every
answer carries Connection: close (pooled callers move to other pods), then
sleeps SECONDS while endpoints, kube-proxy and the Ingress stop sending new requests here. Only
then does the server get SIGTERM and drain what it still has (GRACEFUL_TIMEOUT).
"""

import argparse
import os
import time
from pathlib import Path

from veloz.run.server_settings import DRAIN_FILE


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("seconds", type=float, help="how long to wait for endpoints to drain")
    seconds = parser.parse_args(argv).seconds
    marker = os.environ.get(DRAIN_FILE)
    if marker:
        Path(marker).touch()
    time.sleep(seconds)


if __name__ == "__main__":
    main()
