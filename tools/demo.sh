#!/usr/bin/env bash
# demo.sh - `make demo`: the life of one payout period, narrated, in a
# temporary ledger built from the bundled sample data (tools/sample/).
#
# Create a ledger, publish a plan, append partners, reps, deals moving
# through stages, sales and a refund; draft and close July; check the
# statement's fingerprint with the stock xxh128sum; append a late July sale
# after the close; run August, where it appears as a prior-period line; audit
# the closed July. Nothing outside the temporary directory is touched.
set -euo pipefail
cd "$(dirname "$0")/.."

ACCRUE=${ACCRUE:-build/accrue}
SAMPLE=tools/sample
DIR=$(mktemp -d "${TMPDIR:-/tmp}/accrue-demo.XXXXXX")
trap 'rm -rf "$DIR"' EXIT
acc() { "$ACCRUE" --ledger "$DIR/ledger" "$@"; }
step() { printf '\n==> %s\n' "$*"; }

step "Create a ledger: monthly payouts, the business day at UTC+09:00 (Tokyo)"
acc init --period month --utc-offset +09:00

step "Publish the commission plan (gold brackets, referral rate, bonuses, a 30% cap)"
acc plan publish "$SAMPLE/plan.json"

step "Append partners, reps, training, a deal moving through its stages, sales, a refund"
acc append "$SAMPLE/events.jsonl"

step "Partners as of now, and the open pipeline on 2026-07-31"
acc partner list
acc pipeline --today 2026-07-31

step "Draft July (writes nothing to the ledger): one block per partner"
acc payout run 2026-07

step "Close July: the statement is stored and period.closed appended"
acc payout close 2026-07 --out "$DIR/2026-07"
cat "$DIR/2026-07/statement.csv"

step "Anyone can check the statement with a stock tool: xxh128sum vs the recorded fingerprint"
sum=$(xxh128sum "$DIR/2026-07/statement.csv" 2>/dev/null | cut -d' ' -f1)
recorded=$(acc payout list | awk '$1 == "2026-07" { print $5 }')
echo "xxh128sum: $sum"
echo "recorded:  $recorded"
[ "$sum" = "$recorded" ] && echo "fingerprint matches"

step "A late July sale arrives after the close, together with an August sale"
acc append "$SAMPLE/late.jsonl"

step "Run August: the late July sale is a prior-period line (origin_period 2026-07)"
acc payout run 2026-08 --out "$DIR/2026-08"
cat "$DIR/2026-08/statement.csv"

step "Audit the closed July: recomputed as of its through_seq, compared byte for byte"
acc payout audit 2026-07

step "Verify the hash chain and every projection"
acc verify
