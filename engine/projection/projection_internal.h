/* projection_internal.h - what engine/projection offers the parts above it: applying an
 * event to the read-model tables (engine/state calls it after validation) and the row
 * layouts of those tables, which engine/query reads. Nothing outside engine/ includes it.
 *
 * Rows use the kv encoding of store.c (u16-length strings, little-endian
 * int64s) in the order of the struct fields below. An empty id string means
 * "none" (ids have at least one character); free-text fields that may be
 * empty carry a presence bit in `flags`. Month keys are period ids
 * ("2026-07", 7 bytes) so keys sort chronologically and print readably.
 */
#ifndef ACCRUE_ENGINE_PROJECTION_INTERNAL_H
#define ACCRUE_ENGINE_PROJECTION_INTERNAL_H

#include <string.h>

#include "accrue/money.h"
#include "../store/store_internal.h"

/* Longest key: three ids, a month id and separators (partner \0 month \0 rep),
 * ACR_ROW_KEY_MAX of limits.h. */
#define ACR__MONTH_LEN 7 /* "YYYY-MM" */

_Static_assert(3 * ACR_ID_LEN_MAX + 3 + ACR__MONTH_LEN <= ACR_ROW_KEY_MAX, "keys fit");
_Static_assert(2 * ACR_ID_LEN_MAX + ACR_STAGE_NAME_MAX + 2 <= ACR_ROW_KEY_MAX, "keys fit");

/* A key built from parts; `bad` when a part would not fit (never for valid events). */
typedef struct acr__pkey {
    char b[ACR_ROW_KEY_MAX]; /* the key bytes */
    size_t len;              /* bytes used */
    bool bad;                /* a part did not fit */
} acr__pkey_t;

static inline void acr__pkey_add(acr__pkey_t *k, const void *p, size_t n)
{
    if (k->bad || n > sizeof k->b - k->len) {
        k->bad = true;
        return;
    }
    memcpy(k->b + k->len, p, n);
    k->len += n;
}

/* Appends a part followed by the \0 separator. */
static inline void acr__pkey_part(acr__pkey_t *k, acr_str_t s)
{
    acr__pkey_add(k, s.ptr, s.len);
    acr__pkey_add(k, "", 1);
}

static inline void acr__pkey_u32(acr__pkey_t *k, uint32_t v)
{
    uint8_t be[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
    acr__pkey_add(k, be, 4);
}

/* Presence bits of partner and deal rows. */
enum {
    ACR__HAS_REGION = 1,         /* partner: region given */
    ACR__HAS_NAME = 2,           /* deal: name given */
    ACR__HAS_AMOUNT = 4,         /* deal: amount_minor known */
    ACR__HAS_EXPECTED_CLOSE = 8, /* deal: expected_close known */
    ACR__HAS_REASON = 16,        /* deal: close reason given */
    /* partner: the value was set by a partner.updated dated exactly at the registration's
     * `at` (it ranks above the registration's own value, which every update overrides) */
    ACR__NAME_AT_REG = 32,
    ACR__TIER_AT_REG = 64,
    ACR__PLAN_AT_REG = 128,
    ACR__REGION_AT_REG = 256,
};

/* proj_partners row. Attributes follow business time (program.md: the registration with
 * every partner.updated applied in (at, seq) order, whatever its `at`): each value remembers
 * the `at` of the event that set it and a partner.updated overrides it when its `at` is >=
 * that (later seq wins ties), or when the value is still the registration's (an update dated
 * before the registration overrides it too). A value stamped with the registration's `at` is
 * the registration's unless its *_AT_REG bit says an update of that same `at` set it. Status
 * follows seq order, as validation. */
typedef struct acr__prow {
    acr_str_t name, kind, tier, plan_id, currency, region, source, status; /* source "" = none */
    int64_t name_at_ms, tier_at_ms, plan_at_ms, region_at_ms; /* `at` of each value's event */
    int64_t flags;          /* ACR__HAS_REGION */
    int64_t training_count; /* rows in proj_training for this partner */
} acr__prow_t;

/* proj_deals row. */
typedef struct acr__drow {
    acr_str_t partner_id, customer_id, currency, name, rep_id, stage, reason; /* rep "" = none */
    int64_t flags;             /* ACR__HAS_NAME | _AMOUNT | _EXPECTED_CLOSE | _REASON */
    int64_t amount_minor;      /* when ACR__HAS_AMOUNT */
    int64_t expected_close_day; /* when ACR__HAS_EXPECTED_CLOSE */
    int64_t outcome;           /* ACR__DEAL_* */
    int64_t registered_at_ms;  /* business time of deal.registered */
    int64_t entered_day;       /* local day the deal entered its current stage */
    int64_t closed_at_ms;      /* business time of deal.closed, when closed */
    int64_t moves;             /* rows in proj_deal_moves for this deal */
} acr__drow_t;

enum { ACR__DEAL_OPEN = 0, ACR__DEAL_WON = 1, ACR__DEAL_LOST = 2 };

/* proj_kpi counters (partner, month); net revenue is 128-bit (lo, hi) so
 * no valid history can make an append fail; queries check it fits int64. */
enum {
    ACR__KPI_REGISTERED,
    ACR__KPI_WON,
    ACR__KPI_LOST,
    ACR__KPI_NET_LO,
    ACR__KPI_NET_HI,
    ACR__KPI_NEW_CUSTOMERS,
    ACR__KPI_TRAINING,
    ACR__KPI__COUNT
};

/* proj_rep_kpi counters (partner, month, rep). `activity` counts the sales,
 * refunds of the rep's sales and deal events (registered, won, lost) that
 * make the row worth reporting. */
enum {
    ACR__REP_SALES,
    ACR__REP_NET_LO,
    ACR__REP_NET_HI,
    ACR__REP_NEW_CUSTOMERS,
    ACR__REP_REGISTERED,
    ACR__REP_WON,
    ACR__REP_ACTIVITY,
    ACR__REP__COUNT
};

#define ACR__COUNTERS_MAX 8
_Static_assert(ACR__KPI__COUNT <= ACR__COUNTERS_MAX && ACR__REP__COUNT <= ACR__COUNTERS_MAX,
               "counter rows fit the fixed buffers");

/* Applies ev to the projection tables, after the state, in the same transaction. */
int acr__proj_apply(acr__txn_t *tx, const acr_event_t *ev, acr_err_t *err);

/* Row decoders: 0, or ACR_ECORRUPT when the bytes do not match the layout.
 * Slices point into p (valid as long as p is). */
int acr__prow_decode(const void *p, size_t len, acr__prow_t *out);
int acr__drow_decode(const void *p, size_t len, acr__drow_t *out);
int acr__counters_decode(const void *p, size_t len, int64_t *out, int n);

/* The 128-bit value stored as (lo, hi) at c[lo_idx], c[lo_idx + 1]. */
acr_i128_t acr__counters_i128(const int64_t *c, int lo_idx);

/* "YYYY-MM" of the local date of at_ms under the ledger's offset (8 bytes with NUL). */
void acr__month_of(int64_t at_ms, int32_t utc_offset_min, char out[ACR_PERIOD_ID_MAX]);

#endif
