/* schema.h - the event vocabulary engine and processors share (engine/base): event
 * types, data fields and their value kinds, the decoded event, and the currencies money
 * is counted in. Types only, plus the ISO 4217 table (engine/base/currency.c); the stored
 * record and the codecs are in event.h (engine/event). */
#ifndef ACCRUE_SCHEMA_H
#define ACCRUE_SCHEMA_H

#include <stddef.h>
#include <stdint.h>

/* XX(NAME, "wire.name") - numbering is part of the stored format: append only. */
#define ACR_EVENT_TYPE_MAP(XX)                                                                     \
    XX(PARTNER_REGISTERED, "partner.registered")                                                   \
    XX(PARTNER_UPDATED, "partner.updated")                                                         \
    XX(PARTNER_STATUS_CHANGED, "partner.status_changed")                                           \
    XX(REP_ADDED, "rep.added")                                                                     \
    XX(TRAINING_COMPLETED, "training.completed")                                                   \
    XX(PIPELINE_DEFINED, "pipeline.defined")                                                       \
    XX(DEAL_REGISTERED, "deal.registered")                                                         \
    XX(DEAL_STAGE_CHANGED, "deal.stage_changed")                                                   \
    XX(DEAL_CLOSED, "deal.closed")                                                                 \
    XX(SALE_RECORDED, "sale.recorded")                                                             \
    XX(SALE_REFUNDED, "sale.refunded")                                                             \
    XX(PLAN_PUBLISHED, "plan.published")                                                           \
    XX(ADJUSTMENT_RECORDED, "adjustment.recorded")                                                 \
    XX(PERIOD_CLOSED, "period.closed")                                                             \
    XX(ONBOARDING_DEFINED, "onboarding.defined")                                                   \
    XX(PROMOTION_PUBLISHED, "promotion.published")                                                 \
    XX(PROMOTION_ENDED, "promotion.ended")                                                         \
    XX(ANNOUNCEMENT_PUBLISHED, "announcement.published")                                           \
    XX(ANNOUNCEMENT_ACKNOWLEDGED, "announcement.acknowledged")

typedef enum {
    ACR_EV_NONE = 0,
#define XX(name, wire) ACR_EV_##name,
    ACR_EVENT_TYPE_MAP(XX)
#undef XX
    ACR_EV__COUNT
} acr_event_type_t;

/* Value kinds of data fields. */
typedef enum {
    ACR_FK_STR = 0,  /* free text, 0..ACR_STRING_LEN_MAX bytes, valid UTF-8 */
    ACR_FK_ID,       /* id pattern [A-Za-z0-9._:-]{1,64} (invalid_id) */
    ACR_FK_ENUM,     /* one of a fixed set of strings (invalid_value) */
    ACR_FK_CURRENCY, /* ISO 4217 code the engine knows (invalid_currency) */
    ACR_FK_DATE,     /* YYYY-MM-DD; num[] holds the day number */
    ACR_FK_AMOUNT,   /* integer, |v| <= 10^15 (invalid_value); type rules add > 0 / != 0 */
    ACR_FK_UINT,     /* integer >= 0 */
    ACR_FK_JSON,     /* a JSON document stored as compact sorted JSON text */
    ACR_FK_HEX128,   /* 32 lowercase hex digits */
    ACR_FK_BOOL,     /* true | false; stored as msgpack bool, num[] holds 0 / 1 */
} acr_field_kind_t;

