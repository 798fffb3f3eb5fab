/* test_promotion.c - the partner program in the commission processor (program.md).
 *
 * Goldens: each expected CSV was computed by hand; the comment above it shows the arithmetic.
 * Properties, over random histories (seeded, reproducible): a promotion's budget is never
 * exceeded, whatever the order in which sales are recorded; and the closed runs plus the
 * last run sum, per line identity (promotion lines included), to the lines of the final
 * history ignoring closes (forward restatement telescopes).
 */
#include <stdio.h>

#include "comm_fixture.h"

/* Strings the script points at must outlive it: a pool per test. */
static char pool[4096][48];
static size_t pool_n;

static const char *P(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static const char *P(const char *fmt, ...)
{
    cr_assert(pool_n < sizeof pool / sizeof *pool);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(pool[pool_n], sizeof pool[0], fmt, ap);
    va_end(ap);
    return pool[pool_n++];
}

static void training(script_t *sc, const char *at, const char *id, const char *pid,
                     const char *module)
{
    acr_event_t *e = ev_new(sc, ACR_EV_TRAINING_COMPLETED, at, id);
    ev_set(e, ACR_F_PARTNER_ID, pid);
    ev_set(e, ACR_F_MODULE, module);
}

static void onboarding(script_t *sc, const char *at, const char *id, const char *modules_json)
{
    acr_event_t *e = ev_new(sc, ACR_EV_ONBOARDING_DEFINED, at, id);
    ev_set(e, ACR_F_MODULES, modules_json);
}

static void promo_pub(script_t *sc, const char *at, const char *id, const char *json)
{
    acr_event_t *e = ev_new(sc, ACR_EV_PROMOTION_PUBLISHED, at, id);
    ev_set(e, ACR_F_PROMOTION, json);
}

static void promo_end(script_t *sc, const char *at, const char *id, const char *promo,
                      int y, int m, int d)
{
    acr_event_t *e = ev_new(sc, ACR_EV_PROMOTION_ENDED, at, id);
    ev_set(e, ACR_F_PROMO_ID, promo);
    ev_num(e, ACR_F_ENDS_ON, acr_days_from_civil(y, m, d));
    e->str[ACR_F_ENDS_ON] = S(P("%04d-%02d-%02d", y, m, d));
}

#define PLAN_C                                                                                     \
    "{'plan_id':'std','version':1,'effective_from':'2026-01-01','currency':'JPY',"                 \
    "'ceiling_bp':3000,'rules':[{'match':{'certified':true},'brackets':[{'from_minor':0,"          \
    "'rate_bp':1500}]},{'match':{},'brackets':[{'from_minor':0,'rate_bp':1000}]}],'cap_bp':2500}"

/* ---- goldens ---- */

/* A promotion with a per-sale amount and a rate: want = rhe(amount x rate / 10000) + per_sale.
 * P1 (not certified: the list [m1] is in force, m1 never done) rule 1 at 1000 bp.
 * S1 12345: sale rhe(1234.5) = 1234 (even); promo 250 bp: 12345 x 250 / 10000 = 308.625 -> 309,
 * + 100 per sale = 409. Budget 500: S1 409, S2 (1000: sale 100, want 25 + 100 = 125) gets 91.
 * Cap 2500 bp: net 13345, limit floor(3336.25) = 3336; sub 1234 + 100 + 409 + 91 = 1834. */
Test(golden, per_sale_amount_and_budget)
{
    pool_n = 0;
    script_t *sc = script_new(ACR_PERIOD_MONTH, "+00:00");
    partner_reg(sc, "2026-06-01T00:00:00Z", "P1", "reseller", "gold", "std", "JPY", NULL);
    plan_pub(sc, "2026-06-01T00:00:00Z", "plan-1", J(sc, PLAN_C));
    onboarding(sc, "2026-06-01T00:00:00Z", "ob-1", "[\"m1\"]");
    promo_pub(sc, "2026-06-02T00:00:00Z", "pr-1",
              J(sc, "{'promo_id':'px','plan_id':'std','from':'2026-07-01','to':'2026-07-31',"
                    "'rate_bp':250,'per_sale_minor':100,'budget_minor':500}"));
    sale(sc, "2026-07-01T00:00:00Z", "S1", "P1", "C1", "cloud", 12345);
    sale(sc, "2026-07-02T00:00:00Z", "S2", "P1", "C2", "cloud", 1000);
    expect_run(sc, "2026-07", 0,
               HDR "2026-07,P1,1,2026-07,sale,S1,5,2026-07-01T00:00:00Z,std@1#1,12345,1234,JPY\n"
                   "2026-07,P1,2,2026-07,sale,S2,6,2026-07-02T00:00:00Z,std@1#1,1000,100,JPY\n"
                   "2026-07,P1,3,2026-07,promotion,S1,5,2026-07-01T00:00:00Z,promotion:px,12345,"
                   "409,JPY\n"
                   "2026-07,P1,4,2026-07,promotion,S2,6,2026-07-02T00:00:00Z,promotion:px,1000,"
                   "91,JPY\n");
    script_free(sc);
}

/* Budgets are consumed in (at, seq) order over all partners, not in recording order: S3 is
 * recorded last but backdated before S1 and S2. Rule 1 (1000 bp, P1 and P2 not certified):
 * every sale 1000 -> 100. Promotion 500 bp, budget 100: want 50 each; S3 (07-05) 50, S1
 * (07-10) 50, S2 (07-12) nothing left (a 0 amount is not a line). In recording order S2 would
 * have had 50 and S3 none. No cap: P1 sub 300 <= floor(2000 x 2500 / 10000) = 500; P2 100 <=
 * 250. */
Test(golden, budget_in_business_time_order_with_a_late_sale)
{
    pool_n = 0;
    script_t *sc = script_new(ACR_PERIOD_MONTH, "+00:00");
    partner_reg(sc, "2026-06-01T00:00:00Z", "P1", "reseller", "gold", "std", "JPY", NULL);
    partner_reg(sc, "2026-06-01T00:00:00Z", "P2", "reseller", "gold", "std", "JPY", NULL);
    plan_pub(sc, "2026-06-01T00:00:00Z", "plan-1", J(sc, PLAN_C));
    onboarding(sc, "2026-06-01T00:00:00Z", "ob-1", "[\"m1\"]");
    promo_pub(sc, "2026-06-02T00:00:00Z", "pr-1",
              J(sc, "{'promo_id':'px','plan_id':'std','from':'2026-07-01','to':'2026-07-31',"
                    "'rate_bp':500,'budget_minor':100}"));
    sale(sc, "2026-07-10T00:00:00Z", "S1", "P1", "C1", "cloud", 1000);
    sale(sc, "2026-07-12T00:00:00Z", "S2", "P2", "C2", "cloud", 1000);
    sale(sc, "2026-07-05T00:00:00Z", "S3", "P1", "C3", "cloud", 1000);
    expect_run(sc, "2026-07", 0,
               HDR "2026-07,P1,1,2026-07,sale,S3,8,2026-07-05T00:00:00Z,std@1#1,1000,100,JPY\n"
                   "2026-07,P1,2,2026-07,sale,S1,6,2026-07-10T00:00:00Z,std@1#1,1000,100,JPY\n"
                   "2026-07,P1,3,2026-07,promotion,S3,8,2026-07-05T00:00:00Z,promotion:px,1000,"
                   "50,JPY\n"
                   "2026-07,P1,4,2026-07,promotion,S1,6,2026-07-10T00:00:00Z,promotion:px,1000,"
                   "50,JPY\n"
                   "2026-07,P2,1,2026-07,sale,S2,7,2026-07-12T00:00:00Z,std@1#1,1000,100,JPY\n");
    script_free(sc);
}

/* Without an onboarding list every partner is certified: rule 0 (1500 bp). With a list
 * defined later (at 07-15) the July 20 sale needs it: P1 completed m1 at 07-10 -> certified,
 * P2 has nothing -> rule 1. S1 P1 07-05 10000 (no list yet): 1500. S2 P2 07-20 10000: 1000.
 * S3 P1 07-20 10000: certified (m1 at 07-10 <= 07-20): 1500. */
Test(golden, certification_as_of_the_sale)
{
    pool_n = 0;
    script_t *sc = script_new(ACR_PERIOD_MONTH, "+00:00");
    partner_reg(sc, "2026-06-01T00:00:00Z", "P1", "reseller", "gold", "std", "JPY", NULL);
    partner_reg(sc, "2026-06-01T00:00:00Z", "P2", "reseller", "gold", "std", "JPY", NULL);
    plan_pub(sc, "2026-06-01T00:00:00Z", "plan-1", J(sc, PLAN_C));
    sale(sc, "2026-07-05T00:00:00Z", "S1", "P1", "C1", "cloud", 10000);
    onboarding(sc, "2026-07-15T00:00:00Z", "ob-1", "[\"m1\"]");
    training(sc, "2026-07-10T00:00:00Z", "t-1", "P1", "m1");
    sale(sc, "2026-07-20T00:00:00Z", "S2", "P2", "C2", "cloud", 10000);
    sale(sc, "2026-07-20T00:00:00Z", "S3", "P1", "C3", "cloud", 10000);
    expect_run(sc, "2026-07", 0,
               HDR "2026-07,P1,1,2026-07,sale,S1,4,2026-07-05T00:00:00Z,std@1#0,10000,1500,JPY\n"
                   "2026-07,P1,2,2026-07,sale,S3,8,2026-07-20T00:00:00Z,std@1#0,10000,1500,JPY\n"
                   "2026-07,P2,1,2026-07,sale,S2,7,2026-07-20T00:00:00Z,std@1#1,10000,1000,JPY\n");
    script_free(sc);
}

/* No promotion, no list, no certified key: the bytes of before (the worked example's lines
 * are checked in test_commission.c; here a training alone changes nothing). */
Test(golden, training_alone_changes_nothing)
{
    pool_n = 0;
    script_t *sc = script_new(ACR_PERIOD_MONTH, "+00:00");
    partner_reg(sc, "2026-06-01T00:00:00Z", "P1", "reseller", "gold", "std", "JPY", NULL);
    plan_pub(sc, "2026-06-01T00:00:00Z", "plan-1",
             J(sc, "{'plan_id':'std','version':1,'effective_from':'2026-01-01','currency':'JPY',"
                   "'ceiling_bp':3000,'rules':[{'match':{},'brackets':[{'from_minor':0,"
                   "'rate_bp':1000}]}]}"));
    training(sc, "2026-06-02T00:00:00Z", "t-1", "P1", "m1");
    sale(sc, "2026-07-05T00:00:00Z", "S1", "P1", "C1", "cloud", 10000);
    expect_run(sc, "2026-07", 0,
               HDR "2026-07,P1,1,2026-07,sale,S1,4,2026-07-05T00:00:00Z,std@1#0,10000,1000,JPY\n");
    script_free(sc);
}

/* The first pass passes over a sale on a day no promotion runs (S1, S3) before looking up
 * its plan; the partner's attributes still catch up at the next sale it looks at. P1 is
 * silver, becomes gold on 07-08; the promotion (gold only, 07-10..07-20, 500 bp) reaches S2
 * (07-15): 10000 x 500 / 10000 = 500. Every sale 10000 x 1000 bp = 1000. */
Test(golden, attributes_catch_up_across_days_without_a_promotion)
{
    pool_n = 0;
    script_t *sc = script_new(ACR_PERIOD_MONTH, "+00:00");
    partner_reg(sc, "2026-06-01T00:00:00Z", "P1", "reseller", "silver", "std", "JPY", NULL);
    plan_pub(sc, "2026-06-01T00:00:00Z", "plan-1",
             J(sc, "{'plan_id':'std','version':1,'effective_from':'2026-01-01','currency':'JPY',"
                   "'ceiling_bp':3000,'rules':[{'match':{},'brackets':[{'from_minor':0,"
                   "'rate_bp':1000}]}]}"));
    promo_pub(sc, "2026-06-02T00:00:00Z", "pr-1",
              J(sc, "{'promo_id':'pg','plan_id':'std','from':'2026-07-10','to':'2026-07-20',"
                    "'match':{'tier':'gold'},'rate_bp':500}"));
    sale(sc, "2026-07-05T00:00:00Z", "S1", "P1", "C1", "cloud", 10000);
    partner_upd(sc, "2026-07-08T00:00:00Z", "u-1", "P1", "gold", NULL, NULL);
    sale(sc, "2026-07-15T00:00:00Z", "S2", "P1", "C2", "cloud", 10000);
    sale(sc, "2026-07-25T00:00:00Z", "S3", "P1", "C3", "cloud", 10000);
    expect_run(sc, "2026-07", 0,
               HDR "2026-07,P1,1,2026-07,sale,S1,4,2026-07-05T00:00:00Z,std@1#0,10000,1000,JPY\n"
                   "2026-07,P1,2,2026-07,sale,S2,6,2026-07-15T00:00:00Z,std@1#0,10000,1000,JPY\n"
                   "2026-07,P1,3,2026-07,sale,S3,7,2026-07-25T00:00:00Z,std@1#0,10000,1000,JPY\n"
                   "2026-07,P1,4,2026-07,promotion,S2,6,2026-07-15T00:00:00Z,promotion:pg,10000,"
                   "500,JPY\n");
    script_free(sc);
}

/* ---- properties over random histories ---- */

static uint64_t rng_state;
static uint32_t rnd(uint32_t n)
{
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)((rng_state >> 33) % n);
}

