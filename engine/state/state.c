/* state.c - the stateful rules of events.md, checked and applied inside the
 * append's write transaction.
 *
 * Each event type has one function that first checks every rule against the
 * state tables (partners, reps, deals, customers with open deals, sales with
 * refunded totals, plans, the pipeline) and only then writes, so a rejected
 * event changes nothing. The same functions rebuild the tables from the log
 * (rebuild, verify), which is what makes incremental and rebuilt state
 * byte-identical. Partner and rep rows are cached for the batch (write-through)
 * and deal rows written back at its end (store.c's row cache).
 */
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "accrue/jsonmem.h"
#include "accrue/plan.h"
#include "../projection/projection_internal.h"
#include "state_internal.h"
#include "program_internal.h"
#include "pseq_internal.h"

enum { STATUS_ACTIVE = 0, STATUS_SUSPENDED = 1, STATUS_OFFBOARDED = 2 };
enum { DEAL_OPEN = 0, DEAL_WON = 1, DEAL_LOST = 2 };

const char ACR__DEFAULT_PIPELINE_JSON[] =
    "[{\"exit_requires\":[\"amount\"],\"name\":\"registered\"},"
    "{\"exit_requires\":[\"expected_close\"],\"name\":\"qualified\"},"
    "{\"exit_requires\":[],\"name\":\"proposal\"},"
    "{\"exit_requires\":[],\"name\":\"negotiation\"}]";

typedef struct partner_state {
    int64_t status;
    acr_str_t currency;
    acr_str_t plan_id;
} partner_state_t;

typedef struct deal_state {
    acr_str_t partner_id;
    acr_str_t customer_id;
    acr_str_t currency;
    int64_t outcome;  /* DEAL_* */
    acr_str_t stage;
    int64_t has_mask; /* ACR__EXIT_* bits: which exit fields the deal has */
    acr_str_t rep_id;
} deal_state_t;

typedef struct sale_state {
    acr_str_t partner_id;
    int64_t amount_minor;
    int64_t refunded_minor;
    int64_t at_ms;
} sale_state_t;

static acr_str_t F(const acr_event_t *ev, int field)
{
    return ev->str[field];
}

static int rule(acr_err_t *err, int code, int field, const char *fmt, const char *arg, size_t len)
{
    if (field >= 0)
        snprintf(err->field, sizeof err->field, "data.%s", acr_field_name(field));
    char msg[200];
    snprintf(msg, sizeof msg, fmt, (int)len, arg);
    return acr_err_set(err, code, "%s", msg);
}

/* Gets a value: 1 found, 0 not found, negative on store failure. */
static int get(acr__txn_t *tx, int db, MDB_val key, MDB_val *out, acr_err_t *err)
{
    int rc = mdb_get(tx->txn, tx->dbi[db], &key, out);
    if (rc == MDB_NOTFOUND)
        return 0;
    return rc ? acr__tx_fail(tx, rc, err, acr__db_name(db)) : 1;
}

static int put(acr__txn_t *tx, int db, MDB_val key, const void *p, size_t len, acr_err_t *err)
{
    MDB_val v = acr__val(p, len);
    int rc = acr__dput(tx, db, &key, &v, 0);
    return rc ? acr__tx_fail(tx, rc, err, acr__db_name(db)) : 0;
}

static int del(acr__txn_t *tx, int db, MDB_val key, acr_err_t *err)
{
    int rc = acr__ddel(tx, db, &key);
    return rc && rc != MDB_NOTFOUND ? acr__tx_fail(tx, rc, err, acr__db_name(db)) : 0;
}

static MDB_val key1(acr_str_t s)
{
    return acr__val(s.ptr, s.len);
}

/* ---- Loading and storing state records ----------------------------------- */

/* Deal rows are read and rewritten by every deal event: they live in tx's
 * cache (write-back) until acr__tx_flush. 1 found (tx->cache_last is the
 * entry; slices into it last until the row is rewritten), 0 absent,
 * negative on failure. */
static int cached_row(acr__txn_t *tx, int db, acr_str_t id, acr_err_t *err)
{
    bool fresh;
    acr__cached_row_t *e = acr__cache_get(tx, db, id.ptr, id.len, &fresh);
    if (e == NULL)
        return acr_err_set(err, ACR_ENOMEM, "out of memory");
    tx->cache_last = e;
    if (fresh && !tx->cache.empty) {
        MDB_val v;
        int rc = get(tx, db, key1(id), &v, err);
        if (rc < 0)
            return rc;
        if (rc == 1 && acr__cached_row_set(tx, e, v.mv_data, v.mv_size) != 0)
            return acr_err_set(err, ACR_ENOMEM, "out of memory");
    }
    return e->state == ACR__ROW_PRESENT;
}

static int put_cached(acr__txn_t *tx, int db, acr_str_t id, const void *p, size_t len,
                      acr_err_t *err)
{
    bool fresh;
    acr__cached_row_t *e = acr__cache_get(tx, db, id.ptr, id.len, &fresh);
    if (e == NULL || acr__cached_row_set(tx, e, p, len) != 0)
        return acr_err_set(err, ACR_ENOMEM, "out of memory");
    e->dirty = true;
    return 0;
}

/* Partner rows are read by almost every event: they go through tx's cache
 * (write-through: store_partner updates the entry with the bytes it puts). */
