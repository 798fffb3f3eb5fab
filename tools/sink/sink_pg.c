/* sink_pg.c - the sink's thin layer over libpq.
 *
 * Every failure is sorted into one of two kinds, because the sink answers
 * them differently: the server went away (connection refused or broken, an
 * administrator shutdown, a server starting up: SQLSTATE classes 08 and 57P)
 * is retried after a reconnect, since the position in sink_position makes a
 * retried transaction safe; anything else (a full disk, a permission, a
 * constraint) is reported with PostgreSQL's own sentence and ends the run.
 * Rows travel as COPY text: the escaping below is the whole format.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "accrue/date.h"
#include "sink.h"

bool acr__sink_dsn_valid(const char *dsn, char *msg, size_t msg_cap)
{
    char *errmsg = NULL;
    PQconninfoOption *opts = PQconninfoParse(dsn, &errmsg);
    if (opts != NULL) {
        PQconninfoFree(opts);
        return true;
    }
    snprintf(msg, msg_cap, "%s", errmsg != NULL ? errmsg : "out of memory");
    size_t n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
        msg[--n] = '\0';
    PQfreemem(errmsg);
    return false;
}

/* PostgreSQL's message without its trailing newline, on one line. */
static void clean_msg(const char *in, char *out, size_t cap)
{
    size_t j = 0;
    for (size_t i = 0; in != NULL && in[i] != '\0' && j + 1 < cap; i++)
        out[j++] = in[i] == '\n' ? ' ' : in[i];
    while (j > 0 && out[j - 1] == ' ')
        j--;
    out[j] = '\0';
}

/* A notice or warning of the server (client_min_messages = warning keeps the routine ones
 * away: "terminating connection due to ... shutdown", a disk filling up...) as one of our
 * diagnostic lines, not libpq's raw text. */
static void on_notice(void *arg, const char *message)
{
    (void)arg;
    char m[400];
    clean_msg(message, m, sizeof m);
    fprintf(stderr, "accrue: %s: PostgreSQL says: %s\n", acr_err_name(ACR_EIO), m);
}

int acr__sink_pg_connect(acr__sink_pg_t *pg, acr_err_t *err)
{
    acr__sink_pg_close(pg);
    pg->conn = PQconnectdb(pg->dsn);
    if (pg->conn == NULL)
        return acr_err_set(err, ACR_ENOMEM, "out of memory connecting to PostgreSQL");
    if (PQstatus(pg->conn) != CONNECTION_OK) {
        char m[200];
        clean_msg(PQerrorMessage(pg->conn), m, sizeof m);
        acr__sink_pg_close(pg);
        acr_err_set(err, ACR_EIO, "cannot connect to PostgreSQL: %s", m);
        return ACR__SINK_RETRY;
    }
    /* Readable errors for an operator (session settings: acr__sink_session_setup). */
    PQsetErrorVerbosity(pg->conn, PQERRORS_DEFAULT);
    PQsetNoticeProcessor(pg->conn, on_notice, NULL);
    return 0;
}

void acr__sink_pg_close(acr__sink_pg_t *pg)
{
    if (pg->conn != NULL)
        PQfinish(pg->conn);
    pg->conn = NULL;
}

static bool lost_state(const char *st)
{
    return strncmp(st, "08", 2) == 0 || strcmp(st, "57P01") == 0 || strcmp(st, "57P02") == 0 ||
           strcmp(st, "57P03") == 0;
}

int acr__sink_pg_fail(acr__sink_pg_t *pg, PGresult *res, const char *what, acr_err_t *err)
{
    const char *st = res != NULL ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    snprintf(pg->sqlstate, sizeof pg->sqlstate, "%s", st != NULL ? st : "");
    const char *m = res != NULL ? PQresultErrorMessage(res) : "";
    if (m == NULL || m[0] == '\0')
        m = pg->conn != NULL ? PQerrorMessage(pg->conn) : "no connection";
    char msg[200];
    clean_msg(m, msg, sizeof msg);
    /* Every error the server sends has a SQLSTATE; one without is libpq's own, about the
     * connection ("server closed the connection unexpectedly" after an immediate shutdown,
     * whose status may still read CONNECTION_OK when a write failed first): retried. */
    bool lost = pg->conn == NULL || PQstatus(pg->conn) == CONNECTION_BAD || st == NULL ||
                lost_state(st);
    if (st != NULL)
        acr_err_set(err, ACR_EIO, "PostgreSQL: %s: %s (SQLSTATE %s)", what, msg, st);
    else
        acr_err_set(err, ACR_EIO, "PostgreSQL: %s: %s", what, msg);
    return lost ? ACR__SINK_RETRY : ACR_EIO;
}

