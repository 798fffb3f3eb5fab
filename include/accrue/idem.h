/* idem.h - idempotency keys of write requests (http.md: `Idempotency-Key`).
 *
 * A client that retries a write (a time-out, a dropped connection) sends the same key again
 * and gets the answer of the first attempt instead of a second effect. The ledger keeps one
 * record per (scope, key) in its own LMDB table `idem`: the XXH3-128 hash of the request
 * (method, target, body), when it was made and the answer given (status, content type, body
 * bytes). The table is primary data beside the log, like `tokens`: not derived from the log,
 * not hash-chained, ignored by verify and kept by rebuild and backup.
 *
 * A record is written in the same write transaction as the request's effect (the batch it
 * appended, the close it made), so a key that was answered survives a restart and never
 * exists without its effect. Records older than ACR_IDEM_TTL_MS count as absent and are
 * pruned a few at a time by later writes; an answer over ACR_IDEM_ANSWER_MAX bytes is not
 * kept (the key is not recorded: a retry runs again).
 *
 * The engine treats the answer as opaque bytes: the caller (the HTTP server) formats it
 * through a callback, inside the transaction, from the request's outcome.
 */
#ifndef ACCRUE_IDEM_H
#define ACCRUE_IDEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "accrue/buf.h"
#include "accrue/error.h"
#include "accrue/limits.h"
#include "accrue/log.h"

#define ACR_IDEM_HASH_LEN 16
/* scope + NUL + key. The server's scope is the token: its name (the "file:N" form
 * included), '#', and 16 hex digits of its hash. */
#define ACR_IDEM_SCOPE_MAX (ACR_TOKEN_NAME_MAX + 8 + 1 + 16)
#define ACR_IDEM_KEY_MAX (ACR_IDEM_SCOPE_MAX + 1 + ACR_ID_LEN_MAX)
#define ACR_IDEM_CTYPE_MAX 64

/* What a write found and did for its key. */
enum acr_idem_state {
    ACR_IDEM_NEW = 0, /* no live record: the request runs (and its answer was not stored) */
    ACR_IDEM_STORED,  /* the request ran; its answer was committed with its effect */
    ACR_IDEM_REPLAY,  /* a record with the same request hash: status/ctype/body hold it */
    ACR_IDEM_CONFLICT /* a record with another request hash: nothing ran */
};

typedef struct acr_idem acr_idem_t;

/* Formats the answer of a decided request into idem->status, ctype and body (body reset
 * first). Called inside the write transaction, on the writing thread, possibly more than
 * once (a transaction retried after the map grew). rc is the request's code (0 = applied),
 * res and errs its outcome (NULL when not an append). false: store nothing. */
typedef bool (*acr_idem_answer_fn)(acr_idem_t *idem, int rc, const acr_append_result_t *res,
                                   const acr_errlist_t *errs);

struct acr_idem {
    uint8_t key[ACR_IDEM_KEY_MAX]; /* scope \0 key */
    size_t key_len;                /* bytes of key */
    uint8_t req_hash[ACR_IDEM_HASH_LEN]; /* XXH3-128 of method, target and body */
    acr_idem_answer_fn answer;     /* formats the answer to store (NULL: store nothing) */
    void *answer_arg;              /* the callback's context */
    /* out */
    int state;                     /* enum acr_idem_state */
    int status;                    /* REPLAY / STORED: the HTTP status */
    char ctype[ACR_IDEM_CTYPE_MAX]; /* its content type */
    acr_buf_t body;                /* its bytes (owned: acr_idem_destroy) */
    int64_t at_ms;                 /* REPLAY / CONFLICT: when the record was made */
};

/* Initialises idem for scope (the token that sent the key) and key; false when they do not fit. */
bool acr_idem_init(acr_idem_t *idem, const char *scope, const char *key);
void acr_idem_destroy(acr_idem_t *idem);

/* Looks the key up in a read snapshot: sets idem->state to NEW (absent or expired), REPLAY
 * (body etc. filled) or CONFLICT. now_ms: the caller's wall clock. 0 or a store error. */
int acr_idem_lookup(acr_ledger_t *ledger, acr_idem_t *idem, int64_t now_ms, acr_err_t *err);

/* Stores idem's answer (status, ctype, body as set by the caller) in a write transaction
 * of its own: for a request refused before any transaction (a close refused by the
 * period's state), which has no effect to share a transaction with. idem->state becomes
 * STORED (or stays NEW when the answer is too large). 0 or a store error. */
int acr_idem_store(acr_ledger_t *ledger, acr_idem_t *idem, acr_err_t *err);

/* acr_ledger_append_group with keys: idems[i] (NULL = none) is batch i's key. A batch whose
 * key has a live record is not applied (rcs[i] = 0, results[i] zero, state REPLAY or
 * CONFLICT: the same key twice in one group answers the second from the first). Every
 * other keyed batch is applied in a nested transaction and its answer (formatted by
 * idems[i]->answer from the outcome, a rejection included) stored in the same transaction:
 * state STORED once the commit succeeded. A failed commit stores nothing (state NEW). */
int acr_ledger_append_group_idem(acr_ledger_t *ledger, const acr_batch_t *const *batches,
                                 size_t n, acr_append_result_t *results, acr_errlist_t *errs,
                                 int *rcs, acr_idem_t *const *idems);

#endif
