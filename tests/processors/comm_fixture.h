/* comm_fixture.h - a tiny event script for the commission processor tests.
 *
 * Tests write the log as a list of calls (partner, sale, refund, ...) that
 * build acr_event_t values directly, so the processor is tested alone, with
 * plain arrays, as commissions.md describes it: events in seq order, closed
 * statements, a run period and an as-of seq.
 */
#ifndef ACCRUE_TEST_COMM_FIXTURE_H
#define ACCRUE_TEST_COMM_FIXTURE_H

#include <stdlib.h>
#include <string.h>

#include "accrue/commission.h"
#include "accrue/date.h"
#include "test_util.h"

#define SCRIPT_MAX 10000 /* room for the overflow test: ~7 MB, so scripts live on the heap */

typedef struct script {
    acr_event_t ev[SCRIPT_MAX];
    const char *closed_csv[SCRIPT_MAX]; /* for period.closed events */
    size_t n;
    char *owned[64];                    /* strings made by J() */
    size_t owned_count;
    acr_period_kind_t kind;
    int32_t offset_min;
} script_t;

static inline acr_str_t S(const char *s)
{
    return (acr_str_t){s, s ? (uint32_t)strlen(s) : 0};
}

static inline script_t *script_new(acr_period_kind_t kind, const char *offset)
{
    script_t *sc = calloc(1, sizeof *sc);
    cr_assert_not_null(sc);
    sc->kind = kind;
    cr_assert(acr_offset_parse(offset, strlen(offset), &sc->offset_min));
    return sc;
}

static inline void script_free(script_t *sc)
{
    for (size_t i = 0; i < sc->owned_count; i++)
        free(sc->owned[i]);
    free(sc);
}

/* JSON written with single quotes, for readability: a copy with ' -> ", owned by sc. */
static inline const char *J(script_t *sc, const char *s)
{
    cr_assert(sc->owned_count < 64);
    char *d = strdup(s);
    cr_assert_not_null(d);
    for (char *p = d; *p; p++)
        if (*p == '\'')
            *p = '"';
    sc->owned[sc->owned_count++] = d;
    return d;
}

static inline acr_event_t *ev_new(script_t *sc, int type, const char *at, const char *id)
{
    cr_assert(sc->n < SCRIPT_MAX);
    acr_event_t *e = &sc->ev[sc->n++];
    memset(e, 0, sizeof *e);
    e->seq = sc->n;
    e->type = (uint8_t)type;
    e->id = S(id);
    cr_assert(acr_ts_parse(at, strlen(at), &e->at_ms), "bad at %s", at);
    return e;
}

static inline void ev_set(acr_event_t *e, int field, const char *s)
{
    if (s == NULL)
        return;
    e->present |= 1ull << field;
    e->str[field] = S(s);
}

static inline void ev_num(acr_event_t *e, int field, int64_t v)
{
    e->present |= 1ull << field;
    e->num[field] = v;
}

static inline void partner_reg(script_t *sc, const char *at, const char *pid, const char *kind,
                               const char *tier, const char *plan, const char *cur,
                               const char *region)
{
    acr_event_t *e = ev_new(sc, ACR_EV_PARTNER_REGISTERED, at, pid);
    ev_set(e, ACR_F_PARTNER_ID, pid);
    ev_set(e, ACR_F_NAME, "name");
    ev_set(e, ACR_F_KIND, kind);
    ev_set(e, ACR_F_TIER, tier);
    ev_set(e, ACR_F_PLAN_ID, plan);
    ev_set(e, ACR_F_CURRENCY, cur);
    ev_set(e, ACR_F_REGION, region);
}

static inline void partner_upd(script_t *sc, const char *at, const char *id, const char *pid,
                               const char *tier, const char *plan, const char *region)
{
    acr_event_t *e = ev_new(sc, ACR_EV_PARTNER_UPDATED, at, id);
    ev_set(e, ACR_F_PARTNER_ID, pid);
    ev_set(e, ACR_F_TIER, tier);
    ev_set(e, ACR_F_PLAN_ID, plan);
    ev_set(e, ACR_F_REGION, region);
}

