#!/usr/bin/env bash
# test_sink.sh - `accrue sink postgres` against a private PostgreSQL 15 cluster this script
# starts (initdb in a temporary folder, unix socket, random port) and stops at the end.
#
# The mirror is checked with SQL against accrue's own outputs (tests/cli/sink_check.py): the
# worked example and a generated ledger, mirrored in one transaction and in many small ones
# (the update paths), with partner updates (one back-dated), a new pipeline and deal moves
# appended between runs. Exactly once: SINK_KILLS `kill -9` of the sink at random instants
# (default 8; `make test-sink-long` runs 50) and a PostgreSQL restart under a following sink;
# after each, events hold seq 1..position once each and every close has its lines; at the
# end every table equals accrue's outputs. Faults: DSNs that do not parse, a database that
# does not exist, no server, a schema owned by another role, a table that is not the sink's,
# another ledger and a rewritten history (chain_broken, exit 5), a disk that fills up on the
# PostgreSQL side (a tablespace on a 2 MiB tmpfs; skipped with a reason when mount is not
# allowed) - each a clear message, a non-zero exit and nothing half-applied.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/pg.sh"

SINK_KILLS=${SINK_KILLS:-8}
GEN=${ACCRUE_GEN:-$(dirname "$ACCRUE")/accrue-gen}
CHECK=$ROOT/tests/cli/sink_check.py
FOLLOW_PID=

if ! pg_available; then
    echo "test_sink.sh: PostgreSQL server binaries not found (make installs postgresql-15)" >&2
    echo "$(basename "$0"): 0 passed, 1 failed"
    exit 1
fi
cleanup() {
    [ -z "$FOLLOW_PID" ] || kill -9 "$FOLLOW_PID" 2>/dev/null
    pg_stop
    rm -rf "$TMP"
}
trap cleanup EXIT
pg_start || {
    echo "test_sink.sh: could not start PostgreSQL" >&2
    echo "$(basename "$0"): 0 passed, 1 failed"
    exit 1
}
export PGHOST=$PG_DIR PGPORT=$PG_PORT PGUSER=postgres PGDATABASE=bi

# The actor of the CLI's events (events.md): $USER, else $LOGNAME, else the account name.
ME="cli:${USER:-${LOGNAME:-$(id -un)}}"

# sink LEDGER ARGS...: accrue sink postgres with the test DSN.
sink() {
    local l=$1
    shift
    acc "$l" sink postgres --dsn "$PG_DSN" "$@"
}

