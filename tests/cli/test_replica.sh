#!/usr/bin/env bash
# test_replica.sh - `accrue replicate` / `accrue follow` over NATS JetStream
# (reporting.md), against a private three-node nats-server cluster with
# JetStream that the script starts on loopback (temporary folders, random
# ports, an R3 stream) and stops at the end.
#
# While the first four fifths of a generated history are appended to the
# primary in batches and `replicate` follows it, one NATS node is killed (-9)
# and restarted and `replicate` is killed (-9) and restarted. The last fifth is
# appended in FOLLOW_KILLS pieces; each piece starts while `follow` is down, so
# the restarted follower always has records to apply, and `follow` is killed
# (-9) at a random moment after it has applied some of them. Then the
# replica's head seq and hash equal the primary's, both verify, statements
# and KPIs are identical, a close on the primary reaches the replica with the
# same fingerprint and audits there, writes on the replica are refused (CLI
# exit 4, HTTP 403 read_only), a stream of another ledger is refused on
# both sides (chain_broken, exit 5), and a leader election of the stream is
# ridden out by `follow` (and waited for, bounded, by `follow --once`).
#
# Short by default (make test); REPLICA_LONG=1 (make test-long) appends 1 M
# events and kills `follow` 20 times. REPLICA_ONLY=case_name runs that case alone (after the
# setup).
. "$(dirname "$0")/lib.sh"
. "$ROOT/tests/replica/nats_cluster.sh"

if [ "${REPLICA_LONG:-0}" = 1 ]; then
    SALES=${REPLICA_SALES:-770000} FOLLOW_KILLS=20 BATCH=20000 WAIT_S=1800
else
    SALES=${REPLICA_SALES:-36000} FOLLOW_KILLS=5 BATCH=2000 WAIT_S=300
fi
GEN=${ACCRUE_GEN:-$(dirname "$ACCRUE")/accrue-gen}

BG_PIDS=()
cleanup() {
    local p
    for p in "${BG_PIDS[@]}"; do
        kill -9 "$p" 2>/dev/null
        wait "$p" 2>/dev/null
    done
    nats_stop
    rm -rf "$TMP"
}
trap cleanup EXIT

P=$TMP/primary
R=$TMP/replica
REP_PID=0
FOL_PID=0
APP_PID=0

head_of() { # LEDGER -> "seq hash"
    "$ACCRUE" --ledger "$1" stats 2>/dev/null | awk '/^head seq/{s=$3} /^head hash/{h=$3} END{print s, h}'
}

seq_of() {
    "$ACCRUE" --ledger "$1" stats 2>/dev/null | awk '/^head seq/{print $3}'
}

id_of() {
    "$ACCRUE" --ledger "$1" stats 2>/dev/null | awk '/^ledger id/{print $3}'
}

start_replicate() {
    "$ACCRUE" --ledger "$P" replicate --nats "$NATS_URL" >>"$TMP/replicate.log" 2>&1 &
    REP_PID=$!
    BG_PIDS+=("$REP_PID")
}

start_follow() {
    "$ACCRUE" --ledger "$R" follow --nats "$NATS_URL" --stream "$STREAM" >>"$TMP/follow.log" 2>&1 &
    FOL_PID=$!
    BG_PIDS+=("$FOL_PID")
}

kill9() { # PID
    kill -9 "$1" 2>/dev/null
    wait "$1" 2>/dev/null
}

# wait_seq LEDGER N SECONDS: until the ledger's head seq is >= N.
wait_seq() {
    local deadline=$((SECONDS + $3)) s
    while [ $SECONDS -lt $deadline ]; do
        s=$(seq_of "$1")
        [ -n "$s" ] && [ "$s" -ge "$2" ] && return 0
        sleep 0.2
    done
    return 1
}

# wait_progress H0 SECONDS: until the replica's head passes H0.
wait_progress() {
    local deadline=$((SECONDS + $2)) s
    while [ $SECONDS -lt $deadline ]; do
        s=$(seq_of "$R")
        [ -n "$s" ] && [ "$s" -gt "$1" ] && return 0
        sleep 0.1
    done
    return 1
}

# wait_caught_up_to REPLICA PRIMARY SECONDS: until their heads (seq hash) are equal.
wait_caught_up_to() {
    local deadline=$((SECONDS + $3)) hr
    while [ $SECONDS -lt $deadline ]; do
        hr=$(head_of "$1")
        [ -n "${hr% }" ] && [ "$hr" == "$(head_of "$2")" ] && return 0
        sleep 0.3
    done
    return 1
}

# wait_caught_up SECONDS: until the replica's head equals the primary's.
wait_caught_up() {
    wait_caught_up_to "$R" "$P" "$1"
}

