/* program.h - the partner program's documents (program.md): promotions.
 *
 * A promotion document arrives inside promotion.published and is parsed into
 * an owned acr_promo_t here, by the same code for the engine (validation) and
 * the commission processor (replay), so a stored promotion is known-good when
 * the processor reads it. Every document rule of program.md is checked;
 * every violation is invalid_value naming the field ("promotion.rate_bp").
 * Rules that need the ledger (promo_id new, plan published, the ceiling) are
 * the caller's.
 */
#ifndef ACCRUE_PROGRAM_H
#define ACCRUE_PROGRAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "accrue/error.h"

#define ACR_PROMO_MODULES_MAX 64   /* program.md: an onboarding list holds 1..64 modules */
#define ACR_ANNOUNCEMENT_BODY_MAX 8192 /* program.md: body <= 8 KiB */

typedef struct acr_promo {
    char promo_id[65];
    char plan_id[65];
    int32_t from_day;   /* local dates, both included */
    int32_t to_day;
    unsigned match_has; /* ACR_MATCH_* bits (plan.h) */
    char *tier;         /* owned, NUL-terminated; NULL when absent */
    char *kind;
    char *region;
    char *product;
    bool certified;     /* when ACR_MATCH_CERTIFIED */
    int32_t rate_bp;    /* 0..10000 */
    int64_t per_sale_minor;
    bool has_budget;
    int64_t budget_minor; /* >= 1 when has_budget */
    char *title;        /* owned; NULL when absent */
} acr_promo_t;

/* Parses and validates a promotion document. On success *out owns its memory
 * (acr_promo_destroy); on failure *out is zeroed and err says why (code
 * ACR_EINVALID_VALUE or ACR_ENOMEM, field "promotion.<key>"). */
int acr_promo_parse(const char *json, size_t len, acr_promo_t *out, acr_err_t *err);
void acr_promo_destroy(acr_promo_t *p);

/* want = round_half_even(amount x rate_bp / 10000) + per_sale_minor (program.md, The
 * amount); false when it leaves int64. */
bool acr_promo_want(const acr_promo_t *p, int64_t amount_minor, int64_t *out);

#endif