int acr__sink_pg_exec(acr__sink_pg_t *pg, const char *sql, const char *what, acr_err_t *err)
{
    if (pg->conn == NULL)
        return acr__sink_pg_fail(pg, NULL, what, err);
    PGresult *res = PQexec(pg->conn, sql);
    ExecStatusType s = res != NULL ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    int rc = 0;
    if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK)
        rc = acr__sink_pg_fail(pg, res, what, err);
    PQclear(res);
    return rc;
}

int acr__sink_pg_query(acr__sink_pg_t *pg, const char *sql, int nparams, const char *const *params,
                       PGresult **out, const char *what, acr_err_t *err)
{
    *out = NULL;
    if (pg->conn == NULL)
        return acr__sink_pg_fail(pg, NULL, what, err);
    PGresult *res = PQexecParams(pg->conn, sql, nparams, NULL, params, NULL, NULL, 0);
    ExecStatusType s = res != NULL ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK) {
        int rc = acr__sink_pg_fail(pg, res, what, err);
        PQclear(res);
        return rc;
    }
    *out = res;
    return 0;
}

int acr__sink_pg_copy(acr__sink_pg_t *pg, const char *table, const char *cols,
                      const acr_buf_t *rows, acr_err_t *err)
{
    char sql[1024], what[128];
    /* A qualified name (pg_temp.x) is used as it is; a bare one lives in the schema. */
    bool bare = strchr(table, '.') == NULL;
    snprintf(sql, sizeof sql, "COPY %s%s%s%s (%s) FROM STDIN", bare ? "\"" : "",
             bare ? pg->schema : "", bare ? "\"." : "", table, cols);
    snprintf(what, sizeof what, "COPY into %s%s%s", bare ? pg->schema : "", bare ? "." : "", table);
    if (pg->conn == NULL)
        return acr__sink_pg_fail(pg, NULL, what, err);
    PGresult *res = PQexec(pg->conn, sql);
    if (res == NULL || PQresultStatus(res) != PGRES_COPY_IN) {
        int rc = acr__sink_pg_fail(pg, res, what, err);
        PQclear(res);
        return rc;
    }
    PQclear(res);
    /* Sent in slices so libpq never buffers the whole table twice. */
    const size_t slice = 1u << 20;
    for (size_t off = 0; off < rows->len; off += slice) {
        size_t n = rows->len - off < slice ? rows->len - off : slice;
        if (PQputCopyData(pg->conn, (const char *)rows->data + off, (int)n) != 1)
            break;
    }
    PQputCopyEnd(pg->conn, NULL);
    int rc = 0;
    while ((res = PQgetResult(pg->conn)) != NULL) {
        if (rc == 0 && PQresultStatus(res) != PGRES_COMMAND_OK)
            rc = acr__sink_pg_fail(pg, res, what, err);
        PQclear(res);
    }
    if (rc == 0 && PQstatus(pg->conn) == CONNECTION_BAD)
        rc = acr__sink_pg_fail(pg, NULL, what, err);
    return rc;
}

/* ---- COPY text format ---------------------------------------------------------- */

int acr__sink_copy_str(acr_buf_t *b, const char *s, size_t n)
{
    if (acr_buf_reserve(b, 2 * n) != 0)
        return ACR_ENOMEM;
    uint8_t *o = b->data + b->len;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        switch (c) {
        case '\\':
            *o++ = '\\', *o++ = '\\';
            break;
        case '\t':
            *o++ = '\\', *o++ = 't';
            break;
        case '\n':
            *o++ = '\\', *o++ = 'n';
            break;
        case '\r':
            *o++ = '\\', *o++ = 'r';
            break;
        default:
            *o++ = (uint8_t)c;
        }
    }
    b->len = (size_t)(o - b->data);
    return 0;
}

int acr__sink_copy_null(acr_buf_t *b)
{
    return acr_buf_append(b, "\\N", 2);
}

int acr__sink_copy_ts(acr_buf_t *b, int64_t ms)
{
    char ts[ACR_TS_BUF];
    size_t n = acr_ts_format(ms, ts);
    return acr_buf_append(b, ts, n);
}

int acr__sink_copy_i64(acr_buf_t *b, int64_t v)
{
    char d[24];
    int n = snprintf(d, sizeof d, "%" PRId64, v);
    return acr_buf_append(b, d, (size_t)n);
}