# wait_stream_last STREAM N SECONDS: until the stream's last seq (a node's /jsz) is >= N.
wait_stream_last() {
    local deadline=$((SECONDS + $3)) i m last
    while [ $SECONDS -lt $deadline ]; do
        for i in 1 2 3; do
            m=${NATS_PORTS[$((3 * (i - 1) + 2))]}
            last=$(curl -fs "http://127.0.0.1:$m/jsz?streams=true" 2>/dev/null | python3 -c '
import json, sys
for a in json.load(sys.stdin).get("account_details") or []:
    for s in a.get("stream_detail") or []:
        if s["name"] == sys.argv[1]:
            print(s["state"]["last_seq"])' "$1" 2>/dev/null)
            [ -n "$last" ] && [ "$last" -ge "$2" ] && return 0
        done
        sleep 0.3
    done
    return 1
}

no_sanitizer_reports() { # LOG
    if grep -qE 'Sanitizer|runtime error:' "$1"; then
        fail "sanitizer report in $1: $(grep -A20 -E 'Sanitizer|runtime error:' "$1" | head -c 2000)"
    fi
}

# ---- setup ----------------------------------------------------------------------

if ! [ -x "$NATS_SERVER" ]; then
    echo "  FAIL nats-server is not installed (make installs it: APT_PKGS)"
    CASES_FAILED=1
    finish
    exit 1
fi
nats_start "$TMP/nats"
if ! nats_wait_ready 60; then
    echo "  FAIL the NATS cluster did not become ready"
    tail -20 "$TMP"/nats/n*.log
    CASES_FAILED=1
    finish
    exit 1
fi
"$ACCRUE" --ledger "$P" init >/dev/null
"$GEN" --partners 60 --sales "$SALES" --seed 15 --months 6 --format jsonl >"$TMP/events.jsonl"
TOTAL=$(wc -l <"$TMP/events.jsonl")
HEAD_N=$((TOTAL * 4 / 5))
head -n "$HEAD_N" "$TMP/events.jsonl" >"$TMP/head.jsonl"
tail -n +"$((HEAD_N + 1))" "$TMP/events.jsonl" >"$TMP/tail.jsonl"
split -d -n "l/$FOLLOW_KILLS" "$TMP/tail.jsonl" "$TMP/tail."
STREAM=ACCRUE_$(id_of "$P")

# ---- the fault run ----------------------------------------------------------------

case_faults_during_appends() {
    local t0=$SECONDS
    start_replicate
    "$ACCRUE" --ledger "$P" append --batch-size "$BATCH" "$TMP/head.jsonl" \
        >"$TMP/append.log" 2>&1 &
    APP_PID=$!
    BG_PIDS+=("$APP_PID")
    wait_seq "$P" 1 60 || fail "nothing appended"
    start_follow
    # a NATS node dies mid-stream and comes back
    wait_seq "$P" $((HEAD_N / 4)) "$WAIT_S" || fail "append stalled before the node kill"
    nats_kill 2
    sleep 2
    nats_restart 2
    # the publisher dies with -9 and is restarted
    wait_seq "$P" $((HEAD_N / 2)) "$WAIT_S" || fail "append stalled before the replicate kill"
    kill9 "$REP_PID"
    sleep 0.5
    start_replicate
    wait "$APP_PID"
    local rc=$?
    [ "$rc" -eq 0 ] || fail "append exit $rc: $(tail -c 600 "$TMP/append.log")"
    # the follower dies with -9, again and again: each piece of the tail starts while it is
    # down, so the restarted one has records to apply, and it dies once it applied some
    local i h0 piece progressed=0
    kill9 "$FOL_PID"
    for i in $(seq 1 "$FOLLOW_KILLS"); do
        h0=$(seq_of "$R")
        piece=$(printf '%s/tail.%02d' "$TMP" $((i - 1)))
        "$ACCRUE" --ledger "$P" append --batch-size "$((BATCH / 10))" "$piece" \
            >>"$TMP/append.log" 2>&1 &
        APP_PID=$!
        BG_PIDS+=("$APP_PID")
        start_follow
        if wait_progress "${h0:-0}" 120; then
            progressed=$((progressed + 1))
        fi
        sleep "0.$((RANDOM % 5))"
        kill9 "$FOL_PID"
        wait "$APP_PID"
        rc=$?
        [ "$rc" -eq 0 ] || fail "append of $piece exit $rc: $(tail -c 600 "$TMP/append.log")"
    done
    start_follow
    assert_eq "$progressed" "$FOLLOW_KILLS" "followers that applied records before their kill"
    assert_eq "$(seq_of "$P")" "$TOTAL" "primary head after the append"
    wait_caught_up "$WAIT_S" || fail "replica did not catch up: primary $(head_of "$P"), replica $(head_of "$R")"
    echo "       $TOTAL events; caught up $((SECONDS - t0)) s after the first append" \
         "(1 NATS node, replicate once, follow $FOLLOW_KILLS times killed, $progressed of" \
         "them after applying records)"
}

case_heads_equal_and_both_verify() {
    local hp hr
    hp=$(head_of "$P")
    hr=$(head_of "$R")
    assert_eq "$hr" "$hp" "replica head (seq hash)"
    run --ledger "$P" verify
    assert_exit 0 "primary verify"
    run --ledger "$R" verify
    assert_exit 0 "replica verify"
    expect_stdout_contains "head ${hp#* }"
    # the stored bytes themselves: the whole log, engine fields and hashes included
    assert_eq "$("$ACCRUE" --ledger "$R" log | md5sum)" "$("$ACCRUE" --ledger "$P" log | md5sum)" "log"
}

case_same_answers() {
    local period
    for period in 2026-02 2026-05; do
        rm -rf "$TMP/sp" "$TMP/sr"
        run --ledger "$P" payout run "$period" --out "$TMP/sp"
        assert_exit 0 "payout run $period on the primary"
        run --ledger "$R" payout run "$period" --out "$TMP/sr"
        assert_exit 0 "payout run $period on the replica"
        assert_file_eq "$TMP/sr/statement.csv" "$TMP/sp/statement.csv"
        assert_file_eq "$TMP/sr/summary.json" "$TMP/sp/summary.json"
    done
    run --ledger "$P" kpi --period 2026-Q1 --format json
    local kp=$OUT
    run --ledger "$R" kpi --period 2026-Q1 --format json
    assert_eq "$OUT" "$kp" "kpi 2026-Q1"
    run --ledger "$P" pipeline --today 2026-07-01 --format json
    local pp=$OUT
    run --ledger "$R" pipeline --today 2026-07-01 --format json
    assert_eq "$OUT" "$pp" "pipeline"
}

case_lag_in_stats() {
    run --ledger "$R" stats
    assert_exit 0
    expect_stdout_contains "replica     read-only, following stream $STREAM"
    expect_stdout_contains "lag events  0"
    # caught up, it lags by nothing, whatever the last record's own lag was
    expect_stdout_contains "lag ms      0 (caught up; the last record applied"
    run --ledger "$P" stats
    case $OUT in *replica*) fail "the primary's stats mention a replica" ;; esac
}

