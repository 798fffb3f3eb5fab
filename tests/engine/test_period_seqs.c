/* test_period_seqs.c - the period_seqs index (engine/state/period_seqs.c) and the payout
 * driver's indexed run (engine/payout/pseq_walk.c): randomized histories (late and
 * backdated sales, refunds dated after their sale's period and backdated refunds,
 * adjustments, tier changes, a second plan version, promotions with a budget, closes
 * between batches) run for every period and several as-of seqs both ways, indexed and with
 * ACR_PAYOUT_FULL_SCAN=1, and must give the same statement bytes, summary and KPI lines;
 * verify must accept the index.
 * A ledger whose index does not cover its log (the marker removed: an older release's)
 * must fall back to the full scan, and a wrong index must be seen by the comparison. */
#include <lmdb.h>

#include "../../engine/payout/payout_internal.h"
#include "../../engine/store/store_internal.h"
#include "accrue/payout.h"
#include "ledger_fixture.h"

#define DAY_MS 86400000LL
#define JAN_2026_MS 1767225600000LL /* 2026-01-01T00:00:00Z */
#define HIST_SALES_MAX 256

typedef struct hist {
    uint64_t rng;
    acr_buf_t batch;   /* JSON lines of the batch being built */
    int n_ev;          /* events generated (ids) */
    int n_sales;
    int64_t sale_at[HIST_SALES_MAX];
    int64_t sale_left[HIST_SALES_MAX]; /* amount not yet refunded */
} hist_t;

static uint64_t rnd(hist_t *h, uint64_t n)
{
    h->rng ^= h->rng << 13;
    h->rng ^= h->rng >> 7;
    h->rng ^= h->rng << 17;
    return h->rng % n;
}

static void ev(hist_t *h, const char *type, int64_t at_ms, const char *data)
{
    char at[ACR_TS_BUF];
    acr_ts_format(at_ms, at);
    acr_buf_printf(&h->batch, "{\"id\":\"e%d\",\"type\":\"%s\",\"at\":\"%s\",\"data\":{%s}}\n",
                   ++h->n_ev, type, at, data);
}

static void plan(hist_t *h, int version, const char *from, int rate_bp)
{
    char d[1024];
    snprintf(d, sizeof d,
             "\"plan\":{\"plan_id\":\"standard\",\"version\":%d,\"effective_from\":\"%s\","
             "\"currency\":\"JPY\",\"ceiling_bp\":4000,\"rules\":[{\"match\":{\"tier\":\"gold\"},"
             "\"brackets\":[{\"from_minor\":0,\"rate_bp\":%d},{\"from_minor\":1000000,"
             "\"rate_bp\":2500}]},{\"match\":{},\"brackets\":[{\"from_minor\":0,\"rate_bp\":1000}]}],"
             "\"clawback_days\":90,\"new_customer_bonus_minor\":10000,\"targets\":[{"
             "\"net_revenue_minor\":1500000,\"bonus_minor\":50000}],\"cap_bp\":3000}",
             version, from, rate_bp);
    ev(h, "plan.published", JAN_2026_MS - 20 * DAY_MS + version, d);
}

static void start(hist_t *h)
{
    char d[256];
    for (int p = 1; p <= 4; p++) {
        snprintf(d, sizeof d, "\"partner_id\":\"P%d\",\"name\":\"N%d\",\"kind\":\"reseller\","
                 "\"tier\":\"%s\",\"plan_id\":\"standard\",\"currency\":\"JPY\"", p, p,
                 p % 2 ? "gold" : "silver");
        ev(h, "partner.registered", JAN_2026_MS - 31 * DAY_MS, d);
    }
    plan(h, 1, "2026-01-01", 1500);
}

/* The partner program's promotions (program.md), in half the histories: one over the
 * whole half-year with a budget that runs out part way (late sales take budget from later
 * ones), one for gold partners without a budget, ended early in round 3; so the runs of
 * every period before the last feed later sales for the budgets (acr_comm_budgets_through)
 * or, walked, need the promotions-only run, and both must give the full scan's bytes. */
