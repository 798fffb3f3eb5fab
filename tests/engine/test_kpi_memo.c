/* test_kpi_memo.c - the KPI memo (engine/query/kpi_memo.c): a handle answers a window's
 * commission again from its memo exactly when no event since reaches the window, and its
 * answer is always the one a fresh handle (no memo: a full run) gives. The figures of the
 * worked example are by hand (ledger_fixture.h); the changes below are worked out here. */
#include "accrue/projection.h"
#include "ledger_fixture.h"

static char *kpi(acr_ledger_t *l, const char *period, const char *partner)
{
    acr_buf_t b;
    acr_buf_init(&b);
    acr_err_t err;
    int rc = acr_query_kpi(l, period, partner, false, &b, &err);
    ASSERT_EQ_MSG(rc, 0, "kpi %s: %s", period, err.msg);
    acr_buf_append(&b, "", 1);
    char *s = strdup((const char *)b.data);
    acr_buf_destroy(&b);
    return s;
}

/* The answer of a handle opened afresh on the same ledger: a full run, no memo. */
static char *kpi_fresh(const fixture_t *fx, const char *period, const char *partner)
{
    acr_ledger_t *l;
    acr_err_t err;
    ASSERT_EQ_MSG(acr_ledger_open(fx->path, &l, &err), 0, "%s", err.msg);
    char *s = kpi(l, period, partner);
    uint64_t hits, misses;
    acr_query_kpi_memo_stats(l, &hits, &misses);
    ASSERT_EQ(hits, 0);
    acr_ledger_close(l);
    return s;
}

/* Asks period on l; checks it against a fresh handle, that it came from the memo when
 * want_hit and from a run when not, and that P2's commission_minor is p2. */
static void ask(const fixture_t *fx, const char *period, bool want_hit, long p2)
{
    uint64_t h0, m0, h1, m1;
    acr_query_kpi_memo_stats(fx->l, &h0, &m0);
    char *got = kpi(fx->l, period, "P2");
    acr_query_kpi_memo_stats(fx->l, &h1, &m1);
    ASSERT_EQ_MSG(h1 - h0, want_hit ? 1u : 0u, "%s: hit expected %d", period, want_hit);
    ASSERT_EQ_MSG(m1 - m0, want_hit ? 0u : 1u, "%s: miss expected %d", period, !want_hit);
    char *want = kpi_fresh(fx, period, "P2");
    ASSERT_STR_EQ(got, want);
    char needle[64];
    snprintf(needle, sizeof needle, "\"commission_minor\":%ld,", p2);
    cr_assert(strstr(got, needle) != NULL, "%s: want %s in %s", period, needle, got);
    free(got);
    free(want);
}

#define SALE_P2(id, at, sid, cust, amount) SALE(id, at, sid, "P2", cust, amount, "")

Test(kpi_memo, reuses_a_window_until_an_event_reaches_it)
{
    fixture_t fx;
    fx_open(&fx, ACR_PERIOD_MONTH, "+09:00");
    fx_append_ok(fx.l, WORKED);
    /* P2, silver, July: S3 200000 x 1000 bp = 20000 (C1 is not new) */
    ask(&fx, "2026-07", false, 20000);
    ask(&fx, "2026-07", true, 20000); /* nothing appended */
    ask(&fx, "2026-Q3", false, 20000); /* another window: its own run */

    /* August: after July's window, inside Q3's */
    fx_append_ok(fx.l, SALE_P2("s-4", "2026-08-03T01:00:00Z", "S4", "C4", "100000"));
    ask(&fx, "2026-07", true, 20000);
    /* Q3: + S4 100000 x 1000 = 10000, C4 new: + 10000 */
    ask(&fx, "2026-Q3", false, 40000);
    ask(&fx, "2026-Q3", true, 40000);

    /* an event the processor ignores, and a new partner: no window changes */
    fx_append_ok(fx.l, EV("r2", "rep.added", "2026-07-05T00:00:00Z",
                          "\"partner_id\":\"P2\",\"rep_id\":\"R2\",\"name\":\"Ren\"")
                       PARTNER("p-3", "P3", "gold"));
    ask(&fx, "2026-07", true, 20000);
    ask(&fx, "2026-Q3", true, 40000);

    /* a late July sale: July and Q3 restated. S5 300000, cum 200000: 30000; C5 new: 10000 */
    fx_append_ok(fx.l, SALE_P2("s-5", "2026-07-25T01:00:00Z", "S5", "C5", "300000"));
    ask(&fx, "2026-07", false, 60000);
    ask(&fx, "2026-Q3", false, 80000);

    /* a backdated tier correction (P2 gold from July 1): the gold brackets, 1500 bp.
     * July: S3 30000, S5 45000, C5 10000 = 85000; August: S4 15000 + 10000 */
    fx_append_ok(fx.l, EV("u-1", "partner.updated", "2026-06-30T15:00:00Z",
                          "\"partner_id\":\"P2\",\"tier\":\"gold\""));
    ask(&fx, "2026-07", false, 85000);
    ask(&fx, "2026-Q3", false, 110000);
    /* a correction dated September reaches Q3 but not July */
    fx_append_ok(fx.l, EV("u-2", "partner.updated", "2026-09-01T00:00:00Z",
                          "\"partner_id\":\"P2\",\"region\":\"emea\""));
    ask(&fx, "2026-07", true, 85000);
    ask(&fx, "2026-Q3", false, 110000);

    /* a refund in August of the July sale S5: August's clawback, July's lines stand.
     * S5's line 45000; 30000 of 300000: -4500. August: net 70000, cap limit 21000 >=
     * 25000 - 4500 */
    fx_append_ok(fx.l, REFUND("r-5", "2026-08-10T00:00:00Z", "S5", "30000"));
    ask(&fx, "2026-07", true, 85000);
    ask(&fx, "2026-Q3", false, 105500);

    /* a plan version dated next year is still taken as reaching every period (a run) */
    fx_append_ok(fx.l, EV("plan-2", "plan.published", "2026-08-20T00:00:00Z",
                          "\"plan\":{\"plan_id\":\"standard\",\"version\":2,"
                          "\"effective_from\":\"2027-01-01\",\"currency\":\"JPY\","
                          "\"ceiling_bp\":4000,\"rules\":[{\"match\":{},\"brackets\":[{"
                          "\"from_minor\":0,\"rate_bp\":500}]}]}"));
    ask(&fx, "2026-07", false, 85000);
    ask(&fx, "2026-07", true, 85000);
    fx_close(&fx);
}

/* Another handle (another process, in life) appends: this handle's memo sees the new
 * events in the log, not through its own appends. */
Test(kpi_memo, sees_what_another_handle_appends)
{
    fixture_t fx;
    fx_open(&fx, ACR_PERIOD_MONTH, "+09:00");
    fx_append_ok(fx.l, WORKED);
    ask(&fx, "2026-07", false, 20000);
    acr_ledger_t *other;
    acr_err_t err;
    ASSERT_EQ_MSG(acr_ledger_open(fx.path, &other, &err), 0, "%s", err.msg);
    fx_append_ok(other, SALE_P2("s-6", "2026-08-12T00:00:00Z", "S6", "C1", "100000"));
    ask(&fx, "2026-07", true, 20000);
    /* S7 after S3 (cum 200000): 10000; C1 not new */
    fx_append_ok(other, SALE_P2("s-7", "2026-07-12T00:00:00Z", "S7", "C1", "100000"));
    ask(&fx, "2026-07", false, 30000);
    ask(&fx, "2026-07", true, 30000);
    acr_ledger_close(other);
    fx_close(&fx);
}