case_close_reaches_the_replica() {
    run --ledger "$P" payout close 2026-01 --out "$TMP/close"
    assert_exit 0 "payout close on the primary"
    wait_caught_up 60 || fail "the close did not reach the replica"
    run --ledger "$R" payout list
    local lr=$OUT
    run --ledger "$P" payout list
    assert_eq "$lr" "$OUT" "payout list"
    expect_stdout_contains "2026-01"
    run --ledger "$R" payout audit 2026-01 --out "$TMP/audit"
    assert_exit 0 "payout audit on the replica"
    assert_file_eq "$TMP/audit/statement.csv" "$TMP/close/statement.csv"
    assert_file_eq "$TMP/audit/summary.json" "$TMP/close/summary.json"
    run --ledger "$R" verify
    assert_exit 0 "replica verify after the close"
    # who closed it travels in the stored bytes: the replica shows the primary's closer
    run --ledger "$R" log --type period.closed
    expect_stdout_contains "\"actor\":\"cli:${USER:-${LOGNAME:-$(id -un)}}\""
    # a run of the next period on both now subtracts the closed one alike
    rm -rf "$TMP/sp" "$TMP/sr"
    "$ACCRUE" --ledger "$P" payout run 2026-02 --out "$TMP/sp" >/dev/null 2>&1
    "$ACCRUE" --ledger "$R" payout run 2026-02 --out "$TMP/sr" >/dev/null 2>&1
    assert_file_eq "$TMP/sr/statement.csv" "$TMP/sp/statement.csv"
}

case_writes_refused_on_the_replica() {
    local before
    before=$(head_of "$R")
    head -1 "$WORKED/events.jsonl" | sed 's/"id":"[^"]*"/"id":"replica-write-1"/' >"$TMP/one.jsonl"
    run --ledger "$R" append "$TMP/one.jsonl"
    assert_exit 4 "append on a replica"
    expect_stderr_contains "read_only"
    run --ledger "$R" payout close 2026-02
    assert_exit 4 "payout close on a replica"
    expect_stderr_contains "read_only"
    # refused before the input is read, as the server refuses (reporting.md: appends are
    # read_only, exit 4): a malformed or empty input, a bad plan, a close of any period
    echo '{bad' >"$TMP/bad.jsonl"
    : >"$TMP/empty.jsonl"
    echo '{"plan_id":' >"$TMP/bad-plan.json"
    local what
    for what in "append $TMP/bad.jsonl" "append $TMP/empty.jsonl" "plan publish $TMP/bad-plan.json" \
        "payout close 2031-05"; do
        # shellcheck disable=SC2086
        run --ledger "$R" $what
        assert_exit 4 "$what on a replica"
        expect_stderr_contains "accrue: read_only:"
    done
    run --ledger "$R" rebuild
    assert_exit 0 "rebuild (derived tables only) on a replica"
    assert_eq "$(head_of "$R")" "$before" "replica head after refused writes"
    run --ledger "$R" replicate --nats "$NATS_URL" --no-follow
    assert_exit 4 "replicate from a replica"
}

