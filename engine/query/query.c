/* query.c - the read-model queries of projection.h: partners, one deal, the
 * pipeline and the KPIs, answered in the JSON of cli.md.
 *
 * Each query reads one snapshot (a reader's MDB_NOTLS read transaction), so
 * its answer is consistent with one commit even while appends go on. Rows
 * come from the projection tables that projection.c maintains; slices into
 * their pages stay valid until the snapshot closes. The one figure not kept
 * in a table is commission_minor: it depends on plans, brackets and caps
 * across a whole period, so the KPI query has the payout driver (engine/payout)
 * run the pure commission processor over the snapshot's log (without the closed
 * statements, so it yields the lines as of the head, ignoring closes) and sums
 * the lines of the requested period, unless the handle's KPI memo (kpi_memo.c)
 * still holds them. Numbers are integers throughout; a median of an even count is
 * written with a literal ".5", never through a double.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "accrue/commission.h"
#include "accrue/date.h"
#include "accrue/projection.h"
#include "../projection/projection_internal.h"
#include "../payout/payout_internal.h"
#include "../state/state_internal.h"
#include "../state/program_internal.h"
#include "kpi_memo.h"

/* ---- Snapshot and JSON writer -------------------------------------------------- */

typedef struct snap {
    acr_ledger_t *l;
    acr_reader_t *r;
    MDB_txn *txn; /* the reader's read transaction of the derived state */
} snap_t;

static int snap_open(acr_ledger_t *l, snap_t *s, acr_err_t *err)
{
    s->l = l;
    int rc = acr_reader_open(l, &s->r, err);
    s->txn = rc == 0 ? acr__reader_txn(s->r, ACR_DB_PROJ_PARTNERS) : NULL;
    return rc;
}

/* A row of the snapshot: 1 found, 0 absent, negative on failure. */
static int sget(const snap_t *s, int db, MDB_val key, MDB_val *out, acr_err_t *err)
{
    int rc = mdb_get(acr__reader_txn(s->r, db), s->l->dbi[db], &key, out);
    if (rc == MDB_NOTFOUND)
        return 0;
    return rc ? acr__mdb_err(rc, err, acr__db_name(db)) : 1;
}

static acr_str_t cstr(const char *s)
{
    return (acr_str_t){s, (uint32_t)strlen(s)};
}

typedef struct jw {
    acr_buf_t *b;
    size_t start; /* where this answer begins in b */
    int rc;       /* first append failure */
} jw_t;

static void jw_raw(jw_t *w, const char *s, size_t n)
{
    if (w->rc == 0)
        w->rc = acr_buf_append(w->b, s, n);
}

/* A comma unless the answer is empty or the last byte opens a container or a value. */
static void jw_sep(jw_t *w)
{
    if (w->b->len > w->start && strchr("{[:", w->b->data[w->b->len - 1]) == NULL)
        jw_raw(w, ",", 1);
}

static void jw_open(jw_t *w, char c)
{
    jw_sep(w);
    jw_raw(w, &c, 1);
}

static void jw_close(jw_t *w, char c)
{
    jw_raw(w, &c, 1);
}

static void jw_key(jw_t *w, const char *key)
{
    jw_sep(w);
    jw_raw(w, "\"", 1);
    jw_raw(w, key, strlen(key));
    jw_raw(w, "\":", 2);
}

static void jw_str(jw_t *w, acr_str_t s)
{
    if (w->rc == 0)
        w->rc = acr_buf_append_json_str(w->b, s.ptr, s.len);
}

static void jw_cstr(jw_t *w, const char *s)
{
    jw_str(w, cstr(s));
}

static void jw_i64(jw_t *w, int64_t v)
{
    char num[24];
    int n = snprintf(num, sizeof num, "%lld", (long long)v);
    jw_raw(w, num, (size_t)n);
}

static void jw_null(jw_t *w)
{
    jw_raw(w, "null", 4);
}

static void jw_str_or_null(jw_t *w, bool has, acr_str_t s)
{
    if (has)
        jw_str(w, s);
    else
        jw_null(w);
}

static void jw_ts(jw_t *w, int64_t at_ms)
{
    char ts[ACR_TS_BUF];
    size_t n = acr_ts_format(at_ms, ts);
    jw_str(w, (acr_str_t){ts, (uint32_t)n});
}

static void jw_date(jw_t *w, int64_t day)
{
    char d[11];
    acr_date_format((int32_t)day, d);
    jw_cstr(w, d);
}

/* Ends a query: closes the snapshot, maps a writer failure, drops a partial answer. */
static int finish(snap_t *s, jw_t *w, int rc, acr_err_t *err)
{
    acr_reader_close(s->r);
    if (rc == 0 && w->rc != 0)
        rc = acr_err_set(err, ACR_ENOMEM, "out of memory");
    if (rc != 0)
        w->b->len = w->start;
    return rc;
}

static MDB_val sval(acr_str_t s)
{
    return acr__val(s.ptr, s.len);
}

static acr_str_t vstr(MDB_val v)
{
    return (acr_str_t){v.mv_data, (uint32_t)v.mv_size};
}

static int cmp_str(acr_str_t a, acr_str_t b)
{
    int c = memcmp(a.ptr, b.ptr, a.len < b.len ? a.len : b.len);
    return c ? c : (a.len > b.len) - (a.len < b.len);
}

/* Calls fn for every row whose key starts with prefix, with the rest of the key. */
typedef int (*row_fn)(void *ctx, acr_str_t key_rest, MDB_val val, acr_err_t *err);

static int scan_prefix(const snap_t *s, int db, const acr__pkey_t *prefix, row_fn fn, void *ctx,
                       acr_err_t *err)
{
    MDB_cursor *cur;
    int rc = mdb_cursor_open(acr__reader_txn(s->r, db), s->l->dbi[db], &cur);
    if (rc != 0)
        return acr__mdb_err(rc, err, acr__db_name(db));
    MDB_val k = acr__val(prefix->b, prefix->len), v;
    int frc = 0;
    MDB_cursor_op first = prefix->len ? MDB_SET_RANGE : MDB_FIRST; /* no empty keys in LMDB */
    for (rc = mdb_cursor_get(cur, &k, &v, first); rc == 0 && frc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size < prefix->len || memcmp(k.mv_data, prefix->b, prefix->len) != 0)
            break;
        acr_str_t rest = {(const char *)k.mv_data + prefix->len,
                          (uint32_t)(k.mv_size - prefix->len)};
        frc = fn(ctx, rest, v, err);
    }
    mdb_cursor_close(cur);
    if (frc != 0)
        return frc;
    return rc == 0 || rc == MDB_NOTFOUND ? 0 : acr__mdb_err(rc, err, acr__db_name(db));
}

