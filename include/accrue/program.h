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

/* ---- queries (engine/program_query.c), JSON like projection.h's ---------- */

struct acr_ledger;
struct acr_buf;

/* `accrue onboarding --format json`: one object per partner (sorted by partner_id; only
 * partner_id when given, else ACR_ENOT_FOUND): partner_id, modules (the current list: the
 * latest by (at, seq)), completed, missing, certified (as of +inf), certified_on (local date
 * or null), reps [{rep_id, modules, completed, missing, certified, certified_on}]. */
int acr_query_onboarding(struct acr_ledger *ledger, const char *partner_id,
                         struct acr_buf *out, acr_err_t *err);
/* The same object alone (no array), for partner show and GET /v1/partners/{id}. */
int acr_query_onboarding_one(struct acr_ledger *ledger, const char *partner_id,
                             struct acr_buf *out, acr_err_t *err);
/* Whether the partner is certified as of t_ms (kpi: the period's end - 1 ms). */
int acr_query_certified_at(struct acr_ledger *ledger, const char *partner_id, int64_t t_ms,
                           bool *out, acr_err_t *err);

/* `accrue announcements --format json` (program.md); partner_id NULL: every announcement
 * with its counts; else that partner's announcements with their state. today_day: the
 * local day that decides overdue. */
int acr_query_announcements(struct acr_ledger *ledger, const char *partner_id,
                            int32_t today_day, struct acr_buf *out, acr_err_t *err);
/* Whether an announcement exists and (partner_id not NULL) holds the partner in its
 * audience: the HTTP 404 rule. */
int acr_query_announcement_visible(struct acr_ledger *ledger, const char *announcement_id,
                                   const char *partner_id, bool *exists, bool *visible,
                                   acr_err_t *err);

/* `accrue promotion list --format json`: every promotion in publishing order with promo_id,
 * plan_id, title, from, to, last_day, rate_bp, lines, total_minor, budget_minor (null),
 * used_minor, left_minor (null without a budget), as of the head, closes ignored. */
int acr_query_promotions(struct acr_ledger *ledger, struct acr_buf *out, acr_err_t *err);

#endif