case_http_403_on_the_replica() {
    local tok base code
    tok=$("$ACCRUE" --ledger "$R" --quiet token create --role admin --name replica-admin)
    [ -n "$tok" ] || fail "token create on a replica"
    start_server "$R"
    BG_PIDS+=("$SRV_PID")
    base=$BASE
    code=$(curl -s -o "$TMP/post.out" -w '%{http_code}' -H "Authorization: Bearer $tok" \
        -H 'Content-Type: application/x-ndjson' --data-binary @"$TMP/one.jsonl" "$base/v1/events")
    assert_eq "$code" 403 "POST /v1/events on a replica"
    grep -q '"read_only"' "$TMP/post.out" || fail "403 body lacks read_only: $(head -c 300 "$TMP/post.out")"
    code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H "Authorization: Bearer $tok" \
        "$base/v1/payouts/2026-02/close")
    assert_eq "$code" 403 "POST close on a replica"
    # every write is read_only, before its body is looked at (http.md): a malformed one too,
    # and one of a media type the server does not take
    local body
    for body in "-H Content-Type:application/json --data-binary [{\"id\":" \
        "-H Content-Type:text/plain --data-binary x" \
        "-H Content-Type:application/json --data-binary {\"deal_id\":\"DX\"}"; do
        # shellcheck disable=SC2086
        code=$(curl -s -o "$TMP/post.out" -w '%{http_code}' -H "Authorization: Bearer $tok" \
            $body "$base/v1/events")
        assert_eq "$code" 403 "a bad write on a replica ($body)"
        grep -q '"read_only"' "$TMP/post.out" || fail "not read_only: $(head -c 300 "$TMP/post.out")"
    done
    code=$(curl -s -o "$TMP/post.out" -w '%{http_code}' -H "Authorization: Bearer $tok" \
        -H 'Content-Type: application/json' --data-binary '{"deal_id":' "$base/v1/deals")
    assert_eq "$code" 403 "a malformed deal on a replica"
    # decided on the head: a large body is not read (curl asks with Expect: 100-continue
    # past 1 MiB, and gets the 403 instead of the 100)
    head -c 2000000 /dev/zero | tr '\0' ' ' >"$TMP/big.body"
    curl -sv -o "$TMP/post.out" -H "Authorization: Bearer $tok" -H 'Content-Type: application/json' \
        --data-binary @"$TMP/big.body" "$base/v1/events" 2>"$TMP/post.trace"
    grep -q '^< HTTP/1.1 403' "$TMP/post.trace" || fail "a large write on a replica: $(grep '^< HTTP' "$TMP/post.trace")"
    if grep -q '^< HTTP/1.1 100' "$TMP/post.trace"; then fail "the replica asked for the body (100 Continue)"; fi
    code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $tok" "$base/v1/partners")
    assert_eq "$code" 200 "GET /v1/partners on a replica"
    curl -s -H "Authorization: Bearer $tok" "$base/metrics" >"$TMP/metrics.out"
    grep -q '^accrue_replica_lag_events [0-9]' "$TMP/metrics.out" ||
        fail "/metrics lacks accrue_replica_lag_events: $(grep replica "$TMP/metrics.out")"
    grep -q '^accrue_replica_lag_ms -\?[0-9]' "$TMP/metrics.out" || fail "/metrics lacks accrue_replica_lag_ms"
    if grep -q '^accrue_replica_lag_events 0$' "$TMP/metrics.out"; then
        grep -q '^accrue_replica_lag_ms 0$' "$TMP/metrics.out" ||
            fail "caught up, yet $(grep '^accrue_replica_lag_ms' "$TMP/metrics.out")"
    fi
    # a stopped follower shows in how long ago the primary's head was seen, not in the lag
    grep -q '^accrue_replica_primary_seen_age_ms [0-9]' "$TMP/metrics.out" ||
        fail "/metrics lacks accrue_replica_primary_seen_age_ms: $(grep replica "$TMP/metrics.out")"
    # the replica's live feed: a record `follow` applies (another process) reaches a subscriber
    # without a reconnect (the server watches LMDB's last txn id)
    local head pid ev t0
    head=$(head_of "$R" | cut -d' ' -f1)
    curl -s -N -H "Authorization: Bearer $tok" "$base/v1/feed?from=$((head + 1))" >"$TMP/feed.out" &
    local feed=$!
    BG_PIDS+=("$feed")
    pid=$("$ACCRUE" --ledger "$P" partner list --format json |
        python3 -c 'import json, sys; print(json.load(sys.stdin)[0]["partner_id"])')
    ev="replica-live-$$"
    printf '{"id":"%s","type":"training.completed","at":"2026-03-01T00:00:00Z","data":{"partner_id":"%s","module":"live"}}\n' \
        "$ev" "$pid" >"$TMP/live.jsonl"
    sleep 0.3
    "$ACCRUE" --ledger "$P" append "$TMP/live.jsonl" >/dev/null || fail "append on the primary"
    t0=$(date +%s%N)
    for _ in $(seq 1 600); do
        grep -q "\"$ev\"" "$TMP/feed.out" && break
        sleep 0.05
    done
    grep -q "\"$ev\"" "$TMP/feed.out" ||
        fail "the replica's live feed did not deliver $ev within 30 s: $(head -c 300 "$TMP/feed.out")"
    echo "    replica feed: a primary's append reached the replica's subscriber in $((($(date +%s%N) - t0) / 1000000)) ms"
    kill "$feed" 2>/dev/null
    wait "$feed" 2>/dev/null
    stop_server
}

case_follow_stops_cleanly() {
    kill -TERM "$FOL_PID" 2>/dev/null
    wait "$FOL_PID"
    local rc=$?
    assert_eq "$rc" 0 "follow exit status on SIGTERM"
    # stats on the replica no longer reads as a running, caught-up follower once it is stopped
    run --ledger "$R" stats
    case $OUT in *"not running"*) fail "stats says follow is not running right after it stopped" ;; esac
    sleep 5.5
    run --ledger "$R" stats
    assert_exit 0 "stats on a stopped replica"
    expect_stdout_contains "follow      not running (or stuck): nothing seen of the primary for"
    kill -TERM "$REP_PID" 2>/dev/null
    wait "$REP_PID"
    rc=$?
    assert_eq "$rc" 0 "replicate exit status on SIGTERM"
    no_sanitizer_reports "$TMP/follow.log"
    no_sanitizer_reports "$TMP/replicate.log"
}

