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
    "\"brackets\":[{\"from_minor\":0,\"rate_bp\":1500},"                                           \
    "{\"from_minor\":1000000,\"rate_bp\":2500}]}"                                                  \
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
    ASSERT_EQ_MSG(script_run(sc, "2026-07", 0, &st, &err), 0, "%s", err.msg);
    ASSERT_BYTES_EQ(st.csv, st.csv_len, WORKED_07, strlen(WORKED_07));
    ASSERT_STR_EQ(st.fingerprint, "c5e27e1ef9f0212498bfa9b06be115cd");
    ASSERT_EQ(st.line_count, 6);
    ASSERT_EQ(st.partner_count, 2);
    ASSERT_STR_EQ(st.partners[0].partner_id, "P1");
    ASSERT_EQ(st.partners[0].total_minor, 90000 + 135000 - 15000 + 20000);
    ASSERT_EQ(st.partners[0].by_kind_minor[ACR_LINE_CLAWBACK], -15000);
    ASSERT_EQ(st.partners[0].prior_period_minor, 0);
    ASSERT_EQ(st.partners[1].total_minor, 20000);
    ASSERT_EQ(st.currency_count, 1);
    ASSERT_STR_EQ(st.currency_totals[0].currency, "JPY");
    ASSERT_EQ(st.currency_totals[0].total_minor, 250000);
    ASSERT_EQ(st.plans_used_count, 1);
    ASSERT_STR_EQ(st.plans_used[0], "standard@1");
    ASSERT_EQ(st.unplanned_count, 0);
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
    ASSERT_EQ_MSG(script_run(sc, "2026-08", 0, &st, &err), 0, "%s", err.msg);
    ASSERT_BYTES_EQ(st.csv, st.csv_len, WORKED_08, strlen(WORKED_08));
    ASSERT_STR_EQ(st.fingerprint, "fcde0350c75d19f89c7a7f89090f7884");
    ASSERT_EQ(st.partners[1].prior_period_minor, 40000);
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
    ASSERT_EQ_MSG(script_run(sc, "2026-01", 0, &st, &err), 0, "%s", err.msg);
    const char *want =
        HDR "2026-01,P1,1,2026-01,sale,A,3,2026-01-01T00:00:00Z,half@1#0,7,4,USD\n"
            "2026-01,P1,2,2026-01,sale,B,4,2026-01-01T00:00:01Z,half@1#0,3,2,USD\n"
            "2026-01,P1,3,2026-01,clawback,ra1,5,2026-01-05T00:00:00Z,half@1#0,2,-1,USD\n"
            "2026-01,P1,4,2026-01,clawback,rb1,6,2026-01-05T00:00:00Z,half@1#0,1,-1,USD\n"
            "2026-01,P1,5,2026-01,clawback,ra2,7,2026-01-06T00:00:00Z,half@1#0,2,-1,USD\n"
            "2026-01,P1,6,2026-01,clawback,ra3,9,2026-01-07T00:00:00Z,half@1#0,3,-2,USD\n"
            "2026-01,P1,7,2026-01,clawback,rb3,10,2026-01-07T00:00:00Z,half@1#0,1,-1,USD\n";
    ASSERT_BYTES_EQ(st.csv, st.csv_len, want, strlen(want));
    ASSERT_EQ(st.partners[0].total_minor, 0); /* everything refunded, everything back */
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
    ASSERT_EQ_MSG(script_run(sc, "2026-02", 0, &st, &err), 0, "%s", err.msg);
    const char *want =
        HDR "2026-02,P1,1,2026-01,sale,S1,3,2026-01-10T12:00:00Z,w@1#0,1000,100,USD\n"
            "2026-02,P1,2,2026-02,clawback,ra,4,2026-02-09T23:59:59Z,w@1#0,300,-30,USD\n";
    ASSERT_BYTES_EQ(st.csv, st.csv_len, want, strlen(want));
    ASSERT_EQ(st.partners[0].prior_period_minor, 100);
    ASSERT_EQ(st.partners[0].total_minor, 70);
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
    ASSERT_EQ_MSG(script_run(sc, "2026-01", 0, &st, &err), 0, "%s", err.msg);
    const char *want =
        HDR "2026-01,P1,1,2026-01,sale,S1,3,2026-01-05T00:00:00Z,cap@1#0,1009,504,USD\n"
            "2026-01,P1,2,2026-01,new_customer_bonus,S1,3,2026-01-05T00:00:00Z,cap@1,0,100,USD\n"
            "2026-01,P1,3,2026-01,adjustment,a1,4,2026-01-20T00:00:00Z,,0,50,USD\n"
            "2026-01,P1,4,2026-01,cap,2026-01,,,cap@1,1009,-504,USD\n";
    ASSERT_BYTES_EQ(st.csv, st.csv_len, want, strlen(want));
    ASSERT_EQ(st.partners[0].total_minor, 150); /* limit 100 + adjustment 50 */
    ASSERT_EQ(st.partners[0].by_kind_minor[ACR_LINE_CAP], -504);
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
    ASSERT_EQ_MSG(script_run(sc, "2026-01", 0, &st, &err), 0, "%s", err.msg);
    const char *want = HDR "2026-01,P2,1,2026-01,new_customer_bonus,S2,6,2026-01-20T00:00:00Z,"
                           "gold_only@1,0,100,USD\n";
    ASSERT_BYTES_EQ(st.csv, st.csv_len, want, strlen(want));
    ASSERT_EQ(st.unplanned_count, 2);
    ASSERT_STR_EQ(st.unplanned[0].sale_id, "S1");
    ASSERT_STR_EQ(st.unplanned[0].partner_id, "P1");
    ASSERT_STR_EQ(st.unplanned[1].sale_id, "S2");
    ASSERT_EQ(st.plans_used_count, 1);
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
               HDR "2026-Q1,P1,1,2025-Q4,sale,Q4S,4,2025-12-31T14:59:59.500Z,flat@1#0,1000,100,"
                   "JPY\n"
                   "2026-Q1,P1,2,2025-Q4,target_bonus,2025-Q4,,,flat@1,1000,7,JPY\n"
                   "2026-Q1,P1,3,2026-Q1,sale,Q1S,3,2025-12-31T15:00:00Z,flat@1#0,1000,100,JPY\n"
                   "2026-Q1,P1,4,2026-Q1,target_bonus,2026-Q1,,,flat@1,1000,7,JPY\n");
    script_free(sc);
}

/* Brackets 0:10 %, 1000:20 %. January: S1 800 (01-10) -> 80; closed.
 * Late S2 500 dated 01-02 comes first by at: cum 0 -> 50; S1 now at cum 500:
 * 500 x 10 % + 300 x 20 % = 110, paid 80 -> delta +30 (basis stays 800).
 * February: S3 100 at cum 0 -> 10. */
