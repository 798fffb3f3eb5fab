/* sink.h - declarations private to `accrue sink postgres` (tools/sink/).
 *
 * The sink mirrors a ledger into PostgreSQL tables (spec reporting.md): the
 * events, the projections derived from them and the statements of closed
 * periods. Files of the module, one prefix (acr__sink_), no include circle:
 *
 *   sink_pg.c      libpq: connect, run a statement, COPY, classify errors
 *   sink_schema.c  the table definitions, created when missing and checked
 *   sink_map.c     a small string-keyed hash index for one transaction's rows
 *   sink_rows.c    one ledger range -> the rows of every table (COPY text)
 *   sink_onboarding.c  the onboarding table, recomputed in SQL for the partners a range touched
 *   sink_txn.c     one PostgreSQL transaction: position check, rows, position
 *   ../cmd_sink.c  the command (outside the module): options, the catch-up and follow loop, retries
 *
 * Only the public headers (include/accrue/) are used from the engine; the ledger is read with
 * read snapshots (acr_reader_t), never with a write transaction.
 */
#ifndef ACCRUE_TOOLS_SINK_H
#define ACCRUE_TOOLS_SINK_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "accrue/buf.h"
#include "accrue/error.h"
#include "accrue/event.h"
#include "accrue/log.h"

#define ACR__SINK_SCHEMA_MAX 63       /* PostgreSQL identifiers: NAMEDATALEN - 1 */
#define ACR__SINK_CHUNK_EVENTS 100000 /* events per PostgreSQL transaction in catch-up */

/* Outcome of a sink operation beyond 0 (ok) and negative ACR_E* codes. */
enum {
    ACR__SINK_RETRY = 1, /* PostgreSQL went away: reconnect and try again */
};

/* ---- sink_pg.c ------------------------------------------------------------ */

typedef struct acr__sink_pg {
    PGconn *conn;                          /* NULL when not connected */
    const char *dsn;                       /* --dsn, as given */
    char schema[ACR__SINK_SCHEMA_MAX + 1]; /* --schema, validated */
    char sqlstate[6];                      /* SQLSTATE of the last failure, "" when none */
} acr__sink_pg_t;

/* true when the DSN parses (key=value list or postgresql:// URI); else msg says why. */
bool acr__sink_dsn_valid(const char *dsn, char *msg, size_t msg_cap);
/* Connects (closing a previous connection). 0, or ACR__SINK_RETRY with err set
 * when the server cannot be reached. */
int acr__sink_pg_connect(acr__sink_pg_t *pg, acr_err_t *err);
void acr__sink_pg_close(acr__sink_pg_t *pg);
/* Runs one statement (no parameters) that returns no rows or whose rows are
 * ignored. 0, ACR__SINK_RETRY (connection lost) or ACR_EIO (err names the
 * statement's purpose `what` and PostgreSQL's message). */
int acr__sink_pg_exec(acr__sink_pg_t *pg, const char *sql, const char *what, acr_err_t *err);
/* Runs a query with text parameters; on success *out holds the result
 * (PQclear it). Errors as acr__sink_pg_exec. */
int acr__sink_pg_query(acr__sink_pg_t *pg, const char *sql, int nparams, const char *const *params,
                       PGresult **out, const char *what, acr_err_t *err);
/* COPY table (cols) FROM STDIN of rows already in COPY text format. */
int acr__sink_pg_copy(acr__sink_pg_t *pg, const char *table, const char *cols,
                      const acr_buf_t *rows, acr_err_t *err);
/* Classifies a failed result / connection: ACR__SINK_RETRY or ACR_EIO. */
int acr__sink_pg_fail(acr__sink_pg_t *pg, PGresult *res, const char *what, acr_err_t *err);

/* COPY text format: appends s escaped (backslash, tab, newline, CR). */
int acr__sink_copy_str(acr_buf_t *b, const char *s, size_t n);
/* The NULL marker \N. */
int acr__sink_copy_null(acr_buf_t *b);
/* A timestamp in canonical RFC 3339 (UTC), for timestamptz. */
int acr__sink_copy_ts(acr_buf_t *b, int64_t ms);
int acr__sink_copy_i64(acr_buf_t *b, int64_t v);

/* ---- sink_schema.c -------------------------------------------------------- */