static void promotions(hist_t *h)
{
    ev(h, "promotion.published", JAN_2026_MS - 10 * DAY_MS,
       "\"promotion\":{\"promo_id\":\"spiff\",\"plan_id\":\"standard\",\"from\":\"2026-01-01\","
       "\"to\":\"2026-06-30\",\"rate_bp\":500,\"per_sale_minor\":1000,\"budget_minor\":300000}");
    ev(h, "promotion.published", JAN_2026_MS - 9 * DAY_MS,
       "\"promotion\":{\"promo_id\":\"gold\",\"plan_id\":\"standard\",\"from\":\"2026-02-01\","
       "\"to\":\"2026-05-31\",\"match\":{\"tier\":\"gold\"},\"rate_bp\":800}");
}

static void sale(hist_t *h, int64_t until_ms)
{
    if (h->n_sales == HIST_SALES_MAX)
        return;
    char d[256];
    /* from Jan 2 UTC: local January at every offset, where plan v1 applies */
    int64_t at = JAN_2026_MS + DAY_MS + (int64_t)rnd(h, (uint64_t)(until_ms - JAN_2026_MS));
    int64_t amount = 1 + (int64_t)rnd(h, 3) * 7 + (int64_t)rnd(h, 900000);
    snprintf(d, sizeof d, "\"sale_id\":\"S%d\",\"partner_id\":\"P%d\",\"customer_id\":\"C%d\","
             "\"product\":\"cloud\",\"amount_minor\":%lld,\"currency\":\"JPY\"", h->n_sales,
             1 + (int)rnd(h, 4), (int)rnd(h, 12), (long long)amount);
    ev(h, "sale.recorded", at, d);
    h->sale_at[h->n_sales] = at;
    h->sale_left[h->n_sales++] = amount;
}

/* A refund of a random sale, dated 0..120 days after it: often in a later period, and in
 * random order, so later refunds of a sale are often dated before earlier ones. */
static void refund(hist_t *h)
{
    if (h->n_sales == 0)
        return;
    int s = (int)rnd(h, (uint64_t)h->n_sales);
    if (h->sale_left[s] == 0)
        return;
    int64_t amount = rnd(h, 3) == 0 ? h->sale_left[s]
                                    : 1 + (int64_t)rnd(h, (uint64_t)h->sale_left[s]);
    amount = amount > h->sale_left[s] ? h->sale_left[s] : amount;
    char d[128];
    snprintf(d, sizeof d, "\"sale_id\":\"S%d\",\"amount_minor\":%lld", s, (long long)amount);
    ev(h, "sale.refunded", h->sale_at[s] + (int64_t)rnd(h, 120) * DAY_MS + 1000, d);
    h->sale_left[s] -= amount;
}

static void other(hist_t *h, int64_t until_ms)
{
    char d[256];
    int64_t at = JAN_2026_MS + (int64_t)rnd(h, (uint64_t)(until_ms - JAN_2026_MS));
    if (rnd(h, 2) == 0) {
        snprintf(d, sizeof d, "\"partner_id\":\"P%d\",\"amount_minor\":%lld,\"currency\":\"JPY\","
                 "\"reason\":\"r\"", 1 + (int)rnd(h, 4), (long long)rnd(h, 100000) - 50000);
        ev(h, "adjustment.recorded", at, d);
    } else {
        snprintf(d, sizeof d, "\"partner_id\":\"P%d\",\"tier\":\"%s\"", 1 + (int)rnd(h, 4),
                 rnd(h, 2) ? "gold" : "silver");
        ev(h, "partner.updated", at, d);
    }
}

static void flush(hist_t *h, acr_ledger_t *l)
{
    acr_buf_append(&h->batch, "", 1); /* NUL-terminated for fx_append_ok */
    fx_append_ok(l, (const char *)h->batch.data);
    acr_buf_reset(&h->batch);
}

/* Six rounds, one per month of 2026-01..06: sales up to the round's month end (many
 * late), refunds, adjustments and tier changes; plan v2 in round 2; after each round, a
 * coin decides whether the next open period is closed. */
