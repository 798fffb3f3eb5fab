#!/usr/bin/env bash
# sink.sh - the rows of `accrue sink postgres` (spec reporting.md), called by benchmarks/run.sh.
#
#   sink.sh ACCRUE LEDGER FOLLOW_JSONL WORK
#
# On a private PostgreSQL cluster (tests/cli/pg.sh: initdb in a temporary folder, unix socket,
# random port; stopped and removed at the end; settings for a 2-core, 24 GiB machine):
#   1. catch-up: `accrue sink postgres` of the whole LEDGER (COPY, 100 k events per transaction);
#   2. append rate without a sink: FOLLOW_JSONL appended into a new ledger with
#      `append --batch-size 1000` (durable commits of 1000 events);
#   3. the same into another new ledger while `accrue sink postgres --follow` mirrors it: the
#      append rate with a following sink;
#   4. follow lag at a steady rate: 100 more commits of 100 events, one every 0.1 s, and the
#      lag of each of their events from its commit in the ledger (recorded_at) to its row in
#      PostgreSQL (events.mirrored_at), p50 and p99. (Flat-out appends faster than PostgreSQL
#      takes rows would measure the backlog, not the lag.)
# Prints `SINK catchup n= seconds= rss_mb=`, `SINK append n= without_s= with_s=` and
# `SINK lag n= p50_ms= p99_ms=`; exit 1 when a step fails, 3 when PostgreSQL is missing.
set -uo pipefail
accrue=$1
ledger=$2
follow=$3
work=$4
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/tests/cli/pg.sh"
pg_available || { echo "sink.sh: PostgreSQL server binaries not found" >&2; exit 3; }
PG_SHARED_BUFFERS=2GB
PG_EXTRA_OPTS="-c max_wal_size=16GB -c checkpoint_timeout=30min -c wal_buffers=64MB"
FOLLOW_PID=
cleanup() {
    [ -z "$FOLLOW_PID" ] || kill -9 "$FOLLOW_PID" 2>/dev/null
    pg_stop
}
trap cleanup EXIT
pg_start || exit 1
export PGHOST=$PG_DIR PGPORT=$PG_PORT PGUSER=postgres PGDATABASE=bi
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }

# 1. catch-up
t0=$(now)
/usr/bin/time -f %M -o "$work/sink.rss" "$accrue" --ledger "$ledger" sink postgres \
    --dsn "$PG_DSN" >"$work/sink.out" 2>"$work/sink.err" ||
    { echo "sink.sh: catch-up failed: $(tail -3 "$work/sink.err")" >&2; exit 1; }
t1=$(now)
n=$(psql_ -c "SELECT seq FROM accrue.sink_position")
echo "SINK catchup n=$n seconds=$(secs "$t0" "$t1") rss_mb=$(awk '{ printf "%.1f", $1 / 1024 }' "$work/sink.rss")"

# 2. appends without a sink
# first (partners, plans, reps and early sales) | flat-out appends | the last 10000 events
total=$(wc -l <"$follow")
head -n 10000 "$follow" >"$work/first.jsonl"
head -n $((total - 10000)) "$follow" | tail -n +10001 >"$work/flat.jsonl"
tail -n 10000 "$follow" | split -l 100 -d -a 3 - "$work/steady."
follow=$work/flat.jsonl
events=$(wc -l <"$follow")
"$accrue" --ledger "$work/follow-a" init >/dev/null || exit 1
"$accrue" --ledger "$work/follow-a" append "$work/first.jsonl" >/dev/null || exit 1
t0=$(now)
"$accrue" --ledger "$work/follow-a" append "$follow" --batch-size 1000 >/dev/null || exit 1
t1=$(now)
without=$(secs "$t0" "$t1")
rm -rf "$work/follow-a"

# 3. the same appends with a following sink
"$accrue" --ledger "$work/follow-b" init >/dev/null || exit 1
"$accrue" --ledger "$work/follow-b" append "$work/first.jsonl" >/dev/null || exit 1
"$accrue" --ledger "$work/follow-b" sink postgres --dsn "$PG_DSN" --schema follow --follow \
    >/dev/null 2>"$work/follow.err" &
FOLLOW_PID=$!
for _ in $(seq 100); do
    [ -n "$(psql_ -c "SELECT seq FROM follow.sink_position" 2>/dev/null)" ] && break
    sleep 0.1
done
t0=$(now)
"$accrue" --ledger "$work/follow-b" append "$follow" --batch-size 1000 >/dev/null || exit 1
t1=$(now)
with=$(secs "$t0" "$t1")
head_b() { "$accrue" --ledger "$work/follow-b" stats | sed -n 's/^head seq *//p'; }
caught_up() {
    local h i
    h=$(head_b)
    for i in $(seq 1200); do
        [ "$(psql_ -c "SELECT seq FROM follow.sink_position" 2>/dev/null)" = "$h" ] && return 0
        sleep 0.1
    done
    echo "sink.sh: the follower did not catch up with $h" >&2
    exit 1
}
caught_up
# 4. steady commits
lag_from=$(head_b)
for f in "$work"/steady.[0-9]*; do
    "$accrue" --ledger "$work/follow-b" append "$f" >/dev/null || exit 1
    sleep 0.1
done
caught_up
kill -TERM "$FOLLOW_PID"
wait "$FOLLOW_PID" || { echo "sink.sh: the follower failed: $(tail -3 "$work/follow.err")" >&2; exit 1; }
FOLLOW_PID=
rm -rf "$work/follow-b" "$work"/steady.* "$work/first.jsonl" "$work/flat.jsonl"
echo "SINK append n=$events without_s=$without with_s=$with"
psql_ -c "SELECT 'SINK lag n=' || count(*)
    || ' p50_ms=' || round(percentile_cont(0.5) WITHIN GROUP (ORDER BY ms)::numeric, 1)
    || ' p99_ms=' || round(percentile_cont(0.99) WITHIN GROUP (ORDER BY ms)::numeric, 1)
    FROM (SELECT extract(epoch FROM mirrored_at - recorded_at) * 1000 AS ms
          FROM follow.events WHERE seq > $lag_from) l"
