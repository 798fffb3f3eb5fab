/* kpi_memo.h - the KPI's commission sums, kept per window within a process (kpi_memo.c).
 * Engine-internal: query.c asks it before it runs the processor and hands it what it ran. */
#ifndef ACCRUE_KPI_MEMO_H
#define ACCRUE_KPI_MEMO_H

#include "accrue/commission.h"
#include "accrue/log.h"

typedef struct memo_sums memo_sums_t;

/* One request's handle on the memo. */
typedef struct acr__kpi_memo_ref {
    memo_sums_t *sums;    /* a hit: the sums it holds until acr__kpi_memo_release */
    acr_statement_t view; /* a hit: partners and partner_count only (window_minor) */
    int slot;             /* a miss: the slot the caller's result goes to (-1: none) */
    bool computing;       /* a miss: this caller marked the slot as being computed */
    int32_t o_lo, o_hi;
    uint64_t head;        /* the snapshot's head seq and chain hash */
    uint8_t head_hash[ACR_HASH_LEN];
} acr__kpi_memo_ref_t;

/* The per-partner commission sums of origins [o_lo, o_hi] as of r's head: 1 and ref->view
 * when the memo holds them (computed at this head, or at an earlier one and no event since
 * reaches the window); 0 when the caller must run the processor (then, whatever happens,
 * acr__kpi_memo_publish). A caller asking for a window another thread is computing at the
 * same head waits for that result. Never fails: anything unexpected is a miss. */
int acr__kpi_memo_find(acr_ledger_t *l, acr_reader_t *r, int32_t o_lo, int32_t o_hi,
                       acr__kpi_memo_ref_t *ref);
/* After a miss: stmt's partner sums (window_minor) as of ref->head, or NULL when the run
 * failed. */
void acr__kpi_memo_publish(acr_ledger_t *l, acr__kpi_memo_ref_t *ref, const acr_statement_t *stmt);
/* After a hit, once ref->view is no longer read. */
void acr__kpi_memo_release(acr__kpi_memo_ref_t *ref);

#endif
