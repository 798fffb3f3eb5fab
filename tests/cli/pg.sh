# pg.sh - a private PostgreSQL cluster for a test (sourced after lib.sh).
#
#   pg_start            initdb in a fresh temporary folder, start the server on a unix socket
#                       there (no TCP) with a random port; sets PG_DIR, PG_PORT, PG_DSN (as
#                       the non-superuser role `sink`, owner of database `bi`) and PG_SU_DSN
#   pg_stop             fast shutdown (the EXIT trap calls it: nothing is left running)
#   pg_restart          stop and start the same cluster
#   psql_ [ARGS...]     psql as the superuser on database bi, unaligned, tuples only
#
# The server runs with the stock settings but for durability (fsync off: a test's data is
# thrown away) and with pg_stat_statements loaded: JIT stays on, as in production (the sink
# turns it off for its own session, and test_sink.sh checks it).
# As root, initdb and the server run as the `postgres` user (initdb refuses root), as
# benchmarks/peers/postgres.sh does. PG_BIN is the folder of initdb/pg_ctl (PostgreSQL 15 from
# Debian); pg_available says whether it is there.

PG_BIN=
for _d in /usr/lib/postgresql/15/bin /usr/lib/postgresql/*/bin; do
    if [ -x "$_d/initdb" ] && [ -x "$_d/pg_ctl" ]; then PG_BIN=$_d; break; fi
done
PG_DIR=
PG_PORT=
PG_AS=()
[ "$(id -u)" != 0 ] || PG_AS=(runuser -u postgres --)

pg_available() { [ -n "$PG_BIN" ] && command -v psql >/dev/null; }

pg_ctl_() { "${PG_AS[@]}" "$PG_BIN/pg_ctl" -D "$PG_DIR/data" "$@"; }

pg_server_start() {
    pg_ctl_ -l "$PG_DIR/server.log" -w -s -t 60 \
        -o "-c listen_addresses='' -c unix_socket_directories=$PG_DIR -c port=$PG_PORT \
            -c shared_buffers=${PG_SHARED_BUFFERS:-128MB} -c fsync=off -c full_page_writes=off ${PG_EXTRA_OPTS:-} \
            -c max_wal_size=2GB -c shared_preload_libraries=pg_stat_statements" start
}

pg_start() {
    PG_DIR=$(mktemp -d /tmp/accrue-pgtest.XXXXXX)
    chmod 755 "$PG_DIR"
    [ ${#PG_AS[@]} -eq 0 ] || chown postgres "$PG_DIR"
    PG_PORT=$((20000 + RANDOM % 40000))
    "${PG_AS[@]}" "$PG_BIN/initdb" -D "$PG_DIR/data" --locale=C --encoding=UTF8 -A trust \
        -U postgres >"$PG_DIR/initdb.log" 2>&1 || { cat "$PG_DIR/initdb.log" >&2; return 1; }
    pg_server_start || { cat "$PG_DIR/server.log" >&2; return 1; }
    PG_SU_DSN="host=$PG_DIR port=$PG_PORT user=postgres dbname=bi"
    PG_DSN="host=$PG_DIR port=$PG_PORT user=sink dbname=bi"
    psql -X -q -h "$PG_DIR" -p "$PG_PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 \
        -c "CREATE ROLE sink LOGIN" -c "CREATE DATABASE bi OWNER sink" >/dev/null &&
        psql -X -q -h "$PG_DIR" -p "$PG_PORT" -U postgres -d bi -v ON_ERROR_STOP=1 \
            -c "CREATE EXTENSION pg_stat_statements" >/dev/null
}

pg_stop() {
    [ -n "$PG_DIR" ] || return 0
    pg_ctl_ -m fast -w -s stop >/dev/null 2>&1 || pg_ctl_ -m immediate stop >/dev/null 2>&1
    for m in $(awk -v d="$PG_DIR" '$2 ~ "^" d {print $2}' /proc/mounts); do umount "$m"; done
    rm -rf "$PG_DIR"
    PG_DIR=
}

pg_restart() {
    pg_ctl_ -m fast -w -s stop >/dev/null 2>&1
    pg_server_start
}

psql_() {
    psql -X -q -A -t -h "$PG_DIR" -p "$PG_PORT" -U postgres -d bi -v ON_ERROR_STOP=1 "$@"
}
