#!/usr/bin/env bash
# docker-compose.yml on this machine, whatever it has:
#   bash deploy/compose.sh up              `make compose-up`: start detached, wait until every
#                                          service is healthy (every one-shot done)
#   bash deploy/compose.sh down [--volumes] `make compose-down [VOLUMES=1]`
#   bash deploy/compose.sh <compose args>  anything else (ps, logs, exec -T ...), the same way
# With a Docker engine (`docker info` answers) it is `docker compose` (v2), building the images.
# Without one, podman: Debian's docker-compose (1.29) talks to podman's Docker API
# (`podman system service` on .local/compose/podman.sock); the four images are the ones
# `make images` built (built here when missing); PostgreSQL, Prometheus, Alertmanager and Redis
# run from a stand-in built from Debian's packages (deploy/standins/) through their *_IMAGE
# variables and deploy/compose.podman.yml, which also leaves out what only a registry has
# (Grafana, Loki, Tempo, Alloy; tracing off). podman runs healthchecks from systemd timers,
# which these machines lack: a ticker (this script's `health-ticker`) runs them instead.
#   COMPOSE_ENGINE=docker|podman  force one   COMPOSE_PROJECT_NAME  another stack beside
#   COMPOSE_WAIT=300  seconds `up` waits      IMAGE_TAG=local  the podman images' tag
set -euo pipefail
cd "$(dirname "$0")/.."

PROJECT=${COMPOSE_PROJECT_NAME:-pedidos-veloz}
WAIT_SECONDS=${COMPOSE_WAIT:-300}
STATE=$PWD/.local/compose
SOCKET=$STATE/podman.sock
IMAGE_TAG=${IMAGE_TAG:-local}
LOCAL_PREFIX=localhost/pedidos-veloz
SERVICES=(api-gateway pedidos-service pagamentos-service estoque-service)
STANDIN_FOR=(POSTGRES PROMETHEUS ALERTMANAGER REDIS)
# What the podman path installs when missing (as root, from Debian): the CNI dnsname plugin
# lets the containers find each other by service name.
PODMAN_PACKAGES=(podman runc mmdebstrap docker-compose golang-github-containernetworking-plugin-dnsname)

say() { echo "compose: $*" >&2; }
source deploy/podman.sh  # podman's flags, as deploy/images.sh runs it

engine() {
    case "${COMPOSE_ENGINE:-}" in
        docker | podman) echo "$COMPOSE_ENGINE" ;;
        "") if command -v docker >/dev/null && docker info >/dev/null 2>&1; then echo docker
            else echo podman; fi ;;
        *) say "COMPOSE_ENGINE must be docker or podman"; exit 2 ;;
    esac
}
ENGINE=$(engine)

# --- the podman path's tools, API socket and healthcheck ticker -----------------------------

install_podman_tools() {
    local missing=() package
    for package in "${PODMAN_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "ok installed" \
            || missing+=("$package")
    done
    [ "${#missing[@]}" -eq 0 ] && return
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
        say "not installed: ${missing[*]} (apt-get install them, or run with a Docker engine)"
        exit 3
    fi
    say "installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" >/dev/null
}

service_running() { [ -S "$SOCKET" ] && python3 - "$SOCKET" <<'EOF'
import socket, sys
probe = socket.socket(socket.AF_UNIX)
probe.settimeout(2)
probe.connect(sys.argv[1])
probe.sendall(b"GET /_ping HTTP/1.0\r\n\r\n")
sys.exit(0 if b" 200 " in probe.recv(64) else 1)
EOF
}

# podman's Docker-compatible API for docker-compose; it exits by itself after 10 idle minutes
# and is started again by the next command that needs it. It runs with podman's flags (its
# store is the one the images and the ticker's checks are in): one that was started with
# others is replaced.
SERVICE_FLAGS=$STATE/podman-service.flags
start_service() {
    if service_running 2>/dev/null; then
        [ "$(cat "$SERVICE_FLAGS" 2>/dev/null)" = "${PODMAN_FLAGS[*]}" ] && return
        say "restarting podman system service with ${PODMAN_FLAGS[*]}"
        stop_pid_file "$STATE/podman-service.pid"
    fi
    mkdir -p "$STATE"
    rm -f "$SOCKET"
    setsid podman "${PODMAN_FLAGS[@]}" system service --time=600 "unix://$SOCKET" \
        >>"$STATE/podman-service.log" 2>&1 &
    echo $! >"$STATE/podman-service.pid"
    echo "${PODMAN_FLAGS[*]}" >"$SERVICE_FLAGS"
    for _ in $(seq 50); do
        service_running 2>/dev/null && return
        sleep 0.2
    done
    say "podman system service did not answer on $SOCKET (see $STATE/podman-service.log)"
    exit 1
}

