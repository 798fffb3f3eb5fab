/* promotion.c - promotion documents (program.md, Promotions): strict parsing.
 *
 * Like plan.c for plans: jansson with duplicate keys rejected, every key known,
 * every value of the right JSON type and range, so the engine refuses a bad
 * document once and the processor never meets one. program.md names a single
 * code for a bad document, invalid_value, with the field; that is what every
 * rule here returns (an unknown key included: it names the key).
 */
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "accrue/date.h"
#include "accrue/jsonmem.h"
#include "accrue/limits.h"
#include "accrue/money.h"
#include "accrue/plan.h"
#include "accrue/program.h"

/* A refusal of the promotion document, named by its field: code (invalid_value for every
 * rule but the certified key's, which program.md makes invalid_plan). */
__attribute__((format(printf, 4, 5))) static int refuse(acr_err_t *err, int code,
                                                        const char *key, const char *fmt, ...)
{
    if (err == NULL)
        return code;
    char msg[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    acr_err_set(err, code, "promotion.%s: %s", key, msg);
    snprintf(err->field, sizeof err->field, "promotion%s%s", key[0] ? "." : "", key);
    return code;
}

#define bad(err, ...) refuse(err, ACR_EINVALID_VALUE, __VA_ARGS__)

static bool id_ok(const char *s, size_t n)
{
    if (n < 1 || n > ACR_ID_LEN_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '.' || ch == '_' || ch == ':' || ch == '-'))
            return false;
    }
    return true;
}

static int get_id(const json_t *o, const char *key, char out[65], acr_err_t *err)
{
    const json_t *v = json_object_get(o, key);
    if (v == NULL)
        return bad(err, key, "missing field");
    if (!json_is_string(v) || !id_ok(json_string_value(v), json_string_length(v)))
        return bad(err, key, "must be an id matching [A-Za-z0-9._:-]{1,64}");
    memcpy(out, json_string_value(v), json_string_length(v) + 1);
    return 0;
}

static int get_date(const json_t *o, const char *key, int32_t *out, acr_err_t *err)
{
    const json_t *v = json_object_get(o, key);
    if (v == NULL)
        return bad(err, key, "missing field");
    if (!json_is_string(v) || !acr_date_parse(json_string_value(v), json_string_length(v), out))
        return bad(err, key, "must be a date YYYY-MM-DD");
    return 0;
}

static int get_int(const json_t *o, const char *key, int64_t lo, int64_t hi, int64_t *out,
                   bool *present, acr_err_t *err)
{
    const json_t *v = json_object_get(o, key);
    *present = v != NULL;
    if (v == NULL)
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi)
        return bad(err, key, "must be an integer in %lld..%lld", (long long)lo, (long long)hi);
    *out = (int64_t)json_integer_value(v);
    return 0;
}

static int dup_str(const json_t *v, char **out, const char *key, acr_err_t *err)
{
    size_t n = json_string_length(v);
    const char *s = json_string_value(v);
    if (n > ACR_STRING_LEN_MAX || memchr(s, '\0', n) != NULL)
        return bad(err, key, "must be a string of at most %d bytes", ACR_STRING_LEN_MAX);
    if ((*out = malloc(n + 1)) == NULL)
        return acr_err_set(err, ACR_ENOMEM, "out of memory");
    memcpy(*out, s, n + 1);
    return 0;
}

static int parse_match(const json_t *m, acr_promo_t *p, acr_err_t *err)
{
    static const char *const keys[] = {"tier", "kind", "region", "product"};
    if (!json_is_object(m))
        return bad(err, "match", "must be an object");
    char **slots[] = {&p->tier, &p->kind, &p->region, &p->product};
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)m, key, v) {
        char path[96];
        snprintf(path, sizeof path, "match.%.60s", key);
        if (strcmp(key, "certified") == 0) {
            if (!json_is_boolean(v)) /* program.md: "Any other value type is invalid_plan" */
                return refuse(err, ACR_EINVALID_PLAN, path, "must be true or false");
            p->certified = json_is_true(v);
            p->match_has |= ACR_MATCH_CERTIFIED;
            continue;
        }
        unsigned k = 0;
        while (k < 4 && strcmp(keys[k], key) != 0)
            k++;
        if (k == 4)
            return bad(err, path, "unknown key (tier, kind, region, product, certified)");
        if (!json_is_string(v))
            return bad(err, path, "must be a string");
        int rc = dup_str(v, slots[k], path, err);
        if (rc != 0)
            return rc;
        p->match_has |= 1u << k;
    }
    return 0;
}