typedef struct ident {
    char key[160];
    int64_t sum;   /* closed runs + the last run */
    int64_t now;   /* the final history, closes ignored */
} ident_t;

static ident_t ids[4096];
static size_t nids;

static ident_t *ident(const acr_line_t *l, int32_t origin)
{
    char k[160];
    snprintf(k, sizeof k, "%s|%d|%d|%s", l->partner_id, (int)origin, (int)l->kind, l->source_id);
    for (size_t i = 0; i < nids; i++)
        if (strcmp(ids[i].key, k) == 0)
            return &ids[i];
    cr_assert(nids < sizeof ids / sizeof *ids);
    memset(&ids[nids], 0, sizeof ids[nids]);
    snprintf(ids[nids].key, sizeof ids[nids].key, "%s", k);
    return &ids[nids++];
}

static const char *const PARTNERS[] = {"P1", "P2", "P3"};
static const char *const TIERS[] = {"gold", "silver"};
static const char *const PRODUCTS[] = {"cloud", "support"};

/* Random events: sales of July..September (some backdated into closed months), trainings
 * (some backdated), an onboarding list change and an early end. */
static void random_events(script_t *sc, int month_lo, int month_hi, int count, int *sale_no)
{
    for (int i = 0; i < count; i++) {
        int kind = (int)rnd(10);
        int month = month_lo + (int)rnd((uint32_t)(month_hi - month_lo + 1));
        const char *at = P("2026-%02d-%02dT%02d:00:00Z", month, 1 + (int)rnd(28), (int)rnd(24));
        const char *pid = PARTNERS[rnd(3)];
        if (kind < 7) {
            int n = (*sale_no)++;
            sale(sc, at, P("S%d", n), pid, P("C%d", (int)rnd(40)), PRODUCTS[rnd(2)],
                 1 + (int64_t)rnd(300000));
        } else if (kind < 9) {
            training(sc, P("2026-%02d-%02dT00:00:00Z", 6 + (int)rnd(3), 1 + (int)rnd(28)),
                     P("t%d", (int)sc->n), pid, rnd(2) ? "m1" : "m2");
        } else if (rnd(2)) {
            onboarding(sc, at, P("ob%d", (int)sc->n), rnd(2) ? "[\"m1\",\"m2\"]" : "[\"m2\"]");
        } else {
            promo_end(sc, "2026-09-15T00:00:00Z", P("pe%d", (int)sc->n), rnd(2) ? "pa" : "pb",
                      2026, 7 + (int)rnd(3), 1 + (int)rnd(28));
        }
    }
}