static int load_partner(acr__txn_t *tx, acr_str_t id, partner_state_t *out, acr_err_t *err)
{
    bool fresh;
    acr__cached_row_t *e = acr__cache_get(tx, ACR_DB_PARTNERS, id.ptr, id.len, &fresh);
    if (e == NULL)
        return acr_err_set(err, ACR_ENOMEM, "out of memory");
    if (fresh && !tx->cache.empty) {
        MDB_val v;
        int rc = get(tx, ACR_DB_PARTNERS, key1(id), &v, err);
        if (rc < 0) /* fatal: the transaction is aborted, entry and all */
            return rc;
        if (rc == 1 && acr__cached_row_set(tx, e, v.mv_data, v.mv_size) != 0)
            return acr_err_set(err, ACR_ENOMEM, "out of memory");
    }
    if (e->state != ACR__ROW_PRESENT)
        return 0;
    acr__kv_reader_t r;
    acr__kv_reader_init(&r, e->val, e->vlen);
    out->status = acr__kv_get_i64(&r);
    out->currency = acr__kv_get_str(&r);
    out->plan_id = acr__kv_get_str(&r);
    return r.bad ? acr_err_set(err, ACR_ECORRUPT, "partner record damaged") : 1;
}

static int store_partner(acr__txn_t *tx, acr_str_t id, const partner_state_t *p, acr_err_t *err)
{
    acr_buf_t *b = &tx->scratch;
    acr_buf_reset(b);
    if (acr__kv_put_i64(b, p->status) || acr__kv_put_str(b, p->currency.ptr, p->currency.len) ||
        acr__kv_put_str(b, p->plan_id.ptr, p->plan_id.len))
        return acr_err_set(err, ACR_ENOMEM, "out of memory");
    int rc = put(tx, ACR_DB_PARTNERS, key1(id), b->data, b->len, err);
    bool fresh;
    acr__cached_row_t *e = rc ? NULL : acr__cache_get(tx, ACR_DB_PARTNERS, id.ptr, id.len, &fresh);
    if (rc == 0 && (e == NULL || acr__cached_row_set(tx, e, b->data, b->len) != 0))
        return acr_err_set(err, ACR_ENOMEM, "out of memory"); /* fatal: txn aborted */
    return rc;
}

static int load_deal(acr__txn_t *tx, acr_str_t id, deal_state_t *out, acr_err_t *err)
{
    int rc = cached_row(tx, ACR_DB_DEALS, id, err);
    if (rc <= 0)
        return rc;
    acr__cached_row_t *e = tx->cache_last;
    acr__kv_reader_t r;
    acr__kv_reader_init(&r, acr__cached_row_val(e), e->vlen);
    out->partner_id = acr__kv_get_str(&r);
    out->customer_id = acr__kv_get_str(&r);
    out->currency = acr__kv_get_str(&r);
    out->outcome = acr__kv_get_i64(&r);
    out->stage = acr__kv_get_str(&r);
    out->has_mask = acr__kv_get_i64(&r);
    out->rep_id = acr__kv_get_str(&r);
    return r.bad ? acr_err_set(err, ACR_ECORRUPT, "deal record damaged") : 1;
}

static int store_deal(acr__txn_t *tx, acr_str_t id, const deal_state_t *d, acr_err_t *err)
{
    acr_buf_t *b = &tx->scratch;
    acr_buf_reset(b);
    int rc = acr__kv_put_str(b, d->partner_id.ptr, d->partner_id.len);
    rc = rc ? rc : acr__kv_put_str(b, d->customer_id.ptr, d->customer_id.len);
    rc = rc ? rc : acr__kv_put_str(b, d->currency.ptr, d->currency.len);
    rc = rc ? rc : acr__kv_put_i64(b, d->outcome);
    rc = rc ? rc : acr__kv_put_str(b, d->stage.ptr, d->stage.len);
    rc = rc ? rc : acr__kv_put_i64(b, d->has_mask);
    rc = rc ? rc : acr__kv_put_str(b, d->rep_id.ptr, d->rep_id.len);
    if (rc != 0)
        return acr_err_set(err, ACR_ENOMEM, "out of memory");
    return put_cached(tx, ACR_DB_DEALS, id, b->data, b->len, err);
}

static int load_sale(acr__txn_t *tx, acr_str_t id, sale_state_t *out, acr_err_t *err)
{
    MDB_val v;
    int rc = get(tx, ACR_DB_SALES, key1(id), &v, err);
    if (rc <= 0)
        return rc;
    acr__kv_reader_t r;
    acr__kv_reader_init(&r, v.mv_data, v.mv_size);
    out->partner_id = acr__kv_get_str(&r);
    out->amount_minor = acr__kv_get_i64(&r);
    out->refunded_minor = acr__kv_get_i64(&r);
    out->at_ms = acr__kv_get_i64(&r);
    return r.bad ? acr_err_set(err, ACR_ECORRUPT, "sale record damaged") : 1;
}

static int store_sale(acr__txn_t *tx, acr_str_t id, const sale_state_t *s, acr_err_t *err)
{
    acr_buf_t *b = &tx->scratch;
    acr_buf_reset(b);
    if (acr__kv_put_str(b, s->partner_id.ptr, s->partner_id.len) ||
        acr__kv_put_i64(b, s->amount_minor) || acr__kv_put_i64(b, s->refunded_minor) ||
        acr__kv_put_i64(b, s->at_ms))
        return acr_err_set(err, ACR_ENOMEM, "out of memory");
    return put(tx, ACR_DB_SALES, key1(id), b->data, b->len, err);
}

/* Plan state: 1 found (*version, currency copied to cur[4]), 0 none. */
static int load_plan(acr__txn_t *tx, acr_str_t plan_id, int64_t *version, char cur[4],
                     acr_err_t *err)
{
    MDB_val v;
    int rc = get(tx, ACR_DB_PLANS, key1(plan_id), &v, err);
    if (rc <= 0)
        return rc;
    acr__kv_reader_t r;
    acr__kv_reader_init(&r, v.mv_data, v.mv_size);
    *version = acr__kv_get_i64(&r);
    acr_str_t c = acr__kv_get_str(&r);
    if (r.bad || c.len != 3)
        return acr_err_set(err, ACR_ECORRUPT, "plan record damaged");
    memcpy(cur, c.ptr, 3);
    cur[3] = '\0';
    return 1;
}

