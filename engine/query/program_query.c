/* program_query.c - the partner program's read side (program.md): onboarding
 * and certification, announcements with their audience and acknowledgements,
 * promotions with their lines and budgets. Answers in JSON like query.c.
 *
 * Onboarding reads the `program` table's rows (engine/program.c): every
 * onboarding list by (at, seq), the partner's trainings by (at, seq), the
 * registration and rep.added steps. Certification as of T is computed from
 * them exactly as program.md states it (the list in force at T, trainings
 * with at <= T), and certified_on by the walk it describes. Announcements
 * read the 'A' and 'K' rows and every partner's projection row (its current
 * attributes and status). Promotions run the pure commission processor over
 * the snapshot as of the head, without closes (like kpi's commission).
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "accrue/commission.h"
#include "accrue/date.h"
#include "accrue/jsonmem.h"
#include "accrue/program.h"
#include "accrue/program_query.h"
#include "../payout/payout_internal.h"
#include "../state/program_internal.h"

typedef struct onb_list {
    int64_t at_ms;
    uint64_t seq;
    json_t *mods; /* array of strings */
} onb_list_t;

typedef struct train {
    int64_t at_ms;
    uint64_t seq;
    acr_str_t module, rep; /* slices into the snapshot's pages */
} train_t;

typedef struct prog_snap {
    acr_ledger_t *l;
    acr_reader_t *r;
    MDB_txn *txn;
    onb_list_t *lists;
    size_t nlists;
    train_t *tr; /* the current partner's trainings */
    size_t ntr, tr_cap;
} prog_snap_t;

typedef struct jw {
    acr_buf_t *b;
    int rc;
} jw_t;

static void raw(jw_t *w, const char *s)
{
    if (w->rc == 0)
        w->rc = acr_buf_append_str(w->b, s);
}

static void jstr(jw_t *w, acr_str_t s)
{
    if (w->rc == 0)
        w->rc = acr_buf_append_json_str(w->b, s.ptr, s.len);
}

static void key(jw_t *w, const char *k, bool first)
{
    if (w->rc == 0)
        w->rc = acr_buf_printf(w->b, "%s\"%s\":", first ? "" : ",", k);
}

static void jdate(jw_t *w, int64_t day)
{
    char d[16];
    acr_date_format((int32_t)day, d);
    if (w->rc == 0)
        w->rc = acr_buf_printf(w->b, "\"%s\"", d);
}

static void jts(jw_t *w, int64_t at_ms)
{
    char ts[ACR_TS_BUF];
    acr_ts_format(at_ms, ts);
    if (w->rc == 0)
        w->rc = acr_buf_printf(w->b, "\"%s\"", ts);
}

static void ji64(jw_t *w, int64_t v)
{
    if (w->rc == 0)
        w->rc = acr_buf_printf(w->b, "%lld", (long long)v);
}

static acr_str_t vstr(MDB_val v)
{
    return (acr_str_t){v.mv_data, (uint32_t)v.mv_size};
}

static int snap_open(acr_ledger_t *l, prog_snap_t *s, acr_err_t *err)
{
    memset(s, 0, sizeof *s);
    s->l = l;
    int rc = acr_reader_open(l, &s->r, err);
    s->txn = rc == 0 ? acr__reader_txn(s->r, ACR_DB_PROGRAM) : NULL; /* the state's */
    return rc;
}

static void snap_close(prog_snap_t *s)
{
    for (size_t i = 0; i < s->nlists; i++)
        json_decref(s->lists[i].mods);
    free(s->lists);
    free(s->tr);
    if (s->r != NULL)
        acr_reader_close(s->r);
}

/* Calls fn for each row of the program table whose key starts with prefix. */
static int scan(prog_snap_t *s, const void *prefix, size_t plen,
                int (*fn)(prog_snap_t *s, MDB_val k, MDB_val v, void *ctx, acr_err_t *err),
                void *ctx, acr_err_t *err)
{
    MDB_cursor *cur;
    int rc = mdb_cursor_open(s->txn, s->l->dbi[ACR_DB_PROGRAM], &cur);
    if (rc != 0)
        return acr__mdb_err(rc, err, "program");
    MDB_val k = {plen, (void *)prefix}, v;
    int frc = 0;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0 && frc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size < plen || memcmp(k.mv_data, prefix, plen) != 0)
            break;
        frc = fn(s, k, v, ctx, err);
    }
    mdb_cursor_close(cur);
    if (frc != 0)
        return frc;
    return rc == 0 || rc == MDB_NOTFOUND ? 0 : acr__mdb_err(rc, err, "program");
}