static void build_history(acr_ledger_t *l, uint64_t seed, int *out_closed)
{
    hist_t h = {.rng = seed * 0x9E3779B97F4A7C15ull + 1};
    acr_buf_init(&h.batch);
    start(&h);
    bool promos = seed / 2 % 2 == 0; /* seeds 1, 4, 5, 8, 9, 12: both offsets */
    if (promos)
        promotions(&h);
    int closed = 0; /* months of 2026 closed */
    for (int round = 1; round <= 6; round++) {
        int64_t until = JAN_2026_MS + (int64_t)round * 31 * DAY_MS;
        if (round == 2)
            plan(&h, 2, "2026-03-01", 1200 + (int)rnd(&h, 800));
        if (round == 3 && promos)
            ev(&h, "promotion.ended", JAN_2026_MS + 70 * DAY_MS,
               "\"promo_id\":\"gold\",\"ends_on\":\"2026-04-15\"");
        for (int i = 0; i < 30; i++) {
            uint64_t k = rnd(&h, 10);
            if (k < 5)
                sale(&h, until);
            else if (k < 8)
                refund(&h);
            else
                other(&h, until);
        }
        flush(&h, l);
        if (closed < round - 1 && rnd(&h, 2) == 0) {
            char period[32];
            snprintf(period, sizeof period, "2026-%02d", closed + 1);
            acr_payout_t po;
            acr_err_t err;
            uint64_t seq;
            acr_close_request_t req = {.period_id = period, .now_ms = INT64_MAX};
            int rc = acr_payout_close(l, &req, &po, &seq, &err);
            if (rc == ACR_EPERIOD_ORDER)
                continue; /* nothing dated after the period yet */
            ASSERT_EQ_MSG(rc, 0, "close %s: %s", period, err.msg);
            acr_payout_destroy(&po);
            closed++;
        }
    }
    acr_buf_destroy(&h.batch);
    *out_closed = closed;
}

static int run_as(acr_ledger_t *l, bool full, const char *period, uint64_t as_of,
                  acr_payout_t *out, acr_buf_t *summary, acr_err_t *err)
{
    setenv("ACR_PAYOUT_FULL_SCAN", full ? "1" : "0", 1); /* "0": the walk wherever covered */
    acr_payout_request_t req = {.period_id = period, .as_of_seq = as_of};
    int rc = acr_payout_run(l, &req, out, err);
    unsetenv("ACR_PAYOUT_FULL_SCAN");
    acr_buf_reset(summary);
    if (rc == 0)
        acr_payout_summary_json(out, summary);
    return rc;
}

/* The KPI query's run (closes ignored) both ways. */
static void compare_kpi_lines(acr_ledger_t *l, int32_t period, uint64_t x)
{
    acr_statement_t a, b;
    acr_err_t err;
    int rc[2];
    acr_statement_t *st[2] = {&a, &b};
    for (int full = 0; full < 2; full++) {
        acr_reader_t *r;
        ASSERT_EQ(acr_reader_open(l, &r, &err), 0);
        setenv("ACR_PAYOUT_FULL_SCAN", full ? "1" : "0", 1);
        rc[full] = acr__payout_lines_ignoring_closes(l, r, period, x, NULL, st[full], &err);
        unsetenv("ACR_PAYOUT_FULL_SCAN");
        acr_reader_close(r);
    }
    ASSERT_EQ(rc[0], rc[1]);
    if (rc[0] != 0)
        return;
    ASSERT_BYTES_EQ(a.csv, a.csv_len, b.csv, b.csv_len);
    acr_statement_destroy(&a);
    acr_statement_destroy(&b);
}

/* Every period 2025-12..2026-10 as of the head and of a few earlier seqs, both ways; the
 * number of runs compared with lines. */
static int compare_all(acr_ledger_t *l, uint64_t seed)
{
    acr_reader_t *r;
    acr_err_t err;
    ASSERT_EQ(acr_reader_open(l, &r, &err), 0);
    uint64_t head = acr_reader_head_seq(r);
    acr_reader_close(r);
    uint64_t xs[3] = {0, 1 + seed * 7919 % head, 1 + seed * 104729 % head};
    acr_buf_t sa, sb;
    acr_buf_init(&sa);
    acr_buf_init(&sb);
    int with_lines = 0;
    for (int m = 0; m < 11; m++) {
        char period[16];
        snprintf(period, sizeof period, m == 0 ? "2025-12" : "2026-%02d", m);
        for (int i = 0; i < 3; i++) {
            acr_payout_t a, b;
            acr_err_t ea, eb;
            int ra = run_as(l, false, period, xs[i], &a, &sa, &ea);
            int rb = run_as(l, true, period, xs[i], &b, &sb, &eb);
            ASSERT_EQ_MSG(ra, rb, "seed %llu %s as of %llu: %.100s / %.100s",
                          (unsigned long long)seed, period, (unsigned long long)xs[i], ea.msg,
                          eb.msg);
            if (ra != 0)
                continue;
            ASSERT_BYTES_EQ(a.stmt.csv, a.stmt.csv_len, b.stmt.csv, b.stmt.csv_len);
            ASSERT_BYTES_EQ(sa.data, sa.len, sb.data, sb.len);
            with_lines += a.stmt.line_count > 0;
            acr_payout_destroy(&a);
            acr_payout_destroy(&b);
            int32_t p;
            cr_assert(acr_period_parse(ACR_PERIOD_MONTH, period, strlen(period), &p));
            compare_kpi_lines(l, p, xs[i] ? xs[i] : head);
        }
    }
    acr_buf_destroy(&sa);
    acr_buf_destroy(&sb);
    return with_lines;
}

