/* event.c - the event model's tables: types, fields, schemas, enums, streams.
 *
 * Everything that the three codecs (JSON in, msgpack record in/out, JSON out)
 * must agree on lives here once: the wire names of types and fields, each
 * type's fields in stored order with its required set (events.md, Event
 * types), the value sets of enum fields and the stream an event belongs to
 * (events.md, Streams). Keeping these in tables rather than in per-type code
 * means a new field or type is one line, and the codecs cannot drift apart.
 */
#include "event_internal.h"

#include <stdio.h>
#include <string.h>

#include "accrue/limits.h"

const uint8_t acr__field_kind[ACR_F__COUNT] = {
#define XX(name, json, kind) [ACR_F_##name] = kind,
    ACR_FIELD_MAP(XX)
#undef XX
};

static const char *const field_names[ACR_F__COUNT] = {
#define XX(name, json, kind) [ACR_F_##name] = json,
    ACR_FIELD_MAP(XX)
#undef XX
};

#define F(x) ACR_F_##x
#define B(x) (1ull << ACR_F_##x)

/* Fields in stored order; required fields are those in the mask. Order and
 * membership are part of the stored format: append only within a type. */
const acr_type_schema_t acr__schemas[ACR_EV__COUNT] = {
    [ACR_EV_PARTNER_REGISTERED] = {"partner.registered", 8,
        {F(PARTNER_ID), F(NAME), F(KIND), F(TIER), F(PLAN_ID), F(CURRENCY), F(REGION), F(SOURCE)},
        B(PARTNER_ID) | B(NAME) | B(KIND) | B(TIER) | B(PLAN_ID) | B(CURRENCY)},
    [ACR_EV_PARTNER_UPDATED] = {"partner.updated", 5,
        {F(PARTNER_ID), F(NAME), F(TIER), F(PLAN_ID), F(REGION)}, B(PARTNER_ID)},
    [ACR_EV_PARTNER_STATUS_CHANGED] = {"partner.status_changed", 3,
        {F(PARTNER_ID), F(STATUS), F(REASON)}, B(PARTNER_ID) | B(STATUS)},
    [ACR_EV_REP_ADDED] = {"rep.added", 3, {F(PARTNER_ID), F(REP_ID), F(NAME)},
        B(PARTNER_ID) | B(REP_ID) | B(NAME)},
    [ACR_EV_TRAINING_COMPLETED] = {"training.completed", 3, {F(PARTNER_ID), F(REP_ID), F(MODULE)},
        B(PARTNER_ID) | B(MODULE)},
    [ACR_EV_PIPELINE_DEFINED] = {"pipeline.defined", 1, {F(STAGES)}, B(STAGES)},
    [ACR_EV_DEAL_REGISTERED] = {"deal.registered", 8,
        {F(DEAL_ID), F(PARTNER_ID), F(CUSTOMER_ID), F(AMOUNT_MINOR), F(CURRENCY), F(REP_ID),
         F(EXPECTED_CLOSE), F(NAME)},
        B(DEAL_ID) | B(PARTNER_ID) | B(CUSTOMER_ID) | B(CURRENCY)},
    [ACR_EV_DEAL_STAGE_CHANGED] = {"deal.stage_changed", 5,
        {F(DEAL_ID), F(STAGE), F(AMOUNT_MINOR), F(EXPECTED_CLOSE), F(REP_ID)},
        B(DEAL_ID) | B(STAGE)},
    [ACR_EV_DEAL_CLOSED] = {"deal.closed", 3, {F(DEAL_ID), F(OUTCOME), F(REASON)},
        B(DEAL_ID) | B(OUTCOME)},
    [ACR_EV_SALE_RECORDED] = {"sale.recorded", 8,
        {F(SALE_ID), F(PARTNER_ID), F(CUSTOMER_ID), F(PRODUCT), F(AMOUNT_MINOR), F(CURRENCY),
         F(DEAL_ID), F(REP_ID)},
        B(SALE_ID) | B(PARTNER_ID) | B(CUSTOMER_ID) | B(PRODUCT) | B(AMOUNT_MINOR) | B(CURRENCY)},
    [ACR_EV_SALE_REFUNDED] = {"sale.refunded", 2, {F(SALE_ID), F(AMOUNT_MINOR)},
        B(SALE_ID) | B(AMOUNT_MINOR)},
    [ACR_EV_PLAN_PUBLISHED] = {"plan.published", 1, {F(PLAN)}, B(PLAN)},
    [ACR_EV_ADJUSTMENT_RECORDED] = {"adjustment.recorded", 4,
        {F(PARTNER_ID), F(AMOUNT_MINOR), F(CURRENCY), F(REASON)},
        B(PARTNER_ID) | B(AMOUNT_MINOR) | B(CURRENCY) | B(REASON)},
    [ACR_EV_PERIOD_CLOSED] = {"period.closed", 5,
        {F(PERIOD), F(THROUGH_SEQ), F(FINGERPRINT), F(LINES), F(TOTALS)},
        B(PERIOD) | B(THROUGH_SEQ) | B(FINGERPRINT) | B(LINES) | B(TOTALS)},
    /* The partner program (program.md). */
    [ACR_EV_ONBOARDING_DEFINED] = {"onboarding.defined", 1, {F(MODULES)}, B(MODULES)},
    [ACR_EV_PROMOTION_PUBLISHED] = {"promotion.published", 1, {F(PROMOTION)}, B(PROMOTION)},
    [ACR_EV_PROMOTION_ENDED] = {"promotion.ended", 2, {F(PROMO_ID), F(ENDS_ON)},
        B(PROMO_ID) | B(ENDS_ON)},
    [ACR_EV_ANNOUNCEMENT_PUBLISHED] = {"announcement.published", 6,
        {F(ANNOUNCEMENT_ID), F(TITLE), F(BODY), F(AUDIENCE), F(REQUIRES_ACK), F(DUE)},
        B(ANNOUNCEMENT_ID) | B(TITLE) | B(BODY) | B(REQUIRES_ACK)},
    [ACR_EV_ANNOUNCEMENT_ACKNOWLEDGED] = {"announcement.acknowledged", 3,
        {F(ANNOUNCEMENT_ID), F(PARTNER_ID), F(REP_ID)}, B(ANNOUNCEMENT_ID) | B(PARTNER_ID)},
};