static inline void plan_pub(script_t *sc, const char *at, const char *id, const char *json)
{
    acr_event_t *e = ev_new(sc, ACR_EV_PLAN_PUBLISHED, at, id);
    ev_set(e, ACR_F_PLAN, json);
}

static inline void sale(script_t *sc, const char *at, const char *sid, const char *pid,
                        const char *cust, const char *product, int64_t amount_minor)
{
    acr_event_t *e = ev_new(sc, ACR_EV_SALE_RECORDED, at, sid);
    ev_set(e, ACR_F_SALE_ID, sid);
    ev_set(e, ACR_F_PARTNER_ID, pid);
    ev_set(e, ACR_F_CUSTOMER_ID, cust);
    ev_set(e, ACR_F_PRODUCT, product);
    ev_num(e, ACR_F_AMOUNT_MINOR, amount_minor);
}

static inline void refund(script_t *sc, const char *at, const char *id, const char *sid,
                          int64_t amount_minor)
{
    acr_event_t *e = ev_new(sc, ACR_EV_SALE_REFUNDED, at, id);
    ev_set(e, ACR_F_SALE_ID, sid);
    ev_num(e, ACR_F_AMOUNT_MINOR, amount_minor);
}

static inline void adjust(script_t *sc, const char *at, const char *id, const char *pid,
                          int64_t amount_minor)
{
    acr_event_t *e = ev_new(sc, ACR_EV_ADJUSTMENT_RECORDED, at, id);
    ev_set(e, ACR_F_PARTNER_ID, pid);
    ev_num(e, ACR_F_AMOUNT_MINOR, amount_minor);
    ev_set(e, ACR_F_REASON, "manual");
}

/* A period.closed carrying the (hand-computed) statement stored at that close. */
static inline void closed(script_t *sc, const char *at, const char *period, const char *csv)
{
    acr_event_t *e = ev_new(sc, ACR_EV_PERIOD_CLOSED, at, "period.closed");
    ev_set(e, ACR_F_PERIOD, period);
    sc->closed_csv[sc->n - 1] = csv;
}

/* Runs period `period` as of `through_seq` (0 = all); returns the finish rc. */
/* Collects a streamed statement CSV (acr_comm_output_t.csv_write). */
typedef struct sink {
    char *p;
    size_t n, cap;
    size_t calls;
} sink_t;

static inline int sink_write(void *arg, const void *p, size_t n)
{
    sink_t *s = arg;
    if (s->n + n > s->cap) {
        s->cap = (s->n + n) * 2;
        s->p = realloc(s->p, s->cap);
        cr_assert_not_null(s->p);
    }
    memcpy(s->p + s->n, p, n);
    s->n += n;
    s->calls++;
    return 0;
}

/* Two statements are the same in everything a caller reads (the CSV bytes and the lines
 * where both kept them: a streamed run keeps neither). */
