/* token.c - API tokens: creation, listing, revocation and checking.
 *
 * Secrets come from libsodium's randombytes_buf and never touch the disk:
 * the tokens table holds only the BLAKE2b-256 hash of the hex secret, keyed
 * twice (by name for list/revoke, by hash for the check on every request).
 * The check compares the stored hash with the computed one in constant time
 * (sodium_memcmp) after the lookup. Write transactions are taken with the
 * map lock shared, like every other writer (append.c), so a concurrent map
 * growth never runs under them.
 *
 * The token cache (acr_token_cache_t, for `accrue serve`): a 16-set, 4-way
 * table of verified hashes with role and partner. It is valid as of one
 * committed transaction id (valid_txnid); a lookup first reads the last
 * committed id off LMDB's meta pages (mdb_env_info: no transaction, no
 * disk) and trusts the table only when the two are equal. The server's
 * writer brackets each of its append groups with write_begin/write_end,
 * which move valid_txnid forward by exactly its own commit; any other commit
 * (a token revoke or create in another process, a payout close, an import)
 * leaves them unequal, and the next table check (in a read transaction)
 * empties the table and restarts it at that transaction's id. Between the
 * moment a group's meta page lands and write_end, lookups miss and go to the
 * table: correct, only slower. A group that commits nothing (only
 * duplicates, or every batch rejected) takes no txn id, so write_end is
 * told whether the group wrote: only then may the id move, and only by one
 * (a revoke that lands inside a bracket of nothing would otherwise look like
 * the server's own commit and keep a revoked token alive).
 *
 * A token may carry an expiry (record format 2): checked on every request,
 * in the table and in the cache alike.
 */
#include <errno.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "accrue/token.h"
#include "../store/store_internal.h"

#define REC_FMT 1                                 /* a token that never expires */
#define REC_FMT_EXPIRING 2                        /* ... followed by expires_ms after the hash */
#define REC_HDR (1 + 1 + 8 + ACR_TOKEN_HASH_LEN) /* fmt, role, created_ms, hash */
#define REC_HDR2 (REC_HDR + 8)                    /* fmt 2: expires_ms int64 BE */

static const char *const role_names[ACR_ROLE__COUNT] = {"none",
#define XX(name, wire) wire,
                                                        ACR_ROLE_MAP(XX)
#undef XX
};

const char *acr_role_name(int role)
{
    return role >= 0 && role < ACR_ROLE__COUNT ? role_names[role] : "?";
}

int acr_role_from_name(const char *name)
{
    for (int r = 1; r < ACR_ROLE__COUNT; r++)
        if (strcmp(role_names[r], name) == 0)
            return r;
    return ACR_ROLE_NONE;
}

static pthread_once_t sodium_once = PTHREAD_ONCE_INIT;
static int sodium_rc;

static void sodium_start(void)
{
    sodium_rc = sodium_init() < 0 ? -1 : 0;
}

static int sodium_ready(void)
{
    pthread_once(&sodium_once, sodium_start);
    return sodium_rc;
}

int acr_token_hash(const char *secret, size_t len, uint8_t out[ACR_TOKEN_HASH_LEN])
{
    if (sodium_ready() != 0)
        return ACR_EIO;
    crypto_generichash(out, ACR_TOKEN_HASH_LEN, (const unsigned char *)secret, len, NULL, 0);
    return 0;
}

static bool valid_id(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > ACR_ID_LEN_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == ':' || c == '-';
        if (!ok)
            return false;
    }
    return true;
}

static void hex_of(const uint8_t *p, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 15];
    }
    out[2 * n] = '\0';
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* "h:" + hash into key (2 + 32 bytes). */
static MDB_val hash_key(uint8_t key[2 + ACR_TOKEN_HASH_LEN], const uint8_t hash[ACR_TOKEN_HASH_LEN])
{
    key[0] = 'h';
    key[1] = ':';
    memcpy(key + 2, hash, ACR_TOKEN_HASH_LEN);
    return acr__val(key, 2 + ACR_TOKEN_HASH_LEN);
}