Test(golden, late_sale_after_close_restates_brackets)
{
    script_t *sc = month_utc();
    reg(sc, "P1", "gold", "br");
    plan_pub(sc, "2025-12-01T00:00:00Z", "pl",
             J(sc, "{'plan_id':'br','version':1,'effective_from':'2026-01-01','currency':'USD',"
                   "'ceiling_bp':2000,'rules':[{'match':{},'brackets':[{'from_minor':0,"
                   "'rate_bp':1000},{'from_minor':1000,'rate_bp':2000}]}]}"));
    sale(sc, "2026-01-10T00:00:00Z", "S1", "P1", "C1", "x", 800);
    static const char jan[] =
        HDR "2026-01,P1,1,2026-01,sale,S1,3,2026-01-10T00:00:00Z,br@1#0,800,80,USD\n";
    expect_run(sc, "2026-01", 0, jan);
    closed(sc, "2026-02-01T00:00:00Z", "2026-01", jan);
    sale(sc, "2026-01-02T00:00:00Z", "S2", "P1", "C2", "x", 500);
    sale(sc, "2026-02-03T00:00:00Z", "S3", "P1", "C3", "x", 100);
    expect_run(sc, "2026-02", 0,
               HDR "2026-02,P1,1,2026-01,sale,S2,5,2026-01-02T00:00:00Z,br@1#0,500,50,USD\n"
                   "2026-02,P1,2,2026-01,sale,S1,3,2026-01-10T00:00:00Z,br@1#0,800,30,USD\n"
                   "2026-02,P1,3,2026-02,sale,S3,6,2026-02-03T00:00:00Z,br@1#0,100,10,USD\n");
    script_free(sc);
}

/* v1 from 01-01 at 10 %, v2 from 03-01 at 20 %. January (S1 01-10, S0 01-20, 1000 each,
 * 100 each) closed; February closed empty. Then v3 from 01-15 at 30 % corrects January:
 * S1 (01-10) keeps v1; S0 (01-20) moves to v3: 300, paid 100 -> +200 with v3's rule.
 * March S2 keeps v2 (latest effective_from <= 03-05 is v2's 03-01): 200. */
Test(golden, backdated_plan_correction_after_close)
{
    script_t *sc = month_utc();
    reg(sc, "P1", "gold", "std");
    plan_pub(sc, "2025-12-01T00:00:00Z", "v1", J(sc, FLAT("std", 1, "2026-01-01", 1000, "")));
    plan_pub(sc, "2025-12-01T00:00:00Z", "v2", J(sc, FLAT("std", 2, "2026-03-01", 2000, "")));
    sale(sc, "2026-01-10T00:00:00Z", "S1", "P1", "C1", "x", 1000);
    sale(sc, "2026-01-20T00:00:00Z", "S0", "P1", "C2", "x", 1000);
    static const char jan[] =
        HDR "2026-01,P1,1,2026-01,sale,S1,4,2026-01-10T00:00:00Z,std@1#0,1000,100,USD\n"
            "2026-01,P1,2,2026-01,sale,S0,5,2026-01-20T00:00:00Z,std@1#0,1000,100,USD\n";
    expect_run(sc, "2026-01", 0, jan);
    closed(sc, "2026-02-01T00:00:00Z", "2026-01", jan);
    expect_run(sc, "2026-02", 0, HDR); /* nothing new: the empty statement */
    closed(sc, "2026-03-01T00:00:00Z", "2026-02", HDR);
    plan_pub(sc, "2026-03-02T00:00:00Z", "v3", J(sc, FLAT("std", 3, "2026-01-15", 3000, "")));
    sale(sc, "2026-03-05T00:00:00Z", "S2", "P1", "C3", "x", 1000);
    acr_statement_t st;
    acr_err_t err;
    ASSERT_EQ_MSG(script_run(sc, "2026-03", 0, &st, &err), 0, "%s", err.msg);
    const char *want =
        HDR "2026-03,P1,1,2026-01,sale,S0,5,2026-01-20T00:00:00Z,std@3#0,1000,200,USD\n"
            "2026-03,P1,2,2026-03,sale,S2,9,2026-03-05T00:00:00Z,std@2#0,1000,200,USD\n";
    ASSERT_BYTES_EQ(st.csv, st.csv_len, want, strlen(want));
    ASSERT_EQ(st.plans_used_count, 2);
    ASSERT_STR_EQ(st.plans_used[0], "std@2");
    ASSERT_STR_EQ(st.plans_used[1], "std@3");
    acr_statement_destroy(&st);
    /* the closed runs reproduce their stored bytes */
    expect_run(sc, "2026-01", 5, jan);
    expect_run(sc, "2026-02", 6, HDR);
    script_free(sc);
}

/* 10 % flat. Jan S1 1000 -> 100, closed. Feb S2 2000 -> 200, closed. March: refund of S1
 * (500: rhe(500 x 100 / 1000) = 50 -> -50, origin March) and a late January sale S3 1000
 * -> 100 (cum 1000 at 10 %), closed. April: only a +5 adjustment is new. */
Test(golden, three_successive_closes)
{
    script_t *sc = month_utc();
    reg(sc, "P1", "gold", "flat");
    plan_pub(sc, "2025-12-01T00:00:00Z", "pl", J(sc, FLAT("flat", 1, "2026-01-01", 1000, "")));
    sale(sc, "2026-01-05T00:00:00Z", "S1", "P1", "C1", "x", 1000);
    static const char jan[] =
        HDR "2026-01,P1,1,2026-01,sale,S1,3,2026-01-05T00:00:00Z,flat@1#0,1000,100,USD\n";
    closed(sc, "2026-02-01T00:00:00Z", "2026-01", jan);
    sale(sc, "2026-02-03T00:00:00Z", "S2", "P1", "C2", "x", 2000);
    static const char feb[] =
        HDR "2026-02,P1,1,2026-02,sale,S2,5,2026-02-03T00:00:00Z,flat@1#0,2000,200,USD\n";
    closed(sc, "2026-03-01T00:00:00Z", "2026-02", feb);
    refund(sc, "2026-03-01T00:00:00Z", "R1", "S1", 500);
    sale(sc, "2026-01-20T00:00:00Z", "S3", "P1", "C3", "x", 1000);
    static const char mar[] =
        HDR "2026-03,P1,1,2026-01,sale,S3,8,2026-01-20T00:00:00Z,flat@1#0,1000,100,USD\n"
            "2026-03,P1,2,2026-03,clawback,R1,7,2026-03-01T00:00:00Z,flat@1#0,500,-50,USD\n";
    closed(sc, "2026-04-01T00:00:00Z", "2026-03", mar);
    adjust(sc, "2026-04-02T00:00:00Z", "adj-1", "P1", 5);
    expect_run(sc, "2026-01", 3, jan);
    expect_run(sc, "2026-02", 5, feb);
    expect_run(sc, "2026-03", 8, mar);
    expect_run(sc, "2026-04", 0,
               HDR "2026-04,P1,1,2026-04,adjustment,adj-1,10,2026-04-02T00:00:00Z,,0,5,USD\n");
    script_free(sc);
}

#define TIERS                                                                                      \
    "{'plan_id':'tiers','version':1,'effective_from':'2026-01-01','currency':'USD',"               \
    "'ceiling_bp':2000,'rules':[{'match':{'tier':'gold'},'brackets':[{'from_minor':0,"             \
    "'rate_bp':2000}]},{'match':{},'brackets':[{'from_minor':0,'rate_bp':1000}]}]}"

