/* pseq_internal.h - the period_seqs rows of engine/state (period_seqs.c writes them,
 * state.c calls it; the layout is in store_internal.h, engine/payout reads them). Nothing
 * outside engine/state includes it. */
#ifndef ACCRUE_ENGINE_PSEQ_INTERNAL_H
#define ACCRUE_ENGINE_PSEQ_INTERNAL_H

#include "state_internal.h"

/* Writes ev's row (its own period for a sale, refund or adjustment, the "every run" list
 * for the other types the commission processor uses, none for the rest) and moves the
 * marker's last seq to ev->seq. Call once ev passed every rule. 0, ACR_ENOMEM or a store
 * error (the transaction is then aborted). */
int acr__pseq_apply(acr__txn_t *tx, const acr_event_t *ev, acr_err_t *err);

/* The second row of a refund: under the period of its sale (business time sale_at_ms)
 * when that is not the refund's own. 0 or a store error. */
int acr__pseq_refund_sale(acr__txn_t *tx, const acr_event_t *ev, int64_t sale_at_ms,
                          acr_err_t *err);

#endif