static MDB_val name_key(char key[2 + ACR_TOKEN_NAME_MAX + 1], const char *name)
{
    size_t n = strlen(name);
    key[0] = 'n';
    key[1] = ':';
    memcpy(key + 2, name, n);
    return acr__val(key, 2 + n);
}

/* Begins a transaction with the map lock held shared (released by end_txn). */
static int begin_txn(acr_ledger_t *l, unsigned flags, MDB_txn **txn)
{
    pthread_rwlock_rdlock(&l->map_lock);
    int rc = acr__env_begin(l->env, flags, txn);
    if (rc != 0)
        pthread_rwlock_unlock(&l->map_lock);
    return rc;
}

/* Commits (commit true) or aborts txn and releases the map lock. */
static int end_txn(acr_ledger_t *l, MDB_txn *txn, bool commit)
{
    int rc = 0;
    if (commit)
        rc = mdb_txn_commit(txn);
    else
        mdb_txn_abort(txn);
    pthread_rwlock_unlock(&l->map_lock);
    return rc;
}

static int put_token(acr_ledger_t *l, const char *name, int role, const char *partner,
                     int64_t expires_ms, const uint8_t hash[ACR_TOKEN_HASH_LEN], acr_err_t *err)
{
    char nk[2 + ACR_TOKEN_NAME_MAX + 1];
    uint8_t hk[2 + ACR_TOKEN_HASH_LEN];
    uint8_t rec[REC_HDR2 + ACR_ID_LEN_MAX];
    size_t plen = strlen(partner), hdr = expires_ms > 0 ? REC_HDR2 : REC_HDR;
    rec[0] = expires_ms > 0 ? REC_FMT_EXPIRING : REC_FMT;
    rec[1] = (uint8_t)role;
    acr__u64_be((uint64_t)now_ms(), rec + 2);
    memcpy(rec + 10, hash, ACR_TOKEN_HASH_LEN);
    if (expires_ms > 0)
        acr__u64_be((uint64_t)expires_ms, rec + REC_HDR);
    memcpy(rec + hdr, partner, plen);
    MDB_val k = name_key(nk, name), v = acr__val(rec, hdr + plen);
    MDB_val h = hash_key(hk, hash), hv = acr__val(name, strlen(name));
    MDB_txn *txn;
    int rc = 0;
    if (plen > 0) { /* a partner token for a partner that exists (partners never go away) */
        pthread_rwlock_rdlock(&l->map_lock);
        MDB_val pk = acr__val(partner, plen), pv;
        if ((rc = acr__read_begin(l->senv, &txn)) == 0) {
            rc = mdb_get(txn, l->dbi[ACR_DB_PARTNERS], &pk, &pv);
            mdb_txn_abort(txn);
        }
        pthread_rwlock_unlock(&l->map_lock);
        if (rc == MDB_NOTFOUND)
            return acr_err_set(err, ACR_EUNKNOWN_PARTNER,
                               "no partner %s in the ledger: register it first", partner);
        if (rc != 0)
            return acr__mdb_err(rc, err, "partners");
    }
    if ((rc = begin_txn(l, 0, &txn)) != 0)
        return acr__mdb_err(rc, err, "opening the tokens table");
    rc = mdb_put(txn, l->dbi[ACR_DB_TOKENS], &k, &v, MDB_NOOVERWRITE);
    if (rc == MDB_KEYEXIST) {
        end_txn(l, txn, false);
        return acr_err_set(err, ACR_EDUPLICATE, "a token named '%s' exists", name);
    }
    if (rc == 0)
        rc = mdb_put(txn, l->dbi[ACR_DB_TOKENS], &h, &hv, 0);
    rc = rc == 0 ? end_txn(l, txn, true) : (end_txn(l, txn, false), rc);
    return rc ? acr__mdb_err(rc, err, "storing the token") : 0;
}