# checked LEDGER SCHEMA [--quick]: sink_check.py, its report shown on failure.
# mirrored_prefix LEDGER SCHEMA: the invariants of any committed position, in SQL: events hold
# seq 1..position once each, the hash at the position is the ledger's, every close has its
# statement lines.
mirrored_prefix() {
    local l=$1 s=$2 pos hash got
    pos=$(q "SELECT seq FROM $s.sink_position")
    hash=$(q "SELECT hash FROM $s.sink_position")
    got=$(q "SELECT count(*) || ' ' || coalesce(min(seq), 0) || ' ' || coalesce(max(seq), 0) ||
             ' ' || count(DISTINCT seq) FROM $s.events")
    assert_eq "$got" "$pos 1 $pos $pos" "events (count min max distinct) at position $pos"
    [ "$pos" -eq 0 ] || {
        "$ACCRUE" --ledger "$l" log --from "$pos" --to "$pos" | grep -q "\"hash\":\"$hash\"" ||
            fail "the hash at position $pos is not the ledger's"
    }
    assert_eq "$(q "SELECT count(*) FROM $s.closes c WHERE c.lines <> (SELECT count(*)
                    FROM $s.statement_lines l WHERE l.period = c.period)")" 0 \
        "closes without their statement lines"
}

checked() {
    local l=$1 s=$2
    shift 2
    if ! python3 "$CHECK" "$ACCRUE" "$l" "$s" +09:00 2026-12-31 "$@" >"$TMP/check.out" 2>&1; then
        fail "sink_check $s $*: $(tail -30 "$TMP/check.out")"
    fi
}

q() { psql_ -c "$1" 2>&1; }

# same_tables S1 S2: every table of two mirrors of the same ledger holds the same rows
# (mirrored_at and updated_at, the sink's own clock, left out).
same_tables() {
    local t a b cols
    for t in events partners reps trainings onboarding pipeline_stages deals deal_stages sales \
        closes statement_lines sink_position; do
        cols=$(q "SELECT string_agg(column_name, ', ' ORDER BY ordinal_position)
                  FROM information_schema.columns WHERE table_schema = '$1' AND table_name = '$t'
                  AND column_name NOT IN ('mirrored_at', 'updated_at')")
        a=$(q "SELECT md5(coalesce(string_agg(r::text, '|' ORDER BY r::text), '')) FROM (SELECT $cols FROM $1.$t) r")
        b=$(q "SELECT md5(coalesce(string_agg(r::text, '|' ORDER BY r::text), '')) FROM (SELECT $cols FROM $2.$t) r")
        assert_eq "$a" "$b" "$t in $1 and $2"
    done
}

# ---- the worked example ------------------------------------------------------------------

W=$(new_ledger --period month --utc-offset +09:00)

case_worked_example() {
    acc "$W" append "$WORKED/events.jsonl"
    acc "$W" payout close 2026-07
    assert_exit 0
    sink "$W"
    assert_exit 0
    expect_stdout_contains "mirrored 8 events (seq 1..8)"
    # the close's statement lines arrived with its period.closed event
    assert_eq "$(q "SELECT lines, totals::text FROM accrue.closes WHERE period = '2026-07'")" \
        '6|{"JPY": 250000}'
    assert_eq "$(q "SELECT partner_id || '=' || sum(amount_minor) FROM accrue.statement_lines
                    WHERE period = '2026-07' GROUP BY partner_id ORDER BY partner_id" |
        tr '\n' ' ')" \
        "P1=230000 P2=20000 " "per-partner totals of the July statement (commissions.md)"
    acc "$W" append "$WORKED/late.jsonl"
    sink "$W"
    assert_exit 0
    expect_stdout_contains "mirrored 2 events (seq 9..10)"
    assert_eq "$(q "SELECT refunded_minor || '/' || refunds FROM accrue.sales WHERE sale_id = 'S1'")" \
        "100000/1"
    assert_eq "$(q "SELECT seq FROM accrue.sink_position")" 10
    acc "$W" payout close 2026-08
    assert_exit 0
    sink "$W"
    assert_exit 0
    checked "$W" accrue
    # who appended each event and who closed each period (events.md `actor`)
    assert_eq "$(q "SELECT string_agg(DISTINCT actor, ',') FROM accrue.events")" "$ME"
    assert_eq "$(q "SELECT count(*) FROM accrue.closes c JOIN accrue.events e ON e.seq = c.seq
                    WHERE e.actor = '$ME'")" 2 "closes with their closer"
}

# A mirror made before the actor existed (its events table lacks the column) gains it on the
# next run: rows already there keep NULL (they were stored without one), new rows carry it.
case_old_mirror_gains_the_actor() {
    local l
    l=$(new_ledger --period month --utc-offset +09:00)
    acc "$l" append "$WORKED/events.jsonl"
    sink "$l" --schema old
    assert_exit 0
    q "ALTER TABLE old.events DROP COLUMN actor" >/dev/null
    acc "$l" append "$WORKED/late.jsonl"
    sink "$l" --schema old
    assert_exit 0
    expect_stdout_contains "mirrored 2 events (seq 8..9)"
    assert_eq "$(q "SELECT count(*) FILTER (WHERE actor IS NULL) || '/' ||
                    count(*) FILTER (WHERE actor = '$ME') FROM old.events")" "7/2"
}

# A reporting team's own columns on the sink's tables are kept when the sink can leave them
# out (nullable, or with a default); a NOT NULL column without a default is refused by name.
case_own_columns_kept() {
    local l
    l=$(new_ledger --period month --utc-offset +09:00)
    acc "$l" append "$WORKED/events.jsonl"
    sink "$l" --schema cols
    assert_exit 0
    q "ALTER TABLE cols.sales ADD COLUMN note text;
       ALTER TABLE cols.sales ADD COLUMN seen boolean NOT NULL DEFAULT false;
       UPDATE cols.sales SET note = 'checked'" >/dev/null
    acc "$l" append "$WORKED/late.jsonl"
    sink "$l" --schema cols
    assert_exit 0
    expect_stdout_contains "mirrored 2 events (seq 8..9)"
    assert_eq "$(q "SELECT count(*) FILTER (WHERE note = 'checked') || '/' ||
                    count(*) FILTER (WHERE note IS NULL AND NOT seen) FROM cols.sales")" "3/2" \
        "the team's column kept, the new rows' left to its default"
    q "ALTER TABLE cols.deals ADD COLUMN owner text NOT NULL" >/dev/null
    sink "$l" --schema cols
    assert_exit 1
    expect_stderr_contains "cols.deals exists with another definition (column owner text is NOT NULL without a default"
}

# Two first runs at once on a schema that does not exist yet take turns: both succeed (one
# failed on pg_namespace's unique index as both created the schema).
case_two_first_runs() {
    local l p1 p2 rc1 rc2
    l=$(new_ledger --period month --utc-offset +09:00)
    acc "$l" append "$WORKED/events.jsonl"
    "$ACCRUE" --ledger "$l" sink postgres --dsn "$PG_DSN" --schema twin >"$TMP/t1.out" 2>&1 &
    p1=$!
    "$ACCRUE" --ledger "$l" sink postgres --dsn "$PG_DSN" --schema twin >"$TMP/t2.out" 2>&1 &
    p2=$!
    wait "$p1"
    rc1=$?
    wait "$p2"
    rc2=$?
    assert_eq "$rc1/$rc2" "0/0" "two first runs: $(cat "$TMP/t1.out" "$TMP/t2.out" | head -c 400)"
    assert_eq "$(q "SELECT count(*) FROM twin.events")" "$("$ACCRUE" --ledger "$l" log | wc -l | tr -d ' ')"
    # two sinks taking turns event by event: each summary counts its own events, and never
    # claims a range (seq A..B) that the other filled in part
    "$ACCRUE" --ledger "$l" sink postgres --dsn "$PG_DSN" --schema twin2 --batch-events 1 \
        >"$TMP/t3.out" 2>&1 &
    p1=$!
    "$ACCRUE" --ledger "$l" sink postgres --dsn "$PG_DSN" --schema twin2 --batch-events 1 \
        >"$TMP/t4.out" 2>&1 &
    p2=$!
    wait "$p1" "$p2"
    local sum
    sum=$(cat "$TMP/t3.out" "$TMP/t4.out" | sed -n 's/^mirrored \([0-9]*\) events.*/\1/p' |
        awk '{ s += $1 } END { print s + 0 }')
    assert_eq "$sum" 7 "events the two summaries count: $(cat "$TMP/t3.out" "$TMP/t4.out")"
    if cat "$TMP/t3.out" "$TMP/t4.out" | sed -n 's/^mirrored \([0-9]*\) events (seq \([0-9]*\)\.\.\([0-9]*\)).*/\1 \2 \3/p' |
        awk '$1 != $3 - $2 + 1 { bad = 1 } END { exit !bad }'; then
        fail "a summary's range is not its count: $(cat "$TMP/t3.out" "$TMP/t4.out")"
    fi
}

# A mirror missing a table its position covers (dropped by hand) is refused, not refilled
# with an empty table under a position that says its rows are in.
case_missing_table_refused() {
    local l
    l=$(new_ledger --period month --utc-offset +09:00)
    acc "$l" append "$WORKED/events.jsonl"
    sink "$l" --schema holes
    assert_exit 0
    q "DROP TABLE holes.partners" >/dev/null
    sink "$l" --schema holes
    assert_exit 1
    expect_stderr_contains "has no table partners"
    assert_eq "$(q "SELECT count(*) FROM pg_tables WHERE schemaname = 'holes' AND tablename = 'partners'")" \
        "0" "nothing created"
    # the position itself dropped: refused by name too (it failed on a duplicate key)
    sink "$l" --schema holes2
    assert_exit 0
    q "DROP TABLE holes2.sink_position" >/dev/null
    sink "$l" --schema holes2
    assert_exit 1
    expect_stderr_contains "holds mirrored rows but has no table sink_position"
}

# A row of events deleted or added by hand: the sink writes only after its position, so it
# would never refill the hole. Refused at start, naming the first seq missing, and nothing
# written; a whole mirror is untouched by the check.
case_edited_events_refused() {
    local l head
    l=$(new_ledger --period month --utc-offset +09:00)
    acc "$l" append "$WORKED/events.jsonl"
    head=$("$ACCRUE" --ledger "$l" stats | sed -nE 's/^head seq +([0-9]+).*/\1/p')
    sink "$l" --schema edited
    assert_exit 0
    q "DELETE FROM edited.events WHERE seq = 3" >/dev/null
    sink "$l" --schema edited
    assert_exit 1
    expect_stderr_contains "first missing: 3"
    expect_stderr_contains "deleted or added outside the sink"
    assert_eq "$(q "SELECT seq FROM edited.sink_position")" "$head" "the position did not move"
    assert_eq "$(q "SELECT count(*) FROM edited.events")" "$((head - 1))" "nothing written"
    # put back as it was (from a second mirror of the same ledger): accepted again
    sink "$l" --schema edited2
    assert_exit 0
    q "INSERT INTO edited.events SELECT * FROM edited2.events WHERE seq = 3" >/dev/null
    sink "$l" --schema edited
    assert_exit 0
    # a row added beyond the position
    sink "$l" --schema edited3
    assert_exit 0
    q "INSERT INTO edited3.events SELECT seq + 1000, id || '-x', type, at, recorded_at, stream, version, hash, data, mirrored_at, actor FROM edited3.events WHERE seq = 1" >/dev/null
    sink "$l" --schema edited3
    assert_exit 1
    expect_stderr_contains "1 rows outside them"
}

# certified_on walks from the subject's start (program.md): a training dated before the
# registration certifies from the registration. A mirror filled by an earlier release (rows
# computed by other rules, no rules comment) has every onboarding row recomputed once, when
# the next sink opens it, even with no new event.
case_onboarding_rules_upgrade() {
    local l
    l=$(new_ledger --period month --utc-offset +09:00)
    printf '%s\n' \
        '{"id":"r1","type":"partner.registered","at":"2026-05-10T00:00:00Z","data":{"partner_id":"P1","name":"One","kind":"reseller","tier":"gold","plan_id":"std","currency":"JPY"}}' \
        '{"id":"t1","type":"training.completed","at":"2026-05-05T00:00:00Z","data":{"partner_id":"P1","module":"m1"}}' \
        >"$TMP/early.jsonl"
    acc "$l" append "$TMP/early.jsonl"
    assert_exit 0
    sink "$l" --schema rules
    assert_exit 0
    assert_eq "$(q "SELECT certified_on FROM rules.onboarding WHERE rep_id IS NULL")" "2026-05-10"
    acc "$l" onboarding --partner P1 --format json
    expect_stdout_contains '"certified_on":"2026-05-10"'
    q "UPDATE rules.onboarding SET certified_on = '2026-05-05'; COMMENT ON TABLE rules.onboarding IS NULL" >/dev/null
    sink "$l" --schema rules
    assert_exit 0
    assert_eq "$(q "SELECT certified_on FROM rules.onboarding WHERE rep_id IS NULL")" "2026-05-10" \
        "an earlier release's row, recomputed"
}

# Every ```sql block of docs/reporting.md runs on the worked example's mirror; the ones with a
# known answer give it (statement-2026-07.csv and statement-2026-08.csv of the worked example).
case_docs_queries_run() {
    local n=0 f
    awk -v dir="$TMP" '/^```sql$/ { n++; f = dir "/doc" n ".sql"; next } /^```$/ { f = ""; next }
                       f != "" { print > f }' "$ROOT/docs/reporting.md"
    for f in "$TMP"/doc*.sql; do
        n=$((n + 1))
        psql_ -f "$f" >"$f.out" 2>&1 || fail "docs/reporting.md query $f fails: $(head -5 "$f.out")"
    done
    [ "$n" -ge 5 ] || fail "only $n SQL examples found in docs/reporting.md"
    # commission per partner per quarter: July and August closes, both in 2026-Q3
    assert_eq "$(tr '\n' ' ' <"$TMP/doc2.sql.out")" "P1|JPY|2026-Q3|245000|6 P2|JPY|2026-Q3|60000|3 "
    # prior-period corrections: S4 (late July sale) and its new-customer bonus, paid in August
    assert_eq "$(tr '\n' ' ' <"$TMP/doc3.sql.out")" \
        "2026-08|2026-07|P2|sale|S4|30000|JPY 2026-08|2026-07|P2|new_customer_bonus|S4|10000|JPY "
    # P1's statement history
    assert_eq "$(cut -d'|' -f1,4- "$TMP/doc4.sql.out" | tr '\n' ' ')" "2026-07|230000|5|0 2026-08|15000|1|0 "
}

case_rerun_is_a_no_op() {
    local before
    before=$(q "SELECT count(*), max(mirrored_at) FROM accrue.events")
    sink "$W"
    assert_exit 0
    expect_stdout_contains "mirrored 0 events"
    assert_eq "$(q "SELECT count(*), max(mirrored_at) FROM accrue.events")" "$before"
}

case_types_are_exact() {
    local t
    t=$(q "SELECT table_name || '.' || column_name || ':' || data_type FROM information_schema.columns
           WHERE table_schema = 'accrue' AND (column_name LIKE '%_minor' OR column_name IN
           ('at', 'data', 'totals')) ORDER BY 1" | tr '\n' ' ')
    case $t in *double* | *numeric* | *real* | *"without time zone"*) fail "inexact types: $t" ;; esac
    case $t in *"sales.amount_minor:bigint"*"statement_lines.amount_minor:bigint"*) ;;
    *) fail "money columns are not bigint: $t" ;; esac
    case $t in *"events.at:timestamp with time zone"*"events.data:jsonb"*) ;;
    *) fail "events.at/data types: $t" ;; esac
}

