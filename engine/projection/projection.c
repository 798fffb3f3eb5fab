/* projection.c - the read models (partners, deals, pipeline, KPIs), kept up
 * to date inside the append's write transaction.
 *
 * state.c calls acr__proj_apply after an event passed every rule, in the same
 * transaction, and the same call runs during rebuild and verify replays (on
 * a scratch environment's tables: always tx->dbi). So every row must be a
 * function of the events in seq order and nothing else: only an event's
 * type, `at`, id and data are read, never its seq, version or recorded_at
 * (the first two are still 0 while an append applies it; recorded_at is a
 * wall clock). Where (at, seq) order matters - the first sale of a customer,
 * a partner attribute set by business time - apply order stands in for seq:
 * a later-applied event has the larger seq, so ties keep the earlier one.
 *
 * Rows are small kv records (store.c) laid out in projection_internal.h. A row read
 * from a page is copied into tx->scratch2 before any put (LMDB may move dirty
 * pages on a put), new values are encoded into tx->scratch, keys are built on
 * the stack. KPI counters are per (partner, local month) and per (partner,
 * local month, rep); a quarter is summed from its months at query time.
 *
 * The counter rows and the proj_deals rows go through the transaction's row
 * cache (store.c): read once per batch, written back once by acr__tx_flush
 * at the end of the batch, which stores the same bytes as a put per event.
 */
#include <assert.h>
#include <string.h>

#include "accrue/date.h"
#include "projection_internal.h"

#define F(ev, f) ((ev)->str[ACR_F_##f])
#define HAS(ev, f) ACR_HAS(ev, ACR_F_##f)

static const acr_str_t NONE = {"", 0};

/* ---- Row codecs ------------------------------------------------------------ */

int acr__prow_decode(const void *p, size_t len, acr__prow_t *out)
{
    acr__kv_reader_t r;
    acr__kv_reader_init(&r, p, len);
    acr_str_t *s[] = {&out->name,     &out->kind,   &out->tier,   &out->plan_id,
                      &out->currency, &out->region, &out->source, &out->status};
    for (size_t i = 0; i < sizeof s / sizeof s[0]; i++)
        *s[i] = acr__kv_get_str(&r);
    out->name_at_ms = acr__kv_get_i64(&r);
    out->tier_at_ms = acr__kv_get_i64(&r);
    out->plan_at_ms = acr__kv_get_i64(&r);
    out->region_at_ms = acr__kv_get_i64(&r);
    out->flags = acr__kv_get_i64(&r);
    out->training_count = acr__kv_get_i64(&r);
    return r.bad || r.p != r.end ? ACR_ECORRUPT : 0;
}

static int prow_encode(acr_buf_t *b, const acr__prow_t *p)
{
    const acr_str_t *s[] = {&p->name,     &p->kind,   &p->tier,   &p->plan_id,
                            &p->currency, &p->region, &p->source, &p->status};
    int rc = 0;
    acr_buf_reset(b);
    for (size_t i = 0; rc == 0 && i < sizeof s / sizeof s[0]; i++)
        rc = acr__kv_put_str(b, s[i]->ptr, s[i]->len);
    const int64_t n[] = {p->name_at_ms, p->tier_at_ms, p->plan_at_ms, p->region_at_ms,
                         p->flags,      p->training_count};
    for (size_t i = 0; rc == 0 && i < sizeof n / sizeof n[0]; i++)
        rc = acr__kv_put_i64(b, n[i]);
    return rc;
}

int acr__drow_decode(const void *p, size_t len, acr__drow_t *out)
{
    acr__kv_reader_t r;
    acr__kv_reader_init(&r, p, len);
    acr_str_t *s[] = {&out->partner_id, &out->customer_id, &out->currency, &out->name,
                      &out->rep_id,     &out->stage,       &out->reason};
    for (size_t i = 0; i < sizeof s / sizeof s[0]; i++)
        *s[i] = acr__kv_get_str(&r);
    int64_t *n[] = {&out->flags,           &out->amount_minor, &out->expected_close_day,
                    &out->outcome,         &out->registered_at_ms, &out->entered_day,
                    &out->closed_at_ms,    &out->moves};
    for (size_t i = 0; i < sizeof n / sizeof n[0]; i++)
        *n[i] = acr__kv_get_i64(&r);
    return r.bad || r.p != r.end ? ACR_ECORRUPT : 0;
}