stop_pid_file() {
    local file=$1 pid
    [ -s "$file" ] || return 0
    pid=$(cat "$file")
    kill "$pid" 2>/dev/null || true
    rm -f "$file"
}

# The project's running containers with a healthcheck, one "id health" line each.
checked_containers() {
    podman ps --filter "label=com.docker.compose.project=$PROJECT" --filter status=running \
        --format '{{.ID}} {{.Status}}' | sed -n 's/^\([0-9a-f]*\) .*(\([a-z]*\))$/\1 \2/p'
}

# Runs each container's healthcheck every 2 s until it is healthy, then every 10 s (the
# compose intervals are 5-15 s). Ends by itself once the project has had no container for 30 s.
health_ticker() {
    declare -A last_run=()
    local idle=0 id health now
    while [ "$idle" -lt 15 ]; do
        if [ -z "$(podman ps -aq --filter "label=com.docker.compose.project=$PROJECT")" ]; then
            idle=$((idle + 1))
        else
            idle=0
        fi
        now=$SECONDS
        while read -r id health; do
            [ -n "$id" ] || continue
            if [ "$health" != healthy ] || [ $((now - ${last_run[$id]:-0})) -ge 10 ]; then
                last_run[$id]=$now
                podman healthcheck run "$id" >/dev/null 2>&1 &
            fi
        done < <(checked_containers)
        wait
        sleep 2
    done
}

# One ticker per project (a test stack may run beside a developer's), one API for all.
TICKER_PID=$STATE/$PROJECT.health-ticker.pid

start_health_ticker() {
    local file=$TICKER_PID
    [ -s "$file" ] && kill -0 "$(cat "$file")" 2>/dev/null && return
    setsid bash "$0" health-ticker >>"$STATE/$PROJECT.health-ticker.log" 2>&1 &
    echo $! >"$file"
}

# --- the podman path's images ---------------------------------------------------------------

ensure_service_images() {
    local service
    for service in "${SERVICES[@]}"; do
        if ! podman image exists "$LOCAL_PREFIX/$service:$IMAGE_TAG"; then
            say "no $LOCAL_PREFIX/$service:$IMAGE_TAG: make images"
            IMAGE_TAG=$IMAGE_TAG bash deploy/images.sh
            return
        fi
    done
}

