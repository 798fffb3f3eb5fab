/* test_payout.c - the payout driver (engine/payout): runs of the worked example of
 * commissions.md against figures computed by hand (ledger_fixture.h), the fingerprint
 * recomputed with xxHash, as-of runs, closes and their reproduction, audit and list, and
 * the run that ignores closes (the KPI query's) against the run that feeds them. */
#include <xxhash.h>

#include "../../engine/payout/payout_internal.h"
#include "accrue/payout.h"
#include "ledger_fixture.h"

static const acr_partner_total_t *partner(const acr_statement_t *st, const char *pid)
{
    for (size_t i = 0; i < st->partner_count; i++)
        if (strcmp(st->partners[i].partner_id, pid) == 0)
            return &st->partners[i];
    return NULL;
}

static int64_t total_of(const acr_statement_t *st, const char *pid)
{
    const acr_partner_total_t *p = partner(st, pid);
    return p ? p->total_minor : 0;
}

/* The fingerprint is XXH3-128 of the CSV bytes in canonical hex (what xxh128sum prints). */
static void check_fingerprint(const acr_statement_t *st)
{
    XXH128_canonical_t c;
    XXH128_canonicalFromHash(&c, XXH3_128bits(st->csv, st->csv_len));
    char hex[33];
    for (int i = 0; i < 16; i++)
        snprintf(hex + 2 * i, 3, "%02x", c.digest[i]);
    ASSERT_STR_EQ(st->fingerprint, hex);
}

static int run(acr_ledger_t *l, const char *period, uint64_t as_of, acr_payout_t *out,
               acr_err_t *err)
{
    acr_payout_request_t req = {.period_id = period, .as_of_seq = as_of};
    return acr_payout_run(l, &req, out, err);
}

Test(payout, run_of_the_worked_example)
{
    fixture_t fx;
    acr_ledger_t *l = fx_open(&fx, ACR_PERIOD_MONTH, "+09:00");
    fx_append_ok(l, WORKED);
    acr_payout_t po, again;
    acr_err_t err;
    ASSERT_EQ_MSG(run(l, "2026-07", 0, &po, &err), 0, "%s", err.msg);
    ASSERT_EQ(po.through_seq, (uint64_t)8);
    ASSERT_EQ(po.reproduces_close, false);
    ASSERT_STR_EQ(po.period_id, "2026-07");
    ASSERT_EQ(total_of(&po.stmt, "P1"), 230000);
    ASSERT_EQ(total_of(&po.stmt, "P2"), 20000);
    const acr_partner_total_t *p1 = partner(&po.stmt, "P1");
    cr_assert_not_null(p1);
    ASSERT_EQ(p1->by_kind_minor[ACR_LINE_SALE], 225000);
    ASSERT_EQ(p1->by_kind_minor[ACR_LINE_CLAWBACK], -15000);
    ASSERT_EQ(p1->by_kind_minor[ACR_LINE_NEW_CUSTOMER_BONUS], 20000);
    ASSERT_EQ(p1->line_count, 5u);
    ASSERT_EQ(po.stmt.line_count, (size_t)6);
    ASSERT_EQ(po.stmt.currency_count, (size_t)1);
    ASSERT_STR_EQ(po.stmt.currency_totals[0].currency, "JPY");
    ASSERT_EQ(po.stmt.currency_totals[0].total_minor, 250000);
    ASSERT_EQ(po.stmt.unplanned_count, (size_t)0);
    cr_assert(po.stmt.csv_len > strlen(ACR_STATEMENT_HEADER) &&
              memcmp(po.stmt.csv, ACR_STATEMENT_HEADER, strlen(ACR_STATEMENT_HEADER)) == 0);
    check_fingerprint(&po.stmt);
    /* a second run of the same snapshot: the same bytes */
    ASSERT_EQ_MSG(run(l, "2026-07", 0, &again, &err), 0, "%s", err.msg);
    ASSERT_BYTES_EQ(again.stmt.csv, again.stmt.csv_len, po.stmt.csv, po.stmt.csv_len);
    acr_payout_destroy(&again);
    acr_payout_destroy(&po);
    fx_close(&fx);
}

