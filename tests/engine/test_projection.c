/* test_projection.c - the read models through the real engine: golden
 * scenarios computed by hand (a deal through every stage, channel conflict,
 * win rate and medians, local-midnight boundaries at +09:00, quarters, a
 * backdated first sale, a redefined pipeline, commissions of the worked
 * example), byte-identical rebuilds, rejected batches that change nothing,
 * and a seeded random property test. */
#include <unistd.h>
#include <xxhash.h>

#include "../../engine/store/store_internal.h" /* the table list, to fingerprint derived tables */
#include "accrue/date.h"
#include "accrue/money.h"
#include "accrue/log.h"
#include "accrue/payout.h"
#include "accrue/projection.h"
#include "test_util.h"

/* ---- Helpers --------------------------------------------------------------------- */

static char g_dir[64];

static acr_ledger_t *ledger_new(acr_period_kind_t kind, const char *offset)
{
    snprintf(g_dir, sizeof g_dir, "/tmp/acr-proj-XXXXXX");
    cr_assert_not_null(mkdtemp(g_dir));
    acr_config_t cfg = {.period_kind = kind};
    memcpy(cfg.ledger_id, "0123456789abcdef", 16);
    cr_assert(acr_offset_parse(offset, strlen(offset), &cfg.utc_offset_min));
    acr_err_t err;
    char path[96];
    snprintf(path, sizeof path, "%s/l", g_dir);
    ASSERT_EQ_MSG(acr_ledger_create(path, &cfg, 0, &err), 0, "%s", err.msg);
    acr_ledger_t *l;
    ASSERT_EQ_MSG(acr_ledger_open(path, &l, &err), 0, "%s", err.msg);
    return l;
}

static void ledger_done(acr_ledger_t *l)
{
    acr_ledger_close(l);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", g_dir);
    ASSERT_EQ(system(cmd), 0);
}

/* Appends newline-separated JSON events as one batch; returns the append's code. */
static int append(acr_ledger_t *l, const char *lines)
{
    acr_batch_t b;
    acr_batch_init(&b);
    acr_err_t err;
    uint64_t n = 0;
    for (const char *p = lines; *p != '\0';) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        if (len > 0) {
            int rc = acr_batch_add_json(&b, acr_ledger_config(l), ++n, p, len, &err);
            ASSERT_EQ_MSG(rc, 0, "line %llu: %s (%s)", (unsigned long long)n, err.msg, p);
        }
        p += len + (nl != NULL);
    }
    acr_errlist_t *errs = malloc(sizeof *errs);
    acr_errlist_clear(errs);
    int rc = acr_ledger_append(l, &b, NULL, errs);
    free(errs);
    acr_batch_destroy(&b);
    return rc;
}

static void append_ok(acr_ledger_t *l, const char *lines)
{
    int rc = append(l, lines);
    ASSERT_EQ_MSG(rc, 0, "append failed: %s", acr_err_name(rc));
}

/* Query answers as NUL-terminated heap strings. */
static char *to_str(acr_buf_t *b, int rc, const acr_err_t *err)
{
    ASSERT_EQ_MSG(rc, 0, "query failed: %s %s", acr_err_name(rc), err->msg);
    acr_buf_append(b, "", 1);
    return (char *)b->data;
}

static char *q_kpi(acr_ledger_t *l, const char *period, const char *pid, bool by_rep)
{
    acr_buf_t b;
    acr_err_t err;
    acr_buf_init(&b);
    return to_str(&b, acr_query_kpi(l, period, pid, by_rep, &b, &err), &err);
}

static char *q_pipeline(acr_ledger_t *l, const char *pid, const char *today)
{
    acr_buf_t b;
    acr_err_t err;
    int32_t day;
    cr_assert(acr_date_parse(today, strlen(today), &day));
    acr_buf_init(&b);
    return to_str(&b, acr_query_pipeline(l, pid, day, &b, &err), &err);
}

static char *q_deal(acr_ledger_t *l, const char *did)
{
    acr_buf_t b;
    acr_err_t err;
    acr_buf_init(&b);
    return to_str(&b, acr_query_deal(l, did, &b, &err), &err);
}

static char *q_partners(acr_ledger_t *l, const char *pid)
{
    acr_buf_t b;
    acr_err_t err;
    acr_buf_init(&b);
    return to_str(&b, acr_query_partners(l, pid, &b, &err), &err);
}

#define EXPECT_JSON(got, want)                                                                     \
    do {                                                                                           \
        char *got_ = (got);                                                                        \
        ASSERT_STR_EQ(got_, want);                                                                 \
        free(got_);                                                                                \
    } while (0)

/* XXH3 over every derived table's keys and values, in table order. */
static uint64_t tables_hash(acr_ledger_t *l)
{
    MDB_txn *txn; /* the derived tables are the state environment's */
    ASSERT_EQ(mdb_txn_begin(l->senv, NULL, MDB_RDONLY, &txn), 0);
    XXH3_state_t *st = XXH3_createState();
    XXH3_64bits_reset(st);
    for (int db = 0; db < ACR_DB__COUNT; db++) {
        if (!acr__db_derived(db))
            continue;
        MDB_cursor *cur;
        MDB_val k, v;
        ASSERT_EQ(mdb_cursor_open(txn, l->dbi[db], &cur), 0);
        XXH3_64bits_update(st, &db, sizeof db);
        while (mdb_cursor_get(cur, &k, &v, MDB_NEXT) == 0) {
            XXH3_64bits_update(st, &k.mv_size, sizeof k.mv_size);
            XXH3_64bits_update(st, k.mv_data, k.mv_size);
            XXH3_64bits_update(st, &v.mv_size, sizeof v.mv_size);
            XXH3_64bits_update(st, v.mv_data, v.mv_size);
        }
        mdb_cursor_close(cur);
    }
    uint64_t h = XXH3_64bits_digest(st);
    XXH3_freeState(st);
    mdb_txn_abort(txn);
    return h;
}

static void verify_clean(acr_ledger_t *l)
{
    acr_verify_result_t vr;
    acr_err_t err;
    int rc = acr_ledger_verify(l, &vr, NULL, &err);
    ASSERT_EQ_MSG(rc, 0, "verify: %s (%s %s)", err.msg, vr.bad_table, vr.bad_key);
}

/* Rebuild must reproduce every derived table byte for byte. */
static void rebuild_same(acr_ledger_t *l)
{
    verify_clean(l);
    uint64_t before = tables_hash(l);
    acr_err_t err;
    ASSERT_EQ_MSG(acr_ledger_rebuild(l, NULL, &err), 0, "%s", err.msg);
    ASSERT_EQ_MSG(tables_hash(l), before, "rebuild changed a derived table");
    verify_clean(l);
}

