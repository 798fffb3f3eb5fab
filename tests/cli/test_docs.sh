#!/usr/bin/env bash
# test_docs.sh - the README's commands, run as written, so the README cannot rot.
#
# The five-minute tour and the HTTP block of README.md are extracted from the README itself (the
# indented lines after "## A five-minute tour" and after "The same ledger over HTTP") and run in
# order, in one shell, from the top of the tree, on a fresh ledger. The only rewrites are the ones
# a test must make: `build/accrue` becomes the binary under test ($ACCRUE: ASan or -O2), `/tmp/`
# a private temp folder, port 8080 the port the server picked (`--listen 127.0.0.1:0`), and the
# never-ending SSE `curl -sN` gets `--max-time`. Every command must exit 0 (the feed: 0 or 28, the
# curl time-out). A line `# TEXT` under a command is output it must print: TEXT is cut at ` ... `
# and the pieces must appear in its stdout in that order.
#
# Then, the same way, the replay of docs/auditor-guide.md ("4. Replay") on the tour's ledger; the
# example events of docs/events.md, appended one by one in the order of the page, must all be
# accepted; and the plan document of docs/finance-guide.md must publish and give the worked
# example's statement.
. "$(dirname "$0")/lib.sh"

README=$ROOT/README.md
SEP=$'\x1f'

# block START_RE STOP_RE [FILE]: the indented lines (4 spaces, stripped) between the first line
# matching START_RE and the next line matching STOP_RE of FILE (default README.md).
block() {
    awk -v start="$1" -v stop="$2" '
        !on && $0 ~ start { on = 1; next }
        on && $0 ~ stop { exit }
        on && /^    / { print substr($0, 5) }' "${3:-$README}"
}

# expect_pieces TEXT OUTPUT_FILE: the pieces of TEXT (cut at " ... ") occur in the file in order.
expect_pieces() {
    local text=$1 rest piece pieces
    rest=$(cat "$2")
    text=${text//' ... '/$SEP}
    case $text in '... '*) text=$SEP${text#'... '} ;; esac
    case $text in *' ...') text=${text%' ...'}$SEP ;; esac
    IFS=$SEP read -r -a pieces <<<"$text" # (no globbing: `[{"partner_id"` is text)
    for piece in "${pieces[@]}"; do
        [ -z "$piece" ] && continue
        case $rest in
        *"$piece"*) rest=${rest#*"$piece"} ;;
        *) fail "[$CMD]: output lacks [$piece] (in order) of [$1]; stdout: $(head -c 1500 "$2")" ;;
        esac
    done
}

PORT=
# run_block FILE [DIR]: runs each command of FILE in DIR (default the top of the tree), checking
# the `#` lines under it. Besides the rewrites above, the guides' `accrue` (installed) becomes
# $ACCRUE and their `/audit/` a temp folder.
run_block() {
    local line cmd n=0 checks=0
    cd "${2:-$ROOT}" || return
    while IFS= read -r line; do
        case $line in
        '# '*)
            [ -n "$CMD" ] || { fail "expected output [$line] before any command"; continue; }
            line=${line#'# '}
            expect_pieces "${line//\/tmp\//$TMP\/}" "$TMP/doc.out"
            checks=$((checks + 1))
            continue
            ;;
        '' | '#'*) continue ;;
        esac
        # the command without its trailing comment (two or more spaces, then `# `)
        cmd=$(sed -E 's/ {2,}# .*$//' <<<"$line")
        CMD=$cmd
        cmd=${cmd//build\/accrue/\"\$ACCRUE\"}
        case $cmd in accrue\ *) cmd=\"\$ACCRUE\"${cmd#accrue} ;; esac
        cmd=${cmd//| accrue /| \"\$ACCRUE\" }
        cmd=${cmd//\/tmp\//$TMP\/}
        cmd=${cmd//\/audit\//$TMP\/audit\/}
        if [ -n "$PORT" ]; then
            cmd=${cmd//:8080/:$PORT}
        fi
        case $cmd in
        *' serve '*'&') # the port it picked is on its stderr
            cmd=${cmd//:8080/:0}
            eval "$cmd" 2>"$TMP/srv.err"
            SRV=$!
            for _ in $(seq 1 200); do
                PORT=$(grep -o 'listening on http://127.0.0.1:[0-9]*' "$TMP/srv.err" | sed 's/.*://')
                [ -n "$PORT" ] && break
                sleep 0.05
            done
            [ -n "$PORT" ] || fail "[$CMD]: the server did not start: $(head -c 600 "$TMP/srv.err")"
            n=$((n + 1))
            continue
            ;;
        'kill %1')
            eval "$cmd"
            wait "$SRV"
            RC=$?
            [ "$RC" -eq 0 ] || fail "[$CMD]: the server exited $RC: $(tail -c 600 "$TMP/srv.err")"
            if grep -qE 'Sanitizer|runtime error:' "$TMP/srv.err"; then
                fail "server sanitizer report: $(head -c 2000 "$TMP/srv.err")"
            fi
            SRV=
            n=$((n + 1))
            continue
            ;;
        'curl -sN '*) cmd="curl --max-time 2 ${cmd#curl }" ;;
        esac
        eval "$cmd" >"$TMP/doc.out" 2>"$TMP/doc.err"
        RC=$?
        n=$((n + 1))
        case $CMD in
        'curl -sN '*) [ "$RC" -eq 0 ] || [ "$RC" -eq 28 ] || fail "[$CMD]: exit $RC" ;;
        *) [ "$RC" -eq 0 ] || fail "[$CMD]: exit $RC; stderr: $(head -c 800 "$TMP/doc.err")" ;;
        esac
        if grep -qE 'Sanitizer|runtime error:' "$TMP/doc.err"; then
            fail "[$CMD]: sanitizer report: $(head -c 2000 "$TMP/doc.err")"
        fi
    done <"$1"
    echo "       $(basename "$1"): $n commands, $checks output lines checked"
    BLOCK_COMMANDS=$n
    BLOCK_CHECKS=$checks
}