/* XX(NAME, "json_name", kind) - numbering is not stored (schemas are positional). */
#define ACR_FIELD_MAP(XX)                                                                          \
    XX(PARTNER_ID, "partner_id", ACR_FK_ID)                                                        \
    XX(NAME, "name", ACR_FK_STR)                                                                   \
    XX(KIND, "kind", ACR_FK_ENUM)                                                                  \
    XX(TIER, "tier", ACR_FK_STR)                                                                   \
    XX(PLAN_ID, "plan_id", ACR_FK_ID)                                                              \
    XX(CURRENCY, "currency", ACR_FK_CURRENCY)                                                      \
    XX(REGION, "region", ACR_FK_STR)                                                               \
    XX(SOURCE, "source", ACR_FK_ENUM)                                                              \
    XX(STATUS, "status", ACR_FK_ENUM)                                                              \
    XX(REASON, "reason", ACR_FK_STR)                                                               \
    XX(REP_ID, "rep_id", ACR_FK_ID)                                                                \
    XX(MODULE, "module", ACR_FK_STR)                                                               \
    XX(STAGES, "stages", ACR_FK_JSON)                                                              \
    XX(DEAL_ID, "deal_id", ACR_FK_ID)                                                              \
    XX(CUSTOMER_ID, "customer_id", ACR_FK_ID)                                                      \
    XX(AMOUNT_MINOR, "amount_minor", ACR_FK_AMOUNT)                                                \
    XX(EXPECTED_CLOSE, "expected_close", ACR_FK_DATE)                                              \
    XX(STAGE, "stage", ACR_FK_STR)                                                                 \
    XX(OUTCOME, "outcome", ACR_FK_ENUM)                                                            \
    XX(SALE_ID, "sale_id", ACR_FK_ID)                                                              \
    XX(PRODUCT, "product", ACR_FK_STR)                                                             \
    XX(PLAN, "plan", ACR_FK_JSON)                                                                  \
    XX(PERIOD, "period", ACR_FK_STR)                                                               \
    XX(THROUGH_SEQ, "through_seq", ACR_FK_UINT)                                                    \
    XX(FINGERPRINT, "fingerprint", ACR_FK_HEX128)                                                  \
    XX(LINES, "lines", ACR_FK_UINT)                                                                \
    XX(TOTALS, "totals", ACR_FK_JSON)                                                              \
    XX(MODULES, "modules", ACR_FK_JSON)                                                            \
    XX(PROMOTION, "promotion", ACR_FK_JSON)                                                        \
    XX(PROMO_ID, "promo_id", ACR_FK_ID)                                                            \
    XX(ENDS_ON, "ends_on", ACR_FK_DATE)                                                            \
    XX(ANNOUNCEMENT_ID, "announcement_id", ACR_FK_ID)                                              \
    XX(TITLE, "title", ACR_FK_STR)                                                                 \
    XX(BODY, "body", ACR_FK_STR)                                                                   \
    XX(AUDIENCE, "audience", ACR_FK_JSON)                                                          \
    XX(REQUIRES_ACK, "requires_ack", ACR_FK_BOOL)                                                  \
    XX(DUE, "due", ACR_FK_DATE)

typedef enum {
#define XX(name, json, kind) ACR_F_##name,
    ACR_FIELD_MAP(XX)
#undef XX
    ACR_F__COUNT
} acr_field_t;

_Static_assert(ACR_F__COUNT <= 64, "presence is a uint64_t bitmask");

/* A byte slice. Not NUL-terminated unless stated. */
typedef struct acr_str {
    const char *ptr;
    uint32_t len;
} acr_str_t;

/* A decoded event. String slices point into the bytes it was decoded from
 * (an LMDB page: valid until that transaction ends; or a caller's buffer). */
typedef struct acr_event {
    uint64_t seq;            /* 0 until committed */
    int64_t recorded_at_ms;  /* commit wall-clock time, informational */
    uint64_t version;        /* 1-based version within the stream */
    int64_t at_ms;           /* business time, UTC ms */
    uint8_t type;            /* acr_event_type_t */
    acr_str_t id;            /* client id, the idempotency key */
    uint64_t present;        /* bit (1ull << ACR_F_x) set when field x is present */
    acr_str_t actor;         /* who appended it (events.md); len 0 when the record has none */
    acr_str_t str[ACR_F__COUNT]; /* string-like fields (all kinds but AMOUNT/UINT) */
    int64_t num[ACR_F__COUNT];   /* AMOUNT and UINT values; DATE day numbers; BOOL 0 / 1 */
} acr_event_t;

#define ACR_HAS(ev, f) ((unsigned)(((ev)->present >> (f)) & 1u))

/* ISO 4217: minor-unit digits of a known currency code, or -1. */
int acr_currency_decimals(const char *code, size_t len);

#endif
