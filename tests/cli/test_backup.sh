#!/usr/bin/env bash
# test_backup.sh - backup of a live ledger: another process appends batches
# while backups are taken; every copy verifies, and holds a prefix of the
# final log.
. "$(dirname "$0")/lib.sh"

L=$(new_ledger)

gen_batch() { # K: 500 sales of batch K
    awk -v k="$1" 'BEGIN {
        for (i = 1; i <= 500; i++)
            printf "{\"id\":\"s-%d-%d\",\"type\":\"sale.recorded\",\"at\":\"2026-07-01T00:00:00Z\",\"data\":{\"sale_id\":\"S%d-%d\",\"partner_id\":\"P1\",\"customer_id\":\"C%d\",\"product\":\"cloud\",\"amount_minor\":%d,\"currency\":\"USD\"}}\n", k, i, k, i, i, 100 + i
    }'
}

case_backup_while_appending() {
    echo '{"id":"p-1","type":"partner.registered","at":"2026-06-01T00:00:00Z","data":{"partner_id":"P1","name":"One","kind":"reseller","tier":"gold","plan_id":"standard","currency":"USD"}}' |
        "$ACCRUE" --ledger "$L" append - >/dev/null || fail "seed append"
    for k in $(seq 1 20); do gen_batch "$k" >"$TMP/b$k.jsonl"; done
    (
        for k in $(seq 1 20); do
            "$ACCRUE" --ledger "$L" append "$TMP/b$k.jsonl" >/dev/null || exit 1
        done
    ) &
    local writer=$! i
    for i in 1 2 3; do
        acc "$L" backup "$TMP/copy$i"
        assert_exit 0
    done
    wait "$writer" || fail "the concurrent appends failed"
    "$ACCRUE" --ledger "$L" log >"$TMP/final.jsonl"
    for i in 1 2 3; do
        acc "$TMP/copy$i" verify
        assert_exit 0 "verify of copy $i"
        "$ACCRUE" --ledger "$TMP/copy$i" log >"$TMP/copy$i.jsonl"
        local n
        n=$(wc -l <"$TMP/copy$i.jsonl")
        [ "$n" -ge 1 ] || fail "copy $i is empty"
        head -n "$n" "$TMP/final.jsonl" | cmp -s - "$TMP/copy$i.jsonl" ||
            fail "copy $i is not a prefix of the final log"
    done
}

case_backup_refuses_nonempty() {
    mkdir -p "$TMP/full"
    echo x >"$TMP/full/x"
    acc "$L" backup "$TMP/full"
    [ "$RC" -ne 0 ] || fail "backup into a non-empty directory succeeded"
}

run_case case_backup_while_appending
run_case case_backup_refuses_nonempty
finish