#define EV(id, type, at, data)                                                                     \
    "{\"id\":\"" id "\",\"type\":\"" type "\",\"at\":\"" at "\",\"data\":{" data "}}\n"
#define PARTNER(id, pid, tier)                                                                     \
    EV(id, "partner.registered", "2026-06-01T00:00:00Z",                                          \
       "\"partner_id\":\"" pid "\",\"name\":\"N" pid "\",\"kind\":\"reseller\",\"tier\":\"" tier  \
       "\",\"plan_id\":\"standard\",\"currency\":\"JPY\"")
#define DEAL(id, at, did, pid, cust, extra)                                                        \
    EV(id, "deal.registered", at,                                                                  \
       "\"deal_id\":\"" did "\",\"partner_id\":\"" pid "\",\"customer_id\":\"" cust               \
       "\",\"currency\":\"JPY\"" extra)
#define MOVE(id, at, did, stage, extra)                                                            \
    EV(id, "deal.stage_changed", at, "\"deal_id\":\"" did "\",\"stage\":\"" stage "\"" extra)
#define CLOSE(id, at, did, outcome)                                                                \
    EV(id, "deal.closed", at, "\"deal_id\":\"" did "\",\"outcome\":\"" outcome "\"")
#define SALE(id, at, sid, pid, cust, amount, extra)                                                \
    EV(id, "sale.recorded", at,                                                                    \
       "\"sale_id\":\"" sid "\",\"partner_id\":\"" pid "\",\"customer_id\":\"" cust               \
       "\",\"product\":\"cloud\",\"amount_minor\":" amount ",\"currency\":\"JPY\"" extra)
#define REFUND(id, at, sid, amount)                                                                \
    EV(id, "sale.refunded", at, "\"sale_id\":\"" sid "\",\"amount_minor\":" amount)

#define KPI_OBJ(pid, period, reg, won, lost, rate, net, newc, median, training, comm)              \
    "{\"partner_id\":\"" pid "\",\"period\":\"" period "\",\"currency\":\"JPY\","                 \
    "\"deals_registered\":" #reg ",\"deals_won\":" #won ",\"deals_lost\":" #lost                  \
    ",\"win_rate_bp\":" #rate ",\"net_revenue_minor\":" #net ",\"new_customers\":" #newc          \
    ",\"median_days_to_win\":" median ",\"training_modules\":" #training                          \
    ",\"commission_minor\":" #comm ",\"certified\":true}" /* no onboarding list: certified */

/* ---- Golden scenarios -------------------------------------------------------------- */

Test(projection, deal_through_every_stage)
{
    acr_ledger_t *l = ledger_new(ACR_PERIOD_MONTH, "+00:00");
    append_ok(l, PARTNER("p1", "P1", "gold")
                 EV("r1", "rep.added", "2026-06-01T00:00:00Z",
                    "\"partner_id\":\"P1\",\"rep_id\":\"R1\",\"name\":\"Rei\"")
                 DEAL("d1", "2026-07-01T00:00:00Z", "D1", "P1", "C1", ""));
    EXPECT_JSON(q_pipeline(l, NULL, "2026-07-05"),
                "[{\"partner_id\":\"P1\",\"stage\":\"registered\",\"deals\":1,\"amount_minor\":0,"
                "\"currency\":\"JPY\",\"oldest_days\":4}]");
    uint64_t h = tables_hash(l);
    /* Leaving registered needs an amount; leaving qualified an expected close. */
    ASSERT_EQ(append(l, MOVE("m1", "2026-07-02T00:00:00Z", "D1", "qualified", "")),
                 ACR_EEXIT_CRITERIA_UNMET);
    append_ok(l, MOVE("m1", "2026-07-02T00:00:00Z", "D1", "qualified",
                      ",\"amount_minor\":500000,\"rep_id\":\"R1\""));
    ASSERT_EQ(append(l, MOVE("m2", "2026-07-03T00:00:00Z", "D1", "proposal", "")),
                 ACR_EEXIT_CRITERIA_UNMET);
    ASSERT_EQ(append(l, MOVE("m2", "2026-07-03T00:00:00Z", "D1", "nowhere", "")),
                 ACR_EUNKNOWN_STAGE);
    cr_assert_neq(tables_hash(l), h);
    h = tables_hash(l);
    ASSERT_EQ(append(l, MOVE("m2", "2026-07-03T00:00:00Z", "D1", "proposal", "")),
                 ACR_EEXIT_CRITERIA_UNMET);
    ASSERT_EQ_MSG(tables_hash(l), h, "a rejected batch changed a table");
    append_ok(l, MOVE("m2", "2026-07-03T00:00:00Z", "D1", "proposal",
                      ",\"expected_close\":\"2026-09-30\"")
                 MOVE("m3", "2026-07-04T00:00:00Z", "D1", "negotiation", "")
                 MOVE("m4", "2026-07-06T00:00:00Z", "D1", "negotiation",
                      ",\"amount_minor\":600000"));
    /* A move to the same stage keeps the date the deal entered it (07-04). */
    EXPECT_JSON(q_pipeline(l, "P1", "2026-07-10"),
                "[{\"partner_id\":\"P1\",\"stage\":\"negotiation\",\"deals\":1,"
                "\"amount_minor\":600000,\"currency\":\"JPY\",\"oldest_days\":6}]");
    append_ok(l, CLOSE("c1", "2026-07-10T00:00:00Z", "D1", "won"));
    ASSERT_EQ(append(l, CLOSE("c2", "2026-07-11T00:00:00Z", "D1", "lost")), ACR_EDEAL_CLOSED);
    EXPECT_JSON(q_deal(l, "D1"),
                "{\"deal_id\":\"D1\",\"partner_id\":\"P1\",\"customer_id\":\"C1\",\"name\":null,"
                "\"currency\":\"JPY\",\"amount_minor\":600000,\"expected_close\":\"2026-09-30\","
                "\"rep_id\":\"R1\",\"stage\":\"negotiation\",\"outcome\":\"won\","
                "\"registered_at\":\"2026-07-01T00:00:00Z\",\"closed_at\":\"2026-07-10T00:00:00Z\","
                "\"reason\":null,\"history\":["
                "{\"stage\":\"registered\",\"at\":\"2026-07-01T00:00:00Z\"},"
                "{\"stage\":\"qualified\",\"at\":\"2026-07-02T00:00:00Z\"},"
                "{\"stage\":\"proposal\",\"at\":\"2026-07-03T00:00:00Z\"},"
                "{\"stage\":\"negotiation\",\"at\":\"2026-07-04T00:00:00Z\"},"
                "{\"stage\":\"negotiation\",\"at\":\"2026-07-06T00:00:00Z\"}]}");
    EXPECT_JSON(q_pipeline(l, NULL, "2026-07-10"), "[]");
    EXPECT_JSON(q_kpi(l, "2026-07", NULL, false),
                "[" KPI_OBJ("P1", "2026-07", 1, 1, 0, 10000, 0, 0, "9", 0, 0) "]");
    /* The deal was registered without a rep and won by R1: each event counts
     * for the deal's rep at its time. */
    EXPECT_JSON(q_kpi(l, "2026-07", NULL, true),
                "[{\"partner_id\":\"P1\",\"rep_id\":null,\"period\":\"2026-07\",\"currency\":"
                "\"JPY\",\"sales\":0,\"net_revenue_minor\":0,\"new_customers\":0,"
                "\"deals_registered\":1,\"deals_won\":0,\"commission_minor\":0},"
                "{\"partner_id\":\"P1\",\"rep_id\":\"R1\",\"period\":\"2026-07\",\"currency\":"
                "\"JPY\",\"sales\":0,\"net_revenue_minor\":0,\"new_customers\":0,"
                "\"deals_registered\":0,\"deals_won\":1,\"commission_minor\":0}]");
    acr_buf_t b;
    acr_err_t err;
    acr_buf_init(&b);
    ASSERT_EQ(acr_query_deal(l, "D9", &b, &err), ACR_ENOT_FOUND);
    ASSERT_EQ(acr_query_kpi(l, "2026-7", NULL, false, &b, &err), ACR_EUSAGE);
    ASSERT_EQ(acr_query_kpi(l, "2026-07", "P9", false, &b, &err), ACR_ENOT_FOUND);
    ASSERT_EQ(b.len, 0);
    acr_buf_destroy(&b);
    rebuild_same(l);
    ledger_done(l);
}

