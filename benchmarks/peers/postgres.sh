#!/usr/bin/env bash
# postgres.sh - the PostgreSQL peer: a private cluster, COPY the CSV tables, statement.sql.
#
#   postgres.sh CSVDIR OUTDIR PERIOD...
#
# Starts a throwaway cluster (initdb + pg_ctl, C locale so text sorts bytewise, listening only on
# a unix socket in a temporary folder, no TCP), as the `postgres` user when run as root (initdb
# refuses root). Loads CSVDIR with \copy into UNLOGGED tables, writes the statement of each PERIOD
# to OUTDIR/statement-PERIOD.csv, and stops and removes the cluster on exit. Prints
# `PEER postgres load_s=S` and one `PEER postgres period=P compute_s=S` line per period.
# Exit 1 when the server binaries are missing (the caller skips the peer).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
csv=$(cd "$1" && pwd)
mkdir -p "$2"
out=$(cd "$2" && pwd)
shift 2
bindir=
for d in "$(pg_config --bindir 2>/dev/null || true)" /usr/lib/postgresql/*/bin; do
    if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && [ -x "$d/postgres" ]; then bindir=$d; fi
done
[ -n "$bindir" ] || { echo "postgres.sh: PostgreSQL server binaries (initdb, pg_ctl) not found" >&2; exit 1; }
command -v psql >/dev/null || { echo "postgres.sh: psql not found" >&2; exit 1; }

run_as=()
if [ "$(id -u)" = 0 ]; then
    id postgres >/dev/null 2>&1 || { echo "postgres.sh: running as root and no postgres user" >&2; exit 1; }
    run_as=(runuser -u postgres --)
fi
tmp=$(mktemp -d /tmp/accrue-pg.XXXXXX)
chmod 755 "$tmp"
[ ${#run_as[@]} -eq 0 ] || chown postgres "$tmp"
cleanup() {
    "${run_as[@]}" "$bindir/pg_ctl" -D "$tmp/data" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$tmp"
}
trap cleanup EXIT
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
header='period,partner_id,line,origin_period,kind,source_id,source_seq,at,rule,basis_minor,amount_minor,currency'

"${run_as[@]}" "$bindir/initdb" -D "$tmp/data" --locale=C --encoding=UTF8 -A trust -U bench \
    >"$tmp/initdb.log" 2>&1 || { cat "$tmp/initdb.log" >&2; exit 1; }
# Settings for a 2-core, 24 GiB machine and a throwaway database: no durability needed.
"${run_as[@]}" "$bindir/pg_ctl" -D "$tmp/data" -l "$tmp/server.log" -w -s \
    -o "-c listen_addresses='' -c unix_socket_directories=$tmp -c port=54329 \
        -c shared_buffers=2GB -c work_mem=1GB -c maintenance_work_mem=1GB -c fsync=off \
        -c synchronous_commit=off -c full_page_writes=off -c max_wal_size=8GB -c jit=off \
        -c max_parallel_workers_per_gather=2" start \
    || { cat "$tmp/server.log" >&2; exit 1; }
psql_() { "${run_as[@]}" psql -X -q -v ON_ERROR_STOP=1 -h "$tmp" -p 54329 -U bench -d postgres "$@"; }

# The CSV files must be readable by the postgres user for \copy (psql reads them).
t0=$(now)
{
    sed 's/CREATE TABLE/CREATE UNLOGGED TABLE/' "$here/schema.sql"
    for t in partners plans rules brackets targets sales refunds adjustments periods \
        onboarding trainings promos promo_ends; do
        echo "\\copy $t FROM '$csv/$t.csv' WITH (FORMAT csv)"
    done
    echo "ANALYZE;"
} | psql_ >/dev/null
t1=$(now)
echo "PEER postgres load_s=$(secs "$t0" "$t1")"

for period in "$@"; do
    f=$out/statement-$period.csv
    t0=$(now)
    {
        echo "$header"
        { echo "COPY ("
          sed -e "s/{{U}}/$period/g" -e 's#{{DIV}}#/#g' -e 's/;[[:space:]]*$//' "$here/statement.sql"
          echo ") TO STDOUT;"; } | psql_
    } >"$f"
    t1=$(now)
    echo "PEER postgres period=$period compute_s=$(secs "$t0" "$t1")"
done