static void verify_ok(acr_ledger_t *l)
{
    acr_verify_result_t vr;
    acr_err_t err;
    ASSERT_EQ_MSG(acr_ledger_verify(l, &vr, NULL, &err), 0, "%s", err.msg);
}

Test(period_seqs, randomized_histories_both_ways, .timeout = 600)
{
    for (uint64_t seed = 1; seed <= 12; seed++) {
        fixture_t fx;
        acr_ledger_t *l = fx_open(&fx, ACR_PERIOD_MONTH, seed % 2 ? "+09:00" : "-05:00");
        int closed;
        build_history(l, seed, &closed);
        cr_assert(compare_all(l, seed) > 5, "seed %llu: runs with lines", (unsigned long long)seed);
        verify_ok(l);
        fx_close(&fx);
    }
}

/* Deletes key (period_key, seq) of period_seqs; MDB_NOTFOUND when absent. */
static int del_row(acr_ledger_t *l, uint32_t period_key, uint64_t seq)
{
    MDB_txn *txn;
    ASSERT_EQ(mdb_txn_begin(l->senv, NULL, 0, &txn), 0);
    uint8_t key[ACR__PSEQ_KEY_LEN];
    acr__pseq_key(period_key, seq, key);
    MDB_val k = {sizeof key, key};
    int rc = mdb_del(txn, l->dbi[ACR_DB_PERIOD_SEQS], &k, NULL);
    ASSERT_EQ(mdb_txn_commit(txn), 0);
    return rc;
}

static uint32_t month_key(const char *period)
{
    int32_t p;
    cr_assert(acr_period_parse(ACR_PERIOD_MONTH, period, strlen(period), &p));
    return acr__pseq_period_key(p);
}

/* S1 in July; R1 (seq 4) dated in August, then R2 (seq 5) backdated into July.
 * July's clawback of R2 depends on R1 (`before`, commissions.md): the index lists R1
 * under July too. Without that row the indexed run differs, and verify names the
 * table; without the marker the run falls back to the full scan and is right again. */
Test(period_seqs, refund_under_its_sales_period)
{
    fixture_t fx;
    acr_ledger_t *l = fx_open(&fx, ACR_PERIOD_MONTH, "+00:00");
    fx_append_ok(l, PARTNER("p-1", "P1", "gold") PLAN
                 SALE("s-1", "2026-07-02T01:00:00Z", "S1", "P1", "C1", "10001", "")
                 REFUND("r-1", "2026-08-10T00:00:00Z", "S1", "5")
                 REFUND("r-2", "2026-07-20T00:00:00Z", "S1", "5"));
    acr_payout_t a, b;
    acr_buf_t sa, sb;
    acr_buf_init(&sa);
    acr_buf_init(&sb);
    acr_err_t err;
    ASSERT_EQ_MSG(run_as(l, false, "2026-07", 0, &a, &sa, &err), 0, "%s", err.msg);
    ASSERT_EQ_MSG(run_as(l, true, "2026-07", 0, &b, &sb, &err), 0, "%s", err.msg);
    ASSERT_BYTES_EQ(a.stmt.csv, a.stmt.csv_len, b.stmt.csv, b.stmt.csv_len);
    acr_payout_destroy(&a);
    verify_ok(l);

    ASSERT_EQ(del_row(l, month_key("2026-07"), 4), 0); /* R1's second row */
    ASSERT_EQ_MSG(run_as(l, false, "2026-07", 0, &a, &sa, &err), 0, "%s", err.msg);
    cr_assert(a.stmt.csv_len != b.stmt.csv_len || memcmp(a.stmt.csv, b.stmt.csv, a.stmt.csv_len),
              "a missing row must change the indexed run (the test can fail)");
    acr_payout_destroy(&a);
    acr_verify_result_t vr;
    ASSERT_EQ(acr_ledger_verify(l, &vr, NULL, &err), ACR_EMISMATCH);
    ASSERT_STR_EQ(vr.bad_table, "period_seqs");

    ASSERT_EQ(del_row(l, ACR__PSEQ_MARKER_PERIOD, ACR__PSEQ_MARKER_SEQ), 0); /* an older ledger */
    ASSERT_EQ_MSG(run_as(l, false, "2026-07", 0, &a, &sa, &err), 0, "%s", err.msg);
    ASSERT_BYTES_EQ(a.stmt.csv, a.stmt.csv_len, b.stmt.csv, b.stmt.csv_len);
    acr_payout_destroy(&a);

    /* rebuild derives the rows and the marker again: the indexed run is right */
    ASSERT_EQ_MSG(acr_ledger_rebuild(l, NULL, &err), 0, "%s", err.msg);
    verify_ok(l);
    ASSERT_EQ_MSG(run_as(l, false, "2026-07", 0, &a, &sa, &err), 0, "%s", err.msg);
    ASSERT_BYTES_EQ(a.stmt.csv, a.stmt.csv_len, b.stmt.csv, b.stmt.csv_len);
    acr_payout_destroy(&a);
    acr_payout_destroy(&b);
    acr_buf_destroy(&sa);
    acr_buf_destroy(&sb);
    fx_close(&fx);
}