int acr_token_create(acr_ledger_t *l, int role, const char *partner_id, const char *name,
                     int64_t expires_ms, char out_name[ACR_TOKEN_NAME_MAX + 1],
                     char out_secret_hex[ACR_TOKEN_SECRET_HEX_LEN + 1], acr_err_t *err)
{
    if (sodium_ready() != 0)
        return acr_err_set(err, ACR_EIO, "libsodium cannot initialise");
    if (role <= ACR_ROLE_NONE || role >= ACR_ROLE__COUNT)
        return acr_err_set(err, ACR_EUSAGE, "unknown role");
    bool has_partner = partner_id != NULL && partner_id[0] != '\0';
    if (role == ACR_ROLE_PARTNER && !has_partner)
        return acr_err_set(err, ACR_EUSAGE, "the partner role needs --partner");
    if (role != ACR_ROLE_PARTNER && has_partner)
        return acr_err_set(err, ACR_EUSAGE, "--partner goes only with --role partner");
    if (expires_ms < 0 || (expires_ms > 0 && expires_ms <= now_ms()))
        return acr_err_set(err, ACR_EUSAGE, "the expiry is in the past");
    if (has_partner && !valid_id(partner_id))
        return acr_err_set(err, ACR_EUSAGE, "partner id '%s' is not [A-Za-z0-9._:-]{1,64}",
                           partner_id);
    if (name != NULL && name[0] != '\0') {
        if (!valid_id(name))
            return acr_err_set(err, ACR_EUSAGE, "token name '%s' is not [A-Za-z0-9._:-]{1,64}",
                               name);
        snprintf(out_name, ACR_TOKEN_NAME_MAX + 1, "%s", name);
    } else {
        uint8_t rnd[4];
        char hex[9];
        randombytes_buf(rnd, sizeof rnd);
        hex_of(rnd, sizeof rnd, hex);
        snprintf(out_name, ACR_TOKEN_NAME_MAX + 1, "%s-%s", acr_role_name(role), hex);
    }
    uint8_t secret[32], hash[ACR_TOKEN_HASH_LEN];
    randombytes_buf(secret, sizeof secret);
    hex_of(secret, sizeof secret, out_secret_hex);
    sodium_memzero(secret, sizeof secret);
    acr_token_hash(out_secret_hex, ACR_TOKEN_SECRET_HEX_LEN, hash);
    int rc = put_token(l, out_name, role, has_partner ? partner_id : "", expires_ms, hash, err);
    if (rc != 0)
        sodium_memzero(out_secret_hex, ACR_TOKEN_SECRET_HEX_LEN + 1);
    return rc;
}

/* Decodes a name record; false when it is damaged. */
static bool decode_rec(const MDB_val *v, acr_token_info_t *out, uint8_t hash[ACR_TOKEN_HASH_LEN])
{
    const uint8_t *p = v->mv_data;
    size_t hdr = v->mv_size > 0 && p[0] == REC_FMT_EXPIRING ? REC_HDR2 : REC_HDR;
    if (v->mv_size < hdr || v->mv_size > hdr + ACR_ID_LEN_MAX ||
        (p[0] != REC_FMT && p[0] != REC_FMT_EXPIRING))
        return false;
    out->role = p[1];
    out->created_ms = (int64_t)acr__be_u64(p + 2);
    out->expires_ms = hdr == REC_HDR2 ? (int64_t)acr__be_u64(p + REC_HDR) : 0;
    memcpy(hash, p + 10, ACR_TOKEN_HASH_LEN);
    size_t plen = v->mv_size - hdr;
    memcpy(out->partner_id, p + hdr, plen);
    out->partner_id[plen] = '\0';
    hex_of(hash, 8, out->hash_prefix);
    return out->role > ACR_ROLE_NONE && out->role < ACR_ROLE__COUNT;
}