/* 1 when the rep exists, 0 not, negative on failure. Cached: reps are only
 * ever added (rep_added marks its entry present). */
static int rep_exists(acr__txn_t *tx, acr_str_t partner_id, acr_str_t rep_id, acr_err_t *err)
{
    MDB_val k = acr__key2(&tx->scratch2, partner_id, rep_id), v;
    bool fresh;
    acr__cached_row_t *e = acr__cache_get(tx, ACR_DB_REPS, k.mv_data, k.mv_size, &fresh);
    if (e == NULL)
        return acr_err_set(err, ACR_ENOMEM, "out of memory");
    if (fresh && !tx->cache.empty) {
        int rc = get(tx, ACR_DB_REPS, k, &v, err);
        if (rc < 0)
            return rc;
        e->state = rc == 1 ? ACR__ROW_PRESENT : ACR__ROW_ABSENT;
    }
    return e->state == ACR__ROW_PRESENT;
}

static bool str_eq(acr_str_t a, acr_str_t b)
{
    return a.len == b.len && memcmp(a.ptr, b.ptr, a.len) == 0;
}

/* Partner must exist: 1 with *p filled, or the unknown_partner error. */
static int need_partner(acr__txn_t *tx, const acr_event_t *ev, partner_state_t *p,
                        acr_err_t *err)
{
    acr_str_t id = F(ev, ACR_F_PARTNER_ID);
    int rc = load_partner(tx, id, p, err);
    if (rc == 0)
        return rule(err, ACR_EUNKNOWN_PARTNER, ACR_F_PARTNER_ID, "no partner %.*s", id.ptr,
                    id.len);
    return rc;
}

/* A plan's currency (when the plan is published) must equal the partner's. */
static int check_plan_currency(acr__txn_t *tx, acr_str_t plan_id, acr_str_t currency,
                               acr_err_t *err)
{
    int64_t version;
    char cur[4];
    int rc = load_plan(tx, plan_id, &version, cur, err);
    if (rc <= 0)
        return rc;
    if (currency.len != 3 || memcmp(cur, currency.ptr, 3) != 0)
        return rule(err, ACR_ECURRENCY_MISMATCH, ACR_F_CURRENCY,
                    "the partner's currency differs from plan %.*s's", plan_id.ptr,
                    plan_id.len);
    return 0;
}

/* Notes that partner_id is on plan_id (plan_partners: rows are never removed). */
static int add_plan_partner(acr__txn_t *tx, acr_str_t plan_id, acr_str_t partner_id,
                            acr_str_t currency, acr_err_t *err)
{
    MDB_val k = acr__key2(&tx->scratch2, plan_id, partner_id);
    return put(tx, ACR_DB_PLAN_PARTNERS, k, currency.ptr, currency.len, err);
}

/* ---- Partners ------------------------------------------------------------- */

static int partner_registered(acr__txn_t *tx, const acr_event_t *ev, acr_err_t *err)
{
    partner_state_t p;
    acr_str_t id = F(ev, ACR_F_PARTNER_ID);
    int rc = load_partner(tx, id, &p, err);
    if (rc != 0)
        return rc < 0 ? rc
                      : rule(err, ACR_EDUPLICATE, ACR_F_PARTNER_ID, "partner %.*s exists",
                             id.ptr, id.len);
    if ((rc = check_plan_currency(tx, F(ev, ACR_F_PLAN_ID), F(ev, ACR_F_CURRENCY), err)) != 0)
        return rc;
    p.status = STATUS_ACTIVE;
    p.currency = F(ev, ACR_F_CURRENCY);
    p.plan_id = F(ev, ACR_F_PLAN_ID);
    rc = store_partner(tx, id, &p, err);
    return rc ? rc : add_plan_partner(tx, p.plan_id, id, p.currency, err);
}

static int partner_updated(acr__txn_t *tx, const acr_event_t *ev, acr_err_t *err)
{
    partner_state_t p;
    int rc = need_partner(tx, ev, &p, err);
    if (rc != 1 || !ACR_HAS(ev, ACR_F_PLAN_ID))
        return rc == 1 ? 0 : rc;
    acr_str_t plan_id = F(ev, ACR_F_PLAN_ID);
    if ((rc = check_plan_currency(tx, plan_id, p.currency, err)) != 0) {
        snprintf(err->field, sizeof err->field, "data.plan_id");
        return rc;
    }
    acr_str_t id = F(ev, ACR_F_PARTNER_ID);
    char cur[4];
    memcpy(cur, p.currency.ptr, 3);
    p.currency.ptr = cur;
    p.plan_id = plan_id;
    /* The partner stays "on" its earlier plans: in business time its sales before this
     * update's `at` still use them, so a plan first published later must be in its
     * currency too (commissions.md: every partner on the plan has it). plan_partners keeps
     * every plan a partner's registration or updates ever named, as a what-if run does. */
    if ((rc = add_plan_partner(tx, plan_id, id, p.currency, err)) != 0)
        return rc;
    return store_partner(tx, id, &p, err);
}