static void base_events(script_t *sc)
{
    for (int p = 0; p < 3; p++)
        partner_reg(sc, "2026-06-01T00:00:00Z", PARTNERS[p], "reseller", TIERS[rnd(2)], "std",
                    "JPY", NULL);
    plan_pub(sc, "2026-06-01T00:00:00Z", "plan-1", J(sc, PLAN_C));
    onboarding(sc, "2026-06-01T00:00:00Z", "ob-0", "[\"m1\"]");
    promo_pub(sc, "2026-06-02T00:00:00Z", "pr-a",
              J(sc, "{'promo_id':'pa','plan_id':'std','from':'2026-07-01','to':'2026-09-30',"
                    "'match':{'tier':'gold'},'rate_bp':500,'per_sale_minor':7,"
                    "'budget_minor':20000}"));
    promo_pub(sc, "2026-06-02T00:00:00Z", "pr-b",
              J(sc, "{'promo_id':'pb','plan_id':'std','from':'2026-07-15','to':'2026-08-31',"
                    "'match':{'product':'cloud','certified':true},'rate_bp':500,"
                    "'budget_minor':9999}"));
    promo_pub(sc, "2026-06-02T00:00:00Z", "pr-c",
              J(sc, "{'promo_id':'pc','plan_id':'std','from':'2026-07-01','to':'2026-09-30',"
                    "'rate_bp':100,'budget_minor':3000}"));
}

