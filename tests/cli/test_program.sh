#!/usr/bin/env bash
# test_program.sh - the partner program (program.md) through the command line:
# every rejection of the five program events (exit status, the code on stderr,
# a ledger unchanged byte for byte), the hand-computed statements of
# tests/cli/program/ (README.md there has the arithmetic), summary.json per
# promotion, `onboarding`, `announcements`, `promotion list`, `partner show`
# and `kpi`'s certified, and that rebuild and verify agree with the appends.
. "$(dirname "$0")/lib.sh"

G=$ROOT/tests/cli/program
L=$(new_ledger --period month --utc-offset +00:00)

ev() { # ID TYPE AT DATA
    printf '{"id":"%s","type":"%s","at":"%s","data":%s}\n' "$1" "$2" "$3" "$4"
}

# reject CODE < input: exit 3, the code on stderr, nothing changed.
reject() {
    local code=$1 before
    cat >"$TMP/bad.in"
    before=$(ledger_sum "$L")
    acc "$L" append "$TMP/bad.in"
    assert_exit 3 "exit status for $code"
    expect_stderr_contains "accrue: $code:"
    assert_eq "$(ledger_sum "$L")" "$before" "ledger checksum after $code"
}

promo() { # ID DOC
    ev "$1" promotion.published 2026-06-20T00:00:00Z "{\"promotion\":$2}"
}

case_base() {
    acc "$L" append "$G/base.jsonl"
    assert_exit 0
}

case_announcements_load() {
    {
        ev an-1 announcement.published 2026-06-05T00:00:00Z \
            '{"announcement_id":"A1","title":"New price list","body":"Prices change on 07-01.","audience":{"tier":"gold"},"requires_ack":true,"due":"2026-06-30"}'
        ev an-2 announcement.published 2026-06-06T00:00:00Z \
            '{"announcement_id":"A2","title":"Roadmap","body":"FYI","requires_ack":false}'
        ev an-3 announcement.published 2026-06-07T00:00:00Z \
            '{"announcement_id":"A3","title":"EMEA launch","body":"Read and confirm","audience":{"region":"emea"},"requires_ack":true}'
        ev r-1 rep.added 2026-06-01T00:00:00Z '{"partner_id":"P2","rep_id":"R1","name":"Rep One"}'
        ev ak-1 announcement.acknowledged 2026-06-08T00:00:00Z \
            '{"announcement_id":"A3","partner_id":"P2","rep_id":"R1"}'
    } >"$TMP/ann.jsonl"
    acc "$L" append "$TMP/ann.jsonl"
    assert_exit 0
    expect_stdout_contains "appended 5 events (seq 22..26)"
}

