/* event_json.c - client events in (JSON, msgpack maps) and events out (JSON).
 *
 * Parsing applies every stateless rule of events.md so that the state machine
 * only ever sees well-formed events, and produces the canonical stored record
 * (event_record.c), whose content bytes decide idempotency: the same event
 * spelled differently (key order, `at` offset, whitespace, the key order inside
 * a plan) must give the same bytes. JSON is parsed with jansson (strict:
 * duplicate keys rejected, no trailing text; a \u0000 in a value is let through
 * to the field's own check, which refuses it by name). The msgpack input is
 * walked twice with a bounded reader - once to find and check its framing,
 * once to convert it into a jansson tree - so both formats share one
 * validation path and one set of error codes and field paths.
 *
 * Decision (measured on `accrue-gen --sales 1000000`, 1.28 M events): jansson
 * stays the judge, but flat events (strings and integers, plain ASCII, no
 * escapes, no nesting: every generated sale, refund and deal event) first go
 * through a hand-written scanner (JSON) or bounded reader (msgpack) straight
 * into acr_event_t, checked by the same leaf checks with no error text built.
 * The fast path can only accept; on anything it does not recognise or any
 * failed check it gives up and the jansson path reruns from scratch and gives
 * the verdict, so codes, field paths and messages are the jansson path's (see
 * "the flat fast path" for why an acceptance is always the jansson path's
 * acceptance with the same record). Parsing went from ~7-9 us to ~1.1 us per
 * event for both formats. tests/engine/test_event_json.c checks fast against
 * jansson path (fixed cases and 40 000 mutations) and msgpack against JSON.
 *
 * Decisions the spec leaves open (documented in event.h):
 * - A JSON null is a present value of the wrong type (wrong_type), not absence.
 * - A string field longer than 256 bytes is too_large before any kind check.
 * - Deal amounts (deal.registered, deal.stage_changed) must be >= 0.
 * - Stage names are id-like ([A-Za-z0-9._:-]{1,64}); `exit_requires` may be
 *   omitted (stored as []), its members must be distinct; more than
 *   ACR_STAGES_MAX stages is too_large.
 * - expected_close is a local date; a bad one is invalid_value.
 * - An integer beyond int64 (jansson: numeric overflow) is invalid_value.
 * - The engine fields of a log line (seq, recorded_at, stream, version, hash)
 *   are accepted and ignored, whatever their values (cli.md, log).
 */
#include "event_internal.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "accrue/date.h"
#include "accrue/jsonmem.h"
#include "accrue/limits.h"
#include "accrue/plan.h"
#include "accrue/program.h"

#define JSON_DUMP_FLAGS (JSON_COMPACT | JSON_SORT_KEYS)

typedef struct parse_ctx {
    acr_event_t ev;     /* slices point into the jansson tree or json_text */
    char *json_text;    /* owned compact dump of the type's JSON-valued field */
    int32_t offset_min; /* ledger offset, for the local-date rule */
    acr_err_t *err;
} parse_ctx_t;

__attribute__((format(printf, 4, 5))) static int fail(acr_err_t *err, int code, const char *field,
                                                      const char *fmt, ...)
{
    if (err == NULL)
        return code;
    err->code = code;
    snprintf(err->field, sizeof err->field, "%s", field ? field : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    return code;
}

/* Keeps the caller's err->line, clears the rest. */
static void err_reset(acr_err_t *err)
{
    if (err == NULL)
        return;
    uint64_t line = err->line;
    acr_err_clear(err);
    err->line = line;
}

/* snprintf for field paths: truncation is fine (paths are for humans), and a
 * v-function keeps the compiler's truncation analysis quiet. */
__attribute__((format(printf, 3, 4))) static void pathf(char *out, size_t cap, const char *fmt,
                                                        ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out, cap, fmt, ap);
    va_end(ap);
}

static void data_path(char *out, size_t cap, const char *name)
{
    pathf(out, cap, "data.%s", name);
}

/* fail() for data field f: the path "data.<name>" is formatted only here, on
 * the error path, never for a field that passes. */
__attribute__((format(printf, 4, 5))) static int fail_field(acr_err_t *err, int code, int f,
                                                            const char *fmt, ...)
{
    if (err == NULL)
        return code;
    err->code = code;
    snprintf(err->field, sizeof err->field, "data.%s", acr_field_name(f));
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    return code;
}

/* ---- field kinds --------------------------------------------------------- */