static int drow_encode(acr_buf_t *b, const acr__drow_t *d)
{
    const acr_str_t *s[] = {&d->partner_id, &d->customer_id, &d->currency, &d->name,
                            &d->rep_id,     &d->stage,       &d->reason};
    int rc = 0;
    acr_buf_reset(b);
    for (size_t i = 0; rc == 0 && i < sizeof s / sizeof s[0]; i++)
        rc = acr__kv_put_str(b, s[i]->ptr, s[i]->len);
    const int64_t n[] = {d->flags,   d->amount_minor,     d->expected_close_day,
                         d->outcome, d->registered_at_ms, d->entered_day,
                         d->closed_at_ms, d->moves};
    for (size_t i = 0; rc == 0 && i < sizeof n / sizeof n[0]; i++)
        rc = acr__kv_put_i64(b, n[i]);
    return rc;
}

/* Little-endian int64 load/store (compilers turn these into one move). */
static int64_t le64_load(const uint8_t *p)
{
    uint64_t u = 0;
    for (int j = 7; j >= 0; j--)
        u = (u << 8) | p[j];
    return (int64_t)u;
}

static void le64_store(uint8_t *p, int64_t v)
{
    for (int j = 0; j < 8; j++)
        p[j] = (uint8_t)((uint64_t)v >> (8 * j));
}

int acr__counters_decode(const void *p, size_t len, int64_t *out, int n)
{
    if (len != (size_t)n * 8)
        return ACR_ECORRUPT;
    for (int i = 0; i < n; i++)
        out[i] = le64_load((const uint8_t *)p + 8 * i);
    return 0;
}

acr_i128_t acr__counters_i128(const int64_t *c, int lo_idx)
{
    acr_i128_t hi = c[lo_idx + 1];
    return hi * ((acr_i128_t)1 << 64) + (acr_i128_t)(uint64_t)c[lo_idx];
}

void acr__month_of(int64_t at_ms, int32_t utc_offset_min, char out[ACR_PERIOD_ID_MAX])
{
    int32_t day = acr_local_day(at_ms, utc_offset_min);
    acr_period_format(ACR_PERIOD_MONTH, acr_period_of_day(ACR_PERIOD_MONTH, day), out);
}

/* ---- Table access ------------------------------------------------------------ */

static MDB_val kval(const acr__pkey_t *k)
{
    return acr__val(k->b, k->len);
}

static MDB_val sval(acr_str_t s)
{
    return acr__val(s.ptr, s.len);
}

/* Reads a row and copies it into tx->scratch2 (stable across puts): 1 found
 * (*out over the copy), 0 absent, negative on failure. */
static int get_copy(acr__txn_t *tx, int db, MDB_val key, MDB_val *out, acr_err_t *err)
{
    MDB_val v;
    int rc = mdb_get(tx->txn, tx->dbi[db], &key, &v);
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc != 0)
        return acr__tx_fail(tx, rc, err, acr__db_name(db));
    acr_buf_reset(&tx->scratch2);
    if (acr_buf_append(&tx->scratch2, v.mv_data, v.mv_size) != 0)
        return acr_err_set(err, ACR_ENOMEM, "out of memory");
    *out = acr__val(tx->scratch2.data, v.mv_size);
    return 1;
}

static int put(acr__txn_t *tx, int db, MDB_val key, const void *p, size_t len, acr_err_t *err)
{
    MDB_val v = acr__val(p, len);
    int rc = acr__dput(tx, db, &key, &v, 0);
    return rc ? acr__tx_fail(tx, rc, err, acr__db_name(db)) : 0;
}

static int put_scratch(acr__txn_t *tx, int db, MDB_val key, int enc_rc, acr_err_t *err)
{
    if (enc_rc != 0)
        return acr_err_set(err, ACR_ENOMEM, "out of memory encoding a %s row", acr__db_name(db));
    return put(tx, db, key, tx->scratch.data, tx->scratch.len, err);
}

static int del(acr__txn_t *tx, int db, MDB_val key, acr_err_t *err)
{
    int rc = acr__ddel(tx, db, &key);
    return rc && rc != MDB_NOTFOUND ? acr__tx_fail(tx, rc, err, acr__db_name(db)) : 0;
}

static int key_check(const acr__pkey_t *k, acr_err_t *err)
{
    return k->bad ? acr_err_set(err, ACR_ETOO_LARGE, "a projection key is too long") : 0;
}

/* A row that must exist because validation accepted the event. */
static int need_copy(acr__txn_t *tx, int db, MDB_val key, MDB_val *out, acr_err_t *err)
{
    int rc = get_copy(tx, db, key, out, err);
    if (rc == 0)
        return acr_err_set(err, ACR_ECORRUPT, "%s: a row the event needs is missing",
                           acr__db_name(db));
    return rc < 0 ? rc : 0;
}

/* Adds delta[i] to the n counters at key (an absent row counts zeros);
 * net_lo >= 0 names a 128-bit (lo, hi) pair that gets net_delta. The row
 * is read once per batch into tx's cache and written back by acr__tx_flush
 * (the sum of the deltas gives the same bytes as one put per event). */
