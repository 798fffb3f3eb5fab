#!/usr/bin/env bash
# test_idempotency.sh - the Idempotency-Key of the HTTP write routes (http.md), end to end.
#
# Starts `accrue serve` on a free port over a ledger holding the sample data and drives it
# with curl: a retried deal registration (the server fills the deal id, so without a key a
# retry registers a second deal) answers the first result once and registers one deal; the
# same key with another body is 409 id_conflict (naming the Idempotency-Key); keys are per token; a malformed
# key is 400; a retried close answers the close, not period_closed; a decided rejection
# (422) is replayed too; concurrent retries of one key make one deal; the keys survive a
# restart, `verify` passes with keys stored and `rebuild` keeps them.
. "$(dirname "$0")/lib.sh"

SAMPLE=$ROOT/tools/sample
SRV_PID=
BASE=



# post TOKEN KEY PATH BODY [EXTRA CURL ARGS...]: ST = status, BODY = body, HDR = headers.
# KEY "" sends no Idempotency-Key.
post() {
    local tok=$1 key=$2 path=$3 body=$4
    shift 4
    local kh=()
    [ -n "$key" ] && kh=(-H "Idempotency-Key: $key")
    ST=$(curl -s -o "$TMP/.b" -D "$TMP/.h" -w '%{http_code}' -X POST \
        -H "Authorization: Bearer $tok" -H 'Content-Type: application/json' "${kh[@]}" "$@" \
        --data-binary "$body" "$BASE$path")
    BODY=$(cat "$TMP/.b")
    HDR=$(tr -d '\r' <"$TMP/.h")
}

replayed() { case $HDR in *"Idempotent-Replayed: true"*) return 0 ;; esac; return 1; }

# count LEDGER TEXT: events of the log mentioning TEXT.
count() { "$ACCRUE" --ledger "$1" log --format jsonl | grep -c -- "$2"; }

LEDGER=$(new_ledger --period month --utc-offset +09:00)
"$ACCRUE" --ledger "$LEDGER" plan publish "$SAMPLE/plan.json" >/dev/null
"$ACCRUE" --ledger "$LEDGER" append "$SAMPLE/events.jsonl" >/dev/null
FIN_A=$("$ACCRUE" --ledger "$LEDGER" --quiet token create --role finance --name fin-a)
FIN_B=$("$ACCRUE" --ledger "$LEDGER" --quiet token create --role finance --name fin-b)
DEAL1='{"partner_id":"ACME","customer_id":"C-IDEM-1","currency":"JPY","amount_minor":500000}'
DEAL2='{"partner_id":"ACME","customer_id":"C-IDEM-2","currency":"JPY","amount_minor":500000}'
start_server "$LEDGER"

case_deal_retry_registers_one_deal() {
    post "$FIN_A" k-deal-1 /v1/deals "$DEAL1"
    assert_eq "$ST" 201 "first registration"
    local first=$BODY
    replayed && fail "a first answer is not a replay"
    post "$FIN_A" k-deal-1 /v1/deals "$DEAL1"
    assert_eq "$ST" 201 "retry status"
    assert_eq "$BODY" "$first" "retry body (byte for byte)"
    replayed || fail "the retry lacks Idempotent-Replayed: true; headers: $HDR"
    assert_eq "$(count "$LEDGER" C-IDEM-1)" 1 "deal.registered events for C-IDEM-1"
    # without a key a retry is a new request: the server fills a new deal id, a second deal
    post "$FIN_A" "" /v1/deals "$DEAL2"
    assert_eq "$ST" 201
    post "$FIN_A" "" /v1/deals "$DEAL2"
    assert_eq "$ST" 201 "a retry without a key"
    assert_eq "$(count "$LEDGER" C-IDEM-2)" 2 "deals for C-IDEM-2 (no key: two)"
}
run_case case_deal_retry_registers_one_deal