static int list_row(prog_snap_t *s, MDB_val k, MDB_val v, void *ctx, acr_err_t *err)
{
    size_t *cap = ctx;
    if (k.mv_size != 17)
        return acr_err_set(err, ACR_ECORRUPT, "an onboarding row is damaged");
    if (s->nlists == *cap) {
        size_t n = *cap ? *cap * 2 : 8;
        onb_list_t *p = realloc(s->lists, n * sizeof *p);
        if (p == NULL)
            return acr_err_set(err, ACR_ENOMEM, "out of memory");
        s->lists = p;
        *cap = n;
    }
    const uint8_t *kb = k.mv_data;
    json_t *mods = json_loadb(v.mv_data, v.mv_size, 0, NULL);
    if (mods == NULL || !json_is_array(mods)) {
        json_decref(mods);
        return acr_err_set(err, ACR_ECORRUPT, "an onboarding list is damaged");
    }
    s->lists[s->nlists++] = (onb_list_t){acr__prog_at_of(kb + 1), acr__be_u64(kb + 9), mods};
    return 0;
}

static int load_lists(prog_snap_t *s, acr_err_t *err)
{
    size_t cap = 0;
    acr_jsonmem_begin();
    return scan(s, "O", 1, list_row, &cap, err);
}

static int train_row(prog_snap_t *s, MDB_val k, MDB_val v, void *ctx, acr_err_t *err)
{
    size_t plen = *(size_t *)ctx;
    if (k.mv_size != plen + 16)
        return acr_err_set(err, ACR_ECORRUPT, "a training row is damaged");
    if (s->ntr == s->tr_cap) {
        size_t n = s->tr_cap ? s->tr_cap * 2 : 16;
        train_t *p = realloc(s->tr, n * sizeof *p);
        if (p == NULL)
            return acr_err_set(err, ACR_ENOMEM, "out of memory");
        s->tr = p;
        s->tr_cap = n;
    }
    const uint8_t *kb = (const uint8_t *)k.mv_data + plen;
    acr__kv_reader_t r;
    acr__kv_reader_init(&r, v.mv_data, v.mv_size);
    train_t t = {acr__prog_at_of(kb), acr__be_u64(kb + 8), acr__kv_get_str(&r),
                 acr__kv_get_str(&r)};
    if (r.bad)
        return acr_err_set(err, ACR_ECORRUPT, "a training row is damaged");
    s->tr[s->ntr++] = t;
    return 0;
}

static int load_trainings(prog_snap_t *s, acr_str_t pid, acr_err_t *err)
{
    acr__pkey_t k = acr__prog_key('T', pid);
    acr__pkey_add(&k, "", 1);
    s->ntr = 0;
    size_t plen = k.len;
    return scan(s, k.b, k.len, train_row, &plen, err);
}

static bool str_eq(acr_str_t a, acr_str_t b)
{
    return a.len == b.len && memcmp(a.ptr, b.ptr, a.len) == 0;
}

/* The list in force at t (the last by (at, seq) with at <= t), or NULL. */
static const onb_list_t *list_at(const prog_snap_t *s, int64_t t_ms)
{
    const onb_list_t *l = NULL;
    for (size_t i = 0; i < s->nlists && s->lists[i].at_ms <= t_ms; i++)
        l = &s->lists[i];
    return l;
}

/* Whether module m was completed as of t (rep NULL: by the partner, any rep or none). */
static bool completed(const prog_snap_t *s, acr_str_t m, const acr_str_t *rep, int64_t t_ms)
{
    for (size_t i = 0; i < s->ntr; i++)
        if (s->tr[i].at_ms <= t_ms && str_eq(s->tr[i].module, m) &&
            (rep == NULL || str_eq(s->tr[i].rep, *rep)))
            return true;
    return false;
}

static acr_str_t jsv(json_t *v)
{
    return (acr_str_t){json_string_value(v), (uint32_t)json_string_length(v)};
}

static bool cert_at(const prog_snap_t *s, const acr_str_t *rep, int64_t t_ms)
{
    const onb_list_t *l = list_at(s, t_ms);
    if (l == NULL)
        return true;
    for (size_t i = 0; i < json_array_size(l->mods); i++)
        if (!completed(s, jsv(json_array_get(l->mods, i)), rep, t_ms))
            return false;
    return true;
}