static int counters_add(acr__txn_t *tx, int db, const acr__pkey_t *key, const int64_t *delta,
                        int n, int net_lo, int64_t net_delta, acr_err_t *err)
{
    int64_t c[ACR__COUNTERS_MAX] = {0};
    int rc = key_check(key, err);
    if (rc != 0)
        return rc;
    bool fresh;
    acr__cached_row_t *e = acr__cache_get(tx, db, key->b, key->len, &fresh);
    if (e == NULL)
        return acr_err_set(err, ACR_ENOMEM, "out of memory");
    if (fresh) {
        MDB_val k = kval(key), v = {(size_t)n * 8, c};
        rc = tx->cache.empty ? MDB_NOTFOUND : mdb_get(tx->txn, tx->dbi[db], &k, &v);
        if (rc != 0 && rc != MDB_NOTFOUND)
            return acr__tx_fail(tx, rc, err, acr__db_name(db));
        if (rc == 0 && v.mv_size != (size_t)n * 8)
            return acr_err_set(err, ACR_ECORRUPT, "%s: a counter row is damaged",
                               acr__db_name(db));
        if (rc == MDB_NOTFOUND)
            v = acr__val(c, (size_t)n * 8); /* zeros */
        if (acr__cached_row_set(tx, e, v.mv_data, v.mv_size) != 0)
            return acr_err_set(err, ACR_ENOMEM, "out of memory");
    }
    if (acr__counters_decode(e->val, e->vlen, c, n) != 0)
        return acr_err_set(err, ACR_ECORRUPT, "%s: a counter row is damaged", acr__db_name(db));
    for (int i = 0; i < n; i++)
        if (i != net_lo && i != net_lo + 1)
            c[i] += delta[i];
    if (net_lo >= 0) {
        __extension__ unsigned __int128 u = (unsigned __int128)(acr__counters_i128(c, net_lo) +
                                                                net_delta);
        c[net_lo] = (int64_t)(uint64_t)u;
        c[net_lo + 1] = (int64_t)(uint64_t)(u >> 64);
    }
    for (int i = 0; i < n; i++)
        le64_store(e->val + 8 * i, c[i]);
    e->dirty = true;
    return 0;
}

static acr__pkey_t month_key(acr_str_t partner_id, const char *month)
{
    acr__pkey_t k = {.len = 0};
    acr__pkey_part(&k, partner_id);
    acr__pkey_add(&k, month, ACR__MONTH_LEN);
    return k;
}

static acr__pkey_t rep_key(acr_str_t partner_id, const char *month, acr_str_t rep_id)
{
    acr__pkey_t k = month_key(partner_id, month);
    acr__pkey_add(&k, "", 1);
    acr__pkey_add(&k, rep_id.ptr, rep_id.len);
    return k;
}

static int kpi_add(acr__txn_t *tx, acr_str_t partner_id, const char *month, int field,
                   int64_t by, int64_t net_delta, acr_err_t *err)
{
    int64_t d[ACR__KPI__COUNT] = {0};
    if (field >= 0)
        d[field] = by;
    acr__pkey_t k = month_key(partner_id, month);
    return counters_add(tx, ACR_DB_PROJ_KPI, &k, d, ACR__KPI__COUNT, ACR__KPI_NET_LO, net_delta,
                        err);
}

/* d: deltas indexed by ACR__REP_*, the net pair ignored (net_delta instead). */
static int rep_add(acr__txn_t *tx, acr_str_t partner_id, const char *month, acr_str_t rep_id,
                   const int64_t *d, int64_t net_delta, acr_err_t *err)
{
    acr__pkey_t k = rep_key(partner_id, month, rep_id);
    return counters_add(tx, ACR_DB_PROJ_REP_KPI, &k, d, ACR__REP__COUNT, ACR__REP_NET_LO,
                        net_delta, err);
}

/* ---- Partners ------------------------------------------------------------------ */

static int partner_registered(acr__txn_t *tx, const acr_event_t *ev, acr_err_t *err)
{
    acr__prow_t p = {
        .name = F(ev, NAME), .kind = F(ev, KIND), .tier = F(ev, TIER), .plan_id = F(ev, PLAN_ID),
        .currency = F(ev, CURRENCY), .region = HAS(ev, REGION) ? F(ev, REGION) : NONE,
        .source = HAS(ev, SOURCE) ? F(ev, SOURCE) : NONE, .status = {"active", 6},
        .name_at_ms = ev->at_ms, .tier_at_ms = ev->at_ms, .plan_at_ms = ev->at_ms,
        .region_at_ms = ev->at_ms, .flags = HAS(ev, REGION) ? ACR__HAS_REGION : 0,
    };
    return put_scratch(tx, ACR_DB_PROJ_PARTNERS, sval(F(ev, PARTNER_ID)),
                       prow_encode(&tx->scratch, &p), err);
}