# ---- every rule of the five events ----
case_unknown_plan() {
    promo x1 '{"promo_id":"px","plan_id":"nope","from":"2026-07-01","to":"2026-07-31","rate_bp":100}' |
        reject unknown_plan
}
case_promo_duplicate() {
    promo x2 '{"promo_id":"pa","plan_id":"std","from":"2026-07-01","to":"2026-07-31","rate_bp":100}' |
        reject duplicate
}
case_promo_above_ceiling() { # 1500 bp top rate + 1600 > 3000
    promo x3 '{"promo_id":"px","plan_id":"std","from":"2026-07-01","to":"2026-07-31","rate_bp":1600}' |
        reject above_ceiling
}
case_plan_above_ceiling() { # the other direction: pa (500 bp) on top of 1500 > 1900
    ev x4 plan.published 2026-06-20T00:00:00Z '{"plan":{"plan_id":"std","version":2,"effective_from":"2026-09-01","currency":"JPY","ceiling_bp":1900,"rules":[{"match":{},"brackets":[{"from_minor":0,"rate_bp":1500}]}]}}' |
        reject above_ceiling
}
case_promo_invalid_value() {
    promo x5 '{"promo_id":"px","plan_id":"std","from":"2026-07-31","to":"2026-07-01","rate_bp":100}' |
        reject invalid_value
    expect_stderr_contains "data.promotion.to"
    promo x6 '{"promo_id":"px","plan_id":"std","from":"2026-07-01","to":"2026-07-31"}' |
        reject invalid_value
    # program.md on the certified key, for plans and promotions alike: "Any other value type
    # is invalid_plan" (the one promotion check that is not invalid_value)
    promo x7 '{"promo_id":"px","plan_id":"std","from":"2026-07-01","to":"2026-07-31","rate_bp":1,"match":{"certified":"yes"}}' |
        reject invalid_plan
    expect_stderr_contains "data.promotion.match.certified"
    promo x8 '{"promo_id":"px","plan_id":"std","from":"2026-07-01","to":"2026-07-31","rate_bp":1,"budget_minor":0}' |
        reject invalid_value
    promo x9 '{"promo_id":"px","plan_id":"std","from":"2026-07-01","to":"2026-07-31","rate_bp":1,"colour":"red"}' |
        reject invalid_value
}
case_unknown_promotion() {
    ev x10 promotion.ended 2026-07-20T00:00:00Z '{"promo_id":"nope","ends_on":"2026-07-20"}' |
        reject unknown_promotion
}
case_ended_before_from() {
    ev x11 promotion.ended 2026-07-20T00:00:00Z '{"promo_id":"pa","ends_on":"2026-06-30"}' |
        reject invalid_value
    expect_stderr_contains "data.ends_on"
}
case_unknown_announcement() {
    ev x12 announcement.acknowledged 2026-06-09T00:00:00Z '{"announcement_id":"A9","partner_id":"P1"}' |
        reject unknown_announcement
}
case_not_in_audience() { # A1 is for gold partners; P2 is silver
    ev x13 announcement.acknowledged 2026-06-09T00:00:00Z '{"announcement_id":"A1","partner_id":"P2"}' |
        reject not_in_audience
}
case_ack_not_required() {
    ev x14 announcement.acknowledged 2026-06-09T00:00:00Z '{"announcement_id":"A2","partner_id":"P1"}' |
        reject invalid_value
}
case_ack_unknown_partner() {
    ev x15 announcement.acknowledged 2026-06-09T00:00:00Z '{"announcement_id":"A2","partner_id":"P9"}' |
        reject invalid_value # A2 needs no acknowledgement: that rule comes first
    ev x16 announcement.acknowledged 2026-06-09T00:00:00Z '{"announcement_id":"A1","partner_id":"P9"}' |
        reject not_in_audience # program.md: "partner exists and is in the audience" is one rule
    expect_stderr_contains "data.partner_id"
}
case_ack_unknown_rep() {
    ev x17 announcement.acknowledged 2026-06-09T00:00:00Z '{"announcement_id":"A1","partner_id":"P1","rep_id":"R9"}' |
        reject unknown_rep
}
case_ack_duplicate() { # one per (announcement, partner, rep): the error names the rep
    ev x18 announcement.acknowledged 2026-06-09T00:00:00Z '{"announcement_id":"A3","partner_id":"P2","rep_id":"R1"}' |
        reject duplicate
    expect_stderr_contains "field data.rep_id: rep R1 already acknowledged this announcement"
}
case_announcement_duplicate() {
    ev x19 announcement.published 2026-06-09T00:00:00Z '{"announcement_id":"A1","title":"t","body":"b","requires_ack":false}' |
        reject duplicate
}
case_announcement_shapes() {
    ev x20 announcement.published 2026-06-09T00:00:00Z '{"announcement_id":"A8","title":"t","body":"b","requires_ack":"yes"}' |
        reject wrong_type
    ev x21 announcement.published 2026-06-09T00:00:00Z '{"announcement_id":"A8","title":"t","body":"b"}' |
        reject missing_field
    ev x22 announcement.published 2026-06-09T00:00:00Z '{"announcement_id":"A8","title":"t","body":"b","requires_ack":true,"audience":{"colour":"red"}}' |
        reject unknown_field
    ev x23 announcement.published 2026-06-09T00:00:00Z "{\"announcement_id\":\"A8\",\"title\":\"t\",\"body\":\"$(head -c 8193 /dev/zero | tr '\0' b)\",\"requires_ack\":true}" |
        reject too_large
}
case_body_8k_ok() { # exactly 8 KiB is allowed; over 256 bytes is fine for a body
    local ann="{\"announcement_id\":\"A8\",\"title\":\"Long\",\"body\":\"$(head -c 8192 /dev/zero | tr '\0' b)\",\"requires_ack\":false}"
    ev b8k announcement.published 2026-06-09T00:00:00Z "$ann" >"$TMP/b8k.jsonl"
    local l2
    l2=$(new_ledger)
    acc "$l2" append "$TMP/b8k.jsonl"
    assert_exit 0
}
case_onboarding_shapes() {
    ev x24 onboarding.defined 2026-06-09T00:00:00Z '{"modules":[]}' | reject invalid_value
    ev x25 onboarding.defined 2026-06-09T00:00:00Z '{"modules":["a","a"]}' | reject invalid_value
    ev x26 onboarding.defined 2026-06-09T00:00:00Z '{"modules":"a"}' | reject wrong_type
}
case_certified_not_boolean() {
    ev x27 plan.published 2026-06-20T00:00:00Z '{"plan":{"plan_id":"q","version":1,"effective_from":"2026-01-01","currency":"JPY","ceiling_bp":3000,"rules":[{"match":{"certified":1},"brackets":[{"from_minor":0,"rate_bp":100}]}]}}' |
        reject invalid_plan
}
case_idempotent() { # the same program event again is a no-op; changed content is id_conflict
    acc "$L" append "$TMP/ann.jsonl"
    assert_exit 0
    expect_stdout_contains "5 already present"
    ev an-2 announcement.published 2026-06-06T00:00:00Z \
        '{"announcement_id":"A2","title":"Roadmap","body":"FYI!","requires_ack":false}' >"$TMP/conf.jsonl"
    acc "$L" append "$TMP/conf.jsonl"
    assert_exit 4
    expect_stderr_contains "accrue: id_conflict:"
}
case_streams() {
    acc "$L" log --stream promotion:pa --format jsonl
    assert_exit 0
    expect_stdout_contains '"id":"pr-a"'
    acc "$L" log --stream announcement:A3 --format jsonl
    expect_stdout_contains '"id":"ak-1"'
    acc "$L" log --stream onboarding --format jsonl
    expect_stdout_contains '"id":"ob-1"'
}