/* gold 20 %, anything else 10 %. S1 (silver) 1000 -> 100, closed. A backdated update
 * (at 01-01) makes P1 gold: S1 -> 200, delta +100 with the gold rule. A future-dated update
 * (02-15) to platinum: S2 (02-10, gold) 500 -> 100; S3 (02-20, platinum) 500 -> 50. */
Test(golden, backdated_tier_change)
{
    script_t *sc = month_utc();
    reg(sc, "P1", "silver", "tiers");
    plan_pub(sc, "2025-12-01T00:00:00Z", "pl", J(sc, TIERS));
    sale(sc, "2026-01-10T00:00:00Z", "S1", "P1", "C1", "x", 1000);
    static const char jan[] =
        HDR "2026-01,P1,1,2026-01,sale,S1,3,2026-01-10T00:00:00Z,tiers@1#1,1000,100,USD\n";
    expect_run(sc, "2026-01", 0, jan);
    closed(sc, "2026-02-01T00:00:00Z", "2026-01", jan);
    partner_upd(sc, "2026-01-01T00:00:00Z", "u-1", "P1", "gold", NULL, NULL);
    partner_upd(sc, "2026-02-15T00:00:00Z", "u-2", "P1", "platinum", NULL, NULL);
    sale(sc, "2026-02-10T00:00:00Z", "S2", "P1", "C2", "x", 500);
    sale(sc, "2026-02-20T00:00:00Z", "S3", "P1", "C3", "x", 500);
    expect_run(sc, "2026-02", 0,
               HDR "2026-02,P1,1,2026-01,sale,S1,3,2026-01-10T00:00:00Z,tiers@1#0,1000,100,USD\n"
                   "2026-02,P1,2,2026-02,sale,S2,7,2026-02-10T00:00:00Z,tiers@1#0,500,100,USD\n"
                   "2026-02,P1,3,2026-02,sale,S3,8,2026-02-20T00:00:00Z,tiers@1#1,500,50,USD\n");
    script_free(sc);
}

/* gold_only pays gold partners 10 %. S1 1000 -> 100, closed. A backdated update makes P1
 * silver: S1 is unplanned now, its now-side line is gone, so the run emits -100 with the
 * fields of the closed line (rule and basis as printed and paid). */
Test(golden, paid_line_gone_takes_closed_fields)
{
    script_t *sc = month_utc();
    reg(sc, "P1", "gold", "g");
    plan_pub(sc, "2025-12-01T00:00:00Z", "pl",
             J(sc, "{'plan_id':'g','version':1,'effective_from':'2026-01-01','currency':'USD',"
                   "'ceiling_bp':1000,'rules':[{'match':{'tier':'gold'},'brackets':[{"
                   "'from_minor':0,'rate_bp':1000}]}]}"));
    sale(sc, "2026-01-10T00:00:00Z", "S1", "P1", "C1", "x", 1000);
    static const char jan[] =
        HDR "2026-01,P1,1,2026-01,sale,S1,3,2026-01-10T00:00:00Z,g@1#0,1000,100,USD\n";
    expect_run(sc, "2026-01", 0, jan);
    closed(sc, "2026-02-01T00:00:00Z", "2026-01", jan);
    partner_upd(sc, "2025-12-15T00:00:00Z", "u-1", "P1", "silver", NULL, NULL);
    acr_statement_t st;
    acr_err_t err;
    ASSERT_EQ_MSG(script_run(sc, "2026-02", 0, &st, &err), 0, "%s", err.msg);
    const char *want =
        HDR "2026-02,P1,1,2026-01,sale,S1,3,2026-01-10T00:00:00Z,g@1#0,1000,-100,USD\n";
    ASSERT_BYTES_EQ(st.csv, st.csv_len, want, strlen(want));
    ASSERT_EQ(st.unplanned_count, 1);
    ASSERT_STR_EQ(st.unplanned[0].sale_id, "S1");
    acr_statement_destroy(&st);
    script_free(sc);
}

/* 10 %, target 2000:300. January S1 1500 -> 150, net below target; closed. Late S2 600
 * -> 60; net 2100 reaches the target: +300, a prior-period target_bonus line. */
Test(golden, target_reached_by_late_sale)
{
    script_t *sc = month_utc();
    reg(sc, "P1", "gold", "t");
    plan_pub(sc, "2025-12-01T00:00:00Z", "pl",
             J(sc, FLAT("t", 1, "2026-01-01", 1000,
                        ",'targets':[{'net_revenue_minor':2000,'bonus_minor':300}]")));
    sale(sc, "2026-01-10T00:00:00Z", "S1", "P1", "C1", "x", 1500);
    static const char jan[] =
        HDR "2026-01,P1,1,2026-01,sale,S1,3,2026-01-10T00:00:00Z,t@1#0,1500,150,USD\n";
    expect_run(sc, "2026-01", 0, jan);
    closed(sc, "2026-02-01T00:00:00Z", "2026-01", jan);
    sale(sc, "2026-01-11T00:00:00Z", "S2", "P1", "C2", "x", 600);
    expect_run(sc, "2026-02", 0,
               HDR "2026-02,P1,1,2026-01,sale,S2,5,2026-01-11T00:00:00Z,t@1#0,600,60,USD\n"
                   "2026-02,P1,2,2026-01,target_bonus,2026-01,,,t@1,2100,300,USD\n");
    script_free(sc);
}

/* 10 %, target 900:50. January S1 1000 -> 100 and target 50 (net 1000). The February
 * refund of 200 counts in February's net, not January's: January keeps its target; the
 * clawback rhe(200 x 100 / 1000) = 20 has origin February. */
Test(golden, refund_counts_in_its_own_period)
{
    script_t *sc = month_utc();
    reg(sc, "P1", "gold", "t");
    plan_pub(sc, "2025-12-01T00:00:00Z", "pl",
             J(sc, FLAT("t", 1, "2026-01-01", 1000,
                        ",'targets':[{'net_revenue_minor':900,'bonus_minor':50}]")));
    sale(sc, "2026-01-10T00:00:00Z", "S1", "P1", "C1", "x", 1000);
    refund(sc, "2026-02-10T00:00:00Z", "R1", "S1", 200);
    expect_run(sc, "2026-02", 0,
               HDR "2026-02,P1,1,2026-01,sale,S1,3,2026-01-10T00:00:00Z,t@1#0,1000,100,USD\n"
                   "2026-02,P1,2,2026-01,target_bonus,2026-01,,,t@1,1000,50,USD\n"
                   "2026-02,P1,3,2026-02,clawback,R1,4,2026-02-10T00:00:00Z,t@1#0,200,-20,USD\n");
    script_free(sc);
}

/* Same effective_from: the highest version wins (v2, 20 %); v3 from 02-01 does not reach
 * a January sale. 1000 -> 200. */
