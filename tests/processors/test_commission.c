/* test_commission.c - golden statements of the commission processor.
 *
 * Every expected CSV below was computed by hand from commissions.md; the
 * comment above each one shows the arithmetic. A test that matches checks the
 * money, the ordering and the exact bytes at once.
 */
#include "comm_fixture.h"

#define STANDARD_PLAN                                                                              \
    "{\"plan_id\":\"standard\",\"version\":1,\"effective_from\":\"2026-01-01\","                   \
    "\"currency\":\"JPY\",\"ceiling_bp\":4000,\"rules\":[{\"match\":{\"tier\":\"gold\"},"          \
    "\"brackets\":[{\"from_minor\":0,\"rate_bp\":1500},{\"from_minor\":1000000,\"rate_bp\":2500}]}" \
    ",{\"match\":{},\"brackets\":[{\"from_minor\":0,\"rate_bp\":1000}]}],\"clawback_days\":90,"    \
    "\"new_customer_bonus_minor\":10000,\"targets\":[{\"net_revenue_minor\":1500000,"              \
    "\"bonus_minor\":50000}],\"cap_bp\":3000}"

/* commissions.md, Worked example: seq 1..7. */
static script_t *worked_events(void)
{
    script_t *sc = script_new(ACR_PERIOD_MONTH, "+09:00");
    partner_reg(sc, "2026-06-01T00:00:00Z", "P1", "reseller", "gold", "standard", "JPY", NULL);
    partner_reg(sc, "2026-06-01T00:00:00Z", "P2", "referral", "silver", "standard", "JPY", NULL);
    plan_pub(sc, "2026-06-01T00:00:00Z", "plan-1", STANDARD_PLAN);
    sale(sc, "2026-07-02T01:00:00Z", "S1", "P1", "C1", "cloud", 600000);
    sale(sc, "2026-07-10T03:00:00Z", "S2", "P1", "C2", "cloud", 700000);
    sale(sc, "2026-07-11T05:00:00Z", "S3", "P2", "C1", "support", 200000);
    refund(sc, "2026-07-20T02:00:00Z", "r-1", "S1", 100000);
    return sc;
}

/* P1 S1 600000 x 15% = 90000; S2 cum 600000: 400000 x 15% + 300000 x 25% = 135000;
 * R1 round(100000 x 90000 / 600000) = 15000 -> -15000; C1, C2 new: 10000 each;
 * net 1200000 < 1500000 no target; sub 230000 <= cap 360000.
 * P2 S3 rule 1 200000 x 10% = 20000; C1 not new; cap 60000. */
static const char WORKED_07[] =
    HDR "2026-07,P1,1,2026-07,sale,S1,4,2026-07-02T01:00:00Z,standard@1#0,600000,90000,JPY\n"
        "2026-07,P1,2,2026-07,sale,S2,5,2026-07-10T03:00:00Z,standard@1#0,700000,135000,JPY\n"
        "2026-07,P1,3,2026-07,clawback,r-1,7,2026-07-20T02:00:00Z,standard@1#0,100000,-15000,JPY\n"
        "2026-07,P1,4,2026-07,new_customer_bonus,S1,4,2026-07-02T01:00:00Z,standard@1,0,10000,JPY\n"
        "2026-07,P1,5,2026-07,new_customer_bonus,S2,5,2026-07-10T03:00:00Z,standard@1,0,10000,JPY\n"
        "2026-07,P2,1,2026-07,sale,S3,6,2026-07-11T05:00:00Z,standard@1#1,200000,20000,JPY\n";

/* After the close (seq 8): S4 late July sale of P2 300000 x 10% = 30000, C3 new 10000;
 * S5 P1 August 100000 x 15% = 15000 (cum restarts in August), C2 not new. */
static const char WORKED_08[] =
    HDR "2026-08,P1,1,2026-08,sale,S5,10,2026-08-03T00:00:00Z,standard@1#0,100000,15000,JPY\n"
        "2026-08,P2,1,2026-07,sale,S4,9,2026-07-25T00:00:00Z,standard@1#1,300000,30000,JPY\n"
        "2026-08,P2,2,2026-07,new_customer_bonus,S4,9,2026-07-25T00:00:00Z,standard@1,0,10000,"
        "JPY\n";