static acr__pkey_t prefix1(acr_str_t a)
{
    acr__pkey_t k = {.len = 0};
    acr__pkey_part(&k, a);
    return k;
}

/* ---- Partners ------------------------------------------------------------------- */

static int rep_row(void *ctx, acr_str_t rep_id, MDB_val val, acr_err_t *err)
{
    (void)err;
    jw_t *w = ctx;
    jw_open(w, '{');
    jw_key(w, "rep_id");
    jw_str(w, rep_id);
    jw_key(w, "name");
    jw_str(w, vstr(val));
    jw_close(w, '}');
    return 0;
}

static int training_row(void *ctx, acr_str_t key_rest, MDB_val val, acr_err_t *err)
{
    jw_t *w = ctx;
    (void)key_rest;
    acr__kv_reader_t r;
    acr__kv_reader_init(&r, val.mv_data, val.mv_size);
    acr_str_t module = acr__kv_get_str(&r), rep = acr__kv_get_str(&r);
    int64_t day = acr__kv_get_i64(&r);
    if (r.bad)
        return acr_err_set(err, ACR_ECORRUPT, "a proj_training row is damaged");
    jw_open(w, '{');
    jw_key(w, "module");
    jw_str(w, module);
    jw_key(w, "rep_id");
    jw_str_or_null(w, rep.len > 0, rep);
    jw_key(w, "date");
    jw_date(w, day);
    jw_close(w, '}');
    return 0;
}

static int partner_json(const snap_t *s, jw_t *w, acr_str_t pid, MDB_val val, acr_err_t *err)
{
    acr__prow_t p;
    if (acr__prow_decode(val.mv_data, val.mv_size, &p) != 0)
        return acr_err_set(err, ACR_ECORRUPT, "a proj_partners row is damaged");
    const struct {
        const char *key;
        acr_str_t v;
        bool has;
    } f[] = {{"partner_id", pid, true},   {"name", p.name, true},
             {"kind", p.kind, true},      {"tier", p.tier, true},
             {"status", p.status, true},  {"plan_id", p.plan_id, true},
             {"currency", p.currency, true}, {"region", p.region, p.flags & ACR__HAS_REGION},
             {"source", p.source, p.source.len > 0}};
    jw_open(w, '{');
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) {
        jw_key(w, f[i].key);
        jw_str_or_null(w, f[i].has, f[i].v);
    }
    acr__pkey_t k = prefix1(pid);
    jw_key(w, "reps");
    jw_open(w, '[');
    int rc = scan_prefix(s, ACR_DB_REPS, &k, rep_row, w, err);
    jw_close(w, ']');
    jw_key(w, "training");
    jw_open(w, '[');
    if (rc == 0)
        rc = scan_prefix(s, ACR_DB_PROJ_TRAINING, &k, training_row, w, err);
    jw_close(w, ']');
    jw_key(w, "onboarding"); /* program.md: modules, completed, missing, certified, reps */
    if (rc == 0 && w->rc == 0)
        rc = acr__prog_onboarding_txn(s->l, s->txn, pid, w->b, err);
    jw_close(w, '}');
    return rc;
}

static int all_partners(const snap_t *s, jw_t *w, acr_err_t *err)
{
    MDB_cursor *cur;
    int rc = mdb_cursor_open(s->txn, s->l->dbi[ACR_DB_PROJ_PARTNERS], &cur);
    if (rc != 0)
        return acr__mdb_err(rc, err, "proj_partners");
    MDB_val k, v;
    int prc = 0;
    jw_open(w, '[');
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0 && prc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT))
        prc = partner_json(s, w, vstr(k), v, err);
    jw_close(w, ']');
    mdb_cursor_close(cur);
    if (prc != 0)
        return prc;
    return rc == MDB_NOTFOUND ? 0 : acr__mdb_err(rc, err, "proj_partners");
}

int acr_query_partners(acr_ledger_t *ledger, const char *partner_id, acr_buf_t *out,
                       acr_err_t *err)
{
    snap_t s;
    jw_t w = {out, out->len, 0};
    int rc = snap_open(ledger, &s, err);
    if (rc != 0)
        return rc;
    if (partner_id == NULL) {
        rc = all_partners(&s, &w, err);
    } else {
        acr_str_t pid = {partner_id, (uint32_t)strlen(partner_id)};
        MDB_val v;
        rc = sget(&s, ACR_DB_PROJ_PARTNERS, sval(pid), &v, err);
        if (rc == 0)
            rc = acr_err_set(err, ACR_ENOT_FOUND, "no partner %s", partner_id);
        else if (rc == 1)
            rc = partner_json(&s, &w, pid, v, err);
    }
    return finish(&s, &w, rc, err);
}

/* ---- Deals ------------------------------------------------------------------------ */

static int move_row(void *ctx, acr_str_t key_rest, MDB_val val, acr_err_t *err)
{
    jw_t *w = ctx;
    (void)key_rest;
    acr__kv_reader_t r;
    acr__kv_reader_init(&r, val.mv_data, val.mv_size);
    acr_str_t stage = acr__kv_get_str(&r);
    int64_t at_ms = acr__kv_get_i64(&r);
    if (r.bad)
        return acr_err_set(err, ACR_ECORRUPT, "a proj_deal_moves row is damaged");
    jw_open(w, '{');
    jw_key(w, "stage");
    jw_str(w, stage);
    jw_key(w, "at");
    jw_ts(w, at_ms);
    jw_close(w, '}');
    return 0;
}

static int deal_json(const snap_t *s, jw_t *w, acr_str_t did, const acr__drow_t *d,
                     acr_err_t *err)
{
    static const char *const outcomes[] = {NULL, "won", "lost"};
    jw_open(w, '{');
    jw_key(w, "deal_id");
    jw_str(w, did);
    jw_key(w, "partner_id");
    jw_str(w, d->partner_id);
    jw_key(w, "customer_id");
    jw_str(w, d->customer_id);
    jw_key(w, "name");
    jw_str_or_null(w, d->flags & ACR__HAS_NAME, d->name);
    jw_key(w, "currency");
    jw_str(w, d->currency);
    jw_key(w, "amount_minor");
    if (d->flags & ACR__HAS_AMOUNT)
        jw_i64(w, d->amount_minor);
    else
        jw_null(w);
    jw_key(w, "expected_close");
    if (d->flags & ACR__HAS_EXPECTED_CLOSE)
        jw_date(w, d->expected_close_day);
    else
        jw_null(w);
    jw_key(w, "rep_id");
    jw_str_or_null(w, d->rep_id.len > 0, d->rep_id);
    jw_key(w, "stage");
    jw_str(w, d->stage);
    jw_key(w, "outcome");
    bool closed = d->outcome == ACR__DEAL_WON || d->outcome == ACR__DEAL_LOST;
    if (closed)
        jw_cstr(w, outcomes[d->outcome]);
    else
        jw_null(w);
    jw_key(w, "registered_at");
    jw_ts(w, d->registered_at_ms);
    jw_key(w, "closed_at");
    if (closed)
        jw_ts(w, d->closed_at_ms);
    else
        jw_null(w);
    jw_key(w, "reason");
    jw_str_or_null(w, d->flags & ACR__HAS_REASON, d->reason);
    jw_key(w, "history");
    jw_open(w, '[');
    acr__pkey_t k = prefix1(did);
    int rc = scan_prefix(s, ACR_DB_PROJ_DEAL_MOVES, &k, move_row, w, err);
    jw_close(w, ']');
    jw_close(w, '}');
    return rc;
}