Test(golden, same_effective_from_highest_version)
{
    script_t *sc = month_utc();
    reg(sc, "P1", "gold", "x");
    plan_pub(sc, "2025-12-01T00:00:00Z", "v1", J(sc, FLAT("x", 1, "2026-01-01", 1000, "")));
    plan_pub(sc, "2025-12-01T00:00:00Z", "v2", J(sc, FLAT("x", 2, "2026-01-01", 2000, "")));
    plan_pub(sc, "2025-12-01T00:00:00Z", "v3", J(sc, FLAT("x", 3, "2026-02-01", 3000, "")));
    sale(sc, "2026-01-31T23:59:59.999Z", "S1", "P1", "C1", "x", 1000);
    expect_run(sc, "2026-01", 0,
               HDR "2026-01,P1,1,2026-01,sale,S1,5,2026-01-31T23:59:59.999Z,x@2#0,1000,200,USD\n");
    script_free(sc);
}

/* Rules by product, by kind + region, and a catch-all. P1 is a broker in EU: support
 * -> rule 0 (5 %), cloud -> rule 1 (7 %). P2, a broker with no region, matches neither
 * (an absent attribute matches no value): rule 2 (1 %). 10000 each. */
Test(golden, match_keys)
{
    script_t *sc = month_utc();
    partner_reg(sc, "2025-12-01T00:00:00Z", "P1", "broker", "gold", "m", "USD", "EU");
    partner_reg(sc, "2025-12-01T00:00:00Z", "P2", "broker", "gold", "m", "USD", NULL);
    plan_pub(sc, "2025-12-01T00:00:00Z", "pl",
             J(sc, "{'plan_id':'m','version':1,'effective_from':'2026-01-01','currency':'USD',"
                   "'ceiling_bp':1000,'rules':[{'match':{'product':'support'},'brackets':[{"
                   "'from_minor':0,'rate_bp':500}]},{'match':{'kind':'broker','region':'EU'},"
                   "'brackets':[{'from_minor':0,'rate_bp':700}]},{'match':{},'brackets':[{"
                   "'from_minor':0,'rate_bp':100}]}]}"));
    sale(sc, "2026-01-02T00:00:00Z", "A", "P1", "C1", "support", 10000);
    sale(sc, "2026-01-03T00:00:00Z", "B", "P1", "C1", "cloud", 10000);
    sale(sc, "2026-01-04T00:00:00Z", "C", "P2", "C1", "cloud", 10000);
    expect_run(sc, "2026-01", 0,
               HDR "2026-01,P1,1,2026-01,sale,A,4,2026-01-02T00:00:00Z,m@1#0,10000,500,USD\n"
                   "2026-01,P1,2,2026-01,sale,B,5,2026-01-03T00:00:00Z,m@1#1,10000,700,USD\n"
                   "2026-01,P2,1,2026-01,sale,C,6,2026-01-04T00:00:00Z,m@1#2,10000,100,USD\n");
    script_free(sc);
}

/* As of seq 4 the second sale does not exist; partners sort bytewise ("P10" < "P2"). */
Test(golden, as_of_and_partner_order)
{
    script_t *sc = month_utc();
    reg(sc, "P2", "gold", "f");
    reg(sc, "P10", "gold", "f");
    plan_pub(sc, "2025-12-01T00:00:00Z", "pl", J(sc, FLAT("f", 1, "2026-01-01", 1000, "")));
    sale(sc, "2026-01-02T00:00:00Z", "A", "P2", "C1", "x", 100);
    sale(sc, "2026-01-03T00:00:00Z", "B", "P10", "C1", "x", 100);
    expect_run(sc, "2026-01", 4,
               HDR "2026-01,P2,1,2026-01,sale,A,4,2026-01-02T00:00:00Z,f@1#0,100,10,USD\n");
    expect_run(sc, "2026-01", 0,
               HDR "2026-01,P10,1,2026-01,sale,B,5,2026-01-03T00:00:00Z,f@1#0,100,10,USD\n"
                   "2026-01,P2,1,2026-01,sale,A,4,2026-01-02T00:00:00Z,f@1#0,100,10,USD\n");
    script_free(sc);
}

/* The empty statement is the header alone; its fingerprint is what `xxh128sum` prints
 * for a file holding only the header line. */
Test(golden, empty_statement)
{
    script_t *sc = month_utc();
    acr_statement_t st;
    acr_err_t err;
    ASSERT_EQ_MSG(script_run(sc, "2026-01", 0, &st, &err), 0, "%s", err.msg);
    ASSERT_BYTES_EQ(st.csv, st.csv_len, HDR, strlen(HDR));
    ASSERT_EQ(st.line_count, 0);
    ASSERT_EQ(st.partner_count, 0);
    FILE *f = popen("printf '%s' '" HDR "' | xxh128sum", "r");
    if (f != NULL) {
        char line[128] = "";
        if (fgets(line, sizeof line, f) != NULL && strlen(line) >= 32) {
            line[32] = '\0';
            ASSERT_STR_EQ(st.fingerprint, line);
        }
        pclose(f);
    }
    acr_statement_destroy(&st);
    script_free(sc);
}

/* P1 moves from plan a to plan b on 01-15 (both 10 %; only b has a target 100:9).
 * S1 (01-10) uses a: 100. S2 (01-20) uses b at cum 1000 (cum counts every sale of the
 * period, whatever its plan): 100. The target uses the plan as of the period's end: b,
 * net 2000 -> 9. */
Test(golden, period_level_plan_as_of_period_end)
{
    script_t *sc = month_utc();
    reg(sc, "P1", "gold", "a");
    plan_pub(sc, "2025-12-01T00:00:00Z", "pa", J(sc, FLAT("a", 1, "2026-01-01", 1000, "")));
    plan_pub(sc, "2025-12-01T00:00:00Z", "pb",
             J(sc, FLAT("b", 1, "2026-01-01", 1000,
                        ",'targets':[{'net_revenue_minor':100,'bonus_minor':9}]")));
    partner_upd(sc, "2026-01-15T00:00:00Z", "u-1", "P1", NULL, "b", NULL);
    sale(sc, "2026-01-10T00:00:00Z", "S1", "P1", "C1", "x", 1000);
    sale(sc, "2026-01-20T00:00:00Z", "S2", "P1", "C1", "x", 1000);
    expect_run(sc, "2026-01", 0,
               HDR "2026-01,P1,1,2026-01,sale,S1,5,2026-01-10T00:00:00Z,a@1#0,1000,100,USD\n"
                   "2026-01,P1,2,2026-01,sale,S2,6,2026-01-20T00:00:00Z,b@1#0,1000,100,USD\n"
                   "2026-01,P1,3,2026-01,target_bonus,2026-01,,,b@1,2000,9,USD\n");
    script_free(sc);
}