/* Sum of the promotion lines per promotion of a statement without closes = used <= budget. */
static void check_budgets(const acr_statement_t *st)
{
    for (size_t i = 0; i < st->promotion_count; i++) {
        const acr_promo_total_t *p = &st->promotions[i];
        int64_t sum = 0;
        for (size_t k = 0; k < st->line_count; k++) {
            const acr_line_t *l = &st->lines[k];
            if (l->kind == ACR_LINE_PROMOTION && strcmp(l->rule + 10, p->promo_id) == 0)
                sum += l->amount_minor;
        }
        ASSERT_EQ_MSG(sum, p->used_minor, "promotion %s: lines %lld, used %lld", p->promo_id,
                      (long long)sum, (long long)p->used_minor);
        cr_assert(!p->has_budget || p->used_minor <= p->budget_minor,
                  "promotion %s used %lld of %lld", p->promo_id, (long long)p->used_minor,
                  (long long)p->budget_minor);
        cr_assert(p->used_minor >= 0);
    }
}

static void add_lines(const acr_statement_t *st, bool now)
{
    for (size_t k = 0; k < st->line_count; k++) {
        ident_t *d = ident(&st->lines[k], st->lines[k].origin_period);
        if (now)
            d->now += st->lines[k].amount_minor;
        else
            d->sum += st->lines[k].amount_minor;
    }
}