int acr_query_deal(acr_ledger_t *ledger, const char *deal_id, acr_buf_t *out, acr_err_t *err)
{
    snap_t s;
    jw_t w = {out, out->len, 0};
    int rc = snap_open(ledger, &s, err);
    if (rc != 0)
        return rc;
    acr_str_t did = {deal_id, (uint32_t)strlen(deal_id)};
    MDB_val v;
    acr__drow_t d;
    rc = sget(&s, ACR_DB_PROJ_DEALS, sval(did), &v, err);
    if (rc == 0)
        rc = acr_err_set(err, ACR_ENOT_FOUND, "no deal %s", deal_id);
    else if (rc == 1 && acr__drow_decode(v.mv_data, v.mv_size, &d) != 0)
        rc = acr_err_set(err, ACR_ECORRUPT, "a proj_deals row is damaged");
    else if (rc == 1)
        rc = deal_json(&s, &w, did, &d, err);
    return finish(&s, &w, rc, err);
}

/* ---- Pipeline ----------------------------------------------------------------------- */

/* Open deals of one partner in one stage. */
typedef struct stage_group {
    acr_str_t stage;
    int64_t deals;
    acr_i128_t amount_minor;
    int64_t oldest_day; /* earliest local day of entering the stage */
    bool done;          /* emitted */
} stage_group_t;

typedef struct pipe_ctx {
    const snap_t *s;
    jw_t *w;
    acr__pipeline_t stages; /* the current pipeline, in order */
    int32_t today_day;
    size_t prefix_len;      /* bytes of the scanned key prefix */
    acr_str_t partner;      /* the partner whose groups are collected */
    stage_group_t *groups;  /* its stages with open deals, in stage-name order */
    size_t count, cap;
} pipe_ctx_t;

static int group_json(pipe_ctx_t *c, stage_group_t *g, acr_str_t currency, acr_err_t *err)
{
    g->done = true;
    if (g->amount_minor > INT64_MAX || g->amount_minor < INT64_MIN)
        return acr_err_set(err, ACR_EOVERFLOW, "the open amount of partner %.*s in stage %.*s "
                           "does not fit 64 bits", (int)c->partner.len, c->partner.ptr,
                           (int)g->stage.len, g->stage.ptr);
    jw_t *w = c->w;
    jw_open(w, '{');
    jw_key(w, "partner_id");
    jw_str(w, c->partner);
    jw_key(w, "stage");
    jw_str(w, g->stage);
    jw_key(w, "deals");
    jw_i64(w, g->deals);
    jw_key(w, "amount_minor");
    jw_i64(w, (int64_t)g->amount_minor);
    jw_key(w, "currency");
    jw_str(w, currency);
    jw_key(w, "oldest_days");
    jw_i64(w, c->today_day - g->oldest_day);
    jw_close(w, '}');
    return 0;
}

/* Emits the collected partner's groups: the defined stages in pipeline
 * order, then stages that a later pipeline.defined removed, by name. */
static int pipe_flush(pipe_ctx_t *c, acr_err_t *err)
{
    if (c->count == 0)
        return 0;
    MDB_val v;
    acr__prow_t p;
    int rc = sget(c->s, ACR_DB_PROJ_PARTNERS, sval(c->partner), &v, err);
    if (rc == 1 && acr__prow_decode(v.mv_data, v.mv_size, &p) != 0)
        rc = 0;
    if (rc <= 0)
        return rc ? rc : acr_err_set(err, ACR_ECORRUPT, "an open deal's partner has no row");
    rc = 0;
    for (uint32_t i = 0; rc == 0 && i < c->stages.count; i++) {
        acr_str_t name = {c->stages.names[i], (uint32_t)strlen(c->stages.names[i])};
        for (size_t g = 0; rc == 0 && g < c->count; g++)
            if (!c->groups[g].done && cmp_str(c->groups[g].stage, name) == 0)
                rc = group_json(c, &c->groups[g], p.currency, err);
    }
    for (size_t g = 0; rc == 0 && g < c->count; g++)
        if (!c->groups[g].done)
            rc = group_json(c, &c->groups[g], p.currency, err);
    c->count = 0;
    return rc;
}

/* One proj_open_deals row: partner \0 stage \0 deal -> amount, entered_day. */
static int pipe_row(void *ctx, acr_str_t key, MDB_val val, acr_err_t *err)
{
    pipe_ctx_t *c = ctx;
    key.ptr -= c->prefix_len; /* the whole key: partner \0 stage \0 deal */
    key.len += (uint32_t)c->prefix_len;
    const char *sep1 = memchr(key.ptr, '\0', key.len);
    const char *sep2 = sep1 ? memchr(sep1 + 1, '\0', key.len - (size_t)(sep1 + 1 - key.ptr))
                            : NULL;
    int64_t amount = 0, day = 0;
    if (sep2 == NULL || val.mv_size != 16)
        return acr_err_set(err, ACR_ECORRUPT, "a proj_open_deals row is damaged");
    acr__kv_reader_t r;
    acr__kv_reader_init(&r, val.mv_data, val.mv_size);
    amount = acr__kv_get_i64(&r);
    day = acr__kv_get_i64(&r);
    acr_str_t partner = {key.ptr, (uint32_t)(sep1 - key.ptr)};
    acr_str_t stage = {sep1 + 1, (uint32_t)(sep2 - sep1 - 1)};
    int rc = 0;
    if (cmp_str(partner, c->partner) != 0 && (rc = pipe_flush(c, err)) != 0)
        return rc;
    c->partner = partner;
    stage_group_t *g = c->count ? &c->groups[c->count - 1] : NULL;
    if (g == NULL || cmp_str(g->stage, stage) != 0) {
        if (c->count == c->cap) {
            size_t cap = c->cap ? 2 * c->cap : 16;
            stage_group_t *grown = realloc(c->groups, cap * sizeof *grown);
            if (grown == NULL)
                return acr_err_set(err, ACR_ENOMEM, "out of memory");
            c->groups = grown;
            c->cap = cap;
        }
        g = &c->groups[c->count++];
        *g = (stage_group_t){stage, 0, 0, day, false};
    }
    g->deals++;
    g->amount_minor += amount;
    g->oldest_day = day < g->oldest_day ? day : g->oldest_day;
    return 0;
}