Test(worked, july_statement)
{
    script_t *sc = worked_events();
    acr_statement_t st;
    acr_err_t err;
    cr_assert_eq(script_run(sc, "2026-07", 0, &st, &err), 0, "%s", err.msg);
    ASSERT_BYTES_EQ(st.csv, st.csv_len, WORKED_07, strlen(WORKED_07));
    ASSERT_STR_EQ(st.fingerprint, "c5e27e1ef9f0212498bfa9b06be115cd");
    cr_assert_eq(st.line_count, 6);
    cr_assert_eq(st.partner_count, 2);
    ASSERT_STR_EQ(st.partners[0].partner_id, "P1");
    cr_assert_eq(st.partners[0].total_minor, 90000 + 135000 - 15000 + 20000);
    cr_assert_eq(st.partners[0].by_kind_minor[ACR_LINE_CLAWBACK], -15000);
    cr_assert_eq(st.partners[0].prior_period_minor, 0);
    cr_assert_eq(st.partners[1].total_minor, 20000);
    cr_assert_eq(st.currency_count, 1);
    ASSERT_STR_EQ(st.currency_totals[0].currency, "JPY");
    cr_assert_eq(st.currency_totals[0].total_minor, 250000);
    cr_assert_eq(st.plans_used_count, 1);
    ASSERT_STR_EQ(st.plans_used[0], "standard@1");
    cr_assert_eq(st.unplanned_count, 0);
    acr_statement_destroy(&st);
    script_free(sc);
}

Test(worked, august_after_close)
{
    script_t *sc = worked_events();
    closed(sc, "2026-07-31T15:00:00Z", "2026-07", WORKED_07);
    sale(sc, "2026-07-25T00:00:00Z", "S4", "P2", "C3", "support", 300000);
    sale(sc, "2026-08-03T00:00:00Z", "S5", "P1", "C2", "cloud", 100000);
    acr_statement_t st;
    acr_err_t err;
    cr_assert_eq(script_run(sc, "2026-08", 0, &st, &err), 0, "%s", err.msg);
    ASSERT_BYTES_EQ(st.csv, st.csv_len, WORKED_08, strlen(WORKED_08));
    ASSERT_STR_EQ(st.fingerprint, "fcde0350c75d19f89c7a7f89090f7884");
    cr_assert_eq(st.partners[1].prior_period_minor, 40000);
    acr_statement_destroy(&st);
    /* the run of the closed July, as of its close, reproduces the stored bytes */
    expect_run(sc, "2026-07", 7, WORKED_07);
    script_free(sc);
}

/* ---- golden scenarios (offset +00:00 and USD unless said otherwise) ---- */

static script_t *month_utc(void)
{
    return script_new(ACR_PERIOD_MONTH, "+00:00");
}

static void reg(script_t *sc, const char *pid, const char *tier, const char *plan)
{
    partner_reg(sc, "2025-12-01T00:00:00Z", pid, "reseller", tier, plan, "USD", NULL);
}

#define FLAT(id, ver, eff, bp, extra)                                                              \
    "{'plan_id':'" id "','version':" #ver ",'effective_from':'" eff "','currency':'USD',"          \
    "'ceiling_bp':10000,'rules':[{'match':{},'brackets':[{'from_minor':0,'rate_bp':" #bp "}]}]"    \
    extra "}"

/* Brackets 0:10 %, 1000:20 %, 3000:30 %.
 * A 500 at cum 0: 500 x 1000 = 500000 / 10000 = 50.
 * B 3000 at cum 500: 500 x 1000 + 2000 x 2000 + 500 x 3000 = 6000000 / 10000 = 600.
 * C 1 at cum 3500: 1 x 3000 / 10000 = 0.3 -> 0: no line. */