int acr_token_list(acr_ledger_t *l, acr_token_info_t **out, size_t *out_count, acr_err_t *err)
{
    *out = NULL;
    *out_count = 0;
    MDB_txn *txn;
    MDB_cursor *cur;
    int rc = begin_txn(l, MDB_RDONLY, &txn);
    if (rc != 0)
        return acr__mdb_err(rc, err, "reading the tokens table");
    rc = mdb_cursor_open(txn, l->dbi[ACR_DB_TOKENS], &cur);
    size_t n = 0, cap = 0;
    acr_token_info_t *list = NULL;
    MDB_val k = acr__val("n:", 2), v;
    int got = rc ? rc : mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    for (; got == 0 && k.mv_size > 2 && memcmp(k.mv_data, "n:", 2) == 0;
         got = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            acr_token_info_t *grown = realloc(list, cap * sizeof *list);
            if (grown == NULL) {
                got = ENOMEM;
                break;
            }
            list = grown;
        }
        acr_token_info_t *t = &list[n];
        uint8_t hash[ACR_TOKEN_HASH_LEN];
        size_t nlen = k.mv_size - 2 > ACR_TOKEN_NAME_MAX ? ACR_TOKEN_NAME_MAX : k.mv_size - 2;
        memcpy(t->name, (const char *)k.mv_data + 2, nlen);
        t->name[nlen] = '\0';
        if (decode_rec(&v, t, hash))
            n++;
    }
    if (rc == 0)
        mdb_cursor_close(cur);
    end_txn(l, txn, false);
    if (got != 0 && got != MDB_NOTFOUND) {
        free(list);
        return acr__mdb_err(got, err, "reading the tokens table");
    }
    *out = list;
    *out_count = n;
    return 0;
}

int acr_token_revoke(acr_ledger_t *l, const char *name, acr_err_t *err)
{
    if (!valid_id(name))
        return acr_err_set(err, ACR_ENOT_FOUND, "no token named '%s'", name);
    char nk[2 + ACR_TOKEN_NAME_MAX + 1];
    uint8_t hk[2 + ACR_TOKEN_HASH_LEN], hash[ACR_TOKEN_HASH_LEN];
    MDB_val k = name_key(nk, name), v;
    MDB_txn *txn;
    int rc = begin_txn(l, 0, &txn);
    if (rc != 0)
        return acr__mdb_err(rc, err, "opening the tokens table");
    rc = mdb_get(txn, l->dbi[ACR_DB_TOKENS], &k, &v);
    if (rc == MDB_NOTFOUND) {
        end_txn(l, txn, false);
        return acr_err_set(err, ACR_ENOT_FOUND, "no token named '%s'", name);
    }
    acr_token_info_t info;
    if (rc == 0 && decode_rec(&v, &info, hash)) {
        MDB_val h = hash_key(hk, hash);
        rc = mdb_del(txn, l->dbi[ACR_DB_TOKENS], &h, NULL);
        rc = rc == MDB_NOTFOUND ? 0 : rc;
    }
    if (rc == 0)
        rc = mdb_del(txn, l->dbi[ACR_DB_TOKENS], &k, NULL);
    rc = rc == 0 ? end_txn(l, txn, true) : (end_txn(l, txn, false), rc);
    return rc ? acr__mdb_err(rc, err, "revoking the token") : 0;
}

/* ---- the cache of verified tokens -------------------------------------------------------- */

#define CACHE_SETS 16
#define CACHE_WAYS 4

typedef struct cache_slot {
    uint8_t hash[ACR_TOKEN_HASH_LEN];
    bool used;
    uint8_t role;
    int64_t expires_ms; /* 0: never */
    char partner[ACR_ID_LEN_MAX + 1];
    char name[ACR_TOKEN_NAME_MAX + 1]; /* for the actor of what the token appends */
} cache_slot_t;

struct acr_token_cache {
    acr_ledger_t *l;
    pthread_mutex_t mu;
    uint64_t valid_txnid; /* every slot is right as of this commit (guarded by mu) */
    unsigned next_way;    /* round-robin victim (guarded by mu) */
    cache_slot_t slot[CACHE_SETS][CACHE_WAYS];
};

/* The id of the last committed write transaction, read off the meta pages
 * (no transaction; the map lock keeps a concurrent map growth away). With
 * no_wait, a map growth in progress gives UINT64_MAX at once instead of
 * waiting for it (the caller may be an event loop). */
static uint64_t last_txnid(acr_ledger_t *l, bool no_wait)
{
    MDB_envinfo info;
    if (no_wait) {
        if (pthread_rwlock_tryrdlock(&l->map_lock) != 0)
            return UINT64_MAX;
    } else {
        pthread_rwlock_rdlock(&l->map_lock);
    }
    int rc = mdb_env_info(l->env, &info);
    pthread_rwlock_unlock(&l->map_lock);
    return rc == 0 ? (uint64_t)info.me_last_txnid : UINT64_MAX;
}