static int load_stages(const snap_t *s, acr__pipeline_t *out, acr_err_t *err)
{
    MDB_val v;
    int rc = sget(s, ACR_DB_PIPELINE, acr__val("stages", 6), &v, err);
    if (rc == 1 && acr__pipeline_parse(v.mv_data, v.mv_size, out) == 0)
        return 0;
    return rc < 0 ? rc : acr_err_set(err, ACR_ECORRUPT, "the stored pipeline is damaged");
}

int acr_query_pipeline(acr_ledger_t *ledger, const char *partner_id, int32_t today_day,
                       acr_buf_t *out, acr_err_t *err)
{
    snap_t s;
    jw_t w = {out, out->len, 0};
    int rc = snap_open(ledger, &s, err);
    if (rc != 0)
        return rc;
    pipe_ctx_t c = {.s = &s, .w = &w, .today_day = today_day, .partner = {"", 0}};
    acr__pkey_t prefix = {.len = 0};
    if (partner_id != NULL) {
        acr_str_t pid = {partner_id, (uint32_t)strlen(partner_id)};
        MDB_val v;
        prefix = prefix1(pid);
        rc = sget(&s, ACR_DB_PROJ_PARTNERS, sval(pid), &v, err);
        rc = rc == 0 ? acr_err_set(err, ACR_ENOT_FOUND, "no partner %s", partner_id)
                     : rc < 0 ? rc : 0;
    }
    if (rc == 0)
        rc = load_stages(&s, &c.stages, err);
    jw_open(&w, '[');
    c.prefix_len = prefix.len;
    if (rc == 0)
        rc = scan_prefix(&s, ACR_DB_PROJ_OPEN_DEALS, &prefix, pipe_row, &c, err);
    if (rc == 0)
        rc = pipe_flush(&c, err);
    jw_close(&w, ']');
    free(c.groups);
    return finish(&s, &w, rc, err);
}

/* ---- KPIs -------------------------------------------------------------------------- */

typedef struct kpi_req {
    const char *period_id;                 /* as requested */
    int nmonths;                           /* 1 or 3 */
    char months[3][ACR_PERIOD_ID_MAX];     /* the month keys it covers */
    bool has_comm;                         /* made of whole ledger periods */
    int32_t o_lo, o_hi;                    /* the ledger periods it covers */
    int64_t end_ms;                        /* the requested period's end (certified) */
} kpi_req_t;

static int kpi_parse(const acr_ledger_t *l, const char *id, kpi_req_t *q, acr_err_t *err)
{
    int32_t idx;
    size_t n = id ? strlen(id) : 0;
    acr_period_kind_t kind = ACR_PERIOD_MONTH;
    if (id != NULL && !acr_period_parse(kind, id, n, &idx))
        kind = ACR_PERIOD_QUARTER;
    if (id == NULL || !acr_period_parse(kind, id, n, &idx))
        return acr_err_set(err, ACR_EUSAGE, "'%s' is neither a month (YYYY-MM) nor a quarter "
                           "(YYYY-Qn)", id ? id : "");
    int32_t first = acr_period_first_day(kind, idx), end = acr_period_end_day(kind, idx);
    int32_t m0 = acr_period_of_day(ACR_PERIOD_MONTH, first);
    q->period_id = id;
    q->end_ms = acr_period_end_ms(kind, idx, l->cfg.utc_offset_min);
    q->nmonths = acr_period_of_day(ACR_PERIOD_MONTH, end - 1) - m0 + 1;
    for (int i = 0; i < q->nmonths; i++)
        acr_period_format(ACR_PERIOD_MONTH, m0 + i, q->months[i]);
    acr_period_kind_t lk = l->cfg.period_kind;
    q->o_lo = acr_period_of_day(lk, first);
    q->o_hi = acr_period_of_day(lk, end - 1);
    q->has_comm = acr_period_first_day(lk, q->o_lo) == first &&
                  acr_period_end_day(lk, q->o_hi) == end;
    return 0;
}

/* Runs the processor over the whole snapshot with no closed statement fed (the payout
 * driver's pipeline, engine/payout):
 * the run of the last ledger period of the request yields, for every origin
 * period up to it, the lines as of the head ignoring closes. No CSV is formatted; each
 * partner's total sums its lines of origin >= o_lo (window_minor: the commission of the
 * request), and lines of origin before it are not even computed (window_only); the lines
 * themselves are kept only for the rows by rep. */
static int kpi_statement(const snap_t *s, const kpi_req_t *q, bool by_rep, acr_statement_t *out,
                         bool *have, acr_err_t *err)
{
    uint64_t head = acr_reader_head_seq(s->r);
    *have = false;
    if (!q->has_comm || head == 0)
        return 0;
    acr_comm_output_t o = {.omit_lines = !by_rep, .omit_csv = true, .window = true,
                           .window_lo = q->o_lo, .window_only = true};
    int rc = acr__payout_lines_ignoring_closes(s->l, s->r, q->o_hi, head, &o, out, err);
    *have = rc == 0;
    return rc;
}

typedef struct rep_acc {
    acr_str_t rep_id;              /* "" = no rep */
    int64_t c[ACR__REP__COUNT];    /* summed counters (the net pair unused) */
    acr_i128_t net_minor;
    acr_i128_t commission_minor;
} rep_acc_t;

typedef struct kpi_ctx {
    const snap_t *s;
    jw_t *w;
    const kpi_req_t *q;
    const acr_statement_t *stmt; /* NULL when commission_minor is null */
    size_t line;                 /* merge cursor over stmt->lines (sorted by partner) */
    size_t lines_lo, lines_hi;   /* the current partner's lines (rows by rep only) */
    size_t total;                /* merge cursor over stmt->partners (sorted alike) */
    acr_i128_t commission;       /* the current partner's commission in the request */
    acr_str_t partner;
    acr_str_t currency;
    int64_t *days;               /* days to win of the current partner */
    size_t ndays, days_cap;
    rep_acc_t *reps;             /* rep rows of the current partner */
    size_t nreps, reps_cap;
    struct lost_rep *lost;       /* (partner, rep) of each deal lost in the request, sorted */
    size_t nlost, lost_cap;
    bool lost_loaded;
} kpi_ctx_t;

