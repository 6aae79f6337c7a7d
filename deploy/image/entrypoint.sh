#!/bin/sh
# Every image starts through here: the defaults of this image's service (its line of
# /opt/veloz/services, keyed by VELOZ_SERVICE), a fresh folder for the multi-process metrics
# (a restarted container may find the old one on its emptyDir/tmpfs), then the command itself
# as PID 1. The command `serve` (the images' CMD) is the service's server, as the table says.
set -eu
TABLE=/opt/veloz/services

row=$(awk -v service="${VELOZ_SERVICE:-}" '$1 == service' "$TABLE")
if [ -z "$row" ]; then
    echo "entrypoint: VELOZ_SERVICE='${VELOZ_SERVICE:-}' is not a service of $TABLE" >&2
    exit 64
fi
read -r _ _ port metrics command <<EOF_ROW
$row
EOF_ROW

export BIND="${BIND:-0.0.0.0:$port}"
if [ "$metrics" != "-" ]; then
    export METRICS_BIND="${METRICS_BIND:-0.0.0.0:$metrics}"
fi
if [ -n "${PROMETHEUS_MULTIPROC_DIR:-}" ]; then
    rm -rf "${PROMETHEUS_MULTIPROC_DIR:?}"
    mkdir -p "$PROMETHEUS_MULTIPROC_DIR"
fi
if [ "$#" -eq 1 ] && [ "$1" = serve ]; then
    # The table's command is plain words: split on blanks, never globbed.
    set -f
    # shellcheck disable=SC2086
    set -- $command
fi
exec "$@"