/* What-if: v2 (20 %, from 01-01) taken as published after X: 1000 -> 200. */
Test(golden, whatif_plan)
{
    script_t *sc = month_utc();
    reg(sc, "P1", "gold", "w");
    plan_pub(sc, "2025-12-01T00:00:00Z", "pl", J(sc, FLAT("w", 1, "2026-01-01", 1000, "")));
    sale(sc, "2026-01-02T00:00:00Z", "S1", "P1", "C1", "x", 1000);
    acr_comm_config_t cfg = {ACR_PERIOD_MONTH, 0, 0, sc->n};
    cr_assert(acr_period_parse(ACR_PERIOD_MONTH, "2026-01", 7, &cfg.run_period));
    acr_comm_t *c = acr_comm_new(&cfg);
    acr_err_t err;
    for (size_t i = 0; i < sc->n; i++)
        ASSERT_EQ(acr_comm_feed(c, &sc->ev[i], &err), 0);
    const char *v2 = J(sc, FLAT("w", 2, "2026-01-01", 2000, ""));
    ASSERT_EQ_MSG(acr_comm_add_whatif_plan(c, v2, strlen(v2), &err), 0, "%s", err.msg);
    /* validation: stale version, another currency, a bad document, a rate above ceiling */
    ASSERT_EQ(acr_comm_add_whatif_plan(c, v2, strlen(v2), &err), ACR_ESTALE_VERSION);
    const char *jpy = J(sc, "{'plan_id':'w','version':3,'effective_from':'2026-01-01',"
                            "'currency':'JPY','ceiling_bp':100,'rules':[{'match':{},"
                            "'brackets':[{'from_minor':0,'rate_bp':1}]}]}");
    ASSERT_EQ(acr_comm_add_whatif_plan(c, jpy, strlen(jpy), &err), ACR_ECURRENCY_MISMATCH);
    const char *other = J(sc, "{'plan_id':'new','version':1,'effective_from':'2026-01-01',"
                              "'currency':'EUR','ceiling_bp':100,'rules':[{'match':{},"
                              "'brackets':[{'from_minor':0,'rate_bp':1}]}]}");
    ASSERT_EQ_MSG(acr_comm_add_whatif_plan(c, other, strlen(other), &err), 0, "%s", err.msg);
    ASSERT_EQ(acr_comm_add_whatif_plan(c, "{", 1, &err), ACR_EINVALID_PLAN);
    const char *high = J(sc, "{'plan_id':'w','version':9,'effective_from':'2026-01-01',"
                             "'currency':'USD','ceiling_bp':100,'rules':[{'match':{},"
                             "'brackets':[{'from_minor':0,'rate_bp':101}]}]}");
    ASSERT_EQ(acr_comm_add_whatif_plan(c, high, strlen(high), &err), ACR_EABOVE_CEILING);
    acr_statement_t st;
    ASSERT_EQ_MSG(acr_comm_finish(c, &st, &err), 0, "%s", err.msg);
    const char *want =
        HDR "2026-01,P1,1,2026-01,sale,S1,3,2026-01-02T00:00:00Z,w@2#0,1000,200,USD\n";
    ASSERT_BYTES_EQ(st.csv, st.csv_len, want, strlen(want));
    acr_comm_free(c); /* the statement owns its strings: it outlives the processor */
    ASSERT_STR_EQ(st.lines[0].rule, "w@2#0");
    acr_statement_destroy(&st);
    script_free(sc);
}

/* The run of period fails with overflow, its message naming partner and named_period. */
static void expect_overflow(const script_t *sc, const char *period, const char *partner,
                            const char *named_period)
{
    acr_statement_t st;
    acr_err_t err;
    ASSERT_EQ(script_run(sc, period, 0, &st, &err), ACR_EOVERFLOW);
    cr_assert(strstr(err.msg, partner) != NULL && strstr(err.msg, named_period) != NULL, "%s",
              err.msg);
}

/* Paid sums are checked: INT64_MAX paid in January's close plus 1 in February's close
 * for the same identity leaves int64 -> overflow naming partner and origin period. */
Test(golden, overflow_in_paid_sums)
{
    script_t *sc = month_utc();
    reg(sc, "P1", "gold", "f");
    closed(sc, "2026-02-01T00:00:00Z", "2026-01",
           HDR "2026-01,P1,1,2026-01,adjustment,a1,2,2026-01-05T00:00:00Z,,0,"
               "9223372036854775807,USD\n");
    closed(sc, "2026-03-01T00:00:00Z", "2026-02",
           HDR "2026-02,P1,1,2026-01,adjustment,a1,2,2026-01-05T00:00:00Z,,0,1,USD\n");
    expect_overflow(sc, "2026-03", "P1", "2026-01");
    script_free(sc);
}

/* Two paid identities of 5 * 10^18 whose now-side is gone: deltas -5e18 each, and the
 * partner total -10^19 leaves int64 -> overflow naming P1 and the run's period. */
Test(golden, overflow_in_statement_totals)
{
    script_t *sc = month_utc();
    reg(sc, "P1", "gold", "f");
    closed(sc, "2026-02-01T00:00:00Z", "2026-01",
           HDR "2026-01,P1,1,2026-01,adjustment,a1,2,2026-01-05T00:00:00Z,,0,"
               "5000000000000000000,USD\n"
               "2026-01,P1,2,2026-01,adjustment,a2,3,2026-01-06T00:00:00Z,,0,"
               "5000000000000000000,USD\n");
    expect_overflow(sc, "2026-02", "P1", "2026-02");
    script_free(sc);
}

/* 9300 sales of 10^15 in one period: the gross cum passes INT64_MAX (~9.22 x 10^18)
 * at the 9224th sale -> overflow naming P1 and 2026-01, never a wrapped amount. */
Test(golden, overflow_in_period_revenue)
{
    static char ids[9300][16];
    script_t *sc = month_utc();
    reg(sc, "P1", "gold", "f");
    plan_pub(sc, "2025-12-01T00:00:00Z", "pl", J(sc, FLAT("f", 1, "2026-01-01", 1, "")));
    for (int i = 0; i < 9300; i++) {
        snprintf(ids[i], sizeof ids[i], "s%d", i);
        sale(sc, "2026-01-02T00:00:00Z", ids[i], "P1", "C1", "x", 1000000000000000LL);
    }
    expect_overflow(sc, "2026-01", "P1", "2026-01");
    /* 9000 of them fit: 9 x 10^18 */
    acr_statement_t st;
    acr_err_t err;
    ASSERT_EQ_MSG(script_run(sc, "2026-01", 9002, &st, &err), 0, "%s", err.msg);
    ASSERT_EQ(st.line_count, 9000);
    acr_statement_destroy(&st);
    script_free(sc);
}

/* Three partners overflow their period revenue: P1 (first in output order) at its 8,955th
 * sale, P2 and P3 at their second. The run names P1, whether the finish runs on one thread
 * or on several (script_run_ex compares the two, code and message), where a helper meets
 * P2's or P3's overflow long before P1's is found. */