# ---- the goldens ----
case_july() {
    acc "$L" payout run 2026-07 --out "$TMP/r7"
    assert_exit 0
    assert_file_eq "$TMP/r7/statement.csv" "$G/statement-2026-07.csv"
    expect_stdout_contains "$(xxh128sum "$G/statement-2026-07.csv" | cut -d' ' -f1)"
    grep -q '"promo_id":"pa","plan_id":"std","title":"Gold July","lines":2,"total_minor":6000,"budget_minor":6000,"used_minor":6000,"left_minor":0' \
        "$TMP/r7/summary.json" || fail "summary.json lacks pa's totals: $(cat "$TMP/r7/summary.json")"
    acc "$L" payout close 2026-07
    assert_exit 0
}
case_august() {
    acc "$L" append "$G/late.jsonl"
    assert_exit 0
    expect_stdout_contains "appended 4 events"
    acc "$L" payout run 2026-08 --out "$TMP/r8"
    assert_exit 0
    assert_file_eq "$TMP/r8/statement.csv" "$G/statement-2026-08.csv"
    acc "$L" payout audit 2026-07
    assert_exit 0
}
# summary.json's "budget used and left as of X" (program.md): a budget is spent over the whole
# log, so a run of July counts the August sales of a promotion that lasts into August. By hand:
# 1000 bp, budget 5000; X1 (07-10) 20000 -> 2000; X3 (08-05) 20000 -> 2000; X4 (08-06) 20000
# wants 2000, 1000 left -> 1000. July: 1 line, 2000; used 5000, left 0. As of X3's seq: used
# 4000, left 1000; as of X1's: used 2000, left 3000.
case_budget_used_as_of_x() {
    local l2 s
    l2=$(new_ledger --period month --utc-offset +00:00)
    {
        ev b-p plan.published 2026-06-01T00:00:00Z '{"plan":{"plan_id":"standard","version":1,"effective_from":"2026-01-01","currency":"JPY","ceiling_bp":3000,"rules":[{"match":{},"brackets":[{"from_minor":0,"rate_bp":1000}]}]}}'
        ev b-r1 partner.registered 2026-06-01T00:00:00Z '{"partner_id":"P1","name":"One","kind":"reseller","tier":"gold","plan_id":"standard","currency":"JPY"}'
        ev b-r2 partner.registered 2026-06-01T00:00:00Z '{"partner_id":"P2","name":"Two","kind":"reseller","tier":"silver","plan_id":"standard","currency":"JPY"}'
        ev b-h promotion.published 2026-06-20T00:00:00Z '{"promotion":{"promo_id":"H","plan_id":"standard","from":"2026-07-01","to":"2026-08-31","rate_bp":1000,"budget_minor":5000}}'
        ev b-x1 sale.recorded 2026-07-10T00:00:00Z '{"sale_id":"X1","partner_id":"P1","customer_id":"C1","amount_minor":20000,"currency":"JPY","product":"cloud"}'
        ev b-x3 sale.recorded 2026-08-05T00:00:00Z '{"sale_id":"X3","partner_id":"P2","customer_id":"C2","amount_minor":20000,"currency":"JPY","product":"cloud"}'
        ev b-x4 sale.recorded 2026-08-06T00:00:00Z '{"sale_id":"X4","partner_id":"P1","customer_id":"C3","amount_minor":20000,"currency":"JPY","product":"cloud"}'
    } >"$TMP/budget.jsonl"
    acc "$l2" append "$TMP/budget.jsonl"
    assert_exit 0
    s='"promo_id":"H","plan_id":"standard","title":"","lines":1,"total_minor":2000,"budget_minor":5000'
    for want in "7:5000,0" "6:4000,1000" "5:2000,3000"; do
        local x=${want%%:*} used_left=${want#*:}
        rm -rf "$TMP/rb"
        acc "$l2" payout run 2026-07 --as-of "$x" --out "$TMP/rb"
        assert_exit 0
        grep -qF "$s,\"used_minor\":${used_left%,*},\"left_minor\":${used_left#*,}}" \
            "$TMP/rb/summary.json" || fail "as of seq $x: $(cat "$TMP/rb/summary.json")"
    done
    acc "$l2" payout close 2026-07 --out "$TMP/rc"
    assert_exit 0
    grep -qF "$s,\"used_minor\":5000,\"left_minor\":0}" "$TMP/rc/summary.json" ||
        fail "the close's summary: $(cat "$TMP/rc/summary.json")"
    # A what-if run counts the budget under its own plans: v1 of "narrow" plans only cloud,
    # so its product-x sales (Y1 July 20000, Y2 August 20000) are unplanned and get no
    # promotion; the what-if v2 plans every sale: July's line 2000, used 4000 (Y2's 2000 too)
    local l3
    l3=$(new_ledger --period month --utc-offset +00:00)
    {
        ev n-p plan.published 2026-06-01T00:00:00Z '{"plan":{"plan_id":"narrow","version":1,"effective_from":"2026-01-01","currency":"JPY","ceiling_bp":3000,"rules":[{"match":{"product":"cloud"},"brackets":[{"from_minor":0,"rate_bp":1000}]}]}}'
        ev n-r1 partner.registered 2026-06-01T00:00:00Z '{"partner_id":"P1","name":"One","kind":"reseller","tier":"gold","plan_id":"narrow","currency":"JPY"}'
        ev n-h promotion.published 2026-06-20T00:00:00Z '{"promotion":{"promo_id":"N","plan_id":"narrow","from":"2026-07-01","to":"2026-08-31","rate_bp":1000,"budget_minor":5000}}'
        ev n-y1 sale.recorded 2026-07-10T00:00:00Z '{"sale_id":"Y1","partner_id":"P1","customer_id":"C1","amount_minor":20000,"currency":"JPY","product":"x"}'
        ev n-y2 sale.recorded 2026-08-05T00:00:00Z '{"sale_id":"Y2","partner_id":"P1","customer_id":"C2","amount_minor":20000,"currency":"JPY","product":"x"}'
    } >"$TMP/narrow.jsonl"
    acc "$l3" append "$TMP/narrow.jsonl"
    assert_exit 0
    printf '%s\n' '{"plan_id":"narrow","version":2,"effective_from":"2026-01-01","currency":"JPY","ceiling_bp":3000,"rules":[{"match":{},"brackets":[{"from_minor":0,"rate_bp":1000}]}]}' \
        >"$TMP/narrow-v2.json"
    rm -rf "$TMP/rw"
    acc "$l3" payout run 2026-07 --plan-file "$TMP/narrow-v2.json" --out "$TMP/rw"
    assert_exit 0
    grep -qF '"promo_id":"N","plan_id":"narrow","title":"","lines":1,"total_minor":2000,"budget_minor":5000,"used_minor":4000,"left_minor":1000}' \
        "$TMP/rw/summary.json" || fail "the what-if run's budget: $(cat "$TMP/rw/summary.json")"
    # August, the last month with sales (the promotion's last day is in it): X3 2000, X4 1000
    acc "$l2" payout run 2026-08 --out "$TMP/r8"
    assert_exit 0
    grep -qF '"promo_id":"H","plan_id":"standard","title":"","lines":2,"total_minor":3000,"budget_minor":5000,"used_minor":5000,"left_minor":0}' \
        "$TMP/r8/summary.json" || fail "August's summary: $(cat "$TMP/r8/summary.json")"
}
case_unplanned_no_promotion() {
    local l2
    l2=$(new_ledger --period month --utc-offset +00:00)
    head -11 "$G/base.jsonl" >"$TMP/u.jsonl"
    cat "$G/unplanned.jsonl" >>"$TMP/u.jsonl"
    acc "$l2" append "$TMP/u.jsonl"
    assert_exit 0
    acc "$l2" payout run 2026-07 --out "$TMP/ru"
    assert_exit 0
    printf '%s\n' \
        'period,partner_id,line,origin_period,kind,source_id,source_seq,at,rule,basis_minor,amount_minor,currency' \
        '2026-07,P1,1,2026-07,sale,S1,11,2026-07-02T00:00:00Z,std@1#1,100000,10000,JPY' \
        '2026-07,P1,2,2026-07,promotion,S1,11,2026-07-02T00:00:00Z,promotion:pa,100000,5000,JPY' \
        >"$TMP/ru.want"
    assert_file_eq "$TMP/ru/statement.csv" "$TMP/ru.want"
    grep -q '"unplanned":\[{"sale_id":"S9","partner_id":"P1","origin_period":"2026-07"}\]' \
        "$TMP/ru/summary.json" || fail "S9 is not listed unplanned"
}

# ---- queries ----
case_onboarding() {
    acc "$L" onboarding --format json
    assert_exit 0
    assert_eq "$OUT" '[{"partner_id":"P1","modules":["m1","m2"],"completed":["m1","m2"],"missing":[],"certified":true,"certified_on":"2026-07-03","reps":[]},{"partner_id":"P2","modules":["m1","m2"],"completed":["m1","m2"],"missing":[],"certified":true,"certified_on":"2026-06-03","reps":[{"rep_id":"R1","modules":["m1","m2"],"completed":[],"missing":["m1","m2"],"certified":false,"certified_on":null}]}]' \
        "onboarding json"
    acc "$L" onboarding --partner P9 # as `partner show P9`: not_found
    [ "$RC" -ne 0 ] || fail "onboarding --partner P9 succeeded"
    expect_stderr_contains "accrue: not_found:"
    acc "$L" partner show P2 --format json
    expect_stdout_contains '"onboarding":{"partner_id":"P2","modules":["m1","m2"]'
    # program.md: per partner and per rep, in every form (the same facts as the JSON above)
    acc "$L" onboarding --format csv
    assert_eq "$OUT" "$(printf '%s\n' 'partner_id,rep_id,modules,completed,missing,certified,certified_on' \
        'P1,,2,2,0,true,2026-07-03' 'P2,,2,2,0,true,2026-06-03' 'P2,R1,2,0,2,false,')" \
        "onboarding csv: a row per partner, then one per rep"
    acc "$L" partner show P2
    expect_stdout_contains "rep cert.   R1 false (since -), missing m1 m2"
}
# certified_on walks from the subject's start: a training dated before the registration (or
# before the rep's rep.added) certifies nothing before the subject exists, so with no list
# in force then the date is the start's (program.md: "with no list ever defined it is the
# registration's local date"), in the ledger's time zone.
case_certified_on_from_the_start() {
    local l
    l=$(new_ledger --period month --utc-offset +09:00)
    printf '%s\n' \
        '{"id":"r1","type":"partner.registered","at":"2026-05-10T00:00:00Z","data":{"partner_id":"P1","name":"One","kind":"reseller","tier":"gold","plan_id":"std","currency":"JPY"}}' \
        '{"id":"t1","type":"training.completed","at":"2026-05-05T00:00:00Z","data":{"partner_id":"P1","module":"m1"}}' \
        '{"id":"rep1","type":"rep.added","at":"2026-06-01T16:00:00Z","data":{"partner_id":"P1","rep_id":"R1","name":"Rep One"}}' \
        '{"id":"t2","type":"training.completed","at":"2026-06-01T00:00:00Z","data":{"partner_id":"P1","rep_id":"R1","module":"m1"}}' \
        >"$TMP/early.jsonl"
    acc "$l" append "$TMP/early.jsonl"
    assert_exit 0
    acc "$l" onboarding --partner P1 --format json
    assert_exit 0
    # P1: registered 05-10 09:00 local, its training of 05-05 before it; R1: added 06-02
    # 01:00 local (06-01T16:00Z), its training of 06-01 before it
    expect_stdout_contains '"partner_id":"P1","modules":[],"completed":[],"missing":[],"certified":true,"certified_on":"2026-05-10"'
    expect_stdout_contains '"rep_id":"R1","modules":[],"completed":[],"missing":[],"certified":true,"certified_on":"2026-06-02"'
    # a list from 06-05 asking for m1: both trained before it, so both stay certified from
    # their start
    printf '%s\n' '{"id":"ob1","type":"onboarding.defined","at":"2026-06-05T00:00:00Z","data":{"modules":["m1"]}}' \
        >"$TMP/ob.jsonl"
    acc "$l" append "$TMP/ob.jsonl"
    assert_exit 0
    acc "$l" onboarding --partner P1 --format json
    expect_stdout_contains '"certified":true,"certified_on":"2026-05-10"'
    expect_stdout_contains '"rep_id":"R1","modules":["m1"],"completed":["m1"],"missing":[],"certified":true,"certified_on":"2026-06-02"'
}
# program.md's walk takes steps dated before the registration too: a list in force then
# (05-01) and completed by a training then (05-15) certifies from that training, though the
# partner was registered on 06-01. A list completed only after the registration (P2: trained
# 06-10) certifies from that training; with a backdated list and no training, never.
case_certified_on_before_registration() {
    local l
    l=$(new_ledger --period month --utc-offset +00:00)
    printf '%s\n' \
        '{"id":"o1","type":"onboarding.defined","at":"2026-05-01T00:00:00Z","data":{"modules":["m1"]}}' \
        '{"id":"r1","type":"partner.registered","at":"2026-06-01T00:00:00Z","data":{"partner_id":"P1","name":"One","kind":"reseller","tier":"gold","plan_id":"std","currency":"JPY"}}' \
        '{"id":"r2","type":"partner.registered","at":"2026-06-01T00:00:00Z","data":{"partner_id":"P2","name":"Two","kind":"reseller","tier":"gold","plan_id":"std","currency":"JPY"}}' \
        '{"id":"r3","type":"partner.registered","at":"2026-06-01T00:00:00Z","data":{"partner_id":"P3","name":"Three","kind":"reseller","tier":"gold","plan_id":"std","currency":"JPY"}}' \
        '{"id":"t1","type":"training.completed","at":"2026-05-15T00:00:00Z","data":{"partner_id":"P1","module":"m1"}}' \
        '{"id":"t2","type":"training.completed","at":"2026-06-10T00:00:00Z","data":{"partner_id":"P2","module":"m1"}}' \
        >"$TMP/before.jsonl"
    acc "$l" append "$TMP/before.jsonl"
    assert_exit 0
    acc "$l" onboarding --format json
    assert_exit 0
    expect_stdout_contains '"partner_id":"P1","modules":["m1"],"completed":["m1"],"missing":[],"certified":true,"certified_on":"2026-05-15"'
    expect_stdout_contains '"partner_id":"P2","modules":["m1"],"completed":["m1"],"missing":[],"certified":true,"certified_on":"2026-06-10"'
    expect_stdout_contains '"partner_id":"P3","modules":["m1"],"completed":[],"missing":["m1"],"certified":false,"certified_on":null'
}
# program.md: current attributes are "the registration with every partner.updated up to X
# applied in (at, seq) order, whatever its at". P5 registered 06-01 silver, no region; an
# update dated 2020 makes it gold in emea: both apply (the registration is the base). P6: an
# update at its registration's own instant (platinum) ranks above a later-recorded update
# dated before the registration (bronze), which still sets the region it did not have.
case_attributes_whatever_their_at() {
    local l
    l=$(new_ledger --period month --utc-offset +00:00)
    printf '%s\n' \
        '{"id":"r5","type":"partner.registered","at":"2026-06-01T00:00:00Z","data":{"partner_id":"P5","name":"Five","kind":"reseller","tier":"silver","plan_id":"std","currency":"JPY"}}' \
        '{"id":"r6","type":"partner.registered","at":"2026-06-01T00:00:00Z","data":{"partner_id":"P6","name":"Six","kind":"reseller","tier":"silver","plan_id":"std","currency":"JPY"}}' \
        '{"id":"u5","type":"partner.updated","at":"2020-01-01T00:00:00Z","data":{"partner_id":"P5","tier":"gold","region":"emea"}}' \
        '{"id":"u6a","type":"partner.updated","at":"2026-06-01T00:00:00Z","data":{"partner_id":"P6","tier":"platinum"}}' \
        '{"id":"u6b","type":"partner.updated","at":"2026-05-01T00:00:00Z","data":{"partner_id":"P6","tier":"bronze","region":"apac"}}' \
        '{"id":"a1","type":"announcement.published","at":"2026-06-05T00:00:00Z","data":{"announcement_id":"G1","title":"Gold news","body":"b","audience":{"tier":"gold","region":"emea"},"requires_ack":true}}' \
        '{"id":"k1","type":"announcement.acknowledged","at":"2026-06-06T00:00:00Z","data":{"announcement_id":"G1","partner_id":"P5"}}' \
        >"$TMP/attrs.jsonl"
    acc "$l" append "$TMP/attrs.jsonl"
    assert_exit 0 "P5 acknowledges: it is gold in emea"
    acc "$l" partner show P5 --format json
    expect_stdout_contains '"tier":"gold"'
    expect_stdout_contains '"region":"emea"'
    acc "$l" partner show P6 --format json
    expect_stdout_contains '"tier":"platinum"'
    expect_stdout_contains '"region":"apac"'
    acc "$l" announcements --format json
    expect_stdout_contains '"audience":1,"acknowledged":1,"pending":0'
    acc "$l" verify
    assert_exit 0 "a replay agrees with the appends"
}
case_kpi_certified() { # P1 certified from 07-03: not as of 2026-06's end, yes as of July's
    acc "$L" kpi --period 2026-06 --partner P1 --format json
    expect_stdout_contains '"certified":false}'
    acc "$L" kpi --period 2026-07 --partner P1 --format json
    expect_stdout_contains '"certified":true}'
}
case_announcements() {
    acc "$L" announcements --today 2026-07-01 --format json
    assert_exit 0
    assert_eq "$OUT" '[{"announcement_id":"A1","title":"New price list","at":"2026-06-05T00:00:00Z","requires_ack":true,"due":"2026-06-30","audience":1,"acknowledged":0,"pending":1,"overdue":1},{"announcement_id":"A2","title":"Roadmap","at":"2026-06-06T00:00:00Z","requires_ack":false,"due":null,"audience":2,"acknowledged":0,"pending":0,"overdue":0},{"announcement_id":"A3","title":"EMEA launch","at":"2026-06-07T00:00:00Z","requires_ack":true,"due":null,"audience":1,"acknowledged":1,"pending":0,"overdue":0}]' \
        "announcements json"
    acc "$L" announcements --partner P1 --today 2026-06-30 --format json # exactly program.md's keys
    assert_eq "$OUT" '[{"announcement_id":"A1","title":"New price list","at":"2026-06-05T00:00:00Z","due":"2026-06-30","state":"pending"},{"announcement_id":"A2","title":"Roadmap","at":"2026-06-06T00:00:00Z","due":null,"state":"info"}]' \
        "P1's announcements"
    acc "$L" announcements --partner P2 --format csv
    expect_stdout_contains "A3,EMEA launch,2026-06-07T00:00:00Z,,read"
    # a human table shows business time (finance-guide.md); CSV and JSON keep UTC
    local l
    l=$(new_ledger --period month --utc-offset +09:00)
    "$ACCRUE" --ledger "$l" append "$G/base.jsonl" >/dev/null
    ev an-9 announcement.published 2026-06-05T20:00:00Z '{"announcement_id":"A9","title":"t","body":"b","requires_ack":false}' |
        "$ACCRUE" --ledger "$l" append - >/dev/null
    acc "$l" announcements --today 2026-07-01
    expect_stdout_contains "A9            t      2026-06-06T05:00:00+09:00  -"
}
case_promotion_list() {
    acc "$L" promotion list --format json
    assert_exit 0
    assert_eq "$OUT" '[{"promo_id":"pa","plan_id":"std","currency":"JPY","title":"Gold July","from":"2026-07-01","to":"2026-07-31","last_day":"2026-07-31","rate_bp":500,"per_sale_minor":0,"match":{"tier":"gold"},"lines":3,"total_minor":6000,"budget_minor":6000,"used_minor":6000,"left_minor":0},{"promo_id":"pb","plan_id":"std","currency":"JPY","title":"","from":"2026-07-01","to":"2026-08-31","last_day":"2026-08-31","rate_bp":500,"per_sale_minor":0,"match":{"product":"cloud"},"lines":2,"total_minor":4000,"budget_minor":null,"used_minor":4000,"left_minor":null},{"promo_id":"pc","plan_id":"std","currency":"JPY","title":"","from":"2026-07-01","to":"2026-09-30","last_day":"2026-07-10","rate_bp":100,"per_sale_minor":0,"match":{"certified":true,"product":"support"},"lines":1,"total_minor":2,"budget_minor":null,"used_minor":2,"left_minor":null}]' \
        "promotion list"
    # What a sale earns is part of the answer (the dashboard's "per sale" column showed "-"
    # for a promotion paying a fixed amount a sale): per_sale_minor, and which sales: match.
    local l
    l=$(new_ledger)
    "$ACCRUE" --ledger "$l" append "$G/base.jsonl" >/dev/null
    echo '{"id":"pr-d","type":"promotion.published","at":"2026-06-20T00:00:00Z","data":{"promotion":{"promo_id":"pd","plan_id":"std","from":"2027-01-01","to":"2027-01-31","per_sale_minor":250}}}' >"$TMP/pd.jsonl"
    acc "$l" append "$TMP/pd.jsonl"
    assert_exit 0
    acc "$l" promotion list --format json
    expect_stdout_contains '"promo_id":"pd","plan_id":"std","currency":"JPY","title":"","from":"2027-01-01","to":"2027-01-31","last_day":"2027-01-31","rate_bp":0,"per_sale_minor":250,"match":{},"lines":0'
    acc "$l" promotion list --format csv
    expect_stdout_contains "pd,std,2027-01-01,2027-01-31,0,250,0,"
    # a human table shows money as finance reads it, in the plan's currency
    acc "$L" promotion list
    expect_stdout_contains "pa         std   2026-07-01  2026-07-31      500     0 JPY      3  6,000 JPY  6,000 JPY  6,000 JPY  0 JPY"
}
case_rebuild_verify() {
    acc "$L" verify
    assert_exit 0
    acc "$L" rebuild
    assert_exit 0
    acc "$L" verify
    assert_exit 0
    acc "$L" onboarding --partner P1 --format json
    expect_stdout_contains '"certified_on":"2026-07-03"'
}

run_case case_base
run_case case_july
run_case case_august
run_case case_announcements_load
for c in unknown_plan promo_duplicate promo_above_ceiling plan_above_ceiling promo_invalid_value \
    unknown_promotion ended_before_from unknown_announcement not_in_audience ack_not_required \
    ack_unknown_partner ack_unknown_rep ack_duplicate announcement_duplicate announcement_shapes \
    body_8k_ok onboarding_shapes certified_not_boolean idempotent streams \
    unplanned_no_promotion budget_used_as_of_x certified_on_before_registration attributes_whatever_their_at onboarding kpi_certified announcements promotion_list rebuild_verify \
    certified_on_from_the_start; do
    run_case "case_$c"
done
finish