static bool is_hex128(const char *s, size_t len)
{
    if (len != 32)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

static bool is_period_id(const char *s, size_t len)
{
    int32_t p;
    return acr_period_parse(ACR_PERIOD_MONTH, s, len, &p) ||
           acr_period_parse(ACR_PERIOD_QUARTER, s, len, &p);
}

/* Checks a string value against its field's kind (shared by every input path). */
static int check_string(parse_ctx_t *c, int f, const char *s, size_t n)
{
    const char *name = acr_field_name(f);
    size_t max = f == ACR_F_BODY ? ACR_ANNOUNCEMENT_BODY_MAX : ACR_STRING_LEN_MAX;
    if (n > max)
        return fail_field(c->err, ACR_ETOO_LARGE, f, "%s is %zu bytes, more than %zu", name, n,
                          max);
    switch (acr__field_kind[f]) {
    case ACR_FK_ID:
        if (!acr__id_valid(s, n))
            return fail_field(c->err, ACR_EINVALID_ID, f, "%s must match [A-Za-z0-9._:-]{1,64}",
                              name);
        return 0;
    case ACR_FK_ENUM:
        if (!acr__enum_valid(f, s, n))
            return fail_field(c->err, ACR_EINVALID_VALUE, f, "%s must be one of %s", name,
                              acr__enum_values(f));
        return 0;
    case ACR_FK_CURRENCY:
        if (acr_currency_decimals(s, n) < 0)
            return fail_field(c->err, ACR_EINVALID_CURRENCY, f,
                              "%s \"%.*s\" is not an ISO 4217 code known to the engine", name,
                              (int)(n < 16 ? n : 16), s);
        return 0;
    case ACR_FK_DATE: {
        int32_t day;
        if (!acr_date_parse(s, n, &day))
            return fail_field(c->err, ACR_EINVALID_VALUE, f,
                              "%s must be a date YYYY-MM-DD between 1970-01-01 and 9999-12-31",
                              name);
        c->ev.num[f] = day;
        return 0;
    }
    case ACR_FK_HEX128:
        if (!is_hex128(s, n))
            return fail_field(c->err, ACR_EINVALID_VALUE, f, "%s must be 32 lowercase hex digits",
                              name);
        return 0;
    default:
        if (memchr(s, '\0', n) != NULL)
            return fail_field(c->err, ACR_EINVALID_VALUE, f, "%s must not contain NUL", name);
        if (f == ACR_F_PERIOD && !is_period_id(s, n))
            return fail_field(c->err, ACR_EINVALID_VALUE, f, "period must be YYYY-MM or YYYY-Qn");
        return 0;
    }
}

/* Checks an integer value of an AMOUNT or UINT field (shared by every input path). */
static int check_integer(parse_ctx_t *c, int f, int64_t n)
{
    const char *name = acr_field_name(f);
    if (acr__field_kind[f] == ACR_FK_UINT && n < 0)
        return fail_field(c->err, ACR_EINVALID_VALUE, f, "%s must be >= 0", name);
    if (n > ACR_AMOUNT_ABS_MAX || n < -ACR_AMOUNT_ABS_MAX)
        if (acr__field_kind[f] == ACR_FK_AMOUNT)
            return fail_field(c->err, ACR_EINVALID_VALUE, f, "|%s| must be <= 10^15", name);
    c->ev.num[f] = n;
    return 0;
}

/* ---- JSON-valued fields -------------------------------------------------- */

/* Stores the compact, key-sorted dump of v as field f. */
static int store_json(parse_ctx_t *c, int f, const char *path, const json_t *v, size_t max)
{
    char *text = json_dumps(v, JSON_DUMP_FLAGS);
    if (text == NULL)
        return fail(c->err, ACR_ENOMEM, path, "out of memory");
    size_t n = strlen(text);
    if (n > max) {
        free(text);
        return fail(c->err, ACR_ETOO_LARGE, path, "%s is %zu bytes, more than %zu",
                    acr_field_name(f), n, max);
    }
    free(c->json_text);
    c->json_text = text;
    c->ev.str[f].ptr = text;
    c->ev.str[f].len = (uint32_t)n;
    return 0;
}

static int exit_requires_mask(parse_ctx_t *c, const char *stage_path, json_t *list, int *mask)
{
    static const char *const names[] = {"amount", "expected_close", "rep"};
    char path[64];
    pathf(path, sizeof path, "%s.exit_requires", stage_path);
    if (!json_is_array(list))
        return fail(c->err, ACR_EWRONG_TYPE, path, "exit_requires must be an array");
    size_t i;
    json_t *v;
    json_array_foreach(list, i, v) {
        pathf(path, sizeof path, "%s.exit_requires[%zu]", stage_path, i);
        if (!json_is_string(v))
            return fail(c->err, ACR_EWRONG_TYPE, path, "exit_requires items are strings");
        int bit = 0;
        for (int k = 0; k < 3; k++)
            if (strcmp(json_string_value(v), names[k]) == 0 &&
                json_string_length(v) == strlen(names[k]))
                bit = 1 << k;
        if (bit == 0)
            return fail(c->err, ACR_EINVALID_VALUE, path,
                        "exit_requires items are amount, expected_close or rep");
        if (*mask & bit)
            return fail(c->err, ACR_EINVALID_VALUE, path, "exit_requires lists %s twice",
                        json_string_value(v));
        *mask |= bit;
    }
    return 0;
}

/* Checks one stage object; appends its canonical form to canon. */
static int check_stage(parse_ctx_t *c, size_t idx, json_t *st, json_t *seen, json_t *canon)
{
    char path[64], sub[64];
    snprintf(path, sizeof path, "data.stages[%zu]", idx);
    if (!json_is_object(st))
        return fail(c->err, ACR_EWRONG_TYPE, path, "a stage is an object {name, exit_requires}");
    const char *key;
    json_t *v;
    json_object_foreach(st, key, v) {
        if (strcmp(key, "name") != 0 && strcmp(key, "exit_requires") != 0) {
            pathf(sub, sizeof sub, "%s.%s", path, key);
            return fail(c->err, ACR_EUNKNOWN_FIELD, sub, "unknown stage field \"%s\"", key);
        }
    }
    json_t *name = json_object_get(st, "name");
    pathf(sub, sizeof sub, "%s.name", path);
    if (name == NULL)
        return fail(c->err, ACR_EMISSING_FIELD, sub, "a stage needs a name");
    if (!json_is_string(name))
        return fail(c->err, ACR_EWRONG_TYPE, sub, "a stage name is a string");
    const char *s = json_string_value(name);
    size_t n = json_string_length(name);
    /* events.md asks a stage name to be unique and not an outcome: any text ("due
     * diligence"), 1 to 64 bytes, without control characters (it is printed in tables) */
    bool text = n > 0 && n <= ACR_STAGE_NAME_MAX && strlen(s) == n;
    for (size_t i = 0; text && i < n; i++)
        text = (unsigned char)s[i] >= 0x20 && s[i] != 0x7f;
    if (!text)
        return fail(c->err, ACR_EINVALID_VALUE, sub,
                    "a stage name is 1 to %d bytes of text without control characters",
                    ACR_STAGE_NAME_MAX);
    if (strcmp(s, "won") == 0 || strcmp(s, "lost") == 0)
        return fail(c->err, ACR_EINVALID_VALUE, sub,
                    "\"%s\" is a reserved terminal outcome, not a stage", s);
    if (json_object_get(seen, s) != NULL)
        return fail(c->err, ACR_EINVALID_VALUE, sub, "stage \"%s\" is listed twice", s);
    json_object_set_new(seen, s, json_true());
    int mask = 0;
    json_t *ex = json_object_get(st, "exit_requires");
    int rc = ex ? exit_requires_mask(c, path, ex, &mask) : 0;
    if (rc != 0)
        return rc;
    /* Canonical stage: both keys, exit_requires defaulting to []. */
    json_t *out = json_object();
    if (out == NULL || json_object_set(out, "name", name) != 0 ||
        json_object_set_new(out, "exit_requires", ex ? json_incref(ex) : json_array()) != 0 ||
        json_array_append_new(canon, out) != 0)
        return fail(c->err, ACR_ENOMEM, path, "out of memory");
    return 0;
}

/* events.md, Limits: a string field is at most 256 bytes, and each breach is too_large. The
 * documents inside an event (a stage list, a plan, a promotion) are checked here, string by
 * string, before their own parsers judge the values, so the rule has one home. path holds
 * the value's field path (cap bytes; extended in place, restored on return). */
static int check_doc_strings(parse_ctx_t *c, const json_t *v, char *path, size_t cap)
{
    size_t len = strlen(path);
    int rc = 0;
    if (json_is_string(v) && json_string_length(v) > ACR_STRING_LEN_MAX) {
        rc = fail(c->err, ACR_ETOO_LARGE, path, "a string is at most %d bytes",
                  ACR_STRING_LEN_MAX);
    } else if (json_is_array(v)) {
        for (size_t i = 0; rc == 0 && i < json_array_size(v); i++) {
            pathf(path + len, cap - len, "[%zu]", i);
            rc = check_doc_strings(c, json_array_get(v, i), path, cap);
        }
    } else if (json_is_object(v)) {
        const char *key;
        const json_t *e;
        json_object_foreach((json_t *)v, key, e) {
            if (rc != 0)
                break;
            pathf(path + len, cap - len, ".%s", key);
            rc = check_doc_strings(c, e, path, cap);
        }
    }
    path[len] = '\0';
    return rc;
}

static int doc_strings(parse_ctx_t *c, const json_t *v, const char *at)
{
    char path[sizeof c->err->field];
    pathf(path, sizeof path, "%s", at);
    return check_doc_strings(c, v, path, sizeof path);
}

static int parse_stages(parse_ctx_t *c, json_t *v)
{
    const char *path = "data.stages";
    if (!json_is_array(v))
        return fail(c->err, ACR_EWRONG_TYPE, path, "stages must be an array");
    if (doc_strings(c, v, path) != 0)
        return ACR_ETOO_LARGE;
    size_t n = json_array_size(v);
    if (n == 0)
        return fail(c->err, ACR_EINVALID_VALUE, path, "a pipeline needs at least one stage");
    if (n > ACR_STAGES_MAX)
        return fail(c->err, ACR_ETOO_LARGE, path, "%zu stages, more than %d", n, ACR_STAGES_MAX);
    json_t *seen = json_object(), *canon = json_array();
    int rc = seen && canon ? 0 : fail(c->err, ACR_ENOMEM, path, "out of memory");
    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = check_stage(c, i, json_array_get(v, i), seen, canon);
    if (rc == 0)
        rc = store_json(c, ACR_F_STAGES, path, canon, ACR_EVENT_JSON_MAX);
    json_decref(seen);
    json_decref(canon);
    return rc;
}

static int parse_plan(parse_ctx_t *c, json_t *v)
{
    const char *path = "data.plan";
    if (!json_is_object(v))
        return fail(c->err, ACR_EWRONG_TYPE, path, "plan must be a plan document (an object)");
    if (doc_strings(c, v, path) != 0)
        return ACR_ETOO_LARGE;
    int rc = store_json(c, ACR_F_PLAN, path, v, ACR_PLAN_JSON_MAX);
    if (rc != 0)
        return rc;
    acr_plan_t plan;
    acr_err_t perr;
    acr_err_clear(&perr);
    rc = acr_plan_parse(c->json_text, c->ev.str[ACR_F_PLAN].len, &plan, &perr);
    if (rc == 0) {
        acr_plan_destroy(&plan);
        return 0;
    }
    char field[sizeof perr.field];
    if (perr.field[0] == '\0')
        pathf(field, sizeof field, "%s", path);
    else if (strncmp(perr.field, "plan", 4) == 0)
        pathf(field, sizeof field, "data.%s", perr.field);
    else
        pathf(field, sizeof field, "data.plan.%s", perr.field);
    return fail(c->err, perr.code ? perr.code : rc, field, "%s",
                perr.msg[0] ? perr.msg : "invalid plan document");
}

/* onboarding.defined: 1..64 unique module names, each a string field. */
static int parse_modules(parse_ctx_t *c, json_t *v)
{
    const char *path = "data.modules";
    if (!json_is_array(v))
        return fail(c->err, ACR_EWRONG_TYPE, path, "modules must be an array of strings");
    size_t n = json_array_size(v);
    if (n < 1 || n > ACR_PROMO_MODULES_MAX)
        return fail(c->err, ACR_EINVALID_VALUE, path, "modules must hold 1..%d names",
                    ACR_PROMO_MODULES_MAX);
    char sub[64];
    for (size_t i = 0; i < n; i++) {
        json_t *m = json_array_get(v, i);
        pathf(sub, sizeof sub, "%s[%zu]", path, i);
        if (!json_is_string(m))
            return fail(c->err, ACR_EWRONG_TYPE, sub, "a module name is a string");
        size_t len = json_string_length(m);
        if (len > ACR_STRING_LEN_MAX)
            return fail(c->err, ACR_ETOO_LARGE, sub, "a module name is at most %d bytes",
                        ACR_STRING_LEN_MAX);
        if (memchr(json_string_value(m), '\0', len) != NULL)
            return fail(c->err, ACR_EINVALID_VALUE, sub, "a module name must not contain NUL");
        for (size_t j = 0; j < i; j++)
            if (json_equal(json_array_get(v, j), m))
                return fail(c->err, ACR_EINVALID_VALUE, sub, "module \"%s\" is listed twice",
                            json_string_value(m));
    }
    return store_json(c, ACR_F_MODULES, path, v, ACR_EVENT_JSON_MAX);
}

/* promotion.published: a promotion document (program.md), checked by acr_promo_parse. */
static int parse_promotion(parse_ctx_t *c, json_t *v)
{
    const char *path = "data.promotion";
    if (!json_is_object(v))
        return fail(c->err, ACR_EWRONG_TYPE, path, "promotion must be an object");
    if (doc_strings(c, v, path) != 0)
        return ACR_ETOO_LARGE;
    int rc = store_json(c, ACR_F_PROMOTION, path, v, ACR_EVENT_JSON_MAX);
    if (rc != 0)
        return rc;
    acr_promo_t p;
    acr_err_t perr;
    acr_err_clear(&perr);
    rc = acr_promo_parse(c->json_text, c->ev.str[ACR_F_PROMOTION].len, &p, &perr);
    if (rc == 0) {
        acr_promo_destroy(&p);
        return 0;
    }
    char field[sizeof perr.field];
    pathf(field, sizeof field, "data.%s", perr.field[0] ? perr.field : "promotion");
    return fail(c->err, perr.code ? perr.code : rc, field, "%s",
                perr.msg[0] ? perr.msg : "invalid promotion document");
}

/* announcement.published: audience {tier?, kind?, region?}, strings (kind an enum value). */
static int parse_audience(parse_ctx_t *c, json_t *v)
{
    const char *path = "data.audience";
    if (!json_is_object(v))
        return fail(c->err, ACR_EWRONG_TYPE, path, "audience must be an object");
    const char *key;
    json_t *m;
    char sub[64];
    json_object_foreach(v, key, m) {
        pathf(sub, sizeof sub, "%s.%.40s", path, key);
        int f = strcmp(key, "tier") == 0     ? ACR_F_TIER
                : strcmp(key, "kind") == 0   ? ACR_F_KIND
                : strcmp(key, "region") == 0 ? ACR_F_REGION
                                             : -1;
        if (f < 0)
            return fail(c->err, ACR_EUNKNOWN_FIELD, sub, "audience keys are tier, kind, region");
        if (!json_is_string(m))
            return fail(c->err, ACR_EWRONG_TYPE, sub, "%s must be a string", key);
        size_t n = json_string_length(m);
        if (n > ACR_STRING_LEN_MAX)
            return fail(c->err, ACR_ETOO_LARGE, sub, "%s is more than %d bytes", key,
                        ACR_STRING_LEN_MAX);
        if (memchr(json_string_value(m), '\0', n) != NULL)
            return fail(c->err, ACR_EINVALID_VALUE, sub, "%s must not contain NUL", key);
        if (f == ACR_F_KIND && !acr__enum_valid(f, json_string_value(m), n))
            return fail(c->err, ACR_EINVALID_VALUE, sub, "kind must be one of %s",
                        acr__enum_values(f));
    }
    return store_json(c, ACR_F_AUDIENCE, path, v, ACR_EVENT_JSON_MAX);
}

static int parse_json_field(parse_ctx_t *c, int f, const char *path, json_t *v)
{
    switch (f) {
    case ACR_F_STAGES: return parse_stages(c, v);
    case ACR_F_PLAN: return parse_plan(c, v);
    case ACR_F_MODULES: return parse_modules(c, v);
    case ACR_F_PROMOTION: return parse_promotion(c, v);
    case ACR_F_AUDIENCE: return parse_audience(c, v);
    default:
        if (!json_is_object(v) && !json_is_array(v))
            return fail(c->err, ACR_EWRONG_TYPE, path, "%s must be an object or an array",
                        acr_field_name(f));
        return store_json(c, f, path, v, ACR_EVENT_JSON_MAX);
    }
}

/* ---- data and envelope --------------------------------------------------- */

static int parse_field(parse_ctx_t *c, int f, json_t *v)
{
    int kind = acr__field_kind[f];
    int rc;
    if (kind == ACR_FK_AMOUNT || kind == ACR_FK_UINT) {
        if (!json_is_integer(v))
            return fail_field(c->err, ACR_EWRONG_TYPE, f, "%s must be an integer",
                              acr_field_name(f));
        rc = check_integer(c, f, (int64_t)json_integer_value(v));
    } else if (kind == ACR_FK_BOOL) {
        if (!json_is_boolean(v))
            return fail_field(c->err, ACR_EWRONG_TYPE, f, "%s must be true or false",
                              acr_field_name(f));
        c->ev.num[f] = json_is_true(v);
        rc = 0;
    } else if (kind == ACR_FK_JSON) {
        char path[64];
        data_path(path, sizeof path, acr_field_name(f));
        rc = parse_json_field(c, f, path, v);
    } else {
        if (!json_is_string(v))
            return fail_field(c->err, ACR_EWRONG_TYPE, f, "%s must be a string",
                              acr_field_name(f));
        const char *s = json_string_value(v);
        size_t n = json_string_length(v);
        rc = check_string(c, f, s, n);
        c->ev.str[f].ptr = s;
        c->ev.str[f].len = (uint32_t)n;
    }
    if (rc == 0)
        c->ev.present |= 1ull << f;
    return rc;
}

/* The rules of one type that span its fields (events.md, Event types). */
static int check_type_rules(parse_ctx_t *c)
{
    const acr_event_t *ev = &c->ev;
    int64_t amount = ev->num[ACR_F_AMOUNT_MINOR];
    bool has_amount = ACR_HAS(ev, ACR_F_AMOUNT_MINOR);
    const char *apath = "data.amount_minor";
    switch (ev->type) {
    case ACR_EV_SALE_RECORDED:
    case ACR_EV_SALE_REFUNDED:
        if (amount <= 0)
            return fail(c->err, ACR_EINVALID_VALUE, apath, "amount_minor must be > 0");
        return 0;
    case ACR_EV_ADJUSTMENT_RECORDED:
        if (amount == 0)
            return fail(c->err, ACR_EINVALID_VALUE, apath, "amount_minor must not be 0");
        return 0;
    case ACR_EV_DEAL_REGISTERED:
    case ACR_EV_DEAL_STAGE_CHANGED:
        if (has_amount && amount < 0)
            return fail(c->err, ACR_EINVALID_VALUE, apath, "a deal amount_minor must be >= 0");
        return 0;
    case ACR_EV_PARTNER_UPDATED: {
        uint64_t opt = (1ull << ACR_F_NAME) | (1ull << ACR_F_TIER) | (1ull << ACR_F_PLAN_ID) |
                       (1ull << ACR_F_REGION);
        if ((ev->present & opt) == 0)
            return fail(c->err, ACR_EINVALID_VALUE, "data",
                        "partner.updated needs at least one of name, tier, plan_id, region");
        return 0;
    }
    default:
        return 0;
    }
}

static int parse_data(parse_ctx_t *c, json_t *data)
{
    const acr_type_schema_t *sc = acr_event_schema(c->ev.type);
    char path[64];
    const char *key;
    json_t *v;
    json_object_foreach(data, key, v) {
        bool known = false;
        for (unsigned i = 0; i < sc->field_count && !known; i++)
            known = strcmp(key, acr_field_name(sc->fields[i])) == 0;
        if (!known) {
            data_path(path, sizeof path, key);
            return fail(c->err, ACR_EUNKNOWN_FIELD, path, "%s has no field \"%s\"", sc->name,
                        key);
        }
    }
    for (unsigned i = 0; i < sc->field_count; i++) {
        int f = sc->fields[i];
        v = json_object_get(data, acr_field_name(f));
        if (v == NULL) {
            if ((sc->required >> f) & 1u) {
                data_path(path, sizeof path, acr_field_name(f));
                return fail(c->err, ACR_EMISSING_FIELD, path, "%s needs %s", sc->name,
                            acr_field_name(f));
            }
            continue;
        }
        int rc = parse_field(c, f, v);
        if (rc != 0)
            return rc;
    }
    return check_type_rules(c);
}

/* The envelope, plus the engine fields of `accrue log` output (cli.md: a log
 * line is valid append input, "the engine fields are ignored there"). */
static bool top_key_known(const char *key)
{
    static const char *const keys[] = {"id",     "type",        "at",     "data",
                                       "expected_version", "seq", "recorded_at",
                                       "stream", "version",     "actor",  "hash"};
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
        if (strcmp(key, keys[i]) == 0)
            return true;
    return false;
}

/* Fetches a required top-level string member. */
static int get_top_string(parse_ctx_t *c, json_t *root, const char *key, acr_str_t *out)
{
    json_t *v = json_object_get(root, key);
    if (v == NULL)
        return fail(c->err, ACR_EMISSING_FIELD, key, "the event needs \"%s\"", key);
    if (!json_is_string(v))
        return fail(c->err, ACR_EWRONG_TYPE, key, "\"%s\" must be a string", key);
    out->ptr = json_string_value(v);
    out->len = (uint32_t)json_string_length(v);
    return 0;
}

/* ---- envelope checks, shared by every input path ------------------------- */

static int check_id(parse_ctx_t *c, acr_str_t s)
{
    if (s.len > ACR_STRING_LEN_MAX)
        return fail(c->err, ACR_ETOO_LARGE, "id", "id is longer than %d bytes",
                    ACR_STRING_LEN_MAX);
    if (!acr__id_valid(s.ptr, s.len))
        return fail(c->err, ACR_EINVALID_ID, "id", "id must match [A-Za-z0-9._:-]{1,64}");
    c->ev.id = s;
    return 0;
}

static int check_type(parse_ctx_t *c, acr_str_t s, bool allow_internal)
{
    int type = acr_event_type_from_name(s.ptr, s.len);
    if (type == ACR_EV_NONE)
        return fail(c->err, ACR_EUNKNOWN_TYPE, "type", "unknown event type \"%.*s\"",
                    (int)(s.len < 64 ? s.len : 64), s.ptr);
    if (type == ACR_EV_PERIOD_CLOSED && !allow_internal)
        return fail(c->err, ACR_EFORBIDDEN_TYPE, "type",
                    "period.closed is written only by payout close");
    /* A close is found by its id, period.closed:<period> (engine/payout, verify): a client
     * event holding one would stand in for the close and keep the period from closing.
     * (check_id ran first: c->ev.id is set.) */
    if (!allow_internal && c->ev.id.len >= sizeof ACR_CLOSE_ID_PREFIX - 1 &&
        memcmp(c->ev.id.ptr, ACR_CLOSE_ID_PREFIX, sizeof ACR_CLOSE_ID_PREFIX - 1) == 0)
        return fail(c->err, ACR_EINVALID_ID, "id",
                    "ids beginning with \"" ACR_CLOSE_ID_PREFIX "\" are reserved for payout close");
    c->ev.type = (uint8_t)type;
    return 0;
}

static int check_at(parse_ctx_t *c, acr_str_t s)
{
    if (!acr_ts_parse(s.ptr, s.len, &c->ev.at_ms))
        return fail(c->err, ACR_EINVALID_TIMESTAMP, "at",
                    "at must be RFC 3339, e.g. 2026-07-03T10:00:00Z (fraction <= 3 digits)");
    if (!acr_local_day_valid(acr_local_day(c->ev.at_ms, c->offset_min)))
        return fail(c->err, ACR_EINVALID_TIMESTAMP, "at",
                    "at's local date must lie in 1970-01-01 .. 9999-12-31");
    if (c->ev.at_ms >= ACR_TS_END_MS)
        return fail(c->err, ACR_EINVALID_TIMESTAMP, "at",
                    "at must be before 10000-01-01T00:00:00Z in UTC (the canonical form "
                    "writes four-digit years)");
    return 0;
}

static int check_expected_version(parse_ctx_t *c, int64_t n, int64_t *expv)
{
    if (n < 0)
        return fail(c->err, ACR_EINVALID_VALUE, "expected_version",
                    "expected_version must be >= 0");
    *expv = n;
    return 0;
}

/* ---- the jansson path ---------------------------------------------------- */

static int parse_type_and_at(parse_ctx_t *c, json_t *root, bool allow_internal)
{
    acr_str_t s;
    int rc = get_top_string(c, root, "type", &s);
    if (rc == 0)
        rc = check_type(c, s, allow_internal);
    if (rc == 0)
        rc = get_top_string(c, root, "at", &s);
    return rc == 0 ? check_at(c, s) : rc;
}

static int parse_envelope(parse_ctx_t *c, json_t *root, bool allow_internal, int64_t *expv)
{
    const char *key;
    json_t *v;
    json_object_foreach(root, key, v) {
        if (!top_key_known(key))
            return fail(c->err, ACR_EUNKNOWN_FIELD, key, "unknown event field \"%s\"", key);
    }
    acr_str_t id;
    int rc = get_top_string(c, root, "id", &id);
    if (rc == 0)
        rc = check_id(c, id);
    if (rc == 0)
        rc = parse_type_and_at(c, root, allow_internal);
    if (rc != 0)
        return rc;
    v = json_object_get(root, "expected_version");
    if (v != NULL) {
        if (!json_is_integer(v))
            return fail(c->err, ACR_EWRONG_TYPE, "expected_version",
                        "expected_version must be an integer");
        if ((rc = check_expected_version(c, (int64_t)json_integer_value(v), expv)) != 0)
            return rc;
    }
    v = json_object_get(root, "data");
    if (v == NULL)
        return fail(c->err, ACR_EMISSING_FIELD, "data", "the event needs \"data\"");
    if (!json_is_object(v))
        return fail(c->err, ACR_EWRONG_TYPE, "data", "data must be an object");
    return parse_data(c, v);
}

/* Validates a parsed event tree and appends its record to out. */
static int event_from_tree(json_t *root, int32_t offset_min, bool allow_internal,
                           int not_object_code, acr_buf_t *out, int64_t *out_expv,
                           acr_err_t *err)
{
    if (!json_is_object(root))
        return fail(err, not_object_code, "", "an event is an object");
    json_t *id = json_object_get(root, "id");
    if (err != NULL && json_is_string(id) && json_string_length(id) < sizeof err->id &&
        strlen(json_string_value(id)) == json_string_length(id))
        memcpy(err->id, json_string_value(id), json_string_length(id) + 1);
    parse_ctx_t c;
    memset(&c, 0, sizeof c);
    c.offset_min = offset_min;
    c.err = err;
    int64_t expv = ACR_NO_EXPECTED_VERSION;
    int rc = parse_envelope(&c, root, allow_internal, &expv);
    if (rc == 0)
        rc = acr_record_encode(&c.ev, out);
    if (rc == ACR_ENOMEM)
        fail(err, rc, "", "out of memory");
    if (rc == 0 && out_expv != NULL)
        *out_expv = expv;
    free(c.json_text);
    return rc;
}

/* ---- the flat fast path ------------------------------------------------- */

/* Almost every event is flat: an envelope of strings and integers plus a data
 * object of strings and integers, plain ASCII, no escapes. Such an input is
 * read by a small scanner (JSON) or reader (msgpack) into a flat_t, then
 * checked by flat_finish with the same leaf checks as the jansson path
 * (check_id, check_type, check_at, check_expected_version, check_string,
 * check_integer, check_type_rules) and err == NULL. Anything else - an escape,
 * a non-ASCII or control byte, a null/bool/float, a nested value, a number
 * that is not -?(0|[1-9][0-9]{0,17}), a duplicate or unknown key, too many
 * members, a missing member, or any failed check - makes the fast path give up
 * (FLAT_NO) and the caller runs the jansson path from scratch, which produces
 * the verdict and every error code, field path and message. So the fast path
 * only ever says yes, and says it only for inputs the jansson path accepts
 * with the same acr_event_t: that is what makes it exactly as strict. */

#define FLAT_NO 1 /* not decided here: run the jansson path */
_Static_assert(sizeof(((acr_err_t *)0)->id) > ACR_ID_LEN_MAX, "flat_ok_err copies a valid id");
#define FLAT_DATA_MAX 16

enum { TK_ID, TK_TYPE, TK_AT, TK_DATA, TK_EXPV, TK_ENGINE, TK__COUNT };
enum { FV_STR = 1, FV_INT = 2 };

typedef struct flat_val {
    const char *s; /* FV_STR bytes (no escapes: the decoded value itself) */
    int64_t i;     /* FV_INT value */
    uint32_t n;    /* FV_STR length */
    uint8_t kind;  /* FV_* */
} flat_val_t;

typedef struct flat {
    flat_val_t top[TK__COUNT]; /* the envelope members, by TK_* */
    uint32_t top_seen;         /* bit per TK_* (engine fields: one bit each, see top_key) */
    uint32_t ndata;            /* data members, in input order */
    struct {
        const char *key;
        uint32_t klen;
        flat_val_t v;
    } data[FLAT_DATA_MAX];
} flat_t;

/* The envelope key's TK_* and its bit in top_seen, -1 when unknown. */
static int top_key(const char *k, size_t n, uint32_t *bit)
{
    static const struct {
        const char *s;
        uint8_t n, tk;
    } keys[] = {{"id", 2, TK_ID},           {"type", 4, TK_TYPE},
                {"at", 2, TK_AT},           {"data", 4, TK_DATA},
                {"expected_version", 16, TK_EXPV}, {"seq", 3, TK_ENGINE},
                {"recorded_at", 11, TK_ENGINE},    {"stream", 6, TK_ENGINE},
                {"version", 7, TK_ENGINE},  {"hash", 4, TK_ENGINE},
                {"actor", 5, TK_ENGINE}};
    for (unsigned i = 0; i < sizeof keys / sizeof *keys; i++)
        if (keys[i].n == n && memcmp(keys[i].s, k, n) == 0) {
            *bit = 1u << i;
            return keys[i].tk;
        }
    return -1;
}

/* Field names and lengths, by acr_field_t. */
static const struct {
    const char *s;
    uint8_t n;
} field_names[ACR_F__COUNT] = {
#define XX(name, json, kind) {json, sizeof json - 1},
    ACR_FIELD_MAP(XX)
#undef XX
};

static int schema_field(const acr_type_schema_t *sc, const char *k, uint32_t n)
{
    for (unsigned i = 0; i < sc->field_count; i++) {
        int f = sc->fields[i];
        if (field_names[f].n == n && memcmp(field_names[f].s, k, n) == 0)
            return f;
    }
    return -1;
}

static int flat_str(const flat_t *fl, int tk, acr_str_t *out)
{
    if (fl->top[tk].kind != FV_STR)
        return FLAT_NO;
    out->ptr = fl->top[tk].s;
    out->len = fl->top[tk].n;
    return 0;
}

/* One data member into c->ev; FLAT_NO for anything the jansson path must judge. */
static int flat_field(parse_ctx_t *c, int f, const flat_val_t *v)
{
    int kind = acr__field_kind[f];
    if (kind == ACR_FK_AMOUNT || kind == ACR_FK_UINT) {
        if (v->kind != FV_INT || check_integer(c, f, v->i) != 0)
            return FLAT_NO;
    } else {
        if (kind == ACR_FK_JSON || kind == ACR_FK_BOOL || v->kind != FV_STR ||
            check_string(c, f, v->s, v->n) != 0)
            return FLAT_NO;
        c->ev.str[f].ptr = v->s;
        c->ev.str[f].len = v->n;
    }
    c->ev.present |= 1ull << f;
    return 0;
}

/* Validates a scanned flat event into c->ev (c->err is NULL): 0 or FLAT_NO. */
static int flat_finish(parse_ctx_t *c, const flat_t *fl, bool allow_internal, int64_t *expv)
{
    uint32_t need = (1u << 0) | (1u << 1) | (1u << 2) | (1u << 3); /* id, type, at, data */
    acr_str_t s;
    if ((fl->top_seen & need) != need)
        return FLAT_NO;
    if (flat_str(fl, TK_ID, &s) != 0 || check_id(c, s) != 0 || flat_str(fl, TK_TYPE, &s) != 0 ||
        check_type(c, s, allow_internal) != 0 || flat_str(fl, TK_AT, &s) != 0 ||
        check_at(c, s) != 0)
        return FLAT_NO;
    if (fl->top_seen & (1u << 4)) {
        if (fl->top[TK_EXPV].kind != FV_INT ||
            check_expected_version(c, fl->top[TK_EXPV].i, expv) != 0)
            return FLAT_NO;
    }
    const acr_type_schema_t *sc = acr_event_schema(c->ev.type);
    const flat_val_t *val[ACR_F__COUNT] = {0};
    for (uint32_t i = 0; i < fl->ndata; i++) {
        int f = schema_field(sc, fl->data[i].key, fl->data[i].klen);
        if (f < 0 || val[f] != NULL) /* unknown or duplicate: the slow path says which */
            return FLAT_NO;
        val[f] = &fl->data[i].v;
    }
    for (unsigned i = 0; i < sc->field_count; i++) {
        int f = sc->fields[i];
        if (val[f] == NULL) {
            if ((sc->required >> f) & 1u)
                return FLAT_NO;
        } else if (flat_field(c, f, val[f]) != 0) {
            return FLAT_NO;
        }
    }
    return check_type_rules(c) == 0 ? 0 : FLAT_NO;
}

/* Records one envelope member; data members are kept raw until the type is
 * known (data may come before type). NULL when the fast path gives up. */
static flat_val_t *flat_slot(flat_t *fl, bool top, const char *k, uint32_t n, int *tk)
{
    if (!top) {
        if (fl->ndata == FLAT_DATA_MAX)
            return NULL;
        fl->data[fl->ndata].key = k;
        fl->data[fl->ndata].klen = n;
        *tk = -1;
        return &fl->data[fl->ndata++].v;
    }
    uint32_t bit;
    *tk = top_key(k, n, &bit);
    if (*tk < 0 || (fl->top_seen & bit)) /* unknown or duplicate */
        return NULL;
    fl->top_seen |= bit;
    return &fl->top[*tk];
}

/* -- JSON -- */

static const uint8_t *js_ws(const uint8_t *p, const uint8_t *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    return p;
}

/* A string at p (its opening quote) made only of 0x20..0x7f bytes other than
 * '\\' (so its JSON text is its value); returns the byte after the closing
 * quote, NULL for anything else. */
static const uint8_t *js_plain_str(const uint8_t *p, const uint8_t *end, const char **s,
                                   uint32_t *n)
{
    const uint8_t *q = ++p;
    for (; q < end; q++) {
        uint8_t ch = *q;
        if (ch == '"') {
            *s = (const char *)p;
            *n = (uint32_t)(q - p);
            return q + 1;
        }
        if (ch < 0x20 || ch >= 0x80 || ch == '\\')
            return NULL;
    }
    return NULL;
}

/* An integer -?(0|[1-9][0-9]{0,17}) not followed by a digit, '.', 'e' or 'E'
 * (those make it a real, an error or a longer number: the slow path's). */
static const uint8_t *js_int(const uint8_t *p, const uint8_t *end, int64_t *out)
{
    bool neg = p < end && *p == '-';
    p += neg;
    if (p >= end || *p < '0' || *p > '9')
        return NULL;
    const uint8_t *first = p;
    int64_t v = 0;
    if (*p == '0')
        p++;
    else
        for (; p < end && *p >= '0' && *p <= '9'; p++) {
            if (p - first >= 18)
                return NULL;
            v = v * 10 + (*p - '0');
        }
    if (p < end && ((*p >= '0' && *p <= '9') || *p == '.' || *p == 'e' || *p == 'E'))
        return NULL;
    *out = neg ? -v : v;
    return p;
}

/* A flat object at p ('{'): the envelope (top) or data. Returns the byte
 * after its '}', NULL when the fast path gives up. */
static const uint8_t *js_object(const uint8_t *p, const uint8_t *end, flat_t *fl, bool top)
{
    p = js_ws(p + 1, end);
    if (p < end && *p == '}')
        return p + 1;
    for (;;) {
        const char *k;
        uint32_t kn;
        int tk;
        if (p >= end || *p != '"' || (p = js_plain_str(p, end, &k, &kn)) == NULL)
            return NULL;
        p = js_ws(p, end);
        if (p >= end || *p != ':')
            return NULL;
        p = js_ws(p + 1, end);
        flat_val_t *v = flat_slot(fl, top, k, kn, &tk);
        if (v == NULL || p >= end)
            return NULL;
        if (tk == TK_DATA) {
            if (*p != '{' || (p = js_object(p, end, fl, false)) == NULL)
                return NULL;
        } else if (*p == '"') {
            v->kind = FV_STR;
            if ((p = js_plain_str(p, end, &v->s, &v->n)) == NULL)
                return NULL;
        } else {
            v->kind = FV_INT;
            if ((p = js_int(p, end, &v->i)) == NULL)
                return NULL;
        }
        p = js_ws(p, end);
        if (p >= end)
            return NULL;
        if (*p == '}')
            return p + 1;
        if (*p != ',')
            return NULL;
        p = js_ws(p + 1, end);
    }
}

static int flat_json(parse_ctx_t *c, const char *text, size_t len, bool allow_internal,
                     int64_t *expv)
{
    const uint8_t *p = (const uint8_t *)text, *end = p + len;
    flat_t fl;
    fl.top_seen = 0;
    fl.ndata = 0;
    p = js_ws(p, end);
    if (p >= end || *p != '{' || (p = js_object(p, end, &fl, true)) == NULL ||
        js_ws(p, end) != end)
        return FLAT_NO;
    return flat_finish(c, &fl, allow_internal, expv);
}

/* On success the jansson path leaves err cleared but for the event id (and
 * the caller's line); this does the same without clearing 400 bytes. */
static void flat_ok_err(acr_err_t *err, acr_str_t id)
{
    if (err == NULL)
        return;
    err->code = 0;
    err->field[0] = '\0';
    err->msg[0] = '\0';
    memcpy(err->id, id.ptr, id.len); /* id_valid: 1..64 bytes, no NUL */
    err->id[id.len] = '\0';
}

/* The fast path; FLAT_NO when the jansson path must run. */
static int fast_event(const char *text, size_t len, const uint8_t *mp, int32_t offset_min,
                      bool allow_internal, acr_buf_t *out, int64_t *out_expv, acr_err_t *err,
                      size_t *consumed);

/* An allocation failed while jansson built or walked a tree: whatever it
 * returned is untrusted (docs/reliability.md, K1-K3). Drops the tree and
 * anything appended, and reports out of memory. */
static int tree_nomem(json_t *root, acr_buf_t *out, size_t out_len, acr_err_t *err)
{
    json_decref(root);
    out->len = out_len;
    return fail(err, ACR_ENOMEM, "", "out of memory while reading the event");
}

#define OVERFLOW_MARK "\001acr-int-overflow"       /* as decoded */
#define OVERFLOW_MARK_JSON "\"\\u0001acr-int-overflow\"" /* as written in JSON */

/* The path of the string value equal to OVERFLOW_MARK under v ("data.amount_minor",
 * "data.plan.rules[0].brackets[1].from_minor"); false when not found. */
static bool find_mark(json_t *v, char *path, size_t cap, size_t used)
{
    if (json_is_string(v))
        return strcmp(json_string_value(v), OVERFLOW_MARK) == 0;
    if (json_is_object(v)) {
        const char *k;
        json_t *m;
        json_object_foreach(v, k, m) {
            int n = snprintf(path + used, cap - used, "%s%s", used ? "." : "", k);
            if (n > 0 && (size_t)n < cap - used && find_mark(m, path, cap, used + (size_t)n))
                return true;
        }
    }
    if (json_is_array(v)) {
        size_t i;
        json_t *m;
        json_array_foreach(v, i, m) {
            int n = snprintf(path + used, cap - used, "[%zu]", i);
            if (n > 0 && (size_t)n < cap - used && find_mark(m, path, cap, used + (size_t)n))
                return true;
        }
    }
    path[used] = '\0';
    return false;
}

/* jansson stops at an integer beyond 64 bits without saying which event or field it
 * was in. A copy of the text with that number replaced by a marker string is read again
 * to name the event's id and the field (events.md: errors name them). je->position is
 * just past the number. */
static int overflow_err(const char *text, size_t len, const json_error_t *je, acr_err_t *err)
{
    size_t end = (size_t)je->position <= len ? (size_t)je->position : len, start = end;
    while (start > 0 && (strchr("0123456789-+.eE", text[start - 1]) != NULL))
        start--;
    fail(err, ACR_EINVALID_VALUE, "", "integer out of range (|value| <= 10^15) at column %d",
         je->column);
    size_t mark_len = strlen(OVERFLOW_MARK_JSON);
    char *copy = start < end ? malloc(len - (end - start) + mark_len) : NULL;
    if (copy == NULL)
        return ACR_EINVALID_VALUE;
    memcpy(copy, text, start);
    memcpy(copy + start, OVERFLOW_MARK_JSON, mark_len);
    memcpy(copy + start + mark_len, text + end, len - end);
    json_error_t je2;
    json_t *root = json_loadb(copy, len - (end - start) + mark_len,
                              JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &je2);
    free(copy);
    char path[sizeof err->field];
    path[0] = '\0';
    if (root != NULL && json_is_object(root) && find_mark(root, path, sizeof path, 0)) {
        json_t *id = json_object_get(root, "id");
        if (json_is_string(id) && json_string_length(id) < sizeof err->id &&
            strlen(json_string_value(id)) == json_string_length(id))
            memcpy(err->id, json_string_value(id), json_string_length(id) + 1);
        fail(err, ACR_EINVALID_VALUE, path, "%s is out of range (|value| <= 10^15)", path);
    }
    json_decref(root);
    return ACR_EINVALID_VALUE;
}

/* An event over the size limit, named by its top-level "id" when that is readable: the
 * JSON is still parsed for it up to 16 times the limit (a bound on the work a rejection
 * costs), beyond that it is named by its line only. */
static int too_large_json(const char *text, size_t len, acr_err_t *err)
{
    int rc = fail(err, ACR_ETOO_LARGE, "", "the event's JSON is %zu bytes, more than %d", len,
                  ACR_EVENT_JSON_MAX);
    if (err == NULL || len > (size_t)16 * ACR_EVENT_JSON_MAX)
        return rc;
    acr_jsonmem_begin();
    json_t *root = json_loadb(text, len, 0, NULL);
    json_t *id = !acr_jsonmem_failed() && json_is_object(root) ? json_object_get(root, "id")
                                                               : NULL;
    if (json_is_string(id) && json_string_length(id) > 0 &&
        json_string_length(id) < sizeof err->id &&
        strlen(json_string_value(id)) == json_string_length(id))
        memcpy(err->id, json_string_value(id), json_string_length(id) + 1);
    json_decref(root);
    return rc;
}

int acr_event_parse_json(const char *text, size_t len, int32_t utc_offset_min,
                         bool allow_internal, acr_buf_t *out, int64_t *out_expected_version,
                         acr_err_t *err)
{
    if (out_expected_version != NULL)
        *out_expected_version = ACR_NO_EXPECTED_VERSION;
    if (len <= ACR_EVENT_JSON_MAX &&
        fast_event(text, len, NULL, utc_offset_min, allow_internal, out, out_expected_version,
                   err, NULL) == 0)
        return 0;
    err_reset(err);
    if (len > ACR_EVENT_JSON_MAX)
        return too_large_json(text, len, err);
    json_error_t je;
    size_t out_len = out->len;
    acr_jsonmem_begin();
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &je);
    if (acr_jsonmem_failed()) /* jansson may return a damaged tree: never trust it */
        return tree_nomem(root, out, out_len, err);
    if (root == NULL) {
        if (json_error_code(&je) == json_error_numeric_overflow)
            return err != NULL ? overflow_err(text, len, &je, err) : ACR_EINVALID_VALUE;
        return fail(err, ACR_EMALFORMED_JSON, "", "%s (line %d, column %d)", je.text, je.line,
                    je.column);
    }
    int rc = event_from_tree(root, utc_offset_min, allow_internal, ACR_EMALFORMED_JSON, out,
                             out_expected_version, err);
    if (acr_jsonmem_failed())
        return tree_nomem(root, out, out_len, err);
    json_decref(root);
    return rc;
}