/* partner.updated and partner.status_changed: attributes by business time. */
static int partner_changed(acr__txn_t *tx, const acr_event_t *ev, acr_err_t *err)
{
    MDB_val v;
    acr__prow_t p;
    int rc = need_copy(tx, ACR_DB_PROJ_PARTNERS, sval(F(ev, PARTNER_ID)), &v, err);
    if (rc != 0)
        return rc;
    if (acr__prow_decode(v.mv_data, v.mv_size, &p) != 0)
        return acr_err_set(err, ACR_ECORRUPT, "a proj_partners row is damaged");
    if (ev->type == ACR_EV_PARTNER_STATUS_CHANGED)
        p.status = F(ev, STATUS);
    struct {
        int field;
        acr_str_t *val;
        int64_t *at_ms;
        int64_t at_reg;
    } attrs[] = {{ACR_F_NAME, &p.name, &p.name_at_ms, ACR__NAME_AT_REG},
                 {ACR_F_TIER, &p.tier, &p.tier_at_ms, ACR__TIER_AT_REG},
                 {ACR_F_PLAN_ID, &p.plan_id, &p.plan_at_ms, ACR__PLAN_AT_REG},
                 {ACR_F_REGION, &p.region, &p.region_at_ms, ACR__REGION_AT_REG}};
    int64_t reg = tx->partner_registered_at_ms; /* INT64_MIN: unknown (an old ledger) */
    for (size_t i = 0; ev->type == ACR_EV_PARTNER_UPDATED && i < sizeof attrs / sizeof attrs[0];
         i++) {
        if (!ACR_HAS(ev, attrs[i].field))
            continue;
        bool from_registration = reg != INT64_MIN && *attrs[i].at_ms == reg &&
                                 (p.flags & attrs[i].at_reg) == 0;
        if (ev->at_ms < *attrs[i].at_ms && !from_registration)
            continue;
        *attrs[i].val = ev->str[attrs[i].field];
        *attrs[i].at_ms = ev->at_ms;
        p.flags |= attrs[i].field == ACR_F_REGION ? ACR__HAS_REGION : 0;
        p.flags &= ~attrs[i].at_reg;
        p.flags |= reg != INT64_MIN && ev->at_ms == reg ? attrs[i].at_reg : 0;
    }
    return put_scratch(tx, ACR_DB_PROJ_PARTNERS, sval(F(ev, PARTNER_ID)),
                       prow_encode(&tx->scratch, &p), err);
}

static int training_completed(acr__txn_t *tx, const acr_event_t *ev, acr_err_t *err)
{
    MDB_val v;
    acr__prow_t p;
    acr_str_t pid = F(ev, PARTNER_ID);
    int rc = need_copy(tx, ACR_DB_PROJ_PARTNERS, sval(pid), &v, err);
    if (rc != 0)
        return rc;
    if (acr__prow_decode(v.mv_data, v.mv_size, &p) != 0)
        return acr_err_set(err, ACR_ECORRUPT, "a proj_partners row is damaged");
    uint32_t n = (uint32_t)p.training_count++;
    if ((rc = put_scratch(tx, ACR_DB_PROJ_PARTNERS, sval(pid), prow_encode(&tx->scratch, &p),
                          err)) != 0)
        return rc;
    acr__pkey_t k = {.len = 0};
    acr__pkey_part(&k, pid);
    acr__pkey_u32(&k, n);
    acr_str_t rep = HAS(ev, REP_ID) ? F(ev, REP_ID) : NONE;
    acr_buf_reset(&tx->scratch);
    int enc = acr__kv_put_str(&tx->scratch, F(ev, MODULE).ptr, F(ev, MODULE).len);
    enc = enc ? enc : acr__kv_put_str(&tx->scratch, rep.ptr, rep.len);
    enc = enc ? enc : acr__kv_put_i64(&tx->scratch, acr_local_day(ev->at_ms, tx->utc_offset_min));
    if ((rc = key_check(&k, err)) != 0 ||
        (rc = put_scratch(tx, ACR_DB_PROJ_TRAINING, kval(&k), enc, err)) != 0)
        return rc;
    char month[ACR_PERIOD_ID_MAX];
    acr__month_of(ev->at_ms, tx->utc_offset_min, month);
    return kpi_add(tx, pid, month, ACR__KPI_TRAINING, 1, 0, err);
}

/* ---- Deals --------------------------------------------------------------------- */

