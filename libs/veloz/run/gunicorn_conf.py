"""Gunicorn settings of the gateway, the one service on gunicorn (the others run granian:
veloz.run.granian): `gunicorn -c python:veloz.run.gunicorn_conf gateway.app:create_app()`.

WEB_CONCURRENCY gevent worker processes, each holding up to GUNICORN_WORKER_CONNECTIONS
connections, one greenlet each: GUNICORN_THREADS does not apply here (it is granian's, inside
the platform). The deadlines and the per-client bound of EdgeSettings come from the environment
too; veloz.run.gunicorn_workers.ProblemGeventWorker enforces them.

No `preload_app`: each worker builds its own app and pools after the fork, so no connection
is ever shared between processes, and gevent has patched the standard library before the app
is imported. So this module (read by the master, which forks the workers) imports neither the
app nor an HTTP client: a module imported before the patching keeps the unpatched socket.

Two listeners: BIND, the public port, and METRICS_BIND (default 127.0.0.1:9102), the only
one that answers /metrics. Why two listeners of one server rather than a metrics server of
its own: every worker already holds the app and its scrape-time collectors (breakers,
capacity, the process group), which a separate server in the master would have to rebuild,
and the master must not import the app (gevent patches the workers first); both listeners
are bound by the master before it forks, so `make restart`'s surge (reuse_port) and a
worker's crash treat them alike. The app tells them apart by the local port of the
connection's socket, never by Host (veloz.web.app.serve_metrics_only_on).
"""

import os

from veloz.run.server_settings import (
    METRICS_BIND,
    EdgeSettings,
    ServerSettings,
    mark_ready,
    metrics_listener,
    settle_collector,
)
from veloz.telemetry.logs import server_log_config

settings = ServerSettings.from_environment()  # a bad GC_THRESHOLDS stops the master here
edge = EdgeSettings.from_environment()  # and so does a bad deadline or connection bound
workers = settings.workers
metrics_bind = metrics_listener(settings)  # a bad or clashing METRICS_BIND stops here too
bind = [settings.bind, metrics_bind]
# gevent, answering its own refusals (400, 408, 413, 414, 429, 431) as problem+json.
worker_class = "veloz.run.gunicorn_workers.ProblemGeventWorker"
worker_connections = edge.worker_connections
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = settings.graceful_timeout
keepalive = 5  # an idle kept-alive connection is closed after this, silently
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "0"))
max_requests_jitter = max_requests // 10
accesslog = None  # the app writes one JSON access line per request
logger_class = "veloz.run.gunicorn_workers.AppWritesAccessLines"
preload_app = False
# `make restart` starts a new gateway on the same port before it stops the old one
# (veloz.dev.devstack.Platform.replace_service): both listen with SO_REUSEPORT.
reuse_port = True
# No gunicornc control socket: every service would claim the same ~/.gunicorn/gunicorn.ctl,
# and a read-only container has nowhere to put it.
control_socket_disable = True

# The master's own lines (start, signals, worker exits) as JSON too.
logconfig_dict = server_log_config(os.environ.get("SERVICE_NAME", "gunicorn"))

GC_THRESHOLDS = settings.gc_thresholds


def post_fork(server, worker):
    """Before the worker builds its app: the app reads METRICS_BIND to know which listener
    is the metrics one, so the default is written into the worker's environment."""
    os.environ[METRICS_BIND] = metrics_bind


def post_worker_init(worker):
    """Once the worker has built its app: veloz.run.server_settings."""
    settle_collector(GC_THRESHOLDS)
    mark_ready()


def child_exit(server, worker):
    """Drop a dead worker's live gauges from the shared multiprocess metrics."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