/* ---- msgpack in ---------------------------------------------------------- */

enum { MP_NIL, MP_BOOL, MP_INT, MP_UINT, MP_FLOAT, MP_STR, MP_BIN, MP_EXT, MP_ARR, MP_MAP };

typedef struct mp_item {
    int kind;            /* MP_* */
    uint64_t n;          /* byte length (str/bin/ext), element count (arr/map), uint value */
    int64_t i;           /* MP_INT value, MP_BOOL 0/1 */
    const uint8_t *body; /* str/bin/ext bytes */
} mp_item_t;

typedef struct mp_reader {
    const uint8_t *p;
    const uint8_t *end;
} mp_reader_t;

static uint64_t be_n(const uint8_t *p, size_t n)
{
    uint64_t v = 0;
    for (size_t k = 0; k < n; k++)
        v = (v << 8) | p[k];
    return v;
}

/* Takes n bytes of the input; false when fewer remain. */
static bool mp_take(mp_reader_t *r, uint64_t n, const uint8_t **out)
{
    if (n > (uint64_t)(r->end - r->p))
        return false;
    *out = r->p;
    r->p += n;
    return true;
}

/* Reads a header that carries a big-endian length of w bytes, then its body. */
static bool mp_sized(mp_reader_t *r, mp_item_t *it, int kind, size_t w, size_t extra)
{
    const uint8_t *h;
    if (!mp_take(r, w, &h))
        return false;
    it->kind = kind;
    it->n = be_n(h, w);
    if (kind == MP_ARR || kind == MP_MAP) /* each element takes at least one byte */
        return it->n * (kind == MP_MAP ? 2 : 1) <= (uint64_t)(r->end - r->p);
    return mp_take(r, it->n + extra, &it->body);
}

