/* error.h - error codes, their wire names and the error record.
 *
 * One X-macro table gives the C constant, the machine-readable code of
 * events.md (the "wire name") and the exit code of cli.md, so the three can
 * never drift apart (libuv's UV_ERRNO_MAP). Fallible functions return int:
 * 0 on success, a negative ACR_E* on failure.
 */
#ifndef ACCRUE_ERROR_H
#define ACCRUE_ERROR_H

#include <stddef.h>
#include <stdint.h>

/* XX(NAME, wire name, exit code) */
#define ACR_ERRNO_MAP(XX)                                                                          \
    XX(MALFORMED_JSON, "malformed_json", 3)                                                        \
    XX(MALFORMED_MSGPACK, "malformed_msgpack", 3)                                                  \
    XX(MISSING_FIELD, "missing_field", 3)                                                          \
    XX(UNKNOWN_FIELD, "unknown_field", 3)                                                          \
    XX(WRONG_TYPE, "wrong_type", 3)                                                                \
    XX(INVALID_VALUE, "invalid_value", 3)                                                          \
    XX(INVALID_ID, "invalid_id", 3)                                                                \
    XX(INVALID_TIMESTAMP, "invalid_timestamp", 3)                                                  \
    XX(INVALID_CURRENCY, "invalid_currency", 3)                                                    \
    XX(UNKNOWN_TYPE, "unknown_type", 3)                                                            \
    XX(FORBIDDEN_TYPE, "forbidden_type", 3)                                                        \
    XX(DUPLICATE, "duplicate", 3)                                                                  \
    XX(UNKNOWN_PARTNER, "unknown_partner", 3)                                                      \
    XX(UNKNOWN_REP, "unknown_rep", 3)                                                              \
    XX(UNKNOWN_DEAL, "unknown_deal", 3)                                                            \
    XX(UNKNOWN_SALE, "unknown_sale", 3)                                                            \
    XX(UNKNOWN_STAGE, "unknown_stage", 3)                                                          \
    XX(PARTNER_INACTIVE, "partner_inactive", 3)                                                    \
    XX(CHANNEL_CONFLICT, "channel_conflict", 3)                                                    \
    XX(DEAL_CLOSED, "deal_closed", 3)                                                              \
    XX(EXIT_CRITERIA_UNMET, "exit_criteria_unmet", 3)                                              \
    XX(INVALID_TRANSITION, "invalid_transition", 3)                                                \
    XX(CURRENCY_MISMATCH, "currency_mismatch", 3)                                                  \
    XX(OVER_REFUND, "over_refund", 3)                                                              \
    XX(INVALID_PLAN, "invalid_plan", 3)                                                            \
    XX(STALE_VERSION, "stale_version", 3)                                                          \
    XX(ABOVE_CEILING, "above_ceiling", 3)                                                          \
    XX(REFUND_BEFORE_SALE, "refund_before_sale", 3)                                                \
    XX(ID_CONFLICT, "id_conflict", 4)                                                              \
    XX(VERSION_CONFLICT, "version_conflict", 4)                                                    \
    XX(TOO_LARGE, "too_large", 3)                                                                  \
    XX(LEDGER_FULL, "ledger_full", 1)                                                              \
    XX(PERIOD_CLOSED, "period_closed", 4)                                                          \
    XX(PERIOD_ORDER, "period_order", 4)                                                            \
    XX(UNPLANNED_SALES, "unplanned_sales", 4)                                                      \
    XX(PERIOD_OPEN, "period_open", 4)     /* closing a period that has not ended yet */           \
    XX(OVERFLOW, "overflow", 1)                                                                    \
    XX(CHAIN_BROKEN, "chain_broken", 5)                                                            \
    XX(UNAUTHORIZED, "unauthorized", 1)                                                            \
    XX(FORBIDDEN, "forbidden", 1)                                                                  \
    XX(NOT_FOUND, "not_found", 3)                                                                  \
    XX(METHOD_NOT_ALLOWED, "method_not_allowed", 1)                                                \
    XX(BAD_REQUEST, "bad_request", 1)                                                              \
    XX(TIMEOUT, "timeout", 1)                                                                      \
    XX(HEADERS_TOO_LARGE, "headers_too_large", 1)                                                  \
    XX(MISMATCH, "mismatch", 5)           /* verify/audit: a projection or statement differs */   \
    XX(USAGE, "usage", 2)                 /* bad command-line usage */                            \
    XX(IO, "io_error", 1)                 /* file or LMDB I/O failure */                          \
    XX(NOMEM, "out_of_memory", 1)                                                                  \
    XX(STORE, "store_error", 1)           /* unexpected LMDB error, wrapped */                    \
    XX(CORRUPT, "corrupt", 5)             /* a stored record that does not decode */              \
    XX(EXISTS, "exists", 1)               /* init over an existing ledger */                      \
    XX(NO_LEDGER, "no_ledger", 1)         /* no ledger at the given path */

typedef enum {
    ACR_OK = 0,
#define XX(name, wire, exit_code) ACR_E##name,
    ACR_E__FIRST_MINUS_ONE = -1000,
    ACR_ERRNO_MAP(XX)
#undef XX
    ACR_E__END
} acr_errno_t;

/* Codes are negative and contiguous: ACR_E__FIRST_MINUS_ONE+1 .. ACR_E__END-1. */

/* The wire name of events.md ("over_refund"), or "unknown_error". */
const char *acr_err_name(int code);
/* The process exit code of cli.md for an error (0 for ACR_OK). */
int acr_err_exit_code(int code);
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

/* All errors of a rejected batch (events.md: report every invalid event, up to 100). */
#define ACR_ERRLIST_MAX 100
typedef struct acr_errlist {
    acr_err_t items[ACR_ERRLIST_MAX]; /* the first ACR_ERRLIST_MAX errors */
    size_t count;                     /* items used */
    size_t total;                     /* errors seen, may exceed count */
} acr_errlist_t;

void acr_errlist_clear(acr_errlist_t *list);
/* Appends a copy of err (dropped, but counted, past the cap). */
void acr_errlist_add(acr_errlist_t *list, const acr_err_t *err);
/* The exit code for a whole list: 4 when any conflict is present, else the first item's. */
int acr_errlist_exit_code(const acr_errlist_t *list);

#endif
