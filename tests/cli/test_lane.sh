#!/usr/bin/env bash
# test_lane.sh - the server's slow lane (tools/server/lane.c, issue 13).
#
# Reads that replay or scan the whole log (KPI, promotions, verify, payout run, audit, a staff
# statement) run on a few threads of their own, so the projection reads of the dashboard never
# queue behind them. The replays of the sample ledger take milliseconds, so the test makes them
# slow with the test-only hook ACCRUE_TEST_SLOW_MS (each slow request sleeps that long on its
# lane thread before it works), then checks: cheap reads answer at once while more KPI
# requests are pending than libuv's pool has threads (8); every KPI answers 200 with the body
# of a lone request; past --slow-queue-max the answer is 503 with Retry-After; SIGTERM with
# slow work pending answers it all and exits 0.
. "$(dirname "$0")/lib.sh"

SAMPLE=$ROOT/tools/sample
SRV_PID=
BASE=



LEDGER=$(new_ledger --period month --utc-offset +09:00)
"$ACCRUE" --ledger "$LEDGER" plan publish "$SAMPLE/plan.json" >/dev/null
"$ACCRUE" --ledger "$LEDGER" append "$SAMPLE/events.jsonl" >/dev/null
TOK=$("$ACCRUE" --ledger "$LEDGER" --quiet token create --role admin --name t-admin)
KPI=/v1/kpi?period=2026-07

# get PATH OUTFILE [CURL ARGS...]: the body into OUTFILE, headers into OUTFILE.h; prints
# "STATUS SECONDS".
get() {
    local path=$1 out=$2
    shift 2
    curl -s -o "$out" -D "$out.h" -w '%{http_code} %{time_total}\n' "$@" \
        -H "Authorization: Bearer $TOK" "$BASE$path"
}

# fire N PREFIX [CURL ARGS...]: N concurrent KPI requests in the background; each writes
# PREFIX.I (body), PREFIX.I.h (headers) and PREFIX.I.st ("STATUS SECONDS").
fire() {
    local n=$1 prefix=$2 i
    shift 2
    for i in $(seq 1 "$n"); do
        get "$KPI" "$prefix.$i" "$@" >"$prefix.$i.st" &
    done
}

# The body of a lone KPI request: what every request of a burst must answer.
start_server "$LEDGER"
get "$KPI" "$TMP/kpi.want" >"$TMP/kpi.want.st"
stop_server
case $(cat "$TMP/kpi.want") in *commission_minor*ACME* | *ACME*commission_minor*) ;;
*) fail "the KPI body lacks ACME's commission: $(head -c 300 "$TMP/kpi.want")" ;;
esac

# 12 KPI requests (more than the pool's 8 threads) held 2 s each on the lane's 2 threads
# (about 12 s in all): the projection reads answer meanwhile, each well within the 2 s one
# slow request takes (a read queued behind them would wait 2 s or more).
case_cheap_reads_pass_slow_ones() {
    ACCRUE_TEST_SLOW_MS=2000 start_server "$LEDGER"
    fire 12 "$TMP/b"
    sleep 0.3
    local done_early
    done_early=$(cat "$TMP"/b.*.st 2>/dev/null | wc -l)
    [ "$done_early" -eq 0 ] || fail "$done_early KPI requests done already: the hook did not hold them"
    local p st secs
    for p in /v1/partners /v1/pipeline /v1/partners/ACME /v1/deals /v1/status; do
        read -r st secs < <(get "$p" "$TMP/cheap")
        assert_eq "$st" 200 "GET $p during the burst"
        awk -v s="$secs" 'BEGIN { exit !(s < 1.5) }' ||
            fail "GET $p took ${secs}s behind the slow requests (want < 1.5 s, one slow one is 2 s)"
        echo "       $p: ${secs}s with 12 KPI requests pending"
    done
    wait_all
    local i
    for i in $(seq 1 12); do
        read -r st secs <"$TMP/b.$i.st"
        assert_eq "$st" 200 "KPI $i"
        cmp -s "$TMP/b.$i" "$TMP/kpi.want" || fail "KPI $i answered another body: $(head -c 200 "$TMP/b.$i")"
    done
    stop_server
}

# wait_all: every background curl of this shell (not the server).
wait_all() {
    local j
    for j in $(jobs -p); do
        [ "$j" = "$SRV_PID" ] || wait "$j"
    done
}

# One thread and two places to wait: of six requests at once three run or wait, three are
# refused 503 with Retry-After: 1 at once.
case_queue_bound() {
    ACCRUE_TEST_SLOW_MS=3000 start_server "$LEDGER" --expensive-max 1 --slow-queue-max 2
    fire 6 "$TMP/q"
    wait_all
    local i st secs ok=0 busy=0
    for i in $(seq 1 6); do
        read -r st secs <"$TMP/q.$i.st"
        case $st in
        200) ok=$((ok + 1)) ;;
        503)
            busy=$((busy + 1))
            grep -qi '^Retry-After: 1' "$TMP/q.$i.h" || fail "503 without Retry-After: $(cat "$TMP/q.$i.h")"
            grep -q '"too_large"' "$TMP/q.$i" || fail "503 body (the lane's limit: too_large): $(cat "$TMP/q.$i")"
            awk -v s="$secs" 'BEGIN { exit !(s < 2.0) }' || fail "the 503 took ${secs}s (a slow one is 3 s)"
            ;;
        *) fail "KPI $i: status $st" ;;
        esac
    done
    assert_eq "$ok/$busy" "3/3" "200/503 of six KPI requests past one thread + two waiting"
    stop_server
}

# SIGTERM while slow requests run and wait: each is answered 200, then the server exits 0.
case_sigterm_with_slow_work() {
    ACCRUE_TEST_SLOW_MS=700 start_server "$LEDGER"
    fire 5 "$TMP/t"
    # SIGTERM once the five are in (their connections open, beside the /metrics one)
    local n
    for _ in $(seq 1 200); do
        n=$(curl -s -H "Authorization: Bearer $TOK" "$BASE/metrics" |
            awk '$1 == "accrue_http_connections" { print $2 }')
        [ "${n:-0}" -ge 6 ] && break
        sleep 0.05
    done
    sleep 0.1
    stop_server
    wait_all
    local i st secs
    for i in $(seq 1 5); do
        read -r st secs <"$TMP/t.$i.st"
        assert_eq "$st" 200 "KPI $i across SIGTERM"
        cmp -s "$TMP/t.$i" "$TMP/kpi.want" || fail "KPI $i across SIGTERM: $(head -c 200 "$TMP/t.$i")"
    done
    grep -q '"event":"shutdown"' "$TMP/srv.err" || fail "no shutdown line"
}

run_case case_cheap_reads_pass_slow_ones
run_case case_queue_bound
run_case case_sigterm_with_slow_work
finish
