#!/usr/bin/env bash
# run.sh - every benchmark of spec/benchmarks.md, each ending with one BENCH line.
#
#   benchmarks/run.sh quick|full        (make bench-quick / make bench)
#
# quick: 20 k sales (about 26 k events), under a minute; CI runs it. full: 7.8 M sales (about
# 10 M events) over 12 months, under 15 minutes on the 2-core reference machine.
# Environment: BENCH_WORK=DIR keeps the generated data and ledgers there (default: a temporary
# folder, removed at the end); BENCH_PEERS="sqlite postgres duckdb" picks the peers;
# BENCH_SEED=N (default 42). The history carries the partner program (accrue-gen --program:
# onboarding, a certified rule, promotions with budgets, announcements) unless BENCH_PROGRAM=0;
# replay_payout is then measured a second time, program=no, on the same history generated
# without it (always in quick mode; in full mode with BENCH_PROGRAM_COMPARE=1).
#
# Exit status: 0 when every row ran or was skipped with a reason; 1 when a peer's statement
# differs from another peer's or from accrue's ("a faster wrong answer is not a result"), or a
# command that should work failed.
set -uo pipefail
mode=${1:-quick}
root=$(cd "$(dirname "$0")/.." && pwd)
bench=$root/benchmarks
build=${BUILD:-$root/build}
accrue=$build/accrue
gen=$build/accrue-gen
stack=$build/accrue-stack
out=$bench/out
seed=${BENCH_SEED:-42}
peers=${BENCH_PEERS:-sqlite postgres duckdb}
case $mode in
quick) partners=200 sales=20000 months=12 http_seconds=2 http_batch_events=20000
       peer_timeout=120 sink_follow_sales=20000 ;;
full) partners=2000 sales=7800000 months=12 http_seconds=10 http_batch_events=10000000
      peer_timeout=300 sink_follow_sales=400000 ;;
*) echo "usage: $0 quick|full" >&2; exit 2 ;;
esac

failed=0
fail() { echo "run.sh: FAIL: $*" >&2; failed=1; }
note() { echo "run.sh: $*" >&2; }
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
rate() { awk -v n="$1" -v s="$2" 'BEGIN { if (s == "NA" || s == "") print "NA"; else if (s > 0) printf "%.0f", n / s; else print "inf" }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a != "NA" && b != "NA" && b > 0) printf "%.2f", a / b; else print "NA" }'; }

mkdir -p "$out"
if [ -n "${BENCH_WORK:-}" ]; then
    work=$BENCH_WORK
    mkdir -p "$work"
else
    work=$(mktemp -d /tmp/accrue-bench.XXXXXX)
    trap 'rm -rf "$work"' EXIT
fi
chmod 755 "$work" # the PostgreSQL peer reads the CSV files as the postgres user
results=$out/results-$mode.txt
: >"$results"

# bench NAME N SECONDS RSS_MB [EXTRA...]: prints and records one BENCH line.
bench() {
    local name=$1 n=$2 s=$3 rss=$4
    shift 4
    local line="BENCH name=$name n=$n seconds=$s per_s=$(rate "$n" "$s") rss_mb=$rss${*:+ $*}"
    echo "$line"
    echo "$line" >>"$results"
}
skip() { local line="BENCH name=$1 skipped=$2"; echo "$line"; echo "$line" >>"$results"; }

# timed OUTFILE CMD...: runs CMD under /usr/bin/time; sets T_SECONDS, T_RSS_MB, T_RC.
timed() {
    local o=$1
    shift
    local t0 t1
    t0=$(now)
    if [ -x /usr/bin/time ]; then
        /usr/bin/time -f %M -o "$work/time.rss" "$@" >"$o" 2>"$o.err"
        T_RC=$?
        T_RSS_MB=$(awk 'END { printf "%.1f", $1 / 1024 }' "$work/time.rss" 2>/dev/null || echo NA)
    else
        "$@" >"$o" 2>"$o.err"
        T_RC=$?
        T_RSS_MB=NA
    fi
    t1=$(now)
    T_SECONDS=$(secs "$t0" "$t1")
}

# ---- tools: installed when missing (Debian packages, npm), skipped with a message otherwise ----
apt_install() {
    [ "$(id -u)" = 0 ] || return 1
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >"$work/apt.log" 2>&1 ||
        { apt-get update -q >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >"$work/apt.log" 2>&1; }
}
[ -x /usr/bin/time ] || apt_install time || note "GNU time missing: rss_mb=NA"
if [ ! -x "$gen" ]; then
    echo "run.sh: $gen is missing: run 'make' first (make bench does)" >&2
    exit 1
fi

