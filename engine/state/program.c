/* program.c - the partner program's stateful rules (program.md), checked and
 * applied inside the append's write transaction like state.c's.
 *
 * Everything lives in one derived table, `program`, under one-letter key
 * spaces (rebuild and verify replay it like every derived table):
 *
 *   'O' at(8) seq(8)             -> modules JSON        onboarding lists, (at, seq) order
 *   'T' partner \0 at(8) seq(8)  -> kv module, rep      trainings, for the onboarding view
 *   'P' promo_id                 -> promotion row       (acr__prog_promo_t)
 *   'M' plan_id                  -> i64                 highest promotion rate_bp on the plan
 *   'H' plan_id                  -> i64                 min over versions of ceiling - top rate
 *   'A' announcement_id          -> announcement row    (acr__prog_ann_t)
 *   'K' ann \0 partner \0 rep    -> i64 at              acknowledgements (rep "" = none)
 *   'G' partner                  -> at(8) seq(8)        its registration (raw BE at)
 *   'R' partner \0 rep           -> at(8) seq(8)        rep.added
 *
 * at(8) is the UTC ms with the sign bit flipped, big-endian, so keys sort by
 * business time; seq(8) big-endian. append.c sets the event's seq before the
 * rules run, so a key is the same whether the event was appended or replayed.
 * Rules check first and write last: a rejected event changes nothing.
 */
#include <stdio.h>
#include <string.h>

#include "accrue/plan.h"
#include "accrue/program.h"
#include "program_internal.h"

static int pget(acr__txn_t *tx, MDB_val key, MDB_val *out, acr_err_t *err)
{
    int rc = mdb_get(tx->txn, tx->dbi[ACR_DB_PROGRAM], &key, out);
    if (rc == MDB_NOTFOUND)
        return 0;
    return rc ? acr__tx_fail(tx, rc, err, "program") : 1;
}

static int pput(acr__txn_t *tx, MDB_val key, const void *p, size_t n, acr_err_t *err)
{
    MDB_val v = acr__val(p, n);
    int rc = acr__dput(tx, ACR_DB_PROGRAM, &key, &v, 0);
    return rc ? acr__tx_fail(tx, rc, err, "program") : 0;
}

void acr__prog_key_at_seq(acr__pkey_t *k, int64_t at_ms, uint64_t seq)
{
    uint8_t b[16];
    acr__u64_be((uint64_t)at_ms ^ (1ull << 63), b);
    acr__u64_be(seq, b + 8);
    acr__pkey_add(k, b, 16);
}

int64_t acr__prog_at_of(const uint8_t b[8])
{
    return (int64_t)(acr__be_u64(b) ^ (1ull << 63));
}

acr__pkey_t acr__prog_key(char space, acr_str_t a)
{
    acr__pkey_t k = {.len = 0};
    acr__pkey_add(&k, &space, 1);
    acr__pkey_add(&k, a.ptr, a.len);
    return k;
}

static MDB_val kval(const acr__pkey_t *k)
{
    return acr__val(k->b, k->len);
}

static int fail_field(acr_err_t *err, int code, const char *field, const char *fmt,
                      acr_str_t arg)
{
    snprintf(err->field, sizeof err->field, "%s", field);
    char msg[200];
    snprintf(msg, sizeof msg, fmt, (int)arg.len, arg.ptr);
    return acr_err_set(err, code, "%s", msg);
}

/* ---- rows ---------------------------------------------------------------- */

int acr__prog_promo_decode(const void *p, size_t n, acr__prog_promo_t *out)
{
    acr__kv_reader_t r;
    acr__kv_reader_init(&r, p, n);
    out->plan_id = acr__kv_get_str(&r);
    out->rate_bp = acr__kv_get_i64(&r);
    out->from_day = acr__kv_get_i64(&r);
    out->to_day = acr__kv_get_i64(&r);
    out->ends_day = acr__kv_get_i64(&r);
    out->seq = acr__kv_get_i64(&r);
    out->at_ms = acr__kv_get_i64(&r);
    out->doc = acr__kv_get_str(&r);
    return r.bad || r.p != r.end ? ACR_ECORRUPT : 0;
}