/* certified_on (program.md): walk the start step (the partner's registration, the rep's
 * rep.added), the trainings (of the rep when given) and every list in (at, seq) order, steps
 * dated before the start included; the local day of the step at which the subject last
 * became certified, or -1 when it is not certified at the end. Before its start a subject is
 * certified only by completing a list in force: the vacuous "no list in force, every partner
 * is certified" begins at the start, so with no list ever defined certified_on is the
 * start's local date, as program.md says, whatever the trainings' dates; a list defined and
 * completed before the registration certifies from the training that completed it. */
static int64_t certified_on(const prog_snap_t *s, const acr_str_t *rep, int64_t start_at,
                            uint64_t start_seq, int32_t offset_min)
{
    size_t ti = 0, li = 0;
    bool prev = false, started = false;
    int64_t on = -1;
    if (start_at == INT64_MAX)
        return -1; /* no start row (read_start): no step certifies, so no date */
    for (;;) {
        while (ti < s->ntr && rep != NULL && !str_eq(s->tr[ti].rep, *rep))
            ti++;
        int64_t at = INT64_MAX;
        uint64_t seq = UINT64_MAX;
        int which = -1;
        if (!started)
            at = start_at, seq = start_seq, which = 0;
        if (ti < s->ntr && (s->tr[ti].at_ms < at || (s->tr[ti].at_ms == at && s->tr[ti].seq < seq)))
            at = s->tr[ti].at_ms, seq = s->tr[ti].seq, which = 1;
        if (li < s->nlists &&
            (s->lists[li].at_ms < at || (s->lists[li].at_ms == at && s->lists[li].seq < seq)))
            at = s->lists[li].at_ms, seq = s->lists[li].seq, which = 2;
        if (which < 0)
            break;
        if (which == 0)
            started = true;
        else if (which == 1)
            ti++;
        else
            li++;
        bool now = (started || list_at(s, at) != NULL) && cert_at(s, rep, at);
        if (now && !prev)
            on = acr_local_day(at, offset_min);
        prev = now;
    }
    return prev ? on : -1;
}

static int read_start(prog_snap_t *s, char space, acr_str_t pid, const acr_str_t *rep,
                      int64_t *at, uint64_t *seq, acr_err_t *err)
{
    acr__pkey_t k = acr__prog_key(space, pid);
    if (rep != NULL) {
        acr__pkey_add(&k, "", 1);
        acr__pkey_add(&k, rep->ptr, rep->len);
    }
    MDB_val v;
    int rc = mdb_get(s->txn, s->l->dbi[ACR_DB_PROGRAM], &(MDB_val){k.len, k.b}, &v);
    if (rc == MDB_NOTFOUND || (rc == 0 && v.mv_size != 16)) {
        *at = INT64_MAX; /* a step after every other: never the one that certifies */
        *seq = UINT64_MAX;
        return 0;
    }
    if (rc != 0)
        return acr__mdb_err(rc, err, "program");
    *at = (int64_t)acr__be_u64(v.mv_data);
    *seq = acr__be_u64((const uint8_t *)v.mv_data + 8);
    return 0;
}

/* "modules", "completed", "missing", "certified", "certified_on" of one subject. */
static int subject_json(prog_snap_t *s, jw_t *w, acr_str_t pid, const acr_str_t *rep,
                        acr_err_t *err)
{
    const onb_list_t *cur = s->nlists ? &s->lists[s->nlists - 1] : NULL;
    size_t n = cur ? json_array_size(cur->mods) : 0;
    for (int pass = 0; pass < 3; pass++) {
        key(w, pass == 0 ? "modules" : pass == 1 ? "completed" : "missing", false);
        raw(w, "[");
        bool first = true;
        for (size_t i = 0; i < n; i++) {
            acr_str_t m = jsv(json_array_get(cur->mods, i));
            bool done = completed(s, m, rep, INT64_MAX);
            if ((pass == 1 && !done) || (pass == 2 && done))
                continue;
            raw(w, first ? "" : ",");
            first = false;
            jstr(w, m);
        }
        raw(w, "]");
    }
    int64_t at;
    uint64_t seq;
    int rc = read_start(s, rep ? 'R' : 'G', pid, rep, &at, &seq, err);
    key(w, "certified", false);
    raw(w, cert_at(s, rep, INT64_MAX) ? "true" : "false");
    key(w, "certified_on", false);
    int64_t on = certified_on(s, rep, at, seq, acr_ledger_config(s->l)->utc_offset_min);
    if (on < 0)
        raw(w, "null");
    else
        jdate(w, on);
    return rc;
}