#undef F
#undef B

/* A record is a fixarray of 6 + field_count items, plus the actor once committed (at
 * most 15), so a type has at most ACR_RECORD_FIELDS_MAX fields; acr_record_encode
 * checks it. */
_Static_assert(6 + ACR_RECORD_FIELDS_MAX + 1 <= 15, "records are fixarrays");

const acr_type_schema_t *acr_event_schema(int type)
{
    if (type <= ACR_EV_NONE || type >= ACR_EV__COUNT)
        return NULL;
    return &acr__schemas[type];
}

int acr_event_type_from_name(const char *name, size_t len)
{
    for (int t = ACR_EV_NONE + 1; t < ACR_EV__COUNT; t++) {
        const char *n = acr__schemas[t].name;
        if (strlen(n) == len && memcmp(n, name, len) == 0)
            return t;
    }
    return ACR_EV_NONE;
}

const char *acr_event_type_name(int type)
{
    const acr_type_schema_t *s = acr_event_schema(type);
    return s ? s->name : "unknown";
}

const char *acr_field_name(int field)
{
    return field >= 0 && field < ACR_F__COUNT ? field_names[field] : "unknown";
}

/* NULL-terminated value lists of the enum fields. */
static const char *const *enum_list(int field)
{
    static const char *const kinds[] = {"reseller", "distributor", "broker", "referral", NULL};
    static const char *const sources[] = {"referral", "inbound", "outbound", "event", NULL};
    static const char *const statuses[] = {"active", "suspended", "offboarded", NULL};
    static const char *const outcomes[] = {"won", "lost", NULL};
    switch (field) {
    case ACR_F_KIND: return kinds;
    case ACR_F_SOURCE: return sources;
    case ACR_F_STATUS: return statuses;
    case ACR_F_OUTCOME: return outcomes;
    default: return NULL;
    }
}

bool acr__enum_valid(int field, const char *s, size_t len)
{
    const char *const *v = enum_list(field);
    for (; v != NULL && *v != NULL; v++)
        if (strlen(*v) == len && memcmp(*v, s, len) == 0)
            return true;
    return false;
}

const char *acr__enum_values(int field)
{
    switch (field) {
    case ACR_F_KIND: return "reseller|distributor|broker|referral";
    case ACR_F_SOURCE: return "referral|inbound|outbound|event";
    case ACR_F_STATUS: return "active|suspended|offboarded";
    case ACR_F_OUTCOME: return "won|lost";
    default: return "";
    }
}

bool acr__id_valid(const char *s, size_t len)
{
    if (len < 1 || len > ACR_ID_LEN_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == ':' || c == '-';
        if (!ok)
            return false;
    }
    return true;
}