static int partner_status_changed(acr__txn_t *tx, const acr_event_t *ev, acr_err_t *err)
{
    partner_state_t p;
    int rc = need_partner(tx, ev, &p, err);
    if (rc != 1)
        return rc;
    if (p.status == STATUS_OFFBOARDED)
        return rule(err, ACR_EINVALID_TRANSITION, ACR_F_STATUS,
                    "partner %.*s is offboarded and cannot change status again",
                    F(ev, ACR_F_PARTNER_ID).ptr, F(ev, ACR_F_PARTNER_ID).len);
    acr_str_t s = F(ev, ACR_F_STATUS);
    p.status = s.ptr[0] == 'a' ? STATUS_ACTIVE : s.ptr[0] == 's' ? STATUS_SUSPENDED
                                                                : STATUS_OFFBOARDED;
    char cur[4], plan[ACR_ID_LEN_MAX + 1];
    memcpy(cur, p.currency.ptr, 3);
    memcpy(plan, p.plan_id.ptr, p.plan_id.len);
    p.currency.ptr = cur;
    p.plan_id.ptr = plan;
    return store_partner(tx, F(ev, ACR_F_PARTNER_ID), &p, err);
}

static int rep_added(acr__txn_t *tx, const acr_event_t *ev, acr_err_t *err)
{
    partner_state_t p;
    int rc = need_partner(tx, ev, &p, err);
    if (rc != 1)
        return rc;
    acr_str_t rep = F(ev, ACR_F_REP_ID);
    rc = rep_exists(tx, F(ev, ACR_F_PARTNER_ID), rep, err);
    if (rc != 0)
        return rc < 0 ? rc
                      : rule(err, ACR_EDUPLICATE, ACR_F_REP_ID, "rep %.*s exists", rep.ptr,
                             rep.len);
    MDB_val k = acr__key2(&tx->scratch2, F(ev, ACR_F_PARTNER_ID), rep);
    if ((rc = put(tx, ACR_DB_REPS, k, F(ev, ACR_F_NAME).ptr, F(ev, ACR_F_NAME).len, err)) != 0)
        return rc;
    bool fresh;
    acr__cached_row_t *e = acr__cache_get(tx, ACR_DB_REPS, k.mv_data, k.mv_size, &fresh);
    if (e == NULL)
        return acr_err_set(err, ACR_ENOMEM, "out of memory");
    e->state = ACR__ROW_PRESENT;
    return 0;
}

/* When the event names a rep, it must exist within partner_id. */
static int check_rep(acr__txn_t *tx, const acr_event_t *ev, acr_str_t partner_id, acr_err_t *err)
{
    if (!ACR_HAS(ev, ACR_F_REP_ID))
        return 0;
    acr_str_t rep = F(ev, ACR_F_REP_ID);
    int rc = rep_exists(tx, partner_id, rep, err);
    if (rc == 0)
        return rule(err, ACR_EUNKNOWN_REP, ACR_F_REP_ID, "no rep %.*s at this partner", rep.ptr,
                    rep.len);
    return rc < 0 ? rc : 0;
}

static int training_completed(acr__txn_t *tx, const acr_event_t *ev, acr_err_t *err)
{
    partner_state_t p;
    int rc = need_partner(tx, ev, &p, err);
    return rc != 1 ? rc : check_rep(tx, ev, F(ev, ACR_F_PARTNER_ID), err);
}

/* ---- Pipeline and deals ------------------------------------------------- */

int acr__pipeline_parse(const char *json, size_t len, acr__pipeline_t *p)
{
    acr_jsonmem_begin();
    json_t *root = json_loadb(json, len, 0, NULL);
    int rc = json_is_array(root) && json_array_size(root) <= ACR_STAGES_MAX ? 0 : ACR_ECORRUPT;
    if (acr_jsonmem_failed())
        rc = ACR_ENOMEM;
    memset(p, 0, sizeof *p);
    for (size_t i = 0; rc == 0 && i < json_array_size(root); i++) {
        json_t *st = json_array_get(root, i), *req = json_object_get(st, "exit_requires");
        const char *name = json_string_value(json_object_get(st, "name"));
        if (name == NULL || strlen(name) > ACR_STAGE_NAME_MAX) {
            rc = ACR_ECORRUPT;
            break;
        }
        strcpy(p->names[i], name);
        for (size_t j = 0; j < json_array_size(req); j++) {
            const char *r = json_string_value(json_array_get(req, j));
            p->exit_mask[i] |= r == NULL                        ? 0
                               : strcmp(r, "amount") == 0         ? ACR__EXIT_AMOUNT
                               : strcmp(r, "expected_close") == 0 ? ACR__EXIT_EXPECTED_CLOSE
                               : strcmp(r, "rep") == 0            ? ACR__EXIT_REP
                                                                  : 0;
        }
        p->count++;
    }
    json_decref(root);
    return rc;
}

static int load_pipeline(acr__txn_t *tx, acr_err_t *err)
{
    if (tx->pipeline_loaded)
        return 0;
    MDB_val v;
    int rc = get(tx, ACR_DB_PIPELINE, acr__val("stages", 6), &v, err);
    if (rc < 0)
        return rc;
    if (rc == 1)
        rc = acr__pipeline_parse(v.mv_data, v.mv_size, &tx->pipeline);
    if (rc == ACR_ENOMEM)
        return acr_err_set(err, rc, "out of memory");
    if (rc != 0)
        return acr_err_set(err, ACR_ECORRUPT, "the stored pipeline is damaged");
    tx->pipeline_loaded = true;
    return 0;
}

static int stage_index(const acr__pipeline_t *p, acr_str_t name)
{
    for (uint32_t i = 0; i < p->count; i++)
        if (strlen(p->names[i]) == name.len && memcmp(p->names[i], name.ptr, name.len) == 0)
            return (int)i;
    return -1;
}

