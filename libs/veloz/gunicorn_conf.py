"""Gunicorn settings shared by every service: `gunicorn -c python:veloz.gunicorn_conf APP`.

Workers and threads come from the environment. No `preload_app`: each worker builds its own
app, engine and pools after the fork, so no connection is ever shared between processes.
"""

import os

from veloz.logs import server_log_config
from veloz.serving import ServerSettings, settle_collector

settings = ServerSettings.from_environment()  # a bad GC_THRESHOLDS stops the master here
bind, workers, threads = settings.bind, settings.workers, settings.threads
# gunicorn's gthread/sync workers, answering their own errors (414, 431, 400) as problem+json.
worker_class = (f"veloz.gunicorn_workers.Problem{'Thread' if threads > 1 else 'Sync'}Worker")
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = settings.graceful_timeout
keepalive = 5
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "0"))
max_requests_jitter = max_requests // 10
accesslog = None  # the app writes one JSON access line per request
logger_class = "veloz.gunicorn_workers.AppWritesAccessLines"
preload_app = False
# No gunicornc control socket: every service would claim the same ~/.gunicorn/gunicorn.ctl,
# and a read-only container has nowhere to put it.
control_socket_disable = True

# The master's own lines (start, signals, worker exits) as JSON too.
logconfig_dict = server_log_config(os.environ.get("SERVICE_NAME", "gunicorn"))

GC_THRESHOLDS = settings.gc_thresholds


def post_worker_init(worker):
    """Once the worker has built its app: veloz.serving."""
    settle_collector(GC_THRESHOLDS)


def child_exit(server, worker):
    """Drop a dead worker's live gauges from the shared multiprocess metrics."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
