/* error.h - error codes, their wire names, classes and the error record.
 *
 * One X-macro table gives each code its C constant, the machine-readable code of
 * events.md / http.md (the "wire name") and its class; the class gives the exit code
 * of cli.md and the HTTP status of http.md. Nothing else maps codes to exit codes or
 * statuses, so the four can never drift apart (libuv's UV_ERRNO_MAP). Fallible
 * functions return int: 0 on success, a negative ACR_E* on failure.
 */
#ifndef ACCRUE_ERROR_H
#define ACCRUE_ERROR_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "accrue/limits.h"

/* XX(CLASS, exit code, HTTP status, rejects input) - a class per kind of failure. "Rejects
 * input" marks the refusals of a batch (a rule, a format, a conflict): the ledger is fine
 * and nothing was written; the other classes abort what was under way. */
#define ACR_ERROR_CLASS_MAP(XX)                                                                    \
    XX(INPUT, 3, 422, true)        /* invalid input: a format or rule of events.md */              \
    XX(INPUT_SIZE, 3, 413, true)   /* input over a size limit */                                   \
    XX(CONFLICT, 4, 409, true)     /* valid, but conflicts with the ledger's state */              \
    XX(INTEGRITY, 5, 500, false)   /* the chain or a stored record does not verify */              \
    XX(USAGE, 2, 400, false)       /* bad command-line usage or request parameters */              \
    XX(BAD_REQUEST, 1, 400, false) /* a malformed HTTP request */                                  \
    XX(AUTH, 1, 401, false)        /* no or unknown token */                                       \
    XX(DENIED, 1, 403, false)      /* the token's role lacks the right */                          \
    XX(NOT_FOUND, 3, 404, false)   /* no such record (or not the caller's); events.md: exit 3 */   \
    XX(METHOD, 1, 405, false)      /* the route has no such method */                              \
    XX(TIMEOUT, 1, 408, false)     /* the client was too slow */                                   \
    XX(HEADERS, 1, 431, false)     /* request headers over their limit */                          \
    XX(FULL, 1, 507, false)        /* the disk or the map cannot take the write */                 \
    XX(UNAVAILABLE, 1, 503, false) /* the service cannot answer now */                             \
    XX(REPLICA, 4, 403, false)     /* a write on a read replica: refused, nothing written */      \
    XX(FAILURE, 1, 500, false)     /* anything else: I/O, memory, store, overflow */

typedef enum {
#define XX(name, exit_code, http_status, rejects) ACR_CLASS_##name,
    ACR_ERROR_CLASS_MAP(XX)
#undef XX
    ACR_CLASS__COUNT
} acr_err_class_t;