static acr__pkey_t open_key(acr_str_t partner_id, acr_str_t stage, acr_str_t deal_id)
{
    acr__pkey_t k = {.len = 0};
    acr__pkey_part(&k, partner_id);
    acr__pkey_part(&k, stage);
    acr__pkey_add(&k, deal_id.ptr, deal_id.len);
    return k;
}

/* Writes the deal row, its open-deal row (when open) and move number n. */
static int deal_store(acr__txn_t *tx, acr_str_t did, const acr__drow_t *d, acr_str_t move_stage,
                      int64_t move_n, int64_t move_at_ms, acr_err_t *err)
{
    int rc = drow_encode(&tx->scratch, d);
    bool fresh;
    acr__cached_row_t *e =
        rc ? NULL : acr__cache_get(tx, ACR_DB_PROJ_DEALS, did.ptr, did.len, &fresh);
    if (e == NULL || acr__cached_row_set(tx, e, tx->scratch.data, tx->scratch.len) != 0)
        return acr_err_set(err, ACR_ENOMEM, "out of memory encoding a proj_deals row");
    e->dirty = true; /* written back by acr__tx_flush */
    if (rc == 0 && d->outcome == ACR__DEAL_OPEN) {
        acr__pkey_t k = open_key(d->partner_id, d->stage, did);
        acr_buf_reset(&tx->scratch);
        int enc = acr__kv_put_i64(&tx->scratch, d->flags & ACR__HAS_AMOUNT ? d->amount_minor : 0);
        enc = enc ? enc : acr__kv_put_i64(&tx->scratch, d->entered_day);
        if ((rc = key_check(&k, err)) == 0)
            rc = put_scratch(tx, ACR_DB_PROJ_OPEN_DEALS, kval(&k), enc, err);
    }
    if (rc == 0 && move_n >= 0) {
        acr__pkey_t k = {.len = 0};
        acr__pkey_part(&k, did);
        acr__pkey_u32(&k, (uint32_t)move_n);
        acr_buf_reset(&tx->scratch);
        int enc = acr__kv_put_str(&tx->scratch, move_stage.ptr, move_stage.len);
        enc = enc ? enc : acr__kv_put_i64(&tx->scratch, move_at_ms);
        if ((rc = key_check(&k, err)) == 0)
            rc = put_scratch(tx, ACR_DB_PROJ_DEAL_MOVES, kval(&k), enc, err);
    }
    return rc;
}

static int deal_registered(acr__txn_t *tx, const acr_event_t *ev, acr_err_t *err)
{
    assert(tx->pipeline_loaded); /* state.c loaded it to find the first stage */
    acr_str_t first = {tx->pipeline.names[0], (uint32_t)strlen(tx->pipeline.names[0])};
    acr__drow_t d = {
        .partner_id = F(ev, PARTNER_ID), .customer_id = F(ev, CUSTOMER_ID),
        .currency = F(ev, CURRENCY), .name = HAS(ev, NAME) ? F(ev, NAME) : NONE,
        .rep_id = HAS(ev, REP_ID) ? F(ev, REP_ID) : NONE, .stage = first, .reason = NONE,
        .flags = (HAS(ev, NAME) ? ACR__HAS_NAME : 0) |
                 (HAS(ev, AMOUNT_MINOR) ? ACR__HAS_AMOUNT : 0) |
                 (HAS(ev, EXPECTED_CLOSE) ? ACR__HAS_EXPECTED_CLOSE : 0),
        .amount_minor = ev->num[ACR_F_AMOUNT_MINOR],
        .expected_close_day = ev->num[ACR_F_EXPECTED_CLOSE], .outcome = ACR__DEAL_OPEN,
        .registered_at_ms = ev->at_ms, .entered_day = acr_local_day(ev->at_ms, tx->utc_offset_min),
        .moves = 1,
    };
    if (!HAS(ev, AMOUNT_MINOR))
        d.amount_minor = 0;
    if (!HAS(ev, EXPECTED_CLOSE))
        d.expected_close_day = 0;
    int rc = deal_store(tx, F(ev, DEAL_ID), &d, first, 0, ev->at_ms, err);
    char month[ACR_PERIOD_ID_MAX];
    acr__month_of(ev->at_ms, tx->utc_offset_min, month);
    int64_t rd[ACR__REP__COUNT] = {[ACR__REP_REGISTERED] = 1, [ACR__REP_ACTIVITY] = 1};
    if (rc == 0)
        rc = kpi_add(tx, d.partner_id, month, ACR__KPI_REGISTERED, 1, 0, err);
    return rc ? rc : rep_add(tx, d.partner_id, month, d.rep_id, rd, 0, err);
}

/* The cache entry of (db, key), read from LMDB on a miss (unless the
 * tables are known empty). 0 (*out set) or an error. */