static bool mp_number(mp_reader_t *r, mp_item_t *it, uint8_t m)
{
    static const uint8_t width[4] = {1, 2, 4, 8};
    const uint8_t *h;
    if (m == 0xca || m == 0xcb) {
        it->kind = MP_FLOAT;
        return mp_take(r, m == 0xca ? 4 : 8, &h);
    }
    size_t w = width[(m - 0xcc) & 3];
    if (!mp_take(r, w, &h))
        return false;
    uint64_t u = be_n(h, w);
    if (m <= 0xcf) {
        it->kind = MP_UINT;
        it->n = u;
    } else {
        int sh = (int)(64 - 8 * w);
        it->kind = MP_INT;
        it->i = (int64_t)(u << sh) >> sh;
    }
    return true;
}

static bool mp_ext(mp_reader_t *r, mp_item_t *it, uint8_t m)
{
    if (m >= 0xd4 && m <= 0xd8) { /* fixext 1..16 plus a type byte */
        it->kind = MP_EXT;
        return mp_take(r, 1 + (1u << (m - 0xd4)), &it->body);
    }
    if (m >= 0xc4 && m <= 0xc6)
        return mp_sized(r, it, MP_BIN, 1u << (m - 0xc4), 0);
    return mp_sized(r, it, MP_EXT, 1u << (m - 0xc7), 1); /* 0xc7..0xc9 */
}

