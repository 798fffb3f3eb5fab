/* plan.c - commission plan documents: strict parsing and rule matching.
 *
 * A plan version arrives as JSON text (plan.published or a what-if file) and
 * is turned into an owned acr_plan_t. Every document rule of commissions.md
 * is checked here, so a stored plan is known-good when the processor reads
 * it: unknown keys, wrong JSON types and structural rules are invalid_plan,
 * |amount| > 10^15 is invalid_value, a rate above the ceiling above_ceiling,
 * a bad plan_id invalid_id, an unknown currency invalid_currency. Field paths
 * name the exact place ("plan.rules[0].brackets[1].from_minor"). Rules that
 * need the ledger (stale_version, currency of earlier versions) are the
 * caller's.
 */
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "accrue/date.h"
#include "accrue/schema.h"
#include "accrue/jsonmem.h"
#include "accrue/limits.h"
#include "accrue/plan.h"

#define FIELD_LEN 192 /* room for the longest path, "plan.rules[255].brackets[63]..." */


/* Formats a field path into a FIELD_LEN buffer (truncating, never overflowing). */
static void setpath(char *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void setpath(char *out, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out, FIELD_LEN, fmt, ap);
    va_end(ap);
}

static int fail(acr_err_t *err, int code, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(acr_err_t *err, int code, const char *field, const char *fmt, ...)
{
    if (err == NULL)
        return code;
    char msg[sizeof err->msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    acr_err_set(err, code, "%s: %s", field, msg);
    snprintf(err->field, sizeof err->field, "%s", field);
    return code;
}

/* Rejects any key of obj not in allowed (NULL-terminated). */
static int check_keys(const json_t *obj, const char *const *allowed, const char *path,
                      acr_err_t *err)
{
    const char *key;
    json_t *val;
    json_object_foreach((json_t *)obj, key, val) {
        (void)val;
        bool known = false;
        for (size_t i = 0; allowed[i] != NULL && !known; i++)
            known = strcmp(allowed[i], key) == 0;
        if (!known) {
            char field[FIELD_LEN];
            setpath(field, "%s.%s", path, key);
            return fail(err, ACR_EINVALID_PLAN, field, "unknown field");
        }
    }
    return 0;
}

typedef struct int_spec {
    bool required;
    bool amount; /* |v| <= 10^15, else invalid_value */
    int64_t min;
    int64_t max;
} int_spec_t;

/* Reads obj[key] as an integer under spec; *present says whether it was there. */
static int get_int(const json_t *obj, const char *key, const char *path, int_spec_t spec,
                   int64_t *out, bool *present, acr_err_t *err)
{
    char field[FIELD_LEN];
    setpath(field, "%s.%s", path, key);
    const json_t *v = json_object_get(obj, key);
    if (present != NULL)
        *present = v != NULL;
    if (v == NULL)
        return spec.required ? fail(err, ACR_EINVALID_PLAN, field, "missing field") : 0;
    if (!json_is_integer(v))
        return fail(err, ACR_EINVALID_PLAN, field, "must be an integer");
    json_int_t x = json_integer_value(v);
    if (spec.amount && (x > ACR_AMOUNT_ABS_MAX || x < -ACR_AMOUNT_ABS_MAX))
        return fail(err, ACR_EINVALID_VALUE, field, "amount beyond 10^15 in absolute value");
    if (x < spec.min || x > spec.max)
        return fail(err, ACR_EINVALID_PLAN, field, "must be in %lld..%lld", (long long)spec.min,
                    (long long)spec.max);
    *out = (int64_t)x;
    return 0;
}

static const json_t *get_typed(const json_t *obj, const char *key, const char *path,
                               json_type type, bool required, int *rc, acr_err_t *err)
{
    static const char *const type_names[] = {"an object", "an array", "a string"};
    char field[FIELD_LEN];
    setpath(field, "%s.%s", path, key);
    const json_t *v = json_object_get(obj, key);
    *rc = 0;
    if (v == NULL) {
        if (required)
            *rc = fail(err, ACR_EINVALID_PLAN, field, "missing field");
        return NULL;
    }
    if (json_typeof(v) != type) {
        int t = type == JSON_OBJECT ? 0 : type == JSON_ARRAY ? 1 : 2;
        *rc = fail(err, ACR_EINVALID_PLAN, field, "must be %s", type_names[t]);
        return NULL;
    }
    return v;
}

static bool id_valid(const char *s, size_t n)
{
    if (n < 1 || n > ACR_ID_LEN_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                  (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == ':' || ch == '-';
        if (!ok)
            return false;
    }
    return true;
}

static int parse_match(const json_t *m, const char *path, acr_rule_t *rule, acr_err_t *err)
{
    static const char *const keys[] = {"tier", "kind", "region", "product", "certified", NULL};
    int rc = check_keys(m, keys, path, err);
    if (rc != 0)
        return rc;
    const json_t *cert = json_object_get(m, "certified");
    if (cert != NULL) { /* program.md: the partner's certification as of the sale */
        char field[FIELD_LEN];
        setpath(field, "%s.certified", path);
        if (!json_is_boolean(cert))
            return fail(err, ACR_EINVALID_PLAN, field, "must be true or false");
        rule->certified = json_is_true(cert);
        rule->match_has |= ACR_MATCH_CERTIFIED;
    }
    char **slots[] = {&rule->tier, &rule->kind, &rule->region, &rule->product};
    for (unsigned k = 0; k < 4; k++) {
        const json_t *v = get_typed(m, keys[k], path, JSON_STRING, false, &rc, err);
        if (rc != 0)
            return rc;
        if (v == NULL)
            continue;
        size_t n = json_string_length(v);
        const char *s = json_string_value(v);
        char field[FIELD_LEN];
        setpath(field, "%s.%s", path, keys[k]);
        if (n > ACR_STRING_LEN_MAX || memchr(s, '\0', n) != NULL)
            return fail(err, ACR_EINVALID_PLAN, field, "must be a string of at most %d bytes",
                        ACR_STRING_LEN_MAX);
        *slots[k] = malloc(n + 1);
        if (*slots[k] == NULL)
            return fail(err, ACR_ENOMEM, field, "out of memory");
        memcpy(*slots[k], s, n + 1);
        rule->match_has |= 1u << k;
    }
    return 0;
}

static int parse_brackets(const json_t *arr, const char *path, int32_t ceiling_bp,
                          acr_rule_t *rule, acr_err_t *err)
{
    static const char *const keys[] = {"from_minor", "rate_bp", NULL};
    size_t n = json_array_size(arr);
    if (n < 1 || n > ACR_PLAN_BRACKETS_MAX)
        return fail(err, ACR_EINVALID_PLAN, path, "must hold 1..%d brackets",
                    ACR_PLAN_BRACKETS_MAX);
    rule->brackets = calloc(n, sizeof *rule->brackets);
    if (rule->brackets == NULL)
        return fail(err, ACR_ENOMEM, path, "out of memory");
    for (size_t i = 0; i < n; i++) {
        char bpath[FIELD_LEN], field[FIELD_LEN];
        setpath(bpath, "%s[%zu]", path, i);
        const json_t *b = json_array_get(arr, i);
        if (!json_is_object(b))
            return fail(err, ACR_EINVALID_PLAN, bpath, "must be an object");
        int rc = check_keys(b, keys, bpath, err);
        int64_t from = 0, rate = 0;
        int_spec_t from_spec = {true, true, INT64_MIN, INT64_MAX};
        int_spec_t rate_spec = {true, false, 0, ACR_BP_MAX};
        if (rc == 0)
            rc = get_int(b, "from_minor", bpath, from_spec, &from, NULL, err);
        if (rc == 0)
            rc = get_int(b, "rate_bp", bpath, rate_spec, &rate, NULL, err);
        if (rc != 0)
            return rc;
        setpath(field, "%s.from_minor", bpath);
        if (i == 0 && from != 0)
            return fail(err, ACR_EINVALID_PLAN, field, "the first bracket must start at 0");
        if (i > 0 && from <= rule->brackets[i - 1].from_minor)
            return fail(err, ACR_EINVALID_PLAN, field, "must be strictly increasing");
        setpath(field, "%s.rate_bp", bpath);
        if (rate > ceiling_bp)
            return fail(err, ACR_EABOVE_CEILING, field, "rate %lld bp above ceiling_bp %d",
                        (long long)rate, (int)ceiling_bp);
        rule->brackets[i].from_minor = from;
        rule->brackets[i].rate_bp = (int32_t)rate;
        rule->bracket_count = (uint32_t)(i + 1);
    }
    return 0;
}

static int parse_rules(const json_t *arr, acr_plan_t *plan, acr_err_t *err)
{
    static const char *const keys[] = {"match", "brackets", NULL};
    size_t n = json_array_size(arr);
    if (n < 1 || n > ACR_PLAN_RULES_MAX)
        return fail(err, ACR_EINVALID_PLAN, "plan.rules", "must hold 1..%d rules",
                    ACR_PLAN_RULES_MAX);
    plan->rules = calloc(n, sizeof *plan->rules);
    if (plan->rules == NULL)
        return fail(err, ACR_ENOMEM, "plan.rules", "out of memory");
    plan->rule_count = (uint32_t)n;
    for (size_t i = 0; i < n; i++) {
        char path[FIELD_LEN], sub[FIELD_LEN];
        setpath(path, "plan.rules[%zu]", i);
        const json_t *r = json_array_get(arr, i);
        if (!json_is_object(r))
            return fail(err, ACR_EINVALID_PLAN, path, "must be an object");
        int rc = check_keys(r, keys, path, err);
        if (rc != 0)
            return rc;
        const json_t *m = get_typed(r, "match", path, JSON_OBJECT, true, &rc, err);
        if (rc != 0)
            return rc;
        setpath(sub, "%s.match", path);
        if ((rc = parse_match(m, sub, &plan->rules[i], err)) != 0)
            return rc;
        const json_t *b = get_typed(r, "brackets", path, JSON_ARRAY, true, &rc, err);
        if (rc != 0)
            return rc;
        setpath(sub, "%s.brackets", path);
        if ((rc = parse_brackets(b, sub, plan->ceiling_bp, &plan->rules[i], err)) != 0)
            return rc;
    }
    return 0;
}

static int parse_targets(const json_t *arr, acr_plan_t *plan, acr_err_t *err)
{
    static const char *const keys[] = {"net_revenue_minor", "bonus_minor", NULL};
    size_t n = json_array_size(arr);
    if (n > ACR_PLAN_TARGETS_MAX)
        return fail(err, ACR_EINVALID_PLAN, "plan.targets", "at most %d targets",
                    ACR_PLAN_TARGETS_MAX);
    if (n == 0)
        return 0;
    plan->targets = calloc(n, sizeof *plan->targets);
    if (plan->targets == NULL)
        return fail(err, ACR_ENOMEM, "plan.targets", "out of memory");
    for (size_t i = 0; i < n; i++) {
        char path[FIELD_LEN], field[FIELD_LEN];
        setpath(path, "plan.targets[%zu]", i);
        const json_t *t = json_array_get(arr, i);
        if (!json_is_object(t))
            return fail(err, ACR_EINVALID_PLAN, path, "must be an object");
        int rc = check_keys(t, keys, path, err);
        int64_t net = 0, bonus = 0;
        int_spec_t net_spec = {true, true, 1, INT64_MAX};
        int_spec_t bonus_spec = {true, true, 0, INT64_MAX};
        if (rc == 0)
            rc = get_int(t, "net_revenue_minor", path, net_spec, &net, NULL, err);
        if (rc == 0)
            rc = get_int(t, "bonus_minor", path, bonus_spec, &bonus, NULL, err);
        if (rc != 0)
            return rc;
        setpath(field, "%s.net_revenue_minor", path);
        if (i > 0 && net <= plan->targets[i - 1].net_revenue_minor)
            return fail(err, ACR_EINVALID_PLAN, field, "must be strictly increasing");
        plan->targets[i].net_revenue_minor = net;
        plan->targets[i].bonus_minor = bonus;
        plan->target_count = (uint32_t)(i + 1);
    }
    return 0;
}

/* plan_id, effective_from and currency: the string-valued header fields. */
static int parse_strings(const json_t *root, acr_plan_t *plan, acr_err_t *err)
{
    int rc;
    const json_t *v = get_typed(root, "plan_id", "plan", JSON_STRING, true, &rc, err);
    if (rc != 0)
        return rc;
    if (!id_valid(json_string_value(v), json_string_length(v)))
        return fail(err, ACR_EINVALID_ID, "plan.plan_id", "must match [A-Za-z0-9._:-]{1,64}");
    memcpy(plan->plan_id, json_string_value(v), json_string_length(v) + 1);
    v = get_typed(root, "effective_from", "plan", JSON_STRING, true, &rc, err);
    if (rc != 0)
        return rc;
    if (!acr_date_parse(json_string_value(v), json_string_length(v), &plan->effective_from_day))
        return fail(err, ACR_EINVALID_PLAN, "plan.effective_from", "must be a date YYYY-MM-DD");
    v = get_typed(root, "currency", "plan", JSON_STRING, true, &rc, err);
    if (rc != 0)
        return rc;
    size_t n = json_string_length(v);
    if (n != 3 || acr_currency_decimals(json_string_value(v), n) < 0)
        return fail(err, ACR_EINVALID_CURRENCY, "plan.currency", "unknown currency code");
    memcpy(plan->currency, json_string_value(v), 4);
    return 0;
}

static int parse_root(const json_t *root, acr_plan_t *plan, acr_err_t *err)
{
    static const char *const keys[] = {"plan_id", "version", "effective_from", "currency",
                                       "ceiling_bp", "rules", "clawback_days",
                                       "new_customer_bonus_minor", "targets", "cap_bp", NULL};
    if (!json_is_object(root))
        return fail(err, ACR_EINVALID_PLAN, "plan", "must be an object");
    int rc = check_keys(root, keys, "plan", err);
    if (rc == 0)
        rc = parse_strings(root, plan, err);
    int64_t x = 0;
    int_spec_t version = {true, false, 1, INT64_MAX};
    int_spec_t bp_req = {true, false, 0, ACR_BP_MAX};
    int_spec_t bp_opt = {false, false, 0, ACR_BP_MAX};
    int_spec_t days = {false, false, 0, INT64_MAX};
    int_spec_t bonus = {false, true, 0, INT64_MAX};
    if (rc == 0)
        rc = get_int(root, "version", "plan", version, &plan->version, NULL, err);
    if (rc == 0 && (rc = get_int(root, "ceiling_bp", "plan", bp_req, &x, NULL, err)) == 0)
        plan->ceiling_bp = (int32_t)x;
    const json_t *rules = NULL, *targets = NULL;
    if (rc == 0)
        rules = get_typed(root, "rules", "plan", JSON_ARRAY, true, &rc, err);
    if (rc == 0)
        rc = parse_rules(rules, plan, err);
    if (rc == 0)
        rc = get_int(root, "clawback_days", "plan", days, &plan->clawback_days,
                     &plan->has_clawback_days, err);
    if (rc == 0)
        rc = get_int(root, "new_customer_bonus_minor", "plan", bonus,
                     &plan->new_customer_bonus_minor, NULL, err);
    if (rc == 0)
        targets = get_typed(root, "targets", "plan", JSON_ARRAY, false, &rc, err);
    if (rc == 0 && targets != NULL)
        rc = parse_targets(targets, plan, err);
    if (rc == 0 && (rc = get_int(root, "cap_bp", "plan", bp_opt, &x, &plan->has_cap, err)) == 0)
        plan->cap_bp = plan->has_cap ? (int32_t)x : 0;
    return rc;
}

int acr_plan_parse(const char *json, size_t len, acr_plan_t *out, acr_err_t *err)
{
    memset(out, 0, sizeof *out);
    if (len > ACR_PLAN_JSON_MAX)
        return fail(err, ACR_EINVALID_PLAN, "plan", "document larger than %d bytes",
                    ACR_PLAN_JSON_MAX);
    json_error_t jerr;
    acr_jsonmem_begin();
    json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
    if (acr_jsonmem_failed()) { /* jansson may return a damaged tree: never trust it */
        json_decref(root);
        return fail(err, ACR_ENOMEM, "plan", "out of memory while parsing the plan");
    }
    if (root == NULL)
        return fail(err, ACR_EINVALID_PLAN, "plan", "not a valid JSON document: %s", jerr.text);
    int rc = parse_root(root, out, err);
    json_decref(root);
    if (rc != 0)
        acr_plan_destroy(out);
    return rc;
}

void acr_plan_destroy(acr_plan_t *plan)
{
    if (plan == NULL)
        return;
    for (uint32_t i = 0; plan->rules != NULL && i < plan->rule_count; i++) {
        acr_rule_t *r = &plan->rules[i];
        free(r->tier);
        free(r->kind);
        free(r->region);
        free(r->product);
        free(r->brackets);
    }
    free(plan->rules);
    free(plan->targets);
    memset(plan, 0, sizeof *plan);
}

static bool attr_eq(const char *want, const char *have)
{
    return have != NULL && strcmp(want, have) == 0;
}

int acr_plan_match(const acr_plan_t *plan, const char *tier, const char *kind,
                   const char *region, const char *product, size_t product_len)
{
    return acr_plan_match_cert(plan, tier, kind, region, product, product_len, -1);
}

int acr_plan_match_cert(const acr_plan_t *plan, const char *tier, const char *kind,
                        const char *region, const char *product, size_t product_len,
                        int certified)
{
    for (uint32_t i = 0; i < plan->rule_count; i++) {
        const acr_rule_t *r = &plan->rules[i];
        if ((r->match_has & ACR_MATCH_CERTIFIED) &&
            (certified < 0 || (certified != 0) != r->certified))
            continue;
        if ((r->match_has & ACR_MATCH_TIER) && !attr_eq(r->tier, tier))
            continue;
        if ((r->match_has & ACR_MATCH_KIND) && !attr_eq(r->kind, kind))
            continue;
        if ((r->match_has & ACR_MATCH_REGION) && !attr_eq(r->region, region))
            continue;
        if ((r->match_has & ACR_MATCH_PRODUCT) &&
            (product == NULL || strlen(r->product) != product_len ||
             memcmp(r->product, product, product_len) != 0))
            continue;
        return (int)i;
    }
    return -1;
}

int32_t acr_plan_max_rate(const acr_plan_t *plan)
{
    int32_t m = 0;
    for (uint32_t i = 0; i < plan->rule_count; i++)
        for (uint32_t b = 0; b < plan->rules[i].bracket_count; b++)
            if (plan->rules[i].brackets[b].rate_bp > m)
                m = plan->rules[i].brackets[b].rate_bp;
    return m;
}
