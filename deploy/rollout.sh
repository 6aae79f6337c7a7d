#!/usr/bin/env bash
# Deploy one commit to the cluster kubectl points at, and take it back by itself if it fails:
#   deploy/rollout.sh k8s/overlays/prod <image tag>
# 1. pin the four images to the tag (kustomize edit set image) and render the overlay;
# 2. run the release's migrations: everything but the application Deployments is applied, the
#    last migration Job deleted and the new one awaited (a failure here changed no pod);
# 3. apply everything, wait for every Deployment's rollout, smoke-test through the gateway
#    (health, then a real order paid with the approving test card, then cancelled);
# 4. if any step of 3 fails: `kubectl rollout undo` every Deployment to the revision it had
#    before step 3, wait for that, and exit 1.
# Environment: IMAGE_REPOSITORY (e.g. ghcr.io/owner/repo; images are $IMAGE_REPOSITORY/<service>),
# GATEWAY_URL (the gateway as clients reach it), NAMESPACE (pedidos-veloz), ROLLOUT_TIMEOUT
# (300s), MIGRATION_TIMEOUT (600s), SMOKE_TOKEN (an admin token for the smoke test; needed
# where the gateway trusts an identity provider (prod), which refuses the gateway-minted one),
# SMOKE_RETRIES (0: how many more times a smoke request that reached no gateway at all is sent,
# 2 s apart; for a GATEWAY_URL that can blink while pods are replaced, such as a `kubectl
# port-forward` in CI. Every POST carries an Idempotency-Key, so a repeat does the work once).
set -euo pipefail

overlay=${1:?usage: deploy/rollout.sh <overlay folder> <image tag>}
tag=${2:?usage: deploy/rollout.sh <overlay folder> <image tag>}
: "${IMAGE_REPOSITORY:?set IMAGE_REPOSITORY, e.g. ghcr.io/owner/repo}"
: "${GATEWAY_URL:?set GATEWAY_URL, e.g. https://api.example.com}"
namespace=${NAMESPACE:-pedidos-veloz}
rollout_timeout=${ROLLOUT_TIMEOUT:-300s}
migration_timeout=${MIGRATION_TIMEOUT:-600s}
smoke_retries=${SMOKE_RETRIES:-0}
images=(api-gateway pedidos-service pagamentos-service estoque-service)
deployments=(estoque-service pagamentos-service pedidos-service api-gateway estoque-sweeper
             pedidos-recovery)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

say() { echo "rollout: $*" >&2; }
k() { kubectl --namespace "$namespace" "$@"; }

render() {
    local pins=()
    for image in "${images[@]}"; do
        pins+=("pedidos-veloz/$image=$IMAGE_REPOSITORY/$image:$tag")
    done
    (cd "$overlay" && kustomize edit set image "${pins[@]}")
    kubectl kustomize --load-restrictor LoadRestrictionsNone "$overlay" > "$work/rendered.yaml"
}

# The revision each Deployment runs now ("" when it does not exist yet).
declare -A before
remember_revisions() {
    for deployment in "${deployments[@]}"; do
        before[$deployment]=$(k get deployment "$deployment" --ignore-not-found \
            -o 'jsonpath={.metadata.annotations.deployment\.kubernetes\.io/revision}')
    done
}

migrate() {
    say "migrations of $tag"
    k delete job migrate --ignore-not-found --wait=true
    kubectl apply --server-side --force-conflicts -f "$work/rendered.yaml" \
        --selector 'app.kubernetes.io/component notin (app,worker)'
    if ! k wait --for=condition=complete job/migrate --timeout="$migration_timeout"; then
        k logs job/migrate --all-containers --tail=100 || true
        say "migrations failed: no Deployment was changed"
        return 1
    fi
}

# Steps 3 and 4 run inside `if`, where `set -e` does not apply: each failure returns by hand.
roll_out() {
    say "applying $tag"
    kubectl apply --server-side --force-conflicts -f "$work/rendered.yaml" || return 1
    for deployment in "${deployments[@]}"; do
        k rollout status "deployment/$deployment" --timeout="$rollout_timeout" || return 1
    done
}