/* XX(NAME, wire name, class) - append only: the numbering is the C constants'. */
#define ACR_ERRNO_MAP(XX)                                                                          \
    XX(MALFORMED_JSON, "malformed_json", INPUT)                                                    \
    XX(MALFORMED_MSGPACK, "malformed_msgpack", INPUT)                                              \
    XX(MISSING_FIELD, "missing_field", INPUT)                                                      \
    XX(UNKNOWN_FIELD, "unknown_field", INPUT)                                                      \
    XX(WRONG_TYPE, "wrong_type", INPUT)                                                            \
    XX(INVALID_VALUE, "invalid_value", INPUT)                                                      \
    XX(INVALID_ID, "invalid_id", INPUT)                                                            \
    XX(INVALID_TIMESTAMP, "invalid_timestamp", INPUT)                                              \
    XX(INVALID_CURRENCY, "invalid_currency", INPUT)                                                \
    XX(UNKNOWN_TYPE, "unknown_type", INPUT)                                                        \
    XX(FORBIDDEN_TYPE, "forbidden_type", INPUT)                                                    \
    XX(DUPLICATE, "duplicate", INPUT)                                                              \
    XX(UNKNOWN_PARTNER, "unknown_partner", INPUT)                                                  \
    XX(UNKNOWN_REP, "unknown_rep", INPUT)                                                          \
    XX(UNKNOWN_DEAL, "unknown_deal", INPUT)                                                        \
    XX(UNKNOWN_SALE, "unknown_sale", INPUT)                                                        \
    XX(UNKNOWN_STAGE, "unknown_stage", INPUT)                                                      \
    XX(PARTNER_INACTIVE, "partner_inactive", INPUT)                                                \
    XX(CHANNEL_CONFLICT, "channel_conflict", INPUT)                                                \
    XX(DEAL_CLOSED, "deal_closed", INPUT)                                                          \
    XX(EXIT_CRITERIA_UNMET, "exit_criteria_unmet", INPUT)                                          \
    XX(INVALID_TRANSITION, "invalid_transition", INPUT)                                            \
    XX(CURRENCY_MISMATCH, "currency_mismatch", INPUT)                                              \
    XX(OVER_REFUND, "over_refund", INPUT)                                                          \
    XX(INVALID_PLAN, "invalid_plan", INPUT)                                                        \
    XX(STALE_VERSION, "stale_version", INPUT)                                                      \
    XX(ABOVE_CEILING, "above_ceiling", INPUT)                                                      \
    XX(REFUND_BEFORE_SALE, "refund_before_sale", INPUT)                                            \
    XX(UNKNOWN_PLAN, "unknown_plan", INPUT)                                                        \
    XX(UNKNOWN_PROMOTION, "unknown_promotion", INPUT)                                              \
    XX(UNKNOWN_ANNOUNCEMENT, "unknown_announcement", INPUT)                                        \
    XX(NOT_IN_AUDIENCE, "not_in_audience", INPUT)                                                  \
    XX(ID_CONFLICT, "id_conflict", CONFLICT)                                                       \
    XX(VERSION_CONFLICT, "version_conflict", CONFLICT)                                             \
    XX(TOO_LARGE, "too_large", INPUT_SIZE)                                                         \
    XX(LEDGER_FULL, "ledger_full", FULL)                                                           \
    XX(PERIOD_CLOSED, "period_closed", CONFLICT)                                                   \
    XX(PERIOD_ORDER, "period_order", CONFLICT)                                                     \
    XX(UNPLANNED_SALES, "unplanned_sales", CONFLICT)                                               \
    XX(OVERFLOW, "overflow", FAILURE)                                                              \
    XX(CHAIN_BROKEN, "chain_broken", INTEGRITY)                                                    \
    XX(UNAUTHORIZED, "unauthorized", AUTH)                                                         \
    XX(FORBIDDEN, "forbidden", DENIED)                                                             \
    XX(NOT_FOUND, "not_found", NOT_FOUND)                                                          \
    XX(METHOD_NOT_ALLOWED, "method_not_allowed", METHOD)                                           \
    XX(BAD_REQUEST, "bad_request", BAD_REQUEST)                                                    \
    XX(TIMEOUT, "timeout", TIMEOUT)                                                                \
    XX(HEADERS_TOO_LARGE, "headers_too_large", HEADERS)                                            \
    XX(MISMATCH, "mismatch", INTEGRITY)            /* verify/audit: a table or statement differs */\
    XX(USAGE, "usage", USAGE)                      /* bad command-line usage */                    \
    XX(IO, "io_error", FAILURE)                    /* file or LMDB I/O failure */                  \
    XX(NOMEM, "out_of_memory", FAILURE)                                                            \
    XX(STORE, "store_error", FAILURE)              /* unexpected LMDB error, wrapped */            \
    XX(CORRUPT, "corrupt", INTEGRITY)              /* a stored record that does not decode */      \
    XX(EXISTS, "exists", FAILURE)                  /* init over an existing ledger */              \
    XX(NO_LEDGER, "no_ledger", FAILURE)            /* no ledger at the given path */               \
    XX(UNAVAILABLE, "unavailable", UNAVAILABLE)    /* the server is shutting down or overloaded */ \
    XX(INTERNAL, "internal", FAILURE)              /* a response the server failed to produce */ \
    XX(PERIOD_OPEN, "period_open", CONFLICT)       /* closing a period that has not ended */     \
    XX(READ_ONLY, "read_only", REPLICA)            /* a write on a read replica (reporting.md) */