case_same_key_other_body_conflicts() {
    local before
    before=$(count "$LEDGER" deal.registered)
    post "$FIN_A" k-deal-1 /v1/deals '{"partner_id":"ACME","customer_id":"C-IDEM-3","currency":"JPY"}'
    assert_eq "$ST" 409 "another body under the key"
    case $BODY in *'"code":"id_conflict"'*'Idempotency-Key'*) ;; *) fail "409 body: $BODY" ;; esac
    # http.md: the same key with another request is 409, whatever that request holds: a
    # deal that does not exist, an empty batch, an unknown type
    post "$FIN_A" k-deal-1 /v1/deals/nothing/stage "$DEAL1"
    assert_eq "$ST" 409 "another path (to a deal that does not exist)"
    post "$FIN_A" k-deal-1 /v1/events '[]'
    assert_eq "$ST" 409 "an empty batch under the key"
    post "$FIN_A" k-deal-1 /v1/events '[{"id":"zz","type":"bogus","at":"2026-07-02T00:00:00Z","data":{}}]'
    assert_eq "$ST" 409 "an invalid event under the key"
    case $BODY in *'"code":"id_conflict"'*'Idempotency-Key'*) ;; *) fail "409 body: $BODY" ;; esac
    post "$FIN_A" k-deal-1 /v1/events \
        '[{"id":"idem-s1","type":"sale.recorded","at":"2026-07-02T00:00:00Z","data":{"sale_id":"IS1","partner_id":"ACME","customer_id":"C-IDEM-9","amount_minor":1000,"currency":"JPY","product":"widget"}}]'
    assert_eq "$ST" 409 "another route under the key"
    assert_eq "$(count "$LEDGER" deal.registered)" "$before" "deals after the conflicts"
    assert_eq "$(count "$LEDGER" idem-s1)" 0 "the conflicting append wrote nothing"
}
run_case case_same_key_other_body_conflicts

case_keys_are_per_token() {
    post "$FIN_B" k-deal-1 /v1/deals '{"partner_id":"BETA","customer_id":"C-IDEM-4","currency":"JPY"}'
    assert_eq "$ST" 201 "fin-b's own k-deal-1"
    replayed && fail "another token's key answered from fin-a's record"
    assert_eq "$(count "$LEDGER" C-IDEM-4)" 1
}
run_case case_keys_are_per_token

# A token revoked and its name given to another token (here another partner's): the new one
# does not inherit the old one's keys, so it is never answered the other partner's deal.
case_keys_are_per_token_not_name() {
    local p1 p2 first
    p1=$("$ACCRUE" --ledger "$LEDGER" --quiet token create --role partner --partner ACME --name reused)
    post "$p1" k-reused /v1/deals '{"customer_id":"C-IDEM-R1","currency":"JPY","name":"ACME secret"}'
    assert_eq "$ST" 201 "ACME's deal"
    first=$BODY
    "$ACCRUE" --ledger "$LEDGER" token revoke reused >/dev/null
    p2=$("$ACCRUE" --ledger "$LEDGER" --quiet token create --role partner --partner BETA --name reused)
    # the very same request: BETA's registration runs (and meets ACME's claim on the customer)
    post "$p2" k-reused /v1/deals '{"customer_id":"C-IDEM-R1","currency":"JPY","name":"ACME secret"}'
    replayed && fail "the new token was answered the revoked token's record: $BODY"
    [ "$BODY" != "$first" ] || fail "BETA was given ACME's deal: $BODY"
    assert_eq "$ST" 422 "BETA's own registration of ACME's customer: $BODY"
    case $BODY in *channel_conflict*) ;; *) fail "not BETA's own answer: $BODY" ;; esac
    post "$p2" k-reused-2 /v1/deals '{"customer_id":"C-IDEM-R2","currency":"JPY","name":"BETA deal"}'
    assert_eq "$ST" 201 "BETA's deal: $BODY"
}
run_case case_keys_are_per_token_not_name

case_bad_key_is_400() {
    local k
    for k in 'bad key' 'x/y' "$(printf 'k%.0s' $(seq 1 65))"; do
        post "$FIN_A" "$k" /v1/deals '{"partner_id":"ACME","customer_id":"C-IDEM-5","currency":"JPY"}'
        assert_eq "$ST" 400 "key [$k]"
        case $BODY in *'"code":"bad_request"'*) ;; *) fail "400 body: $BODY" ;; esac
    done
    post "$FIN_A" "$(printf 'k%.0s' $(seq 1 64))" /v1/events '[]'
    assert_eq "$ST" 422 "a 64-character key is fine (the empty batch is what is refused)"
    post "$FIN_A" two /v1/deals "$DEAL1" -H 'Idempotency-Key: two'
    assert_eq "$ST" 400 "two Idempotency-Key headers"
    post "$FIN_A" 'a b' /v1/events '[]'
    assert_eq "$ST" 400 "a bad key on a small append (parsed on the loop)"
    assert_eq "$(count "$LEDGER" C-IDEM-5)" 0
}
run_case case_bad_key_is_400

case_rejection_is_replayed() {
    local ev='[{"id":"idem-bad","type":"sale.recorded","at":"2026-07-02T00:00:00Z","data":{"sale_id":"IS2","partner_id":"NOPE","customer_id":"C-IDEM-6","amount_minor":1000,"currency":"JPY","product":"widget"}}]'
    post "$FIN_A" k-rej /v1/events "$ev"
    assert_eq "$ST" 422 "an unknown partner"
    local first=$BODY
    post "$FIN_A" k-rej /v1/events "$ev"
    assert_eq "$ST" 422 "the retry"
    assert_eq "$BODY" "$first"
    replayed || fail "a decided 422 is replayed"
}
run_case case_rejection_is_replayed