case_other_ledger_refused() {
    local b=$TMP/other rb=$TMP/replica-b before
    "$ACCRUE" --ledger "$b" init >/dev/null
    "$ACCRUE" --ledger "$b" append "$WORKED/events.jsonl" >/dev/null
    run --ledger "$b" replicate --nats "$NATS_URL" --no-follow
    assert_exit 0 "replicate of a second ledger"
    local sb=ACCRUE_$(id_of "$b")
    before=$(head_of "$R")
    run --ledger "$R" follow --nats "$NATS_URL" --stream "$sb" --once
    assert_exit 5 "follow of another ledger's stream"
    expect_stderr_contains "chain_broken"
    assert_eq "$(head_of "$R")" "$before" "replica head after the refusal"
    # the publisher refuses to write into another ledger's stream
    run --ledger "$P" replicate --nats "$NATS_URL" --stream "$sb" --no-follow
    assert_exit 5 "replicate into another ledger's stream"
    expect_stderr_contains "chain_broken"
    # and a fresh replica of the second ledger is its exact copy
    run --ledger "$rb" follow --nats "$NATS_URL" --stream "$sb" --once
    assert_exit 0 "follow --once of the second ledger"
    assert_eq "$(head_of "$rb")" "$(head_of "$b")" "second replica head"
    # a normal ledger with events cannot become a replica
    run --ledger "$P" follow --nats "$NATS_URL" --stream "$STREAM" --once
    assert_exit 1 "follow into a primary"
    # a second stream of the same ledger cannot exist (its subject is the first one's): a
    # refusal of the server, not an outage, so no endless retry
    local rc
    timeout 20 "$ACCRUE" --ledger "$P" replicate --nats "$NATS_URL" --stream "SECOND_$(id_of "$P")" \
        --no-follow >"$TMP/second.out" 2>"$TMP/second.err"
    rc=$?
    assert_eq "$rc" 1 "replicate into a second stream of the same ledger (124: still retrying)"
    grep -q "another stream already carries this ledger's subject" "$TMP/second.err" ||
        fail "the refusal: $(head -c 300 "$TMP/second.err")"
}

# Two copies of one ledger (a backup restored, then appended to apart) publishing to one
# stream: the stream de-duplicates by Nats-Msg-Id (`<ledger id>:<seq>`), so the second copy's
# N+1 was answered as a duplicate of the first copy's and its N+2 stored after it, chaining
# to neither, while both publishers went on. A duplicate answer is checked now: the stored
# message must be this ledger's record, else the running publisher stops (chain_broken).
case_diverged_copy_stops_the_publisher() {
    local a=$TMP/copy-a b=$TMP/copy-b pid rc=
    "$ACCRUE" --ledger "$a" init >/dev/null
    "$ACCRUE" --ledger "$a" append "$WORKED/events.jsonl" >/dev/null
    "$ACCRUE" --ledger "$a" backup "$b" >/dev/null || fail "backup of the first copy"
    run --ledger "$a" replicate --nats "$NATS_URL" --no-follow
    assert_exit 0 "replicate of the first copy"
    "$ACCRUE" --ledger "$b" replicate --nats "$NATS_URL" >"$TMP/copy-b.out" 2>"$TMP/copy-b.err" &
    pid=$!
    BG_PIDS+=("$pid")
    sleep 1 # the second copy's publisher is caught up and polling
    printf '%s\n' '{"id":"copy-a1","type":"partner.registered","at":"2026-07-01T00:00:00Z","data":{"partner_id":"PA","name":"A","kind":"reseller","tier":"gold","plan_id":"standard","currency":"JPY"}}' \
        >"$TMP/copy-a.jsonl"
    "$ACCRUE" --ledger "$a" append "$TMP/copy-a.jsonl" >/dev/null || fail "append to the first copy"
    run --ledger "$a" replicate --nats "$NATS_URL" --no-follow
    assert_exit 0 "replicate of the first copy's new event"
    printf '%s\n' '{"id":"copy-b1","type":"partner.registered","at":"2026-07-01T00:00:00Z","data":{"partner_id":"PB","name":"B","kind":"reseller","tier":"gold","plan_id":"standard","currency":"JPY"}}' \
        '{"id":"copy-b2","type":"partner.registered","at":"2026-07-02T00:00:00Z","data":{"partner_id":"PC","name":"C","kind":"reseller","tier":"gold","plan_id":"standard","currency":"JPY"}}' \
        >"$TMP/copy-b.jsonl"
    "$ACCRUE" --ledger "$b" append "$TMP/copy-b.jsonl" >/dev/null || fail "append to the second copy"
    for _ in $(seq 200); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        kill -9 "$pid" 2>/dev/null
        fail "the second copy's publisher still runs 20 s after meeting the first copy's event"
    fi
    wait "$pid"
    rc=$?
    assert_eq "$rc" 5 "exit of the second copy's publisher"
    grep -q "chain_broken" "$TMP/copy-b.err" || fail "no chain_broken: $(tail -3 "$TMP/copy-b.err")"
}