Test(projection, channel_conflict_changes_nothing)
{
    acr_ledger_t *l = ledger_new(ACR_PERIOD_MONTH, "+00:00");
    append_ok(l, PARTNER("p1", "P1", "gold") PARTNER("p2", "P2", "silver")
                 DEAL("d1", "2026-07-01T00:00:00Z", "D1", "P1", "C1", ",\"amount_minor\":100"));
    uint64_t h = tables_hash(l);
    char *pipe = q_pipeline(l, NULL, "2026-07-02");
    /* The conflict comes after a valid event of the same batch: all or nothing. */
    ASSERT_EQ(append(l, SALE("s1", "2026-07-01T00:00:00Z", "S1", "P2", "C7", "5", "")
                           DEAL("d2", "2026-07-02T00:00:00Z", "D2", "P2", "C1", "")),
                 ACR_ECHANNEL_CONFLICT);
    ASSERT_EQ(tables_hash(l), h);
    EXPECT_JSON(q_pipeline(l, NULL, "2026-07-02"), pipe);
    free(pipe);
    /* Once P1's deal is lost, P2 may register one for C1. */
    append_ok(l, CLOSE("c1", "2026-07-03T00:00:00Z", "D1", "lost")
                 DEAL("d2", "2026-07-04T00:00:00Z", "D2", "P2", "C1", ""));
    EXPECT_JSON(q_kpi(l, "2026-07", NULL, false),
                "[" KPI_OBJ("P1", "2026-07", 1, 0, 1, 0, 0, 0, "null", 0, 0) ","
                KPI_OBJ("P2", "2026-07", 1, 0, 0, null, 0, 0, "null", 0, 0) "]");
    rebuild_same(l);
    ledger_done(l);
}

/* Win rate rounds half to even; medians of even counts are x.5 or integers. */
Test(projection, win_rate_and_medians)
{
    acr_ledger_t *l = ledger_new(ACR_PERIOD_MONTH, "+00:00");
    append_ok(l, PARTNER("p1", "P1", "gold") PARTNER("p2", "P2", "gold")
                 PARTNER("p3", "P3", "gold")
                 DEAL("a", "2026-07-01T00:00:00Z", "A", "P1", "CA", "")
                 DEAL("b", "2026-07-01T00:00:00Z", "B", "P1", "CB", "")
                 DEAL("c", "2026-07-01T00:00:00Z", "C", "P1", "CC", "")
                 CLOSE("xa", "2026-07-04T00:00:00Z", "A", "won")
                 CLOSE("xb", "2026-07-05T23:59:59Z", "B", "won")
                 CLOSE("xc", "2026-07-05T00:00:00Z", "C", "lost")
                 DEAL("e", "2026-06-01T00:00:00Z", "E", "P2", "CE", "")
                 DEAL("f", "2026-06-30T00:00:00Z", "F", "P2", "CF", "")
                 DEAL("g", "2026-07-01T00:00:00Z", "G", "P2", "CG", "")
                 DEAL("h", "2026-07-02T00:00:00Z", "H", "P2", "CH", "")
                 CLOSE("xe", "2026-07-01T00:00:00Z", "E", "won")
                 CLOSE("xf", "2026-07-02T00:00:00Z", "F", "won")
                 CLOSE("xg", "2026-07-05T00:00:00Z", "G", "won")
                 CLOSE("xh", "2026-07-12T00:00:00Z", "H", "won")
                 DEAL("i", "2026-07-01T00:00:00Z", "I", "P3", "CI", ""));
    /* P1: days 3 and 4 -> 3.5; 2 won of 3 closed -> 6666.67 -> 6667.
     * P2: days 30, 2, 4, 10 -> sorted 2 4 10 30 -> (4 + 10) / 2 = 7.
     * P3: nothing closed -> null rate, null median. */
    EXPECT_JSON(q_kpi(l, "2026-07", NULL, false),
                "[" KPI_OBJ("P1", "2026-07", 3, 2, 1, 6667, 0, 0, "3.5", 0, 0) ","
                KPI_OBJ("P2", "2026-07", 2, 4, 0, 10000, 0, 0, "7", 0, 0) ","
                KPI_OBJ("P3", "2026-07", 1, 0, 0, null, 0, 0, "null", 0, 0) "]");
    EXPECT_JSON(q_kpi(l, "2026-Q3", "P1", false),
                "[" KPI_OBJ("P1", "2026-Q3", 3, 2, 1, 6667, 0, 0, "3.5", 0, 0) "]");
    /* A win dated before its registration counts negative days: -1 and 0 -> -0.5. */
    append_ok(l, DEAL("j", "2026-08-05T00:00:00Z", "J", "P3", "CJ", "")
                 DEAL("k", "2026-08-05T00:00:00Z", "K", "P3", "CK", "")
                 CLOSE("xj", "2026-08-04T00:00:00Z", "J", "won")
                 CLOSE("xk", "2026-08-05T00:00:00Z", "K", "won"));
    EXPECT_JSON(q_kpi(l, "2026-08", "P3", false),
                "[" KPI_OBJ("P3", "2026-08", 2, 2, 0, 10000, 0, 0, "-0.5", 0, 0) "]");
    rebuild_same(l);
    ledger_done(l);
}