typedef struct lost_rep {
    acr_str_t partner, rep; /* into the snapshot's pages */
} lost_rep_t;

static int grow(void **arr, size_t *cap, size_t need, size_t elem, acr_err_t *err)
{
    if (need <= *cap)
        return 0;
    size_t cap2 = *cap ? 2 * *cap : 16;
    void *p = realloc(*arr, cap2 * elem);
    if (p == NULL)
        return acr_err_set(err, ACR_ENOMEM, "out of memory");
    *arr = p;
    *cap = cap2;
    return 0;
}

static int collect_day(void *ctx, acr_str_t key_rest, MDB_val val, acr_err_t *err)
{
    kpi_ctx_t *c = ctx;
    (void)key_rest;
    int64_t d;
    if (acr__counters_decode(val.mv_data, val.mv_size, &d, 1) != 0)
        return acr_err_set(err, ACR_ECORRUPT, "a proj_kpi_wins row is damaged");
    int rc = grow((void **)&c->days, &c->days_cap, c->ndays + 1, sizeof *c->days, err);
    if (rc == 0)
        c->days[c->ndays++] = d;
    return rc;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* The median of sorted values: the middle one, or the mean of the two middle
 * ones written as an integer or with ".5" (integer halves, no double). */
static void jw_median(jw_t *w, const int64_t *d, size_t n)
{
    if (n == 0) {
        jw_null(w);
    } else if (n % 2 == 1) {
        jw_i64(w, d[n / 2]);
    } else {
        int64_t sum = d[n / 2 - 1] + d[n / 2]; /* days: far from int64 limits */
        char num[32];
        int len = sum % 2 == 0 ? snprintf(num, sizeof num, "%lld", (long long)(sum / 2))
                               : snprintf(num, sizeof num, "%s%lld.5", sum < 0 ? "-" : "",
                                          (long long)((sum < 0 ? -sum : sum) / 2));
        jw_raw(w, num, (size_t)len);
    }
}

static int jw_i128(jw_t *w, acr_i128_t v, const char *what, acr_str_t partner, acr_err_t *err)
{
    if (v > INT64_MAX || v < INT64_MIN)
        return acr_err_set(err, ACR_EOVERFLOW, "%s of partner %.*s does not fit 64 bits", what,
                           (int)partner.len, partner.ptr);
    jw_i64(w, (int64_t)v);
    return 0;
}


static void kpi_head(kpi_ctx_t *c, const acr_str_t *rep_id)
{
    jw_t *w = c->w;
    jw_open(w, '{');
    jw_key(w, "partner_id");
    jw_str(w, c->partner);
    if (rep_id != NULL) {
        jw_key(w, "rep_id");
        jw_str_or_null(w, rep_id->len > 0, *rep_id);
    }
    jw_key(w, "period");
    jw_cstr(w, c->q->period_id);
    jw_key(w, "currency");
    jw_str(w, c->currency);
}

/* The per-partner object of `kpi --format json`, keys in cli.md's order. */
static int kpi_partner_row(kpi_ctx_t *c, acr_err_t *err)
{
    int64_t sum[ACR__KPI__COUNT] = {0}, row[ACR__KPI__COUNT];
    acr_i128_t net = 0;
    int rc = 0;
    c->ndays = 0;
    for (int m = 0; rc == 0 && m < c->q->nmonths; m++) {
        acr__pkey_t k = prefix1(c->partner);
        acr__pkey_add(&k, c->q->months[m], ACR__MONTH_LEN);
        MDB_val v;
        if ((rc = sget(c->s, ACR_DB_PROJ_KPI, acr__val(k.b, k.len), &v, err)) == 1) {
            if (acr__counters_decode(v.mv_data, v.mv_size, row, ACR__KPI__COUNT) != 0)
                return acr_err_set(err, ACR_ECORRUPT, "a proj_kpi row is damaged");
            for (int i = 0; i < ACR__KPI__COUNT; i++)
                sum[i] += row[i];
            net += acr__counters_i128(row, ACR__KPI_NET_LO);
        }
        acr__pkey_add(&k, "", 1);
        if (rc >= 0)
            rc = scan_prefix(c->s, ACR_DB_PROJ_KPI_WINS, &k, collect_day, c, err);
    }
    if (rc != 0)
        return rc;
    if (c->ndays > 1)
        qsort(c->days, c->ndays, sizeof *c->days, cmp_i64);
    jw_t *w = c->w;
    int64_t won = sum[ACR__KPI_WON], lost = sum[ACR__KPI_LOST], rate_bp;
    kpi_head(c, NULL);
    jw_key(w, "deals_registered");
    jw_i64(w, sum[ACR__KPI_REGISTERED]);
    jw_key(w, "deals_won");
    jw_i64(w, won);
    jw_key(w, "deals_lost");
    jw_i64(w, lost);
    jw_key(w, "win_rate_bp");
    if (won + lost > 0 && acr_round_half_even((acr_i128_t)won * 10000, won + lost, &rate_bp))
        jw_i64(w, rate_bp);
    else
        jw_null(w);
    jw_key(w, "net_revenue_minor");
    rc = jw_i128(w, net, "the net revenue", c->partner, err);
    jw_key(w, "new_customers");
    jw_i64(w, sum[ACR__KPI_NEW_CUSTOMERS]);
    jw_key(w, "median_days_to_win");
    jw_median(w, c->days, c->ndays);
    jw_key(w, "training_modules");
    jw_i64(w, sum[ACR__KPI_TRAINING]);
    jw_key(w, "commission_minor");
    if (c->stmt == NULL)
        jw_null(w);
    else if (rc == 0)
        rc = jw_i128(w, c->commission, "the commission", c->partner, err);
    bool cert = false; /* program.md: as of the period's end minus one millisecond */
    if (rc == 0)
        rc = acr__prog_certified_txn(c->s->l, c->s->txn, c->partner, c->q->end_ms - 1, &cert,
                                     err);
    jw_key(w, "certified");
    jw_raw(w, cert ? "true" : "false", cert ? 4 : 5);
    jw_close(w, '}');
    return rc;
}

static int collect_rep(void *ctx, acr_str_t rep_id, MDB_val val, acr_err_t *err)
{
    kpi_ctx_t *c = ctx;
    int64_t row[ACR__REP__COUNT];
    if (acr__counters_decode(val.mv_data, val.mv_size, row, ACR__REP__COUNT) != 0)
        return acr_err_set(err, ACR_ECORRUPT, "a proj_rep_kpi row is damaged");
    int rc = grow((void **)&c->reps, &c->reps_cap, c->nreps + 1, sizeof *c->reps, err);
    if (rc != 0)
        return rc;
    rep_acc_t *r = &c->reps[c->nreps++];
    r->rep_id = rep_id;
    memcpy(r->c, row, sizeof row);
    r->net_minor = acr__counters_i128(row, ACR__REP_NET_LO);
    r->commission_minor = 0;
    return 0;
}

static int cmp_rep(const void *a, const void *b)
{
    return cmp_str(((const rep_acc_t *)a)->rep_id, ((const rep_acc_t *)b)->rep_id);
}

/* The rep whose sale a sale, clawback or new-customer line comes from: a
 * clawback names its refund event, whose data names the sale. */
static int line_rep(const snap_t *s, const acr_line_t *ln, acr_str_t *rep, acr_err_t *err)
{
    acr_str_t sale = cstr(ln->source_id);
    acr_event_t ev;
    MDB_val v, lv;
    int rc = 1;
    if (ln->kind == ACR_LINE_CLAWBACK) {
        rc = sget(s, ACR_DB_IDS, sval(sale), &v, err);
        if (rc == 1 && v.mv_size == 8)
            rc = sget(s, ACR_DB_LOG, v, &lv, err);
        else if (rc == 1)
            rc = 0;
        if (rc == 1 && (lv.mv_size <= ACR_HASH_LEN ||
                        acr_record_decode((const uint8_t *)lv.mv_data + ACR_HASH_LEN,
                                          lv.mv_size - ACR_HASH_LEN, &ev) != 0 ||
                        ev.type != ACR_EV_SALE_REFUNDED))
            rc = 0;
        if (rc == 1)
            sale = ev.str[ACR_F_SALE_ID];
    }
    if (rc == 1)
        rc = sget(s, ACR_DB_PROJ_SALES, sval(sale), &v, err);
    if (rc <= 0)
        return rc ? rc : acr_err_set(err, ACR_ECORRUPT, "line %s has no sale row", ln->source_id);
    acr__kv_reader_t r;
    acr__kv_reader_init(&r, v.mv_data, v.mv_size);
    acr__kv_get_str(&r);
    *rep = acr__kv_get_str(&r);
    return r.bad ? acr_err_set(err, ACR_ECORRUPT, "a proj_sales row is damaged") : 0;
}

/* Adds each sale, clawback and new-customer line in the request to its rep's row. */
static int rep_commissions(kpi_ctx_t *c, acr_err_t *err)
{
    for (size_t i = c->lines_lo; c->stmt != NULL && i < c->lines_hi; i++) {
        const acr_line_t *ln = &c->stmt->lines[i];
        if (ln->origin_period < c->q->o_lo || ln->origin_period > c->q->o_hi ||
            (ln->kind != ACR_LINE_SALE && ln->kind != ACR_LINE_CLAWBACK &&
             ln->kind != ACR_LINE_NEW_CUSTOMER_BONUS && ln->kind != ACR_LINE_PROMOTION))
            continue;
        rep_acc_t key = {.rep_id = {"", 0}};
        int rc = line_rep(c->s, ln, &key.rep_id, err);
        if (rc != 0)
            return rc;
        rep_acc_t *r = c->nreps ? bsearch(&key, c->reps, c->nreps, sizeof *c->reps, cmp_rep)
                                : NULL;
        if (r != NULL) /* always: the line's sale or refund made the row */
            r->commission_minor += ln->amount_minor;
    }
    return 0;
}

static int kpi_rep_json(kpi_ctx_t *c, const rep_acc_t *r, acr_err_t *err)
{
    jw_t *w = c->w;
    kpi_head(c, &r->rep_id);
    jw_key(w, "sales");
    jw_i64(w, r->c[ACR__REP_SALES]);
    jw_key(w, "net_revenue_minor");
    int rc = jw_i128(w, r->net_minor, "the net revenue", c->partner, err);
    jw_key(w, "new_customers");
    jw_i64(w, r->c[ACR__REP_NEW_CUSTOMERS]);
    jw_key(w, "deals_registered");
    jw_i64(w, r->c[ACR__REP_REGISTERED]);
    jw_key(w, "deals_won");
    jw_i64(w, r->c[ACR__REP_WON]);
    jw_key(w, "commission_minor");
    if (c->stmt == NULL)
        jw_null(w);
    else if (rc == 0)
        rc = jw_i128(w, r->commission_minor, "the commission", c->partner, err);
    jw_close(w, '}');
    return rc;
}

static int cmp_lost(const void *a, const void *b)
{
    const lost_rep_t *x = a, *y = b;
    int c = cmp_str(x->partner, y->partner);
    return c ? c : cmp_str(x->rep, y->rep);
}

/* The (partner, rep) of every deal lost in a month of the request (a deal's rep cannot change
 * once it is closed, so the row's rep is the rep at the time of the event), once per query. */
static int load_lost(kpi_ctx_t *c, acr_err_t *err)
{
    c->lost_loaded = true;
    MDB_cursor *cur;
    int rc = mdb_cursor_open(c->s->txn, c->s->l->dbi[ACR_DB_PROJ_DEALS], &cur);
    if (rc != 0)
        return acr__mdb_err(rc, err, "proj_deals");
    MDB_val k, v;
    int prc = 0;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0 && prc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        acr__drow_t d;
        if (acr__drow_decode(v.mv_data, v.mv_size, &d) != 0) {
            prc = acr_err_set(err, ACR_ECORRUPT, "a proj_deals row is damaged");
            break;
        }
        if (d.outcome != ACR__DEAL_LOST)
            continue;
        char month[ACR_PERIOD_ID_MAX];
        acr__month_of(d.closed_at_ms, c->s->l->cfg.utc_offset_min, month);
        bool in = false;
        for (int m = 0; m < c->q->nmonths; m++)
            in = in || memcmp(month, c->q->months[m], ACR__MONTH_LEN) == 0;
        if (in && (prc = grow((void **)&c->lost, &c->lost_cap, c->nlost + 1, sizeof *c->lost,
                              err)) == 0)
            c->lost[c->nlost++] = (lost_rep_t){d.partner_id, d.rep_id};
    }
    mdb_cursor_close(cur);
    if (prc != 0)
        return prc;
    if (rc != MDB_NOTFOUND)
        return acr__mdb_err(rc, err, "proj_deals");
    if (c->nlost > 1)
        qsort(c->lost, c->nlost, sizeof *c->lost, cmp_lost);
    return 0;
}