typedef enum {
    ACR_OK = 0,
#define XX(name, wire, class) ACR_E##name,
    ACR_E__FIRST_MINUS_ONE = -1000,
    ACR_ERRNO_MAP(XX)
#undef XX
    ACR_E__END
} acr_errno_t;

/* Codes are negative and contiguous: ACR_E__FIRST_MINUS_ONE+1 .. ACR_E__END-1. */

/* The sentence of every write refused ACR_EREAD_ONLY: the engine's, and the CLI's and the
 * server's, which refuse before they read the write's input. */
#define ACR_READ_ONLY_MSG "this ledger is a read replica: writes go to its primary"

/* The wire name of events.md ("over_refund"), or "unknown_error". */
const char *acr_err_name(int code);
/* The class of a code (ACR_CLASS_FAILURE for an unknown one). */
acr_err_class_t acr_err_class(int code);
/* The process exit code of cli.md for an error (0 for ACR_OK), from its class. */
int acr_err_exit_code(int code);
/* The HTTP status of http.md for an error (200 for ACR_OK), from its class. */
int acr_err_http_status(int code);
/* true when the code refuses input (a rule, a format, a conflict): nothing is wrong with
 * the ledger; false for a failure that aborts the operation under way. */
bool acr_err_rejects_input(int code);
/* The code whose wire name is `name`, or 0 when none. */
int acr_err_from_name(const char *name);

/* One diagnostic: code plus the context a human needs. */
typedef struct acr_err {
    int code;        /* ACR_E*, 0 when no error */
    uint64_t line;   /* 1-based line / 0-based index+1 of the event in its batch; 0 = n/a */
    char id[72];     /* the event id when readable, else "" */
    char field[64];  /* field path, e.g. "data.amount_minor", else "" */
    char msg[256];   /* human sentence */
} acr_err_t;

/* Sets err (if not NULL) and returns code. printf-style message. */
int acr_err_set(acr_err_t *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void acr_err_clear(acr_err_t *err);

/* All errors of a rejected batch (events.md: report every invalid event, up to
 * ACR_ERRLIST_MAX). */
typedef struct acr_errlist {
    acr_err_t items[ACR_ERRLIST_MAX]; /* the first ACR_ERRLIST_MAX errors */
    size_t count;                     /* items used */
    size_t total;                     /* errors seen, may exceed count */
} acr_errlist_t;

void acr_errlist_clear(acr_errlist_t *list);
/* Appends a copy of err (dropped, but counted, past the cap). */
void acr_errlist_add(acr_errlist_t *list, const acr_err_t *err);
/* The code that stands for a whole list: its first conflict's when it holds one (a batch
 * refused for a conflict is 409 / exit 4), else its first item's; 0 for an empty list. */
int acr_errlist_code(const acr_errlist_t *list);
/* The exit code for a whole list: acr_errlist_code's. */
int acr_errlist_exit_code(const acr_errlist_t *list);

/* Long work whose requester is gone stops (http.md: a client that hangs up). A thread that
 * runs long engine work on someone's behalf (the server's pool) names a flag here; the long
 * loops (the payout driver's feed, which KPIs and audits use too, and verify's and rebuild's
 * scans of the log) look at it every ACR_CANCEL_EVERY events and stop with ACR_EUNAVAILABLE
 * ("cancelled") once it is set, writing nothing. Per thread; NULL, the default, watches
 * nothing, so the command line is never cancelled. */
void acr_cancel_watch(const atomic_bool *flag);
/* true when the calling thread's flag is set. */
bool acr_cancel_requested(void);
/* The error a cancelled loop returns (ACR_EUNAVAILABLE, "cancelled: ..."). */
int acr_cancel_error(acr_err_t *err);

#endif