static int rep_obj(prog_snap_t *s, jw_t *w, acr_str_t pid, acr_err_t *err)
{
    MDB_cursor *cur;
    int rc = mdb_cursor_open(s->txn, s->l->dbi[ACR_DB_REPS], &cur);
    if (rc != 0)
        return acr__mdb_err(rc, err, "reps");
    acr__pkey_t k = {.len = 0};
    acr__pkey_part(&k, pid);
    MDB_val kv = {k.len, k.b}, v;
    raw(w, "[");
    bool first = true;
    int frc = 0;
    for (rc = mdb_cursor_get(cur, &kv, &v, MDB_SET_RANGE); rc == 0 && frc == 0;
         rc = mdb_cursor_get(cur, &kv, &v, MDB_NEXT)) {
        if (kv.mv_size < k.len || memcmp(kv.mv_data, k.b, k.len) != 0)
            break;
        acr_str_t rep = {(const char *)kv.mv_data + k.len, (uint32_t)(kv.mv_size - k.len)};
        raw(w, first ? "{" : ",{");
        first = false;
        key(w, "rep_id", true);
        jstr(w, rep);
        frc = subject_json(s, w, pid, &rep, err);
        raw(w, "}");
    }
    raw(w, "]");
    mdb_cursor_close(cur);
    if (frc != 0)
        return frc;
    return rc == 0 || rc == MDB_NOTFOUND ? 0 : acr__mdb_err(rc, err, "reps");
}

static int partner_onboarding(prog_snap_t *s, jw_t *w, acr_str_t pid, acr_err_t *err)
{
    int rc = load_trainings(s, pid, err);
    if (rc != 0)
        return rc;
    raw(w, "{");
    key(w, "partner_id", true);
    jstr(w, pid);
    rc = subject_json(s, w, pid, NULL, err);
    key(w, "reps", false);
    if (rc == 0)
        rc = rep_obj(s, w, pid, err);
    raw(w, "}");
    return rc;
}

static int each_partner(prog_snap_t *s, const char *partner_id,
                        int (*fn)(prog_snap_t *s, acr_str_t pid, MDB_val row, void *ctx,
                                  acr_err_t *err),
                        void *ctx, acr_err_t *err)
{
    MDB_val k, v;
    if (partner_id != NULL) {
        k = (MDB_val){strlen(partner_id), (void *)partner_id};
        int rc = mdb_get(s->txn, s->l->dbi[ACR_DB_PROJ_PARTNERS], &k, &v);
        if (rc == MDB_NOTFOUND)
            return acr_err_set(err, ACR_ENOT_FOUND, "no partner %s", partner_id);
        if (rc != 0)
            return acr__mdb_err(rc, err, "proj_partners");
        return fn(s, vstr(k), v, ctx, err);
    }
    MDB_cursor *cur;
    int rc = mdb_cursor_open(s->txn, s->l->dbi[ACR_DB_PROJ_PARTNERS], &cur);
    if (rc != 0)
        return acr__mdb_err(rc, err, "proj_partners");
    int frc = 0;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0 && frc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT))
        frc = fn(s, vstr(k), v, ctx, err);
    mdb_cursor_close(cur);
    if (frc != 0)
        return frc;
    return rc == MDB_NOTFOUND ? 0 : acr__mdb_err(rc, err, "proj_partners");
}

typedef struct arr_ctx {
    jw_t *w;
    bool first;
    int64_t today;  /* announcements */
    void *extra;
} arr_ctx_t;

static int onboarding_cb(prog_snap_t *s, acr_str_t pid, MDB_val row, void *ctx, acr_err_t *err)
{
    (void)row;
    arr_ctx_t *a = ctx;
    raw(a->w, a->first ? "" : ",");
    a->first = false;
    return partner_onboarding(s, a->w, pid, err);
}

static int finish(prog_snap_t *s, jw_t *w, size_t mark, int rc, acr_err_t *err)
{
    if (rc == 0 && w->rc != 0)
        rc = acr_err_set(err, w->rc, "out of memory");
    if (rc == 0 && acr_jsonmem_failed())
        rc = acr_err_set(err, ACR_ENOMEM, "out of memory");
    if (rc != 0)
        w->b->len = mark;
    snap_close(s);
    return rc;
}

/* The onboarding rows of one partner (partner_id) or of all, as a JSON array or, for
 * acr_query_onboarding_one, the bare object. */
static int onboarding(acr_ledger_t *ledger, const char *partner_id, bool array, acr_buf_t *out,
                      acr_err_t *err)
{
    prog_snap_t s;
    jw_t w = {out, 0};
    size_t mark = out->len;
    int rc = snap_open(ledger, &s, err);
    if (rc == 0)
        rc = load_lists(&s, err);
    arr_ctx_t a = {&w, true, 0, NULL};
    if (array)
        raw(&w, "[");
    if (rc == 0)
        rc = each_partner(&s, partner_id, onboarding_cb, &a, err);
    if (array)
        raw(&w, "]");
    return finish(&s, &w, mark, rc, err);
}