Test(golden, bracket_straddle)
{
    script_t *sc = month_utc();
    reg(sc, "P1", "gold", "tier");
    plan_pub(sc, "2025-12-01T00:00:00Z", "pl",
             J(sc, "{'plan_id':'tier','version':1,'effective_from':'2026-01-01','currency':'USD',"
                   "'ceiling_bp':10000,'rules':[{'match':{},'brackets':[{'from_minor':0,"
                   "'rate_bp':1000},{'from_minor':1000,'rate_bp':2000},{'from_minor':3000,"
                   "'rate_bp':3000}]}]}"));
    sale(sc, "2026-03-01T00:00:00Z", "A", "P1", "C1", "cloud", 500);
    sale(sc, "2026-03-02T00:00:00Z", "B", "P1", "C1", "cloud", 3000);
    sale(sc, "2026-03-03T00:00:00Z", "C", "P1", "C1", "cloud", 1);
    expect_run(sc, "2026-03", 0,
               HDR "2026-03,P1,1,2026-03,sale,A,3,2026-03-01T00:00:00Z,tier@1#0,500,50,USD\n"
                   "2026-03,P1,2,2026-03,sale,B,4,2026-03-02T00:00:00Z,tier@1#0,3000,600,USD\n");
    script_free(sc);
}

/* 50 %: 1 -> 0.5 -> 0 (no line); 3 -> 1.5 -> 2; 5 -> 2.5 -> 2; 7 -> 3.5 -> 4. */
Test(golden, half_even_ties_both_ways)
{
    script_t *sc = month_utc();
    reg(sc, "P1", "gold", "half");
    plan_pub(sc, "2025-12-01T00:00:00Z", "pl", J(sc, FLAT("half", 1, "2026-01-01", 5000, "")));
    sale(sc, "2026-01-01T00:00:00Z", "S1", "P1", "C1", "x", 1);
    sale(sc, "2026-01-02T00:00:00Z", "S3", "P1", "C1", "x", 3);
    sale(sc, "2026-01-03T00:00:00Z", "S5", "P1", "C1", "x", 5);
    sale(sc, "2026-01-04T00:00:00Z", "S7", "P1", "C1", "x", 7);
    expect_run(sc, "2026-01", 0,
               HDR "2026-01,P1,1,2026-01,sale,S3,4,2026-01-02T00:00:00Z,half@1#0,3,2,USD\n"
                   "2026-01,P1,2,2026-01,sale,S5,5,2026-01-03T00:00:00Z,half@1#0,5,2,USD\n"
                   "2026-01,P1,3,2026-01,sale,S7,6,2026-01-04T00:00:00Z,half@1#0,7,4,USD\n");
    script_free(sc);
}

/* 50 %. A = 7: c = 3.5 -> 4. Refunds 2, 2, 3:
 *   after 2: rhe(2x4/7 = 1.14) = 1 - 0 -> -1; after 4: rhe(16/7 = 2.29) = 2 - 1 -> -1;
 *   after 7: 4 - 2 -> -2. Sum -4 = -c.
 * B = 3: c = 1.5 -> 2. Refunds 1, 1, 1:
 *   after 1: rhe(2/3) = 1 -> -1; after 2: rhe(4/3) = 1 - 1 = 0: no line; after 3: 2 - 1 -> -1. */
Test(golden, partial_refunds_sum_to_full)
{
    script_t *sc = month_utc();
    reg(sc, "P1", "gold", "half");
    plan_pub(sc, "2025-12-01T00:00:00Z", "pl", J(sc, FLAT("half", 1, "2026-01-01", 5000, "")));
    sale(sc, "2026-01-01T00:00:00Z", "A", "P1", "C1", "x", 7);
    sale(sc, "2026-01-01T00:00:01Z", "B", "P1", "C1", "x", 3);
    refund(sc, "2026-01-05T00:00:00Z", "ra1", "A", 2);
    refund(sc, "2026-01-05T00:00:00Z", "rb1", "B", 1);
    refund(sc, "2026-01-06T00:00:00Z", "ra2", "A", 2);
    refund(sc, "2026-01-06T00:00:00Z", "rb2", "B", 1);
    refund(sc, "2026-01-07T00:00:00Z", "ra3", "A", 3);
    refund(sc, "2026-01-07T00:00:00Z", "rb3", "B", 1);
    acr_statement_t st;
    acr_err_t err;
    cr_assert_eq(script_run(sc, "2026-01", 0, &st, &err), 0, "%s", err.msg);
    const char *want =
        HDR "2026-01,P1,1,2026-01,sale,A,3,2026-01-01T00:00:00Z,half@1#0,7,4,USD\n"
            "2026-01,P1,2,2026-01,sale,B,4,2026-01-01T00:00:01Z,half@1#0,3,2,USD\n"
            "2026-01,P1,3,2026-01,clawback,ra1,5,2026-01-05T00:00:00Z,half@1#0,2,-1,USD\n"
            "2026-01,P1,4,2026-01,clawback,rb1,6,2026-01-05T00:00:00Z,half@1#0,1,-1,USD\n"
            "2026-01,P1,5,2026-01,clawback,ra2,7,2026-01-06T00:00:00Z,half@1#0,2,-1,USD\n"
            "2026-01,P1,6,2026-01,clawback,ra3,9,2026-01-07T00:00:00Z,half@1#0,3,-2,USD\n"
            "2026-01,P1,7,2026-01,clawback,rb3,10,2026-01-07T00:00:00Z,half@1#0,1,-1,USD\n";
    ASSERT_BYTES_EQ(st.csv, st.csv_len, want, strlen(want));
    cr_assert_eq(st.partners[0].total_minor, 0); /* everything refunded, everything back */
    acr_statement_destroy(&st);
    script_free(sc);
}