acr_token_cache_t *acr_token_cache_new(acr_ledger_t *l)
{
    acr_token_cache_t *c = calloc(1, sizeof *c);
    if (c == NULL)
        return NULL;
    c->l = l;
    c->valid_txnid = UINT64_MAX; /* nothing is valid until the first check */
    pthread_mutex_init(&c->mu, NULL);
    return c;
}

void acr_token_cache_free(acr_token_cache_t *c)
{
    if (c == NULL)
        return;
    pthread_mutex_destroy(&c->mu);
    sodium_memzero(c, sizeof *c);
    free(c);
}

static void cache_flush(acr_token_cache_t *c)
{
    memset(c->slot, 0, sizeof c->slot);
}

int acr_token_cache_get(acr_token_cache_t *c, const uint8_t hash[ACR_TOKEN_HASH_LEN], int *out_role,
                        char out_partner[ACR_ID_LEN_MAX + 1],
                        char out_name[ACR_TOKEN_NAME_MAX + 1])
{
    if (c == NULL)
        return ACR_ENOT_FOUND;
    uint64_t last = last_txnid(c->l, true);
    int found = -1;
    pthread_mutex_lock(&c->mu);
    if (last == c->valid_txnid) {
        cache_slot_t *set = c->slot[hash[0] % CACHE_SETS];
        for (int w = 0; w < CACHE_WAYS; w++) { /* no early exit: every way is compared */
            int eq = sodium_memcmp(set[w].hash, hash, ACR_TOKEN_HASH_LEN) == 0;
            found = (set[w].used && eq) ? w : found;
        }
        if (found >= 0 && set[found].expires_ms > 0 && set[found].expires_ms <= now_ms())
            found = -1; /* expired: the table check answers (and refuses) it */
        if (found >= 0) {
            *out_role = set[found].role;
            memcpy(out_partner, set[found].partner, sizeof set[found].partner);
            if (out_name != NULL)
                memcpy(out_name, set[found].name, sizeof set[found].name);
        }
    }
    pthread_mutex_unlock(&c->mu);
    return found >= 0 ? 0 : ACR_ENOT_FOUND;
}

/* Remembers a token verified in a read transaction of id txnid. */
static void cache_put(acr_token_cache_t *c, uint64_t txnid, const uint8_t hash[ACR_TOKEN_HASH_LEN],
                      int role, int64_t expires_ms, const char *partner, const char *name)
{
    pthread_mutex_lock(&c->mu);
    if (txnid != c->valid_txnid) {
        if (txnid < c->valid_txnid && c->valid_txnid != UINT64_MAX) {
            pthread_mutex_unlock(&c->mu); /* an older snapshot than the cache's: skip */
            return;
        }
        cache_flush(c); /* something unknown committed since the slots were checked */
        c->valid_txnid = txnid;
    }
    cache_slot_t *set = c->slot[hash[0] % CACHE_SETS];
    int w = -1;
    for (int i = 0; i < CACHE_WAYS && w < 0; i++)
        if (!set[i].used || memcmp(set[i].hash, hash, ACR_TOKEN_HASH_LEN) == 0)
            w = i;
    if (w < 0)
        w = (int)(c->next_way++ % CACHE_WAYS);
    memcpy(set[w].hash, hash, ACR_TOKEN_HASH_LEN);
    set[w].used = true;
    set[w].role = (uint8_t)role;
    set[w].expires_ms = expires_ms;
    snprintf(set[w].partner, sizeof set[w].partner, "%s", partner);
    snprintf(set[w].name, sizeof set[w].name, "%s", name);
    pthread_mutex_unlock(&c->mu);
}

uint64_t acr_token_cache_write_begin(acr_token_cache_t *c)
{
    return c == NULL ? 0 : last_txnid(c->l, false);
}

