/* projection.c - placeholder until the projection tables land: applies
 * nothing, so the validation state alone is kept. */
#include "internal.h"

int acr__proj_apply(acr__txn_t *tx, const acr_event_t *ev, acr_err_t *err)
{
    (void)tx;
    (void)ev;
    (void)err;
    return 0;
}