static int pipeline_defined(acr__txn_t *tx, const acr_event_t *ev, acr_err_t *err)
{
    acr_str_t stages = F(ev, ACR_F_STAGES);
    acr__pipeline_t p;
    int prc = acr__pipeline_parse(stages.ptr, stages.len, &p);
    if (prc == ACR_ENOMEM)
        return acr_err_set(err, prc, "out of memory");
    if (prc != 0 || p.count == 0)
        return rule(err, ACR_EINVALID_VALUE, ACR_F_STAGES, "%.*sinvalid stage list", "", 0);
    int rc = put(tx, ACR_DB_PIPELINE, acr__val("stages", 6), stages.ptr, stages.len, err);
    if (rc == 0) {
        tx->pipeline = p;
        tx->pipeline_loaded = true;
    }
    return rc;
}

/* Customers with open deals: the partner holding them and how many. */
static int customer_holder(acr__txn_t *tx, acr_str_t customer, acr_str_t *partner,
                           int64_t *open, acr_err_t *err)
{
    MDB_val v;
    int rc = get(tx, ACR_DB_CUSTOMERS, key1(customer), &v, err);
    if (rc <= 0)
        return rc;
    acr__kv_reader_t r;
    acr__kv_reader_init(&r, v.mv_data, v.mv_size);
    *partner = acr__kv_get_str(&r);
    *open = acr__kv_get_i64(&r);
    return r.bad ? acr_err_set(err, ACR_ECORRUPT, "customer record damaged") : 1;
}

static int set_customer(acr__txn_t *tx, acr_str_t customer, acr_str_t partner, int64_t open,
                        acr_err_t *err)
{
    if (open == 0)
        return del(tx, ACR_DB_CUSTOMERS, key1(customer), err);
    acr_buf_t *b = &tx->scratch;
    acr_buf_reset(b);
    if (acr__kv_put_str(b, partner.ptr, partner.len) || acr__kv_put_i64(b, open))
        return acr_err_set(err, ACR_ENOMEM, "out of memory");
    return put(tx, ACR_DB_CUSTOMERS, key1(customer), b->data, b->len, err);
}

static int deal_registered(acr__txn_t *tx, const acr_event_t *ev, acr_err_t *err)
{
    partner_state_t p;
    acr_str_t pid = F(ev, ACR_F_PARTNER_ID), did = F(ev, ACR_F_DEAL_ID);
    int rc = need_partner(tx, ev, &p, err);
    if (rc != 1)
        return rc;
    if (p.status != STATUS_ACTIVE)
        return rule(err, ACR_EPARTNER_INACTIVE, ACR_F_PARTNER_ID, "partner %.*s is not active",
                    pid.ptr, pid.len);
    if (!str_eq(p.currency, F(ev, ACR_F_CURRENCY)))
        return rule(err, ACR_ECURRENCY_MISMATCH, ACR_F_CURRENCY,
                    "the deal's currency is not partner %.*s's", pid.ptr, pid.len);
    deal_state_t d;
    if ((rc = load_deal(tx, did, &d, err)) != 0)
        return rc < 0 ? rc
                      : rule(err, ACR_EDUPLICATE, ACR_F_DEAL_ID, "deal %.*s exists", did.ptr,
                             did.len);
    if ((rc = check_rep(tx, ev, pid, err)) != 0)
        return rc;
    acr_str_t holder;
    int64_t open = 0;
    acr_str_t cust = F(ev, ACR_F_CUSTOMER_ID);
    if ((rc = customer_holder(tx, cust, &holder, &open, err)) < 0)
        return rc;
    if (rc == 1 && !str_eq(holder, pid))
        return rule(err, ACR_ECHANNEL_CONFLICT, ACR_F_CUSTOMER_ID,
                    "partner %.*s already holds an open deal for this customer", holder.ptr,
                    holder.len);
    if ((rc = load_pipeline(tx, err)) != 0)
        return rc;
    if ((rc = set_customer(tx, cust, pid, open + 1, err)) != 0)
        return rc;
    d.partner_id = pid;
    d.customer_id = cust;
    d.currency = F(ev, ACR_F_CURRENCY);
    d.outcome = DEAL_OPEN;
    d.stage.ptr = tx->pipeline.names[0];
    d.stage.len = (uint32_t)strlen(tx->pipeline.names[0]);
    d.has_mask = (ACR_HAS(ev, ACR_F_AMOUNT_MINOR) ? ACR__EXIT_AMOUNT : 0) |
                 (ACR_HAS(ev, ACR_F_EXPECTED_CLOSE) ? ACR__EXIT_EXPECTED_CLOSE : 0) |
                 (ACR_HAS(ev, ACR_F_REP_ID) ? ACR__EXIT_REP : 0);
    d.rep_id = F(ev, ACR_F_REP_ID);
    return store_deal(tx, did, &d, err);
}

/* The deal must exist and be open: 1 with *d filled, else the error. */
static int need_open_deal(acr__txn_t *tx, acr_str_t did, deal_state_t *d, acr_err_t *err)
{
    int rc = load_deal(tx, did, d, err);
    if (rc == 0)
        return rule(err, ACR_EUNKNOWN_DEAL, ACR_F_DEAL_ID, "no deal %.*s", did.ptr, did.len);
    if (rc == 1 && d->outcome != DEAL_OPEN)
        return rule(err, ACR_EDEAL_CLOSED, ACR_F_DEAL_ID, "deal %.*s is closed", did.ptr,
                    did.len);
    return rc;
}

static const char *missing_exit_field(int missing)
{
    return missing & ACR__EXIT_AMOUNT ? "amount_minor"
           : missing & ACR__EXIT_EXPECTED_CLOSE ? "expected_close"
                                                : "rep_id";
}