/* At +09:00 a month starts at 15:00Z of the previous day. */
Test(projection, local_midnight_boundaries)
{
    acr_ledger_t *l = ledger_new(ACR_PERIOD_MONTH, "+09:00");
    append_ok(l, PARTNER("p1", "P1", "gold")
                 SALE("s1", "2026-06-30T14:59:59.999Z", "S1", "P1", "C1", "100", "")
                 SALE("s2", "2026-06-30T15:00:00Z", "S2", "P1", "C2", "200", "")
                 SALE("s3", "2026-07-31T14:59:59.999Z", "S3", "P1", "C3", "400", "")
                 SALE("s4", "2026-07-31T15:00:00Z", "S4", "P1", "C4", "800", "")
                 REFUND("f1", "2026-07-31T15:00:00Z", "S2", "50")
                 EV("t1", "training.completed", "2026-06-30T15:00:00Z",
                    "\"partner_id\":\"P1\",\"module\":\"m1\""));
    EXPECT_JSON(q_kpi(l, "2026-06", NULL, false),
                "[" KPI_OBJ("P1", "2026-06", 0, 0, 0, null, 100, 1, "null", 0, 0) "]");
    /* July: S2 and S3 (600); S2's refund falls in August, by its own date. */
    EXPECT_JSON(q_kpi(l, "2026-07", NULL, false),
                "[" KPI_OBJ("P1", "2026-07", 0, 0, 0, null, 600, 2, "null", 1, 0) "]");
    EXPECT_JSON(q_kpi(l, "2026-08", NULL, false),
                "[" KPI_OBJ("P1", "2026-08", 0, 0, 0, null, 750, 1, "null", 0, 0) "]");
    EXPECT_JSON(q_kpi(l, "2026-Q3", NULL, false),
                "[" KPI_OBJ("P1", "2026-Q3", 0, 0, 0, null, 1350, 3, "null", 1, 0) "]");
    EXPECT_JSON(q_kpi(l, "2026-Q2", NULL, false),
                "[" KPI_OBJ("P1", "2026-Q2", 0, 0, 0, null, 100, 1, "null", 0, 0) "]");
    EXPECT_JSON(q_partners(l, "P1"),
                "{\"partner_id\":\"P1\",\"name\":\"NP1\",\"kind\":\"reseller\",\"tier\":\"gold\","
                "\"status\":\"active\",\"plan_id\":\"standard\",\"currency\":\"JPY\","
                "\"region\":null,\"source\":null,\"reps\":[],\"training\":[{\"module\":\"m1\","
                "\"rep_id\":null,\"date\":\"2026-07-01\"}],\"onboarding\":{\"partner_id\":"
                "\"P1\",\"modules\":[],\"completed\":[],\"missing\":[],\"certified\":true,"
                "\"certified_on\":\"2026-06-01\",\"reps\":[]}}");
    rebuild_same(l);
    ledger_done(l);
}

/* A backdated sale becomes the customer's first: the count moves. */
Test(projection, backdated_sale_moves_new_customer)
{
    acr_ledger_t *l = ledger_new(ACR_PERIOD_MONTH, "+00:00");
    append_ok(l, PARTNER("p1", "P1", "gold") PARTNER("p2", "P2", "gold")
                 EV("r1", "rep.added", "2026-06-01T00:00:00Z",
                    "\"partner_id\":\"P2\",\"rep_id\":\"R1\",\"name\":\"Rei\"")
                 SALE("s1", "2026-07-10T00:00:00Z", "S1", "P1", "C1", "100", "")
                 SALE("s2", "2026-07-10T00:00:00Z", "S2", "P2", "C1", "100", ""));
    /* Same `at`: the earlier seq (S1) stays first. */
    EXPECT_JSON(q_kpi(l, "2026-07", NULL, false),
                "[" KPI_OBJ("P1", "2026-07", 0, 0, 0, null, 100, 1, "null", 0, 0) ","
                KPI_OBJ("P2", "2026-07", 0, 0, 0, null, 100, 0, "null", 0, 0) "]");
    append_ok(l, SALE("s3", "2026-06-20T00:00:00Z", "S3", "P2", "C1", "7", ",\"rep_id\":\"R1\""));
    EXPECT_JSON(q_kpi(l, "2026-07", NULL, false),
                "[" KPI_OBJ("P1", "2026-07", 0, 0, 0, null, 100, 0, "null", 0, 0) ","
                KPI_OBJ("P2", "2026-07", 0, 0, 0, null, 100, 0, "null", 0, 0) "]");
    EXPECT_JSON(q_kpi(l, "2026-06", "P2", true),
                "[{\"partner_id\":\"P2\",\"rep_id\":\"R1\",\"period\":\"2026-06\",\"currency\":"
                "\"JPY\",\"sales\":1,\"net_revenue_minor\":7,\"new_customers\":1,"
                "\"deals_registered\":0,\"deals_won\":0,\"commission_minor\":0}]");
    EXPECT_JSON(q_kpi(l, "2026-Q3", "P1", true),
                "[{\"partner_id\":\"P1\",\"rep_id\":null,\"period\":\"2026-Q3\",\"currency\":"
                "\"JPY\",\"sales\":1,\"net_revenue_minor\":100,\"new_customers\":0,"
                "\"deals_registered\":0,\"deals_won\":0,\"commission_minor\":0}]");
    rebuild_same(l);
    ledger_done(l);
}

/* Deals in a stage that a later pipeline.defined removed stay visible, after
 * the defined stages, under their old stage name. */