Test(property, budgets_and_telescoping, .timeout = 120)
{
    for (uint64_t seed = 1; seed <= 120; seed++) {
        rng_state = seed * 0x9E3779B97F4A7C15ull;
        pool_n = 0;
        nids = 0;
        int sale_no = 0;
        script_t *sc = script_new(ACR_PERIOD_MONTH, "+00:00");
        base_events(sc);
        random_events(sc, 7, 7, 12, &sale_no);
        /* close July as of here */
        acr_statement_t st7, st8, st9, now;
        acr_err_t err;
        ASSERT_EQ_MSG(script_run(sc, "2026-07", 0, &st7, &err), 0, "seed %llu: %s",
                      (unsigned long long)seed, err.msg);
        check_budgets(&st7); /* no close yet: these are the now lines */
        char *csv7 = strndup(st7.csv, st7.csv_len);
        closed(sc, "2026-08-01T00:00:00Z", "2026-07", csv7);
        random_events(sc, 7, 8, 12, &sale_no); /* late July sales, trainings, list changes */
        ASSERT_EQ_MSG(script_run(sc, "2026-08", 0, &st8, &err), 0, "seed %llu: %s",
                      (unsigned long long)seed, err.msg);
        char *csv8 = strndup(st8.csv, st8.csv_len);
        closed(sc, "2026-09-01T00:00:00Z", "2026-08", csv8);
        random_events(sc, 7, 9, 12, &sale_no);
        ASSERT_EQ_MSG(script_run(sc, "2026-09", 0, &st9, &err), 0, "seed %llu: %s",
                      (unsigned long long)seed, err.msg);
        /* the same history without the closes: what every line is now */
        script_t *nc = calloc(1, sizeof *nc);
        cr_assert_not_null(nc);
        nc->kind = sc->kind;
        nc->offset_min = sc->offset_min;
        for (size_t i = 0; i < sc->n; i++) {
            if (sc->ev[i].type == ACR_EV_PERIOD_CLOSED)
                continue;
            nc->ev[nc->n] = sc->ev[i];
            nc->ev[nc->n].seq = nc->n + 1;
            nc->n++;
        }
        ASSERT_EQ_MSG(script_run(nc, "2026-09", 0, &now, &err), 0, "seed %llu: %s",
                      (unsigned long long)seed, err.msg);
        check_budgets(&now);
        add_lines(&st7, false);
        add_lines(&st8, false);
        add_lines(&st9, false);
        add_lines(&now, true);
        for (size_t i = 0; i < nids; i++)
            ASSERT_EQ_MSG(ids[i].sum, ids[i].now, "seed %llu: %s: closes + last run %lld, now %lld",
                          (unsigned long long)seed, ids[i].key, (long long)ids[i].sum,
                          (long long)ids[i].now);
        acr_statement_destroy(&st7);
        acr_statement_destroy(&st8);
        acr_statement_destroy(&st9);
        acr_statement_destroy(&now);
        free(csv7);
        free(csv8);
        free(nc);
        script_free(sc);
    }
}