/* cli.md: a row per (partner, rep) that has a sale or a deal in the period. The counters say
 * so for sales, registrations and wins; their activity count also counts the refunds of the
 * rep's sales, which make no row of their own, so a row with activity and none of those has
 * one only when a deal of the rep was lost in the request. */
static int rep_has_row(kpi_ctx_t *c, const rep_acc_t *r, bool *out, acr_err_t *err)
{
    *out = r->c[ACR__REP_SALES] > 0 || r->c[ACR__REP_REGISTERED] > 0 || r->c[ACR__REP_WON] > 0;
    if (*out || r->c[ACR__REP_ACTIVITY] <= 0)
        return 0;
    int rc = c->lost_loaded ? 0 : load_lost(c, err);
    lost_rep_t key = {c->partner, r->rep_id};
    *out = rc == 0 && c->nlost > 0 &&
           bsearch(&key, c->lost, c->nlost, sizeof *c->lost, cmp_lost) != NULL;
    return rc;
}

/* The per-(partner, rep) objects of `kpi --by rep`, rep ids bytewise, no rep first. */
static int kpi_rep_rows(kpi_ctx_t *c, acr_err_t *err)
{
    int rc = 0;
    c->nreps = 0;
    for (int m = 0; rc == 0 && m < c->q->nmonths; m++) {
        acr__pkey_t k = prefix1(c->partner);
        acr__pkey_add(&k, c->q->months[m], ACR__MONTH_LEN);
        acr__pkey_add(&k, "", 1);
        rc = scan_prefix(c->s, ACR_DB_PROJ_REP_KPI, &k, collect_rep, c, err);
    }
    if (rc != 0)
        return rc;
    if (c->nreps > 1)
        qsort(c->reps, c->nreps, sizeof *c->reps, cmp_rep);
    size_t n = 0;
    for (size_t i = 0; i < c->nreps; i++) {
        rep_acc_t *r = &c->reps[i], *last = n ? &c->reps[n - 1] : NULL;
        if (last == NULL || cmp_str(last->rep_id, r->rep_id) != 0) {
            c->reps[n++] = *r;
            continue;
        }
        for (int f = 0; f < ACR__REP__COUNT; f++)
            last->c[f] += r->c[f];
        last->net_minor += r->net_minor;
    }
    c->nreps = n;
    rc = rep_commissions(c, err);
    for (size_t i = 0; rc == 0 && i < c->nreps; i++) {
        bool row;
        if ((rc = rep_has_row(c, &c->reps[i], &row, err)) == 0 && row)
            rc = kpi_rep_json(c, &c->reps[i], err);
    }
    return rc;
}