/* clawback_days 30. Sale 2026-01-10, 1000 at 10 % = 100.
 * ra 2026-02-09 (30 days after): inside, rhe(300 x 100 / 1000) = 30 -> -30.
 * rb 2026-02-10 (31 days): outside, no line. The January line is a prior-period line of
 * the February run (January was never closed). */
Test(golden, clawback_window_edges)
{
    script_t *sc = month_utc();
    reg(sc, "P1", "gold", "w");
    plan_pub(sc, "2025-12-01T00:00:00Z", "pl",
             J(sc, FLAT("w", 1, "2026-01-01", 1000, ",'clawback_days':30")));
    sale(sc, "2026-01-10T12:00:00Z", "S1", "P1", "C1", "x", 1000);
    refund(sc, "2026-02-09T23:59:59Z", "ra", "S1", 300);
    refund(sc, "2026-02-10T00:00:00Z", "rb", "S1", 200);
    acr_statement_t st;
    acr_err_t err;
    cr_assert_eq(script_run(sc, "2026-02", 0, &st, &err), 0, "%s", err.msg);
    const char *want =
        HDR "2026-02,P1,1,2026-01,sale,S1,3,2026-01-10T12:00:00Z,w@1#0,1000,100,USD\n"
            "2026-02,P1,2,2026-02,clawback,ra,4,2026-02-09T23:59:59Z,w@1#0,300,-30,USD\n";
    ASSERT_BYTES_EQ(st.csv, st.csv_len, want, strlen(want));
    cr_assert_eq(st.partners[0].prior_period_minor, 100);
    cr_assert_eq(st.partners[0].total_minor, 70);
    acr_statement_destroy(&st);
    script_free(sc);
}

/* 0 bp, bonus 500: no sale lines at all. C1: X1 (P1, 01-05) first; X2 (P2) not new.
 * C2: X4 of P2 at 01-03 is recorded after X3 of P1 at 01-04 but is first by at. */
Test(golden, new_customer_first_sold_by_another_partner)
{
    script_t *sc = month_utc();
    reg(sc, "P1", "gold", "nc");
    reg(sc, "P2", "gold", "nc");
    plan_pub(sc, "2025-12-01T00:00:00Z", "pl",
             J(sc, FLAT("nc", 1, "2026-01-01", 0, ",'new_customer_bonus_minor':500")));
    sale(sc, "2026-01-05T00:00:00Z", "X1", "P1", "C1", "x", 100);
    sale(sc, "2026-01-06T00:00:00Z", "X2", "P2", "C1", "x", 100);
    sale(sc, "2026-01-04T00:00:00Z", "X3", "P1", "C2", "x", 100);
    sale(sc, "2026-01-03T00:00:00Z", "X4", "P2", "C2", "x", 100);
    expect_run(sc, "2026-01", 0,
               HDR "2026-01,P1,1,2026-01,new_customer_bonus,X1,4,2026-01-05T00:00:00Z,nc@1,0,500,"
                   "USD\n"
                   "2026-01,P2,1,2026-01,new_customer_bonus,X4,7,2026-01-03T00:00:00Z,nc@1,0,500,"
                   "USD\n");
    script_free(sc);
}