# ---- the data ----
hist=$work/history.jsonl
hist_mp=$work/history.msgpack
gen_args=(--partners "$partners" --sales "$sales" --seed "$seed" --months "$months")
program=yes
if [ "${BENCH_PROGRAM:-1}" = 1 ]; then gen_args+=(--program); else program=no; fi
timed "$hist" "$gen" "${gen_args[@]}"
[ "$T_RC" = 0 ] || { cat "$hist.err" >&2; exit 1; }
events=$(wc -l <"$hist")
bench gen "$events" "$T_SECONDS" "$T_RSS_MB" format=jsonl
timed "$hist_mp" "$gen" "${gen_args[@]}" --format msgpack
[ "$T_RC" = 0 ] || { cat "$hist_mp.err" >&2; exit 1; }
bench gen "$events" "$T_SECONDS" "$T_RSS_MB" format=msgpack
# The first sale can sit far into the file (a few thousand partners register first): grep
# stops at the first match, so this reads only up to it.
first_period=$(grep -m1 -o '"type":"sale.recorded","at":"[0-9]\{4\}-[0-9]\{2\}' "$hist" | grep -o '[0-9]\{4\}-[0-9]\{2\}$')
last_period=$(tail -n 1000 "$hist" | grep -o '"at":"[0-9]\{4\}-[0-9]\{2\}' | sort | tail -1 | grep -o '[0-9]\{4\}-[0-9]\{2\}$')
note "$events events, periods $first_period .. $last_period"

# ---- accrue: append, replay_payout, verify, rebuild ----
have_accrue=0
if [ -x "$accrue" ] && "$accrue" --version >/dev/null 2>&1; then have_accrue=1; fi
seq_base=0
append_s=NA
ledger=$work/ledger
if [ $have_accrue = 1 ]; then
    "$accrue" --ledger "$ledger" init >/dev/null || fail "accrue init"
    timed "$work/append.out" "$accrue" --ledger "$ledger" append "$hist" --batch-size 100000
    if [ "$T_RC" = 0 ]; then
        bench append_file "$events" "$T_SECONDS" "$T_RSS_MB" format=jsonl
        append_s=$T_SECONDS # accrue's load, for the peers' load+compute rows
        first_seq=$(grep -o 'seq [0-9]*' "$work/append.out" | head -1 | grep -o '[0-9]*$')
        [ -z "$first_seq" ] || seq_base=$((first_seq - 1))
    else
        fail "append jsonl: $(head -5 "$work/append.out.err")"
        have_accrue=0
    fi
    "$accrue" --ledger "$ledger.mp" init >/dev/null || fail "accrue init (msgpack)"
    timed "$work/append_mp.out" "$accrue" --ledger "$ledger.mp" append "$hist_mp" --format msgpack --batch-size 100000
    if [ "$T_RC" = 0 ]; then
        bench append_file "$events" "$T_SECONDS" "$T_RSS_MB" format=msgpack
    else
        fail "append msgpack: $(head -5 "$work/append_mp.out.err")"
    fi
else
    skip append_file accrue-not-built
fi