# ---- a generated ledger, with updates between sink runs ---------------------------------

G=$(new_ledger --period month --utc-offset +09:00)
"$GEN" --partners 30 --sales 2000 --seed 11 --months 3 >"$TMP/gen.jsonl"

cat >"$TMP/extra1.jsonl" <<'EOF'
{"id":"x-u1","type":"partner.updated","at":"2026-05-01T00:00:00Z","data":{"partner_id":"P000001","tier":"platinum"}}
{"id":"x-pl","type":"pipeline.defined","at":"2026-05-01T00:00:00Z","data":{"stages":[{"name":"lead","exit_requires":[]},{"name":"demo","exit_requires":["rep"]},{"name":"contract","exit_requires":[]}]}}
{"id":"x-d1","type":"deal.registered","at":"2026-05-03T00:00:00Z","data":{"deal_id":"XD1","partner_id":"P000001","customer_id":"CX1","amount_minor":500000,"currency":"JPY"}}
{"id":"x-d2","type":"deal.registered","at":"2026-05-03T00:00:00Z","data":{"deal_id":"XD2","partner_id":"P000001","customer_id":"CX2","currency":"JPY","name":"tab\there, back\\slash"}}
{"id":"x-t0","type":"training.completed","at":"2026-01-20T00:00:00Z","data":{"partner_id":"P000003","module":"onboarding"}}
{"id":"x-o1","type":"onboarding.defined","at":"2026-02-01T00:00:00Z","data":{"modules":["onboarding","security"]}}
EOF
cat >"$TMP/extra2.jsonl" <<'EOF'
{"id":"x-u2","type":"partner.updated","at":"2026-04-01T00:00:00Z","data":{"partner_id":"P000001","tier":"bronze","region":"apac"}}
{"id":"x-u3","type":"partner.updated","at":"2026-05-02T00:00:00Z","data":{"partner_id":"P000002","name":"Renamed \"two\"\nline"}}
{"id":"x-s1","type":"partner.status_changed","at":"2026-05-02T00:00:00Z","data":{"partner_id":"P000004","status":"suspended","reason":"audit"}}
{"id":"x-m1","type":"deal.stage_changed","at":"2026-05-04T00:00:00Z","data":{"deal_id":"XD1","stage":"demo","rep_id":"R1.1"}}
{"id":"x-m2","type":"deal.stage_changed","at":"2026-05-09T00:00:00Z","data":{"deal_id":"XD1","stage":"demo","amount_minor":650000}}
{"id":"x-m3","type":"deal.stage_changed","at":"2026-05-10T00:00:00Z","data":{"deal_id":"XD2","stage":"lead","expected_close":"2026-09-30"}}
{"id":"x-c2","type":"deal.closed","at":"2026-05-11T00:00:00Z","data":{"deal_id":"XD2","outcome":"lost","reason":"budget"}}
{"id":"x-t1","type":"training.completed","at":"2026-05-12T00:00:00Z","data":{"partner_id":"P000001","rep_id":"R1.1","module":"sink-101"}}
{"id":"x-o2","type":"onboarding.defined","at":"2026-03-01T00:00:00Z","data":{"modules":["onboarding","sink-101"]}}
{"id":"x-t2","type":"training.completed","at":"2026-03-05T00:00:00Z","data":{"partner_id":"P000003","module":"sink-101"}}
{"id":"x-r9","type":"partner.registered","at":"2026-05-20T00:00:00Z","data":{"partner_id":"P000099","name":"Late","kind":"referral","tier":"silver","plan_id":"std","currency":"JPY"}}
{"id":"x-t9a","type":"training.completed","at":"2026-05-10T00:00:00Z","data":{"partner_id":"P000099","module":"onboarding"}}
{"id":"x-t9b","type":"training.completed","at":"2026-05-15T00:00:00Z","data":{"partner_id":"P000099","module":"sink-101"}}
{"id":"x-u9","type":"partner.updated","at":"2026-01-01T00:00:00Z","data":{"partner_id":"P000099","tier":"gold","region":"emea"}}
{"id":"x-u4","type":"partner.updated","at":"2020-01-01T00:00:00Z","data":{"partner_id":"P000004","name":"Four, renamed before its registration"}}
EOF