Test(golden, overflow_reported_in_partner_order)
{
    static char ids[9000][16];
    script_t *sc = month_utc();
    reg(sc, "P1", "gold", "f");
    reg(sc, "P2", "gold", "f");
    reg(sc, "P3", "gold", "f");
    plan_pub(sc, "2025-12-01T00:00:00Z", "pl", J(sc, FLAT("f", 1, "2026-01-01", 1, "")));
    static const char *const quick[] = {"q1", "q2", "q3", "q4"};
    for (int i = 0; i < 4; i++) /* 2 x 5 * 10^18 each: INT64_MAX passed at once */
        sale(sc, "2026-01-02T00:00:00Z", quick[i], i < 2 ? "P2" : "P3", "C1", "x",
             5000000000000000000LL);
    for (int i = 0; i < 9000; i++) {
        snprintf(ids[i], sizeof ids[i], "s%d", i);
        sale(sc, "2026-01-02T00:00:00Z", ids[i], "P1", "C1", "x", 1030000000000000LL);
    }
    expect_overflow(sc, "2026-01", "P1", "2026-01");
    script_free(sc);
}

/* The finish of a processor fed one stored statement: its return code. */
static int finish_with_closed(const char *csv, acr_err_t *err)
{
    acr_comm_config_t cfg = {ACR_PERIOD_MONTH, 0, 700, 10};
    acr_comm_t *c = acr_comm_new(&cfg);
    int rc = acr_comm_add_closed(c, csv, strlen(csv), err);
    if (rc == 0) {
        acr_statement_t st;
        memset(&st, 0, sizeof st);
        if ((rc = acr_comm_finish(c, &st, err)) == 0)
            acr_statement_destroy(&st);
    }
    acr_comm_free(c);
    return rc;
}

/* A stored statement that does not parse is corrupt: a line without its newline, without a
 * partner_id or out of partner_id order when it is added; any other field when the finish
 * reads the partner's lines, naming the line. */
Test(golden, corrupt_closed_statement)
{
    acr_comm_config_t cfg = {ACR_PERIOD_MONTH, 0, 700, 10};
    acr_comm_t *c = acr_comm_new(&cfg);
    acr_err_t err;
    ASSERT_EQ(acr_comm_add_closed(c, "nope\n", 5, &err), ACR_ECORRUPT);
    const char *nonl = HDR "2026-01,P1,1,2026-01,adjustment,a,2,2026-01-05T00:00:00Z,,0,1,USD";
    ASSERT_EQ(acr_comm_add_closed(c, nonl, strlen(nonl), &err), ACR_ECORRUPT);
    ASSERT_EQ(acr_comm_add_closed(c, HDR "2026-01\n", strlen(HDR) + 8, &err), ACR_ECORRUPT);
    const char *order = HDR "2026-01,P2,1,2026-01,adjustment,a,2,2026-01-05T00:00:00Z,,0,1,USD\n"
                            "2026-01,P1,1,2026-01,adjustment,b,3,2026-01-05T00:00:00Z,,0,1,USD\n";
    ASSERT_EQ(acr_comm_add_closed(c, order, strlen(order), &err), ACR_ECORRUPT);
    cr_assert(strstr(err.msg, "line 3") != NULL, "%s", err.msg);
    ASSERT_EQ(acr_comm_add_closed(c, HDR, strlen(HDR), &err), 0);
    acr_comm_free(c);
    ASSERT_EQ(finish_with_closed(HDR "2026-01,P1,1,2026-01,sale,S1\n", &err), ACR_ECORRUPT);
    cr_assert(strstr(err.msg, "line 2 does not parse") != NULL, "%s", err.msg);
    ASSERT_EQ(finish_with_closed(HDR "2026-01,P1,1,2026-01,adjustment,a,2,2026-01-05T00:00:00Z,,"
                                     "0,1,USD\n2026-01,P1,2,2026-01,bonus,a,2,"
                                     "2026-01-05T00:00:00Z,,0,1,USD\n",
                                 &err),
              ACR_ECORRUPT);
    cr_assert(strstr(err.msg, "line 3 does not parse") != NULL, "%s", err.msg);
    /* the same lines, well formed: paid and not earned now, so they come back negative */
    ASSERT_EQ(finish_with_closed(HDR "2026-01,P1,1,2026-01,adjustment,a,2,2026-01-05T00:00:00Z,,"
                                     "0,1,USD\n",
                                 &err),
              0);
}

/* ---- the KPI's window-only run, over random histories ---- */

static uint64_t wrng;
static uint32_t wrnd(uint32_t n)
{
    wrng = wrng * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)((wrng >> 33) % n);
}

/* Per partner, the lines of origin >= lo of a full run (closes ignored, nothing skipped) are
 * what a window-only run from lo sums: with brackets, the new-customer bonus, targets, caps,
 * adjustments and refunds in later months of sales of earlier ones (the clawback needs the
 * earlier month's brackets), all recorded out of business-time order. */
Test(property, window_only_sums_the_window, .timeout = 120)
{
    static char strs[400][24];
    static const char *const pids[] = {"P1", "P2", "P3"};
    for (uint64_t seed = 1; seed <= 60; seed++) {
        wrng = seed * 0x9E3779B97F4A7C15ull;
        size_t ns = 0;
        script_t *sc = script_new(ACR_PERIOD_MONTH, "+00:00");
        for (int p = 0; p < 3; p++)
            partner_reg(sc, "2025-12-01T00:00:00Z", pids[p], "reseller",
                        wrnd(2) ? "gold" : "silver", "standard", "JPY", NULL);
        plan_pub(sc, "2025-12-01T00:00:00Z", "plan-1", STANDARD_PLAN);
        int64_t amount[64], refunded[64];
        int month[64], day[64], nsales = 0;
        for (int i = 0; i < 70; i++) {
            int kind = (int)wrnd(10);
            if (kind < 6 && nsales < 64) {
                month[nsales] = 1 + (int)wrnd(6);
                day[nsales] = 1 + (int)wrnd(20);
                amount[nsales] = 1 + (int64_t)wrnd(800000);
                refunded[nsales] = 0;
                snprintf(strs[ns], sizeof strs[0], "2026-%02d-%02dT%02d:00:00Z", month[nsales],
                         day[nsales], (int)wrnd(24));
                snprintf(strs[ns + 1], sizeof strs[0], "S%d", nsales);
                snprintf(strs[ns + 2], sizeof strs[0], "C%d", (int)wrnd(20));
                sale(sc, strs[ns], strs[ns + 1], pids[wrnd(3)], strs[ns + 2], "cloud",
                     amount[nsales]);
                ns += 3;
                nsales++;
            } else if (kind < 9 && nsales > 0) {
                int s = (int)wrnd((uint32_t)nsales);
                int64_t left = amount[s] - refunded[s];
                if (left <= 0)
                    continue;
                int64_t amt = 1 + (int64_t)wrnd((uint32_t)(left < 400000 ? left : 400000));
                refunded[s] += amt;
                int m = month[s] + (int)wrnd((uint32_t)(7 - month[s]));
                snprintf(strs[ns], sizeof strs[0], "2026-%02d-%02dT23:00:00Z", m,
                         m == month[s] ? day[s] + (int)wrnd(8) : 1 + (int)wrnd(28));
                snprintf(strs[ns + 1], sizeof strs[0], "r%d", i);
                snprintf(strs[ns + 2], sizeof strs[0], "S%d", s);
                refund(sc, strs[ns], strs[ns + 1], strs[ns + 2], amt);
                ns += 3;
            } else {
                snprintf(strs[ns], sizeof strs[0], "2026-%02d-%02dT12:00:00Z", 1 + (int)wrnd(6),
                         1 + (int)wrnd(28));
                snprintf(strs[ns + 1], sizeof strs[0], "a%d", i);
                adjust(sc, strs[ns], strs[ns + 1], pids[wrnd(3)], (int64_t)wrnd(20001) - 10000);
                ns += 2;
            }
        }
        acr_statement_t full;
        acr_err_t err;
        ASSERT_EQ_MSG(script_run(sc, "2026-06", 0, &full, &err), 0, "seed %llu: %s",
                      (unsigned long long)seed, err.msg);
        for (int m = 1; m <= 6; m++) {
            char per[] = "2026-00";
            int32_t lo;
            per[6] = (char)('0' + m);
            cr_assert(acr_period_parse(ACR_PERIOD_MONTH, per, 7, &lo));
            acr_comm_output_t o = {.omit_lines = true, .omit_csv = true, .window = true,
                                   .window_lo = lo, .window_only = true};
            acr_statement_t w;
            ASSERT_EQ_MSG(script_run_ex(sc, "2026-06", 0, m % 2 == 0, &o, &w, &err), 0,
                          "seed %llu from %s: %s", (unsigned long long)seed, per, err.msg);
            for (int p = 0; p < 3; p++) {
                int64_t want = 0, got = 0;
                for (size_t k = 0; k < full.line_count; k++)
                    if (full.lines[k].origin_period >= lo &&
                        strcmp(full.lines[k].partner_id, pids[p]) == 0)
                        want += full.lines[k].amount_minor;
                for (size_t k = 0; k < w.partner_count; k++)
                    if (strcmp(w.partners[k].partner_id, pids[p]) == 0)
                        got = (int64_t)w.partners[k].window_minor;
                ASSERT_EQ_MSG(got, want, "seed %llu, %s from %s", (unsigned long long)seed,
                              pids[p], per);
            }
            acr_statement_destroy(&w);
        }
        acr_statement_destroy(&full);
        script_free(sc);
    }
}