/* Reads one item's header (and the body of str/bin/ext). false on bad framing. */
static bool mp_next(mp_reader_t *r, mp_item_t *it)
{
    if (r->p >= r->end)
        return false;
    uint8_t m = *r->p++;
    memset(it, 0, sizeof *it);
    if (m <= 0x7f || m >= 0xe0) {
        it->kind = MP_INT;
        it->i = (int8_t)m;
        return true;
    }
    if (m <= 0x8f) {
        it->kind = MP_MAP, it->n = m & 0x0f;
        return it->n * 2 <= (uint64_t)(r->end - r->p);
    }
    if (m <= 0x9f) {
        it->kind = MP_ARR, it->n = m & 0x0f;
        return it->n <= (uint64_t)(r->end - r->p);
    }
    if (m <= 0xbf) {
        it->kind = MP_STR, it->n = m & 0x1f;
        return mp_take(r, it->n, &it->body);
    }
    switch (m) {
    case 0xc0: it->kind = MP_NIL; return true;
    case 0xc1: return false;
    case 0xc2:
    case 0xc3: it->kind = MP_BOOL, it->i = m - 0xc2; return true;
    case 0xd9: return mp_sized(r, it, MP_STR, 1, 0);
    case 0xda: return mp_sized(r, it, MP_STR, 2, 0);
    case 0xdb: return mp_sized(r, it, MP_STR, 4, 0);
    case 0xdc: return mp_sized(r, it, MP_ARR, 2, 0);
    case 0xdd: return mp_sized(r, it, MP_ARR, 4, 0);
    case 0xde: return mp_sized(r, it, MP_MAP, 2, 0);
    case 0xdf: return mp_sized(r, it, MP_MAP, 4, 0);
    default:
        return (m >= 0xca && m <= 0xd3) ? mp_number(r, it, m) : mp_ext(r, it, m);
    }
}

