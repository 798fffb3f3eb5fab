#!/usr/bin/env bash
# test_dashboard_http.sh - the dashboard's server side with curl, under both builds (the
# browser test tests/dashboard/run.mjs drives the page itself in chromium, -O2 only):
# the embedded page and assets with their security headers, ETags and 304s, refusals
# (405, 404, no directory walk); GET /v1/status per role (a partner gets no head);
# GET /v1/deals with its filters, limits and partner scoping. A sanitizer report or an
# unclean exit of the server fails the case that stopped it.
. "$(dirname "$0")/lib.sh"

SRV_PID=
BASE=
# get PATH [CURL ARGS...]: sets CODE, HEAD (headers, lower-cased names) and BODY.
get() {
    local p=$1
    shift
    rm -f "$TMP/.body" # curl writes no file for an empty body
    CODE=$(curl -s -o "$TMP/.body" -D "$TMP/.head" -w '%{http_code}' "$@" "$BASE$p")
    HEAD=$(tr -d '\r' <"$TMP/.head" | sed -E 's/^([^:]*):/\L\1:/')
    BODY=$(cat "$TMP/.body" 2>/dev/null)
}
has_header() { # LINE
    grep -qxF "$1" <<<"$HEAD" || fail "header [$1] missing; got: ${HEAD:0:800}"
}

CSP="content-security-policy: default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'"
FIN="Authorization: Bearer fin-dashboard-http-01"
PAR1="Authorization: Bearer par-dashboard-http-P1"
ING="Authorization: Bearer ing-dashboard-http-01"

LEDGER=$(new_ledger --period month --utc-offset +09:00)
"$ACCRUE" --ledger "$LEDGER" --quiet append "$WORKED/events.jsonl" >/dev/null
"$ACCRUE" --ledger "$LEDGER" --quiet payout close 2026-07 >/dev/null
"$ACCRUE" --ledger "$LEDGER" --quiet append "$WORKED/late.jsonl" >/dev/null
"$ACCRUE" --ledger "$LEDGER" --quiet append "$ROOT/tests/dashboard/demo-extra.jsonl" >/dev/null
printf '%s\n' 'fin-dashboard-http-01 finance' 'par-dashboard-http-P1 partner P1' \
    'ing-dashboard-http-01 ingest' >"$TMP/tokens"
start_server "$LEDGER" --token-file "$TMP/tokens"