static int kpi_partner(kpi_ctx_t *c, acr_str_t pid, MDB_val val, bool by_rep, acr_err_t *err)
{
    acr__prow_t p;
    if (acr__prow_decode(val.mv_data, val.mv_size, &p) != 0)
        return acr_err_set(err, ACR_ECORRUPT, "a proj_partners row is damaged");
    c->partner = pid;
    c->currency = p.currency;
    c->commission = 0;
    if (c->stmt != NULL) { /* a statement's partners are sorted by id, as partners are */
        const acr_partner_total_t *t = c->stmt->partners;
        size_t n = c->stmt->partner_count;
        while (c->total < n && cmp_str(cstr(t[c->total].partner_id), pid) < 0)
            c->total++;
        if (c->total < n && cmp_str(cstr(t[c->total].partner_id), pid) == 0)
            c->commission = t[c->total].window_minor;
    }
    if (c->stmt != NULL && c->stmt->lines != NULL) { /* lines: sorted by partner id too */
        const acr_line_t *lines = c->stmt->lines;
        size_t n = c->stmt->line_count;
        while (c->line < n && cmp_str(cstr(lines[c->line].partner_id), pid) < 0)
            c->line++;
        c->lines_lo = c->line;
        while (c->line < n && cmp_str(cstr(lines[c->line].partner_id), pid) == 0)
            c->line++;
        c->lines_hi = c->line;
    }
    return by_rep ? kpi_rep_rows(c, err) : kpi_partner_row(c, err);
}

static int kpi_all(kpi_ctx_t *c, const char *partner_id, bool by_rep, acr_err_t *err)
{
    MDB_val k, v;
    if (partner_id != NULL) {
        k = acr__val(partner_id, strlen(partner_id));
        int rc = sget(c->s, ACR_DB_PROJ_PARTNERS, k, &v, err);
        if (rc <= 0)
            return rc ? rc : acr_err_set(err, ACR_ENOT_FOUND, "no partner %s", partner_id);
        return kpi_partner(c, vstr(k), v, by_rep, err);
    }
    MDB_cursor *cur;
    int rc = mdb_cursor_open(c->s->txn, c->s->l->dbi[ACR_DB_PROJ_PARTNERS], &cur);
    if (rc != 0)
        return acr__mdb_err(rc, err, "proj_partners");
    int prc = 0;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0 && prc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT))
        prc = kpi_partner(c, vstr(k), v, by_rep, err);
    mdb_cursor_close(cur);
    if (prc != 0)
        return prc;
    return rc == MDB_NOTFOUND ? 0 : acr__mdb_err(rc, err, "proj_partners");
}

int acr_query_kpi(acr_ledger_t *ledger, const char *period_id, const char *partner_id,
                  bool by_rep, acr_buf_t *out, acr_err_t *err)
{
    kpi_req_t q;
    int rc = kpi_parse(ledger, period_id, &q, err);
    if (rc != 0)
        return rc;
    snap_t s;
    jw_t w = {out, out->len, 0};
    if ((rc = snap_open(ledger, &s, err)) != 0)
        return rc;
    acr_statement_t stmt;
    bool have = false;
    kpi_ctx_t c = {.s = &s, .w = &w, .q = &q};
    if (partner_id != NULL) { /* an unknown partner fails before the costly run */
        MDB_val v;
        rc = sget(&s, ACR_DB_PROJ_PARTNERS, acr__val(partner_id, strlen(partner_id)), &v, err);
        rc = rc == 0 ? acr_err_set(err, ACR_ENOT_FOUND, "no partner %s", partner_id)
                     : rc < 0 ? rc : 0;
    }
    /* the sums alone come from the memo when it holds them; rows by rep need the lines */
    acr__kpi_memo_ref_t memo = {.slot = -1};
    bool memo_hit = rc == 0 && q.has_comm && !by_rep && acr_reader_head_seq(s.r) > 0 &&
                    acr__kpi_memo_find(ledger, s.r, q.o_lo, q.o_hi, &memo) == 1;
    if (rc == 0 && !memo_hit) {
        rc = kpi_statement(&s, &q, by_rep, &stmt, &have, err);
        acr__kpi_memo_publish(ledger, &memo, rc == 0 && have ? &stmt : NULL);
    }
    c.stmt = memo_hit ? &memo.view : have ? &stmt : NULL;
    acr_statement_t empty = {0};
    if (rc == 0 && c.stmt == NULL && q.has_comm)
        c.stmt = &empty; /* an empty ledger: every commission is 0 */
    jw_open(&w, '[');
    if (rc == 0)
        rc = kpi_all(&c, partner_id, by_rep, err);
    jw_close(&w, ']');
    if (have)
        acr_statement_destroy(&stmt);
    acr__kpi_memo_release(&memo);
    free(c.lost);
    free(c.days);
    free(c.reps);
    return finish(&s, &w, rc, err);
}