static int deal_stage_changed(acr__txn_t *tx, const acr_event_t *ev, acr_err_t *err)
{
    deal_state_t d;
    acr_str_t did = F(ev, ACR_F_DEAL_ID), stage = F(ev, ACR_F_STAGE);
    int rc = need_open_deal(tx, did, &d, err);
    if (rc != 1 || (rc = load_pipeline(tx, err)) != 0)
        return rc == 1 ? 0 : rc;
    int to = stage_index(&tx->pipeline, stage);
    if (to < 0)
        return rule(err, ACR_EUNKNOWN_STAGE, ACR_F_STAGE, "stage %.*s is not defined", stage.ptr,
                    stage.len);
    if ((rc = check_rep(tx, ev, d.partner_id, err)) != 0)
        return rc;
    int64_t has = d.has_mask | (ACR_HAS(ev, ACR_F_AMOUNT_MINOR) ? ACR__EXIT_AMOUNT : 0) |
                  (ACR_HAS(ev, ACR_F_EXPECTED_CLOSE) ? ACR__EXIT_EXPECTED_CLOSE : 0) |
                  (ACR_HAS(ev, ACR_F_REP_ID) ? ACR__EXIT_REP : 0);
    int from = stage_index(&tx->pipeline, d.stage);
    /* Leaving a stage needs its exit fields; a stage no longer defined has none. */
    if (from >= 0 && from != to) {
        int missing = tx->pipeline.exit_mask[from] & ~(int)has;
        if (missing) {
            snprintf(err->field, sizeof err->field, "data.%s", missing_exit_field(missing));
            return acr_err_set(err, ACR_EEXIT_CRITERIA_UNMET,
                               "leaving stage %s requires %s", tx->pipeline.names[from],
                               missing_exit_field(missing));
        }
    }
    char copy[3][ACR_STRING_LEN_MAX + 1]; /* slices into the page die at the next put */
    acr_str_t *keep[3] = {&d.partner_id, &d.customer_id, &d.currency};
    for (int i = 0; i < 3; i++) {
        memcpy(copy[i], keep[i]->ptr, keep[i]->len);
        keep[i]->ptr = copy[i];
    }
    char rep[ACR_ID_LEN_MAX + 1];
    memcpy(rep, d.rep_id.ptr, d.rep_id.len);
    d.rep_id = ACR_HAS(ev, ACR_F_REP_ID) ? F(ev, ACR_F_REP_ID) : (acr_str_t){rep, d.rep_id.len};
    d.stage = stage;
    d.has_mask = has;
    return store_deal(tx, did, &d, err);
}

static int deal_closed(acr__txn_t *tx, const acr_event_t *ev, acr_err_t *err)
{
    deal_state_t d;
    acr_str_t did = F(ev, ACR_F_DEAL_ID);
    int rc = need_open_deal(tx, did, &d, err);
    if (rc != 1)
        return rc;
    char copy[4][ACR_STRING_LEN_MAX + 1];
    acr_str_t *keep[4] = {&d.partner_id, &d.customer_id, &d.currency, &d.stage};
    for (int i = 0; i < 4; i++) {
        memcpy(copy[i], keep[i]->ptr, keep[i]->len);
        keep[i]->ptr = copy[i];
    }
    char rep[ACR_ID_LEN_MAX + 1];
    memcpy(rep, d.rep_id.ptr, d.rep_id.len);
    d.rep_id.ptr = rep;
    acr_str_t holder;
    int64_t open = 0;
    if ((rc = customer_holder(tx, d.customer_id, &holder, &open, err)) < 0)
        return rc;
    if (rc == 1 && (rc = set_customer(tx, d.customer_id, d.partner_id, open - 1, err)) != 0)
        return rc;
    d.outcome = F(ev, ACR_F_OUTCOME).ptr[0] == 'w' ? DEAL_WON : DEAL_LOST;
    return store_deal(tx, did, &d, err);
}

/* ---- Sales, refunds, adjustments ---------------------------------------- */

/* Inserts a new sale row in the descent that checks for it (MDB_NOOVERWRITE):
 * 0 inserted, 1 the sale exists (its row checked as load_sale would),
 * negative on store failure. */
static int insert_sale(acr__txn_t *tx, acr_str_t id, const sale_state_t *s, acr_err_t *err)
{
    acr_buf_t *b = &tx->scratch;
    acr_buf_reset(b);
    if (acr__kv_put_str(b, s->partner_id.ptr, s->partner_id.len) ||
        acr__kv_put_i64(b, s->amount_minor) || acr__kv_put_i64(b, s->refunded_minor) ||
        acr__kv_put_i64(b, s->at_ms))
        return acr_err_set(err, ACR_ENOMEM, "out of memory");
    MDB_val k = key1(id), v = acr__val(b->data, b->len);
    int rc = acr__dput(tx, ACR_DB_SALES, &k, &v, MDB_NOOVERWRITE);
    if (rc == 0)
        return 0;
    if (rc != MDB_KEYEXIST)
        return acr__tx_fail(tx, rc, err, acr__db_name(ACR_DB_SALES));
    acr__kv_reader_t r;
    acr__kv_reader_init(&r, v.mv_data, v.mv_size);
    (void)acr__kv_get_str(&r);
    (void)acr__kv_get_i64(&r);
    (void)acr__kv_get_i64(&r);
    (void)acr__kv_get_i64(&r);
    return r.bad ? acr_err_set(err, ACR_ECORRUPT, "sale record damaged") : 1;
}