/* Creates the schema and every table when missing, in one transaction, and
 * checks that existing tables have exactly the expected columns and types.
 * A fresh schema gets the position row (ledger id, 0, hash(0)) and the
 * default pipeline. Errors: ACR_EIO with a sentence (permission, another
 * definition, the server's message), ACR__SINK_RETRY. */
int acr__sink_schema_ensure(acr__sink_pg_t *pg, const char *ledger_id_hex, const char *hash0_hex,
                            acr_err_t *err);
/* Per-connection setup: the temporary tables of the update paths. */
int acr__sink_session_setup(acr__sink_pg_t *pg, acr_err_t *err);

/* ---- sink_map.c ----------------------------------------------------------- */

/* String key -> uint32 value, open addressing; keys are not copied (they are
 * slices of the read snapshot, valid while its reader is open). */
typedef struct acr__sink_map {
    struct acr__sink_slot *slots; /* cap entries */
    size_t cap;                   /* a power of two */
    size_t count;                 /* keys stored */
} acr__sink_map_t;

void acr__sink_map_init(acr__sink_map_t *m);
void acr__sink_map_destroy(acr__sink_map_t *m);
void acr__sink_map_reset(acr__sink_map_t *m);
/* The value of key, or UINT32_MAX when absent. */
uint32_t acr__sink_map_get(const acr__sink_map_t *m, acr_str_t key);
/* Sets key to value. 0 or ACR_ENOMEM. */
int acr__sink_map_put(acr__sink_map_t *m, acr_str_t key, uint32_t value);

/* ---- sink_rows.c ---------------------------------------------------------- */

typedef struct acr__sink_rows acr__sink_rows_t;

/* first_stage: the first stage of the pipeline as of the position (read from
 * PostgreSQL), for the deals registered before a pipeline.defined of the range. */
int acr__sink_rows_new(acr__sink_rows_t **out);
void acr__sink_rows_free(acr__sink_rows_t *rows);
void acr__sink_rows_reset(acr__sink_rows_t *rows, const char *first_stage,
                          int32_t utc_offset_min);
/* Turns one event (with its chain hash) into rows. r is the snapshot it was
 * read from (for a close's stored statement); its slices must stay valid
 * until acr__sink_rows_write. */
int acr__sink_rows_add(acr__sink_rows_t *rows, acr_reader_t *r, const acr_event_t *ev,
                       const uint8_t hash[ACR_HASH_LEN], acr_err_t *err);
/* Sends every table's rows inside the caller's open transaction. */
int acr__sink_rows_write(acr__sink_rows_t *rows, acr__sink_pg_t *pg, acr_err_t *err);

/* ---- sink_onboarding.c ---------------------------------------------------- */

/* Replaces the onboarding rows (partners and their reps) of the partners in touched (COPY
 * text, one partner id per line), or of every partner when all, by rows recomputed from the
 * partners, reps, trainings and events tables inside the caller's open transaction. */
int acr__sink_onboarding_write(acr__sink_pg_t *pg, bool all, const acr_buf_t *touched,
                               int32_t utc_offset_min, acr_err_t *err);
/* Recomputes every onboarding row, in its own transaction, when the table's comment does not
 * name this release's rules (a mirror filled by an earlier release), then records them. */
int acr__sink_onboarding_upgrade(acr__sink_pg_t *pg, int32_t utc_offset_min, acr_err_t *err);

/* ---- sink_txn.c ----------------------------------------------------------- */

typedef struct acr__sink_step {
    uint64_t from_seq; /* first seq mirrored (0 when none) */
    uint64_t to_seq;   /* last seq mirrored = the new position (0 when none) */
    uint64_t position; /* the position after the step */
    uint64_t head;     /* the ledger's head in the snapshot used */
} acr__sink_step_t;

/* One PostgreSQL transaction: locks and checks sink_position against the
 * ledger (ACR_ECHAIN_BROKEN when another ledger's, or the hash at its seq
 * differs, or it lies beyond the head), mirrors up to max_events events after
 * it, moves it and commits. Nothing to do: 0 with to_seq 0. Errors:
 * ACR__SINK_RETRY, ACR_EIO, ACR_ECHAIN_BROKEN, ACR_ECORRUPT, ACR_ENOMEM. */
int acr__sink_step(acr_ledger_t *ledger, acr__sink_pg_t *pg, acr__sink_rows_t *rows,
                   uint64_t max_events, acr__sink_step_t *out, acr_err_t *err);

#endif