/* Finds the end of one complete value without recursion: pending counts the
 * items still to read, bounded because every declared child fits the input. */
static bool mp_skip(mp_reader_t *r)
{
    uint64_t pending = 1;
    while (pending > 0) {
        mp_item_t it;
        if (!mp_next(r, &it))
            return false;
        pending--;
        if (it.kind == MP_ARR)
            pending += it.n;
        else if (it.kind == MP_MAP)
            pending += 2 * it.n;
    }
    return true;
}

/* -- msgpack, flat fast path (see "the flat fast path") -- */

static bool mp_ascii(const uint8_t *p, uint64_t n)
{
    for (uint64_t i = 0; i < n; i++)
        if (p[i] >= 0x80)
            return false;
    return true;
}

/* The n entries of a flat map into fl; false when the fast path gives up. */
static bool mpf_map(mp_reader_t *r, uint64_t n, flat_t *fl, bool top)
{
    for (uint64_t k = 0; k < n; k++) {
        mp_item_t key, val;
        int tk;
        if (!mp_next(r, &key) || key.kind != MP_STR || key.n > 64)
            return false;
        flat_val_t *v = flat_slot(fl, top, (const char *)key.body, (uint32_t)key.n, &tk);
        if (v == NULL || !mp_next(r, &val))
            return false;
        if (tk == TK_DATA) {
            if (val.kind != MP_MAP || !mpf_map(r, val.n, fl, false))
                return false;
            continue;
        }
        if (val.kind == MP_STR) {
            if (val.n > ACR_STRING_LEN_MAX || !mp_ascii(val.body, val.n))
                return false;
            v->kind = FV_STR;
            v->s = (const char *)val.body;
            v->n = (uint32_t)val.n;
        } else if (val.kind == MP_INT || (val.kind == MP_UINT && val.n <= (uint64_t)INT64_MAX)) {
            v->kind = FV_INT;
            v->i = val.kind == MP_INT ? val.i : (int64_t)val.n;
        } else {
            return false;
        }
    }
    return true;
}