/* ---- restatement over random histories ---- */

#define RESTATE_PLAN(V, GOLD_BP)                                                                   \
    "{\"plan_id\":\"standard\",\"version\":" #V ",\"effective_from\":\"2026-01-01\","              \
    "\"currency\":\"JPY\",\"ceiling_bp\":4000,\"rules\":[{\"match\":{\"tier\":\"gold\"},"          \
    "\"brackets\":[{\"from_minor\":0,\"rate_bp\":" #GOLD_BP "},"                                   \
    "{\"from_minor\":1000000,\"rate_bp\":2500}]}"                                                  \
    ",{\"match\":{\"tier\":\"silver\"},\"brackets\":[{\"from_minor\":0,\"rate_bp\":1000}]}],"      \
    "\"clawback_days\":90,\"new_customer_bonus_minor\":10000,\"targets\":[{"                       \
    "\"net_revenue_minor\":1500000,\"bonus_minor\":50000}],\"cap_bp\":3000}"

/* Adds every line of st to sums: per identity (partner, origin, kind, source), the sum of its
 * amounts, after checking that st has one line per identity at most. Linear searches: an
 * independent path, not the processor's. */
typedef struct ident_sum {
    char partner[8], source[24];
    int32_t origin;
    unsigned kind;
    int64_t amount;
} ident_sum_t;

static size_t sum_lines(ident_sum_t *sums, size_t n, const acr_statement_t *st)
{
    for (size_t k = 0; k < st->line_count; k++) {
        const acr_line_t *l = &st->lines[k];
        for (size_t j = 0; j < k; j++) /* one line per identity in a statement: now - paid */
            cr_assert(!(st->lines[j].origin_period == l->origin_period &&
                        st->lines[j].kind == l->kind &&
                        strcmp(st->lines[j].partner_id, l->partner_id) == 0 &&
                        strcmp(st->lines[j].source_id, l->source_id) == 0),
                      "two lines of %s %s in one statement", l->partner_id, l->source_id);
        size_t i = 0;
        while (i < n && !(sums[i].origin == l->origin_period && sums[i].kind == l->kind &&
                          strcmp(sums[i].partner, l->partner_id) == 0 &&
                          strcmp(sums[i].source, l->source_id) == 0))
            i++;
        if (i == n) {
            cr_assert(n < 4096);
            memset(&sums[n], 0, sizeof sums[n]);
            snprintf(sums[n].partner, sizeof sums[n].partner, "%s", l->partner_id);
            snprintf(sums[n].source, sizeof sums[n].source, "%s", l->source_id);
            sums[n].origin = l->origin_period;
            sums[n].kind = l->kind;
            n++;
        }
        sums[i].amount += l->amount_minor;
    }
    return n;
}

/* commissions.md: a run of U emits, per identity, now(O) - paid(O). So over a history with
 * closes, the closed statements plus the last run sum, per identity, to the lines of a run
 * that ignores every close. Histories of three partners with sales, refunds, adjustments,
 * tier changes (to bronze, which no rule matches: lines that vanish and come back negative)
 * and a backdated plan correction, recorded out of business-time order after the closes of
 * January to May; the last run is June's. The processor pairs a partner's now-side lines
 * with its paid ones by walking both in statement order (paid.c), and runs every script on
 * one thread and on three (comm_fixture.h). */