int acr_query_onboarding(acr_ledger_t *ledger, const char *partner_id, acr_buf_t *out,
                         acr_err_t *err)
{
    return onboarding(ledger, partner_id, true, out, err);
}

int acr_query_onboarding_one(acr_ledger_t *ledger, const char *partner_id, acr_buf_t *out,
                             acr_err_t *err)
{
    return onboarding(ledger, partner_id, false, out, err);
}

int acr_query_certified_at(acr_ledger_t *ledger, const char *partner_id, int64_t t_ms,
                           bool *out, acr_err_t *err)
{
    prog_snap_t s;
    int rc = snap_open(ledger, &s, err);
    if (rc == 0)
        rc = load_lists(&s, err);
    if (rc == 0)
        rc = load_trainings(&s, (acr_str_t){partner_id, (uint32_t)strlen(partner_id)}, err);
    if (rc == 0)
        *out = cert_at(&s, NULL, t_ms);
    snap_close(&s);
    return rc;
}

/* ---- announcements -------------------------------------------------------- */

typedef struct ann {
    acr_str_t id;
    acr__prog_ann_t a;
    int64_t audience, acked, pending, overdue;
} ann_t;

typedef struct ann_set {
    ann_t *v;
    size_t n, cap;
} ann_set_t;

static int ann_row(prog_snap_t *s, MDB_val k, MDB_val v, void *ctx, acr_err_t *err)
{
    (void)s;
    ann_set_t *set = ctx;
    if (set->n == set->cap) {
        size_t n = set->cap ? set->cap * 2 : 8;
        ann_t *p = realloc(set->v, n * sizeof *p);
        if (p == NULL)
            return acr_err_set(err, ACR_ENOMEM, "out of memory");
        set->v = p;
        set->cap = n;
    }
    ann_t *a = &set->v[set->n];
    memset(a, 0, sizeof *a);
    a->id = (acr_str_t){(const char *)k.mv_data + 1, (uint32_t)(k.mv_size - 1)};
    if (acr__prog_ann_decode(v.mv_data, v.mv_size, &a->a) != 0)
        return acr_err_set(err, ACR_ECORRUPT, "an announcement row is damaged");
    set->n++;
    return 0;
}

static int ann_cmp(const void *pa, const void *pb)
{
    const ann_t *a = pa, *b = pb;
    if (a->a.at_ms != b->a.at_ms)
        return a->a.at_ms < b->a.at_ms ? -1 : 1;
    return a->a.seq < b->a.seq ? -1 : a->a.seq > b->a.seq;
}

/* 1 when partner pid acknowledged announcement a (any rep or none), 0 not. */
static int acked(prog_snap_t *s, const ann_t *a, acr_str_t pid, acr_err_t *err)
{
    acr__pkey_t k = acr__prog_key('K', a->id);
    acr__pkey_add(&k, "", 1);
    acr__pkey_part(&k, pid);
    MDB_cursor *cur;
    int rc = mdb_cursor_open(s->txn, s->l->dbi[ACR_DB_PROGRAM], &cur);
    if (rc != 0)
        return acr__mdb_err(rc, err, "program");
    MDB_val kv = {k.len, k.b}, v;
    rc = mdb_cursor_get(cur, &kv, &v, MDB_SET_RANGE);
    int found = rc == 0 && kv.mv_size >= k.len && memcmp(kv.mv_data, k.b, k.len) == 0;
    mdb_cursor_close(cur);
    if (rc != 0 && rc != MDB_NOTFOUND)
        return acr__mdb_err(rc, err, "program");
    return found;
}

/* The state of a for partner pid in its audience: "read", "pending", "overdue", "info". */
static int ann_state(prog_snap_t *s, const ann_t *a, acr_str_t pid, int64_t today,
                     const char **state, acr_err_t *err)
{
    if (!a->a.requires_ack) {
        *state = "info";
        return 0;
    }
    int rc = acked(s, a, pid, err);
    if (rc < 0)
        return rc;
    *state = rc ? "read"
                : (a->a.due_day != ACR__PROG_NO_DUE && today > a->a.due_day) ? "overdue"
                                                                              : "pending";
    return 0;
}

typedef struct ann_count_ctx {
    ann_set_t *set;
    int64_t today;
} ann_count_ctx_t;