static int promo_encode(acr_buf_t *b, const acr__prog_promo_t *p)
{
    acr_buf_reset(b);
    int rc = acr__kv_put_str(b, p->plan_id.ptr, p->plan_id.len);
    const int64_t n[] = {p->rate_bp, p->from_day, p->to_day, p->ends_day, p->seq, p->at_ms};
    for (size_t i = 0; rc == 0 && i < sizeof n / sizeof *n; i++)
        rc = acr__kv_put_i64(b, n[i]);
    return rc ? rc : acr__kv_put_str(b, p->doc.ptr, p->doc.len);
}

int acr__prog_ann_decode(const void *p, size_t n, acr__prog_ann_t *out)
{
    acr__kv_reader_t r;
    acr__kv_reader_init(&r, p, n);
    out->at_ms = acr__kv_get_i64(&r);
    out->seq = acr__kv_get_i64(&r);
    out->requires_ack = acr__kv_get_i64(&r);
    out->due_day = acr__kv_get_i64(&r);
    out->title = acr__kv_get_str(&r);
    out->audience = acr__kv_get_str(&r);
    return r.bad || r.p != r.end ? ACR_ECORRUPT : 0;
}

static int ann_encode(acr_buf_t *b, const acr__prog_ann_t *a)
{
    acr_buf_reset(b);
    int rc = 0;
    const int64_t n[] = {a->at_ms, a->seq, a->requires_ack, a->due_day};
    for (size_t i = 0; rc == 0 && i < sizeof n / sizeof *n; i++)
        rc = acr__kv_put_i64(b, n[i]);
    if (rc == 0)
        rc = acr__kv_put_str(b, a->title.ptr, a->title.len);
    return rc ? rc : acr__kv_put_str(b, a->audience.ptr, a->audience.len);
}

static int get_i64_row(acr__txn_t *tx, char space, acr_str_t id, int64_t *out, acr_err_t *err)
{
    acr__pkey_t k = acr__prog_key(space, id);
    MDB_val v;
    int rc = pget(tx, kval(&k), &v, err);
    if (rc != 1)
        return rc;
    if (v.mv_size != 8)
        return acr_err_set(err, ACR_ECORRUPT, "a program row is damaged");
    acr__kv_reader_t r;
    acr__kv_reader_init(&r, v.mv_data, v.mv_size);
    *out = acr__kv_get_i64(&r);
    return 1;
}

static int put_i64_row(acr__txn_t *tx, char space, acr_str_t id, int64_t v, acr_err_t *err)
{
    acr__pkey_t k = acr__prog_key(space, id);
    acr_buf_t *b = &tx->scratch;
    acr_buf_reset(b);
    if (acr__kv_put_i64(b, v) != 0)
        return acr_err_set(err, ACR_ENOMEM, "out of memory");
    return pput(tx, kval(&k), b->data, b->len, err);
}

/* ---- plans: the ceiling in both directions -------------------------------- */

int acr__prog_plan_check(acr__txn_t *tx, const acr_plan_t *plan, acr_err_t *err)
{
    acr_str_t pid = {plan->plan_id, (uint32_t)strlen(plan->plan_id)};
    int64_t headroom = (int64_t)plan->ceiling_bp - acr_plan_max_rate(plan), top = 0, old = 0;
    int rc = get_i64_row(tx, 'M', pid, &top, err);
    if (rc < 0)
        return rc;
    if (rc == 1 && top > headroom) {
        snprintf(err->field, sizeof err->field, "data.plan.ceiling_bp");
        return acr_err_set(err, ACR_EABOVE_CEILING,
                           "a promotion on plan %s pays %lld bp on top of this version's top "
                           "rate %d bp: above its ceiling_bp %d",
                           plan->plan_id, (long long)top, (int)acr_plan_max_rate(plan),
                           (int)plan->ceiling_bp);
    }
    if ((rc = get_i64_row(tx, 'H', pid, &old, err)) < 0)
        return rc;
    if (rc == 1 && old < headroom)
        headroom = old;
    return put_i64_row(tx, 'H', pid, headroom, err);
}

