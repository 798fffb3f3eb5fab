/* promo_reach.c - how far the program's promotions reach past a payout period, read from
 * the state's program table for the payout driver (engine/payout may not read state
 * itself: docs/architecture.md, "Allowed directions"; log may). */
#include "../state/program_internal.h"
#include "log_internal.h"

int acr__promo_reach(const acr_ledger_t *l, MDB_txn *stxn, int32_t period, int32_t *out_to,
                     bool *out_spans, acr_err_t *err)
{
    MDB_cursor *cur;
    MDB_val k = acr__val("P", 1), v;
    int rc = mdb_cursor_open(stxn, l->dbi[ACR_DB_PROGRAM], &cur);
    if (rc != 0)
        return acr__mdb_err(rc, err, "program");
    *out_to = INT32_MIN;
    *out_spans = false;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
         rc == 0 && k.mv_size > 0 && *(const char *)k.mv_data == 'P';
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        acr__prog_promo_t row;
        if (acr__prog_promo_decode(v.mv_data, v.mv_size, &row) != 0) {
            mdb_cursor_close(cur);
            return acr_err_set(err, ACR_ECORRUPT, "a promotion row is damaged: run `accrue "
                               "rebuild`");
        }
        int32_t from = acr_period_of_day(l->cfg.period_kind, (int32_t)row.from_day);
        int32_t to = acr_period_of_day(l->cfg.period_kind, (int32_t)row.to_day);
        *out_to = to > *out_to ? to : *out_to;
        *out_spans = *out_spans || (from <= period && to > period);
    }
    mdb_cursor_close(cur);
    return rc != 0 && rc != MDB_NOTFOUND ? acr__mdb_err(rc, err, "program") : 0;
}