case_concurrent_retries_make_one_deal() {
    local body='{"partner_id":"GAMMA","customer_id":"C-IDEM-7","currency":"JPY"}' i
    for i in $(seq 1 8); do
        curl -s -o "$TMP/.c$i" -w '%{http_code}\n' -X POST -H "Authorization: Bearer $FIN_A" \
            -H 'Idempotency-Key: k-burst' --data-binary "$body" "$BASE/v1/deals" >"$TMP/.s$i" &
    done
    wait $(jobs -p | grep -v "^$SRV_PID\$")
    for i in $(seq 2 8); do
        assert_eq "$(cat "$TMP/.s$i")" "$(cat "$TMP/.s1")" "status of concurrent retry $i"
        cmp -s "$TMP/.c$i" "$TMP/.c1" || fail "concurrent retry $i: $(cat "$TMP/.c$i") vs $(cat "$TMP/.c1")"
    done
    assert_eq "$(cat "$TMP/.s1")" 201
    assert_eq "$(count "$LEDGER" C-IDEM-7)" 1 "deals for C-IDEM-7"
}
run_case case_concurrent_retries_make_one_deal

case_stage_retry() {
    post "$FIN_A" k-reg-s /v1/deals '{"partner_id":"ACME","customer_id":"C-IDEM-8","currency":"JPY","deal_id":"D-IDEM-8"}'
    assert_eq "$ST" 201
    post "$FIN_A" k-stage /v1/deals/D-IDEM-8/stage '{"outcome":"lost"}'
    assert_eq "$ST" 200 "closing the deal"
    local first=$BODY
    post "$FIN_A" k-stage /v1/deals/D-IDEM-8/stage '{"outcome":"lost"}'
    assert_eq "$ST" 200 "the retry answers the first move, not deal_closed"
    assert_eq "$BODY" "$first"
    post "$FIN_A" "" /v1/deals/D-IDEM-8/stage '{"outcome":"won"}'
    assert_eq "$ST" 422 "a new move of the closed deal"
}
run_case case_stage_retry

case_close_retry_answers_the_close() {
    post "$FIN_A" k-close /v1/payouts/2026-07/close ''
    assert_eq "$ST" 200 "closing 2026-07: $BODY"
    local first=$BODY
    post "$FIN_A" k-close /v1/payouts/2026-07/close ''
    assert_eq "$ST" 200 "the retried close: $BODY"
    assert_eq "$BODY" "$first"
    replayed || fail "the retried close is a replay"
    post "$FIN_A" "" /v1/payouts/2026-07/close ''
    assert_eq "$ST" 409 "a close without the key"
    case $BODY in *period_closed*) ;; *) fail "409 body: $BODY" ;; esac
    # a refusal decided by the period's state is kept as well
    post "$FIN_A" k-close-open /v1/payouts/2026-12/close ''
    assert_eq "$ST" 409 "closing the current period"
    post "$FIN_A" k-close-open /v1/payouts/2026-12/close ''
    assert_eq "$ST" 409
    replayed || fail "the refused close is a replay"
    assert_eq "$(count "$LEDGER" period.closed)" 1 "period.closed events"
}
run_case case_close_retry_answers_the_close

case_keys_survive_restart_verify_rebuild() {
    post "$FIN_A" k-deal-1 /v1/deals "$DEAL1"
    local first=$BODY
    stop_server
    acc "$LEDGER" verify
    assert_exit 0 "verify with keys stored"
    acc "$LEDGER" rebuild
    assert_exit 0 "rebuild"
    acc "$LEDGER" verify
    assert_exit 0 "verify after rebuild"
    start_server "$LEDGER"
    post "$FIN_A" k-deal-1 /v1/deals "$DEAL1"
    assert_eq "$ST" 201 "after restart and rebuild"
    assert_eq "$BODY" "$first"
    replayed || fail "the key was lost across restart and rebuild"
    assert_eq "$(count "$LEDGER" C-IDEM-1)" 1
    local b
    b=$("$ACCRUE" --ledger "$LEDGER" backup "$TMP/bk" 2>&1) || fail "backup: $b"
    stop_server
    start_server "$TMP/bk"
    post "$FIN_A" k-close /v1/payouts/2026-07/close ''
    assert_eq "$ST" 200 "the close's key in a backup"
    replayed || fail "the backup lost the keys"
    stop_server
    start_server "$LEDGER"
}
run_case case_keys_survive_restart_verify_rebuild

stop_server
finish