static int cached_lookup(acr__txn_t *tx, int db, acr_str_t key, acr__cached_row_t **out,
                         acr_err_t *err)
{
    bool fresh;
    acr__cached_row_t *e = acr__cache_get(tx, db, key.ptr, key.len, &fresh);
    if (e == NULL)
        return acr_err_set(err, ACR_ENOMEM, "out of memory");
    if (fresh && !tx->cache.empty) {
        MDB_val v;
        int rc = mdb_get(tx->txn, tx->dbi[db], &(MDB_val){key.len, (void *)key.ptr}, &v);
        if (rc != 0 && rc != MDB_NOTFOUND)
            return acr__tx_fail(tx, rc, err, acr__db_name(db));
        if (rc == 0 && acr__cached_row_set(tx, e, v.mv_data, v.mv_size) != 0)
            return acr_err_set(err, ACR_ENOMEM, "out of memory");
    }
    *out = e;
    return 0;
}

/* A row that must exist, through tx's cache (deal rows are rewritten by
 * every deal event and written back by acr__tx_flush), copied into
 * tx->scratch2 like need_copy. */
static int cached_copy(acr__txn_t *tx, int db, acr_str_t key, MDB_val *out, acr_err_t *err)
{
    acr__cached_row_t *e = NULL;
    int rc = cached_lookup(tx, db, key, &e, err);
    if (rc != 0 || e == NULL)
        return rc ? rc : acr_err_set(err, ACR_ENOMEM, "out of memory");
    if (e->state != ACR__ROW_PRESENT)
        return acr_err_set(err, ACR_ECORRUPT, "%s: a row the event needs is missing",
                           acr__db_name(db));
    acr_buf_reset(&tx->scratch2);
    if (acr_buf_append(&tx->scratch2, acr__cached_row_val(e), e->vlen) != 0)
        return acr_err_set(err, ACR_ENOMEM, "out of memory");
    *out = acr__val(tx->scratch2.data, e->vlen);
    return 0;
}

static int load_deal(acr__txn_t *tx, acr_str_t did, acr__drow_t *d, acr_err_t *err)
{
    MDB_val v = {0, NULL};
    int rc = cached_copy(tx, ACR_DB_PROJ_DEALS, did, &v, err);
    if (rc == 0 && acr__drow_decode(v.mv_data, v.mv_size, d) != 0)
        rc = acr_err_set(err, ACR_ECORRUPT, "a proj_deals row is damaged");
    return rc;
}

static bool str_eq(acr_str_t a, acr_str_t b)
{
    return a.len == b.len && memcmp(a.ptr, b.ptr, a.len) == 0;
}

/* A move to the deal's own stage updates its fields and history but keeps
 * the date it entered the stage (the age in stage goes on). */
static int deal_stage_changed(acr__txn_t *tx, const acr_event_t *ev, acr_err_t *err)
{
    acr__drow_t d;
    acr_str_t did = F(ev, DEAL_ID), stage = F(ev, STAGE);
    int rc = load_deal(tx, did, &d, err);
    if (rc != 0)
        return rc;
    if (HAS(ev, AMOUNT_MINOR)) {
        d.amount_minor = ev->num[ACR_F_AMOUNT_MINOR];
        d.flags |= ACR__HAS_AMOUNT;
    }
    if (HAS(ev, EXPECTED_CLOSE)) {
        d.expected_close_day = ev->num[ACR_F_EXPECTED_CLOSE];
        d.flags |= ACR__HAS_EXPECTED_CLOSE;
    }
    if (HAS(ev, REP_ID))
        d.rep_id = F(ev, REP_ID);
    if (!str_eq(stage, d.stage)) {
        acr__pkey_t old = open_key(d.partner_id, d.stage, did);
        if ((rc = key_check(&old, err)) != 0 ||
            (rc = del(tx, ACR_DB_PROJ_OPEN_DEALS, kval(&old), err)) != 0)
            return rc;
        d.stage = stage;
        d.entered_day = acr_local_day(ev->at_ms, tx->utc_offset_min);
    }
    int64_t n = d.moves++;
    return deal_store(tx, did, &d, stage, n, ev->at_ms, err);
}