Test(projection, redefined_pipeline_keeps_removed_stage)
{
    acr_ledger_t *l = ledger_new(ACR_PERIOD_MONTH, "+00:00");
    append_ok(l, PARTNER("p1", "P1", "gold")
                 DEAL("d1", "2026-07-01T00:00:00Z", "D1", "P1", "C1", ",\"amount_minor\":10")
                 MOVE("m1", "2026-07-02T00:00:00Z", "D1", "qualified",
                      ",\"expected_close\":\"2026-08-01\"")
                 MOVE("m2", "2026-07-03T00:00:00Z", "D1", "proposal", "")
                 DEAL("d2", "2026-07-01T00:00:00Z", "D2", "P1", "C2", ",\"amount_minor\":20")
                 MOVE("m3", "2026-07-04T00:00:00Z", "D2", "qualified", "")
                 EV("pl", "pipeline.defined", "2026-07-05T00:00:00Z",
                    "\"stages\":[{\"name\":\"lead\",\"exit_requires\":[]},"
                    "{\"name\":\"qualified\",\"exit_requires\":[\"rep\"]}]")
                 DEAL("d3", "2026-07-06T00:00:00Z", "D3", "P1", "C3", ",\"amount_minor\":40"));
    EXPECT_JSON(q_pipeline(l, NULL, "2026-07-10"),
                "[{\"partner_id\":\"P1\",\"stage\":\"lead\",\"deals\":1,\"amount_minor\":40,"
                "\"currency\":\"JPY\",\"oldest_days\":4},"
                "{\"partner_id\":\"P1\",\"stage\":\"qualified\",\"deals\":1,\"amount_minor\":20,"
                "\"currency\":\"JPY\",\"oldest_days\":6},"
                "{\"partner_id\":\"P1\",\"stage\":\"proposal\",\"deals\":1,\"amount_minor\":10,"
                "\"currency\":\"JPY\",\"oldest_days\":7}]");
    /* A removed stage has no exit criteria; the deal can move to a defined one. */
    append_ok(l, MOVE("m4", "2026-07-08T00:00:00Z", "D1", "lead", ""));
    EXPECT_JSON(q_pipeline(l, "P1", "2026-07-10"),
                "[{\"partner_id\":\"P1\",\"stage\":\"lead\",\"deals\":2,\"amount_minor\":50,"
                "\"currency\":\"JPY\",\"oldest_days\":4},"
                "{\"partner_id\":\"P1\",\"stage\":\"qualified\",\"deals\":1,\"amount_minor\":20,"
                "\"currency\":\"JPY\",\"oldest_days\":6}]");
    rebuild_same(l);
    ledger_done(l);
}

/* ---- Commissions: the worked example of commissions.md ---------------------------- */

#define PLAN_DOC                                                                                   \
    "{\"plan_id\":\"standard\",\"version\":1,\"effective_from\":\"2026-01-01\","               \
    "\"currency\":\"JPY\",\"ceiling_bp\":4000,\"rules\":[{\"match\":{\"tier\":\"gold\"},"      \
    "\"brackets\":[{\"from_minor\":0,\"rate_bp\":1500},{\"from_minor\":1000000,"                 \
    "\"rate_bp\":2500}]},{\"match\":{},\"brackets\":[{\"from_minor\":0,\"rate_bp\":1000}]}],"    \
    "\"clawback_days\":90,\"new_customer_bonus_minor\":10000,\"targets\":[{"                    \
    "\"net_revenue_minor\":1500000,\"bonus_minor\":50000}],\"cap_bp\":3000}"
#define PLAN EV("plan-1", "plan.published", "2026-06-01T00:00:00Z", "\"plan\":" PLAN_DOC)
#define WORKED                                                                                     \
    PARTNER("p-1", "P1", "gold") PARTNER("p-2", "P2", "silver") PLAN                              \
    EV("r1", "rep.added", "2026-06-01T00:00:00Z",                                                 \
       "\"partner_id\":\"P1\",\"rep_id\":\"R1\",\"name\":\"Rei\"")                                \
    SALE("s-1", "2026-07-02T01:00:00Z", "S1", "P1", "C1", "600000", "")                           \
    SALE("s-2", "2026-07-10T03:00:00Z", "S2", "P1", "C2", "700000", ",\"rep_id\":\"R1\"")         \
    SALE("s-3", "2026-07-11T05:00:00Z", "S3", "P2", "C1", "200000", "")                           \
    REFUND("r-1", "2026-07-20T02:00:00Z", "S1", "100000")

static const char *rep_obj(const char *pid, const char *rep, const char *period, int sales,
                           long long net, int newc, long long comm, char *buf, size_t cap)
{
    snprintf(buf, cap,
             "{\"partner_id\":\"%s\",\"rep_id\":%s,\"period\":\"%s\",\"currency\":\"JPY\","
             "\"sales\":%d,\"net_revenue_minor\":%lld,\"new_customers\":%d,"
             "\"deals_registered\":0,\"deals_won\":0,\"commission_minor\":%lld}",
             pid, rep, period, sales, net, newc, comm);
    return buf;
}

Test(projection, commission_as_of_head_ignoring_closes)
{
    acr_ledger_t *l = ledger_new(ACR_PERIOD_MONTH, "+09:00");
    append_ok(l, WORKED);
    /* P1: 90000 + 135000 - 15000 + 10000 + 10000; P2: 20000 (C1 is not new). */
    EXPECT_JSON(q_kpi(l, "2026-07", NULL, false),
                "[" KPI_OBJ("P1", "2026-07", 0, 0, 0, null, 1200000, 2, "null", 0, 230000) ","
                KPI_OBJ("P2", "2026-07", 0, 0, 0, null, 200000, 0, "null", 0, 20000) "]");
    acr_payout_t po;
    acr_err_t err;
    uint64_t seq;
    acr_close_request_t req = {.period_id = "2026-07", .now_ms = INT64_MAX};
    ASSERT_EQ_MSG(acr_payout_close(l, &req, &po, &seq, &err), 0, "%s", err.msg);
    acr_payout_destroy(&po);
    append_ok(l, SALE("s-4", "2026-07-25T00:00:00Z", "S4", "P2", "C3", "300000", "")
                 SALE("s-5", "2026-08-03T00:00:00Z", "S5", "P1", "C2", "100000", ""));
    /* July as of the head, closes ignored: P2 gains S4's 30000 and its 10000 bonus. */
    EXPECT_JSON(q_kpi(l, "2026-07", NULL, false),
                "[" KPI_OBJ("P1", "2026-07", 0, 0, 0, null, 1200000, 2, "null", 0, 230000) ","
                KPI_OBJ("P2", "2026-07", 0, 0, 0, null, 500000, 1, "null", 0, 60000) "]");
    EXPECT_JSON(q_kpi(l, "2026-Q3", "P1", false),
                "[" KPI_OBJ("P1", "2026-Q3", 0, 0, 0, null, 1300000, 2, "null", 0, 245000) "]");
    /* By rep: S2 is R1's (135000 + its bonus); S1, its clawback and bonus have no rep. */
    char a[512], b[512], want[1100];
    snprintf(want, sizeof want, "[%s,%s]",
             rep_obj("P1", "null", "2026-07", 1, 500000, 1, 85000, a, sizeof a),
             rep_obj("P1", "\"R1\"", "2026-07", 1, 700000, 1, 145000, b, sizeof b));
    EXPECT_JSON(q_kpi(l, "2026-07", "P1", true), want);
    snprintf(want, sizeof want, "[%s,%s]",
             rep_obj("P1", "null", "2026-Q3", 2, 600000, 1, 100000, a, sizeof a),
             rep_obj("P1", "\"R1\"", "2026-Q3", 1, 700000, 1, 145000, b, sizeof b));
    EXPECT_JSON(q_kpi(l, "2026-Q3", "P1", true), want);
    rebuild_same(l);
    ledger_done(l);
}

