#!/usr/bin/env bash
# sqlite.sh - the SQLite peer: bulk-load the CSV tables, compute statements with statement.sql.
#
#   sqlite.sh CSVDIR OUTDIR PERIOD...
#
# Loads CSVDIR (load.mjs / load.py output) into a fresh database file in OUTDIR with the sqlite3
# CLI (.import), then runs the statement of each PERIOD into OUTDIR/statement-PERIOD.csv.
# Prints on stdout one `PEER sqlite load_s=S` line and one `PEER sqlite period=P compute_s=S`
# line per period. Exit 1 when the sqlite3 CLI is missing (the caller skips the peer).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
csv=$1 out=$2
shift 2
command -v sqlite3 >/dev/null || { echo "sqlite.sh: sqlite3 CLI not found" >&2; exit 1; }
mkdir -p "$out"
db=$out/peer.sqlite
rm -f "$db"
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
header='period,partner_id,line,origin_period,kind,source_id,source_seq,at,rule,basis_minor,amount_minor,currency'

t0=$(now)
{
    echo "PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF;"
    cat "$here/schema.sql"
    echo ".mode csv"
    for t in partners plans rules brackets targets sales refunds adjustments periods \
        onboarding trainings promos promo_ends; do
        echo ".import $csv/$t.csv $t"
    done
    # .import stores an empty field as '', not NULL.
    cat <<'SQL'
UPDATE partners SET region = NULL WHERE region = '';
UPDATE plans SET clawback_days = NULLIF(clawback_days, ''), ncb = NULLIF(ncb, ''),
                 cap_bp = NULLIF(cap_bp, '');
UPDATE rules SET m_tier = NULLIF(m_tier, ''), m_kind = NULLIF(m_kind, ''),
                 m_region = NULLIF(m_region, ''), m_product = NULLIF(m_product, ''),
                 m_cert = NULLIF(m_cert, '');
UPDATE promos SET m_tier = NULLIF(m_tier, ''), m_kind = NULLIF(m_kind, ''),
                  m_region = NULLIF(m_region, ''), m_product = NULLIF(m_product, ''),
                  m_cert = NULLIF(m_cert, ''), budget = NULLIF(budget, '');
UPDATE brackets SET to_minor = NULL WHERE to_minor = '';
SQL
} | sqlite3 "$db" >/dev/null
t1=$(now)
echo "PEER sqlite load_s=$(secs "$t0" "$t1")"

for period in "$@"; do
    f=$out/statement-$period.csv
    t0=$(now)
    {
        echo "$header"
        { echo "PRAGMA temp_store=MEMORY; PRAGMA cache_size=-4000000;"
          sed -e "s/{{U}}/$period/g" -e 's#{{DIV}}#/#g' "$here/statement.sql"; } \
            | sqlite3 -batch -noheader -list "$db"
    } >"$f"
    t1=$(now)
    echo "PEER sqlite period=$period compute_s=$(secs "$t0" "$t1")"
done