static int ann_count_cb(prog_snap_t *s, acr_str_t pid, MDB_val row, void *ctx, acr_err_t *err)
{
    ann_count_ctx_t *c = ctx;
    acr__prow_t p;
    if (acr__prow_decode(row.mv_data, row.mv_size, &p) != 0)
        return acr_err_set(err, ACR_ECORRUPT, "a proj_partners row is damaged");
    for (size_t i = 0; i < c->set->n; i++) {
        ann_t *a = &c->set->v[i];
        int in = acr__prog_in_audience(a->a.audience, &p);
        if (in < 0)
            return acr_err_set(err, ACR_ECORRUPT, "an announcement's audience is damaged");
        if (!in)
            continue;
        a->audience++;
        const char *st;
        int rc = ann_state(s, a, pid, c->today, &st, err);
        if (rc != 0)
            return rc;
        if (st[0] == 'r')
            a->acked++;
        else if (st[0] == 'p')
            a->pending++;
        else if (st[0] == 'o')
            a->pending++, a->overdue++;
    }
    return 0;
}

static void ann_head(jw_t *w, const ann_t *a)
{
    key(w, "announcement_id", true);
    jstr(w, a->id);
    key(w, "title", false);
    jstr(w, a->a.title);
    key(w, "at", false);
    jts(w, a->a.at_ms);
}

/* The body (program.md: the text a partner reads and acknowledges): it stays in the log,
 * at the seq of the announcement's row, read there with its chain link checked. */
static int ann_body(prog_snap_t *s, jw_t *w, const ann_t *a, acr_err_t *err)
{
    acr_event_t ev;
    int rc = acr_reader_seek(s->r, (uint64_t)a->a.seq, err);
    if (rc == 0 && (rc = acr_reader_next(s->r, &ev, NULL, err)) == 1)
        rc = ev.type == ACR_EV_ANNOUNCEMENT_PUBLISHED ? 0 : ACR_ECORRUPT;
    else if (rc == 0)
        rc = ACR_ECORRUPT;
    if (rc == ACR_ECORRUPT)
        return acr_err_set(err, rc, "announcement %.*s: its event (seq %lld) is not in the log",
                           (int)a->id.len, a->id.ptr, (long long)a->a.seq);
    if (rc == 0) {
        key(w, "body", false);
        jstr(w, ev.str[ACR_F_BODY]);
    }
    return rc;
}

static void ann_due(jw_t *w, const ann_t *a)
{
    key(w, "due", false);
    if (a->a.due_day == ACR__PROG_NO_DUE)
        raw(w, "null");
    else
        jdate(w, a->a.due_day);
}

int acr_query_announcements(acr_ledger_t *ledger, const char *partner_id, int32_t today_day,
                            bool with_body, acr_buf_t *out, acr_err_t *err)
{
    prog_snap_t s;
    jw_t w = {out, 0};
    size_t mark = out->len;
    ann_set_t set = {0};
    int rc = snap_open(ledger, &s, err);
    if (rc == 0)
        rc = scan(&s, "A", 1, ann_row, &set, err);
    if (rc == 0 && set.n > 1)
        qsort(set.v, set.n, sizeof *set.v, ann_cmp);
    raw(&w, "[");
    if (rc == 0 && partner_id == NULL) {
        ann_count_ctx_t c = {&set, today_day};
        rc = each_partner(&s, NULL, ann_count_cb, &c, err);
        for (size_t i = 0; rc == 0 && i < set.n; i++) {
            const ann_t *a = &set.v[i];
            raw(&w, i ? ",{" : "{");
            ann_head(&w, a);
            if (with_body && (rc = ann_body(&s, &w, a, err)) != 0)
                break;
            key(&w, "requires_ack", false);
            raw(&w, a->a.requires_ack ? "true" : "false");
            ann_due(&w, a);
            const char *k[] = {"audience", "acknowledged", "pending", "overdue"};
            const int64_t n[] = {a->audience, a->acked, a->pending, a->overdue};
            for (int j = 0; j < 4; j++) {
                key(&w, k[j], false);
                ji64(&w, n[j]);
            }
            raw(&w, "}");
        }
    } else if (rc == 0) {
        MDB_val k = {strlen(partner_id), (void *)partner_id}, v;
        int mrc = mdb_get(s.txn, s.l->dbi[ACR_DB_PROJ_PARTNERS], &k, &v);
        acr__prow_t p;
        if (mrc == MDB_NOTFOUND)
            rc = acr_err_set(err, ACR_ENOT_FOUND, "no partner %s", partner_id);
        else if (mrc != 0)
            rc = acr__mdb_err(mrc, err, "proj_partners");
        else if (acr__prow_decode(v.mv_data, v.mv_size, &p) != 0)
            rc = acr_err_set(err, ACR_ECORRUPT, "a proj_partners row is damaged");
        bool first = true;
        for (size_t i = 0; rc == 0 && i < set.n; i++) {
            const ann_t *a = &set.v[i];
            int in = acr__prog_in_audience(a->a.audience, &p);
            if (in <= 0)
                continue;
            const char *st;
            if ((rc = ann_state(&s, a, vstr(k), today_day, &st, err)) != 0)
                break;
            raw(&w, first ? "{" : ",{");
            first = false;
            ann_head(&w, a);
            if (with_body && (rc = ann_body(&s, &w, a, err)) != 0)
                break;
            ann_due(&w, a);
            key(&w, "state", false);
            raw(&w, "\"");
            raw(&w, st);
            raw(&w, "\"}");
        }
    }
    raw(&w, "]");
    free(set.v);
    return finish(&s, &w, mark, rc, err);
}