# nats_raw LINES...: sends NATS protocol lines (CRLF added) to the first node, with a
# subscription to _INBOX.t first, and prints what came back within 2 s.
nats_raw() {
    local line
    exec 7<>"/dev/tcp/127.0.0.1/${NATS_PORTS[0]}" || return 1
    {
        printf 'CONNECT {"verbose":false,"pedantic":false,"headers":true}\r\nSUB _INBOX.t 1\r\n'
        for line in "$@"; do printf '%s\r\n' "$line"; done
        printf 'PING\r\n'
    } >&7
    timeout 2 cat <&7
    exec 7<&- 7>&-
}

# A stream that carries a message on another subject after the ledger's records: the
# consumer (filtered on the ledger's subject) never delivers it, so `follow --once` used to
# poll forever for the stream's last seq. It stops now with chain_broken, having applied
# every record before it.
case_foreign_subject_stops_follow() {
    local m=$TMP/mixed rm=$TMP/replica-mixed id cfg rc
    "$ACCRUE" --ledger "$m" init >/dev/null
    "$ACCRUE" --ledger "$m" append "$WORKED/events.jsonl" >/dev/null
    id=$(id_of "$m")
    cfg="{\"name\":\"MIXED\",\"subjects\":[\"accrue.$id.log\"],\"storage\":\"file\",\"num_replicas\":1}"
    nats_raw "PUB \$JS.API.STREAM.CREATE.MIXED _INBOX.t ${#cfg}" "$cfg" >"$TMP/mixed-create.out"
    grep -q '"config"' "$TMP/mixed-create.out" ||
        fail "stream MIXED not created: $(head -c 300 "$TMP/mixed-create.out")"
    run --ledger "$m" replicate --nats "$NATS_URL" --stream MIXED --no-follow
    assert_exit 0 "replicate into MIXED"
    # then someone adds a subject to the stream (replicate refuses a stream made that way)
    cfg="{\"name\":\"MIXED\",\"subjects\":[\"accrue.$id.log\",\"elsewhere.x\"],\"storage\":\"file\",\"num_replicas\":1}"
    nats_raw "PUB \$JS.API.STREAM.UPDATE.MIXED _INBOX.t ${#cfg}" "$cfg" >"$TMP/mixed-update.out"
    grep -q 'elsewhere.x' "$TMP/mixed-update.out" ||
        fail "stream MIXED not updated: $(head -c 300 "$TMP/mixed-update.out")"
    nats_raw "PUB elsewhere.x 5" "hello" >/dev/null
    timeout 30 "$ACCRUE" --ledger "$rm" follow --nats "$NATS_URL" --stream MIXED --once \
        >"$TMP/mixed.out" 2>"$TMP/mixed.err"
    rc=$?
    assert_eq "$rc" 5 "follow --once of a stream with a foreign subject (124: still polling)"
    grep -q "chain_broken.*is on subject elsewhere.x" "$TMP/mixed.err" ||
        fail "the refusal: $(head -c 300 "$TMP/mixed.err")"
    assert_eq "$(head_of "$rm")" "$(head_of "$m")" "the replica holds every record before it"
}

# reporting.md: follow turns an *empty* directory into a replica. A folder holding other files
# is refused (exists, exit 1) and left as it was.
case_non_empty_folder_refused() {
    local d=$TMP/notes
    mkdir -p "$d"
    echo "q3 notes" >"$d/readme.txt"
    acc "$d" follow --nats "$NATS_URL" --stream "$STREAM" --once
    assert_exit 1 "follow into a folder holding a file"
    expect_stderr_contains "accrue: exists: $d is not empty (it holds readme.txt)"
    assert_eq "$(ls "$d")" "readme.txt" "the folder after the refusal"
}

case_restart_resumes_without_duplicates() {
    # nothing new: a restarted publisher publishes nothing and the stream still ends at the head
    run --ledger "$P" replicate --nats "$NATS_URL" --no-follow
    assert_exit 0 "replicate --no-follow at the head"
    run --ledger "$R" follow --nats "$NATS_URL" --once
    assert_exit 0 "follow --once at the head"
    assert_eq "$(head_of "$R")" "$(head_of "$P")" "heads after idle restarts"
}

# A NATS without JetStream: `replicate --no-follow` says so and gives up (exit 1) instead of
# retrying forever; an empty --nats is a usage error (exit 2) on both sides.
case_no_jetstream() {
    local port pid
    port=$(_nats_free_ports 1)
    "$NATS_SERVER" -a 127.0.0.1 -p "$port" >"$TMP/plain-nats.log" 2>&1 &
    pid=$!
    BG_PIDS+=("$pid")
    for _ in $(seq 50); do
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
        sleep 0.1
    done
    ACR_RPL_GIVE_UP_MS=1500 acc "$P" replicate --nats "nats://127.0.0.1:$port" --no-follow
    assert_exit 1 "replicate to a NATS without JetStream"
    expect_stderr_contains "no JetStream answers on this NATS"
    expect_stderr_contains "giving up (--no-follow)"
    kill "$pid" 2>/dev/null
    acc "$P" replicate --nats "" --no-follow
    assert_exit 2 "replicate --nats ''"
    acc "$TMP/never" follow --nats "" --once
    assert_exit 2 "follow --nats ''"
    # a ledger made by `init` (no events) is not this stream's replica: exists, exit 1, as for
    # a folder holding events, not chain_broken
    "$ACCRUE" --ledger "$TMP/inited" init >/dev/null
    acc "$TMP/inited" follow --nats "$NATS_URL" --stream "ACCRUE_$(id_of "$P")" --once
    assert_exit 1 "follow into an init-ed ledger"
    expect_stderr_contains "accrue: exists: $TMP/inited holds a ledger made by \`accrue init\`"
}