Test(property, restatement_sums_to_now, .timeout = 120)
{
    static char strs[1200][32];
    static const char *const pids[] = {"P1", "P2", "P3"};
    static const char *const tiers[] = {"gold", "silver", "bronze"};
    static ident_sum_t got[4096], want[4096];
    size_t restated = 0, negative = 0;
    for (uint64_t seed = 1; seed <= 80; seed++) {
        wrng = seed * 0xD1B54A32D192ED03ull;
        size_t ns = 0, nclosed = 0;
        char *csvs[5];
        acr_statement_t closed_st[5];
        script_t *sc = script_new(ACR_PERIOD_MONTH, "+00:00");
        script_t *open = script_new(ACR_PERIOD_MONTH, "+00:00"); /* the same, no closes */
        script_t *both[] = {sc, open};
        for (int b = 0; b < 2; b++) {
            for (int p = 0; p < 3; p++)
                partner_reg(both[b], "2025-12-01T00:00:00Z", pids[p], "reseller",
                            p == 2 ? "silver" : "gold", "standard", "JPY", NULL);
            plan_pub(both[b], "2025-12-01T00:00:00Z", "plan-1", RESTATE_PLAN(1, 1500));
        }
        int64_t amount[96], refunded[96];
        int month[96], day[96], nsales = 0;
        for (int i = 0; i < 120; i++) {
            int kind = (int)wrnd(20), m = 1 + (int)wrnd(6);
            if (i > 0 && i % 20 == 0 && nclosed < 5) { /* close the next month, as of now */
                char per[] = "2026-00", at[24];
                per[6] = (char)('1' + nclosed);
                snprintf(at, sizeof at, "2026-%02d-01T00:00:00Z", (int)nclosed + 2);
                acr_err_t err;
                ASSERT_EQ_MSG(script_run(sc, per, 0, &closed_st[nclosed], &err), 0,
                              "seed %llu, close %s: %s", (unsigned long long)seed, per, err.msg);
                csvs[nclosed] = strndup(closed_st[nclosed].csv, closed_st[nclosed].csv_len);
                snprintf(strs[ns], sizeof strs[0], "%s", per);
                snprintf(strs[ns + 1], sizeof strs[0], "%s", at);
                closed(sc, strs[ns + 1], strs[ns], csvs[nclosed]);
                ns += 2;
                nclosed++;
            }
            /* business time: mostly at or after the last close's month, sometimes before */
            if (nclosed > 0 && wrnd(3) != 0 && m <= (int)nclosed)
                m = (int)nclosed + (int)wrnd((uint32_t)(7 - nclosed));
            for (int b = 0; b < 2; b++) {
                uint64_t keep = wrng; /* the same draws for both scripts */
                script_t *s = both[b];
                if (kind < 11 && nsales < 96) {
                    month[nsales] = m;
                    day[nsales] = 1 + (int)wrnd(20);
                    amount[nsales] = 1 + (int64_t)wrnd(900000);
                    refunded[nsales] = 0;
                    snprintf(strs[ns], sizeof strs[0], "2026-%02d-%02dT%02d:00:00Z", m,
                             day[nsales], (int)wrnd(24));
                    snprintf(strs[ns + 1], sizeof strs[0], "S%d", nsales);
                    snprintf(strs[ns + 2], sizeof strs[0], "C%d", (int)wrnd(12));
                    sale(s, strs[ns], strs[ns + 1], pids[wrnd(3)], strs[ns + 2], "cloud",
                         amount[nsales]);
                    if (b == 1) {
                        ns += 3;
                        nsales++;
                    }
                } else if (kind < 15 && nsales > 0) {
                    int k = (int)wrnd((uint32_t)nsales);
                    int64_t left = amount[k] - refunded[k];
                    int64_t amt = left > 0 ? 1 + (int64_t)wrnd((uint32_t)(left < 500000 ? left
                                                                                        : 500000))
                                           : 0;
                    int rm = month[k] + (int)wrnd((uint32_t)(7 - month[k]));
                    snprintf(strs[ns], sizeof strs[0], "2026-%02d-%02dT23:00:00Z", rm,
                             rm == month[k] ? day[k] + (int)wrnd(8) : 1 + (int)wrnd(28));
                    snprintf(strs[ns + 1], sizeof strs[0], "r%d", i);
                    snprintf(strs[ns + 2], sizeof strs[0], "S%d", k);
                    if (amt > 0)
                        refund(s, strs[ns], strs[ns + 1], strs[ns + 2], amt);
                    if (b == 1 && amt > 0) {
                        refunded[k] += amt;
                        ns += 3;
                    }
                } else if (kind < 18) {
                    snprintf(strs[ns], sizeof strs[0], "2026-%02d-%02dT12:00:00Z", m,
                             1 + (int)wrnd(28));
                    snprintf(strs[ns + 1], sizeof strs[0], "a%d", i);
                    adjust(s, strs[ns], strs[ns + 1], pids[wrnd(3)], (int64_t)wrnd(20001) - 10000);
                    ns += b == 1 ? 2 : 0;
                } else if (kind < 19) {
                    snprintf(strs[ns], sizeof strs[0], "2026-%02d-%02dT06:00:00Z", m,
                             1 + (int)wrnd(28));
                    snprintf(strs[ns + 1], sizeof strs[0], "u%d", i);
                    partner_upd(s, strs[ns], strs[ns + 1], pids[wrnd(3)], tiers[wrnd(3)], NULL,
                                NULL);
                    ns += b == 1 ? 2 : 0;
                } else {
                    snprintf(strs[ns], sizeof strs[0], "2026-%02d-01T00:00:00Z", m);
                    snprintf(strs[ns + 1], sizeof strs[0], "pl%d", i);
                    plan_pub(s, strs[ns], strs[ns + 1],
                             wrnd(2) ? RESTATE_PLAN(2, 1200) : RESTATE_PLAN(2, 1800));
                    ns += b == 1 ? 2 : 0;
                }
                if (b == 0)
                    wrng = keep;
            }
            cr_assert(ns + 4 < sizeof strs / sizeof strs[0]);
        }
        acr_statement_t last, all;
        acr_err_t err;
        ASSERT_EQ_MSG(script_run(sc, "2026-06", 0, &last, &err), 0, "seed %llu: %s",
                      (unsigned long long)seed, err.msg);
        ASSERT_EQ_MSG(script_run(open, "2026-06", 0, &all, &err), 0, "seed %llu: %s",
                      (unsigned long long)seed, err.msg);
        size_t ng = 0, nw = sum_lines(want, 0, &all);
        for (size_t k = 0; k < nclosed; k++)
            ng = sum_lines(got, ng, &closed_st[k]);
        ng = sum_lines(got, ng, &last);
        for (size_t i = 0; i < ng; i++) {
            int64_t w = 0;
            for (size_t j = 0; j < nw; j++)
                if (want[j].origin == got[i].origin && want[j].kind == got[i].kind &&
                    strcmp(want[j].partner, got[i].partner) == 0 &&
                    strcmp(want[j].source, got[i].source) == 0)
                    w = want[j].amount;
            ASSERT_EQ_MSG(got[i].amount, w, "seed %llu: %.7s %d %u %.23s",
                          (unsigned long long)seed, got[i].partner, got[i].origin, got[i].kind,
                          got[i].source);
        }
        for (size_t j = 0; j < nw; j++) { /* and no now-side line is missing */
            size_t i = 0;
            while (i < ng && !(want[j].origin == got[i].origin && want[j].kind == got[i].kind &&
                               strcmp(want[j].partner, got[i].partner) == 0 &&
                               strcmp(want[j].source, got[i].source) == 0))
                i++;
            ASSERT_EQ_MSG(i < ng, true, "seed %llu: %.7s %.23s missing",
                          (unsigned long long)seed, want[j].partner, want[j].source);
        }
        for (size_t k = 0; k < last.line_count; k++) /* prior-period lines, paid-only ones */
            restated += last.lines[k].origin_period < last.lines[last.line_count - 1].origin_period;
        for (size_t k = 0; k < last.line_count; k++)
            negative += last.lines[k].amount_minor < 0 && last.lines[k].kind == ACR_LINE_SALE;
        cr_assert(nclosed == 5, "seed %llu: %zu closes", (unsigned long long)seed, nclosed);
        for (size_t k = 0; k < nclosed; k++) {
            acr_statement_destroy(&closed_st[k]);
            free(csvs[k]);
        }
        acr_statement_destroy(&last);
        acr_statement_destroy(&all);
        script_free(sc);
        script_free(open);
    }
    /* the histories restate: closed months come back, and sale lines turn negative */
    cr_assert(restated > 200 && negative > 20, "restated %zu, negative sale lines %zu", restated,
              negative);
}