# replay_payout_closed: the last month's run after every earlier month was closed, in order,
# on a copy of the ledger (a finance team closes each month): the run reads every stored
# statement back and restates against it. close_seconds is the closes' mean.
next_month() { # YYYY-MM -> the month after
    local y=${1%-*} m=$((10#${1#*-} + 1))
    [ "$m" -le 12 ] || { y=$((y + 1)); m=1; }
    printf '%04d-%02d' "$y" "$m"
}
closed_row() {
    local l=$ledger.closed p=$first_period n=0 t0 close_s
    rm -rf "$l"
    cp -a "$ledger" "$l" || { fail "copy of the ledger for replay_payout_closed"; return; }
    t0=$(now)
    while [ "$p" != "$last_period" ] && [ "$n" -lt 120 ]; do
        if ! "$accrue" --ledger "$l" payout close "$p" --force >/dev/null 2>"$work/close.err"; then
            fail "payout close $p: $(head -3 "$work/close.err")"
            rm -rf "$l"
            return
        fi
        n=$((n + 1))
        p=$(next_month "$p")
    done
    close_s=$(secs "$t0" "$(now)")
    timed "$work/payout_closed.out" "$accrue" --ledger "$l" payout run "$last_period" --out "$work/closed-$last_period"
    if [ "$T_RC" = 0 ]; then
        bench replay_payout_closed "$events" "$T_SECONDS" "$T_RSS_MB" period="$last_period" \
            closed_periods=$n "close_seconds=$(awk -v s="$close_s" -v n="$n" 'BEGIN { printf "%.3f", n ? s / n : 0 }')"
    else fail "payout run after the closes: $(head -5 "$work/payout_closed.out.err")"; fi
    rm -rf "$l" "$work/closed-$last_period"
}

if [ $have_accrue = 1 ]; then
    # The stack's own rates over the same log, each in a fresh process like the run below
    # (pages in the page cache, not yet mapped): an LMDB cursor scan, and the scan with
    # XXH3-128 over every record (the chain check's work). replay_payout's peer_per_s is
    # the second: what the run cannot beat without reading less of the log.
    stack_chain_per_s=
    if [ -x "$stack" ]; then
        for m in scan chain; do
            timed "$work/stack-$m.out" "$stack" "$m" "$ledger"
            if [ "$T_RC" = 0 ]; then
                n_s=$(grep -o 'n=[0-9]*' "$work/stack-$m.out" | cut -d= -f2)
                s_s=$(grep -o 'seconds=[0-9.]*' "$work/stack-$m.out" | cut -d= -f2)
                bench "stack_$m" "$n_s" "$s_s" "$T_RSS_MB" peer=lmdb
                [ "$m" = chain ] && stack_chain_per_s=$(rate "$n_s" "$s_s")
            else
                fail "accrue-stack $m: $(head -3 "$work/stack-$m.out.err")"
            fi
        done
    else
        skip stack_scan stack-not-built
    fi
    timed "$work/payout.out" "$accrue" --ledger "$ledger" payout run "$last_period" --out "$work/ours-$last_period"
    if [ "$T_RC" = 0 ]; then
        peer=()
        [ -z "$stack_chain_per_s" ] || peer=(peer=stack_chain peer_per_s="$stack_chain_per_s" \
            ratio="$(ratio "$(rate "$events" "$T_SECONDS")" "$stack_chain_per_s")")
        bench replay_payout "$events" "$T_SECONDS" "$T_RSS_MB" period="$last_period" program=$program "${peer[@]}"
    else fail "payout run: $(head -5 "$work/payout.out.err")"; fi
    # The cost of the program: the same replay over the history generated without it.
    if [ "$program" = yes ] && { [ "$mode" = quick ] || [ "${BENCH_PROGRAM_COMPARE:-0}" = 1 ]; }; then
        plain=("${gen_args[@]}")
        unset 'plain[${#plain[@]}-1]'
        timed "$work/plain.jsonl" "$gen" "${plain[@]}"
        plain_events=$(wc -l <"$work/plain.jsonl")
        "$accrue" --ledger "$ledger.plain" init >/dev/null &&
            "$accrue" --ledger "$ledger.plain" append "$work/plain.jsonl" --batch-size 100000 \
                >/dev/null 2>&1 || fail "append of the history without the program"
        timed "$work/payout_plain.out" "$accrue" --ledger "$ledger.plain" payout run "$last_period" --out "$work/plain-$last_period"
        if [ "$T_RC" = 0 ]; then bench replay_payout "$plain_events" "$T_SECONDS" "$T_RSS_MB" period="$last_period" program=no
        else fail "payout run (no program): $(head -5 "$work/payout_plain.out.err")"; fi
        rm -rf "$work/plain.jsonl" "$ledger.plain"
    fi
    timed "$work/verify.out" "$accrue" --ledger "$ledger" verify
    if [ "$T_RC" = 0 ]; then bench verify "$events" "$T_SECONDS" "$T_RSS_MB"
    else fail "verify: $(head -5 "$work/verify.out.err")"; fi
    # verify --fast: the chain, the tables' digests and the statements, no replay
    timed "$work/verify_fast.out" "$accrue" --ledger "$ledger" verify --fast
    if [ "$T_RC" = 0 ]; then
        peer=()
        [ -z "$stack_chain_per_s" ] || peer=(peer=stack_chain peer_per_s="$stack_chain_per_s" \
            ratio="$(ratio "$(rate "$events" "$T_SECONDS")" "$stack_chain_per_s")")
        bench verify_fast "$events" "$T_SECONDS" "$T_RSS_MB" "${peer[@]}"
    else fail "verify --fast: $(head -5 "$work/verify_fast.out.err")"; fi
    timed "$work/rebuild.out" "$accrue" --ledger "$ledger" rebuild
    if [ "$T_RC" = 0 ]; then bench rebuild "$events" "$T_SECONDS" "$T_RSS_MB"
    else fail "rebuild: $(head -5 "$work/rebuild.out.err")"; fi
    closed_row
else
    skip replay_payout accrue-not-built
    skip verify accrue-not-built
    skip rebuild accrue-not-built
fi

# ---- sink_postgres: catch-up of the whole ledger, then follow lag and the append rate with
# and without a following sink (benchmarks/sink.sh, spec reporting.md) ----
sink_rows() {
    local follow=$work/follow.jsonl line n s rss
    "$gen" --partners 200 --sales "$sink_follow_sales" --seed "$seed" --months 12 >"$follow" ||
        { fail "accrue-gen for the follow rows"; return; }
    bash "$bench/sink.sh" "$accrue" "$ledger" "$follow" "$work" >"$work/sink.rows" 2>"$work/sink.rows.err"
    case $? in
    0) ;;
    3) skip sink_postgres postgresql-not-installed; skip append_with_sink postgresql-not-installed; return ;;
    *) fail "sink.sh: $(tail -3 "$work/sink.rows.err")"; return ;;
    esac
    local c a l
    c=$(grep '^SINK catchup' "$work/sink.rows")
    a=$(grep '^SINK append' "$work/sink.rows")
    l=$(grep '^SINK lag' "$work/sink.rows")
    set -- $c
    n=${3#n=} s=${4#seconds=} rss=${5#rss_mb=}
    set -- $l
    bench sink_postgres "$n" "$s" "$rss" mode=catch-up "lag_ms_p50=${4#p50_ms=}" "lag_ms_p99=${5#p99_ms=}" "lag_events=${3#n=}"
    set -- $a
    local without=${4#without_s=} with=${5#with_s=}
    bench append_with_sink "${3#n=}" "$with" NA "baseline_per_s=$(rate "${3#n=}" "$without")" \
        "ratio=$(ratio "$(rate "${3#n=}" "$with")" "$(rate "${3#n=}" "$without")")" batch=1000
    rm -f "$follow"
}
if [ $have_accrue = 1 ]; then
    sink_rows
else
    skip sink_postgres accrue-not-built
    skip append_with_sink accrue-not-built
fi

# ---- HTTP rows ----
# The HTTP rows append to the msgpack-loaded copy of the history, so the ledger the peers are
# compared against stays exactly the generated history.
# serve_up LEDGER LOG [SERVE ARGS...]: `accrue serve` on a random loopback port, up once
# /healthz answers 200; sets srv_pid and srv_port. Status 1 when it did not come up (noted).
serve_up() {
    local l=$1 log=$2
    shift 2
    srv_port=$((20000 + RANDOM % 20000))
    "$accrue" --ledger "$l" serve --listen "127.0.0.1:$srv_port" "$@" >"$log" 2>&1 &
    srv_pid=$!
    for _ in $(seq 50); do
        kill -0 "$srv_pid" 2>/dev/null || break # exited: e.g. "not available in this build"
        node -e "require('http').get('http://127.0.0.1:$srv_port/healthz', r => process.exit(r.statusCode === 200 ? 0 : 1)).on('error', () => process.exit(1))" 2>/dev/null && return 0
        sleep 0.2
    done
    note "accrue serve did not come up: $(head -2 "$log")"
    serve_down
    return 1
}

serve_down() {
    kill -TERM "$srv_pid" 2>/dev/null
    wait "$srv_pid" 2>/dev/null
}

http_rows() {
    local token ledger="$ledger.mp"
    token=$("$accrue" --ledger "$ledger" token create --role ingest --name bench 2>/dev/null | tail -1)
    [ -n "$token" ] || { skip http_append_single token-create-failed; skip http_append_batch token-create-failed; return; }
    if ! serve_up "$ledger" "$work/serve.log"; then
        skip http_append_single serve-not-built
        skip http_append_batch serve-not-built
        return
    fi
    local port=$srv_port
    local partner=P000001 line cpu
    # The load client: build/accrue-http-load (benchmarks/http_load.c, a few us of CPU per
    # request), or http_load.mjs (~50 us) when it is not built; the line names which.
    local load=("$build/accrue-http-load") client=c
    [ -x "${load[0]}" ] || { load=(node "$bench/http_load.mjs"); client=node; }
    # The stack's own limits, in the same run: `accrue-stack serve` (libuv answering a fixed
    # 200 per request: the loopback HTTP floor, nothing durable) under the same client, and
    # `accrue-stack commit` (durable LMDB commits of 64 appended values on the ledger's file
    # system: with 64 connections, at most 64 requests per commit).
    local peer=() commit_bound=
    if [ -x "$stack" ] && [ "$client" = c ]; then
        local sport=$((port + 1)) spid sline
        "$stack" serve "$sport" >"$work/stack-serve.out" 2>&1 &
        spid=$!
        sleep 0.3
        "${load[@]}" "http://127.0.0.1:$sport" x single 64 "$http_seconds" "$partner" >"$work/stack-serve.load" 2>&1
        kill -TERM "$spid" 2>/dev/null
        wait "$spid" 2>/dev/null
        sline=$(grep '^HTTP ' "$work/stack-serve.load")
        if [ -n "$sline" ]; then
            set -- $sline
            bench stack_serve "${2#requests=}" "${4#seconds=}" NA "$5" "$6" connections=64 peer=loopback
            peer=(peer=stack_serve peer_per_s="$(rate "${2#requests=}" "${4#seconds=}")")
        fi
        rm -rf "$work/stack-commit"
        sline=$("$stack" commit "$work/stack-commit" "$http_seconds" 64 2>/dev/null)
        rm -rf "$work/stack-commit"
        if [ -n "$sline" ]; then
            set -- $sline
            bench stack_commit "${3#n=}" "${4#seconds=}" NA "$7" "$8" values_per_commit=64
            commit_bound=$(awk -v r="${5#per_s=}" 'BEGIN { printf "%.0f", r * 64 }')
        fi
    fi
    timed "$work/http1.out" "${load[@]}" "http://127.0.0.1:$port" "$token" single 64 "$http_seconds" "$partner"
    line=$(grep '^HTTP ' "$work/http1.out")
    cpu=$(grep -o 'us_per_request=[0-9.]*' "$work/http1.out")
    if [ "$T_RC" = 0 ] && [ -n "$line" ]; then
        set -- $line
        [ ${#peer[@]} = 0 ] || peer+=(ratio="$(ratio "$(rate "${2#requests=}" "${4#seconds=}")" "${peer[1]#peer_per_s=}")")
        bench http_append_single "${2#requests=}" "${4#seconds=}" NA "$5" "$6" connections=64 \
            client=$client ${cpu:+client_cpu_$cpu} "${peer[@]}" ${commit_bound:+commit_bound_per_s=$commit_bound}
    else
        fail "http_append_single: $line $(tail -3 "$work/http1.out.err")"
    fi
    timed "$work/http2.out" "${load[@]}" "http://127.0.0.1:$port" "$token" batch 8 "$http_batch_events" "$partner" 1000
    line=$(grep '^HTTP ' "$work/http2.out")
    if [ "$T_RC" = 0 ] && [ -n "$line" ]; then
        set -- $line
        bench http_append_batch "${3#events=}" "${4#seconds=}" NA "$5" "$6" connections=8 per_request=1000 \
            client=$client
    else
        fail "http_append_batch: $line $(tail -3 "$work/http2.out.err")"
    fi
    serve_down
    rm -rf "$ledger"
}
if [ $have_accrue = 1 ] && "$accrue" serve --help >/dev/null 2>&1; then
    http_rows
else
    skip http_append_single serve-not-built
    skip http_append_batch serve-not-built
fi

# ---- replicate_follow: primary -> NATS JetStream (3 local nodes, R3 stream) -> read replica ----
# events/s from the primary's commit to the replica's commit while `replicate` and `follow` run
# together over a committed history (catch-up), then the lag (primary commit -> replica commit,
# p50/p99) in follow mode while the rest of the history is appended in batches of 500 every
# 100 ms. Size: the quick history, and 1 M events in full mode (BENCH_REPL_SALES=N sales to
# change it; the NATS cluster shares the machine's cores with both accrue processes).
replicate_follow_row() {
    local rsales=$1 rdir=$work/repl rp fp n t0 t1 id k
    # shellcheck source=../tests/replica/nats_cluster.sh
    . "$root/tests/replica/nats_cluster.sh"
    rm -rf "$rdir"
    mkdir -p "$rdir"
    nats_start "$rdir/nats"
    if ! nats_wait_ready 60; then
        nats_stop
        skip replicate_follow nats-not-ready
        return
    fi
    "$gen" --partners "$partners" --sales "$rsales" --seed "$seed" --months "$months" >"$rdir/h.jsonl"
    n=$(wc -l <"$rdir/h.jsonl")
    k=$((n * 9 / 10))
    head -n "$k" "$rdir/h.jsonl" >"$rdir/a.jsonl"
    tail -n +"$((k + 1))" "$rdir/h.jsonl" | split -l 500 - "$rdir/b."
    "$accrue" --ledger "$rdir/p" init >/dev/null
    "$accrue" --ledger "$rdir/p" append --batch-size 100000 "$rdir/a.jsonl" >/dev/null ||
        fail "replicate_follow: append"
    id=$("$accrue" --ledger "$rdir/p" stats | awk '/^ledger id/{print $3}')
    t0=$(now)
    "$accrue" --ledger "$rdir/p" replicate --nats "$NATS_URL" >"$rdir/rep.log" 2>&1 &
    rp=$!
    "$accrue" --ledger "$rdir/r" follow --nats "$NATS_URL" --stream "ACCRUE_$id" >"$rdir/fol.log" 2>&1 &
    fp=$!
    while [ "$("$accrue" --ledger "$rdir/r" stats 2>/dev/null | awk '/^head seq/{print $3}')" != "$k" ]; do
        kill -0 "$fp" 2>/dev/null || break
        sleep 0.05
    done
    t1=$(now)
    kill -TERM "$fp" 2>/dev/null
    wait "$fp" 2>/dev/null
    # follow mode: a fresh follower process, caught up, measures the lag of new commits only
    "$accrue" --ledger "$rdir/r" follow --nats "$NATS_URL" --lag-report >"$rdir/lag.log" 2>&1 &
    fp=$!
    sleep 1
    for f in "$rdir"/b.*; do
        "$accrue" --ledger "$rdir/p" append "$f" >/dev/null || fail "replicate_follow: trickle append"
        sleep 0.1
    done
    local deadline=$((SECONDS + 120))
    while [ "$("$accrue" --ledger "$rdir/r" stats 2>/dev/null | awk '/^head seq/{print $3}')" != "$n" ] &&
        [ $SECONDS -lt $deadline ]; do
        sleep 0.05
    done
    kill -TERM "$fp" "$rp" 2>/dev/null
    wait "$fp" "$rp" 2>/dev/null
    nats_stop
    local hp hr p50 p99
    hp=$("$accrue" --ledger "$rdir/p" stats | awk '/^head hash/{print $3}')
    hr=$("$accrue" --ledger "$rdir/r" stats | awk '/^head hash/{print $3}')
    [ "$hp" = "$hr" ] || fail "replicate_follow: replica head $hr differs from the primary's $hp"
    p50=$(awk '/^lag_ms/{print $3}' "$rdir/lag.log")
    p99=$(awk '/^lag_ms/{print $5}' "$rdir/lag.log")
    bench replicate_follow "$k" "$(secs "$t0" "$t1")" NA "lag_p50_ms=${p50:-NA}" \
        "lag_p99_ms=${p99:-NA}" "lag_events=$((n - k))" nats_nodes=3 stream_replicas=3
    rm -rf "$rdir"
}
if [ $have_accrue = 1 ] && "$accrue" follow --help >/dev/null 2>&1 &&
    { command -v nats-server >/dev/null 2>&1 || [ -x /usr/sbin/nats-server ]; }; then
    if [ "$mode" = full ]; then replicate_follow_row "${BENCH_REPL_SALES:-770000}"
    else replicate_follow_row "${BENCH_REPL_SALES:-$sales}"; fi
else
    skip replicate_follow nats-server-or-accrue-missing
fi

# ---- peers: payout_vs_sqlite / _postgres / _duckdb ----
csv=$work/csv
timed "$work/load.out" node "$bench/peers/load.mjs" "$hist" "$csv" --seq-base "$seq_base"
[ "$T_RC" = 0 ] || { fail "load.mjs: $(cat "$work/load.out.err")"; exit 1; }
convert_s=$T_SECONDS
note "load.mjs: JSONL -> CSV in ${convert_s}s ($(cat "$work/load.out.err"))"

peer_ready() {
    case $1 in
    sqlite) command -v sqlite3 >/dev/null || apt_install sqlite3 ;;
    postgres) { command -v psql >/dev/null && ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; } ||
        apt_install postgresql ;;
    duckdb) [ -d "$bench/peers/node_modules/@duckdb/node-api" ] ||
        (cd "$bench/peers" && timeout 300 npm install --no-audit --no-fund >"$work/npm.log" 2>&1) ;;
    esac
}
run_peer() {
    case $1 in
    sqlite) timeout "$peer_timeout" bash "$bench/peers/sqlite.sh" "$csv" "$work/peer-sqlite" "$first_period" "$last_period" ;;
    postgres) timeout "$peer_timeout" bash "$bench/peers/postgres.sh" "$csv" "$work/peer-postgres" "$first_period" "$last_period" ;;
    duckdb) timeout "$peer_timeout" node "$bench/peers/duckdb.mjs" "$csv" "$work/peer-duckdb" "$first_period" "$last_period" ;;
    esac
}