static int deal_closed(acr__txn_t *tx, const acr_event_t *ev, acr_err_t *err)
{
    acr__drow_t d;
    acr_str_t did = F(ev, DEAL_ID);
    int rc = load_deal(tx, did, &d, err);
    if (rc != 0)
        return rc;
    acr__pkey_t old = open_key(d.partner_id, d.stage, did);
    if ((rc = key_check(&old, err)) != 0 ||
        (rc = del(tx, ACR_DB_PROJ_OPEN_DEALS, kval(&old), err)) != 0)
        return rc;
    bool won = F(ev, OUTCOME).ptr[0] == 'w';
    d.outcome = won ? ACR__DEAL_WON : ACR__DEAL_LOST;
    d.closed_at_ms = ev->at_ms;
    d.reason = HAS(ev, REASON) ? F(ev, REASON) : NONE;
    d.flags |= HAS(ev, REASON) ? ACR__HAS_REASON : 0;
    if ((rc = deal_store(tx, did, &d, NONE, -1, 0, err)) != 0)
        return rc;
    char month[ACR_PERIOD_ID_MAX];
    acr__month_of(ev->at_ms, tx->utc_offset_min, month);
    if (won) {
        acr__pkey_t k = month_key(d.partner_id, month);
        acr__pkey_add(&k, "", 1);
        acr__pkey_add(&k, did.ptr, did.len);
        int64_t days = (int64_t)acr_local_day(ev->at_ms, tx->utc_offset_min) -
                       acr_local_day(d.registered_at_ms, tx->utc_offset_min);
        uint8_t v[8];
        for (int j = 0; j < 8; j++)
            v[j] = (uint8_t)((uint64_t)days >> (8 * j));
        if ((rc = key_check(&k, err)) != 0 ||
            (rc = put(tx, ACR_DB_PROJ_KPI_WINS, kval(&k), v, 8, err)) != 0)
            return rc;
    }
    int64_t rd[ACR__REP__COUNT] = {[ACR__REP_WON] = won, [ACR__REP_ACTIVITY] = 1};
    rc = kpi_add(tx, d.partner_id, month, won ? ACR__KPI_WON : ACR__KPI_LOST, 1, 0, err);
    return rc ? rc : rep_add(tx, d.partner_id, month, d.rep_id, rd, 0, err);
}

/* ---- Sales --------------------------------------------------------------------- */

typedef struct first_sale {
    int64_t at_ms;
    char partner_id[ACR_ID_LEN_MAX + 1];
    char rep_id[ACR_ID_LEN_MAX + 1];
    acr_str_t partner, rep; /* slices over the arrays above */
} first_sale_t;

/* Decodes a proj_first_sale row into *out (copied: the page may move). */
static int first_sale_decode(MDB_val v, first_sale_t *out, acr_err_t *err)
{
    acr__kv_reader_t r;
    acr__kv_reader_init(&r, v.mv_data, v.mv_size);
    out->at_ms = acr__kv_get_i64(&r);
    acr_str_t p = acr__kv_get_str(&r), rep = acr__kv_get_str(&r);
    if (r.bad || r.p != r.end || p.len > ACR_ID_LEN_MAX || rep.len > ACR_ID_LEN_MAX)
        return acr_err_set(err, ACR_ECORRUPT, "a proj_first_sale row is damaged");
    memcpy(out->partner_id, p.ptr, p.len);
    memcpy(out->rep_id, rep.ptr, rep.len);
    out->partner = (acr_str_t){out->partner_id, p.len};
    out->rep = (acr_str_t){out->rep_id, rep.len};
    return 0;
}

/* Makes this sale the customer's first when it is earlier by (at, seq) than
 * the current first one (a backdated sale), moving the new-customer count
 * from the old sale's (partner, month, rep) to this one's. *out_new: 1 when
 * this sale is now the first sale. A new customer's row is inserted in the
 * descent that looks for it (MDB_NOOVERWRITE answers an existing row). */
static int first_sale_update(acr__txn_t *tx, const acr_event_t *ev, acr_str_t rep,
                             int64_t *out_new, acr_err_t *err)
{
    first_sale_t old;
    acr_str_t customer = F(ev, CUSTOMER_ID);
    acr_buf_reset(&tx->scratch);
    int enc = acr__kv_put_i64(&tx->scratch, ev->at_ms);
    enc = enc ? enc : acr__kv_put_str(&tx->scratch, F(ev, PARTNER_ID).ptr, F(ev, PARTNER_ID).len);
    enc = enc ? enc : acr__kv_put_str(&tx->scratch, rep.ptr, rep.len);
    if (enc != 0)
        return acr_err_set(err, ACR_ENOMEM, "out of memory encoding a proj_first_sale row");
    MDB_val k = sval(customer), v = acr__val(tx->scratch.data, tx->scratch.len);
    int rc = acr__dput(tx, ACR_DB_PROJ_FIRST_SALE, &k, &v, MDB_NOOVERWRITE);
    *out_new = rc == 0;
    if (rc == 0)
        return 0;
    if (rc != MDB_KEYEXIST)
        return acr__tx_fail(tx, rc, err, acr__db_name(ACR_DB_PROJ_FIRST_SALE));
    if ((rc = first_sale_decode(v, &old, err)) != 0)
        return rc;
    *out_new = ev->at_ms < old.at_ms;
    if (!*out_new)
        return 0;
    if ((rc = put_scratch(tx, ACR_DB_PROJ_FIRST_SALE, sval(customer), 0, err)) != 0)
        return rc;
    char month[ACR_PERIOD_ID_MAX];
    acr__month_of(old.at_ms, tx->utc_offset_min, month);
    int64_t rd[ACR__REP__COUNT] = {[ACR__REP_NEW_CUSTOMERS] = -1};
    rc = kpi_add(tx, old.partner, month, ACR__KPI_NEW_CUSTOMERS, -1, 0, err);
    return rc ? rc : rep_add(tx, old.partner, month, old.rep, rd, 0, err);
}