/* ---- Open deals (the dashboard's lists) ------------------------------------------- */

typedef struct open_ctx {
    const snap_t *s;
    jw_t *w;
    acr_str_t stage;    /* filter ("" = every stage) */
    size_t prefix_len;  /* bytes of the scanned key prefix */
    uint64_t skip;      /* matching rows passed over first (a page's offset) */
    uint64_t limit, n;  /* rows wanted / emitted */
    uint64_t matched;   /* rows matching the filter (all of them, past the limit too) */
} open_ctx_t;

/* One proj_open_deals row: partner \0 stage \0 deal -> amount, entered_day. */
static int open_row(void *ctx, acr_str_t key, MDB_val val, acr_err_t *err)
{
    open_ctx_t *c = ctx;
    key.ptr -= c->prefix_len;
    key.len += (uint32_t)c->prefix_len;
    const char *sep1 = memchr(key.ptr, '\0', key.len);
    const char *sep2 = sep1 ? memchr(sep1 + 1, '\0', key.len - (size_t)(sep1 + 1 - key.ptr))
                            : NULL;
    (void)val;
    if (sep2 == NULL)
        return acr_err_set(err, ACR_ECORRUPT, "a proj_open_deals row is damaged");
    acr_str_t stage = {sep1 + 1, (uint32_t)(sep2 - sep1 - 1)};
    acr_str_t did = {sep2 + 1, (uint32_t)(key.len - (size_t)(sep2 + 1 - key.ptr))};
    if (c->stage.len && cmp_str(stage, c->stage) != 0)
        return 0;
    c->matched++;
    if (c->matched <= c->skip || c->n >= c->limit)
        return 0;
    MDB_val v;
    acr__drow_t d;
    int rc = sget(c->s, ACR_DB_PROJ_DEALS, sval(did), &v, err);
    if (rc < 0)
        return rc;
    if (rc == 0 || acr__drow_decode(v.mv_data, v.mv_size, &d) != 0)
        return acr_err_set(err, ACR_ECORRUPT, "an open deal has no proj_deals row");
    jw_t *w = c->w;
    c->n++;
    jw_open(w, '{');
    jw_key(w, "deal_id");
    jw_str(w, did);
    jw_key(w, "partner_id");
    jw_str(w, d.partner_id);
    jw_key(w, "customer_id");
    jw_str(w, d.customer_id);
    jw_key(w, "name");
    jw_str_or_null(w, d.flags & ACR__HAS_NAME, d.name);
    jw_key(w, "currency");
    jw_str(w, d.currency);
    jw_key(w, "amount_minor");
    if (d.flags & ACR__HAS_AMOUNT)
        jw_i64(w, d.amount_minor);
    else
        jw_null(w);
    jw_key(w, "expected_close");
    if (d.flags & ACR__HAS_EXPECTED_CLOSE)
        jw_date(w, d.expected_close_day);
    else
        jw_null(w);
    jw_key(w, "rep_id");
    jw_str_or_null(w, d.rep_id.len > 0, d.rep_id);
    jw_key(w, "stage");
    jw_str(w, d.stage);
    jw_key(w, "registered_at");
    jw_ts(w, d.registered_at_ms);
    jw_key(w, "entered_stage_on");
    jw_date(w, d.entered_day);
    jw_close(w, '}');
    return 0;
}

int acr_query_open_deals(acr_ledger_t *ledger, const char *partner_id, const char *stage,
                         uint64_t offset, uint64_t limit, acr_buf_t *out, acr_err_t *err)
{
    snap_t s;
    jw_t w = {out, out->len, 0};
    int rc = snap_open(ledger, &s, err);
    if (rc != 0)
        return rc;
    open_ctx_t c = {.s = &s, .w = &w, .stage = cstr(stage ? stage : ""), .skip = offset,
                    .limit = limit};
    acr__pkey_t prefix = {.len = 0};
    if (partner_id != NULL) {
        acr_str_t pid = cstr(partner_id);
        MDB_val v;
        prefix = prefix1(pid);
        if (stage != NULL && stage[0] != '\0') /* partner \0 stage \0: one range */
            acr__pkey_part(&prefix, c.stage);
        rc = sget(&s, ACR_DB_PROJ_PARTNERS, sval(pid), &v, err);
        rc = rc == 0 ? acr_err_set(err, ACR_ENOT_FOUND, "no partner %s", partner_id)
                     : rc < 0 ? rc : 0;
    }
    c.prefix_len = prefix.len;
    acr__pipeline_t stages;
    if (rc == 0)
        rc = load_stages(&s, &stages, err);
    jw_open(&w, '{');
    jw_key(&w, "stages"); /* the current pipeline, so a list can offer the next stage */
    jw_open(&w, '[');
    for (uint32_t i = 0; rc == 0 && i < stages.count; i++) {
        static const char *const req_names[] = {"amount", "expected_close", "rep"};
        jw_open(&w, '{');
        jw_key(&w, "name");
        jw_cstr(&w, stages.names[i]);
        jw_key(&w, "exit_requires");
        jw_open(&w, '[');
        for (int b = 0; b < 3; b++)
            if (stages.exit_mask[i] & (1u << b))
                jw_cstr(&w, req_names[b]);
        jw_close(&w, ']');
        jw_close(&w, '}');
    }
    jw_close(&w, ']');
    jw_key(&w, "deals");
    jw_open(&w, '[');
    if (rc == 0)
        rc = scan_prefix(&s, ACR_DB_PROJ_OPEN_DEALS, &prefix, open_row, &c, err);
    jw_close(&w, ']');
    jw_key(&w, "matched");
    jw_i64(&w, (int64_t)c.matched);
    jw_key(&w, "offset");
    jw_i64(&w, (int64_t)offset);
    bool more = c.matched > offset + c.n; /* rows after this page */
    jw_key(&w, "truncated");
    jw_raw(&w, more ? "true" : "false", more ? 4 : 5);
    jw_close(&w, '}');
    return finish(&s, &w, rc, err);
}