# A malformed --nats is a usage error (exit 2, naming --nats) on both sides, not a NATS outage
# (it used to be exit 1, as if NATS were down); the forms NATS takes are not refused.
case_malformed_nats_url_is_usage() {
    local u
    for u in "not a url" "nats://127.0.0.1:notaport" "http://x" "nats://" "127.0.0.1:99999" \
        "nats://127.0.0.1:4222/path"; do
        acc "$P" replicate --nats "$u" --no-follow
        assert_exit 2 "replicate --nats '$u'"
        expect_stderr_contains "accrue: usage: --nats"
        acc "$TMP/never" follow --nats "$u" --once
        assert_exit 2 "follow --nats '$u'"
        expect_stderr_contains "accrue: usage: --nats"
    done
    # a stream name JetStream would refuse is a usage error on both sides alike
    local st
    for st in "" "a.b" "a b" "ACCRUE_*" "x>" "$(printf 'S%.0s' {1..64})"; do
        acc "$P" replicate --nats "nats://127.0.0.1:1" --stream "$st" --no-follow
        assert_exit 2 "replicate --stream '$st'"
        expect_stderr_contains "accrue: usage: bad stream name"
        acc "$TMP/never" follow --nats "nats://127.0.0.1:1" --stream "$st" --once
        assert_exit 2 "follow --stream '$st'"
        expect_stderr_contains "accrue: usage: bad stream name"
    done
    [ -e "$TMP/never" ] && fail "follow with a malformed --nats or --stream made $TMP/never"
    # well-formed but unreachable: a runtime failure (exit 1), not a usage error
    for u in "nats://127.0.0.1:1" "127.0.0.1:1" "tls://127.0.0.1:1" "nats://u:p@127.0.0.1:1" \
        "nats://127.0.0.1:1, 127.0.0.1:1,,[::1]:1"; do
        acc "$P" replicate --nats "$u" --no-follow
        assert_exit 1 "replicate --nats '$u' (nothing listens)"
        case $ERR in *u:p@*) fail "the diagnostic shows the user part of '$u': $ERR" ;; esac
    done
    # and every form reaches the cluster: host:port, user:pass@, a list with spaces
    local p1=${NATS_PORTS[0]} p2=${NATS_PORTS[3]} up=$TMP/url-primary
    "$ACCRUE" --ledger "$up" init >/dev/null
    "$ACCRUE" --ledger "$up" append "$WORKED/events.jsonl" >/dev/null
    acc "$up" replicate --nats "127.0.0.1:$p1, nats://u:p@127.0.0.1:$p2" --no-follow
    assert_exit 0 "replicate --nats 'HOST:PORT, nats://USER:PASS@HOST:PORT'"
    acc "$TMP/url-replica" follow --nats "127.0.0.1:$p2" --stream "ACCRUE_$(id_of "$up")" --once
    assert_exit 0 "follow --nats HOST:PORT"
    assert_eq "$(head_of "$TMP/url-replica")" "$(head_of "$up")" "replica head"
}

# leaders_of STREAM: "S M", the NATS nodes (1..3) that lead the stream and the cluster's
# JetStream meta group, from the first node whose /jsz knows both.
leaders_of() {
    local i m
    for i in 1 2 3; do
        m=${NATS_PORTS[$((3 * (i - 1) + 2))]}
        curl -fs "http://127.0.0.1:$m/jsz?streams=true" 2>/dev/null | python3 -c '
import json, sys
d = json.load(sys.stdin)
meta = (d.get("meta_cluster") or {}).get("leader") or ""
for a in d.get("account_details") or []:
    for s in a.get("stream_detail") or []:
        lead = (s.get("cluster") or {}).get("leader") or ""
        if s["name"] == sys.argv[1] and lead and meta:
            print(lead.lstrip("n"), meta.lstrip("n")); sys.exit(0)
sys.exit(1)' "$1" && return 0
    done
    return 1
}

