#!/usr/bin/env bash
# test_errors.sh - every rejection code of events.md, triggered through
# `accrue append`: the exit status of cli.md, an `accrue: <code>:` line on
# stderr, and a ledger that is byte-for-byte what it was before (the whole
# log and the stats head). Then a batch with several bad lines reports every
# one of them with its line number.
. "$(dirname "$0")/lib.sh"

L=$(new_ledger --period month --utc-offset +00:00)

PLAN='{"plan_id":"standard","version":1,"effective_from":"2026-01-01","currency":"JPY","ceiling_bp":4000,"rules":[{"match":{"tier":"gold"},"brackets":[{"from_minor":0,"rate_bp":1500},{"from_minor":1000000,"rate_bp":2500}]},{"match":{},"brackets":[{"from_minor":0,"rate_bp":1000}]}],"clawback_days":90}'

ev() { # ID TYPE AT DATA
    printf '{"id":"%s","type":"%s","at":"%s","data":%s}\n' "$1" "$2" "$3" "$4"
}

partner() { # ID PARTNER
    ev "$1" partner.registered 2026-06-01T00:00:00Z \
        "{\"partner_id\":\"$2\",\"name\":\"Partner $2\",\"kind\":\"reseller\",\"tier\":\"gold\",\"plan_id\":\"standard\",\"currency\":\"JPY\"}"
}

{
    partner b-p1 P1
    partner b-p2 P2
    partner b-p3 P3
    partner b-p4 P4
    ev b-p3s partner.status_changed 2026-06-02T00:00:00Z '{"partner_id":"P3","status":"suspended"}'
    ev b-p4o partner.status_changed 2026-06-02T00:00:00Z '{"partner_id":"P4","status":"offboarded"}'
    ev b-plan plan.published 2026-06-01T00:00:00Z "{\"plan\":$PLAN}"
    ev b-r1 rep.added 2026-06-01T00:00:00Z '{"partner_id":"P1","rep_id":"R1","name":"Rep One"}'
    ev b-d1 deal.registered 2026-06-05T00:00:00Z '{"deal_id":"D1","partner_id":"P1","customer_id":"C1","amount_minor":50000,"currency":"JPY"}'
    ev b-d2 deal.registered 2026-06-05T00:00:00Z '{"deal_id":"D2","partner_id":"P1","customer_id":"C2","amount_minor":50000,"currency":"JPY"}'
    ev b-d2c deal.closed 2026-06-06T00:00:00Z '{"deal_id":"D2","outcome":"lost"}'
    ev b-d3 deal.registered 2026-06-05T00:00:00Z '{"deal_id":"D3","partner_id":"P1","customer_id":"C3","currency":"JPY"}'
    ev s-1 sale.recorded 2026-07-02T00:00:00Z '{"sale_id":"S1","partner_id":"P1","customer_id":"C9","product":"cloud","amount_minor":1000,"currency":"JPY"}'
} >"$TMP/base.jsonl"

case_base() {
    acc "$L" append "$TMP/base.jsonl"
    assert_exit 0
    expect_stdout_contains "appended 13 events (seq 1..13)"
}

# reject CODE EXIT [append options...] < input
reject() {
    local code=$1 want=$2 before
    shift 2
    cat >"$TMP/bad.in"
    before=$(ledger_sum "$L")
    acc "$L" append "$TMP/bad.in" "$@"
    assert_exit "$want" "exit status for $code"
    expect_stderr_contains "accrue: $code:"
    assert_eq "$(ledger_sum "$L")" "$before" "ledger checksum after $code"
}

sale() { # ID SALE AMOUNT [CURRENCY] [EXTRA]
    ev "$1" sale.recorded 2026-07-05T00:00:00Z \
        "{\"sale_id\":\"$2\",\"partner_id\":\"P1\",\"customer_id\":\"C8\",\"product\":\"cloud\",\"amount_minor\":$3,\"currency\":\"${4:-JPY}\"${5:-}}"
}