# The tour: run in the test's own shell, so its `export ACCRUE_LEDGER` holds for what follows
# (the HTTP block runs on the same ledger, as the README says).
case_readme_tour() {
    block '^## A five-minute tour' '^The same ledger over HTTP' >"$TMP/tour.sh"
    CMD=
    run_block "$TMP/tour.sh"
    # the extraction itself must not rot: the tour has about 15 commands and 12 output lines
    [ "$BLOCK_COMMANDS" -ge 14 ] || fail "only $BLOCK_COMMANDS tour commands found in README.md"
    [ "$BLOCK_CHECKS" -ge 10 ] || fail "only $BLOCK_CHECKS output lines found in the tour"
    case ${ACCRUE_LEDGER:-} in "$TMP"/*) ;; *) fail "the tour's ledger is [${ACCRUE_LEDGER:-}]" ;; esac
    # what the tour's comments claim, checked once more against the hand-computed statement
    assert_file_eq "$TMP/out/statement.csv" "$WORKED/statement-2026-07.csv"
}

case_readme_http() {
    if ! command -v curl >/dev/null; then
        fail "curl is not installed"
        return
    fi
    block '^The same ledger over HTTP' '^Every rejection' >"$TMP/http.sh"
    CMD=
    PORT=
    SRV=
    run_block "$TMP/http.sh"
    [ "$BLOCK_COMMANDS" -ge 5 ] || fail "only $BLOCK_COMMANDS HTTP commands found in README.md"
    if [ -n "$SRV" ]; then # the block did not stop it
        fail "the README's HTTP block leaves the server running"
        kill -TERM "$SRV" 2>/dev/null
        wait "$SRV"
    fi
}

# docs/auditor-guide.md, "4. Replay": on the tour's ledger (still $ACCRUE_LEDGER), the log is
# replayed into a fresh ledger with the same closes and gives the same statements.
case_auditor_replay() {
    block '^## 4. Replay' '^## What the fingerprint' "$ROOT/docs/auditor-guide.md" >"$TMP/replay.sh"
    mkdir -p "$TMP/auditor" "$TMP/audit"
    CMD=
    run_block "$TMP/replay.sh" "$TMP/auditor"
    [ "$BLOCK_COMMANDS" -ge 8 ] || fail "only $BLOCK_COMMANDS replay commands found"
    [ "$BLOCK_CHECKS" -ge 2 ] || fail "only $BLOCK_CHECKS replay output lines found"
    cd "$ROOT" || return
}

# docs/events.md: every example event (not the envelope sketch), in the order of the page.
case_events_examples() {
    local l n=0 line
    l=$(new_ledger --period month --utc-offset +09:00)
    awk '/^```json/ { on = 1; next } /^```/ { on = 0 } on && /^\{"id":"/' "$ROOT/docs/events.md" |
        grep -vF '{...}' >"$TMP/examples.jsonl"
    while IFS= read -r line; do
        n=$((n + 1))
        printf '%s\n' "$line" >"$TMP/one.jsonl"
        acc "$l" append "$TMP/one.jsonl"
        assert_exit 0 "example $n (${line:0:60})"
        expect_stdout_contains "appended 1 events"
    done <"$TMP/examples.jsonl"
    [ "$n" -ge 13 ] || fail "only $n example events found in docs/events.md"
    acc "$l" verify
    assert_exit 0 "verify"
}

# docs/finance-guide.md: the plan document of step 1, published as the guide says, then a run.
case_finance_plan() {
    local l
    l=$(new_ledger --period month --utc-offset +09:00)
    awk '/^```json/ { on = 1; next } /^```/ { if (on) exit } on' "$ROOT/docs/finance-guide.md" \
        >"$TMP/standard-v1.json"
    acc "$l" plan publish "$TMP/standard-v1.json"
    assert_exit 0 "plan publish"
    expect_stdout_contains "published plan:standard:v1 (seq 1)"
    grep -v '"plan.published"' "$WORKED/events.jsonl" >"$TMP/no-plan.jsonl"
    acc "$l" append "$TMP/no-plan.jsonl"
    assert_exit 0 "append"
    acc "$l" payout run 2026-07 --out "$TMP/review/"
    assert_exit 0 "payout run"
    expect_stdout_contains "wrote $TMP/review/statement.csv and $TMP/review/summary.json"
    # the guide's plan is the worked example's: the same statement
    assert_file_eq "$TMP/review/statement.csv" "$WORKED/statement-2026-07.csv"
}

run_case case_readme_tour
run_case case_readme_http
run_case case_auditor_replay
run_case case_events_examples
run_case case_finance_plan
finish