/* Skips a JSON string starting at its opening quote; returns the index after
 * the closing quote, or len when unterminated. */
static size_t skip_json_string(const char *s, size_t i, size_t len)
{
    for (i++; i < len; i++) {
        if (s[i] == '\\')
            i++;
        else if (s[i] == '"')
            return i + 1;
    }
    return len;
}

bool acr__plan_id_of(const char *json, size_t len, acr_str_t *out)
{
    return acr__json_top_id(json, len, "\"plan_id\":\"", out);
}

bool acr__json_top_id(const char *json, size_t len, const char *key, acr_str_t *out)
{
    const size_t klen = strlen(key);
    int depth = 0;
    for (size_t i = 0; i < len;) {
        char c = json[i];
        if (c == '"') {
            if (depth == 1 && len - i > klen && memcmp(json + i, key, klen) == 0) {
                size_t start = i + klen, end = start;
                while (end < len && json[end] != '"' && json[end] != '\\')
                    end++;
                if (end >= len || json[end] != '"')
                    return false; /* ids never need escapes */
                out->ptr = json + start;
                out->len = (uint32_t)(end - start);
                return true;
            }
            i = skip_json_string(json, i, len);
            continue;
        }
        if (c == '{' || c == '[')
            depth++;
        else if (c == '}' || c == ']')
            depth--;
        i++;
    }
    return false;
}

/* Writes "prefix:value" (or just prefix when value is NULL) into out. */
static size_t stream_name(char *out, size_t cap, const char *prefix, const acr_str_t *value)
{
    if (cap == 0)
        return 0;
    int n = value ? snprintf(out, cap, "%s:%.*s", prefix, (int)value->len, value->ptr)
                  : snprintf(out, cap, "%s", prefix);
    if (n < 0) {
        out[0] = '\0';
        return 0;
    }
    return (size_t)n < cap ? (size_t)n : cap - 1;
}

size_t acr_event_stream(const acr_event_t *ev, char *out, size_t cap)
{
    acr_str_t plan_id = {"", 0};
    switch (ev->type) {
    case ACR_EV_PARTNER_REGISTERED:
    case ACR_EV_PARTNER_UPDATED:
    case ACR_EV_PARTNER_STATUS_CHANGED:
    case ACR_EV_REP_ADDED:
    case ACR_EV_TRAINING_COMPLETED:
    case ACR_EV_ADJUSTMENT_RECORDED:
        return stream_name(out, cap, "partner", &ev->str[ACR_F_PARTNER_ID]);
    case ACR_EV_DEAL_REGISTERED:
    case ACR_EV_DEAL_STAGE_CHANGED:
    case ACR_EV_DEAL_CLOSED:
        return stream_name(out, cap, "deal", &ev->str[ACR_F_DEAL_ID]);
    case ACR_EV_SALE_RECORDED:
    case ACR_EV_SALE_REFUNDED:
        return stream_name(out, cap, "sale", &ev->str[ACR_F_SALE_ID]);
    case ACR_EV_PLAN_PUBLISHED:
        (void)acr__plan_id_of(ev->str[ACR_F_PLAN].ptr, ev->str[ACR_F_PLAN].len, &plan_id);
        return stream_name(out, cap, "plan", &plan_id);
    case ACR_EV_PIPELINE_DEFINED:
        return stream_name(out, cap, "pipeline", NULL);
    case ACR_EV_PERIOD_CLOSED:
        return stream_name(out, cap, "period", &ev->str[ACR_F_PERIOD]);
    case ACR_EV_ONBOARDING_DEFINED:
        return stream_name(out, cap, "onboarding", NULL);
    case ACR_EV_PROMOTION_PUBLISHED:
        (void)acr__json_top_id(ev->str[ACR_F_PROMOTION].ptr, ev->str[ACR_F_PROMOTION].len,
                               "\"promo_id\":\"", &plan_id);
        return stream_name(out, cap, "promotion", &plan_id);
    case ACR_EV_PROMOTION_ENDED:
        return stream_name(out, cap, "promotion", &ev->str[ACR_F_PROMO_ID]);
    case ACR_EV_ANNOUNCEMENT_PUBLISHED:
    case ACR_EV_ANNOUNCEMENT_ACKNOWLEDGED:
        return stream_name(out, cap, "announcement", &ev->str[ACR_F_ANNOUNCEMENT_ID]);
    default:
        return stream_name(out, cap, "unknown", NULL);
    }
}