static inline void expect_same_statement(const acr_statement_t *a, const acr_statement_t *b,
                                         const char *what)
{
    ASSERT_EQ_MSG(a->csv_len, b->csv_len, "%s: csv length", what);
    if (a->csv != NULL && b->csv != NULL)
        ASSERT_BYTES_EQ(b->csv, b->csv_len, a->csv, a->csv_len);
    ASSERT_STR_EQ(b->fingerprint, a->fingerprint);
    ASSERT_EQ_MSG(a->line_count, b->line_count, "%s: lines", what);
    for (size_t i = 0; a->lines != NULL && b->lines != NULL && i < a->line_count; i++) {
        const acr_line_t *x = &a->lines[i], *y = &b->lines[i];
        cr_assert(strcmp(x->partner_id, y->partner_id) == 0 &&
                      x->origin_period == y->origin_period && x->kind == y->kind &&
                      strcmp(x->source_id, y->source_id) == 0 &&
                      x->source_seq == y->source_seq && x->at_ms == y->at_ms &&
                      strcmp(x->rule, y->rule) == 0 && x->basis_minor == y->basis_minor &&
                      x->amount_minor == y->amount_minor &&
                      memcmp(x->currency, y->currency, 4) == 0 && x->line_no == y->line_no,
                  "%s: line %zu differs", what, i);
    }
    ASSERT_EQ_MSG(a->partner_count, b->partner_count, "%s: partners", what);
    for (size_t i = 0; i < a->partner_count; i++) {
        const acr_partner_total_t *x = &a->partners[i], *y = &b->partners[i];
        cr_assert(strcmp(x->partner_id, y->partner_id) == 0 &&
                      memcmp(x->currency, y->currency, 4) == 0 &&
                      memcmp(x->by_kind_minor, y->by_kind_minor, sizeof x->by_kind_minor) == 0 &&
                      x->prior_period_minor == y->prior_period_minor &&
                      x->total_minor == y->total_minor && x->window_minor == y->window_minor &&
                      x->line_count == y->line_count,
                  "%s: partner %zu differs", what, i);
    }
    ASSERT_EQ_MSG(a->unplanned_count, b->unplanned_count, "%s: unplanned", what);
    for (size_t i = 0; i < a->unplanned_count; i++)
        cr_assert(strcmp(a->unplanned[i].sale_id, b->unplanned[i].sale_id) == 0 &&
                      strcmp(a->unplanned[i].partner_id, b->unplanned[i].partner_id) == 0 &&
                      a->unplanned[i].origin_period == b->unplanned[i].origin_period,
                  "%s: unplanned %zu differs", what, i);
    ASSERT_EQ_MSG(a->plans_used_count, b->plans_used_count, "%s: plans used", what);
    for (size_t i = 0; i < a->plans_used_count; i++)
        ASSERT_STR_EQ(b->plans_used[i], a->plans_used[i]);
    ASSERT_EQ_MSG(a->currency_count, b->currency_count, "%s: currencies", what);
    for (size_t i = 0; i < a->currency_count; i++)
        cr_assert(memcmp(&a->currency_totals[i], &b->currency_totals[i],
                         sizeof a->currency_totals[i]) == 0,
                  "%s: currency total %zu differs", what, i);
    ASSERT_EQ_MSG(a->promotion_count, b->promotion_count, "%s: promotions", what);
    for (size_t i = 0; i < a->promotion_count; i++) {
        const acr_promo_total_t *x = &a->promotions[i], *y = &b->promotions[i];
        cr_assert(strcmp(x->promo_id, y->promo_id) == 0 && strcmp(x->title, y->title) == 0 &&
                      strcmp(x->plan_id, y->plan_id) == 0 && x->lines == y->lines &&
                      x->total_minor == y->total_minor && x->has_budget == y->has_budget &&
                      x->budget_minor == y->budget_minor && x->used_minor == y->used_minor,
                  "%s: promotion %zu differs", what, i);
    }
}

/* Feeds the script as of through_seq: one event at a time (batch = false) or in batches
 * of 7 cut at each period.closed (batch = true), with output controls o (NULL: default). */
static inline int script_run_once(const script_t *sc, const char *period, uint64_t through_seq,
                                  bool batch, const acr_comm_output_t *o, acr_statement_t *st,
                                  acr_err_t *err)
{
    acr_comm_config_t cfg = {sc->kind, sc->offset_min, 0, through_seq ? through_seq : sc->n};
    cr_assert(acr_period_parse(sc->kind, period, strlen(period), &cfg.run_period));
    acr_comm_t *c = acr_comm_new(&cfg);
    cr_assert_not_null(c);
    if (o != NULL)
        acr_comm_set_output(c, o);
    if (batch) /* and with tables sized by a (far too large) hint: the same statement */
        acr_comm_reserve(c, 5000, 5000);
    acr_err_clear(err);
    int rc = 0;
    size_t n = 0;
    while (n < sc->n && sc->ev[n].seq <= cfg.through_seq)
        n++;
    for (size_t i = 0; rc == 0 && i < n;) {
        size_t m = 1;
        if (batch)
            while (m < 7 && i + m < n && sc->closed_csv[i + m - 1] == NULL)
                m++;
        rc = batch ? acr_comm_feed_batch(c, &sc->ev[i], m, err) : acr_comm_feed(c, &sc->ev[i], err);
        i += m;
        if (rc == 0 && sc->closed_csv[i - 1] != NULL)
            rc = acr_comm_add_closed(c, sc->closed_csv[i - 1], strlen(sc->closed_csv[i - 1]), err);
    }
    if (rc == 0)
        rc = acr_comm_finish(c, st, err);
    acr_comm_free(c);
    return rc;
}

