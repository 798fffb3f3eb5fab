/* sink_schema.c - the sink's tables: one definition, used to create them and
 * to check them.
 *
 * The definitions below are the contract documented in docs/reporting.md:
 * money is bigint minor units with its currency beside it, times are
 * timestamptz, JSON is jsonb, nothing is a float or a numeric. They are
 * created when missing (CREATE ... IF NOT EXISTS) in one transaction, so a
 * failure (a permission, a full disk) leaves nothing half-created; tables
 * that exist must have exactly these columns with these types, or the sink
 * refuses to write into them (someone else's table of the same name).
 * Indexes a BI user adds are not checked and not touched.
 */
#include <stdio.h>
#include <string.h>

#include "sink.h"

typedef struct col {
    const char *name; /* column name */
    const char *type; /* as format_type() prints it */
    const char *ddl;  /* the type and constraints in CREATE TABLE */
} col_t;

typedef struct table {
    const char *name;  /* table name */
    const col_t *cols; /* columns in order, ending with {NULL} */
    const char *extra; /* table constraints, or NULL */
} table_t;

#define TS "timestamp with time zone"

static const col_t events_cols[] = {
    {"seq", "bigint", "bigint NOT NULL PRIMARY KEY"},
    {"id", "text", "text NOT NULL UNIQUE"},
    {"type", "text", "text NOT NULL"},
    {"at", TS, "timestamptz NOT NULL"},
    {"recorded_at", TS, "timestamptz NOT NULL"},
    {"stream", "text", "text NOT NULL"},
    {"version", "bigint", "bigint NOT NULL"},
    {"hash", "text", "text NOT NULL"},
    {"data", "jsonb", "jsonb NOT NULL"},
    {"mirrored_at", TS, "timestamptz NOT NULL DEFAULT clock_timestamp()"},
    {"actor", "text", "text"}, /* last: a mirror made before it gets it by ALTER TABLE */
    {NULL, NULL, NULL},
};

static const col_t partners_cols[] = {
    {"partner_id", "text", "text NOT NULL PRIMARY KEY"},
    {"name", "text", "text NOT NULL"},
    {"kind", "text", "text NOT NULL"},
    {"tier", "text", "text NOT NULL"},
    {"plan_id", "text", "text NOT NULL"},
    {"currency", "text", "text NOT NULL"},
    {"region", "text", "text"},
    {"source", "text", "text"},
    {"status", "text", "text NOT NULL"},
    {"registered_at", TS, "timestamptz NOT NULL"},
    {"registered_seq", "bigint", "bigint NOT NULL"},
    {"name_at", TS, "timestamptz NOT NULL"},
    {"tier_at", TS, "timestamptz NOT NULL"},
    {"plan_at", TS, "timestamptz NOT NULL"},
    {"region_at", TS, "timestamptz NOT NULL"},
    {NULL, NULL, NULL},
};

static const col_t reps_cols[] = {
    {"partner_id", "text", "text NOT NULL"},    {"rep_id", "text", "text NOT NULL"},
    {"name", "text", "text NOT NULL"},          {"added_at", TS, "timestamptz NOT NULL"},
    {"added_seq", "bigint", "bigint NOT NULL"}, {NULL, NULL, NULL},
};

static const col_t trainings_cols[] = {
    {"seq", "bigint", "bigint NOT NULL PRIMARY KEY"},
    {"partner_id", "text", "text NOT NULL"},
    {"rep_id", "text", "text"},
    {"module", "text", "text NOT NULL"},
    {"at", TS, "timestamptz NOT NULL"},
    {NULL, NULL, NULL},
};

static const col_t onboarding_cols[] = {
    {"partner_id", "text", "text NOT NULL"},
    {"rep_id", "text", "text"},
    {"modules", "text[]", "text[] NOT NULL"},
    {"completed", "text[]", "text[] NOT NULL"},
    {"missing", "text[]", "text[] NOT NULL"},
    {"certified", "boolean", "boolean NOT NULL"},
    {"certified_on", "date", "date"},
    {NULL, NULL, NULL},
};

static const col_t stages_cols[] = {
    {"position", "integer", "integer NOT NULL PRIMARY KEY"},
    {"name", "text", "text NOT NULL UNIQUE"},
    {"exit_requires", "text[]", "text[] NOT NULL"},
    {NULL, NULL, NULL},
};

