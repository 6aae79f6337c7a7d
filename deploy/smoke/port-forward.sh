#!/usr/bin/env bash
# Keep a local port forwarded to a Service for as long as this runs, across rollouts:
#   NAMESPACE=pedidos-veloz deploy/smoke/port-forward.sh service/api-gateway 18080:5000 [/livez]
# `kubectl port-forward service/...` forwards to one pod, chosen when it starts, and may keep
# running after that pod is gone, refusing every connection. So the forward is asked for the
# probe path every 2 s, and started again (on a pod that is ready then) after two misses in a
# row or when kubectl exits. The CI's kind job runs it in the background while rollout.sh
# replaces the gateway's pods.
set -uo pipefail

target=${1:?usage: deploy/smoke/port-forward.sh <service/name> <local port>:<port> [probe path]}
ports=${2:?usage: deploy/smoke/port-forward.sh <service/name> <local port>:<port> [probe path]}
probe="http://127.0.0.1:${ports%%:*}${3:-/livez}"
namespace=${NAMESPACE:-pedidos-veloz}

say() { echo "port-forward: $(date +%T) $*" >&2; }

answers() { curl --silent --fail --output /dev/null --max-time 2 "$probe"; }

while :; do
    kubectl --namespace "$namespace" port-forward "$target" "$ports" &
    forward=$!
    sleep 3  # kubectl's own start
    misses=0
    while kill -0 "$forward" 2> /dev/null && [ "$misses" -lt 2 ]; do
        if answers; then
            misses=0
        else
            misses=$((misses + 1))
        fi
        sleep 2
    done
    kill "$forward" 2> /dev/null
    wait "$forward" 2> /dev/null
    say "$target stopped answering $probe: forwarding again"
done