/* As of seq 5 only S1 exists: P1 90000 + the new-customer bonus of C1. */
Test(payout, as_of_and_usage_errors)
{
    fixture_t fx;
    acr_ledger_t *l = fx_open(&fx, ACR_PERIOD_MONTH, "+09:00");
    fx_append_ok(l, WORKED);
    acr_payout_t po;
    acr_err_t err;
    ASSERT_EQ_MSG(run(l, "2026-07", 5, &po, &err), 0, "%s", err.msg);
    ASSERT_EQ(po.through_seq, (uint64_t)5);
    ASSERT_EQ(total_of(&po.stmt, "P1"), 100000);
    ASSERT_EQ(total_of(&po.stmt, "P2"), 0);
    check_fingerprint(&po.stmt);
    acr_payout_destroy(&po);
    ASSERT_EQ(run(l, "2026-07", 9, &po, &err), ACR_EUSAGE); /* beyond the head */
    ASSERT_EQ(run(l, "2026-7", 0, &po, &err), ACR_EUSAGE);
    ASSERT_EQ(run(l, "2026-Q3", 0, &po, &err), ACR_EUSAGE); /* a month ledger */
    fx_close(&fx);
}

Test(payout, close_reproduce_audit_list)
{
    fixture_t fx;
    acr_ledger_t *l = fx_open(&fx, ACR_PERIOD_MONTH, "+09:00");
    fx_append_ok(l, WORKED);
    acr_payout_t closed, po;
    acr_err_t err;
    uint64_t seq;
    ASSERT_EQ_MSG(acr_payout_close(l, &(acr_close_request_t){.period_id = "2026-07", .now_ms = INT64_MAX}, &closed, &seq, &err), 0, "%s", err.msg);
    ASSERT_EQ(seq, (uint64_t)9);
    ASSERT_EQ(closed.through_seq, (uint64_t)8);
    ASSERT_EQ(acr_payout_close(l, &(acr_close_request_t){.period_id = "2026-07", .now_ms = INT64_MAX}, &po, &seq, &err), ACR_EPERIOD_CLOSED);
    ASSERT_EQ(acr_payout_close(l, &(acr_close_request_t){.period_id = "2026-06", .now_ms = INT64_MAX}, &po, &seq, &err), ACR_EPERIOD_ORDER);

    /* a late July sale does not change the closed July: its run reproduces the close */
    fx_append_ok(l, SALE("s-4", "2026-07-25T00:00:00Z", "S4", "P2", "C3", "300000", ""));
    ASSERT_EQ_MSG(run(l, "2026-07", 0, &po, &err), 0, "%s", err.msg);
    ASSERT_EQ(po.reproduces_close, true);
    ASSERT_EQ(po.through_seq, (uint64_t)8);
    ASSERT_BYTES_EQ(po.stmt.csv, po.stmt.csv_len, closed.stmt.csv, closed.stmt.csv_len);
    acr_payout_destroy(&po);
    /* ...it is owed in August as a prior-period line: S4's 30000 and C3's bonus */
    ASSERT_EQ_MSG(run(l, "2026-08", 0, &po, &err), 0, "%s", err.msg);
    ASSERT_EQ(total_of(&po.stmt, "P1"), 0);
    ASSERT_EQ(total_of(&po.stmt, "P2"), 40000);
    ASSERT_EQ(partner(&po.stmt, "P2")->prior_period_minor, 40000);
    acr_payout_destroy(&po);

    acr_audit_t audit;
    ASSERT_EQ_MSG(acr_payout_audit(l, "2026-07", &po, &audit, &err), 0, "%s", err.msg);
    ASSERT_EQ(audit.match, true);
    ASSERT_STR_EQ(audit.recorded_fingerprint, closed.stmt.fingerprint);
    acr_payout_destroy(&po);
    ASSERT_EQ(acr_payout_audit(l, "2026-08", &po, &audit, &err), ACR_ENOT_FOUND);

    acr_close_info_t *infos;
    size_t n;
    ASSERT_EQ(acr_payout_list(l, &infos, &n, &err), 0);
    ASSERT_EQ(n, (size_t)1);
    ASSERT_STR_EQ(infos[0].period_id, "2026-07");
    ASSERT_EQ(infos[0].seq, (uint64_t)9);
    ASSERT_EQ(infos[0].through_seq, (uint64_t)8);
    ASSERT_EQ(infos[0].lines, (uint64_t)6);
    ASSERT_STR_EQ(infos[0].fingerprint, closed.stmt.fingerprint);
    free(infos);
    acr_payout_destroy(&closed);
    fx_close(&fx);
}