/* ---- the five events ------------------------------------------------------ */

static int onboarding_defined(acr__txn_t *tx, const acr_event_t *ev, acr_err_t *err)
{
    acr__pkey_t k = {.len = 0};
    acr__pkey_add(&k, "O", 1);
    acr__prog_key_at_seq(&k, ev->at_ms, ev->seq);
    acr_str_t m = ev->str[ACR_F_MODULES];
    return pput(tx, kval(&k), m.ptr, m.len, err);
}

static int training_completed(acr__txn_t *tx, const acr_event_t *ev, acr_err_t *err)
{
    acr__pkey_t k = {.len = 0};
    acr__pkey_add(&k, "T", 1);
    acr__pkey_part(&k, ev->str[ACR_F_PARTNER_ID]);
    acr__prog_key_at_seq(&k, ev->at_ms, ev->seq);
    acr_buf_t *b = &tx->scratch;
    acr_buf_reset(b);
    acr_str_t m = ev->str[ACR_F_MODULE];
    acr_str_t rep = ACR_HAS(ev, ACR_F_REP_ID) ? ev->str[ACR_F_REP_ID] : (acr_str_t){"", 0};
    if (k.bad || acr__kv_put_str(b, m.ptr, m.len) || acr__kv_put_str(b, rep.ptr, rep.len))
        return acr_err_set(err, ACR_ENOMEM, "out of memory");
    return pput(tx, kval(&k), b->data, b->len, err);
}

static int promotion_published(acr__txn_t *tx, const acr_event_t *ev, acr_err_t *err)
{
    acr_promo_t p;
    acr_str_t doc = ev->str[ACR_F_PROMOTION];
    acr_err_t perr;
    acr_err_clear(&perr);
    int rc = acr_promo_parse(doc.ptr, doc.len, &p, &perr);
    if (rc != 0) {
        *err = perr;
        snprintf(err->field, sizeof err->field, "data.%.50s", perr.field);
        return rc;
    }
    acr_str_t id = {p.promo_id, (uint32_t)strlen(p.promo_id)};
    acr_str_t plan = {p.plan_id, (uint32_t)strlen(p.plan_id)};
    acr__pkey_t k = acr__prog_key('P', id);
    MDB_val v;
    int64_t headroom = 0, top = 0;
    if ((rc = pget(tx, kval(&k), &v, err)) != 0) {
        if (rc == 1)
            rc = fail_field(err, ACR_EDUPLICATE, "data.promotion.promo_id",
                            "promotion %.*s exists", id);
    } else if ((rc = get_i64_row(tx, 'H', plan, &headroom, err)) == 0) {
        rc = fail_field(err, ACR_EUNKNOWN_PLAN, "data.promotion.plan_id",
                        "no plan %.*s is published", plan);
    } else if (rc == 1 && p.rate_bp > headroom) {
        snprintf(err->field, sizeof err->field, "data.promotion.rate_bp");
        rc = acr_err_set(err, ACR_EABOVE_CEILING,
                         "rate_bp %d on top of plan %s's rates passes a version's ceiling_bp "
                         "(at most %lld bp of room)",
                         (int)p.rate_bp, p.plan_id, (long long)headroom);
    } else if (rc == 1) {
        rc = get_i64_row(tx, 'M', plan, &top, err);
        if (rc >= 0)
            rc = p.rate_bp > top || rc == 0 ? put_i64_row(tx, 'M', plan, p.rate_bp, err) : 0;
        acr__prog_promo_t row = {plan, p.rate_bp, p.from_day, p.to_day, INT64_MAX,
                                 (int64_t)ev->seq, ev->at_ms, doc};
        if (rc == 0 && (rc = promo_encode(&tx->scratch, &row)) != 0)
            rc = acr_err_set(err, ACR_ENOMEM, "out of memory");
        if (rc == 0)
            rc = pput(tx, kval(&k), tx->scratch.data, tx->scratch.len, err);
    }
    acr_promo_destroy(&p);
    return rc;
}