/* Targets 100:10, 200:20, 300:30; 0 bp. P1 net 250 -> 20. P2 net 400 - 100 = 300 -> 30
 * (exactly on the threshold). P3 net 99: no target. */
Test(golden, highest_target_reached)
{
    script_t *sc = month_utc();
    reg(sc, "P1", "gold", "t");
    reg(sc, "P2", "gold", "t");
    reg(sc, "P3", "gold", "t");
    plan_pub(sc, "2025-12-01T00:00:00Z", "pl",
             J(sc, FLAT("t", 1, "2026-01-01", 0,
                        ",'targets':[{'net_revenue_minor':100,'bonus_minor':10},"
                        "{'net_revenue_minor':200,'bonus_minor':20},"
                        "{'net_revenue_minor':300,'bonus_minor':30}]")));
    sale(sc, "2026-01-05T00:00:00Z", "A", "P1", "C1", "x", 250);
    sale(sc, "2026-01-05T00:00:00Z", "B", "P2", "C2", "x", 400);
    refund(sc, "2026-01-06T00:00:00Z", "rb", "B", 100);
    sale(sc, "2026-01-05T00:00:00Z", "C", "P3", "C3", "x", 99);
    expect_run(sc, "2026-01", 0,
               HDR "2026-01,P1,1,2026-01,target_bonus,2026-01,,,t@1,250,20,USD\n"
                   "2026-01,P2,1,2026-01,target_bonus,2026-01,,,t@1,300,30,USD\n");
    script_free(sc);
}

/* 50 %, cap 10 %, bonus 100. S1 1009: rhe(504.5) = 504; bonus 100; sub = 604.
 * limit = floor(1009 x 1000 / 10000 = 100.9) = 100 -> cap 100 - 604 = -504.
 * The adjustment (+50) is not under the cap. */
Test(golden, binding_cap)
{
    script_t *sc = month_utc();
    reg(sc, "P1", "gold", "cap");
    plan_pub(sc, "2025-12-01T00:00:00Z", "pl",
             J(sc, FLAT("cap", 1, "2026-01-01", 5000,
                        ",'cap_bp':1000,'new_customer_bonus_minor':100")));
    sale(sc, "2026-01-05T00:00:00Z", "S1", "P1", "C1", "x", 1009);
    adjust(sc, "2026-01-20T00:00:00Z", "a1", "P1", 50);
    acr_statement_t st;
    acr_err_t err;
    cr_assert_eq(script_run(sc, "2026-01", 0, &st, &err), 0, "%s", err.msg);
    const char *want =
        HDR "2026-01,P1,1,2026-01,sale,S1,3,2026-01-05T00:00:00Z,cap@1#0,1009,504,USD\n"
            "2026-01,P1,2,2026-01,new_customer_bonus,S1,3,2026-01-05T00:00:00Z,cap@1,0,100,USD\n"
            "2026-01,P1,3,2026-01,adjustment,a1,4,2026-01-20T00:00:00Z,,0,50,USD\n"
            "2026-01,P1,4,2026-01,cap,2026-01,,,cap@1,1009,-504,USD\n";
    ASSERT_BYTES_EQ(st.csv, st.csv_len, want, strlen(want));
    cr_assert_eq(st.partners[0].total_minor, 150); /* limit 100 + adjustment 50 */
    cr_assert_eq(st.partners[0].by_kind_minor[ACR_LINE_CAP], -504);
    acr_statement_destroy(&st);
    script_free(sc);
}

/* Adjustments need no plan: +1000 and -250 in January, ordered by at; February's is
 * not in the January run. */
Test(golden, adjustments_positive_and_negative)
{
    script_t *sc = month_utc();
    reg(sc, "P1", "gold", "nothing");
    adjust(sc, "2026-01-20T00:00:00Z", "adj-1", "P1", 1000);
    adjust(sc, "2026-01-10T00:00:00Z", "adj-2", "P1", -250);
    adjust(sc, "2026-02-01T00:00:00Z", "adj-3", "P1", 7);
    expect_run(sc, "2026-01", 0,
               HDR "2026-01,P1,1,2026-01,adjustment,adj-2,3,2026-01-10T00:00:00Z,,0,-250,USD\n"
                   "2026-01,P1,2,2026-01,adjustment,adj-1,2,2026-01-20T00:00:00Z,,0,1000,USD\n");
    script_free(sc);
}