static int sale_recorded(acr__txn_t *tx, const acr_event_t *ev, acr_err_t *err)
{
    acr_str_t pid = F(ev, PARTNER_ID), rep = HAS(ev, REP_ID) ? F(ev, REP_ID) : NONE;
    int64_t amount = ev->num[ACR_F_AMOUNT_MINOR], is_new = 0;
    acr_buf_reset(&tx->scratch);
    int enc = acr__kv_put_str(&tx->scratch, pid.ptr, pid.len);
    enc = enc ? enc : acr__kv_put_str(&tx->scratch, rep.ptr, rep.len);
    int rc = put_scratch(tx, ACR_DB_PROJ_SALES, sval(F(ev, SALE_ID)), enc, err);
    if (rc == 0)
        rc = first_sale_update(tx, ev, rep, &is_new, err);
    if (rc != 0)
        return rc;
    char month[ACR_PERIOD_ID_MAX];
    acr__month_of(ev->at_ms, tx->utc_offset_min, month);
    int64_t rd[ACR__REP__COUNT] = {[ACR__REP_SALES] = 1, [ACR__REP_NEW_CUSTOMERS] = is_new,
                                   [ACR__REP_ACTIVITY] = 1};
    rc = kpi_add(tx, pid, month, ACR__KPI_NEW_CUSTOMERS, is_new, amount, err);
    return rc ? rc : rep_add(tx, pid, month, rep, rd, amount, err);
}

/* A refund lowers the net revenue of the sale's partner and rep in the
 * refund's own month. */
static int sale_refunded(acr__txn_t *tx, const acr_event_t *ev, acr_err_t *err)
{
    MDB_val v;
    int rc = need_copy(tx, ACR_DB_PROJ_SALES, sval(F(ev, SALE_ID)), &v, err);
    if (rc != 0)
        return rc;
    acr__kv_reader_t r;
    acr__kv_reader_init(&r, v.mv_data, v.mv_size);
    acr_str_t pid = acr__kv_get_str(&r), rep = acr__kv_get_str(&r);
    if (r.bad || r.p != r.end)
        return acr_err_set(err, ACR_ECORRUPT, "a proj_sales row is damaged");
    char month[ACR_PERIOD_ID_MAX];
    acr__month_of(ev->at_ms, tx->utc_offset_min, month);
    int64_t amount = ev->num[ACR_F_AMOUNT_MINOR];
    int64_t rd[ACR__REP__COUNT] = {[ACR__REP_ACTIVITY] = 1};
    rc = kpi_add(tx, pid, month, -1, 0, -amount, err);
    return rc ? rc : rep_add(tx, pid, month, rep, rd, -amount, err);
}

/* ---- Dispatch ------------------------------------------------------------------ */

int acr__proj_apply(acr__txn_t *tx, const acr_event_t *ev, acr_err_t *err)
{
#ifdef ACR_BENCH_NO_PROJECTIONS /* `make CPPFLAGS=-DACR_BENCH_NO_PROJECTIONS`: their cost */
    return 0;
#endif
    switch (ev->type) {
    case ACR_EV_PARTNER_REGISTERED: return partner_registered(tx, ev, err);
    case ACR_EV_PARTNER_UPDATED:
    case ACR_EV_PARTNER_STATUS_CHANGED: return partner_changed(tx, ev, err);
    case ACR_EV_TRAINING_COMPLETED: return training_completed(tx, ev, err);
    case ACR_EV_DEAL_REGISTERED: return deal_registered(tx, ev, err);
    case ACR_EV_DEAL_STAGE_CHANGED: return deal_stage_changed(tx, ev, err);
    case ACR_EV_DEAL_CLOSED: return deal_closed(tx, ev, err);
    case ACR_EV_SALE_RECORDED: return sale_recorded(tx, ev, err);
    case ACR_EV_SALE_REFUNDED: return sale_refunded(tx, ev, err);
    default: return 0; /* reps and the pipeline live in state tables; plans etc. have no rows */
    }
}