static int parse_doc(const json_t *root, acr_promo_t *p, acr_err_t *err)
{
    static const char *const known[] = {"promo_id", "plan_id", "from", "to", "match", "rate_bp",
                                        "per_sale_minor", "budget_minor", "title", NULL};
    if (!json_is_object(root))
        return bad(err, "", "a promotion is an object");
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)root, key, v) {
        bool ok = false;
        for (size_t i = 0; known[i] != NULL && !ok; i++)
            ok = strcmp(known[i], key) == 0;
        if (!ok) {
            char k[72];
            snprintf(k, sizeof k, "%.64s", key);
            return bad(err, k, "unknown field");
        }
    }
    int rc = get_id(root, "promo_id", p->promo_id, err);
    if (rc == 0)
        rc = get_id(root, "plan_id", p->plan_id, err);
    if (rc == 0)
        rc = get_date(root, "from", &p->from_day, err);
    if (rc == 0)
        rc = get_date(root, "to", &p->to_day, err);
    if (rc != 0)
        return rc;
    if (p->from_day > p->to_day)
        return bad(err, "to", "must not be before from");
    const json_t *m = json_object_get(root, "match");
    if (m != NULL && (rc = parse_match(m, p, err)) != 0)
        return rc;
    bool has;
    int64_t x = 0;
    if ((rc = get_int(root, "rate_bp", 0, ACR_BP_MAX, &x, &has, err)) != 0)
        return rc;
    p->rate_bp = (int32_t)x;
    x = 0;
    if ((rc = get_int(root, "per_sale_minor", 0, ACR_AMOUNT_ABS_MAX, &x, &has, err)) != 0)
        return rc;
    p->per_sale_minor = x;
    if ((rc = get_int(root, "budget_minor", 1, ACR_AMOUNT_ABS_MAX, &p->budget_minor,
                      &p->has_budget, err)) != 0)
        return rc;
    if (p->rate_bp == 0 && p->per_sale_minor == 0)
        return bad(err, "rate_bp", "rate_bp + per_sale_minor must be > 0");
    const json_t *t = json_object_get(root, "title");
    if (t != NULL) {
        if (!json_is_string(t))
            return bad(err, "title", "must be a string");
        if ((rc = dup_str(t, &p->title, "title", err)) != 0)
            return rc;
    }
    return 0;
}

int acr_promo_parse(const char *json, size_t len, acr_promo_t *out, acr_err_t *err)
{
    memset(out, 0, sizeof *out);
    json_error_t jerr;
    acr_jsonmem_begin();
    json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL)
        return acr_jsonmem_failed() ? acr_err_set(err, ACR_ENOMEM, "out of memory")
                                    : bad(err, "", "not a valid JSON object");
    int rc = parse_doc(root, out, err);
    json_decref(root);
    if (rc == 0 && acr_jsonmem_failed())
        rc = acr_err_set(err, ACR_ENOMEM, "out of memory");
    if (rc != 0)
        acr_promo_destroy(out);
    return rc;
}

void acr_promo_destroy(acr_promo_t *p)
{
    free(p->tier);
    free(p->kind);
    free(p->region);
    free(p->product);
    free(p->title);
    memset(p, 0, sizeof *p);
}

bool acr_promo_want(const acr_promo_t *p, int64_t amount_minor, int64_t *out)
{
    int64_t r = 0;
    if (!acr_round_half_even((acr_i128_t)amount_minor * p->rate_bp, ACR_BP_MAX, &r))
        return false;
    return !__builtin_add_overflow(r, p->per_sale_minor, out);
}