static const col_t deals_cols[] = {
    {"deal_id", "text", "text NOT NULL PRIMARY KEY"},
    {"partner_id", "text", "text NOT NULL"},
    {"customer_id", "text", "text NOT NULL"},
    {"name", "text", "text"},
    {"currency", "text", "text NOT NULL"},
    {"amount_minor", "bigint", "bigint"},
    {"expected_close", "date", "date"},
    {"rep_id", "text", "text"},
    {"stage", "text", "text NOT NULL"},
    {"stage_entered_at", TS, "timestamptz NOT NULL"},
    {"outcome", "text", "text"},
    {"reason", "text", "text"},
    {"registered_at", TS, "timestamptz NOT NULL"},
    {"registered_seq", "bigint", "bigint NOT NULL"},
    {"closed_at", TS, "timestamptz"},
    {NULL, NULL, NULL},
};

static const col_t deal_stages_cols[] = {
    {"deal_id", "text", "text NOT NULL"},
    {"seq", "bigint", "bigint NOT NULL"},
    {"stage", "text", "text NOT NULL"},
    {"at", TS, "timestamptz NOT NULL"},
    {NULL, NULL, NULL},
};

static const col_t sales_cols[] = {
    {"sale_id", "text", "text NOT NULL PRIMARY KEY"},
    {"seq", "bigint", "bigint NOT NULL"},
    {"partner_id", "text", "text NOT NULL"},
    {"customer_id", "text", "text NOT NULL"},
    {"product", "text", "text NOT NULL"},
    {"amount_minor", "bigint", "bigint NOT NULL"},
    {"currency", "text", "text NOT NULL"},
    {"at", TS, "timestamptz NOT NULL"},
    {"deal_id", "text", "text"},
    {"rep_id", "text", "text"},
    {"refunded_minor", "bigint", "bigint NOT NULL"},
    {"refunds", "integer", "integer NOT NULL"},
    {"last_refund_at", TS, "timestamptz"},
    {NULL, NULL, NULL},
};

static const col_t closes_cols[] = {
    {"period", "text", "text NOT NULL PRIMARY KEY"},
    {"seq", "bigint", "bigint NOT NULL"},
    {"through_seq", "bigint", "bigint NOT NULL"},
    {"fingerprint", "text", "text NOT NULL"},
    {"lines", "bigint", "bigint NOT NULL"},
    {"totals", "jsonb", "jsonb NOT NULL"},
    {"period_end", TS, "timestamptz NOT NULL"},
    {"recorded_at", TS, "timestamptz NOT NULL"},
    {NULL, NULL, NULL},
};

static const col_t lines_cols[] = {
    {"period", "text", "text NOT NULL"},
    {"partner_id", "text", "text NOT NULL"},
    {"line", "integer", "integer NOT NULL"},
    {"origin_period", "text", "text NOT NULL"},
    {"kind", "text", "text NOT NULL"},
    {"source_id", "text", "text NOT NULL"},
    {"source_seq", "bigint", "bigint"},
    {"at", TS, "timestamptz"},
    {"rule", "text", "text"},
    {"basis_minor", "bigint", "bigint NOT NULL"},
    {"amount_minor", "bigint", "bigint NOT NULL"},
    {"currency", "text", "text NOT NULL"},
    {NULL, NULL, NULL},
};

static const col_t position_cols[] = {
    {"ledger_id", "text", "text NOT NULL PRIMARY KEY"},
    {"seq", "bigint", "bigint NOT NULL"},
    {"hash", "text", "text NOT NULL"},
    {"updated_at", TS, "timestamptz NOT NULL DEFAULT clock_timestamp()"},
    {NULL, NULL, NULL},
};

static const table_t tables[] = {
    {"events", events_cols, NULL},
    {"partners", partners_cols, NULL},
    {"reps", reps_cols, "PRIMARY KEY (partner_id, rep_id)"},
    {"trainings", trainings_cols, NULL},
    {"onboarding", onboarding_cols, NULL},
    {"pipeline_stages", stages_cols, NULL},
    {"deals", deals_cols, NULL},
    {"deal_stages", deal_stages_cols, "PRIMARY KEY (deal_id, seq)"},
    {"sales", sales_cols, NULL},
    {"closes", closes_cols, NULL},
    {"statement_lines", lines_cols, "PRIMARY KEY (period, partner_id, line)"},
    {"sink_position", position_cols, NULL}, /* last (check_whole) */
};

#define NTABLES (sizeof tables / sizeof tables[0])