int acr_query_announcement_visible(acr_ledger_t *ledger, const char *announcement_id,
                                   const char *partner_id, bool *exists, bool *visible,
                                   acr_err_t *err)
{
    prog_snap_t s;
    int rc = snap_open(ledger, &s, err);
    *exists = *visible = false;
    if (rc != 0)
        return rc;
    acr__pkey_t k = acr__prog_key('A', (acr_str_t){announcement_id,
                                                   (uint32_t)strlen(announcement_id)});
    MDB_val v, pv;
    int mrc = mdb_get(s.txn, s.l->dbi[ACR_DB_PROGRAM], &(MDB_val){k.len, k.b}, &v);
    acr__prog_ann_t a;
    if (mrc == 0 && acr__prog_ann_decode(v.mv_data, v.mv_size, &a) == 0) {
        *exists = true;
        *visible = partner_id == NULL;
        mrc = partner_id ? mdb_get(s.txn, s.l->dbi[ACR_DB_PROJ_PARTNERS],
                                   &(MDB_val){strlen(partner_id), (void *)partner_id}, &pv)
                         : MDB_NOTFOUND;
        acr__prow_t p;
        if (mrc == 0 && acr__prow_decode(pv.mv_data, pv.mv_size, &p) == 0)
            *visible = acr__prog_in_audience(a.audience, &p) == 1;
    }
    snap_close(&s);
    return 0;
}

/* ---- promotions ----------------------------------------------------------- */

/* What a sale of a promotion earns and which sales qualify, from its stored document
 * (validated when it was published): per_sale_minor (0 when absent) and match ({} when
 * absent), as the API and the dashboard show them beside rate_bp. */
static void promo_terms(jw_t *w, acr_str_t doc)
{
    acr_jsonmem_begin();
    json_t *d = json_loadb(doc.ptr, doc.len, 0, NULL);
    if (acr_jsonmem_failed() && w->rc == 0) /* a damaged tree is never read */
        w->rc = ACR_ENOMEM;
    json_t *per = json_object_get(d, "per_sale_minor"), *match = json_object_get(d, "match");
    key(w, "per_sale_minor", false);
    ji64(w, json_is_integer(per) ? (int64_t)json_integer_value(per) : 0);
    key(w, "match", false);
    char *m = w->rc == 0 && json_is_object(match)
                  ? json_dumps(match, JSON_COMPACT | JSON_PRESERVE_ORDER)
                  : NULL;
    raw(w, m != NULL ? m : "{}");
    free(m);
    json_decref(d);
}