/* The checks after the sale's own: its deal and rep (nothing written). */
static int sale_refs(acr__txn_t *tx, const acr_event_t *ev, acr_str_t pid, acr_err_t *err)
{
    int rc;
    if (ACR_HAS(ev, ACR_F_DEAL_ID)) {
        deal_state_t d;
        acr_str_t did = F(ev, ACR_F_DEAL_ID);
        if ((rc = load_deal(tx, did, &d, err)) < 0)
            return rc;
        if (rc == 0 || !str_eq(d.partner_id, pid))
            return rule(err, ACR_EUNKNOWN_DEAL, ACR_F_DEAL_ID, "partner has no deal %.*s",
                        did.ptr, did.len);
    }
    return check_rep(tx, ev, pid, err);
}

/* The sale row is written where the duplicate check happens (one descent of
 * the largest state table instead of a get and a put) and removed again if a
 * later check fails, so a rejected event still changes nothing. */
static int sale_recorded(acr__txn_t *tx, const acr_event_t *ev, acr_err_t *err)
{
    partner_state_t p;
    acr_str_t pid = F(ev, ACR_F_PARTNER_ID), sid = F(ev, ACR_F_SALE_ID);
    int rc = need_partner(tx, ev, &p, err);
    if (rc != 1)
        return rc;
    if (p.status == STATUS_OFFBOARDED)
        return rule(err, ACR_EPARTNER_INACTIVE, ACR_F_PARTNER_ID, "partner %.*s is offboarded",
                    pid.ptr, pid.len);
    if (!str_eq(p.currency, F(ev, ACR_F_CURRENCY)))
        return rule(err, ACR_ECURRENCY_MISMATCH, ACR_F_CURRENCY,
                    "the sale's currency is not partner %.*s's", pid.ptr, pid.len);
    sale_state_t s = {pid, ev->num[ACR_F_AMOUNT_MINOR], 0, ev->at_ms};
    if ((rc = insert_sale(tx, sid, &s, err)) != 0)
        return rc < 0 ? rc
                      : rule(err, ACR_EDUPLICATE, ACR_F_SALE_ID, "sale %.*s exists", sid.ptr,
                             sid.len);
    if ((rc = sale_refs(tx, ev, pid, err)) == 0)
        return 0;
    if (!acr_err_rejects_input(rc))
        return rc; /* a store failure: the transaction is aborted anyway */
    acr_err_t derr;
    int drc = del(tx, ACR_DB_SALES, key1(sid), &derr);
    if (drc != 0)
        *err = derr;
    return drc != 0 ? drc : rc;
}

static int sale_refunded(acr__txn_t *tx, const acr_event_t *ev, acr_err_t *err)
{
    sale_state_t s;
    acr_str_t sid = F(ev, ACR_F_SALE_ID);
    int rc = load_sale(tx, sid, &s, err);
    if (rc == 0)
        return rule(err, ACR_EUNKNOWN_SALE, ACR_F_SALE_ID, "no sale %.*s", sid.ptr, sid.len);
    if (rc < 0)
        return rc;
    int64_t amount = ev->num[ACR_F_AMOUNT_MINOR];
    if (amount > s.amount_minor - s.refunded_minor)
        return rule(err, ACR_EOVER_REFUND, ACR_F_AMOUNT_MINOR,
                    "refunds of sale %.*s would exceed its amount", sid.ptr, sid.len);
    if (ev->at_ms < s.at_ms) {
        snprintf(err->field, sizeof err->field, "at");
        return acr_err_set(err, ACR_EREFUND_BEFORE_SALE, "the refund is dated before sale %.*s",
                           (int)sid.len, sid.ptr);
    }
    char pid[ACR_ID_LEN_MAX + 1];
    memcpy(pid, s.partner_id.ptr, s.partner_id.len);
    s.partner_id.ptr = pid;
    s.refunded_minor += amount;
    rc = store_sale(tx, sid, &s, err);
    return rc ? rc : acr__pseq_refund_sale(tx, ev, s.at_ms, err);
}

static int adjustment_recorded(acr__txn_t *tx, const acr_event_t *ev, acr_err_t *err)
{
    partner_state_t p;
    int rc = need_partner(tx, ev, &p, err);
    if (rc != 1)
        return rc;
    if (!str_eq(p.currency, F(ev, ACR_F_CURRENCY)))
        return rule(err, ACR_ECURRENCY_MISMATCH, ACR_F_CURRENCY,
                    "the adjustment's currency is not partner %.*s's", F(ev, ACR_F_PARTNER_ID).ptr,
                    F(ev, ACR_F_PARTNER_ID).len);
    return 0;
}

/* ---- Plans ---------------------------------------------------------------- */

/* Every partner on the plan must have the plan's currency. */
static int check_plan_partners(acr__txn_t *tx, const acr_plan_t *plan, acr_err_t *err)
{
    MDB_cursor *cur;
    int rc = mdb_cursor_open(tx->txn, tx->dbi[ACR_DB_PLAN_PARTNERS], &cur);
    if (rc != 0)
        return acr__tx_fail(tx, rc, err, "plan_partners");
    size_t id_len = strlen(plan->plan_id);
    acr_buf_t *b = &tx->scratch2;
    acr_buf_reset(b);
    acr_buf_append(b, plan->plan_id, id_len + 1);
    MDB_val k = acr__val(b->data, b->len), v;
    int found = 0;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size <= id_len || memcmp(k.mv_data, plan->plan_id, id_len + 1) != 0)
            break;
        if (v.mv_size != 3 || memcmp(v.mv_data, plan->currency, 3) != 0) {
            found = 1;
            break;
        }
    }
    mdb_cursor_close(cur);
    if (rc != 0 && rc != MDB_NOTFOUND)
        return acr__tx_fail(tx, rc, err, "plan_partners");
    if (found) {
        snprintf(err->field, sizeof err->field, "data.plan.currency");
        return acr_err_set(err, ACR_ECURRENCY_MISMATCH,
                           "a partner on plan %s has another currency than %s", plan->plan_id,
                           plan->currency);
    }
    return 0;
}