static int flat_msgpack(parse_ctx_t *c, const uint8_t *p, size_t len, int64_t *expv,
                        size_t *consumed)
{
    mp_reader_t r = {p, p + len};
    mp_item_t it;
    flat_t fl;
    fl.top_seen = 0;
    fl.ndata = 0;
    if (p == NULL || !mp_next(&r, &it) || it.kind != MP_MAP || !mpf_map(&r, it.n, &fl, true))
        return FLAT_NO;
    *consumed = (size_t)(r.p - p);
    if (*consumed > ACR_EVENT_JSON_MAX)
        return FLAT_NO;
    return flat_finish(c, &fl, false, expv);
}

static int fast_event(const char *text, size_t len, const uint8_t *mp, int32_t offset_min,
                      bool allow_internal, acr_buf_t *out, int64_t *out_expv, acr_err_t *err,
                      size_t *consumed)
{
    parse_ctx_t c;
    memset(&c.ev, 0, sizeof c.ev);
    c.json_text = NULL;
    c.offset_min = offset_min;
    c.err = NULL;
    int64_t expv = ACR_NO_EXPECTED_VERSION;
    size_t used = 0;
    int rc = mp != NULL ? flat_msgpack(&c, mp, len, &expv, &used)
                        : flat_json(&c, text, len, allow_internal, &expv);
    if (rc != 0 || acr_record_encode(&c.ev, out) != 0)
        return FLAT_NO; /* the jansson path decides, ACR_ENOMEM included */
    flat_ok_err(err, c.ev.id);
    if (out_expv != NULL)
        *out_expv = expv;
    if (consumed != NULL)
        *consumed = used;
    return 0;
}

typedef struct mp_conv {
    mp_reader_t r;
    acr_err_t *err;
    int depth;
    char path[64]; /* field path of the value being converted, for errors */
} mp_conv_t;

static int mp_value(mp_conv_t *v, json_t **out);

/* Appends a path segment; returns the old length to restore. */
static size_t path_push(mp_conv_t *v, const char *fmt, const char *key, size_t klen, size_t idx)
{
    size_t old = strlen(v->path);
    if (old < sizeof v->path - 1) {
        if (key != NULL)
            snprintf(v->path + old, sizeof v->path - old, fmt, (int)klen, key);
        else
            snprintf(v->path + old, sizeof v->path - old, fmt, idx);
    }
    return old;
}

static int mp_array(mp_conv_t *v, uint64_t n, json_t **out)
{
    json_t *arr = json_array();
    if (arr == NULL)
        return fail(v->err, ACR_ENOMEM, v->path, "out of memory");
    for (uint64_t k = 0; k < n; k++) {
        size_t old = path_push(v, "[%zu]", NULL, 0, (size_t)k);
        json_t *item = NULL;
        int rc = mp_value(v, &item);
        v->path[old] = '\0';
        if (rc == 0 && json_array_append_new(arr, item) != 0)
            rc = fail(v->err, ACR_ENOMEM, v->path, "out of memory");
        if (rc != 0) {
            json_decref(arr);
            return rc;
        }
    }
    *out = arr;
    return 0;
}

static int mp_map_entry(mp_conv_t *v, json_t *obj)
{
    mp_item_t key;
    if (!mp_next(&v->r, &key) || key.kind != MP_STR)
        return fail(v->err, ACR_EMALFORMED_MSGPACK, v->path, "map keys must be strings");
    const char *k = (const char *)key.body;
    size_t klen = (size_t)key.n;
    if (memchr(k, '\0', klen) != NULL)
        return fail(v->err, ACR_EMALFORMED_MSGPACK, v->path, "a map key contains NUL");
    if (json_object_getn(obj, k, klen) != NULL)
        return fail(v->err, ACR_EMALFORMED_MSGPACK, v->path, "duplicate key \"%.*s\"",
                    (int)(klen < 64 ? klen : 64), k);
    size_t old = path_push(v, v->path[0] ? ".%.*s" : "%.*s", k, klen, 0);
    json_t *val = NULL;
    int rc = mp_value(v, &val);
    v->path[old] = '\0';
    if (rc != 0)
        return rc;
    if (json_object_setn_new(obj, k, klen, val) != 0)
        return fail(v->err, ACR_EMALFORMED_MSGPACK, v->path, "a map key is not valid UTF-8");
    return 0;
}

static int mp_map(mp_conv_t *v, uint64_t n, json_t **out)
{
    json_t *obj = json_object();
    if (obj == NULL)
        return fail(v->err, ACR_ENOMEM, v->path, "out of memory");
    for (uint64_t k = 0; k < n; k++) {
        int rc = mp_map_entry(v, obj);
        if (rc != 0) {
            json_decref(obj);
            return rc;
        }
    }
    *out = obj;
    return 0;
}