static int create_sql(const table_t *t, const char *schema, acr_buf_t *b)
{
    int rc = acr_buf_printf(b, "CREATE TABLE IF NOT EXISTS \"%s\".%s (", schema, t->name);
    for (const col_t *c = t->cols; rc == 0 && c->name != NULL; c++)
        rc = acr_buf_printf(b, "%s%s %s", c == t->cols ? "" : ", ", c->name, c->ddl);
    if (rc == 0 && t->extra != NULL)
        rc = acr_buf_printf(b, ", %s", t->extra);
    return rc ? rc : acr_buf_append_str(b, ");\n");
}

/* Compares the columns PostgreSQL has with the definitions: every column of the sink's, by
 * name, with its type. A column of the sink's missing or of another type means a table that
 * is not the sink's (refused, named). Columns of a reporting team's own (ALTER TABLE ... ADD
 * COLUMN) are kept when the sink can leave them out of its rows: nullable or with a default
 * (every statement of the sink names its columns). */
static int check_columns(acr__sink_pg_t *pg, acr_err_t *err)
{
    static const char sql[] =
        "SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod), "
        "a.attnotnull AND NOT a.atthasdef "
        "FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = $1 AND a.attnum > 0 AND NOT a.attisdropped AND c.relkind = 'r' "
        "ORDER BY c.relname, a.attnum";
    const char *params[] = {pg->schema};
    PGresult *res;
    int rc = acr__sink_pg_query(pg, sql, 1, params, &res, "reading the table definitions", err);
    if (rc != 0)
        return rc;
    int nrows = PQntuples(res);
    for (size_t t = 0; rc == 0 && t < NTABLES; t++) {
        const char *tn = tables[t].name;
        for (const col_t *c = tables[t].cols; rc == 0 && c->name != NULL; c++) {
            int i = 0;
            while (i < nrows && (strcmp(PQgetvalue(res, i, 0), tn) != 0 ||
                                 strcmp(PQgetvalue(res, i, 1), c->name) != 0))
                i++;
            if (i == nrows)
                rc = acr_err_set(err, ACR_EIO,
                                 "table %s.%s lacks column %s %s: it is not the sink's; pick "
                                 "another --schema",
                                 pg->schema, tn, c->name, c->type);
            else if (strcmp(PQgetvalue(res, i, 2), c->type) != 0)
                rc = acr_err_set(err, ACR_EIO,
                                 "table %s.%s exists with another definition (column %s is %s, "
                                 "the sink's is %s): it is not the sink's; pick another --schema",
                                 pg->schema, tn, c->name, PQgetvalue(res, i, 2), c->type);
        }
        for (int i = 0; rc == 0 && i < nrows; i++) { /* columns of the table not the sink's */
            if (strcmp(PQgetvalue(res, i, 0), tn) != 0)
                continue;
            const char *name = PQgetvalue(res, i, 1);
            const col_t *c = tables[t].cols;
            while (c->name != NULL && strcmp(c->name, name) != 0)
                c++;
            if (c->name == NULL && strcmp(PQgetvalue(res, i, 3), "t") == 0)
                rc = acr_err_set(err, ACR_EIO,
                                 "table %s.%s exists with another definition (column %s %s is "
                                 "NOT NULL without a default, and the sink's rows cannot fill "
                                 "it): make it nullable or give it a default, or pick another "
                                 "--schema",
                                 pg->schema, tn, name, PQgetvalue(res, i, 2));
        }
    }
    PQclear(res);
    return rc;
}

/* The position row and the default pipeline (events.md) of a fresh schema. */
static int seed_rows(acr__sink_pg_t *pg, const char *ledger_id_hex, const char *hash0_hex,
                     acr_err_t *err)
{
    char sql[1024];
    snprintf(sql, sizeof sql,
             "INSERT INTO \"%s\".sink_position (ledger_id, seq, hash) "
             "SELECT $1, 0, $2 WHERE NOT EXISTS (SELECT 1 FROM \"%s\".sink_position)",
             pg->schema, pg->schema);
    const char *params[] = {ledger_id_hex, hash0_hex};
    PGresult *res;
    int rc = acr__sink_pg_query(pg, sql, 2, params, &res, "creating the position", err);
    if (rc != 0)
        return rc;
    bool fresh = strcmp(PQcmdTuples(res), "1") == 0;
    PQclear(res);
    if (!fresh)
        return 0;
    snprintf(sql, sizeof sql,
             "INSERT INTO \"%s\".pipeline_stages (position, name, exit_requires) VALUES "
             "(1, 'registered', '{amount}'), (2, 'qualified', '{expected_close}'), "
             "(3, 'proposal', '{}'), (4, 'negotiation', '{}')",
             pg->schema);
    return acr__sink_pg_exec(pg, sql, "creating the default pipeline", err);
}

