/* limits.h - every bound of accrue, with its reason (SQLite's sqliteLimit.h). */
#ifndef ACCRUE_LIMITS_H
#define ACCRUE_LIMITS_H

#define ACR_ID_LEN_MAX 64                  /* events.md: ids are [A-Za-z0-9._:-]{1,64} */
#define ACR_STRING_LEN_MAX 256             /* events.md: a string field <= 256 bytes */
#define ACR_EVENT_JSON_MAX (64 * 1024)     /* events.md: an event's JSON <= 64 KiB */
#define ACR_PLAN_JSON_MAX (64 * 1024)      /* events.md: a plan document <= 64 KiB */
#define ACR_BATCH_EVENTS_MAX 1000000       /* events.md: a batch <= 1,000,000 events */
#define ACR_AMOUNT_ABS_MAX 1000000000000000LL /* events.md: |amount| <= 10^15 */
#define ACR_BP_MAX 10000                   /* 100 % in basis points */
#define ACR_STAGES_MAX 32                  /* pipeline stages; a pipeline is a short list */
#define ACR_STAGE_NAME_MAX 64              /* a stage name is an id-like string */
#define ACR_PLAN_RULES_MAX 256             /* rules of one plan version */
#define ACR_PLAN_BRACKETS_MAX 64           /* brackets of one rule */
#define ACR_PLAN_TARGETS_MAX 64            /* targets of one plan version */
#define ACR_MAP_SIZE_DEFAULT (1ULL << 30)  /* initial LMDB map: 1 GiB, grown on demand */
#define ACR_MAP_SIZE_MIN (1ULL << 20)      /* below 1 MiB LMDB has no room for its meta pages */
#define ACR_CURRENCY_LEN 3                 /* ISO 4217 alphabetic code */
#define ACR_PERIOD_ID_MAX 8                /* "2026-07" or "2026-Q3" plus NUL */
#define ACR_SCRATCH_MARGIN_BYTES (16u << 20) /* verify/rebuild scratch: room beyond the derived tables (LMDB meta, free pages, growth) */

_Static_assert(ACR_ID_LEN_MAX < ACR_STRING_LEN_MAX, "ids are strings");
_Static_assert(ACR_PLAN_JSON_MAX <= ACR_EVENT_JSON_MAX, "a plan lives inside one event");

#endif