static uint64_t head_seq(acr_ledger_t *l)
{
    acr_reader_t *r;
    acr_err_t err;
    ASSERT_EQ_MSG(acr_reader_open(l, &r, &err), 0, "%s", err.msg);
    uint64_t seq = acr_reader_head_seq(r);
    acr_reader_close(r);
    return seq;
}

/* commissions.md, Closing: a period is closed only once its end (the local midnight
 * starting the next one) has passed by the caller's clock, unless forced; the clock is
 * the caller's, so the boundary is exact to the millisecond. */
Test(projection, close_waits_for_the_period_end)
{
    int32_t july;
    cr_assert(acr_period_parse(ACR_PERIOD_MONTH, "2026-07", 7, &july));
    int64_t end_ms = acr_period_end_ms(ACR_PERIOD_MONTH, july, 9 * 60);
    int64_t want_ms;
    cr_assert(acr_ts_parse("2026-07-31T15:00:00Z", 20, &want_ms));
    ASSERT_EQ_MSG(end_ms, want_ms, "July at +09:00 ends at 2026-07-31T15:00:00Z");
    for (int forced = 0; forced < 2; forced++) {
        acr_ledger_t *l = ledger_new(ACR_PERIOD_MONTH, "+09:00");
        append_ok(l, WORKED);
        uint64_t head = head_seq(l);
        acr_payout_t po;
        acr_err_t err;
        uint64_t seq = 0;
        acr_close_request_t req = {.period_id = "2026-07", .now_ms = end_ms - 1};
        acr_err_clear(&err);
        int rc = acr_payout_close(l, &req, &po, &seq, &err);
        ASSERT_EQ_MSG(rc, ACR_EPERIOD_OPEN, "got %s", acr_err_name(rc));
        ASSERT_EQ(acr_err_exit_code(rc), 4);
        cr_assert(strstr(err.msg, "2026-08-01T00:00:00+09:00") != NULL, "%s", err.msg);
        cr_assert(strstr(err.msg, "2026-07-31T15:00:00Z") != NULL, "%s", err.msg);
        ASSERT_EQ_MSG(head_seq(l), head, "a refused close writes nothing");
        if (forced)
            req.force = true;
        else
            req.now_ms = end_ms;
        ASSERT_EQ_MSG(acr_payout_close(l, &req, &po, &seq, &err), 0, "%s", err.msg);
        ASSERT_EQ(seq, head + 1);
        acr_payout_destroy(&po);
        ledger_done(l);
    }
}

/* A month asked of a quarter ledger has no commission; its quarter has. */
Test(projection, commission_null_for_shorter_period)
{
    acr_ledger_t *l = ledger_new(ACR_PERIOD_QUARTER, "+09:00");
    append_ok(l, WORKED);
    EXPECT_JSON(q_kpi(l, "2026-07", "P2", false),
                "[" KPI_OBJ("P2", "2026-07", 0, 0, 0, null, 200000, 0, "null", 0, null) "]");
    EXPECT_JSON(q_kpi(l, "2026-Q3", "P2", false),
                "[" KPI_OBJ("P2", "2026-Q3", 0, 0, 0, null, 200000, 0, "null", 0, 20000) "]");
    EXPECT_JSON(q_kpi(l, "2026-08", "P2", true), "[]");
    EXPECT_JSON(q_kpi(l, "2026-07", "P2", true),
                "[{\"partner_id\":\"P2\",\"rep_id\":null,\"period\":\"2026-07\",\"currency\":"
                "\"JPY\",\"sales\":1,\"net_revenue_minor\":200000,\"new_customers\":0,"
                "\"deals_registered\":0,\"deals_won\":0,\"commission_minor\":null}]");
    rebuild_same(l);
    ledger_done(l);
}

/* Partner attributes follow business time: a backdated update does not
 * override a later one; equal `at` goes to the later seq. */
Test(projection, partner_attributes_by_business_time)
{
    acr_ledger_t *l = ledger_new(ACR_PERIOD_MONTH, "+00:00");
    append_ok(l, PARTNER("p1", "P1", "gold")
                 EV("u1", "partner.updated", "2026-07-01T00:00:00Z",
                    "\"partner_id\":\"P1\",\"tier\":\"platinum\",\"region\":\"EU\"")
                 EV("u2", "partner.updated", "2026-06-15T00:00:00Z",
                    "\"partner_id\":\"P1\",\"tier\":\"silver\",\"name\":\"Renamed\"")
                 EV("u3", "partner.updated", "2026-07-01T00:00:00Z",
                    "\"partner_id\":\"P1\",\"region\":\"APAC\"")
                 EV("st", "partner.status_changed", "2026-05-01T00:00:00Z",
                    "\"partner_id\":\"P1\",\"status\":\"suspended\""));
    EXPECT_JSON(q_partners(l, NULL),
                "[{\"partner_id\":\"P1\",\"name\":\"Renamed\",\"kind\":\"reseller\","
                "\"tier\":\"platinum\",\"status\":\"suspended\",\"plan_id\":\"standard\","
                "\"currency\":\"JPY\",\"region\":\"APAC\",\"source\":null,\"reps\":[],"
                "\"training\":[],\"onboarding\":{\"partner_id\":\"P1\",\"modules\":[],"
                "\"completed\":[],\"missing\":[],\"certified\":true,"
                "\"certified_on\":\"2026-06-01\",\"reps\":[]}}]");
    acr_buf_t b;
    acr_err_t err;
    acr_buf_init(&b);
    ASSERT_EQ(acr_query_partners(l, "P2", &b, &err), ACR_ENOT_FOUND);
    acr_buf_destroy(&b);
    rebuild_same(l);
    ledger_done(l);
}

/* ---- Randomized property test ---------------------------------------------------------- */

enum { NP = 4, NCUST = 24, NMONTHS = 8, MAXD = 400, MAXS = 800 };