/* Runs the script (through_seq 0: every event) and, when the caller set no output controls,
 * runs it again with the finish on three threads and a group per partner (lines.c, the
 * parallel finish), which must give the same statement, or the same error: so every test
 * that runs the processor checks the parallel finish against the sequential one. */
static inline int script_run_ex(const script_t *sc, const char *period, uint64_t through_seq,
                                bool batch, const acr_comm_output_t *o, acr_statement_t *st,
                                acr_err_t *err)
{
    int rc = script_run_once(sc, period, through_seq, batch, o, st, err);
    if (o != NULL && o->csv_write != NULL)
        return rc;
    acr_comm_output_t par = o != NULL ? *o : (acr_comm_output_t){0};
    par.threads = 3;
    par.chunk_sales = 1;
    acr_statement_t st2;
    acr_err_t err2;
    int rc2 = script_run_once(sc, period, through_seq, batch, &par, &st2, &err2);
    ASSERT_EQ_MSG(rc2, rc, "the parallel finish's code: %s (%s)", acr_err_name(rc2), err2.msg);
    if (rc != 0) {
        ASSERT_STR_EQ(err2.msg, err->msg);
        return rc;
    }
    cr_assert_eq(st->lines == NULL, st2.lines == NULL, "the parallel finish's lines kept");
    cr_assert_eq(st->csv == NULL, st2.csv == NULL, "the parallel finish's CSV kept");
    expect_same_statement(st, &st2, "parallel finish");
    acr_statement_destroy(&st2);
    return rc;
}

static inline int script_run(const script_t *sc, const char *period, uint64_t through_seq,
                             acr_statement_t *st, acr_err_t *err)
{
    return script_run_ex(sc, period, through_seq, false, NULL, st, err);
}

/* Runs and asserts the exact statement bytes; then again fed in batches, with the CSV
 * streamed, the lines omitted and the tables reserved, which must give the same bytes,
 * fingerprint and totals. */
static inline void expect_run(const script_t *sc, const char *period, uint64_t through_seq,
                              const char *want)
{
    acr_statement_t st, st2;
    acr_err_t err;
    int rc = script_run(sc, period, through_seq, &st, &err);
    ASSERT_EQ_MSG(rc, 0, "run %s failed: %s (%s)", period, acr_err_name(rc), err.msg);
    ASSERT_BYTES_EQ(st.csv, st.csv_len, want, strlen(want));
    sink_t sk = {NULL, 0, 0, 0};
    acr_comm_output_t o = {.csv_write = sink_write, .csv_arg = &sk, .omit_lines = true};
    rc = script_run_ex(sc, period, through_seq, true, &o, &st2, &err);
    ASSERT_EQ_MSG(rc, 0, "streamed run %s failed: %s (%s)", period, acr_err_name(rc), err.msg);
    cr_assert_null(st2.csv);
    cr_assert_null(st2.lines);
    ASSERT_EQ(st2.csv_len, st.csv_len);
    ASSERT_BYTES_EQ(sk.p, sk.n, want, strlen(want));
    expect_same_statement(&st, &st2, "streamed run");
    free(sk.p);
    acr_statement_destroy(&st2);
    acr_statement_destroy(&st);
}

#define HDR "period,partner_id,line,origin_period,kind,source_id,source_seq,at,rule,basis_minor," \
            "amount_minor,currency\n"

#endif