case_generated_ledger() {
    acc "$G" append "$TMP/gen.jsonl"
    assert_exit 0
    acc "$G" payout close 2026-01
    assert_exit 0
    acc "$G" payout close 2026-02
    assert_exit 0
    acc "$G" append "$TMP/extra1.jsonl"
    assert_exit 0
    # many small transactions: rows of earlier transactions are patched, not rewritten
    sink "$G" --schema small --batch-events 97
    assert_exit 0
    sink "$G" --schema one
    assert_exit 0
    acc "$G" append "$TMP/extra2.jsonl"
    assert_exit 0
    sink "$G" --schema small --batch-events 3
    assert_exit 0
    sink "$G" --schema one
    assert_exit 0
    checked "$G" small
    same_tables small one
    # the back-dated tier (at 04-01) lost to the later one; its region (no earlier value) won
    assert_eq "$(q "SELECT tier || ',' || region FROM small.partners WHERE partner_id = 'P000001'")" \
        "platinum,apac"
    assert_eq "$(q "SELECT stage || ',' || amount_minor || ',' || rep_id || ',' || stage_entered_at
                    FROM small.deals WHERE deal_id = 'XD1'")" \
        "demo,650000,R1.1,2026-05-04 00:00:00+00" "a move to the same stage keeps its entry time"
    # program.md: under the backdated lists, P000003 (certified at registration, no list then;
    # onboarding done on 01-20, by no rep) lost its certification on 02-01 (security missing),
    # stayed uncertified under the 03-01 list until sink-101 on 03-05. Its reps completed
    # neither module themselves: certified at their rep.added (no list), not at the end, no date
    assert_eq "$(q "SELECT coalesce(rep_id, '-') || ':' || certified || ':' ||
                    coalesce(certified_on::text, '') || ':' ||
                    array_to_string(missing, '+') FROM small.onboarding
                    WHERE partner_id = 'P000003' ORDER BY rep_id NULLS FIRST" | tr '\n' ' ')" \
        "-:true:2026-03-05: R3.1:false::onboarding+sink-101 R3.2:false::onboarding+sink-101 " "onboarding of P000003 after backdated lists"
    # P000099 completed the list in force (03-01) on 05-15 (local, +09:00), before its
    # registration on 05-20: certified from 05-15, the training that completed it
    assert_eq "$(q "SELECT certified || ':' || certified_on FROM small.onboarding
                    WHERE partner_id = 'P000099' AND rep_id IS NULL")" "true:2026-05-15" \
        "certified_on from a training before the registration"
    # program.md: the registration is the base every update applies to, whatever its `at`:
    # a new row (P000099) and a row of an earlier transaction (P000004) alike
    assert_eq "$(q "SELECT tier || ',' || region FROM small.partners WHERE partner_id = 'P000099'")" \
        "gold,emea" "an update dated before its partner's registration"
    assert_eq "$(q "SELECT name FROM small.partners WHERE partner_id = 'P000004'")" \
        "Four, renamed before its registration" "a patch dated before the registration"
}