/* The KPI query's run: every origin period up to August as of the head, as if nothing
 * were paid (P2 owns S3, S4 and C3's bonus: 60000), where the August payout owes 40000. */
Test(payout, lines_ignoring_closes)
{
    fixture_t fx;
    acr_ledger_t *l = fx_open(&fx, ACR_PERIOD_MONTH, "+09:00");
    fx_append_ok(l, WORKED);
    acr_payout_t closed;
    acr_err_t err;
    uint64_t seq;
    ASSERT_EQ_MSG(acr_payout_close(l, &(acr_close_request_t){.period_id = "2026-07", .now_ms = INT64_MAX}, &closed, &seq, &err), 0, "%s", err.msg);
    fx_append_ok(l, SALE("s-4", "2026-07-25T00:00:00Z", "S4", "P2", "C3", "300000", ""));
    acr_reader_t *r;
    ASSERT_EQ(acr_reader_open(l, &r, &err), 0);
    int32_t aug;
    cr_assert(acr_period_parse(ACR_PERIOD_MONTH, "2026-08", 7, &aug));
    acr_statement_t st;
    ASSERT_EQ_MSG(acr__payout_lines_ignoring_closes(l, r, aug, acr_reader_head_seq(r), NULL,
                                                    &st, &err),
                  0, "%s", err.msg);
    ASSERT_EQ(total_of(&st, "P1"), 230000);
    ASSERT_EQ(total_of(&st, "P2"), 60000);
    ASSERT_EQ(partner(&st, "P2")->prior_period_minor, 60000); /* all of July's origin */
    check_fingerprint(&st);
    /* the KPI's sums-only run: no CSV, no lines; a window from August holds each partner's
     * August lines (total less prior periods), one from July all of them */
    acr_statement_t w;
    for (int k = 0; k < 2; k++) {
        acr_comm_output_t o = {.omit_lines = true, .omit_csv = true, .window = true,
                               .window_lo = k == 0 ? aug : aug - 1};
        ASSERT_EQ_MSG(acr__payout_lines_ignoring_closes(l, r, aug, acr_reader_head_seq(r), &o,
                                                        &w, &err),
                      0, "%s", err.msg);
        cr_assert_null(w.csv);
        cr_assert_null(w.lines);
        ASSERT_EQ(w.csv_len, 0);
        ASSERT_EQ(w.line_count, st.line_count);
        ASSERT_EQ(w.partner_count, st.partner_count);
        for (size_t i = 0; i < st.partner_count; i++) {
            const acr_partner_total_t *a = &st.partners[i], *b = &w.partners[i];
            cr_assert_str_eq(b->partner_id, a->partner_id);
            ASSERT_EQ(b->total_minor, a->total_minor);
            ASSERT_EQ_MSG((int64_t)b->window_minor,
                          k == 0 ? a->total_minor - a->prior_period_minor : a->total_minor,
                          "partner %s, window from %s", a->partner_id, k == 0 ? "Aug" : "Jul");
        }
        acr_statement_destroy(&w);
    }
    acr_statement_destroy(&st);
    /* through an earlier seq: the close's own point, where July's run was what it paid */
    int32_t jul;
    cr_assert(acr_period_parse(ACR_PERIOD_MONTH, "2026-07", 7, &jul));
    ASSERT_EQ(acr__payout_lines_ignoring_closes(l, r, jul, 8, NULL, &st, &err), 0);
    ASSERT_BYTES_EQ(st.csv, st.csv_len, closed.stmt.csv, closed.stmt.csv_len);
    acr_statement_destroy(&st);
    acr_reader_close(r);
    acr_payout_destroy(&closed);
    fx_close(&fx);
}