static int promotion_ended(acr__txn_t *tx, const acr_event_t *ev, acr_err_t *err)
{
    acr_str_t id = ev->str[ACR_F_PROMO_ID];
    acr__pkey_t k = acr__prog_key('P', id);
    MDB_val v;
    int rc = pget(tx, kval(&k), &v, err);
    if (rc == 0)
        return fail_field(err, ACR_EUNKNOWN_PROMOTION, "data.promo_id", "no promotion %.*s", id);
    if (rc < 0)
        return rc;
    acr__prog_promo_t row;
    if (acr__prog_promo_decode(v.mv_data, v.mv_size, &row) != 0)
        return acr_err_set(err, ACR_ECORRUPT, "a promotion row is damaged");
    int64_t ends = ev->num[ACR_F_ENDS_ON];
    if (ends < row.from_day)
        return fail_field(err, ACR_EINVALID_VALUE, "data.ends_on",
                          "ends_on is before the promotion's from (%.*s)", id);
    if (ends >= row.ends_day)
        return 0;
    acr_buf_t *copy = &tx->scratch2; /* the row's slices die at the put */
    acr_buf_reset(copy);
    if (acr_buf_append(copy, v.mv_data, v.mv_size) != 0 ||
        acr__prog_promo_decode(copy->data, copy->len, &row) != 0)
        return acr_err_set(err, ACR_ENOMEM, "out of memory");
    row.ends_day = ends;
    if (promo_encode(&tx->scratch, &row) != 0)
        return acr_err_set(err, ACR_ENOMEM, "out of memory");
    k = acr__prog_key('P', id);
    return pput(tx, kval(&k), tx->scratch.data, tx->scratch.len, err);
}

static int announcement_published(acr__txn_t *tx, const acr_event_t *ev, acr_err_t *err)
{
    acr_str_t id = ev->str[ACR_F_ANNOUNCEMENT_ID];
    acr__pkey_t k = acr__prog_key('A', id);
    MDB_val v;
    int rc = pget(tx, kval(&k), &v, err);
    if (rc != 0)
        return rc < 0 ? rc
                      : fail_field(err, ACR_EDUPLICATE, "data.announcement_id",
                                   "announcement %.*s exists", id);
    acr__prog_ann_t a = {ev->at_ms, (int64_t)ev->seq, ev->num[ACR_F_REQUIRES_ACK],
                         ACR_HAS(ev, ACR_F_DUE) ? ev->num[ACR_F_DUE] : ACR__PROG_NO_DUE,
                         ev->str[ACR_F_TITLE],
                         ACR_HAS(ev, ACR_F_AUDIENCE) ? ev->str[ACR_F_AUDIENCE]
                                                     : (acr_str_t){"{}", 2}};
    if (ann_encode(&tx->scratch, &a) != 0)
        return acr_err_set(err, ACR_ENOMEM, "out of memory");
    return pput(tx, kval(&k), tx->scratch.data, tx->scratch.len, err);
}

