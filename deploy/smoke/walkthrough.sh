#!/usr/bin/env bash
# README's "Try it", walked through a running platform with every answer checked: the CI's
# compose and kind jobs run it against the gateway they started, and so can you:
#   GATEWAY_URL=http://localhost:5000 ADMIN_TOKEN=... CUSTOMER_TOKEN=... deploy/smoke/walkthrough.sh
# It creates an item (50 units), then: an order paid with the approving test card (201 paid),
# one declined with the declining card (402, the stock goes back), the same Idempotency-Key
# twice (one order, the answer replayed), a customer who may buy and list only its own orders
# but not manage the catalog (403), and the cancellation of the paid order (refund, stock
# back, the event recorded); the item's stock must add up at each step. Exits 1 at the first
# answer that differs, saying what came back.
# Environment: GATEWAY_URL (http://localhost:5000), ADMIN_TOKEN and CUSTOMER_TOKEN (an admin and
# a customer token the gateway accepts: `python -m gateway.token --role admin` and
# `--role customer --sub alice` where the gateway runs), WAIT_SECONDS (120: how long /health
# may take to answer 200 first), REQUEST_ID_FILE (optional: where to write the X-Request-ID of
# the paid order, to follow that request through the logs).
set -euo pipefail

base=${GATEWAY_URL:-http://localhost:5000}
admin=${ADMIN_TOKEN:?set ADMIN_TOKEN (python -m gateway.token --role admin)}
customer=${CUSTOMER_TOKEN:?set CUSTOMER_TOKEN (python -m gateway.token --role customer --sub alice)}
wait_seconds=${WAIT_SECONDS:-120}
run="walkthrough-$(date +%s)-$$"
approving='{"method": "credit_card", "card_number": "4242424242424242"}'
declining='{"method": "credit_card", "card_number": "4000000000000002"}'
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
checks=0

say() { echo "walkthrough: $*" >&2; }
fail() { say "FAILED: $*"; exit 1; }

# call METHOD PATH TOKEN [BODY [HEADER]]: the answer into $work/status, headers and body.
call() {
    local arguments=(--silent --show-error --max-time 30 --request "$1" --output "$work/body"
                     --dump-header "$work/headers" --write-out '%{http_code}')
    if [ -n "$3" ]; then
        arguments+=(--header "Authorization: Bearer $3")
    fi
    if [ $# -ge 4 ]; then
        arguments+=(--header "Content-Type: application/json" --data "$4")
    fi
    if [ $# -ge 5 ]; then
        arguments+=(--header "$5")
    fi
    : > "$work/body"
    curl "${arguments[@]}" "$base$2" > "$work/status" || echo 000 > "$work/status"
    last="$1 $2"
}

expect() {  # expect STATUS WHAT: the last answer had that status, else stop
    local status
    status=$(cat "$work/status")
    [ "$status" = "$1" ] || fail "$last answered $status, expected $1: $(head -c 500 "$work/body")"
    checks=$((checks + 1))
    say "ok  $last -> $1 $2"
}

field() {  # field PATH: a field of the last JSON answer, e.g. order.status or 0.id
    python3 -c 'import functools, json, sys
def step(value, key):
    return value[int(key)] if isinstance(value, list) else value[key]
print(functools.reduce(step, sys.argv[2].split("."), json.load(open(sys.argv[1]))))' \
        "$work/body" "$1"
}

column() {  # column KEY: that key of every object of the last JSON list, one per line
    python3 -c 'import json, sys
print("\n".join(str(row[sys.argv[2]]) for row in json.load(open(sys.argv[1]))))' \
        "$work/body" "$1"
}

header() {  # header NAME: that header of the last answer (case does not matter)
    tr -d '\r' < "$work/headers" | sed -n "s/^$1: *//Ip" | tail -n 1
}

same() {  # same ACTUAL EXPECTED WHAT
    [ "$1" = "$2" ] || fail "$3: got '$1', expected '$2'"
}

stock_is() {  # stock_is QUANTITY WHY: the walkthrough's item has that many units to sell
    call GET "/items/$item" ""
    expect 200 "(the item)"
    same "$(field quantity)" "$1" "stock after $2"
}

order_body() {  # order_body CUSTOMER QUANTITY PAYMENT
    printf '{"customer": "%s", "items": [{"item_id": %s, "quantity": %s}], "payment": %s}' \
        "$1" "$item" "$2" "$3"
}

wait_for_gateway() {
    local deadline=$((SECONDS + wait_seconds))
    until call GET /health "" && [ "$(cat "$work/status")" = 200 ]; do
        [ "$SECONDS" -lt "$deadline" ] || fail "GET /health: no 200 within ${wait_seconds}s"
        sleep 2
    done
    expect 200 "(every backend healthy)"
}

catalog() {
    call GET /items ""
    expect 200 "(anyone may read the catalog)"
    call POST /items "$admin" "{\"name\": \"Camiseta $run\", \"quantity\": 50, \"price\": 59.90}"
    expect 201 "(an admin adds an item)"
    item=$(field id)
}

paid_order() {
    call POST /orders "$admin" "$(order_body "João Silva" 2 "$approving")"
    expect 201 "(approving test card)"
    same "$(field order.status)" paid "the order's status"
    same "$(field order.total)" 119.8 "the order's total (2 x 59.90)"
    paid=$(field order.id)
    request_id=$(header X-Request-ID)
    [ -n "$request_id" ] || fail "the answer carries no X-Request-ID"
    if [ -n "${REQUEST_ID_FILE:-}" ]; then
        echo "$request_id" > "$REQUEST_ID_FILE"
    fi
    call GET "/orders?sort=-id&limit=20" "$admin"
    expect 200 "(an admin lists every order)"
    column id | grep -qx "$paid" || fail "order $paid is not in the admin's list"
    stock_is 48 "2 units sold"
}

declined_order() {
    call POST /orders "$admin" "$(order_body Ana 1 "$declining")"
    expect 402 "(declining test card)"
    same "$(field order.status)" payment_declined "the declined order's status"
    stock_is 48 "a declined payment (its unit goes back)"
}

idempotent_pair() {
    local body first
    body=$(order_body Bia 1 "$approving")
    call POST /orders "$admin" "$body" "Idempotency-Key: $run"
    expect 201 "(Idempotency-Key, first time)"
    first=$(field order.id)
    call POST /orders "$admin" "$body" "Idempotency-Key: $run"
    expect 201 "(the same key again: the first answer replayed)"
    same "$(field order.id)" "$first" "the replayed order's id"
    same "$(header Idempotent-Replayed)" true "the Idempotent-Replayed header"
    stock_is 47 "one order for two requests with one key"
}

customers_own_orders() {
    local own subject
    call POST /items "$customer" '{"name": "Boné"}'
    expect 403 "(a customer may not manage the catalog)"
    call POST /orders "$customer" "$(order_body Alice 1 "$approving")"
    expect 201 "(a customer buys)"
    own=$(field order.id)
    subject=$(field order.customer_id)
    if [ -z "$subject" ] || [ "$subject" = None ]; then
        fail "the customer's order has no customer_id"
    fi
    call GET "/orders?sort=-id&limit=100" "$customer"
    expect 200 "(a customer lists its orders)"
    column id | grep -qx "$own" || fail "the customer's order $own is not in its list"
    if column id | grep -qx "$paid"; then
        fail "the customer sees order $paid, which is not its own"
    fi
    same "$(column customer_id | sort -u)" "$subject" "the owners of the customer's list"
    call GET "/orders/$paid" "$customer"
    expect 404 "(another's order does not exist for a customer)"
    stock_is 46 "the customer's order"
}

cancellation() {
    call POST "/orders/$paid/cancel" "$admin"
    expect 200 "(cancel the paid order: refund, restock)"
    same "$(field status)" cancelled "the cancelled order's status"
    call GET "/orders/$paid/events" "$admin"
    expect 200 "(the order's history)"
    same "$(column status | tail -n 1)" cancelled "the last event"
    stock_is 48 "the cancellation (2 units back)"
}

say "against $base"
wait_for_gateway
catalog
paid_order
declined_order
idempotent_pair
customers_own_orders
cancellation
say "all $checks answers as README says; the paid order's X-Request-ID: $request_id"