int acr_query_promotions(acr_ledger_t *ledger, acr_buf_t *out, acr_err_t *err)
{
    prog_snap_t s;
    jw_t w = {out, 0};
    size_t mark = out->len;
    int rc = snap_open(ledger, &s, err);
    if (rc != 0)
        return rc;
    const acr_config_t *cfg = acr_ledger_config(ledger);
    /* U: the period of the last valid local date, so every sale is in the run */
    int32_t last = acr_period_of_day(cfg->period_kind, acr_days_from_civil(9999, 12, 31));
    acr_statement_t st;
    memset(&st, 0, sizeof st);
    /* the payout driver's pipeline (a reader thread), the promotions' pass alone: no
     * partner's lines are computed, only each promotion's lines, total and use */
    uint64_t head = acr_reader_head_seq(s.r);
    bool have = false;
    if (head > 0) {
        acr_comm_output_t o = {.omit_lines = true, .omit_csv = true, .promotions_only = true};
        rc = acr__payout_lines_ignoring_closes(ledger, s.r, last, head, &o, &st, err);
        have = rc == 0;
    }
    raw(&w, "[");
    for (size_t i = 0; rc == 0 && i < st.promotion_count; i++) {
        const acr_promo_total_t *p = &st.promotions[i];
        acr__pkey_t k = acr__prog_key('P', (acr_str_t){p->promo_id, (uint32_t)strlen(p->promo_id)});
        MDB_val v;
        acr__prog_promo_t row;
        if (mdb_get(s.txn, s.l->dbi[ACR_DB_PROGRAM], &(MDB_val){k.len, k.b}, &v) != 0 ||
            acr__prog_promo_decode(v.mv_data, v.mv_size, &row) != 0) {
            rc = acr_err_set(err, ACR_ECORRUPT, "promotion %s has no row", p->promo_id);
            break;
        }
        raw(&w, i ? ",{" : "{");
        key(&w, "promo_id", true);
        jstr(&w, (acr_str_t){p->promo_id, (uint32_t)strlen(p->promo_id)});
        key(&w, "plan_id", false);
        jstr(&w, row.plan_id);
        key(&w, "currency", false); /* the plan's: the promotion's amounts are in it */
        MDB_val pv;
        acr__kv_reader_t kr;
        acr_str_t cur = {NULL, 0};
        if (mdb_get(acr__reader_txn(s.r, ACR_DB_PLANS), s.l->dbi[ACR_DB_PLANS],
                    &(MDB_val){row.plan_id.len, (void *)row.plan_id.ptr}, &pv) == 0) {
            acr__kv_reader_init(&kr, pv.mv_data, pv.mv_size); /* version, currency */
            (void)acr__kv_get_i64(&kr);
            cur = acr__kv_get_str(&kr);
        }
        if (cur.len != 3 || kr.bad) {
            rc = acr_err_set(err, ACR_ECORRUPT, "plan %.*s has no readable row",
                             (int)row.plan_id.len, row.plan_id.ptr);
            break;
        }
        jstr(&w, cur);
        key(&w, "title", false);
        jstr(&w, (acr_str_t){p->title, (uint32_t)strlen(p->title)});
        key(&w, "from", false);
        jdate(&w, row.from_day);
        key(&w, "to", false);
        jdate(&w, row.to_day);
        key(&w, "last_day", false);
        jdate(&w, row.ends_day < row.to_day ? row.ends_day : row.to_day);
        key(&w, "rate_bp", false);
        ji64(&w, row.rate_bp);
        promo_terms(&w, row.doc);
        key(&w, "lines", false);
        ji64(&w, p->lines);
        key(&w, "total_minor", false);
        ji64(&w, p->total_minor);
        key(&w, "budget_minor", false);
        if (p->has_budget)
            ji64(&w, p->budget_minor);
        else
            raw(&w, "null");
        key(&w, "used_minor", false);
        ji64(&w, p->used_minor);
        key(&w, "left_minor", false);
        if (p->has_budget)
            ji64(&w, p->budget_minor - p->used_minor);
        else
            raw(&w, "null");
        raw(&w, "}");
    }
    raw(&w, "]");
    if (have)
        acr_statement_destroy(&st);
    return finish(&s, &w, mark, rc, err);
}

/* ---- inside another query's snapshot (query.c: partner show, kpi) --------- */

int acr__prog_onboarding_txn(acr_ledger_t *l, MDB_txn *txn, acr_str_t pid, acr_buf_t *out,
                             acr_err_t *err)
{
    prog_snap_t s;
    memset(&s, 0, sizeof s);
    s.l = l;
    s.txn = txn;
    jw_t w = {out, 0};
    int rc = load_lists(&s, err);
    if (rc == 0)
        rc = partner_onboarding(&s, &w, pid, err);
    if (rc == 0 && w.rc != 0)
        rc = acr_err_set(err, w.rc, "out of memory");
    s.r = NULL;
    snap_close(&s);
    return rc;
}

int acr__prog_certified_txn(acr_ledger_t *l, MDB_txn *txn, acr_str_t pid, int64_t t_ms,
                            bool *out, acr_err_t *err)
{
    prog_snap_t s;
    memset(&s, 0, sizeof s);
    s.l = l;
    s.txn = txn;
    int rc = load_lists(&s, err);
    if (rc == 0)
        rc = load_trainings(&s, pid, err);
    if (rc == 0)
        *out = cert_at(&s, NULL, t_ms);
    snap_close(&s);
    return rc;
}