/* The recomputes of a transaction look up the onboarding lists, and sometimes the partner
 * updates at one instant, among the events by type. Without these two small partial indexes
 * each transaction read the whole events table, so a catch-up cost the square of its length
 * (10 M events: 272 s) and a following sink on a large mirror fell seconds behind. Created
 * only when missing: CREATE INDEX locks the table even when the index exists, and a second
 * sink's setup would then wait on (and deadlock with) the first one's transactions. After
 * check_columns, so a foreign `events` is refused by name rather than by this SQL. */
static int create_indexes(acr__sink_pg_t *pg, acr_err_t *err)
{
    char sql[512];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM pg_indexes WHERE schemaname = '%s' AND indexname IN "
             "('events_onboarding_defined', 'events_partner_updated')",
             pg->schema);
    PGresult *res;
    int rc = acr__sink_pg_query(pg, sql, 0, NULL, &res, "looking up the indexes", err);
    if (rc != 0)
        return rc;
    bool both = strcmp(PQgetvalue(res, 0, 0), "2") == 0;
    PQclear(res);
    if (both)
        return 0;
    snprintf(sql, sizeof sql,
             "CREATE INDEX IF NOT EXISTS events_onboarding_defined ON \"%s\".events (at, seq) "
             "WHERE type = 'onboarding.defined';"
             "CREATE INDEX IF NOT EXISTS events_partner_updated ON \"%s\".events (at) "
             "WHERE type = 'partner.updated'",
             pg->schema, pg->schema);
    return acr__sink_pg_exec(pg, sql, "creating the indexes", err);
}

/* A permission failure, told with the schema's owner. */
static void explain_permission(acr__sink_pg_t *pg, acr_err_t *err)
{
    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT pg_get_userbyid(nspowner), current_user FROM pg_namespace "
             "WHERE nspname = '%s'",
             pg->schema);
    PGresult *res = PQexec(pg->conn, sql);
    if (res != NULL && PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1) {
        char owner[64], me[64];
        snprintf(owner, sizeof owner, "%s", PQgetvalue(res, 0, 0));
        snprintf(me, sizeof me, "%s", PQgetvalue(res, 0, 1));
        acr_err_set(err, ACR_EIO,
                    "PostgreSQL: schema %s belongs to role %s and role %s may not create or "
                    "write its tables: pick another --schema or have %s grant the rights",
                    pg->schema, owner, me, owner);
    }
    PQclear(res);
}

/* The events table of a mirror holds exactly the rows of seq 1..position, one each (seq is its
 * primary key): a row deleted or added by hand would otherwise go unnoticed, since the sink
 * only ever writes after the position. Counted once per session (an index-only scan of the
 * key), the position read in the same statement: one snapshot, so a sink committing beside
 * this one (two first runs on one schema) is seen whole or not at all. Refused like a missing
 * table, naming the first seq missing. */
static int check_events_rows(acr__sink_pg_t *pg, acr_err_t *err)
{
    char q[512];
    snprintf(q, sizeof q,
             "WITH p AS (SELECT coalesce(max(seq), 0) AS seq FROM \"%s\".sink_position) "
             "SELECT (SELECT seq FROM p), "
             "count(*) FILTER (WHERE seq BETWEEN 1 AND (SELECT seq FROM p)), "
             "count(*) FILTER (WHERE seq NOT BETWEEN 1 AND (SELECT seq FROM p)) "
             "FROM \"%s\".events",
             pg->schema, pg->schema);
    PGresult *res;
    int rc = acr__sink_pg_query(pg, q, 0, NULL, &res, "counting the mirrored events", err);
    if (rc != 0)
        return rc;
    char pos[32], inside[32], outside[32];
    snprintf(pos, sizeof pos, "%s", PQgetvalue(res, 0, 0));
    snprintf(inside, sizeof inside, "%s", PQgetvalue(res, 0, 1));
    snprintf(outside, sizeof outside, "%s", PQgetvalue(res, 0, 2));
    PQclear(res);
    const char *params[] = {pos};
    if (strcmp(inside, pos) == 0 && strcmp(outside, "0") == 0)
        return 0;
    char first[32] = "-";
    if (strcmp(inside, pos) != 0) {
        snprintf(q, sizeof q,
                 "SELECT s FROM generate_series(1, $1::bigint) s WHERE NOT EXISTS "
                 "(SELECT 1 FROM \"%s\".events e WHERE e.seq = s) ORDER BY s LIMIT 1",
                 pg->schema);
        if ((rc = acr__sink_pg_query(pg, q, 1, params, &res, "finding the missing event",
                                     err)) != 0)
            return rc;
        if (PQntuples(res) == 1)
            snprintf(first, sizeof first, "%s", PQgetvalue(res, 0, 0));
        PQclear(res);
    }
    return acr_err_set(err, ACR_EIO,
                       "schema %s mirrors the ledger up to seq %s, but its events table holds "
                       "%s of seq 1..%s (first missing: %s) and %s rows outside them: rows "
                       "were deleted or added outside the sink; drop it (DROP SCHEMA \"%s\" "
                       "CASCADE) and mirror again, or pick another --schema",
                       pg->schema, pos, inside, pos, first, outside, pg->schema);
}

