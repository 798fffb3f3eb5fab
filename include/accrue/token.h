/* token.h - API tokens of `accrue serve` (http.md, Authentication and roles).
 *
 * A token is a 256-bit random secret shown once, as 64 lowercase hex digits.
 * The ledger keeps only its BLAKE2b-256 hash (libsodium crypto_generichash
 * over the 64 hex characters), with a unique name, a role and, for the
 * partner role, the partner it is bound to. Tokens live in the ledger's
 * `tokens` table (primary data: not derived from the log, not hash-chained,
 * not part of verify), two keys per token:
 *
 *   "n:" name        -> [fmt 1][role][created_ms int64 BE][hash 32][partner_id bytes]
 *                       or [fmt 2][role][created_ms][hash 32][expires_ms int64 BE][partner_id]
 *   "h:" hash[32]    -> name                 (lookup by presented secret)
 *
 * Every function is thread-safe (its own LMDB transaction).
 *
 * A long-running server may keep an acr_token_cache_t: verified tokens held
 * in memory, keyed by hash, so the check on every request needs neither an
 * LMDB transaction nor the disk. The cache is only trusted while the ledger
 * has seen no commit except those the server itself reported as its own
 * token-free commits (acr_token_cache_write_begin/_end around each append
 * group): any other commit - `accrue token revoke` or `create` in another
 * process, a payout close, an import - empties it, so a revoke still takes
 * effect on the next request.
 */
#ifndef ACCRUE_TOKEN_H
#define ACCRUE_TOKEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "accrue/error.h"
#include "accrue/limits.h"
#include "accrue/log.h"

/* XX(NAME, "wire name") - the roles of http.md. */
#define ACR_ROLE_MAP(XX)                                                                           \
    XX(ADMIN, "admin")                                                                             \
    XX(FINANCE, "finance")                                                                         \
    XX(AUDITOR, "auditor")                                                                         \
    XX(INGEST, "ingest")                                                                           \
    XX(FEED, "feed")                                                                               \
    XX(PARTNER, "partner")

typedef enum {
    ACR_ROLE_NONE = 0, /* unauthenticated */
#define XX(name, wire) ACR_ROLE_##name,
    ACR_ROLE_MAP(XX)
#undef XX
        ACR_ROLE__COUNT
} acr_role_t;

#define ACR_TOKEN_SECRET_HEX_LEN 64 /* 256 bits as lowercase hex */
#define ACR_TOKEN_HASH_LEN 32       /* BLAKE2b-256 */

/* "admin" ... ; "none" for ACR_ROLE_NONE, "?" out of range. */
const char *acr_role_name(int role);
/* The role of a wire name, ACR_ROLE_NONE when unknown. */
int acr_role_from_name(const char *name);

/* BLAKE2b-256 of a presented secret (any bytes). Initialises libsodium once;
 * returns 0, or ACR_EIO when libsodium cannot initialise. */
int acr_token_hash(const char *secret, size_t len, uint8_t out[ACR_TOKEN_HASH_LEN]);

/* Creates a token: role one of acr_role_t (not NONE); partner_id required
 * for ACR_ROLE_PARTNER and refused for every other role (ACR_EUSAGE);
 * expires_ms: UTC ms after which the token is refused (0: never; a time
 * already past is ACR_EUSAGE); name
 * NULL or "" picks "<role>-<8 hex>". Writes the name used into out_name and
 * the secret (64 hex digits + NUL) into out_secret_hex: the only time it
 * exists outside the caller's memory. Errors: ACR_EUSAGE (bad role, bad
 * partner or name pattern), ACR_EUNKNOWN_PARTNER (a partner token for a partner the
 * ledger does not hold), ACR_EDUPLICATE (name taken), store errors. */
int acr_token_create(acr_ledger_t *ledger, int role, const char *partner_id, const char *name,
                     int64_t expires_ms, char out_name[ACR_TOKEN_NAME_MAX + 1],
                     char out_secret_hex[ACR_TOKEN_SECRET_HEX_LEN + 1], acr_err_t *err);

typedef struct acr_token_cache acr_token_cache_t;

typedef struct acr_token_info {
    char name[ACR_TOKEN_NAME_MAX + 1];
    int role;                            /* acr_role_t */
    char partner_id[ACR_ID_LEN_MAX + 1]; /* "" unless role is partner */
    int64_t created_ms;                  /* UTC ms of creation */
    int64_t expires_ms;                  /* UTC ms of expiry, 0: never */
    char hash_prefix[17];                /* first 8 bytes of the hash, hex: a fingerprint */
} acr_token_info_t;

/* Every token, sorted by name (malloc'd array, free() it; NULL when none). */
int acr_token_list(acr_ledger_t *ledger, acr_token_info_t **out, size_t *out_count, acr_err_t *err);

/* Deletes the token called name. ACR_ENOT_FOUND when there is none. */
int acr_token_revoke(acr_ledger_t *ledger, const char *name, acr_err_t *err);

/* Checks a presented secret: 0 with the token's role and partner (out_partner
 * "" unless partner role; out_name may be NULL), ACR_EUNAUTHORIZED when no
 * stored token matches or it has expired (the stored hash is compared with sodium_memcmp), or a
 * store error. */
int acr_token_check(acr_ledger_t *ledger, const char *secret, size_t len, int *out_role,
                    char out_partner[ACR_ID_LEN_MAX + 1], char out_name[ACR_TOKEN_NAME_MAX + 1]);

/* Checks a presented secret's hash (acr_token_hash), reading the tokens
 * table; when cache is not NULL a match is remembered there. Same results as
 * acr_token_check (out_name may be NULL). */
int acr_token_check_hash(acr_ledger_t *ledger, acr_token_cache_t *cache,
                         const uint8_t hash[ACR_TOKEN_HASH_LEN], int *out_role,
                         char out_partner[ACR_ID_LEN_MAX + 1],
                         char out_name[ACR_TOKEN_NAME_MAX + 1]);

/* A cache of verified tokens (see the top of this file); NULL when out of
 * memory. Thread-safe. */
acr_token_cache_t *acr_token_cache_new(acr_ledger_t *ledger);
void acr_token_cache_free(acr_token_cache_t *cache);
/* 0 with role, partner and name (out_name may be NULL) when hash is cached and still valid; ACR_ENOT_FOUND
 * otherwise (then use acr_token_check_hash). No LMDB transaction, no disk:
 * callable from an event loop. Every slot of the hash's set is compared with
 * sodium_memcmp, without an early exit. */
int acr_token_cache_get(acr_token_cache_t *cache, const uint8_t hash[ACR_TOKEN_HASH_LEN],
                        int *out_role, char out_partner[ACR_ID_LEN_MAX + 1],
                        char out_name[ACR_TOKEN_NAME_MAX + 1]);
/* Bracket one write transaction of the caller's own that writes no token
 * (the server's append groups): begin returns a stamp for end; wrote says
 * whether that transaction committed changes (a commit of nothing takes no
 * txn id). A commit by anyone else in between empties the cache. */
uint64_t acr_token_cache_write_begin(acr_token_cache_t *cache);
void acr_token_cache_write_end(acr_token_cache_t *cache, uint64_t stamp, bool wrote);

#endif