typedef struct gen {
    uint64_t s;                     /* xorshift64* state */
    acr_ledger_t *l;
    char **lines;                   /* generated events, in order */
    size_t n, cap;
    int ndeals, nsales, nev;
    struct { int p; bool open; int64_t reg_ms; } deal[MAXD];
    struct { int p; int64_t at_ms, amount, refunded; int cust; } sale[MAXS];
    const char *stages[8];          /* the current pipeline */
    int nstages;
    /* naive model, per partner and month since 2026-05 */
    long long net[NP][NMONTHS], reg[NP][NMONTHS], won[NP][NMONTHS], lost[NP][NMONTHS];
} gen_t;

static uint64_t rnd(gen_t *g)
{
    g->s ^= g->s >> 12;
    g->s ^= g->s << 25;
    g->s ^= g->s >> 27;
    return g->s * 2685821657736338717ULL;
}

static int rint_(gen_t *g, int n)
{
    return (int)(rnd(g) % (uint64_t)n);
}

static void emit(gen_t *g, const char *type, int64_t at_ms, const char *data)
{
    char ts[ACR_TS_BUF], *line = malloc(2048);
    acr_ts_format(at_ms, ts);
    snprintf(line, 2048, "{\"id\":\"e%d\",\"type\":\"%s\",\"at\":\"%s\",\"data\":{%s}}", g->nev++,
             type, ts, data);
    if (g->n == g->cap) {
        g->cap = g->cap ? 2 * g->cap : 256;
        g->lines = realloc(g->lines, g->cap * sizeof *g->lines);
    }
    g->lines[g->n++] = line;
}

static int month_ix(gen_t *g, int64_t at_ms)
{
    int32_t day = acr_local_day(at_ms, acr_ledger_config(g->l)->utc_offset_min);
    int32_t may = acr_period_of_day(ACR_PERIOD_MONTH, acr_days_from_civil(2026, 5, 1));
    int m = acr_period_of_day(ACR_PERIOD_MONTH, day) - may;
    cr_assert(m >= 0 && m < NMONTHS, "month %d", m);
    return m;
}

static int64_t rnd_at(gen_t *g)
{
    int64_t base = 1777593600000LL; /* 2026-05-01T00:00:00Z */
    return base + (int64_t)rint_(g, 180 * 24 * 60) * 60000 + (rint_(g, 4) == 0 ? 999 : 0);
}

static void gen_deal_event(gen_t *g, char *d, size_t cap)
{
    int k = rint_(g, g->ndeals ? 3 : 1);
    int64_t at = rnd_at(g);
    if (k == 0 && g->ndeals < MAXD) { /* customers are per partner: no channel conflict */
        int p = rint_(g, NP), i = g->ndeals++, cust = rint_(g, 5); /* sequenced draws */
        const char *rep = rint_(g, 2) ? "" : ",\"rep_id\":\"R1\"";
        const char *amount = rint_(g, 2) ? "" : ",\"amount_minor\":1000";
        snprintf(d, cap, "\"deal_id\":\"D%d\",\"partner_id\":\"P%d\",\"customer_id\":\"DC%d-%d\","
                 "\"currency\":\"JPY\"%s%s", i, p, p, cust, rep, amount);
        g->deal[i].p = p;
        g->deal[i].open = true;
        g->deal[i].reg_ms = at;
        g->reg[p][month_ix(g, at)]++;
        emit(g, "deal.registered", at, d);
        return;
    }
    int i = rint_(g, g->ndeals);
    if (!g->deal[i].open)
        return;
    if (k == 1) {
        const char *stage = g->stages[rint_(g, g->nstages)];
        int amount = rint_(g, 100000);
        const char *rep = rint_(g, 3) ? "" : ",\"rep_id\":\"R0\"";
        snprintf(d, cap, "\"deal_id\":\"D%d\",\"stage\":\"%s\",\"amount_minor\":%d,"
                 "\"expected_close\":\"2026-12-01\"%s", i, stage, amount, rep);
        emit(g, "deal.stage_changed", at, d);
        return;
    }
    bool w = rint_(g, 2);
    snprintf(d, cap, "\"deal_id\":\"D%d\",\"outcome\":\"%s\"", i, w ? "won" : "lost");
    g->deal[i].open = false;
    (w ? g->won : g->lost)[g->deal[i].p][month_ix(g, at)]++;
    emit(g, "deal.closed", at, d);
}

static void gen_sale_event(gen_t *g, char *d, size_t cap)
{
    if (rint_(g, 4) == 0 && g->nsales > 0) {
        int i = rint_(g, g->nsales);
        int64_t left = g->sale[i].amount - g->sale[i].refunded;
        if (left == 0)
            return;
        int64_t amount = 1 + (int64_t)(rnd(g) % (uint64_t)left);
        int64_t at = g->sale[i].at_ms + (int64_t)rint_(g, 40 * 24 * 60) * 60000;
        if (month_ix(g, at) >= NMONTHS - 1)
            return;
        snprintf(d, cap, "\"sale_id\":\"S%d\",\"amount_minor\":%lld", i, (long long)amount);
        g->sale[i].refunded += amount;
        g->net[g->sale[i].p][month_ix(g, at)] -= amount;
        emit(g, "sale.refunded", at, d);
        return;
    }
    if (g->nsales == MAXS)
        return;
    int i = g->nsales++, p = rint_(g, NP);
    g->sale[i].p = p;
    g->sale[i].at_ms = rnd_at(g);
    g->sale[i].amount = 1 + rint_(g, 900000);
    g->sale[i].refunded = 0;
    g->sale[i].cust = rint_(g, NCUST);
    g->net[p][month_ix(g, g->sale[i].at_ms)] += g->sale[i].amount;
    snprintf(d, cap, "\"sale_id\":\"S%d\",\"partner_id\":\"P%d\",\"customer_id\":\"C%d\","
             "\"product\":\"cloud\",\"amount_minor\":%lld,\"currency\":\"JPY\"%s", i, p,
             g->sale[i].cust, (long long)g->sale[i].amount,
             rint_(g, 2) ? "" : rint_(g, 2) ? ",\"rep_id\":\"R0\"" : ",\"rep_id\":\"R1\"");
    emit(g, "sale.recorded", g->sale[i].at_ms, d);
}