# The stand-in's tag is the hash of deploy/standins/: rebuilt only when that changes.
STANDIN_IMAGE=$LOCAL_PREFIX/compose-standins:$(cat deploy/standins/* | sha256sum | cut -c1-12)

ensure_standin_image() {
    podman image exists "$STANDIN_IMAGE" && return
    bash deploy/images.sh base >&2
    say "building $STANDIN_IMAGE (Debian's PostgreSQL, Prometheus, Alertmanager, Redis)"
    local started=$SECONDS old
    mapfile -t old < <(podman images --quiet "$LOCAL_PREFIX/compose-standins")
    [ "${#old[@]}" -eq 0 ] || podman rmi --force "${old[@]}" >/dev/null
    podman build --quiet --format docker --layers=false \
        --build-arg "BASE_IMAGE=$LOCAL_PREFIX/debian-python:bookworm" \
        --file deploy/standins/Containerfile --tag "$STANDIN_IMAGE" deploy/standins >/dev/null
    say "built $STANDIN_IMAGE in $((SECONDS - started)) s"
}

# The images docker-compose.yml names through variables: the local ones (a variable already
# set in the environment wins). Tempo is left out here, so tracing is off.
export_podman_images() {
    local variable
    export IMAGE_PREFIX=$LOCAL_PREFIX IMAGE_TAG OTEL_EXPORTER_OTLP_ENDPOINT=""
    for variable in "${STANDIN_FOR[@]/%/_IMAGE}"; do
        export "$variable=${!variable:-$STANDIN_IMAGE}"
    done
}

# --- compose itself --------------------------------------------------------------------------

# Debian's docker-compose 1.29 predates the top-level `name:` (the project is given by -p):
# it reads a copy without that line, with paths still relative to the repository root.
# BOUND: a `timeout` prefix for the podman path's `up`.
BOUND=()
compose() {
    if [ "$ENGINE" = docker ]; then
        docker compose --project-name "$PROJECT" "$@"
    else
        mkdir -p "$STATE"
        sed '/^name: /d' docker-compose.yml >"$STATE/docker-compose.yml.$$"
        mv "$STATE/docker-compose.yml.$$" "$STATE/docker-compose.yml"
        DOCKER_HOST=unix://$SOCKET "${BOUND[@]}" docker-compose --project-name "$PROJECT" \
            --project-directory . --file "$STATE/docker-compose.yml" \
            --file deploy/compose.podman.yml "$@"
    fi
}

engine_cli() { if [ "$ENGINE" = docker ]; then docker "$@"; else podman "$@"; fi; }

# "name status" of each of the project's containers, as `ps` prints them.
container_states() {
    engine_cli ps -a --filter "label=com.docker.compose.project=$PROJECT" \
        --format '{{.Names}}|{{.Status}}'
}

# Every container running (healthy where it has a healthcheck) or exited 0 (the one-shots).
wait_until_healthy() {
    local started=$1 name status pending failed
    while :; do
        pending=() failed=()
        while IFS='|' read -r name status; do
            case "$status" in
                *"(healthy)"* | "Exited (0)"*) ;;
                # podman says "(starting)", Docker "(health: starting)".
                *"starting)"* | *"(unhealthy)"* | Created* | Restarting*) pending+=("$name") ;;
                Up*) ;;
                *) failed+=("$name: $status") ;;
            esac
        done < <(container_states)
        if [ "${#failed[@]}" -gt 0 ]; then
            say "failed: ${failed[*]}"
            return 1
        fi
        if [ "${#pending[@]}" -eq 0 ]; then
            say "every service healthy $((SECONDS - started)) s after compose-up started"
            return 0
        fi
        if [ $((SECONDS - started)) -ge "$WAIT_SECONDS" ]; then
            say "not healthy after $WAIT_SECONDS s: ${pending[*]}"
            return 1
        fi
        sleep 2
    done
}

up() {
    local started=$SECONDS
    if [ "$ENGINE" = docker ]; then
        compose up --detach --build "$@"
    else
        install_podman_tools
        ensure_service_images
        ensure_standin_image
        export_podman_images
        start_service
        start_health_ticker
        # docker-compose waits for each dependency's health itself; bounded, as a healthcheck
        # nobody ran would keep it waiting for ever.
        BOUND=(timeout "$WAIT_SECONDS")
        compose up --detach --no-build --remove-orphans "$@"
        BOUND=()
    fi
    wait_until_healthy "$started"
    compose ps
}

down() {
    if [ "$ENGINE" = docker ]; then
        compose down --remove-orphans "$@"
        return
    fi
    install_podman_tools
    export_podman_images
    start_service
    compose down --remove-orphans "$@"
    stop_pid_file "$TICKER_PID"
    # The API goes too, unless another project's stack still has its ticker.
    local other
    for other in "$STATE"/*.health-ticker.pid; do
        [ -s "$other" ] && kill -0 "$(cat "$other")" 2>/dev/null && return
    done
    stop_pid_file "$STATE/podman-service.pid"
}

main() {
    local command=${1:-}
    [ -n "$command" ] || { sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
    shift
    case "$command" in
        up) up "$@" ;;
        down) down "$@" ;;
        health-ticker) health_ticker ;;
        *)
            if [ "$ENGINE" = podman ]; then
                install_podman_tools
                export_podman_images
                start_service
            fi
            compose "$command" "$@"
            ;;
    esac
}

main "$@"