static int announcement_acknowledged(acr__txn_t *tx, const acr_event_t *ev, acr_err_t *err)
{
    acr_str_t id = ev->str[ACR_F_ANNOUNCEMENT_ID], pid = ev->str[ACR_F_PARTNER_ID];
    acr__pkey_t k = acr__prog_key('A', id);
    MDB_val v;
    int rc = pget(tx, kval(&k), &v, err);
    if (rc == 0)
        return fail_field(err, ACR_EUNKNOWN_ANNOUNCEMENT, "data.announcement_id",
                          "no announcement %.*s", id);
    if (rc < 0)
        return rc;
    acr__prog_ann_t a;
    if (acr__prog_ann_decode(v.mv_data, v.mv_size, &a) != 0)
        return acr_err_set(err, ACR_ECORRUPT, "an announcement row is damaged");
    if (!a.requires_ack)
        return fail_field(err, ACR_EINVALID_VALUE, "data.announcement_id",
                          "announcement %.*s does not require acknowledgement", id);
    MDB_val pv;
    rc = mdb_get(tx->txn, tx->dbi[ACR_DB_PROJ_PARTNERS], &(MDB_val){pid.len, (void *)pid.ptr},
                 &pv);
    if (rc == MDB_NOTFOUND) /* program.md: "partner exists and is in the audience" is one rule */
        return fail_field(err, ACR_ENOT_IN_AUDIENCE, "data.partner_id",
                          "no partner %.*s, so not in the announcement's audience", pid);
    if (rc != 0)
        return acr__tx_fail(tx, rc, err, "proj_partners");
    acr__prow_t prow;
    if (acr__prow_decode(pv.mv_data, pv.mv_size, &prow) != 0)
        return acr_err_set(err, ACR_ECORRUPT, "a proj_partners row is damaged");
    int in = acr__prog_in_audience(a.audience, &prow);
    if (in < 0)
        return acr_err_set(err, ACR_ECORRUPT, "an announcement's audience is damaged");
    if (!in)
        return fail_field(err, ACR_ENOT_IN_AUDIENCE, "data.partner_id",
                          "partner %.*s is not in the announcement's audience", pid);
    acr_str_t rep = ACR_HAS(ev, ACR_F_REP_ID) ? ev->str[ACR_F_REP_ID] : (acr_str_t){"", 0};
    if (rep.len > 0) {
        MDB_val rk = acr__key2(&tx->scratch2, pid, rep), rv;
        rc = mdb_get(tx->txn, tx->dbi[ACR_DB_REPS], &rk, &rv);
        if (rc == MDB_NOTFOUND)
            return fail_field(err, ACR_EUNKNOWN_REP, "data.rep_id", "no rep %.*s at this partner",
                              rep);
        if (rc != 0)
            return acr__tx_fail(tx, rc, err, "reps");
    }
    acr__pkey_t ak = acr__prog_key('K', id);
    acr__pkey_add(&ak, "", 1);
    acr__pkey_part(&ak, pid);
    acr__pkey_add(&ak, rep.ptr, rep.len);
    if (ak.bad)
        return acr_err_set(err, ACR_ENOMEM, "key too long");
    if ((rc = pget(tx, kval(&ak), &v, err)) != 0 && rc > 0 && rep.len > 0)
        return fail_field(err, ACR_EDUPLICATE, "data.rep_id",
                          "rep %.*s already acknowledged this announcement", rep);
    if (rc != 0)
        return rc < 0 ? rc
                      : fail_field(err, ACR_EDUPLICATE, "data.partner_id",
                                   "partner %.*s already acknowledged this announcement", pid);
    acr_buf_t *b = &tx->scratch;
    acr_buf_reset(b);
    if (acr__kv_put_i64(b, ev->at_ms) != 0)
        return acr_err_set(err, ACR_ENOMEM, "out of memory");
    return pput(tx, kval(&ak), b->data, b->len, err);
}

/* 'G' partner -> at, seq of its registration; 'R' partner \0 rep -> at, seq of rep.added:
 * the first step of certified_on's walk (program.md). */
static int note_start(acr__txn_t *tx, const acr_event_t *ev, acr_err_t *err)
{
    acr__pkey_t k = acr__prog_key(ev->type == ACR_EV_REP_ADDED ? 'R' : 'G',
                                  ev->str[ACR_F_PARTNER_ID]);
    if (ev->type == ACR_EV_REP_ADDED) {
        acr__pkey_add(&k, "", 1);
        acr__pkey_add(&k, ev->str[ACR_F_REP_ID].ptr, ev->str[ACR_F_REP_ID].len);
    }
    uint8_t b[16];
    acr__u64_be((uint64_t)ev->at_ms, b);
    acr__u64_be(ev->seq, b + 8);
    return k.bad ? acr_err_set(err, ACR_ENOMEM, "key too long") : pput(tx, kval(&k), b, 16, err);
}