# request METHOD PATH [BODY]: the answer's body into $work/body, its status into $work/status
# (000: no answer at all, sent again up to SMOKE_RETRIES times).
request() {
    local arguments=(--silent --show-error --max-time 30 --output "$work/body"
                     --write-out '%{http_code}' --request "$1"
                     --header "Authorization: Bearer $token")
    if [ "$1" = POST ]; then
        arguments+=(--header "Idempotency-Key: smoke-$run-${2//\//-}")
    fi
    if [ $# -ge 3 ]; then
        arguments+=(--header "Content-Type: application/json" --data "$3")
    fi
    local attempt=0
    while :; do
        curl "${arguments[@]}" "$GATEWAY_URL$2" > "$work/status" || echo 000 > "$work/status"
        if [ "$(cat "$work/status")" != 000 ] || [ "$attempt" -ge "$smoke_retries" ]; then
            return 0
        fi
        attempt=$((attempt + 1))
        say "smoke test: $1 $2 reached no gateway; again in 2 s ($attempt of $smoke_retries)"
        sleep 2
    done
}

expect() {  # expect STATUS WHAT
    local status
    status=$(cat "$work/status")
    [ "$status" = "$1" ] && return 0
    say "smoke test: $2 answered $status, expected $1: $(head -c 500 "$work/body" 2>/dev/null)"
    return 1
}

field() {  # field PATH: a field of the JSON answer in $work/body, e.g. order.status
    python3 -c 'import functools, json, sys
print(functools.reduce(lambda value, key: value[key], sys.argv[2].split("."),
                       json.load(open(sys.argv[1]))))' "$work/body" "$1"
}

smoke_test() {
    say "smoke test through $GATEWAY_URL"
    local item order run
    run="$tag-$(date +%s)"
    token=${SMOKE_TOKEN:-}
    if [ -z "$token" ] && ! token=$(k exec deployment/api-gateway -- python -m gateway.token \
            --role admin --sub deploy-smoke --ttl 300); then
        # A gateway that trusts an identity provider mints nothing: without SMOKE_TOKEN only
        # what anyone may do is checked, rather than undoing a release for want of a token.
        say "smoke test: no admin token (set SMOKE_TOKEN); checking anonymous reads only"
        token=""
    fi
    request GET /health
    expect 200 "GET /health" || return 1
    if [ -z "$token" ]; then
        request GET /items
        expect 200 "GET /items"
        return
    fi
    request POST /items "{\"name\": \"deploy smoke $run\", \"quantity\": 1, \"price\": 1.00}"
    expect 201 "POST /items" || return 1
    item=$(field id) || return 1
    request POST /orders "{\"customer\": \"deploy smoke $run\",
        \"items\": [{\"item_id\": $item, \"quantity\": 1}],
        \"payment\": {\"method\": \"credit_card\", \"card_number\": \"4242424242424242\"}}"
    expect 201 "POST /orders (test card 4242...)" || return 1
    # A placed order answers {"order": {...}, "payment": {...}}.
    [ "$(field order.status)" = paid ] || { say "smoke test: the order is not paid"; return 1; }
    order=$(field order.id) || return 1
    request POST "/orders/$order/cancel"  # refund and restock: the smoke leaves no sale behind
    expect 200 "POST /orders/$order/cancel"
}

undo() {
    say "rolling back"
    for deployment in "${deployments[@]}"; do
        if [ -z "${before[$deployment]}" ]; then
            say "$deployment had no earlier revision: left as it is"
            continue
        fi
        k rollout undo "deployment/$deployment" --to-revision="${before[$deployment]}"
    done
    for deployment in "${deployments[@]}"; do
        [ -n "${before[$deployment]}" ] || continue
        k rollout status "deployment/$deployment" --timeout="$rollout_timeout" || true
    done
}

render
remember_revisions
migrate
if roll_out && smoke_test; then
    say "$tag is live"
else
    undo
    say "$tag was rolled back"
    exit 1
fi
