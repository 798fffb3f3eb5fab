/* period_seqs.c - the period_seqs table: which seqs a payout run of a period reads.
 *
 * A run of period U depends only on the sales, refunds and adjustments of the periods
 * <= U, the refunds of those sales whatever their own period, and the events every run
 * reads (partners, plans, the program, closes): commissions.md and docs/benchmarks.md,
 * "A run in proportion to its periods". This file writes, in the write transaction of
 * each accepted event (append, group commit, the replica's apply, rebuild's and verify's
 * replay: every caller of acr__state_apply), the rows that let the payout driver list
 * exactly those seqs (layout in store_internal.h). The rows of one period are keyed by
 * seq, so within a period each put lands at the end of its range.
 */
#include "accrue/commission.h"
#include "accrue/date.h"
#include "pseq_internal.h"

/* The types listed under their own period; the others the processor uses are read by
 * every run. */
#define DATED_MASK                                                                                 \
    ((1u << ACR_EV_SALE_RECORDED) | (1u << ACR_EV_SALE_REFUNDED) |                                \
     (1u << ACR_EV_ADJUSTMENT_RECORDED))
#define EVERY_RUN_MASK (ACR_COMM_TYPE_MASK & ~DATED_MASK)

_Static_assert((DATED_MASK & ACR_COMM_TYPE_MASK) == DATED_MASK,
               "the processor reads every dated type");

static uint32_t period_key_of(const acr__txn_t *tx, int64_t at_ms)
{
    int32_t day = acr_local_day(at_ms, tx->utc_offset_min);
    return acr__pseq_period_key(acr_period_of_day(tx->ledger->cfg.period_kind, day));
}

static int put_row(acr__txn_t *tx, uint32_t period_key, const acr_event_t *ev, acr_err_t *err)
{
    uint8_t key[ACR__PSEQ_KEY_LEN], type = (uint8_t)ev->type;
    acr__pseq_key(period_key, ev->seq, key);
    MDB_val k = acr__val(key, sizeof key), v = acr__val(&type, 1);
    int rc = acr__dput(tx, ACR_DB_PERIOD_SEQS, &k, &v, 0);
    return rc ? acr__tx_fail(tx, rc, err, acr__db_name(ACR_DB_PERIOD_SEQS)) : 0;
}

/* The marker lives in tx's row cache (write-back): one put per batch, not per event. */
static int touch_marker(acr__txn_t *tx, uint64_t seq, acr_err_t *err)
{
    uint8_t key[ACR__PSEQ_KEY_LEN], val[ACR__PSEQ_MARKER_LEN];
    acr__pseq_key(ACR__PSEQ_EVERY_RUN, ACR__PSEQ_MARKER_SEQ, key);
    bool fresh;
    acr__cached_row_t *e = acr__cache_get(tx, ACR_DB_PERIOD_SEQS, key, sizeof key, &fresh);
    if (e == NULL)
        return acr_err_set(err, ACR_ENOMEM, "out of memory");
    if (fresh && !tx->cache.empty) {
        MDB_val k = acr__val(key, sizeof key), v;
        int rc = mdb_get(tx->txn, tx->dbi[ACR_DB_PERIOD_SEQS], &k, &v);
        if (rc != 0 && rc != MDB_NOTFOUND)
            return acr__tx_fail(tx, rc, err, acr__db_name(ACR_DB_PERIOD_SEQS));
        if (rc == 0 && acr__cached_row_set(tx, e, v.mv_data, v.mv_size) != 0)
            return acr_err_set(err, ACR_ENOMEM, "out of memory");
    }
    uint64_t first = seq;
    if (e->state == ACR__ROW_PRESENT && e->vlen == ACR__PSEQ_MARKER_LEN &&
        e->val[0] == ACR__PSEQ_FORMAT)
        first = acr__be_u64(e->val + 1);
    val[0] = ACR__PSEQ_FORMAT;
    acr__u64_be(first, val + 1);
    acr__u64_be(seq, val + 9);
    if (acr__cached_row_set(tx, e, val, sizeof val) != 0)
        return acr_err_set(err, ACR_ENOMEM, "out of memory");
    e->dirty = true;
    return 0;
}

int acr__pseq_apply(acr__txn_t *tx, const acr_event_t *ev, acr_err_t *err)
{
    int rc = 0;
    uint32_t bit = 1u << ev->type;
    if (bit & DATED_MASK)
        rc = put_row(tx, period_key_of(tx, ev->at_ms), ev, err);
    else if (bit & EVERY_RUN_MASK)
        rc = put_row(tx, ACR__PSEQ_EVERY_RUN, ev, err);
    return rc ? rc : touch_marker(tx, ev->seq, err);
}

int acr__pseq_refund_sale(acr__txn_t *tx, const acr_event_t *ev, int64_t sale_at_ms,
                          acr_err_t *err)
{
    uint32_t own = period_key_of(tx, ev->at_ms), sale = period_key_of(tx, sale_at_ms);
    return sale == own ? 0 : put_row(tx, sale, ev, err);
}