# A leader election of the stream (its leader killed with -9 while the primary appends, then
# restarted) is ridden out by a running `follow`, which goes on applying; `follow --once` while
# the stream has no leader waits (bounded: exit 1, never 0 with the replica behind), and run
# just after the nodes restart, waits for the election and catches up. Before, an answer
# missing during an election was taken for "no stream" (--once: exit 2 at once; a follow
# without --stream: exit 1, "listing streams"), and --once on a leaderless stream never ended.
case_follow_rides_out_an_election() {
    local e=$TMP/elect re=$TMP/elect-replica s leader meta rep fol app nf rc i t1 t0=$SECONDS
    "$ACCRUE" --ledger "$e" init >/dev/null
    "$GEN" --partners 20 --sales 5000 --seed 3 --months 3 --format jsonl >"$TMP/elect.jsonl"
    split -d -n l/5 "$TMP/elect.jsonl" "$TMP/elect."
    "$ACCRUE" --ledger "$e" append "$TMP/elect.00" >/dev/null || fail "append to $e"
    s=ACCRUE_$(id_of "$e")
    "$ACCRUE" --ledger "$e" replicate --nats "$NATS_URL" >"$TMP/elect-rep.log" 2>&1 &
    rep=$!
    "$ACCRUE" --ledger "$re" follow --nats "$NATS_URL" --stream "$s" >"$TMP/elect-fol.log" 2>&1 &
    fol=$!
    BG_PIDS+=("$rep" "$fol")
    wait_seq "$re" "$(seq_of "$e")" 30 || fail "no replica: $(tail -3 "$TMP/elect-fol.log")"
    read -r leader meta <<<"$(leaders_of "$s")"
    [ -n "$leader" ] || fail "no leader for $s"
    # the stream's leader dies while the primary appends, and comes back
    (for i in 01 02 03; do
        "$ACCRUE" --ledger "$e" append "$TMP/elect.$i" >/dev/null
        sleep 1
    done) &
    app=$!
    nats_kill "${leader:-1}"
    sleep 4
    kill -0 "$fol" 2>/dev/null || fail "follow ended: $(tail -3 "$TMP/elect-fol.log")"
    nats_restart "${leader:-1}"
    wait "$app"
    wait_caught_up_to "$re" "$e" 40 ||
        fail "no catch-up after the election: replica $(head_of "$re"), primary $(head_of "$e")"
    if kill -0 "$fol" 2>/dev/null; then
        kill -TERM "$fol"
        wait "$fol"
        assert_eq "$?" 0 "follow exit on SIGTERM after the election"
    else
        wait "$fol"
        fail "follow exited ($?) after the election: $(tail -5 "$TMP/elect-fol.log")"
    fi
    # no leader at all: the stream's and the meta group's leaders down (the third node cannot
    # be elected alone), the replica behind the stream
    nats_wait_ready 60 || fail "the cluster did not come back"
    "$ACCRUE" --ledger "$e" append "$TMP/elect.04" >/dev/null
    wait_stream_last "$s" "$(seq_of "$e")" 30 || fail "the last piece did not reach the stream"
    local first=$leader down
    read -r leader meta <<<"$(leaders_of "$s")"
    down=("${leader:-1}" "${meta:-2}")
    [ "${down[0]}" = "${down[1]}" ] && down[1]=$((down[0] % 3 + 1))
    nats_kill "${down[0]}"
    nats_kill "${down[1]}"
    # a follow without --stream started now waits for an answer (it used to exit 1)
    "$ACCRUE" --ledger "$TMP/elect-new" follow --nats "$NATS_URL" >"$TMP/elect-new.out" \
        2>"$TMP/elect-new.err" &
    nf=$!
    BG_PIDS+=("$nf")
    t1=$SECONDS
    ACR_RPL_GIVE_UP_MS=3000 timeout 40 "$ACCRUE" --ledger "$re" follow --nats "$NATS_URL" --once \
        >"$TMP/elect-once.out" 2>"$TMP/elect-once.err"
    rc=$?
    assert_eq "$rc" 1 "follow --once without a leader (124: still waiting; 0: stopped behind)"
    grep -q "giving up (--once)" "$TMP/elect-once.err" ||
        fail "the give-up: $(tail -3 "$TMP/elect-once.err")"
    while [ $((SECONDS - t1)) -lt 12 ]; do sleep 0.5; done
    if kill -0 "$nf" 2>/dev/null; then
        kill -TERM "$nf"
        wait "$nf"
    else
        wait "$nf"
        fail "follow (no --stream) exited ($?) without a leader: $(tail -2 "$TMP/elect-new.err")"
    fi
    # run as the nodes restart, --once waits for the election, then catches up
    nats_restart "${down[0]}"
    nats_restart "${down[1]}"
    timeout 45 "$ACCRUE" --ledger "$re" follow --nats "$NATS_URL" --once \
        >"$TMP/elect-once.out" 2>"$TMP/elect-once.err"
    assert_eq "$?" 0 "follow --once as the nodes restart: $(tail -3 "$TMP/elect-once.err")"
    assert_eq "$(head_of "$re")" "$(head_of "$e")" "replica head after --once"
    kill -TERM "$rep" 2>/dev/null
    wait "$rep"
    nats_wait_ready 60 || fail "the cluster did not come back"
    no_sanitizer_reports "$TMP/elect-fol.log"
    no_sanitizer_reports "$TMP/elect-once.err"
    echo "       stream leader n$first killed, restarted; then n${down[0]} and n${down[1]}:" \
        "$((SECONDS - t0)) s"
}

[ -n "${REPLICA_ONLY:-}" ] && { run_case "$REPLICA_ONLY"; finish; exit; }
run_case case_faults_during_appends
run_case case_heads_equal_and_both_verify
run_case case_same_answers
run_case case_lag_in_stats
run_case case_close_reaches_the_replica
run_case case_writes_refused_on_the_replica
run_case case_http_403_on_the_replica
run_case case_follow_stops_cleanly
run_case case_other_ledger_refused
run_case case_diverged_copy_stops_the_publisher
run_case case_foreign_subject_stops_follow
run_case case_non_empty_folder_refused
run_case case_restart_resumes_without_duplicates
run_case case_no_jetstream
run_case case_malformed_nats_url_is_usage
run_case_once case_follow_rides_out_an_election
finish