/* An indexed run checks each record it reads against its predecessor's stored hash: a
 * flipped byte in a used record is chain_broken; the full scan reports it too. */
Test(period_seqs, a_damaged_used_record_is_chain_broken)
{
    fixture_t fx;
    acr_ledger_t *l = fx_open(&fx, ACR_PERIOD_MONTH, "+09:00");
    fx_append_ok(l, WORKED);
    MDB_txn *txn;
    ASSERT_EQ(mdb_txn_begin(l->env, NULL, 0, &txn), 0);
    uint8_t key[8];
    acr__u64_be(6, key); /* S2 */
    MDB_val k = {8, key}, v;
    ASSERT_EQ(mdb_get(txn, l->dbi[ACR_DB_LOG], &k, &v), 0);
    uint8_t *copy = malloc(v.mv_size);
    memcpy(copy, v.mv_data, v.mv_size);
    copy[v.mv_size - 1] ^= 1;
    MDB_val nv = {v.mv_size, copy};
    ASSERT_EQ(mdb_put(txn, l->dbi[ACR_DB_LOG], &k, &nv, 0), 0);
    ASSERT_EQ(mdb_txn_commit(txn), 0);
    free(copy);
    acr_payout_t a;
    acr_buf_t s;
    acr_buf_init(&s);
    acr_err_t err;
    ASSERT_EQ(run_as(l, false, "2026-07", 0, &a, &s, &err), ACR_ECHAIN_BROKEN);
    cr_assert(strstr(err.msg, "seq 6") != NULL, "%s", err.msg);
    ASSERT_EQ(run_as(l, true, "2026-07", 0, &a, &s, &err), ACR_ECHAIN_BROKEN);
    acr_buf_destroy(&s);
    fx_close(&fx);
}

/* The rows of records scattered over the log (the every-run list; a refund under its sale's
 * period) carry a copy: the chain hash of seq - 1, then the log's value, byte for byte, so an
 * indexed run reads them from the index. A flipped byte in a copy is refused by the run (the
 * copy's link does not check), seen by verify, and the full scan is not affected. */