/* P1's plan starts 02-01: its January sale has no version (no line, no bonus).
 * P2 (silver) matches no rule of gold_only: unplanned, but its new customer still earns
 * the version's bonus of 100. */
Test(golden, unplanned_sales)
{
    script_t *sc = month_utc();
    reg(sc, "P1", "gold", "late");
    reg(sc, "P2", "silver", "gold_only");
    plan_pub(sc, "2025-12-01T00:00:00Z", "p1",
             J(sc, FLAT("late", 1, "2026-02-01", 1000, ",'new_customer_bonus_minor':100")));
    plan_pub(sc, "2025-12-01T00:00:00Z", "p2",
             J(sc, "{'plan_id':'gold_only','version':1,'effective_from':'2026-01-01',"
                   "'currency':'USD','ceiling_bp':10000,'rules':[{'match':{'tier':'gold'},"
                   "'brackets':[{'from_minor':0,'rate_bp':1000}]}],"
                   "'new_customer_bonus_minor':100}"));
    sale(sc, "2026-01-15T00:00:00Z", "S1", "P1", "C1", "x", 1000);
    sale(sc, "2026-01-20T00:00:00Z", "S2", "P2", "C9", "x", 1000);
    acr_statement_t st;
    acr_err_t err;
    cr_assert_eq(script_run(sc, "2026-01", 0, &st, &err), 0, "%s", err.msg);
    const char *want = HDR "2026-01,P2,1,2026-01,new_customer_bonus,S2,6,2026-01-20T00:00:00Z,"
                           "gold_only@1,0,100,USD\n";
    ASSERT_BYTES_EQ(st.csv, st.csv_len, want, strlen(want));
    cr_assert_eq(st.unplanned_count, 2);
    ASSERT_STR_EQ(st.unplanned[0].sale_id, "S1");
    ASSERT_STR_EQ(st.unplanned[0].partner_id, "P1");
    ASSERT_STR_EQ(st.unplanned[1].sale_id, "S2");
    cr_assert_eq(st.plans_used_count, 1);
    ASSERT_STR_EQ(st.plans_used[0], "gold_only@1");
    acr_statement_destroy(&st);
    script_free(sc);
}

/* Quarters at +09:00: 2025-12-31T15:00:00Z is local 2026-01-01 (2026-Q1); half a second
 * earlier is 2025-Q4. 10 %: 1000 -> 100 each; target 1000:7 in each quarter, as of each
 * quarter's end. The Q4 lines are prior-period lines of the Q1 run. */
Test(golden, quarter_periods_plus_nine)
{
    script_t *sc = script_new(ACR_PERIOD_QUARTER, "+09:00");
    partner_reg(sc, "2025-01-01T00:00:00Z", "P1", "broker", "gold", "flat", "JPY", NULL);
    plan_pub(sc, "2025-01-01T00:00:00Z", "pl",
             J(sc, "{'plan_id':'flat','version':1,'effective_from':'2025-01-01','currency':'JPY',"
                   "'ceiling_bp':1000,'rules':[{'match':{},'brackets':[{'from_minor':0,"
                   "'rate_bp':1000}]}],'targets':[{'net_revenue_minor':1000,'bonus_minor':7}]}"));
    sale(sc, "2025-12-31T15:00:00Z", "Q1S", "P1", "C1", "x", 1000);
    sale(sc, "2025-12-31T23:59:59.5+09:00", "Q4S", "P1", "C2", "x", 1000);
    expect_run(sc, "2026-Q1", 0,
               HDR "2026-Q1,P1,1,2025-Q4,sale,Q4S,4,2025-12-31T14:59:59.500Z,flat@1#0,1000,100,JPY\n"
                   "2026-Q1,P1,2,2025-Q4,target_bonus,2025-Q4,,,flat@1,1000,7,JPY\n"
                   "2026-Q1,P1,3,2026-Q1,sale,Q1S,3,2025-12-31T15:00:00Z,flat@1#0,1000,100,JPY\n"
                   "2026-Q1,P1,4,2026-Q1,target_bonus,2026-Q1,,,flat@1,1000,7,JPY\n");
    script_free(sc);
}