case_page_and_assets() {
    local p etag
    for p in / /assets/app.js /assets/views.js /assets/api.js /assets/dom.js /assets/fmt.js \
        /assets/app.css /assets/icon.svg; do
        get "$p"
        assert_eq "$CODE" 200 "GET $p"
        has_header "$CSP"
        has_header "x-content-type-options: nosniff"
        has_header "referrer-policy: no-referrer"
        etag=$(grep '^etag:' <<<"$HEAD" | sed 's/^etag: //')
        [[ $etag =~ ^\"[0-9a-f]{16}\"$ ]] || fail "$p: etag [$etag]"
        get "$p" -H "If-None-Match: $etag"
        assert_eq "$CODE" 304 "GET $p with its ETag"
        assert_eq "$BODY" "" "304 body"
        get "$p" -H 'If-None-Match: "0000000000000000"'
        assert_eq "$CODE" 200 "GET $p with another ETag"
    done
    get /
    grep -qx 'content-type: text/html; charset=utf-8' <<<"$HEAD" || fail "/ content type"
    [ "$BODY" == "$(cat "$ROOT/tools/dashboard/index.html")" ] || fail "/ is not index.html byte for byte"
    get /assets/app.js
    grep -qx 'content-type: text/javascript; charset=utf-8' <<<"$HEAD" || fail "app.js content type"
    [ "$BODY" == "$(cat "$ROOT/tools/dashboard/app.js")" ] || fail "app.js differs from the source"
}
run_case case_page_and_assets

case_refusals() {
    get / -X POST
    assert_eq "$CODE" 405 "POST /"
    has_header "allow: GET, HEAD"
    has_header "$CSP"
    get /assets/nope.js
    assert_eq "$CODE" 404 "unknown asset"
    get /assets/../assets/app.js --path-as-is
    [ "$CODE" == 404 ] || [ "$CODE" == 400 ] || fail "dot segments: got $CODE"
    get /assets/
    assert_eq "$CODE" 404 "the assets folder is no listing"
    get /index.html
    assert_eq "$CODE" 401 "other paths are the API's (token required)"
}
run_case case_refusals

case_status() {
    get /v1/status
    assert_eq "$CODE" 401 "status without a token"
    get /v1/status -H "$FIN"
    assert_eq "$CODE" 200
    python3 - "$TMP/.body" <<'PY' || fail "finance status: $BODY"
import json, sys
s = json.load(open(sys.argv[1]))
assert s["role"] == "finance" and s["partner_id"] is None, s
assert s["utc_offset_min"] == 540 and s["period_kind"] == "month", s
assert s["closed_periods"] == ["2026-07"], s
assert s["head_seq"] == 20 and len(s["head_hash"]) == 32, s
assert s["events_24h_scanned"] == 20 and s["events_24h_partial"] is False, s
assert isinstance(s["features"], list) and len(s["today"]) == 10, s
PY
    get /v1/status -H "$PAR1"
    assert_eq "$CODE" 200
    python3 - "$TMP/.body" <<'PY' || fail "partner status: $BODY"
import json, sys
s = json.load(open(sys.argv[1]))
assert s["role"] == "partner" and s["partner_id"] == "P1", s
assert "head_seq" not in s and "head_hash" not in s and "events_24h" not in s, s
assert s["closed_periods"] == ["2026-07"], s
PY
    get /v1/status -H "$ING"
    assert_eq "$CODE" 200 "ingest may ask who it is"
    get /v1/status -H "$FIN" -X POST
    assert_eq "$CODE" 405
}
run_case case_status

case_deals() {
    get "/v1/deals" -H "$FIN"
    assert_eq "$CODE" 200
    python3 - "$TMP/.body" <<'PY' || fail "all open deals: $BODY"
import json, sys
d = json.load(open(sys.argv[1]))
assert [s["name"] for s in d["stages"]] == ["registered", "qualified", "proposal", "negotiation"], d
assert d["stages"][0]["exit_requires"] == ["amount"], d
assert [x["deal_id"] for x in d["deals"]] == ["D2", "D1", "D3", "D4"], d  # partner, stage (bytewise), deal
assert d["matched"] == 4 and d["truncated"] is False, d
d2 = [x for x in d["deals"] if x["deal_id"] == "D2"][0]
assert d2["stage"] == "qualified" and d2["entered_stage_on"] == "2026-08-09", d2
assert d2["amount_minor"] == 250000 and d2["expected_close"] == "2026-09-30", d2
assert d2["rep_id"] == "R2" and d2["registered_at"] == "2026-08-06T01:00:00Z", d2
PY
    get "/v1/deals?stage=registered&limit=2" -H "$FIN"
    python3 - "$TMP/.body" <<'PY' || fail "stage filter and limit: $BODY"
import json, sys
d = json.load(open(sys.argv[1]))
assert [x["deal_id"] for x in d["deals"]] == ["D1", "D3"], d
assert d["matched"] == 3 and d["truncated"] is True, d
PY
    # the next page: every deal of a stage can be listed, a page at a time (dashboard.md: a stage
    # opens the list of its deals)
    get "/v1/deals?stage=registered&limit=2&offset=2" -H "$FIN"
    python3 - "$TMP/.body" <<'PY' || fail "the second page: $BODY"
import json, sys
d = json.load(open(sys.argv[1]))
assert [x["deal_id"] for x in d["deals"]] == ["D4"], d
assert d["matched"] == 3 and d["offset"] == 2 and d["truncated"] is False, d
PY
    get "/v1/deals?stage=registered&offset=3" -H "$FIN"
    python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["deals"]==[] and d["matched"]==3, d' \
        "$TMP/.body" || fail "past the end: $BODY"
    get "/v1/deals?offset=-1" -H "$FIN"
    assert_eq "$CODE" 400 "a negative offset"
    get "/v1/deals?partner=P1&stage=qualified" -H "$FIN"
    python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert [x["deal_id"] for x in d["deals"]]==["D2"], d' \
        "$TMP/.body" || fail "partner+stage: $BODY"
    get "/v1/deals?partner=NOPE" -H "$FIN"
    assert_eq "$CODE" 404 "unknown partner"
    get "/v1/deals?limit=0" -H "$FIN"
    assert_eq "$CODE" 400 "limit 0"
    get "/v1/deals?limit=1001" -H "$FIN"
    assert_eq "$CODE" 400 "limit above 1000"
    get "/v1/deals" -H "$PAR1"
    python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert [x["deal_id"] for x in d["deals"]]==["D2","D1"], d' \
        "$TMP/.body" || fail "partner sees its own: $BODY"
    get "/v1/deals?partner=P2" -H "$PAR1"
    assert_eq "$CODE" 404 "another partner's deals"
    get "/v1/deals?partner=NOPE" -H "$PAR1"
    assert_eq "$CODE" 404 "the same answer as an unknown partner"
    get "/v1/deals" -H "$ING"
    assert_eq "$CODE" 403 "ingest may not read"
}
run_case case_deals

case_stop() {
    stop_server
}
run_case case_stop

finish