static void gen_history(gen_t *g, int events)
{
    char d[1024];
    emit(g, "plan.published", 1777593600000LL, "\"plan\":" PLAN_DOC);
    for (int p = 0; p < NP; p++) {
        snprintf(d, sizeof d, "\"partner_id\":\"P%d\",\"name\":\"n\",\"kind\":\"broker\","
                 "\"tier\":\"%s\",\"plan_id\":\"standard\",\"currency\":\"JPY\"", p,
                 p % 2 ? "gold" : "silver");
        emit(g, "partner.registered", 1777593600000LL, d);
        for (int r = 0; r < 2; r++) {
            snprintf(d, sizeof d, "\"partner_id\":\"P%d\",\"rep_id\":\"R%d\",\"name\":\"r\"", p, r);
            emit(g, "rep.added", 1777593600000LL, d);
        }
    }
    for (int i = 0; i < events; i++) {
        int k = rint_(g, 20);
        if (i == events / 2) {
            emit(g, "pipeline.defined", rnd_at(g),
                 "\"stages\":[{\"name\":\"intake\",\"exit_requires\":[]},"
                 "{\"name\":\"qualified\",\"exit_requires\":[\"amount\"]}]");
            g->stages[0] = "intake";
            g->stages[1] = "qualified";
            g->nstages = 2;
        } else if (k < 9) {
            gen_sale_event(g, d, sizeof d);
        } else if (k < 17) {
            gen_deal_event(g, d, sizeof d);
        } else if (k < 19) {
            int p = rint_(g, NP), module = rint_(g, 3);
            const char *rep = rint_(g, 2) ? "" : ",\"rep_id\":\"R1\"";
            snprintf(d, sizeof d, "\"partner_id\":\"P%d\",\"module\":\"m%d\"%s", p, module, rep);
            emit(g, "training.completed", rnd_at(g), d);
        } else {
            int p = rint_(g, NP);
            const char *tier = rint_(g, 2) ? "gold" : "silver";
            snprintf(d, sizeof d, "\"partner_id\":\"P%d\",\"tier\":\"%s\"", p, tier);
            emit(g, "partner.updated", rnd_at(g), d);
        }
    }
}

static void add_out(acr_buf_t *all, char *s)
{
    acr_buf_append_str(all, s);
    acr_buf_append(all, "\n", 1);
    free(s);
}

/* Every query answer of the ledger, concatenated. */
static char *all_outputs(gen_t *g)
{
    static const char *const periods[] = {"2026-05", "2026-06", "2026-07", "2026-08", "2026-09",
                                          "2026-10", "2026-11", "2026-12", "2026-Q2", "2026-Q3",
                                          "2026-Q4"};
    acr_buf_t all;
    acr_buf_init(&all);
    add_out(&all, q_partners(g->l, NULL));
    add_out(&all, q_pipeline(g->l, NULL, "2026-12-31"));
    for (size_t i = 0; i < sizeof periods / sizeof periods[0]; i++) {
        add_out(&all, q_kpi(g->l, periods[i], NULL, false));
        add_out(&all, q_kpi(g->l, periods[i], NULL, true));
    }
    for (int i = 0; i < g->ndeals; i++) {
        char id[16];
        snprintf(id, sizeof id, "D%d", i);
        add_out(&all, q_deal(g->l, id));
    }
    acr_buf_append(&all, "", 1);
    return (char *)all.data;
}

/* The KPI counters against a naive recomputation from the generated events. */
static void check_model(gen_t *g)
{
    long long newc[NP][NMONTHS] = {{0}};
    for (int c = 0; c < NCUST; c++) {
        int first = -1;
        for (int i = 0; i < g->nsales; i++)
            if (g->sale[i].cust == c && (first < 0 || g->sale[i].at_ms < g->sale[first].at_ms))
                first = i;
        if (first >= 0)
            newc[g->sale[first].p][month_ix(g, g->sale[first].at_ms)]++;
    }
    for (int p = 0; p < NP; p++) {
        for (int m = 0; m < NMONTHS; m++) {
            char period[32], pid[16], rate[24], want[512];
            snprintf(period, sizeof period, "2026-%02d", 5 + m);
            snprintf(pid, sizeof pid, "P%d", p);
            long long w = g->won[p][m], lo = g->lost[p][m];
            int64_t bp = 0;
            if (w + lo > 0)
                cr_assert(acr_round_half_even((acr_i128_t)w * 10000, w + lo, &bp));
            snprintf(rate, sizeof rate, w + lo ? "%lld" : "null", (long long)bp);
            snprintf(want, sizeof want,
                     "[{\"partner_id\":\"%s\",\"period\":\"%s\",\"currency\":\"JPY\","
                     "\"deals_registered\":%lld,\"deals_won\":%lld,\"deals_lost\":%lld,"
                     "\"win_rate_bp\":%s,\"net_revenue_minor\":%lld,\"new_customers\":%lld,"
                     "\"median_days_to_win\":", pid, period, g->reg[p][m], w, lo, rate,
                     g->net[p][m], newc[p][m]);
            char *got = q_kpi(g->l, period, pid, false);
            cr_assert(strncmp(got, want, strlen(want)) == 0, "got  %s\nwant %s", got, want);
            free(got);
        }
    }
}

static void append_random_batches(gen_t *g)
{
    acr_buf_t text;
    acr_buf_init(&text);
    for (size_t i = 0; i < g->n;) {
        size_t take = 1 + (size_t)rint_(g, 60);
        acr_buf_reset(&text);
        for (size_t j = 0; j < take && i < g->n; j++, i++) {
            acr_buf_append_str(&text, g->lines[i]);
            acr_buf_append(&text, "\n", 1);
        }
        acr_buf_append(&text, "", 1);
        append_ok(g->l, (const char *)text.data);
        if (i > g->n / 2 && i - take <= g->n / 2)
            verify_clean(g->l);
    }
    acr_buf_destroy(&text);
}

Test(projection, random_histories, .timeout = 120)
{
    for (uint64_t seed = 1; seed <= 4; seed++) {
        acr_ledger_t *l = ledger_new(ACR_PERIOD_MONTH, "+09:00");
        gen_t *g = calloc(1, sizeof *g);
        g->s = seed * 0x9E3779B97F4A7C15ULL;
        g->l = l;
        const char *def[] = {"registered", "qualified", "proposal", "negotiation"};
        memcpy(g->stages, def, sizeof def);
        g->nstages = 4;
        gen_history(g, 700);
        append_random_batches(g);
        check_model(g);
        char *before = all_outputs(g);
        rebuild_same(l);
        char *after = all_outputs(g);
        cr_assert(strcmp(before, after) == 0, "seed %llu: answers differ after rebuild",
                  (unsigned long long)seed);
        free(before);
        free(after);
        for (size_t i = 0; i < g->n; i++)
            free(g->lines[i]);
        free(g->lines);
        free(g);
        ledger_done(l);
    }
}
