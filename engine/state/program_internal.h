/* program_internal.h - the partner program's rows in the `program` table
 * (engine/program.c writes them, engine/program_query.c reads them). Nothing
 * outside engine/ includes it. */
#ifndef ACCRUE_PROGRAM_INTERNAL_H
#define ACCRUE_PROGRAM_INTERNAL_H

#include "accrue/plan.h"
#include "../projection/projection_internal.h"
#include "state_internal.h"

#define ACR__PROG_NO_DUE INT64_MIN /* an announcement without `due` */

/* 'P' rows: a promotion. ends_day is the smallest ends_on so far (INT64_MAX: none). */
typedef struct acr__prog_promo {
    acr_str_t plan_id;
    int64_t rate_bp, from_day, to_day, ends_day, seq, at_ms;
    acr_str_t doc; /* the stored promotion JSON */
} acr__prog_promo_t;

/* 'A' rows: an announcement (its body stays in the log). */
typedef struct acr__prog_ann {
    int64_t at_ms, seq, requires_ack, due_day; /* due_day ACR__PROG_NO_DUE when absent */
    acr_str_t title;
    acr_str_t audience; /* compact JSON object, "{}" for everyone */
} acr__prog_ann_t;

int acr__prog_promo_decode(const void *p, size_t n, acr__prog_promo_t *out);
int acr__prog_ann_decode(const void *p, size_t n, acr__prog_ann_t *out);

/* Key helpers: space letter + id; (at, seq) as 16 sortable bytes. */
acr__pkey_t acr__prog_key(char space, acr_str_t a);
void acr__prog_key_at_seq(acr__pkey_t *k, int64_t at_ms, uint64_t seq);
int64_t acr__prog_at_of(const uint8_t b[8]);

/* 1 when the partner (its current projection row) is in the audience, 0 not, -1 damaged. */
int acr__prog_in_audience(acr_str_t audience, const acr__prow_t *p);

/* The `at` of a partner's registration, from its 'G' row: 1 found, 0 none (a ledger written
 * before the rows existed, until `accrue rebuild`), < 0 a store error. */
int acr__prog_registered_at(acr__txn_t *tx, acr_str_t partner_id, int64_t *at_ms,
                            acr_err_t *err);

/* The program's rules and rows for ev (the five program events and training.completed),
 * after state.c's own rules passed. */
int acr__prog_apply(acr__txn_t *tx, const acr_event_t *ev, acr_err_t *err);
/* plan.published: the ceiling against the plan's promotions, and the plan's headroom. */
int acr__prog_plan_check(acr__txn_t *tx, const acr_plan_t *plan, acr_err_t *err);

/* Inside a caller's read transaction: the partner's onboarding object (appended to out), and
 * its certification as of t_ms. */
int acr__prog_onboarding_txn(acr_ledger_t *l, MDB_txn *txn, acr_str_t pid, acr_buf_t *out,
                             acr_err_t *err);
int acr__prog_certified_txn(acr_ledger_t *l, MDB_txn *txn, acr_str_t pid, int64_t t_ms,
                            bool *out, acr_err_t *err);

#endif