# Ours: the same two runs, each timed alone, three times: the median is quoted. A peer's
# compute runs on tables it has just loaded into its own memory; ours reads the ledger
# through the page cache, which the steps before (the sink, the replicas, load.mjs) may have
# partly evicted, so the first of the three can include reading the ledger from disk. It
# is printed in a note beside the median.
declare -A ours_s ours_rss
for p in "$first_period" "$last_period"; do
    ours_s[$p]=NA ours_rss[$p]=NA
    [ $have_accrue = 1 ] || continue
    times=()
    for i in 1 2 3; do
        rm -rf "$work/ours-$p"
        timed "$work/ours-$p.out" "$accrue" --ledger "$ledger" payout run "$p" --out "$work/ours-$p"
        if [ "$T_RC" != 0 ]; then
            fail "payout run $p: $(head -3 "$work/ours-$p.out.err")"
            times=()
            break
        fi
        times+=("$T_SECONDS")
        ours_rss[$p]=$T_RSS_MB
    done
    [ ${#times[@]} = 3 ] || { ours_rss[$p]=NA; continue; }
    ours_s[$p]=$(printf '%s\n' "${times[@]}" | sort -g | sed -n 2p)
    note "payout run $p: ${times[*]} s (first, second, third); median ${ours_s[$p]} s"
done

declare -A ref_of # per period: the first statement seen, which every other one must equal
for p in "$first_period" "$last_period"; do
    if [ -f "$work/ours-$p/statement.csv" ]; then ref_of[$p]="$work/ours-$p/statement.csv"; fi
done
for peer in $peers; do
    if ! peer_ready "$peer"; then
        note "peer $peer: could not be installed, skipped"
        skip "payout_vs_$peer" peer-not-installed
        continue
    fi
    run_peer "$peer" >"$work/peer-$peer.out" 2>"$work/peer-$peer.err"
    rc=$?
    if [ $rc = 124 ]; then
        note "peer $peer: over ${peer_timeout}s, stopped"
        skip "payout_vs_$peer" "peer-timeout-${peer_timeout}s"
        continue
    elif [ $rc != 0 ]; then
        if grep -q 'not found\|not installed' "$work/peer-$peer.err"; then
            note "peer $peer: $(head -1 "$work/peer-$peer.err")"
            skip "payout_vs_$peer" peer-not-installed
        else
            fail "peer $peer: $(tail -5 "$work/peer-$peer.err")"
        fi
        continue
    fi
    load_s=$(grep -o 'load_s=[0-9.]*' "$work/peer-$peer.out" | cut -d= -f2)
    for p in "$first_period" "$last_period"; do
        st=$work/peer-$peer/statement-$p.csv
        compute_s=$(grep "period=$p " "$work/peer-$peer.out" | grep -o 'compute_s=[0-9.]*' | cut -d= -f2)
        if [ -z "${ref_of[$p]:-}" ]; then
            ref_of[$p]=$st
        elif ! cmp -s "${ref_of[$p]}" "$st"; then
            fail "payout_vs_$peer $p: statement differs from ${ref_of[$p]}: $(diff "${ref_of[$p]}" "$st" | head -4 | tr '\n' ' ')"
            continue
        fi
        n=$(awk -F, -v p="$p" '$10 <= p' "$csv/sales.csv" | wc -l)
        lines=$(($(wc -l <"$st") - 1))
        full_s=$(awk -v a="$convert_s" -v b="$load_s" -v c="$compute_s" 'BEGIN { printf "%.3f", a + b + c }')
        # load+compute sets like against like: the peer's conversion, bulk load and query
        # against accrue's durable append of the same history (append_file, JSON: every rule
        # checked, every event chained, every projection built) plus its run
        for m in compute load+compute; do
            ps=$compute_s ours=${ours_s[$p]} extra=()
            if [ $m = load+compute ]; then
                ps=$full_s
                ours=$(awk -v a="$append_s" -v b="$ours" 'BEGIN { if (a == "NA" || b == "NA") print "NA"; else printf "%.3f", a + b }')
                extra=("accrue_load_seconds=$append_s")
            fi
            bench "payout_vs_$peer" "$n" "$ours" "${ours_rss[$p]}" "peer=$peer" \
                "peer_per_s=$(rate "$n" "$ps")" "ratio=$(ratio "$ps" "$ours")" \
                "period=$p" "mode=$m" "lines=$lines" "peer_seconds=$ps" "${extra[@]}"
        done
    done
done
for p in "$first_period" "$last_period"; do
    [ -n "${ref_of[$p]:-}" ] && note "statement $p: $(xxh128sum "${ref_of[$p]}" 2>/dev/null | cut -d' ' -f1) ($(($(wc -l <"${ref_of[$p]}") - 1)) lines)"
done

# ---- incremental: 1,000 new sales, then what a user asks next ----
# Issue 11's row: append 1,000 sale.recorded events of the open (last) period to the full
# ledger, then time `kpi --period` of its quarter (commission included) and the draft
# `payout run` of the period. The goal is 50 ms each (kept per partner and origin period);
# today both replay the history, so the row measures how far from that they are.
incremental_row() {
    local inc=$work/incremental.jsonl q
    grep '"type":"sale.recorded"' "$hist" | grep -v '"deal_id"' | tail -n 1000 |
        sed -e 's/"id":"/"id":"inc-/' -e 's/"sale_id":"/"sale_id":"INC-/' >"$inc"
    [ "$(wc -l <"$inc")" -gt 0 ] || { skip incremental no-sales; return; }
    timed "$work/inc-append.out" "$accrue" --ledger "$ledger" append "$inc"
    [ "$T_RC" = 0 ] || { fail "incremental append: $(head -3 "$work/inc-append.out.err")"; return; }
    bench incremental_append "$(wc -l <"$inc")" "$T_SECONDS" "$T_RSS_MB" period="$last_period"
    q=${last_period%-*}-Q$(( (10#${last_period#*-} + 2) / 3 ))
    timed "$work/inc-kpi.out" "$accrue" --ledger "$ledger" kpi --period "$q" --format json
    if [ "$T_RC" = 0 ]; then bench incremental_kpi 1 "$T_SECONDS" "$T_RSS_MB" period="$q" goal_seconds=0.050
    else fail "incremental kpi: $(head -3 "$work/inc-kpi.out.err")"; fi
    rm -rf "$work/inc-run"
    timed "$work/inc-run.out" "$accrue" --ledger "$ledger" payout run "$last_period" --out "$work/inc-run"
    if [ "$T_RC" = 0 ]; then bench incremental_payout 1 "$T_SECONDS" "$T_RSS_MB" period="$last_period" goal_seconds=0.050
    else fail "incremental payout run: $(head -3 "$work/inc-run.out.err")"; fi
    incremental_served "$q" "$inc"
}

# The same asks of `accrue serve`, whose ledger handle keeps a KPI memo (docs/pipeline-and-
# kpis.md): the quarter twice at one head (a run, then the memo), the quarter before it, then
# another 1,000 sales of the open period over HTTP, then the quarter before (the memo, after
# reading the 1,000 events: they cannot reach it) and the open quarter (a run: they do).
incremental_served() {
    local q=$1 inc=$2 prev y n port tok t code
    command -v curl >/dev/null || { skip incremental_kpi_served no-curl; return; }
    y=${q%-Q*} n=${q#*-Q}
    if [ "$n" -gt 1 ]; then prev=$y-Q$((n - 1)); else prev=$((y - 1))-Q4; fi
    tok=$("$accrue" --ledger "$ledger" token create --role admin --name bench-served 2>/dev/null | tail -1)
    [ -n "$tok" ] || { skip incremental_kpi_served token-create-failed; return; }
    serve_up "$ledger" "$work/served.log" || { skip incremental_kpi_served serve-not-up; return; }
    port=$srv_port
    ask() { # NAME PERIOD: one GET /v1/kpi, a BENCH row of its wall time
        t=$(curl -s -o "$work/served-$1.json" -w '%{http_code} %{time_total}' --oauth2-bearer "$tok" \
            "http://127.0.0.1:$port/v1/kpi?period=$2")
        code=${t% *}
        if [ "$code" = 200 ]; then bench "$1" 1 "${t#* }" NA period="$2" goal_seconds=0.050
        else fail "$1: HTTP $code"; fi
    }
    ask incremental_kpi_served_run "$q"
    ask incremental_kpi_served_same_head "$q"
    ask incremental_kpi_served_prev_run "$prev"
    sed -e 's/"id":"inc-/"id":"inc2-/' -e 's/"sale_id":"INC-/"sale_id":"INC2-/' "$inc" >"$work/inc2.jsonl"
    code=$(curl -s -o "$work/inc2.out" -w '%{http_code}' --oauth2-bearer "$tok" \
        -H 'Content-Type: application/x-ndjson' --data-binary @"$work/inc2.jsonl" \
        "http://127.0.0.1:$port/v1/events")
    [ "$code" = 200 ] || fail "incremental served append: HTTP $code $(head -c 200 "$work/inc2.out")"
    ask incremental_kpi_served_prev_after_append "$prev"
    ask incremental_kpi_served_after_append "$q"
    curl -s --oauth2-bearer "$tok" "http://127.0.0.1:$port/metrics" | grep '^accrue_kpi_commission_total' |
        sed 's/^/# /'
    serve_down
}
if [ $have_accrue = 1 ]; then incremental_row; else skip incremental accrue-not-built; fi

# ---- the plot ----
plot() {
    command -v gnuplot >/dev/null || apt_install gnuplot-nox || { note "gnuplot absent: no plot"; return; }
    local data=$out/bench-$mode.dat
    # label and events/s: ours per row (the stack's rows too: they are peers of a row), and
    # each peer's compute rate. Not plotted: rates in other units (stack_commit: commits/s)
    # and the incremental rows (latencies of one command, against a time goal).
    awk '/^BENCH/ && !/skipped=/ {
            split("", f)
            for (i = 2; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
            if (f["name"] ~ /^incremental_/ || f["name"] == "stack_commit") next
            label = f["name"]
            if (f["format"] != "") label = label "/" f["format"]
            ok = f["per_s"] != "NA" && f["per_s"] != "inf" && f["per_s"] != ""
            if (f["peer"] != "" && f["mode"] == "compute") {
                label = (f["period"] == first ? "payout first" : "payout last")
                if (!(label in seen) && ok) { print "\"" label " (accrue)\"", f["per_s"]; seen[label] = 1 }
                print "\"" label " (" f["peer"] ")\"", f["peer_per_s"]
            } else if (f["mode"] != "load+compute" && ok) {
                print "\"" label "\"", f["per_s"]
            }
         }' first="$first_period" "$results" >"$data"
    gnuplot <<EOF 2>"$work/gnuplot.err" || { note "gnuplot failed: $(head -2 "$work/gnuplot.err")"; return; }
set terminal svg size 1100,600 dynamic font "sans,11" noenhanced
set output "$out/bench.svg"
set title "accrue benchmarks ($mode, $events events): events per second (log scale)"
set style data histograms
set style fill solid 0.8 border -1
set boxwidth 0.8
set logscale y
set ylabel "events/s"
set xtics rotate by -35 scale 0
set grid ytics
unset key
plot "$data" using 2:xtic(1) linecolor rgb "#4a7fb5"
EOF
    note "plot: $out/bench.svg"
}
plot

if [ $failed = 1 ]; then
    echo "run.sh: some benchmarks FAILED (see above)" >&2
    exit 1
fi
echo "run.sh: $mode done; results in $results"
