/* limits.h - every bound of accrue, with its reason (SQLite's sqliteLimit.h).
 *
 * A limit is a bound someone could run into: an input refused, a run that cannot go on,
 * a threshold that changes an answer. Tuning constants (batch sizes, buffer and chunk
 * sizes, ring slots) change speed only and stay beside the code they tune. The HTTP
 * server's own limits (connections, request sizes, time-outs) are in its module's header
 * under tools/. */
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
/* Counts within one plan version. The contract bounds only the document's size (64 KiB); no
 * document within it holds more than these (a bracket takes at least 28 bytes of JSON), so
 * they are a guard against arithmetic on counts, never a rule a valid plan meets. */
#define ACR_PLAN_RULES_MAX (ACR_PLAN_JSON_MAX / 16)
#define ACR_PLAN_BRACKETS_MAX (ACR_PLAN_JSON_MAX / 16)
#define ACR_PLAN_TARGETS_MAX (ACR_PLAN_JSON_MAX / 16)
#define ACR_MAP_SIZE_DEFAULT (1ULL << 30)  /* initial LMDB map: 1 GiB, grown on demand */
#define ACR_MAP_SIZE_MIN (1ULL << 20)      /* below 1 MiB LMDB has no room for its meta pages */
#define ACR_CURRENCY_LEN 3                 /* ISO 4217 alphabetic code */
#define ACR_PERIOD_ID_MAX 8                /* "2026-07" or "2026-Q3" plus NUL */
#define ACR_SCRATCH_MARGIN_BYTES (16u << 20) /* verify/rebuild scratch: room beyond the derived
                                               tables (LMDB meta, free pages, growth) */
#define ACR_ERRLIST_MAX 100                /* events.md: a rejected batch reports <= 100 errors */
#define ACR_TOKEN_NAME_MAX 64              /* token names follow the id pattern of events.md */
#define ACR_IDEM_TTL_MS (24LL * 3600 * 1000) /* http.md: an Idempotency-Key is kept 24 h */
#define ACR_IDEM_ANSWER_MAX (64 * 1024)    /* a larger answer is not kept (its key neither) */

/* Dates and times (events.md: local dates 1970-01-01 .. 9999-12-31). */
#define ACR_DAY_MIN 0                      /* 1970-01-01, day 0 of the day numbers */
#define ACR_DAY_MAX 2932896                /* 9999-12-31: four-digit years only */
#define ACR_UTC_OFFSET_MIN_MAX (23 * 60 + 59) /* +-23:59, the widest offset RFC 3339 writes */

/* Input decoding. */
#define ACR_MSGPACK_DEPTH_MAX 64           /* nesting of a msgpack value: bounds the decoder's
                                              recursion, far beyond any valid plan document */

/* Storage. */
#define ACR_DISK_FULL_BYTES (1u << 20)     /* below 1 MiB free, a failed commit is ledger_full,
                                              not store_error: the disk, not the ledger */
#define ACR_ROW_KEY_MAX 256                /* a table key: three ids, a month id and separators
                                              (partner \0 month \0 rep) fit */
#define ACR_ROW_CACHE_MAX (1u << 20)       /* rows a write transaction keeps in memory; beyond,
                                              flushed at the next event boundary (bounds RAM) */

/* The commission processor (one run). */
#define ACR_RUN_ATTRS_MAX ((1u << 22) - 1) /* distinct attribute strings (tiers, kinds, regions,
                                              plan ids, products): a sale packs its product's
                                              index in 22 bits; beyond, out_of_memory */

/* Long loops (error.h, acr_cancel_watch). */
#define ACR_CANCEL_EVERY 65536u            /* events between looks at the cancel flag: a
                                              fraction of a second of any loop, one relaxed
                                              load per 64 Ki events */

_Static_assert(ACR_ID_LEN_MAX < ACR_STRING_LEN_MAX, "ids are strings");
_Static_assert((ACR_CANCEL_EVERY & (ACR_CANCEL_EVERY - 1)) == 0, "a mask of seqs: a power of two");
_Static_assert(ACR_PLAN_JSON_MAX <= ACR_EVENT_JSON_MAX, "a plan lives inside one event");
_Static_assert(3 * ACR_ID_LEN_MAX + 3 + 7 <= ACR_ROW_KEY_MAX, "partner, month, rep keys fit");
_Static_assert(2 * ACR_ID_LEN_MAX + ACR_STAGE_NAME_MAX + 2 <= ACR_ROW_KEY_MAX, "deal keys fit");

#endif