case_malformed_json() { echo '{"id":"x1","type":' | reject malformed_json 3; }
case_missing_field() {
    echo '{"id":"x2","type":"sale.refunded","data":{"sale_id":"S1","amount_minor":1}}' |
        reject missing_field 3
}
case_unknown_field() { sale x3 S7 100 JPY ',"colour":"red"' | reject unknown_field 3; }
case_wrong_type() { sale x4 S7 '"100"' | reject wrong_type 3; }
case_invalid_value() {
    ev x5 partner.registered 2026-06-01T00:00:00Z \
        '{"partner_id":"P9","name":"N","kind":"wholesaler","tier":"gold","plan_id":"standard","currency":"JPY"}' |
        reject invalid_value 3
}
case_invalid_id() { sale 'bad id!' S7 100 | reject invalid_id 3; }

# The id of a close is period.closed:<period>: a client event may not take one (it used to
# be accepted, after which verify failed and the period could never close).
case_close_id_reserved() {
    ev period.closed:2026-07 training.completed 2026-07-05T00:00:00Z \
        '{"partner_id":"P1","module":"m"}' | reject invalid_id 3
    expect_stderr_contains 'field id: ids beginning with "period.closed:" are reserved'
    ev period.closedX training.completed 2026-07-05T00:00:00Z '{"partner_id":"P1","module":"m"}' \
        >"$TMP/near.in"
    acc "$L" append "$TMP/near.in"
    assert_exit 0 "an id that only looks like a close's"
    acc "$L" verify
    assert_exit 0 "verify after it"
}
case_invalid_timestamp() {
    ev x6 sale.refunded 2026-07-32T00:00:00Z '{"sale_id":"S1","amount_minor":1}' |
        reject invalid_timestamp 3
}
case_invalid_currency() { sale x7 S7 100 XYZ | reject invalid_currency 3; }
case_unknown_type() { ev x8 sale.voided 2026-07-05T00:00:00Z '{"sale_id":"S1"}' | reject unknown_type 3; }
case_forbidden_type() {
    ev period.closed:2026-07 period.closed 2026-08-01T00:00:00Z \
        '{"period":"2026-07","through_seq":1,"fingerprint":"c5e27e1ef9f0212498bfa9b06be115cd","lines":0,"totals":{}}' |
        reject forbidden_type 3
}
case_duplicate() { partner x9 P1 | reject duplicate 3; }
case_unknown_partner() {
    ev x10 partner.updated 2026-06-03T00:00:00Z '{"partner_id":"P9","tier":"silver"}' |
        reject unknown_partner 3
}
case_unknown_rep() {
    ev x11 training.completed 2026-06-03T00:00:00Z '{"partner_id":"P1","rep_id":"R9","module":"basics"}' |
        reject unknown_rep 3
}
case_unknown_deal() { ev x12 deal.closed 2026-06-07T00:00:00Z '{"deal_id":"D9","outcome":"won"}' | reject unknown_deal 3; }
case_unknown_sale() { ev x13 sale.refunded 2026-07-07T00:00:00Z '{"sale_id":"S9","amount_minor":1}' | reject unknown_sale 3; }
case_unknown_stage() {
    ev x14 deal.stage_changed 2026-06-07T00:00:00Z '{"deal_id":"D1","stage":"nowhere"}' |
        reject unknown_stage 3
}
case_partner_inactive() {
    ev x15 deal.registered 2026-06-07T00:00:00Z '{"deal_id":"D7","partner_id":"P3","customer_id":"C7","currency":"JPY"}' |
        reject partner_inactive 3
}
case_channel_conflict() {
    ev x16 deal.registered 2026-06-07T00:00:00Z '{"deal_id":"D7","partner_id":"P2","customer_id":"C1","currency":"JPY"}' |
        reject channel_conflict 3
}
case_deal_closed() {
    ev x17 deal.stage_changed 2026-06-07T00:00:00Z '{"deal_id":"D2","stage":"qualified"}' |
        reject deal_closed 3
}
case_exit_criteria_unmet() {
    ev x18 deal.stage_changed 2026-06-07T00:00:00Z '{"deal_id":"D3","stage":"qualified"}' |
        reject exit_criteria_unmet 3
}
case_invalid_transition() {
    ev x19 partner.status_changed 2026-06-07T00:00:00Z '{"partner_id":"P4","status":"active"}' |
        reject invalid_transition 3
}
case_currency_mismatch() { sale x20 S7 100 USD | reject currency_mismatch 3; }
case_over_refund() { ev x21 sale.refunded 2026-07-07T00:00:00Z '{"sale_id":"S1","amount_minor":2000}' | reject over_refund 3; }
case_invalid_plan() {
    ev x22 plan.published 2026-06-01T00:00:00Z \
        '{"plan":{"plan_id":"standard","version":2,"effective_from":"2026-01-01","currency":"JPY","ceiling_bp":4000,"rules":[]}}' |
        reject invalid_plan 3
}
case_stale_version() { ev x23 plan.published 2026-06-01T00:00:00Z "{\"plan\":$PLAN}" | reject stale_version 3; }
case_above_ceiling() {
    ev x24 plan.published 2026-06-01T00:00:00Z "{\"plan\":${PLAN/\"version\":1/\"version\":2}}" |
        sed 's/"rate_bp":2500/"rate_bp":5000/' | reject above_ceiling 3
}
case_refund_before_sale() {
    ev x25 sale.refunded 2026-07-01T00:00:00Z '{"sale_id":"S1","amount_minor":10}' |
        reject refund_before_sale 3
}
case_id_conflict() {
    ev s-1 sale.recorded 2026-07-02T00:00:00Z '{"sale_id":"S1","partner_id":"P1","customer_id":"C9","product":"cloud","amount_minor":2000,"currency":"JPY"}' |
        reject id_conflict 4
    # the same id twice in one refused batch: the first never got a seq to name
    { ev x50 training.completed 2026-07-05T00:00:00Z '{"partner_id":"P1","module":"m"}'
      ev x50 training.completed 2026-07-06T00:00:00Z '{"partner_id":"P1","module":"m"}'; } |
        reject id_conflict 4
    expect_stderr_contains "line 2: id x50: field id: event id already used by an earlier event of this batch"
}
case_version_conflict() {
    printf '%s\n' '{"id":"x26","type":"sale.recorded","at":"2026-07-05T00:00:00Z","expected_version":3,"data":{"sale_id":"S7","partner_id":"P1","customer_id":"C8","product":"cloud","amount_minor":100,"currency":"JPY"}}' |
        reject version_conflict 4
}
case_too_large() {
    local name
    name=$(printf 'n%.0s' $(seq 300))
    ev x27 partner.registered 2026-06-01T00:00:00Z \
        "{\"partner_id\":\"P9\",\"name\":\"$name\",\"kind\":\"reseller\",\"tier\":\"gold\",\"plan_id\":\"standard\",\"currency\":\"JPY\"}" |
        reject too_large 3
    # strings inside a stage list, a promotion and a plan are string fields too (events.md:
    # each breach of a limit is too_large, whatever the field's own rules)
    ev x27b pipeline.defined 2026-06-02T00:00:00Z "{\"stages\":[{\"name\":\"$name\"}]}" |
        reject too_large 3
    expect_stderr_contains "field data.stages[0].name:"
    ev x27c promotion.published 2026-06-15T00:00:00Z \
        "{\"promotion\":{\"promo_id\":\"pz\",\"plan_id\":\"standard\",\"from\":\"2026-07-01\",\"to\":\"2026-07-31\",\"rate_bp\":500,\"title\":\"$name\"}}" |
        reject too_large 3
    expect_stderr_contains "field data.promotion.title:"
    ev x27e promotion.published 2026-06-15T00:00:00Z \
        "{\"promotion\":{\"promo_id\":\"$name\",\"plan_id\":\"standard\",\"from\":\"2026-07-01\",\"to\":\"2026-07-31\",\"rate_bp\":500}}" |
        reject too_large 3
    expect_stderr_contains "field data.promotion.promo_id:"
    ev x27d plan.published 2026-06-01T00:00:00Z \
        "{\"plan\":{\"plan_id\":\"pz\",\"version\":1,\"effective_from\":\"2026-01-01\",\"currency\":\"JPY\",\"ceiling_bp\":3000,\"rules\":[{\"match\":{\"tier\":\"$name\"},\"brackets\":[{\"from_minor\":0,\"rate_bp\":1000}]}]}}" |
        reject too_large 3
    expect_stderr_contains "field data.plan.rules[0].match.tier:"
}
case_malformed_msgpack() { printf '\xc1\x81' | reject malformed_msgpack 3 --format msgpack; }
# events.md: a rejection names the event's id whenever it is readable, also for an event
# over 64 KiB and for a msgpack value that cannot be taken (a float).
case_id_named_when_readable() {
    local big
    big=$(head -c 70000 /dev/zero | tr '\0' 'x')
    ev x40 rep.added 2026-06-01T00:00:00Z "{\"partner_id\":\"P1\",\"rep_id\":\"R9\",\"name\":\"$big\"}" |
        reject too_large 3
    expect_stderr_contains "line 1: id x40:"
    # {"id":"x41","type":"rep.added","at":...,"data":{"partner_id":"P1","rep_id":"R9","name":1.5}}
    printf '\x84\xa2id\xa3x41\xa4type\xa9rep.added\xa2at\xb42026-06-01T00:00:00Z\xa4data\x83\xaapartner_id\xa2P1\xa6rep_id\xa2R9\xa4name\xcb\x3f\xf8\x00\x00\x00\x00\x00\x00' |
        reject wrong_type 3 --format msgpack
    expect_stderr_contains "line 1: id x41: field data.name:"
}