int acr__prog_registered_at(acr__txn_t *tx, acr_str_t partner_id, int64_t *at_ms,
                            acr_err_t *err)
{
    acr__pkey_t k = acr__prog_key('G', partner_id);
    MDB_val v;
    int rc = k.bad ? 0 : pget(tx, kval(&k), &v, err);
    if (rc != 1)
        return rc;
    if (v.mv_size != 16)
        return acr_err_set(err, ACR_ECORRUPT, "a partner's start row is damaged");
    *at_ms = (int64_t)acr__be_u64(v.mv_data);
    return 1;
}

int acr__prog_apply(acr__txn_t *tx, const acr_event_t *ev, acr_err_t *err)
{
    switch (ev->type) {
    case ACR_EV_PARTNER_REGISTERED:
    case ACR_EV_REP_ADDED: return note_start(tx, ev, err);
    case ACR_EV_ONBOARDING_DEFINED: return onboarding_defined(tx, ev, err);
    case ACR_EV_TRAINING_COMPLETED: return training_completed(tx, ev, err);
    case ACR_EV_PROMOTION_PUBLISHED: return promotion_published(tx, ev, err);
    case ACR_EV_PROMOTION_ENDED: return promotion_ended(tx, ev, err);
    case ACR_EV_ANNOUNCEMENT_PUBLISHED: return announcement_published(tx, ev, err);
    case ACR_EV_ANNOUNCEMENT_ACKNOWLEDGED: return announcement_acknowledged(tx, ev, err);
    default: return 0;
    }
}

/* ---- audience ------------------------------------------------------------- */

/* The string value of "key" in a compact JSON object of string members (the stored audience,
 * written by jansson: no whitespace; values may hold escapes, compared unescaped). */
static int audience_value(acr_str_t json, const char *key, char *out, size_t cap, size_t *n)
{
    char pat[24];
    int pl = snprintf(pat, sizeof pat, "\"%s\":\"", key);
    for (size_t i = 0; i + (size_t)pl <= json.len; i++) {
        if (memcmp(json.ptr + i, pat, (size_t)pl) != 0)
            continue;
        if (i > 0 && json.ptr[i - 1] != '{' && json.ptr[i - 1] != ',')
            continue;
        size_t j = i + (size_t)pl, o = 0;
        while (j < json.len && json.ptr[j] != '"') {
            char ch = json.ptr[j];
            if (ch == '\\') {
                if (++j >= json.len)
                    return -1;
                ch = json.ptr[j];
                if (ch == 'u') { /* \uXXXX: only control characters are escaped this way */
                    unsigned cp = 0;
                    for (int d = 1; d <= 4 && j + (size_t)d < json.len; d++) {
                        char h = json.ptr[j + (size_t)d];
                        cp = cp * 16 + (unsigned)(h <= '9' ? h - '0' : (h | 32) - 'a' + 10);
                    }
                    ch = (char)cp;
                    j += 4;
                } else {
                    ch = ch == 'n' ? '\n' : ch == 't' ? '\t' : ch == 'r' ? '\r'
                       : ch == 'b' ? '\b' : ch == 'f' ? '\f' : ch;
                }
            }
            if (o >= cap)
                return -1;
            out[o++] = ch;
            j++;
        }
        *n = o;
        return 1;
    }
    return 0;
}

int acr__prog_in_audience(acr_str_t audience, const acr__prow_t *p)
{
    if (p->status.len == 10 && memcmp(p->status.ptr, "offboarded", 10) == 0)
        return 0;
    static const char *const keys[] = {"tier", "kind", "region"};
    const acr_str_t have[] = {p->tier, p->kind, p->region};
    const bool has[] = {true, true, (p->flags & ACR__HAS_REGION) != 0};
    for (int i = 0; i < 3; i++) {
        char want[ACR_STRING_LEN_MAX + 8];
        size_t n = 0;
        int rc = audience_value(audience, keys[i], want, sizeof want, &n);
        if (rc < 0)
            return -1;
        if (rc == 0)
            continue;
        if (!has[i] || have[i].len != n || memcmp(have[i].ptr, want, n) != 0)
            return 0;
    }
    return 1;
}
