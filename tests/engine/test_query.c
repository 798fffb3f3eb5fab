/* test_query.c - the read-model queries (engine/query) at their edges: an empty ledger,
 * unknown ids, bad period ids, an error leaving the caller's buffer as it was, a query's
 * snapshot standing still while appends go on, and the KPI commission (a payout-driver
 * run) of the worked example by hand. Full scenarios are in test_projection.c. */
#include "accrue/projection.h"
#include "ledger_fixture.h"

typedef int (*query_fn)(acr_ledger_t *l, const char *arg, acr_buf_t *out, acr_err_t *err);

static int q_partners(acr_ledger_t *l, const char *a, acr_buf_t *o, acr_err_t *e)
{
    return acr_query_partners(l, a, o, e);
}
static int q_deal(acr_ledger_t *l, const char *a, acr_buf_t *o, acr_err_t *e)
{
    return acr_query_deal(l, a, o, e);
}
static int q_pipeline(acr_ledger_t *l, const char *a, acr_buf_t *o, acr_err_t *e)
{
    return acr_query_pipeline(l, a, acr_days_from_civil(2026, 8, 1), o, e);
}
static int q_kpi(acr_ledger_t *l, const char *a, acr_buf_t *o, acr_err_t *e)
{
    return acr_query_kpi(l, a, NULL, false, o, e);
}
static int q_kpi_p1(acr_ledger_t *l, const char *a, acr_buf_t *o, acr_err_t *e)
{
    return acr_query_kpi(l, a, "P1", false, o, e);
}

/* The answer as a string, "!code" on an error (the buffer then checked unchanged). */
static char *answer(acr_ledger_t *l, query_fn q, const char *arg)
{
    acr_buf_t b;
    acr_buf_init(&b);
    acr_buf_append_str(&b, "kept");
    acr_err_t err;
    int rc = q(l, arg, &b, &err);
    if (rc != 0) {
        ASSERT_BYTES_EQ(b.data, b.len, "kept", 4); /* on error out is left as it was */
        acr_buf_reset(&b);
        acr_buf_printf(&b, "!%s", acr_err_name(rc));
    }
    acr_buf_append(&b, "", 1);
    char *s = strdup((const char *)b.data + (rc == 0 ? 4 : 0));
    acr_buf_destroy(&b);
    return s;
}

#define EXPECT(l, q, arg, want)                                                                    \
    do {                                                                                           \
        char *got_ = answer(l, q, arg);                                                            \
        ASSERT_STR_EQ(got_, want);                                                                 \
        free(got_);                                                                                \
    } while (0)

Test(query, empty_ledger_and_unknown_ids)
{
    fixture_t fx;
    acr_ledger_t *l = fx_open(&fx, ACR_PERIOD_MONTH, "+09:00");
    EXPECT(l, q_partners, NULL, "[]");
    EXPECT(l, q_pipeline, NULL, "[]");
    EXPECT(l, q_kpi, "2026-07", "[]");
    EXPECT(l, q_kpi, "2026-Q3", "[]");
    EXPECT(l, q_partners, "P1", "!not_found");
    EXPECT(l, q_deal, "D1", "!not_found");
    EXPECT(l, q_pipeline, "P1", "!not_found");
    EXPECT(l, q_kpi_p1, "2026-07", "!not_found");
    fx_close(&fx);
}

Test(query, bad_period_ids)
{
    fixture_t fx;
    acr_ledger_t *l = fx_open(&fx, ACR_PERIOD_MONTH, "+09:00");
    fx_append_ok(l, WORKED);
    const char *bad[] = {"2026-13", "2026-Q5", "2026-7", "26-07", "2026-07-01", "", "july"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        EXPECT(l, q_kpi, bad[i], "!usage");
    fx_close(&fx);
}

/* The worked example's KPIs (figures of ledger_fixture.h): commission_minor is the
 * payout driver's run as of the head, ignoring closes. */
Test(query, kpi_commission_by_hand)
{
    fixture_t fx;
    acr_ledger_t *l = fx_open(&fx, ACR_PERIOD_MONTH, "+09:00");
    fx_append_ok(l, WORKED);
    char *k = answer(l, q_kpi_p1, "2026-07");
    cr_assert(strstr(k, "\"net_revenue_minor\":1200000,") != NULL, "%s", k);
    cr_assert(strstr(k, "\"new_customers\":2,") != NULL, "%s", k);
    cr_assert(strstr(k, "\"commission_minor\":230000,\"certified\":true}") != NULL, "%s", k);
    free(k);
    k = answer(l, q_kpi, "2026-06"); /* registered in June, no sale: nothing earned */
#define JUNE(pid)                                                                                  \
    "{\"partner_id\":\"" pid "\",\"period\":\"2026-06\",\"currency\":\"JPY\","                  \
    "\"deals_registered\":0,\"deals_won\":0,\"deals_lost\":0,\"win_rate_bp\":null,"              \
    "\"net_revenue_minor\":0,\"new_customers\":0,\"median_days_to_win\":null,"                  \
    "\"training_modules\":0,\"commission_minor\":0,\"certified\":true}" /* no list: certified */
    ASSERT_STR_EQ(k, "[" JUNE("P1") "," JUNE("P2") "]");
    free(k);
    fx_close(&fx);
}

/* A reader opened before an append answers as of its own commit: the queries read one
 * snapshot each, so two queries around an append differ exactly by that append. */
Test(query, each_query_reads_one_commit)
{
    fixture_t fx;
    acr_ledger_t *l = fx_open(&fx, ACR_PERIOD_MONTH, "+09:00");
    fx_append_ok(l, PARTNER("p-1", "P1", "gold"));
    char *before = answer(l, q_partners, NULL);
    fx_append_ok(l, PARTNER("p-2", "P2", "silver"));
    char *after = answer(l, q_partners, NULL);
    cr_assert(strstr(before, "\"P2\"") == NULL, "%s", before);
    cr_assert(strstr(after, "\"P2\"") != NULL, "%s", after);
    cr_assert(strncmp(after, before, strlen(before) - 1) == 0, "P1's object is unchanged");
    free(before);
    free(after);
    fx_close(&fx);
}