void acr_token_cache_write_end(acr_token_cache_t *c, uint64_t stamp, bool wrote)
{
    if (c == NULL || !wrote)
        return; /* nothing of ours committed: any change of the txn id is someone else's */
    uint64_t now = last_txnid(c->l, false);
    pthread_mutex_lock(&c->mu);
    /* Our write transaction committed, so it took exactly one txn id; it held LMDB's
     * writer lock from its begin to its commit, so nobody else committed inside it. Only
     * stamp + 1 means "ours and nothing else" (stamp + 2 or more: someone committed
     * between the stamp and our begin, or after our commit). */
    if (stamp != UINT64_MAX && now != UINT64_MAX && stamp == c->valid_txnid && now == stamp + 1)
        c->valid_txnid = now;
    pthread_mutex_unlock(&c->mu);
}

/* ---- checking ------------------------------------------------------------------------------ */

static int check_hash(acr_ledger_t *l, acr_token_cache_t *cache,
                      const uint8_t hash[ACR_TOKEN_HASH_LEN], int *out_role,
                      char out_partner[ACR_ID_LEN_MAX + 1], char out_name[ACR_TOKEN_NAME_MAX + 1])
{
    uint8_t stored[ACR_TOKEN_HASH_LEN], hk[2 + ACR_TOKEN_HASH_LEN];
    char nk[2 + ACR_TOKEN_NAME_MAX + 1];
    MDB_txn *txn;
    int rc = begin_txn(l, MDB_RDONLY, &txn);
    if (rc != 0)
        return acr__mdb_err(rc, NULL, "reading the tokens table");
    MDB_val h = hash_key(hk, hash), name, v;
    int result = ACR_EUNAUTHORIZED;
    rc = mdb_get(txn, l->dbi[ACR_DB_TOKENS], &h, &name);
    if (rc == 0 && name.mv_size > 0 && name.mv_size <= ACR_TOKEN_NAME_MAX) {
        memcpy(nk, "n:", 2);
        memcpy(nk + 2, name.mv_data, name.mv_size);
        MDB_val k = acr__val(nk, 2 + name.mv_size);
        acr_token_info_t info;
        if (mdb_get(txn, l->dbi[ACR_DB_TOKENS], &k, &v) == 0 && decode_rec(&v, &info, stored) &&
            sodium_memcmp(stored, hash, ACR_TOKEN_HASH_LEN) == 0 &&
            (info.expires_ms == 0 || info.expires_ms > now_ms())) {
            *out_role = info.role;
            memcpy(out_partner, info.partner_id, strlen(info.partner_id) + 1);
            char nm[ACR_TOKEN_NAME_MAX + 1];
            memcpy(nm, name.mv_data, name.mv_size);
            nm[name.mv_size] = '\0';
            if (out_name != NULL)
                memcpy(out_name, nm, name.mv_size + 1);
            if (cache != NULL)
                cache_put(cache, (uint64_t)mdb_txn_id(txn), hash, info.role, info.expires_ms,
                          info.partner_id, nm);
            result = 0;
        }
    } else if (rc != 0 && rc != MDB_NOTFOUND) {
        result = acr__mdb_err(rc, NULL, "reading the tokens table");
    }
    end_txn(l, txn, false);
    return result;
}

int acr_token_check_hash(acr_ledger_t *l, acr_token_cache_t *cache,
                         const uint8_t hash[ACR_TOKEN_HASH_LEN], int *out_role,
                         char out_partner[ACR_ID_LEN_MAX + 1],
                         char out_name[ACR_TOKEN_NAME_MAX + 1])
{
    return check_hash(l, cache, hash, out_role, out_partner, out_name);
}

int acr_token_check(acr_ledger_t *l, const char *secret, size_t len, int *out_role,
                    char out_partner[ACR_ID_LEN_MAX + 1], char out_name[ACR_TOKEN_NAME_MAX + 1])
{
    uint8_t hash[ACR_TOKEN_HASH_LEN];
    if (len == 0 || len > 1024 || acr_token_hash(secret, len, hash) != 0)
        return ACR_EUNAUTHORIZED;
    return check_hash(l, NULL, hash, out_role, out_partner, out_name);
}