static int mp_value(mp_conv_t *v, json_t **out)
{
    mp_item_t it;
    if (!mp_next(&v->r, &it))
        return fail(v->err, ACR_EMALFORMED_MSGPACK, v->path, "truncated msgpack");
    switch (it.kind) {
    case MP_NIL: *out = json_null(); return 0;
    case MP_BOOL: *out = json_boolean(it.i); return 0;
    case MP_INT: *out = json_integer(it.i); break;
    case MP_UINT:
        if (it.n > (uint64_t)INT64_MAX)
            return fail(v->err, ACR_EINVALID_VALUE, v->path, "integer out of range");
        *out = json_integer((json_int_t)it.n);
        break;
    case MP_STR:
        *out = json_stringn((const char *)it.body, (size_t)it.n);
        if (*out == NULL)
            return fail(v->err, ACR_EMALFORMED_MSGPACK, v->path, "a string is not valid UTF-8");
        return 0;
    case MP_ARR:
    case MP_MAP: {
        if (v->depth >= ACR_MSGPACK_DEPTH_MAX)
            return fail(v->err, ACR_ETOO_LARGE, v->path, "nested deeper than %d levels",
                        ACR_MSGPACK_DEPTH_MAX);
        v->depth++;
        int rc = it.kind == MP_ARR ? mp_array(v, it.n, out) : mp_map(v, it.n, out);
        v->depth--;
        return rc;
    }
    default:
        return fail(v->err, ACR_EWRONG_TYPE, v->path,
                    "floats, bin and ext values are not accepted (integers and strings only)");
    }
    return *out ? 0 : fail(v->err, ACR_ENOMEM, v->path, "out of memory");
}

/* Sets err->id from the top-level "id" of the msgpack map at p (n bytes, whole: mp_skip
 * read it) when it is a readable string: a rejection names the event whenever it can
 * (events.md), also when a value elsewhere cannot be converted or the event is too large. */
static int with_mp_id(const uint8_t *p, size_t n, acr_err_t *err, int rc)
{
    if (err == NULL || err->id[0] != '\0')
        return rc;
    mp_reader_t r = {p, p + n};
    mp_item_t m, k, id;
    if (!mp_next(&r, &m) || m.kind != MP_MAP)
        return rc;
    for (uint64_t i = 0; i < m.n; i++) {
        if (!mp_next(&r, &k) || k.kind != MP_STR)
            return rc;
        if (k.n == 2 && memcmp(k.body, "id", 2) == 0) {
            if (mp_next(&r, &id) && id.kind == MP_STR && id.n > 0 && id.n < sizeof err->id &&
                memchr(id.body, '\0', (size_t)id.n) == NULL) {
                memcpy(err->id, id.body, (size_t)id.n);
                err->id[id.n] = '\0';
            }
            return rc;
        }
        if (!mp_skip(&r))
            return rc;
    }
    return rc;
}

int acr_event_parse_msgpack(const uint8_t *p, size_t len, size_t *consumed,
                            int32_t utc_offset_min, acr_buf_t *out,
                            int64_t *out_expected_version, acr_err_t *err)
{
    *consumed = 0;
    if (out_expected_version != NULL)
        *out_expected_version = ACR_NO_EXPECTED_VERSION;
    if (fast_event(NULL, len, p, utc_offset_min, false, out, out_expected_version, err,
                   consumed) == 0)
        return 0;
    err_reset(err);
    mp_conv_t v = {{p, p + len}, err, 0, ""};
    if (p == NULL || len == 0 || !mp_skip(&v.r))
        return fail(err, ACR_EMALFORMED_MSGPACK, "", "truncated or invalid msgpack");
    size_t n = (size_t)(v.r.p - p);
    *consumed = n;
    if ((p[0] & 0xf0) != 0x80 && p[0] != 0xde && p[0] != 0xdf)
        return fail(err, ACR_EMALFORMED_MSGPACK, "", "an event is a msgpack map");
    if (n > ACR_EVENT_JSON_MAX)
        return with_mp_id(p, n, err, fail(err, ACR_ETOO_LARGE, "",
                                          "the event is %zu bytes, more than %d", n,
                                          ACR_EVENT_JSON_MAX));
    v.r.p = p;
    v.r.end = p + n;
    json_t *root = NULL;
    size_t out_len = out->len;
    acr_jsonmem_begin();
    int rc = mp_value(&v, &root);
    if (acr_jsonmem_failed())
        return tree_nomem(root, out, out_len, err);
    if (rc != 0)
        return with_mp_id(p, n, err, rc);
    rc = event_from_tree(root, utc_offset_min, false, ACR_EMALFORMED_MSGPACK, out,
                         out_expected_version, err);
    if (acr_jsonmem_failed())
        return tree_nomem(root, out, out_len, err);
    json_decref(root);
    return rc;
}

/* ---- JSON out ------------------------------------------------------------ */

static int append_engine_fields(const acr_event_t *ev, const uint8_t *hash, acr_buf_t *out)
{
    char ts[ACR_TS_BUF], stream[ACR_ID_LEN_MAX + 16];
    acr_ts_format(ev->recorded_at_ms, ts);
    size_t slen = acr_event_stream(ev, stream, sizeof stream);
    int rc = acr_buf_printf(out, "\"seq\":%llu,\"recorded_at\":\"%s\",\"stream\":",
                            (unsigned long long)ev->seq, ts);
    if (rc == 0)
        rc = acr_buf_append_json_str(out, stream, slen);
    if (rc == 0)
        rc = acr_buf_printf(out, ",\"version\":%llu,", (unsigned long long)ev->version);
    if (rc == 0 && ev->actor.len > 0) { /* events stored before the actor have none */
        rc = acr_buf_append_str(out, "\"actor\":");
        rc = rc ? rc : acr_buf_append_json_str(out, ev->actor.ptr, ev->actor.len);
        rc = rc ? rc : acr_buf_append(out, ",", 1);
    }
    if (rc == 0 && hash != NULL) {
        static const char hex[] = "0123456789abcdef";
        char h[2 * ACR_HASH_LEN + 12] = "\"hash\":\"";
        size_t k = 8;
        for (int i = 0; i < ACR_HASH_LEN; i++) {
            h[k++] = hex[hash[i] >> 4];
            h[k++] = hex[hash[i] & 15];
        }
        h[k++] = '"';
        h[k++] = ',';
        rc = acr_buf_append(out, h, k);
    }
    return rc;
}

static int append_data(const acr_event_t *ev, const acr_type_schema_t *sc, acr_buf_t *out)
{
    int rc = acr_buf_append_str(out, "\"data\":{");
    bool first = true;
    for (unsigned i = 0; rc == 0 && i < sc->field_count; i++) {
        int f = sc->fields[i];
        if (!ACR_HAS(ev, f))
            continue;
        rc = acr_buf_printf(out, "%s\"%s\":", first ? "" : ",", acr_field_name(f));
        first = false;
        int kind = acr__field_kind[f];
        if (rc != 0)
            break;
        if (kind == ACR_FK_AMOUNT || kind == ACR_FK_UINT)
            rc = acr_buf_printf(out, "%lld", (long long)ev->num[f]);
        else if (kind == ACR_FK_BOOL)
            rc = acr_buf_append_str(out, ev->num[f] ? "true" : "false");
        else if (kind == ACR_FK_JSON)
            rc = acr_buf_append(out, ev->str[f].ptr, ev->str[f].len);
        else
            rc = acr_buf_append_json_str(out, ev->str[f].ptr, ev->str[f].len);
    }
    return rc == 0 ? acr_buf_append(out, "}", 1) : rc;
}

int acr_event_to_json(const acr_event_t *ev, const uint8_t hash[ACR_HASH_LEN],
                      bool with_engine_fields, acr_buf_t *out)
{
    const acr_type_schema_t *sc = acr_event_schema(ev->type);
    if (sc == NULL)
        return ACR_EINVALID_VALUE;
    size_t mark = out->len;
    char ts[ACR_TS_BUF];
    acr_ts_format(ev->at_ms, ts);
    int rc = acr_buf_append(out, "{", 1);
    if (rc == 0 && with_engine_fields)
        rc = append_engine_fields(ev, hash, out);
    if (rc == 0)
        rc = acr_buf_append_str(out, "\"id\":");
    if (rc == 0)
        rc = acr_buf_append_json_str(out, ev->id.ptr, ev->id.len);
    if (rc == 0)
        rc = acr_buf_printf(out, ",\"type\":\"%s\",\"at\":\"%s\",", sc->name, ts);
    if (rc == 0)
        rc = append_data(ev, sc, out);
    if (rc == 0)
        rc = acr_buf_append(out, "}", 1);
    if (rc != 0)
        out->len = mark;
    return rc;
}