static int plan_published(acr__txn_t *tx, const acr_event_t *ev, acr_err_t *err)
{
    acr_plan_t plan;
    acr_str_t doc = F(ev, ACR_F_PLAN);
    int rc = acr_plan_parse(doc.ptr, doc.len, &plan, err);
    if (rc != 0)
        return rc;
    int64_t version = 0;
    char cur[4];
    acr_str_t pid = {plan.plan_id, (uint32_t)strlen(plan.plan_id)};
    rc = load_plan(tx, pid, &version, cur, err);
    if (rc == 1 && plan.version <= version) {
        snprintf(err->field, sizeof err->field, "data.plan.version");
        rc = acr_err_set(err, ACR_ESTALE_VERSION, "plan %s is already at version %lld",
                         plan.plan_id, (long long)version);
    } else if (rc == 1 && memcmp(cur, plan.currency, 3) != 0) {
        snprintf(err->field, sizeof err->field, "data.plan.currency");
        rc = acr_err_set(err, ACR_ECURRENCY_MISMATCH, "plan %s is in %s", plan.plan_id, cur);
    } else if (rc >= 0) {
        rc = check_plan_partners(tx, &plan, err);
        if (rc == 0)
            rc = acr__prog_plan_check(tx, &plan, err); /* program.md: the ceiling */
    }
    if (rc == 0) {
        acr_buf_t *b = &tx->scratch;
        acr_buf_reset(b);
        acr__kv_put_i64(b, plan.version);
        acr__kv_put_str(b, plan.currency, 3);
        rc = put(tx, ACR_DB_PLANS, key1(pid), b->data, b->len, err);
    }
    acr_plan_destroy(&plan);
    return rc;
}

/* ---- Dispatch ------------------------------------------------------------- */

static int period_closed(acr__txn_t *tx, const acr_event_t *ev, acr_err_t *err)
{
    (void)tx;
    (void)ev;
    (void)err;
    return 0; /* written only by payout close, which checked its own rules */
}

typedef int (*apply_fn)(acr__txn_t *tx, const acr_event_t *ev, acr_err_t *err);

static const apply_fn apply_table[ACR_EV__COUNT] = {
    [ACR_EV_PARTNER_REGISTERED] = partner_registered,
    [ACR_EV_PARTNER_UPDATED] = partner_updated,
    [ACR_EV_PARTNER_STATUS_CHANGED] = partner_status_changed,
    [ACR_EV_REP_ADDED] = rep_added,
    [ACR_EV_TRAINING_COMPLETED] = training_completed,
    [ACR_EV_PIPELINE_DEFINED] = pipeline_defined,
    [ACR_EV_DEAL_REGISTERED] = deal_registered,
    [ACR_EV_DEAL_STAGE_CHANGED] = deal_stage_changed,
    [ACR_EV_DEAL_CLOSED] = deal_closed,
    [ACR_EV_SALE_RECORDED] = sale_recorded,
    [ACR_EV_SALE_REFUNDED] = sale_refunded,
    [ACR_EV_PLAN_PUBLISHED] = plan_published,
    [ACR_EV_ADJUSTMENT_RECORDED] = adjustment_recorded,
    [ACR_EV_PERIOD_CLOSED] = period_closed,
    [ACR_EV_ONBOARDING_DEFINED] = acr__prog_apply,
    [ACR_EV_PROMOTION_PUBLISHED] = acr__prog_apply,
    [ACR_EV_PROMOTION_ENDED] = acr__prog_apply,
    [ACR_EV_ANNOUNCEMENT_PUBLISHED] = acr__prog_apply,
    [ACR_EV_ANNOUNCEMENT_ACKNOWLEDGED] = acr__prog_apply,
};

int acr__state_apply(acr__txn_t *tx, const acr_event_t *ev, acr_err_t *err)
{
    if (tx->pseq_copies != 0) /* a caller applied an event and did not log it */
        return acr_err_set(err, ACR_ECORRUPT, "internal: an event was applied and neither "
                           "logged nor dropped before seq %llu", (unsigned long long)ev->seq);
    if (ev->type == ACR_EV_NONE || ev->type >= ACR_EV__COUNT)
        return acr_err_set(err, ACR_ECORRUPT, "event of unknown type %d", ev->type);
    if (tx->cache.count >= ACR_ROW_CACHE_MAX) { /* bound the memory of one huge transaction */
        int frc = acr__tx_flush(tx, err);
        if (frc != 0)
            return frc;
    }
    int rc = apply_table[ev->type](tx, ev, err);
    if (rc == 0 && (ev->type == ACR_EV_TRAINING_COMPLETED ||
                    ev->type == ACR_EV_PARTNER_REGISTERED || ev->type == ACR_EV_REP_ADDED))
        rc = acr__prog_apply(tx, ev, err); /* the onboarding view's rows */
    if (rc == 0 && ev->type == ACR_EV_PARTNER_UPDATED) {
        tx->partner_registered_at_ms = INT64_MIN;
        rc = acr__prog_registered_at(tx, ev->str[ACR_F_PARTNER_ID], &tx->partner_registered_at_ms,
                                     err);
        rc = rc < 0 ? rc : 0;
    }
    if (rc == 0)
        rc = acr__proj_apply(tx, ev, err);
    return rc ? rc : acr__pseq_apply(tx, ev, err); /* the payout run's index */
}