# ---- follow mode, kill -9, PostgreSQL restart ---------------------------------------------

K=$(new_ledger --period month --utc-offset +09:00)
"$GEN" --partners 40 --sales $((SINK_KILLS * 1000 + 3000)) --seed 5 --months 4 >"$TMP/big.jsonl"
split -l 6000 -d -a 3 "$TMP/big.jsonl" "$TMP/part."

# wait_position SCHEMA SEQ SECONDS: true once sink_position reaches SEQ.
wait_position() {
    local i
    for i in $(seq $(($3 * 20))); do
        [ "$(psql_ -c "SELECT seq FROM $1.sink_position" 2>/dev/null)" = "$2" ] && return 0
        sleep 0.05
    done
    return 1
}

ledger_head() { "$ACCRUE" --ledger "$1" stats | sed -n 's/^head seq *//p'; }

# The ledger grows part by part while the sink is killed: whenever the mirror has caught up,
# the next part is appended (and, half way, January is closed), so most kills land mid-copy.
# Every other kill comes at a random instant; the others once the position has moved (a
# fixed delay alone can end before a slow start, or after a fast copy).
case_kill_9_at_random_instants() {
    local parts=("$TMP"/part.*) next=0 head=0 k pid pos=0 prev=0 moved=0 t
    for k in $(seq "$SINK_KILLS"); do
        if [ "$pos" -eq "$head" ] && [ "$next" -lt ${#parts[@]} ]; then
            acc "$K" append "${parts[$next]}"
            assert_exit 0
            next=$((next + 1))
            [ "$next" -ne $(((${#parts[@]} + 1) / 2)) ] || acc "$K" payout close 2026-01
            head=$(ledger_head "$K")
        fi
        "$ACCRUE" --ledger "$K" sink postgres --dsn "$PG_DSN" --schema kill --batch-events 20 \
            >/dev/null 2>"$TMP/kill.err" &
        pid=$!
        if [ $((k % 2)) -eq 1 ]; then
            # every other kill once the position moved: mid-copy, however slow the start
            for _ in $(seq 1 1200); do
                t=$(psql_ -c "SELECT seq FROM kill.sink_position" 2>/dev/null)
                [ "${t:-0}" -gt "$prev" ] && break
                kill -0 "$pid" 2>/dev/null || break
                sleep 0.05
            done
        else
            t=$(awk -v r=$RANDOM 'BEGIN { printf "%.3f", 0.02 + (r % 600) / 1000 }')
            sleep "$t"
        fi
        kill -9 "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
        pos=$(psql_ -c "SELECT seq FROM kill.sink_position" 2>/dev/null)
        pos=${pos:-0}
        [ "$pos" -ge "$prev" ] || fail "position went back from $prev to $pos"
        [ "$pos" -eq "$prev" ] || [ "$pos" -eq "$head" ] || moved=$((moved + 1))
        prev=$pos
        [ "$pos" -eq 0 ] || mirrored_prefix "$K" kill
    done
    echo "    $SINK_KILLS kills; $moved of them left the mirror part way (position $pos of $head)" >&2
    [ "$moved" -ge 1 ] || fail "no kill landed in the middle of a catch-up"
    while [ "$next" -lt ${#parts[@]} ]; do
        acc "$K" append "${parts[$next]}"
        next=$((next + 1))
    done
    acc "$K" payout close 2026-02
    assert_exit 0
    sink "$K" --schema kill
    assert_exit 0
    checked "$K" kill
}

case_follow_and_postgres_restart() {
    local head start now lag n1 n2
    n1=$(wc -l <"$TMP/extra1.jsonl")
    n2=$(wc -l <"$TMP/extra2.jsonl")
    "$ACCRUE" --ledger "$K" sink postgres --dsn "$PG_DSN" --schema kill --follow \
        >"$TMP/follow.out" 2>"$TMP/follow.err" &
    FOLLOW_PID=$!
    head=$(ledger_head "$K")
    wait_position kill "$head" 30 || fail "the follower did not reach $head"
    # a new commit appears in PostgreSQL (1 s is the goal: measured by make bench)
    start=$(date +%s%N)
    acc "$K" append "$TMP/extra1.jsonl"
    assert_exit 0
    wait_position kill $((head + n1)) 10 || fail "the follower did not mirror the new commit"
    lag=$((($(date +%s%N) - start) / 1000000))
    echo "    follow: a $n1-event commit mirrored in $lag ms" >&2
    # PostgreSQL stops at once (immediate: it warns its clients, then crash recovery at the
    # start) and restarts while commits keep coming
    pg_ctl_ -m immediate -w -s stop >/dev/null 2>&1
    pg_server_start || fail "PostgreSQL did not restart"
    acc "$K" append "$TMP/extra2.jsonl"
    assert_exit 0
    wait_position kill $((head + n1 + n2)) 60 || fail "the follower did not resume after the restart"
    kill -TERM "$FOLLOW_PID"
    wait "$FOLLOW_PID"
    local rc=$?
    FOLLOW_PID=
    [ "$rc" -eq 0 ] || fail "the follower exited $rc after SIGTERM: $(tail -3 "$TMP/follow.err")"
    grep -q "retrying in" "$TMP/follow.err" || fail "no retry message: $(cat "$TMP/follow.err")"
    grep -q "PostgreSQL is back" "$TMP/follow.err" || fail "no resume message"
    # every line is ours (cli.md: accrue: <code>: ...): no raw libpq notice such as
    # "WARNING:  terminating connection due to ... shutdown"
    if grep -v '^accrue' "$TMP/follow.err" | grep -q .; then
        fail "lines not in accrue's form: $(grep -v '^accrue' "$TMP/follow.err" | head -3)"
    fi
    checked "$K" kill
}

# PostgreSQL stopped at once (immediate: it warns its clients, then recovers at the start)
# in the middle of a catch-up of small transactions: the sink says so in its own form (no raw
# libpq "WARNING:" line), retries, and the mirror ends whole. A COPY whose server vanished was
# sometimes taken for a plain error, exit 1, when libpq saw the close only after the result.
case_immediate_stop_mid_catch_up() {
    local head pid i
    head=$(ledger_head "$K")
    "$ACCRUE" --ledger "$K" sink postgres --dsn "$PG_DSN" --schema imm --batch-events 200 \
        >"$TMP/imm.out" 2>"$TMP/imm.err" &
    pid=$!
    for i in $(seq 200); do
        [ "$(psql_ -c "SELECT seq FROM imm.sink_position" 2>/dev/null || echo 0)" -ge 1000 ] 2>/dev/null && break
        sleep 0.02
    done
    pg_ctl_ -m immediate -w -s stop >/dev/null 2>&1
    sleep 0.5
    pg_server_start || fail "PostgreSQL did not restart"
    wait "$pid"
    RC=$?
    ERR=$(cat "$TMP/imm.err")
    assert_exit 0 "the catch-up across an immediate stop"
    if grep -v '^accrue' "$TMP/imm.err" | grep -q .; then
        fail "lines not in accrue's form: $(grep -v '^accrue' "$TMP/imm.err" | head -3)"
    fi
    assert_eq "$(psql_ -c "SELECT seq FROM imm.sink_position")" "$head" "position after the stop"
    checked "$K" imm --quick
}

# ---- faults: each a clear message, a non-zero exit, nothing half-applied -------------------

case_bad_dsn() {
    acc "$W" sink postgres --dsn "nonsense"
    assert_exit 2
    expect_stderr_contains "--dsn does not parse"
    acc "$W" sink postgres --dsn "postgresql://[bad"
    assert_exit 2
    acc "$W" sink postgres --dsn "host=$PG_DIR port=$PG_PORT user=sink dbname=nope"
    assert_exit 1
    expect_stderr_contains "cannot connect to PostgreSQL"
    expect_stderr_contains 'database "nope" does not exist'
    acc "$W" sink postgres
    assert_exit 2
    acc "$W" sink postgres --dsn "$PG_DSN" --schema 'Bad;drop'
    assert_exit 2
}

case_missing_server() {
    local port=$((PG_PORT + 1))
    acc "$W" sink postgres --dsn "host=$PG_DIR port=$port user=sink dbname=bi"
    assert_exit 1
    expect_stderr_contains "io_error: cannot connect to PostgreSQL"
    acc "$W" sink postgres --dsn "host=$PG_DIR port=$port user=sink dbname=bi" --follow
    assert_exit 1
}

case_schema_of_someone_else() {
    q "CREATE ROLE other; CREATE SCHEMA theirs AUTHORIZATION other" >/dev/null
    sink "$W" --schema theirs
    assert_exit 1
    expect_stderr_contains "schema theirs belongs to role other"
    assert_eq "$(q "SELECT count(*) FROM pg_tables WHERE schemaname = 'theirs'")" 0 \
        "tables created in someone else's schema"
    # a schema the sink may write, holding a table of the same name that is not the sink's
    q "CREATE SCHEMA alien AUTHORIZATION sink; CREATE TABLE alien.events (seq int, note text);
       ALTER TABLE alien.events OWNER TO sink" >/dev/null
    sink "$W" --schema alien
    assert_exit 1
    expect_stderr_contains "alien.events exists with another definition"
    assert_eq "$(q "SELECT count(*) FROM pg_tables WHERE schemaname = 'alien'")" 1 \
        "tables created next to a foreign one"
}

case_another_ledger_is_chain_broken() {
    local other
    other=$(new_ledger --period month --utc-offset +09:00)
    acc "$other" append "$WORKED/events.jsonl"
    sink "$other" # into schema accrue, which mirrors $W
    assert_exit 5
    expect_stderr_contains "chain_broken"
    expect_stderr_contains "not this ledger"
}

case_rewritten_history_is_chain_broken() {
    # the same ledger id, a shorter history (a restored backup): PostgreSQL is beyond its head
    local copy="$TMP/restored" before
    acc "$W" backup "$copy"
    assert_exit 0
    acc "$W" append "$TMP/extra-w.jsonl"
    sink "$W"
    assert_exit 0
    before=$(q "SELECT seq || hash FROM accrue.sink_position")
    sink "$copy"
    assert_exit 5
    expect_stderr_contains "beyond this ledger's head"
    # a position whose hash differs from the ledger's at that seq
    q "UPDATE accrue.sink_position SET hash = repeat('0', 32)" >/dev/null
    sink "$W"
    assert_exit 5
    expect_stderr_contains "chain hash at seq"
    q "UPDATE accrue.sink_position SET hash = substr('$before', length('$before') - 31)" >/dev/null
    assert_eq "$(q "SELECT seq || hash FROM accrue.sink_position")" "$before"
    checked "$W" accrue
}
cat >"$TMP/extra-w.jsonl" <<'EOF'
{"id":"w-a1","type":"adjustment.recorded","at":"2026-08-10T00:00:00Z","data":{"partner_id":"P2","amount_minor":-500,"currency":"JPY","reason":"correction"}}
EOF

case_postgres_disk_full() {
    local small="$PG_DIR/small"
    mkdir -p "$small"
    if ! mount -t tmpfs -o size=2m tmpfs "$small" 2>/dev/null; then
        skip_case case_postgres_disk_full "cannot mount a small tmpfs here (not root?)"
        return
    fi
    [ ${#PG_AS[@]} -eq 0 ] || chown postgres "$small"
    psql_ -c "CREATE TABLESPACE small LOCATION '$small'" \
        -c "GRANT CREATE ON TABLESPACE small TO sink" \
        -c "ALTER ROLE sink SET default_tablespace = small" >/dev/null ||
        fail "cannot create the small tablespace" 
    sink "$K" --schema diskfull --batch-events 2000
    assert_exit 1
    expect_stderr_contains "io_error: PostgreSQL"
    case $ERR in *"No space left on device"* | *"could not extend"* | *"53100"*) ;;
    *) fail "no disk-full message: ${ERR:0:500}" ;; esac
    local pos
    pos=$(q "SELECT seq FROM diskfull.sink_position")
    echo "    disk full at position ${pos:-none}" >&2
    [ -z "$pos" ] || mirrored_prefix "$K" diskfull
    # room again: the same command resumes and completes
    mount -o remount,size=512m "$small"
    sink "$K" --schema diskfull --batch-events 20000
    assert_exit 0
    same_tables diskfull kill # kill was checked against the ledger by the cases above
    q "ALTER ROLE sink RESET default_tablespace" >/dev/null
}

# PostgreSQL 15 compiles a plan costed above jit_above_cost (JIT is on by default, and on
# in this cluster as in production): the onboarding recompute's was, on tables of a few rows,
# and compiling it took 2-4 s in every transaction that touches onboarding, where
# reporting.md wants a followed commit applied within 1 s. The sink turns JIT off for its
# session: none of its statements may have compiled a function (pg_stat_statements).
case_no_jit_in_the_sink_session() {
    printf '%s\n' '{"id":"x-jit","type":"training.completed","at":"2026-05-20T00:00:00Z","data":{"partner_id":"P000001","module":"jit-1"}}' \
        >"$TMP/jit.jsonl"
    acc "$K" append "$TMP/jit.jsonl"
    assert_exit 0
    sink "$K" --schema kill
    assert_exit 0
    local got
    got=$(psql_ -c "SELECT count(*) FILTER (WHERE s.query LIKE '%onboarding%'), \
        coalesce(sum(s.jit_functions), 0) FROM pg_stat_statements s \
        JOIN pg_roles r ON r.oid = s.userid WHERE r.rolname = 'sink'")
    [ "${got%|*}" -gt 0 ] || fail "no onboarding statement of the sink was recorded: $got"
    assert_eq "${got#*|}" 0 "functions JIT-compiled for the sink's statements"
}

run_case case_worked_example
run_case case_docs_queries_run
run_case case_rerun_is_a_no_op
run_case case_types_are_exact
run_case case_old_mirror_gains_the_actor
run_case case_own_columns_kept
run_case case_onboarding_rules_upgrade
run_case case_missing_table_refused
run_case case_edited_events_refused
run_case case_two_first_runs
run_case case_generated_ledger
run_case case_kill_9_at_random_instants
run_case case_follow_and_postgres_restart
run_case case_no_jit_in_the_sink_session
run_case case_immediate_stop_mid_catch_up
run_case case_bad_dsn
run_case case_missing_server
run_case case_schema_of_someone_else
run_case case_another_ledger_is_chain_broken
run_case case_rewritten_history_is_chain_broken
run_case case_postgres_disk_full
finish