# events.md: an event's JSON is at most 64 KiB. The line's end is not the event's: a 65,536-byte
# event is taken with LF and with CRLF alike (the CR was counted, 65,537), and one byte more is
# too_large either way.
case_64_kib_with_crlf() {
    local head pad l
    head='{"id":"x42","type":"rep.added","at":"2026-06-01T00:00:00Z","data":{"partner_id":"P1","rep_id":"R42","name":"n"'
    pad=$((65536 - ${#head} - 2))
    printf '%s%*s}}\r\n' "$head" "$pad" '' >"$TMP/crlf.jsonl"
    assert_eq "$(($(wc -c <"$TMP/crlf.jsonl") - 2))" 65536 "the event's size"
    l=$(new_ledger)
    acc "$l" append "$WORKED/events.jsonl"
    acc "$l" append "$TMP/crlf.jsonl"
    assert_exit 0 "a 65,536-byte event on a CRLF line"
    printf '%s%*s}}\r\n' "$head" "$((pad + 1))" '' | reject too_large 3
    expect_stderr_contains "65537 bytes"
}

# Three stateless errors among good lines and a blank line: all reported.
case_three_bad_lines() {
    local before n
    {
        sale y1 S21 100
        echo '{"id":"y2","type":'
        echo
        sale y4 S22 100
        ev y5 sale.voided 2026-07-05T00:00:00Z '{"sale_id":"S1"}'
        sale 'y 6' S23 100
    } >"$TMP/three.jsonl"
    before=$(ledger_sum "$L")
    acc "$L" append "$TMP/three.jsonl"
    assert_exit 3
    n=$(grep -c '^accrue: ' <<<"$ERR")
    assert_eq "$n" 3 "diagnostic lines"
    expect_stderr_contains "accrue: malformed_json: line 2:"
    expect_stderr_contains "accrue: unknown_type: line 5: id y5:"
    expect_stderr_contains "accrue: invalid_id: line 6:"
    assert_eq "$(ledger_sum "$L")" "$before" "ledger checksum"
}

# Three stateful errors (found by the engine in one transaction): all reported.
case_three_stateful() {
    local before n
    {
        ev z1 partner.updated 2026-06-03T00:00:00Z '{"partner_id":"P9","tier":"silver"}'
        sale z2 S31 100
        ev z3 sale.refunded 2026-07-07T00:00:00Z '{"sale_id":"S31","amount_minor":101}'
        ev z4 sale.refunded 2026-07-07T00:00:00Z '{"sale_id":"S99","amount_minor":1}'
    } >"$TMP/three2.jsonl"
    before=$(ledger_sum "$L")
    acc "$L" append "$TMP/three2.jsonl"
    assert_exit 3
    n=$(grep -c '^accrue: ' <<<"$ERR")
    assert_eq "$n" 3 "diagnostic lines"
    expect_stderr_contains "accrue: unknown_partner: line 1: id z1:"
    expect_stderr_contains "accrue: over_refund: line 3: id z3:"
    expect_stderr_contains "accrue: unknown_sale: line 4: id z4:"
    assert_eq "$(ledger_sum "$L")" "$before" "ledger checksum"
}

# A shape error elsewhere in the batch does not hide the business-rule errors: both are
# reported, in line order (integration-guide.md shows unknown_partner at index 0 and
# invalid_timestamp at index 2 together).
case_shape_and_rule_errors() {
    local before
    {
        ev w1 partner.updated 2026-06-03T00:00:00Z '{"partner_id":"P9","tier":"silver"}'
        sale w2 S41 100
        ev w3 sale.recorded 2026-07-32T00:00:00Z '{"sale_id":"S42","partner_id":"P1","customer_id":"C8","product":"cloud","amount_minor":100,"currency":"JPY"}'
        ev w4 sale.refunded 2026-07-07T00:00:00Z '{"sale_id":"S41","amount_minor":101}'
    } >"$TMP/mixed.jsonl"
    before=$(ledger_sum "$L")
    acc "$L" append "$TMP/mixed.jsonl"
    assert_exit 3
    assert_eq "$(grep '^accrue: ' <<<"$ERR" | cut -d: -f2-3 | tr -d ' ')" \
        "$(printf 'unknown_partner:line1\ninvalid_timestamp:line3\nover_refund:line4')" \
        "codes and lines, in line order"
    assert_eq "$(ledger_sum "$L")" "$before" "ledger checksum"
}

# An integer beyond 64 bits names the event's id and the field.
case_integer_out_of_range() {
    sale x40 S43 99999999999999999999 >"$TMP/big1.jsonl"
    reject invalid_value 3 <"$TMP/big1.jsonl" # not in a pipe: ERR is read below
    expect_stderr_contains "accrue: invalid_value: line 1: id x40: field data.amount_minor:"
    sale x41 S43 -123456789012345678901234 >"$TMP/big2.jsonl"
    reject invalid_value 3 <"$TMP/big2.jsonl"
    expect_stderr_contains "id x41: field data.amount_minor:"
}

# A UTF-8 byte-order mark at the start of the file (Excel writes one) is not data.
case_utf8_bom_accepted() {
    { printf '\xef\xbb\xbf'; sale x42 S44 100; sale x43 S45 100; } >"$TMP/bom.jsonl"
    acc "$L" append "$TMP/bom.jsonl"
    assert_exit 0
    expect_stdout_contains "appended 2 events"
    { sale x44 S46 100; printf '\xef\xbb\xbf'; sale x45 S47 100; } >"$TMP/bom2.jsonl"
    reject malformed_json 3 <"$TMP/bom2.jsonl" # only at the start of the file
    expect_stderr_contains "line 2:"
    # plan documents saved by the same editors: `plan publish` and a what-if --plan-file
    local l
    l=$(new_ledger)
    { printf '\xef\xbb\xbf'; cat "$ROOT/tools/sample/plan.json"; } >"$TMP/bom-plan.json"
    acc "$l" plan publish "$TMP/bom-plan.json"
    assert_exit 0
    acc "$l" plan show partner-standard
    assert_exit 0
    sed 's/"version": 1/"version": 2/' "$TMP/bom-plan.json" >"$TMP/bom-plan2.json"
    acc "$l" payout run 2026-07 --plan-file "$TMP/bom-plan2.json"
    assert_exit 0
}

# events.md bounds a plan document by its size (64 KiB) only: 300 rules, 200 brackets in one
# rule and 100 targets are a valid plan (they were refused past 256 / 64 / 64), and the sale's
# line is the bracket sum computed here independently (Python, exact integers, half-even).
case_large_plan_counts() {
    local l want got
    l=$(new_ledger --period month --utc-offset +00:00)
    python3 - "$TMP/bigplan.jsonl" <<'PY'
import json, sys
rules = [{"match": {"product": "none-%d" % i}, "brackets": [{"from_minor": 0, "rate_bp": 100}]}
         for i in range(299)]
rules.append({"match": {}, "brackets": [{"from_minor": i * 1000, "rate_bp": (i % 40) * 10}
                                          for i in range(200)]})
plan = {"plan_id": "big", "version": 1, "effective_from": "2026-01-01", "currency": "JPY",
        "ceiling_bp": 4000, "rules": rules,
        "targets": [{"net_revenue_minor": (i + 1) * 10000000, "bonus_minor": 1}
                    for i in range(100)]}
evs = [{"id": "pl-big", "type": "plan.published", "at": "2026-06-01T00:00:00Z",
        "data": {"plan": plan}},
       {"id": "p-big", "type": "partner.registered", "at": "2026-06-01T00:00:00Z",
        "data": {"partner_id": "PB", "name": "Big", "kind": "reseller", "tier": "gold",
                 "plan_id": "big", "currency": "JPY"}},
       {"id": "s-big", "type": "sale.recorded", "at": "2026-07-05T00:00:00Z",
        "data": {"sale_id": "SB", "partner_id": "PB", "customer_id": "CB", "product": "cloud",
                 "amount_minor": 123457, "currency": "JPY"}}]
with open(sys.argv[1], "w") as f:
    for e in evs:
        f.write(json.dumps(e, separators=(",", ":")) + "\n")
PY
    acc "$l" append "$TMP/bigplan.jsonl"
    assert_exit 0
    acc "$l" payout run 2026-07 --out "$TMP/bigplan-out"
    assert_exit 0
    want=$(python3 -c '
amount, exact = 123457, 0
for i in range(200):
    lo, hi = i * 1000, (i + 1) * 1000 if i < 199 else 10**18
    exact += max(0, min(hi, amount) - max(lo, 0)) * (i % 40) * 10
q, r = divmod(exact, 10000)
print(q + (1 if r * 2 > 10000 or (r * 2 == 10000 and q % 2) else 0))')
    got=$(awk -F, '$5 == "sale" {print $11}' "$TMP/bigplan-out/statement.csv")
    assert_eq "$got" "$want" "the sale's commission under rule #299"
    grep -q 'big@1#299' "$TMP/bigplan-out/statement.csv" || fail "the sale's rule is not big@1#299"
}

# commissions.md: every partner on a plan has its currency. A partner that moved to another
# plan is still on the first one for its sales before the move (business time), so a first
# version of that plan in another currency is currency_mismatch: it was accepted, and the
# partner's USD sales of June were then paid by a JPY plan (a 50,000 JPY bonus as 500.00 USD).
case_plan_currency_of_a_former_partner() {
    local l
    l=$(new_ledger --period month --utc-offset +00:00)
    {
        ev fp-1 partner.registered 2026-06-01T00:00:00Z '{"partner_id":"PU","name":"U","kind":"reseller","tier":"gold","plan_id":"usd","currency":"USD"}'
        ev fp-2 partner.updated 2026-07-01T00:00:00Z '{"partner_id":"PU","plan_id":"other"}'
    } >"$TMP/former.jsonl"
    acc "$l" append "$TMP/former.jsonl"
    assert_exit 0
    ev fp-3 plan.published 2026-06-01T00:00:00Z '{"plan":{"plan_id":"usd","version":1,"effective_from":"2026-01-01","currency":"JPY","ceiling_bp":4000,"rules":[{"match":{},"brackets":[{"from_minor":0,"rate_bp":1000}]}]}}' >"$TMP/former-plan.jsonl"
    acc "$l" append "$TMP/former-plan.jsonl"
    assert_exit 3
    expect_stderr_contains "accrue: currency_mismatch: line 1: id fp-3: field data.plan.currency"
    acc "$l" verify
    assert_exit 0
}

# \u0000 is valid JSON (RFC 8259): a NUL in a value is that field's invalid_value, named, as
# the same event in msgpack is (it was malformed_json with the JSON library's message).
case_nul_in_a_value() {
    ev x60 rep.added 2026-07-02T00:00:00Z '{"partner_id":"P1","rep_id":"R60","name":"a\u0000b"}' |
        reject invalid_value 3
    expect_stderr_contains "accrue: invalid_value: line 1: id x60: field data.name:"
}

# A conflict among validation errors makes the whole batch exit 4.
case_conflict_wins() {
    {
        ev x30 partner.updated 2026-06-03T00:00:00Z '{"partner_id":"P9","tier":"silver"}'
        ev s-1 sale.recorded 2026-07-02T00:00:00Z '{"sale_id":"S1","partner_id":"P1","customer_id":"C9","product":"cloud","amount_minor":2000,"currency":"JPY"}'
    } | reject id_conflict 4
}

# Past 100 errors: the first 100 are printed, then one line counting the rest.
case_error_cap() {
    local before i
    for i in $(seq 1 150); do echo '{"id":"cap","type":'; done >"$TMP/cap.jsonl"
    before=$(ledger_sum "$L")
    acc "$L" append "$TMP/cap.jsonl"
    assert_exit 3
    assert_eq "$(grep -c '^accrue: malformed_json: line [0-9]*:' <<<"$ERR")" 100 "errors shown"
    expect_stderr_contains "accrue: malformed_json: line 100:"
    expect_stderr_contains "and 50 more errors not shown"
    # cli.md: one line per error, up to 100: the note of the rest is not one more
    assert_eq "$(grep -c '^accrue: [a-z_]*:' <<<"$ERR")" 100 "lines that read as an error"
    assert_eq "$(ledger_sum "$L")" "$before" "ledger checksum"
}

run_case case_base
for c in malformed_json missing_field unknown_field wrong_type invalid_value invalid_id \
    invalid_timestamp invalid_currency unknown_type forbidden_type duplicate unknown_partner \
    unknown_rep unknown_deal unknown_sale unknown_stage partner_inactive channel_conflict \
    deal_closed exit_criteria_unmet invalid_transition currency_mismatch over_refund \
    invalid_plan stale_version above_ceiling refund_before_sale id_conflict version_conflict \
    too_large malformed_msgpack; do
    run_case "case_$c"
done
run_case case_id_named_when_readable
run_case case_64_kib_with_crlf
run_case case_close_id_reserved
run_case case_three_bad_lines
run_case case_three_stateful
run_case case_shape_and_rule_errors
run_case case_integer_out_of_range
run_case case_conflict_wins
run_case case_error_cap
run_case case_utf8_bom_accepted
run_case case_large_plan_counts
run_case case_plan_currency_of_a_former_partner
run_case case_nul_in_a_value
finish