/* A mirror with a position past 0 holds every table's rows up to it: a table missing from it
 * (dropped by hand) would be created empty while the position says its rows are in, and the
 * sink would never refill it. Refused, naming the table; onboarding alone is recomputed whole
 * from the other tables (acr__sink_onboarding_upgrade), so it may be created again. */
static int check_whole(acr__sink_pg_t *pg, acr_err_t *err)
{
    static const char sql[] =
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = $1 AND c.relkind = 'r'";
    const char *params[] = {pg->schema};
    PGresult *res;
    int rc = acr__sink_pg_query(pg, sql, 1, params, &res, "reading the schema's tables", err);
    if (rc != 0)
        return rc;
    bool have[NTABLES] = {false};
    for (int i = 0; i < PQntuples(res); i++)
        for (size_t t = 0; t < NTABLES; t++)
            have[t] = have[t] || strcmp(PQgetvalue(res, i, 0), tables[t].name) == 0;
    PQclear(res);
    char q[256];
    /* rows without sink_position (last): events, or the stage list every mirror starts with */
    for (size_t t = 0; !have[NTABLES - 1] && t < NTABLES - 1; t++) {
        if (!have[t] || (strcmp(tables[t].name, "events") != 0 &&
                         strcmp(tables[t].name, "pipeline_stages") != 0))
            continue;
        snprintf(q, sizeof q, "SELECT 1 FROM \"%s\".%s LIMIT 1", pg->schema, tables[t].name);
        if ((rc = acr__sink_pg_query(pg, q, 0, NULL, &res, "reading the mirror", err)) != 0)
            return rc;
        bool rows = PQntuples(res) > 0;
        PQclear(res);
        if (rows)
            return acr_err_set(err, ACR_EIO,
                               "schema %s holds mirrored rows but has no table sink_position: "
                               "it no longer knows how far it mirrors; drop it (DROP SCHEMA "
                               "\"%s\" CASCADE) and mirror again, or pick another --schema",
                               pg->schema, pg->schema);
    }
    if (!have[NTABLES - 1]) /* no sink_position and no event: a new mirror */
        return 0;
    snprintf(q, sizeof q, "SELECT seq FROM \"%s\".sink_position", pg->schema);
    if ((rc = acr__sink_pg_query(pg, q, 0, NULL, &res, "reading the position", err)) != 0)
        return rc;
    char pos[32] = "0";
    if (PQntuples(res) == 1)
        snprintf(pos, sizeof pos, "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    if (have[0] && (rc = check_events_rows(pg, err)) != 0)
        return rc;
    if (strcmp(pos, "0") == 0)
        return 0;
    for (size_t t = 0; rc == 0 && t < NTABLES; t++)
        if (!have[t] && strcmp(tables[t].name, "onboarding") != 0)
            rc = acr_err_set(err, ACR_EIO,
                             "schema %s mirrors the ledger up to seq %s but has no table %s: "
                             "it is no longer a whole mirror; drop it (DROP SCHEMA \"%s\" "
                             "CASCADE) and mirror again, or pick another --schema",
                             pg->schema, pos, tables[t].name, pg->schema);
    return rc;
}

int acr__sink_schema_ensure(acr__sink_pg_t *pg, const char *ledger_id_hex, const char *hash0_hex,
                            acr_err_t *err)
{
    int whole = check_whole(pg, err);
    if (whole != 0)
        return whole;
    acr_buf_t sql;
    acr_buf_init(&sql);
    /* Two first runs on one new schema take turns here too (else both create the schema and
     * one fails on pg_namespace's unique index): a lock of the transaction, named after it. */
    int rc = acr_buf_printf(&sql,
                            "BEGIN;\n"
                            "SELECT pg_advisory_xact_lock(hashtext('accrue sink schema %s'));\n"
                            "CREATE SCHEMA IF NOT EXISTS \"%s\";\n",
                            pg->schema, pg->schema);
    for (size_t t = 0; rc == 0 && t < NTABLES; t++)
        rc = create_sql(&tables[t], pg->schema, &sql);
    /* A mirror made by a release before the actor (events.md) gains the column, NULL for
     * its rows: the events it holds were stored before the field existed and have none. */
    if (rc == 0)
        rc = acr_buf_printf(&sql,
                            "ALTER TABLE \"%s\".events ADD COLUMN IF NOT EXISTS actor text;\n",
                            pg->schema);
    /* The onboarding recompute looks trainings up by partner; one partner's rows are found
     * by partner_id. */
    if (rc == 0)
        rc = acr_buf_printf(&sql,
                            "CREATE INDEX IF NOT EXISTS trainings_partner ON \"%s\".trainings "
                            "(partner_id, module, at);\n"
                            "CREATE INDEX IF NOT EXISTS onboarding_partner ON \"%s\".onboarding "
                            "(partner_id);\n",
                            pg->schema, pg->schema);
    if (rc == 0)
        rc = acr_buf_append(&sql, "", 1);
    if (rc != 0) {
        acr_buf_destroy(&sql);
        return acr_err_set(err, ACR_ENOMEM, "out of memory");
    }
    /* Quiet the "already exists, skipping" notices. */
    rc = acr__sink_pg_exec(pg, "SET client_min_messages = warning", "setting up the session", err);
    if (rc == 0)
        rc = acr__sink_pg_exec(pg, (const char *)sql.data, "creating the tables", err);
    acr_buf_destroy(&sql);
    if (rc == 0)
        rc = check_columns(pg, err);
    if (rc == 0)
        rc = create_indexes(pg, err);
    if (rc == 0)
        rc = seed_rows(pg, ledger_id_hex, hash0_hex, err);
    if (rc == 0)
        return acr__sink_pg_exec(pg, "COMMIT", "committing the tables", err);
    if (rc != ACR__SINK_RETRY) {
        bool perm = strcmp(pg->sqlstate, "42501") == 0;
        PQclear(PQexec(pg->conn, "ROLLBACK"));
        if (perm)
            explain_permission(pg, err);
    }
    return rc;
}

int acr__sink_session_setup(acr__sink_pg_t *pg, acr_err_t *err)
{
    static const char sql[] =
        "SET client_min_messages = warning;"
        "SET TIME ZONE 'UTC';"
        "CREATE TEMP TABLE IF NOT EXISTS accrue_partner_patch (partner_id text, name text, "
        "name_at timestamptz, tier text, tier_at timestamptz, plan_id text, plan_at timestamptz, "
        "region text, region_at timestamptz, status text) ON COMMIT DELETE ROWS;"
        "CREATE TEMP TABLE IF NOT EXISTS accrue_deal_patch (deal_id text, stage text, "
        "stage_run_all boolean, stage_entered_at timestamptz, amount_minor bigint, "
        "expected_close date, rep_id text, outcome text, reason text, closed_at timestamptz) "
        "ON COMMIT DELETE ROWS;"
        "CREATE TEMP TABLE IF NOT EXISTS accrue_sale_patch (sale_id text, refunded_minor bigint, "
        "refunds integer, last_refund_at timestamptz) ON COMMIT DELETE ROWS;"
        "CREATE TEMP TABLE IF NOT EXISTS accrue_onboarding_touch (partner_id text) "
        "ON COMMIT DELETE ROWS;";
    /* No JIT for this session (PostgreSQL 11 and later have it, on by default): the
     * onboarding recompute's plan is costed above jit_above_cost, and compiling it took
     * 2-4 s per transaction that touches onboarding, on tables of a few rows, where
     * reporting.md wants a followed commit applied within 1 s (0.2 s without JIT). */
    int rc = PQserverVersion(pg->conn) >= 110000
                 ? acr__sink_pg_exec(pg, "SET jit = off", "setting up the session", err)
                 : 0;
    return rc != 0 ? rc : acr__sink_pg_exec(pg, sql, "setting up the session", err);
}