Test(period_seqs, scattered_rows_carry_a_checked_copy)
{
    fixture_t fx;
    acr_ledger_t *l = fx_open(&fx, ACR_PERIOD_MONTH, "+09:00");
    /* a sale in August, so July's run takes the index; an August refund of a July sale */
    fx_append_ok(l, WORKED SALE("s-4", "2026-08-03T01:00:00Z", "S4", "P2", "C3", "1000", "")
                 REFUND("r-2", "2026-08-05T00:00:00Z", "S2", "1000"));
    MDB_txn *txn, *ltxn;
    ASSERT_EQ(mdb_txn_begin(l->senv, NULL, 0, &txn), 0);
    ASSERT_EQ(mdb_txn_begin(l->env, NULL, MDB_RDONLY, &ltxn), 0);
    MDB_cursor *cur;
    ASSERT_EQ(mdb_cursor_open(txn, l->dbi[ACR_DB_PERIOD_SEQS], &cur), 0);
    uint8_t key[ACR__PSEQ_KEY_LEN];
    acr__pseq_key(ACR__PSEQ_EVERY_RUN, 0, key);
    MDB_val k = {sizeof key, key}, v;
    int copies = 0, plain = 0, refund_copies = 0;
    uint64_t first_seq = 0;
    uint8_t *row = NULL;
    size_t row_len = 0;
    for (int rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        const uint8_t *p = k.mv_data;
        uint64_t seq = acr__be_u64(p + 4);
        bool every = acr__pseq_key_period(p) == ACR__PSEQ_EVERY_RUN;
        if (seq == ACR__PSEQ_MARKER_SEQ)
            continue;
        if (v.mv_size == 1) {
            cr_assert(!every, "an every-run row without a copy (seq %llu)",
                      (unsigned long long)seq);
            plain++;
            continue;
        }
        copies++;
        refund_copies += !every;
        /* the copy: type, hash(seq - 1), then exactly the log's value of seq */
        uint8_t lk[8], prev[ACR_HASH_LEN];
        acr__u64_be(seq, lk);
        MDB_val lkey = {8, lk}, lv, pv;
        ASSERT_EQ(mdb_get(ltxn, l->dbi[ACR_DB_LOG], &lkey, &lv), 0);
        ASSERT_BYTES_EQ((const uint8_t *)v.mv_data + ACR__PSEQ_COPY_OFF,
                        v.mv_size - ACR__PSEQ_COPY_OFF, lv.mv_data, lv.mv_size);
        if (seq == 1) {
            acr__genesis(l, prev);
        } else {
            acr__u64_be(seq - 1, lk);
            ASSERT_EQ(mdb_get(ltxn, l->dbi[ACR_DB_LOG], &lkey, &pv), 0);
            memcpy(prev, pv.mv_data, ACR_HASH_LEN);
        }
        ASSERT_BYTES_EQ((const uint8_t *)v.mv_data + 1, ACR_HASH_LEN, prev, ACR_HASH_LEN);
        if (every && first_seq == 0) {
            first_seq = seq;
            row_len = v.mv_size;
            row = malloc(row_len);
            memcpy(row, v.mv_data, row_len);
        }
    }
    mdb_cursor_close(cur);
    mdb_txn_abort(ltxn);
    cr_assert(copies > 0 && plain > 0 && refund_copies == 1 && row != NULL,
              "copies %d (refunds %d), plain %d", copies, refund_copies, plain);

    acr_payout_t a, b;
    acr_buf_t sa, sb;
    acr_buf_init(&sa);
    acr_buf_init(&sb);
    acr_err_t err;
    ASSERT_EQ_MSG(run_as(l, true, "2026-07", 0, &b, &sb, &err), 0, "%s", err.msg);

    row[row_len - 1] ^= 1; /* the copy's last byte: its record */
    acr__pseq_key(ACR__PSEQ_EVERY_RUN, first_seq, key);
    k = (MDB_val){sizeof key, key};
    v = (MDB_val){row_len, row};
    ASSERT_EQ(mdb_put(txn, l->dbi[ACR_DB_PERIOD_SEQS], &k, &v, 0), 0);
    ASSERT_EQ(mdb_txn_commit(txn), 0);
    free(row);
    ASSERT_EQ(run_as(l, false, "2026-07", 0, &a, &sa, &err), ACR_ECORRUPT);
    cr_assert(strstr(err.msg, "copy of seq") != NULL, "%s", err.msg);
    acr_verify_result_t vr;
    ASSERT_EQ(acr_ledger_verify(l, &vr, NULL, &err), ACR_EMISMATCH);
    ASSERT_STR_EQ(vr.bad_table, "period_seqs");
    ASSERT_EQ_MSG(run_as(l, true, "2026-07", 0, &a, &sa, &err), 0, "%s", err.msg);
    ASSERT_BYTES_EQ(a.stmt.csv, a.stmt.csv_len, b.stmt.csv, b.stmt.csv_len);
    acr_payout_destroy(&a);
    acr_payout_destroy(&b);
    acr_buf_destroy(&sa);
    acr_buf_destroy(&sb);
    fx_close(&fx);
}
