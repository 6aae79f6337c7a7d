#!/usr/bin/env bash
# The Compose stack's monitoring, checked from the machine running it (the CI's compose job,
# after deploy/smoke/walkthrough.sh):
#   - every Prometheus target is up (the four services, both workers, Prometheus itself and
#     Alertmanager), and Prometheus has found its Alertmanager;
#   - Grafana serves the four provisioned dashboards, and its Prometheus and Loki datasources
#     answer its health check;
#   - Loki holds the log lines of one request (REQUEST_ID) from each of the four services.
# Prometheus and Grafana are published (:9090, :3000); Loki is not, so it is asked from inside
# the compose network (`docker compose exec` into the gateway, which has Python).
# Each check is tried again for up to WAIT_SECONDS (180): targets wait for their first scrape,
# Loki for Alloy to ship the lines.
# Environment: REQUEST_ID (required), GRAFANA_ADMIN_USER and GRAFANA_ADMIN_PASSWORD (required,
# as in .env), PROMETHEUS_URL (http://localhost:9090), GRAFANA_URL (http://localhost:3000),
# WAIT_SECONDS (180). Run from the repository root (docker compose finds the project there).
set -euo pipefail

request_id=${REQUEST_ID:?set REQUEST_ID: the X-Request-ID of a request to follow in the logs}
grafana_login="${GRAFANA_ADMIN_USER:?set GRAFANA_ADMIN_USER}:${GRAFANA_ADMIN_PASSWORD:?set GRAFANA_ADMIN_PASSWORD}"
prometheus=${PROMETHEUS_URL:-http://localhost:9090}
grafana=${GRAFANA_URL:-http://localhost:3000}
wait_seconds=${WAIT_SECONDS:-180}
dashboards=(veloz-platform veloz-business veloz-slo veloz-logs)  # monitoring/grafana/dashboards
services=(api-gateway pedidos-service estoque-service pagamentos-service)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

say() { echo "monitoring: $*" >&2; }

eventually() {  # eventually WHAT COMMAND...: until COMMAND succeeds, or WAIT_SECONDS pass
    local what=$1 deadline=$((SECONDS + wait_seconds))
    shift
    until "$@"; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            say "FAILED: $what (within ${wait_seconds}s)"
            return 1
        fi
        sleep 5
    done
    say "ok  $what"
}

json() {  # json FILE PYTHON: run PYTHON with `answer` = the JSON in FILE; its exit status
    python3 -c "import json, sys
answer = json.load(open(sys.argv[1]))
$2" "$1"
}

targets_up() {
    curl -fsS "$prometheus/api/v1/targets?state=active" > "$work/targets" || return 1
    json "$work/targets" '
targets = answer["data"]["activeTargets"]
down = [t for t in targets if t["health"] != "up"]
for target in down:
    print("  down:", target["labels"]["job"], target["health"], target["lastError"])
sys.exit(1 if down or len(targets) < 8 else 0)'
}

alertmanager_found() {
    curl -fsS "$prometheus/api/v1/alertmanagers" > "$work/alertmanagers" || return 1
    json "$work/alertmanagers" 'sys.exit(0 if answer["data"]["activeAlertmanagers"] else 1)'
}

grafana_get() {  # grafana_get PATH: Grafana's answer into $work/grafana
    curl -fsS --user "$grafana_login" "$grafana$1" > "$work/grafana"
}

dashboard_served() {  # dashboard_served UID
    grafana_get "/api/dashboards/uid/$1" || return 1
    json "$work/grafana" "sys.exit(0 if answer['dashboard']['uid'] == '$1' else 1)"
}

datasource_healthy() {  # datasource_healthy UID
    grafana_get "/api/datasources/uid/$1/health" || return 1
    json "$work/grafana" 'print("  " + answer.get("message", "")); sys.exit(0 if answer["status"] == "OK" else 1)'
}

# Loki from inside the compose network: the services whose lines carry the request id.
request_logged() {
    docker compose exec -T api-gateway python - "$request_id" > "$work/logged" <<'PYTHON' || return 1
import json, sys, time, urllib.parse, urllib.request
query = '{service=~".+"} |= "%s"' % sys.argv[1]
now = time.time_ns()
url = "http://loki:3100/loki/api/v1/query_range?" + urllib.parse.urlencode(
    {"query": query, "start": now - 3600 * 10**9, "end": now, "limit": 1000})
with urllib.request.urlopen(url, timeout=10) as answer:
    streams = json.load(answer)["data"]["result"]
print("\n".join(sorted({stream["stream"].get("service", "?") for stream in streams})))
PYTHON
    local service
    for service in "${services[@]}"; do
        grep -qx "$service" "$work/logged" || return 1
    done
}

eventually "every Prometheus target up" targets_up
eventually "Prometheus found Alertmanager (unpublished: reached through Prometheus)" alertmanager_found
for uid in "${dashboards[@]}"; do
    eventually "Grafana dashboard $uid" dashboard_served "$uid"
done
for uid in prometheus loki; do
    eventually "Grafana datasource $uid healthy" datasource_healthy "$uid"
done
eventually "Loki holds request $request_id from ${services[*]}" request_logged
say "all checks passed"
