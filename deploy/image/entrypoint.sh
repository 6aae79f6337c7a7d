#!/bin/sh
# Every image starts through here: a fresh folder for the multi-process metrics (a restarted
# container may find the old one on its emptyDir/tmpfs), then the command itself as PID 1.
set -eu
if [ -n "${PROMETHEUS_MULTIPROC_DIR:-}" ]; then
    rm -rf "${PROMETHEUS_MULTIPROC_DIR:?}"
    mkdir -p "$PROMETHEUS_MULTIPROC_DIR"
fi
exec "$@"
