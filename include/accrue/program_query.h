/* program_query.h - the partner program's read side (engine/query/program_query.c):
 * onboarding and certification, announcements, promotions, answered in JSON like
 * projection.h's queries (program.md). */
#ifndef ACCRUE_PROGRAM_QUERY_H
#define ACCRUE_PROGRAM_QUERY_H

#include <stdbool.h>
#include <stdint.h>

#include "accrue/error.h"

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
 * local day that decides overdue. with_body adds each announcement's "body" (read from its
 * event): the HTTP answer carries it, the command's JSON has exactly program.md's keys. */
int acr_query_announcements(struct acr_ledger *ledger, const char *partner_id,
                            int32_t today_day, bool with_body, struct acr_buf *out,
                            acr_err_t *err);
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
