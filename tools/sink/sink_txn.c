/* sink_txn.c - one PostgreSQL transaction of the sink: the exactly-once step.
 *
 * The position (ledger id, seq, chain hash at seq) lives in sink_position and
 * moves in the same PostgreSQL transaction as the rows of the events it
 * covers, so whichever side dies at whatever instant, PostgreSQL holds
 * exactly the events 1..position and the projections as of position: a rolled
 * back transaction left nothing, a committed one left everything. The row is
 * locked (FOR UPDATE) first, so two sinks on one schema take turns instead of
 * writing the same range twice.
 *
 * Before writing, the position is checked against the ledger: same ledger id,
 * seq not beyond the head, the chain hash at seq equal to the ledger's. A
 * schema filled from another ledger, or from a history that was rewritten
 * since, is refused (chain_broken, exit 5) instead of being extended into a
 * mirror that matches neither.
 *
 * The ledger is read through one read snapshot per transaction (acr_reader_t:
 * an LMDB read transaction that never blocks the writer).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "accrue/limits.h"
#include "sink.h"

/* Locks and checks the position row: 0 with *out_pos, or an error. */
static int check_position(acr_ledger_t *ledger, acr__sink_pg_t *pg, acr_reader_t *rd, uint64_t head,
                          uint64_t *out_pos, acr_err_t *err)
{
    char sql[256], want_id[33];
    snprintf(sql, sizeof sql, "SELECT ledger_id, seq, hash FROM \"%s\".sink_position FOR UPDATE",
             pg->schema);
    acr_hash_hex(acr_ledger_config(ledger)->ledger_id, want_id);
    PGresult *res;
    int rc = acr__sink_pg_query(pg, sql, 0, NULL, &res, "reading sink_position", err);
    if (rc != 0)
        return rc;
    if (PQntuples(res) != 1) {
        rc = acr_err_set(err, ACR_ECHAIN_BROKEN,
                         "%s.sink_position holds %d rows, not the one of this ledger", pg->schema,
                         PQntuples(res));
        PQclear(res);
        return rc;
    }
    char id[80], hash[80];
    snprintf(id, sizeof id, "%s", PQgetvalue(res, 0, 0));
    snprintf(hash, sizeof hash, "%s", PQgetvalue(res, 0, 2));
    uint64_t pos = strtoull(PQgetvalue(res, 0, 1), NULL, 10);
    PQclear(res);
    if (strcmp(id, want_id) != 0)
        return acr_err_set(err, ACR_ECHAIN_BROKEN,
                           "schema %s mirrors ledger %s, not this ledger (%s): use another "
                           "--schema",
                           pg->schema, id, want_id);
    if (pos > head)
        return acr_err_set(err, ACR_ECHAIN_BROKEN,
                           "schema %s holds events up to seq %" PRIu64
                           ", beyond this ledger's head %" PRIu64 " (a rewritten history?)",
                           pg->schema, pos, head);
    uint8_t h[ACR_HASH_LEN];
    char hex[33];
    if ((rc = acr_reader_hash_at(rd, pos, h, err)) != 0)
        return rc;
    acr_hash_hex(h, hex);
    if (strcmp(hex, hash) != 0)
        return acr_err_set(err, ACR_ECHAIN_BROKEN,
                           "schema %s: the chain hash at seq %" PRIu64
                           " is %s, the ledger's is %s (a rewritten history)",
                           pg->schema, pos, hash, hex);
    *out_pos = pos;
    return 0;
}

/* The first stage of the mirrored pipeline (as of the position). */
static int first_stage(acr__sink_pg_t *pg, char *out, size_t cap, acr_err_t *err)
{
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT name FROM \"%s\".pipeline_stages ORDER BY position LIMIT 1",
             pg->schema);
    PGresult *res;
    int rc = acr__sink_pg_query(pg, sql, 0, NULL, &res, "reading pipeline_stages", err);
    if (rc != 0)
        return rc;
    snprintf(out, cap, "%s", PQntuples(res) == 1 ? PQgetvalue(res, 0, 0) : "");
    PQclear(res);
    return 0;
}

/* Reads (pos, end] from the snapshot into rows. */
static int read_range(acr_reader_t *rd, acr__sink_rows_t *rows, uint64_t pos, uint64_t end,
                      acr_err_t *err)
{
    int rc = acr_reader_seek(rd, pos + 1, err);
    for (uint64_t seq = pos + 1; rc == 0 && seq <= end; seq++) {
        acr_event_t ev;
        uint8_t hash[ACR_HASH_LEN];
        rc = acr_reader_next(rd, &ev, hash, err);
        if (rc == 0)
            return acr_err_set(err, ACR_ECORRUPT, "the log ends before seq %" PRIu64, seq);
        if (rc < 0)
            return rc;
        ev.seq = seq;
        rc = acr__sink_rows_add(rows, rd, &ev, hash, err);
    }
    return rc;
}

static int move_position(acr__sink_pg_t *pg, acr_reader_t *rd, uint64_t end, acr_err_t *err)
{
    uint8_t h[ACR_HASH_LEN];
    char hex[33], seq[24], sql[256];
    int rc = acr_reader_hash_at(rd, end, h, err);
    if (rc != 0)
        return rc;
    acr_hash_hex(h, hex);
    snprintf(seq, sizeof seq, "%" PRIu64, end);
    snprintf(sql, sizeof sql,
             "UPDATE \"%s\".sink_position SET seq = $1, hash = $2, updated_at = clock_timestamp()",
             pg->schema);
    const char *params[] = {seq, hex};
    PGresult *res;
    rc = acr__sink_pg_query(pg, sql, 2, params, &res, "moving sink_position", err);
    PQclear(res);
    return rc;
}

int acr__sink_step(acr_ledger_t *ledger, acr__sink_pg_t *pg, acr__sink_rows_t *rows,
                   uint64_t max_events, acr__sink_step_t *out, acr_err_t *err)
{
    memset(out, 0, sizeof *out);
    acr_reader_t *rd;
    int rc = acr_reader_open(ledger, &rd, err);
    if (rc != 0)
        return rc;
    uint64_t head = acr_reader_head_seq(rd), pos = 0;
    out->head = head;
    rc = acr__sink_pg_exec(pg, "BEGIN", "BEGIN", err);
    if (rc == 0)
        rc = check_position(ledger, pg, rd, head, &pos, err);
    out->position = pos;
    if (rc == 0 && pos == head) { /* nothing new */
        rc = acr__sink_pg_exec(pg, "ROLLBACK", "ROLLBACK", err);
        acr_reader_close(rd);
        return rc;
    }
    uint64_t end = head - pos > max_events ? pos + max_events : head;
    char stage[ACR_STRING_LEN_MAX + 1];
    if (rc == 0)
        rc = first_stage(pg, stage, sizeof stage, err);
    if (rc == 0) {
        acr__sink_rows_reset(rows, stage, acr_ledger_config(ledger)->utc_offset_min);
        rc = read_range(rd, rows, pos, end, err);
    }
    if (rc == 0)
        rc = acr__sink_rows_write(rows, pg, err);
    if (rc == 0)
        rc = move_position(pg, rd, end, err);
    if (rc == 0)
        rc = acr__sink_pg_exec(pg, "COMMIT", "COMMIT", err);
    if (rc == 0) {
        out->from_seq = pos + 1;
        out->to_seq = end;
        out->position = end;
    } else if (pg->conn != NULL && PQstatus(pg->conn) == CONNECTION_OK) {
        PQclear(PQexec(pg->conn, "ROLLBACK")); /* nothing of the range stays */
    }
    acr_reader_close(rd);
    return rc;
}
