"""estoque, pagamentos and pedidos under granian: `python -m veloz.run.granian <package>`.

Granian parses HTTP and keeps connections in Rust and runs the WSGI app on a pool of
blocking threads per worker process; the order path costs 11-13 % less CPU per paid order
than under gunicorn's gthread workers, with a lower p99 (bench/README.md, step 9). The
gateway, the one service clients reach, stays on gunicorn (veloz.run.gunicorn_conf): its workers
answer a malformed request (400, 414, 431) with a problem+json body, where granian's HTTP
layer answers with an empty one, and only the gateway can be sent such a request.

The same environment as gunicorn_conf: BIND (host:port), WEB_CONCURRENCY (worker processes:
GRANIAN_WORKERS, one, when unset),
GUNICORN_THREADS (request threads per worker), GRACEFUL_TIMEOUT (seconds a stopping worker
has to finish its requests), GC_THRESHOLDS (veloz.run.server_settings). The main process imports the
service's code before it starts the workers, so a worker that crashed is forked again with its
modules loaded and serves again in a fraction of a second, not after seconds of imports on a
busy machine; no app is preloaded: each worker builds its own (engine, pools) after the fork,
so no connection is shared between processes.

METRICS_BIND (the gateway's internal metrics listener, veloz.run.gunicorn_conf) is refused here:
granian binds one address, and these services keep /metrics on it, a port that only
Prometheus and their callers inside the platform reach.
"""

import argparse
import importlib
import os
from collections.abc import Mapping
from pathlib import Path

from granian.constants import HTTPModes, Interfaces
from granian.server.mp import MPServer
from prometheus_client import multiprocess

from veloz.run.server_settings import (
    GRANIAN_WORKERS,
    ServerSettings,
    mark_ready,
    settle_collector,
)
from veloz.telemetry.logs import server_log_config
from veloz.telemetry.metrics import SERVER_PID_ENV, multiprocess_dir

PACKAGE = "VELOZ_SERVE_PACKAGE"  # the worker's app, for worker_app()


def worker_app():
    """Granian's factory, called once in each worker process."""
    forget_dead_workers(multiprocess_dir())
    app = importlib.import_module(f"{os.environ[PACKAGE]}.app").create_app()
    settle_collector(ServerSettings.from_environment().gc_thresholds)
    mark_ready()
    return app


def forget_dead_workers(metrics_dir: str | None) -> None:
    """Drop the live gauges (requests in flight, request threads) of workers that are gone,
    as gunicorn_conf.child_exit does: granian respawns a dead worker but tells no hook, so
    the worker that replaces it clears them when it starts."""
    if not metrics_dir:
        return
    for path in Path(metrics_dir).glob("gauge_live*_*.db"):
        pid = int(path.stem.rsplit("_", 1)[1])
        if not _alive(pid):
            multiprocess.mark_process_dead(pid, metrics_dir)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # somebody else's process
        pass
    return True


def server(environ: Mapping[str, str] = os.environ) -> MPServer:
    """Granian's server of worker processes (granian.Granian on a CPython with a GIL)."""
    settings = ServerSettings.from_environment(environ, default_workers=GRANIAN_WORKERS)
    host, _, port = settings.bind.rpartition(":")
    return MPServer(
        "veloz.run.granian:worker_app", factory=True, interface=Interfaces.WSGI,
        address=host, port=int(port), http=HTTPModes.http1, websockets=False,
        workers=settings.workers, blocking_threads=settings.threads,
        workers_kill_timeout=settings.graceful_timeout,
        respawn_failed_workers=True,
        log_dictconfig=server_log_config(environ.get("SERVICE_NAME", "granian")),
        log_access=False)  # the app writes one access line per request


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("package", help="the service's package: estoque, pagamentos, pedidos")
    package = parser.parse_args(argv).package
    settings = ServerSettings.from_environment()  # a bad GC_THRESHOLDS stops here
    if settings.metrics_bind:
        raise SystemExit("METRICS_BIND is for the gateway (gunicorn); under granian a service "
                         "serves /metrics on BIND: unset it")
    os.environ[PACKAGE] = package
    os.environ[SERVER_PID_ENV] = str(os.getpid())
    importlib.import_module(f"{package}.app")  # code only: each worker still builds its app
    server().serve()


if __name__ == "__main__":
    main()
