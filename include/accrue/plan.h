/* plan.h - commission plan documents (commissions.md, Plan document).
 *
 * A plan version is parsed from its JSON text into an owned acr_plan_t; all
 * the document rules are checked here (invalid_plan with the reason,
 * above_ceiling, invalid_value, invalid_id, invalid_currency). Rules that need
 * the ledger (stale_version, currency vs earlier versions and partners) are
 * the caller's.
 */
#ifndef ACCRUE_PLAN_H
#define ACCRUE_PLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "accrue/error.h"

typedef struct acr_bracket {
    int64_t from_minor; /* lower bound of the bracket, first is 0 */
    int32_t rate_bp;    /* rate on the part of revenue inside the bracket */
} acr_bracket_t;

/* Match keys of a rule (bits of acr_rule_t.match_has). */
enum {
    ACR_MATCH_TIER = 1,
    ACR_MATCH_KIND = 2,
    ACR_MATCH_REGION = 4,
    ACR_MATCH_PRODUCT = 8,
    ACR_MATCH_CERTIFIED = 16, /* program.md: "certified": true|false */
};

typedef struct acr_rule {
    unsigned match_has;   /* ACR_MATCH_* bits present in "match" */
    char *tier;           /* owned, NUL-terminated; NULL when absent */
    char *kind;
    char *region;
    char *product;
    bool certified;       /* the wanted certification, when ACR_MATCH_CERTIFIED */
    acr_bracket_t *brackets; /* owned, bracket_count >= 1 */
    uint32_t bracket_count;
} acr_rule_t;

typedef struct acr_target {
    int64_t net_revenue_minor; /* threshold, strictly increasing */
    int64_t bonus_minor;       /* paid when net >= threshold (highest one reached) */
} acr_target_t;

typedef struct acr_plan {
    char plan_id[65];
    int64_t version;            /* >= 1 */
    int32_t effective_from_day; /* local date as a day number */
    char currency[4];
    int32_t ceiling_bp;
    acr_rule_t *rules; /* owned */
    uint32_t rule_count;
    bool has_clawback_days;
    int64_t clawback_days;
    int64_t new_customer_bonus_minor; /* 0 when absent */
    acr_target_t *targets;            /* owned, may be NULL */
    uint32_t target_count;
    bool has_cap;
    int32_t cap_bp;
} acr_plan_t;

/* Parses and validates a plan document. On success *out owns its memory
 * (release with acr_plan_destroy); on failure *out is zeroed and err says why
 * (code ACR_EINVALID_PLAN / ACR_EABOVE_CEILING / ACR_EINVALID_VALUE / ...,
 * field "plan.rules[0].brackets[1].from_minor" style). */
int acr_plan_parse(const char *json, size_t len, acr_plan_t *out, acr_err_t *err);
void acr_plan_destroy(acr_plan_t *plan);

/* The index of the first rule matching the attributes (NULL = the partner or
 * sale does not have it, which matches no value), or -1. */
int acr_plan_match(const acr_plan_t *plan, const char *tier, const char *kind,
                   const char *region, const char *product, size_t product_len);
/* The same with the partner's certification (0 / 1; -1 unknown: a rule with a
 * "certified" key never matches). acr_plan_match is this with -1. */
int acr_plan_match_cert(const acr_plan_t *plan, const char *tier, const char *kind,
                        const char *region, const char *product, size_t product_len,
                        int certified);

/* The highest rate_bp of any bracket of any rule: a promotion's rate on top of it must stay
 * within ceiling_bp (program.md, Ceiling). */
int32_t acr_plan_max_rate(const acr_plan_t *plan);

#endif
