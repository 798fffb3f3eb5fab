/* store.c - the LMDB environment of a ledger: opening it with every table,
 * mapping LMDB errors to accrue codes, and the tiny record encoding used by
 * the state tables.
 *
 * The log's environment is opened without MDB_NOSYNC, MDB_WRITEMAP or
 * MDB_MAPASYNC: a commit returns only once its pages and meta page are on
 * disk. The derived state's adds MDB_NOMETASYNC (its last commit is redone from the
 * log after a system crash: store_internal.h). MDB_NOTLS lets read transactions move
 * between threads (the server's worker pool).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <sys/statvfs.h>
#include <xxhash.h>

#include "store_internal.h"

typedef struct {
    const char *name;
    bool derived;
} db_info_t;

static const db_info_t db_table[ACR_DB__COUNT] = {
#define XX(name, str, derived) {str, derived},
    ACR_DB_MAP(XX)
#undef XX
};

const char *acr__db_name(int db)
{
    return db >= 0 && db < ACR_DB__COUNT ? db_table[db].name : "?";
}

bool acr__db_derived(int db)
{
    return db >= 0 && db < ACR_DB__COUNT && db_table[db].derived;
}

int acr__mdb_err(int rc, acr_err_t *err, const char *what)
{
    switch (rc) {
    case 0:
        return 0;
    case ENOSPC:
    case EDQUOT:
        return acr_err_set(err, ACR_ELEDGER_FULL, "%s: the disk is full", what);
    case ENOMEM:
        return acr_err_set(err, ACR_ENOMEM, "%s: out of memory", what);
    case MDB_CORRUPTED:
    case MDB_PAGE_NOTFOUND:
    case MDB_INVALID:
    case MDB_VERSION_MISMATCH:
        return acr_err_set(err, ACR_ECORRUPT, "%s: %s", what, mdb_strerror(rc));
    case EIO:
        return acr_err_set(err, ACR_EIO, "%s: %s", what, mdb_strerror(rc));
    default:
        return acr_err_set(err, ACR_ESTORE, "%s: %s", what, mdb_strerror(rc));
    }
}

/* A data file shorter than the pages its last commit uses was truncated:
 * reading those pages through the map would raise SIGBUS, so refuse to open
 * it (docs/reliability.md, K5). */
static int check_file_size(MDB_env *env, const char *file, acr_err_t *err)
{
    struct stat fs;
    uint64_t need = acr__env_used_bytes(env, NULL);
    if (need == 0 || stat(file, &fs) != 0)
        return 0; /* nothing to compare: LMDB reports its own errors later */
    if ((uint64_t)fs.st_size < need)
        return acr_err_set(err, ACR_ECORRUPT,
                           "%s is truncated: %llu bytes, its last commit uses %llu", file,
                           (unsigned long long)fs.st_size, (unsigned long long)need);
    return 0;
}

/* A failed commit on a full disk surfaces as EIO (LMDB turns the short
 * write into EIO): look at the free space to name it (K6). */
int acr__commit_err(const acr_ledger_t *l, int rc, acr_err_t *err)
{
    struct statvfs vfs;
    if ((rc == EIO || rc == ENOSPC) && statvfs(l->path, &vfs) == 0 &&
        (uint64_t)vfs.f_bavail * vfs.f_frsize < ACR_DISK_FULL_BYTES)
        return acr_err_set(err, ACR_ELEDGER_FULL, "commit: the disk holding %s is full",
                           l->path);
    return acr__mdb_err(rc, err, "commit");
}

/* The tables of an environment of kind: [*lo, *hi). */
static void env_tables(acr__env_kind_t kind, int *lo, int *hi)
{
    *lo = kind == ACR__ENV_STATE ? ACR__DB_LOG_LAST + 1 : 0;
    *hi = kind == ACR__ENV_LOG ? ACR__DB_LOG_LAST + 1 : ACR_DB__COUNT;
}

/* Opens the handles of kind's tables in txn, creating every one (create) or only those an
 * earlier release did not have (optional: the derived ones, idem, applied). */
static int open_tables(MDB_txn *txn, acr__env_kind_t kind, bool create, bool optional,
                       MDB_dbi dbi[ACR_DB__COUNT])
{
    int lo, hi, rc = 0;
    env_tables(kind, &lo, &hi);
    for (int i = lo; rc == 0 && i < hi; i++) {
        bool opt = db_table[i].derived || i == ACR_DB_IDEM || i == ACR_DB_APPLIED;
        rc = mdb_dbi_open(txn, db_table[i].name, create || (optional && opt) ? MDB_CREATE : 0,
                          &dbi[i]);
    }
    return rc;
}

int acr__env_open(const char *path, acr__env_kind_t kind, bool create, uint64_t map_size_bytes,
                  unsigned int flags, MDB_env **out_env, MDB_dbi dbi[ACR_DB__COUNT],
                  bool *out_old, acr_err_t *err)
{
    MDB_env *env = NULL;
    struct stat fs;
    char file[4096 + 16];
    if (kind == ACR__ENV_STATE)
        snprintf(file, sizeof file, "%s", path);
    else
        snprintf(file, sizeof file, "%s/data.mdb", path);
    if (out_old != NULL)
        *out_old = false;
    /* LMDB would take an empty data file for a new one and write a fresh environment
     * into it: an emptied ledger is damage, not "no ledger" (and must stay as found). */
    if (!create && stat(file, &fs) == 0 && S_ISREG(fs.st_mode) && fs.st_size == 0)
        return acr_err_set(err, ACR_ECORRUPT, "%s is empty (0 bytes): the ledger is damaged; "
                           "restore it from a backup", file);
    int rc = mdb_env_create(&env);
    if (rc != 0)
        return acr__mdb_err(rc, err, "mdb_env_create");
    mdb_env_set_maxdbs(env, ACR_DB__COUNT + 4);
    mdb_env_set_maxreaders(env, 510);
    if (map_size_bytes != 0)
        mdb_env_set_mapsize(env, (size_t)map_size_bytes);
    if (kind == ACR__ENV_STATE)
        flags |= MDB_NOSUBDIR | MDB_NOMETASYNC;
    rc = mdb_env_open(env, path, MDB_NOTLS | flags, 0600); /* owner only; umask may narrow */
    if (rc != 0) {
        mdb_env_close(env);
        if (rc == ENOENT)
            return acr_err_set(err, ACR_ENO_LEDGER, "no ledger at %s", path);
        return acr__mdb_err(rc, err, path);
    }
    if ((rc = check_file_size(env, file, err)) != 0) {
        mdb_env_close(env);
        return rc;
    }
    MDB_txn *txn = NULL;
    MDB_dbi old_meta;
    /* a write transaction only when something must be created (a read-only file opens) */
    rc = mdb_txn_begin(env, NULL, create ? 0 : MDB_RDONLY, &txn);
    if (rc == 0 && kind == ACR__ENV_LOG && !create &&
        mdb_dbi_open(txn, db_table[ACR_DB_META].name, 0, &dbi[ACR_DB_META]) == MDB_NOTFOUND) {
        bool old = mdb_dbi_open(txn, "meta", 0, &old_meta) == 0 &&
                   mdb_dbi_open(txn, "log", 0, &dbi[ACR_DB_LOG]) == 0;
        mdb_txn_abort(txn);
        if (old && out_old != NULL) { /* an earlier release's single environment */
            *out_old = true;
            *out_env = env;
            return 0;
        }
        mdb_env_close(env);
        return acr_err_set(err, ACR_ENO_LEDGER, "no ledger at %s", path);
    }
    if (rc == 0 && (rc = open_tables(txn, kind, create, false, dbi)) == MDB_NOTFOUND &&
        !create) { /* a table an earlier release did not have: created empty */
        mdb_txn_abort(txn);
        txn = NULL;
        if ((rc = mdb_txn_begin(env, NULL, 0, &txn)) == 0)
            rc = open_tables(txn, kind, false, true, dbi);
    }
    if (rc == 0)
        rc = mdb_txn_commit(txn); /* also for read-only: an aborted txn closes its dbi handles */
    else if (txn != NULL)
        mdb_txn_abort(txn);
    if (rc != 0) {
        mdb_env_close(env);
        if (rc == MDB_NOTFOUND)
            return acr_err_set(err, ACR_ENO_LEDGER, "no ledger at %s", path);
        return acr__mdb_err(rc, err, "opening tables");
    }
    *out_env = env;
    return 0;
}

/* ---- The APPLIED marker and the write pair --------------------------------- */

#define APPLIED_KEY "through"

void acr__genesis(const acr_ledger_t *l, uint8_t out[ACR_HASH_LEN])
{
    XXH128_canonical_t c;
    XXH128_canonicalFromHash(&c, XXH3_128bits(l->cfg.ledger_id, sizeof l->cfg.ledger_id));
    memcpy(out, c.digest, ACR_HASH_LEN);
}

int acr__log_head(const acr_ledger_t *l, MDB_txn *ltxn, acr__head_t *out)
{
    MDB_cursor *cur;
    MDB_val k, v;
    int rc = mdb_cursor_open(ltxn, l->dbi[ACR_DB_LOG], &cur);
    if (rc != 0)
        return rc;
    rc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
    mdb_cursor_close(cur);
    if (rc == MDB_NOTFOUND) {
        out->seq = 0;
        acr__genesis(l, out->hash);
        return 0;
    }
    if (rc != 0)
        return rc;
    if (k.mv_size != 8 || v.mv_size < ACR_HASH_LEN)
        return MDB_CORRUPTED;
    out->seq = acr__be_u64(k.mv_data);
    memcpy(out->hash, v.mv_data, ACR_HASH_LEN);
    return 0;
}

int acr__applied_get(const acr_ledger_t *l, MDB_txn *stxn, acr__head_t *out)
{
    MDB_val k = acr__val(APPLIED_KEY, sizeof APPLIED_KEY - 1), v;
    int rc = mdb_get(stxn, l->dbi[ACR_DB_APPLIED], &k, &v);
    if (rc != 0)
        return rc;
    if (v.mv_size != 8 + ACR_HASH_LEN)
        return MDB_CORRUPTED;
    out->seq = acr__be_u64(v.mv_data);
    memcpy(out->hash, (const uint8_t *)v.mv_data + 8, ACR_HASH_LEN);
    return 0;
}

int acr__applied_put(const acr_ledger_t *l, MDB_txn *stxn, const acr__head_t *h)
{
    uint8_t b[8 + ACR_HASH_LEN];
    acr__u64_be(h->seq, b);
    memcpy(b + 8, h->hash, ACR_HASH_LEN);
    MDB_val k = acr__val(APPLIED_KEY, sizeof APPLIED_KEY - 1), v = acr__val(b, sizeof b);
    return mdb_put(stxn, l->dbi[ACR_DB_APPLIED], &k, &v, 0);
}

int acr__applied_check(const acr_ledger_t *l, MDB_txn *ltxn, const acr__head_t *h,
                       acr_err_t *err)
{
    uint8_t want[ACR_HASH_LEN], key[8];
    MDB_val k = acr__val(key, 8), v;
    int rc = 0;
    if (h->seq == 0) {
        acr__genesis(l, want);
    } else {
        acr__u64_be(h->seq, key);
        if ((rc = mdb_get(ltxn, l->dbi[ACR_DB_LOG], &k, &v)) == 0 && v.mv_size >= ACR_HASH_LEN)
            memcpy(want, v.mv_data, ACR_HASH_LEN);
        else if (rc != 0 && rc != MDB_NOTFOUND)
            return acr__mdb_err(rc, err, "log");
    }
    if (rc == 0 && memcmp(want, h->hash, ACR_HASH_LEN) == 0)
        return 0;
    return acr_err_set(err, ACR_ECORRUPT,
                       "the derived state (state.mdb) was applied through seq %llu, which the "
                       "log does not hold as recorded: it belongs to another copy of the log; "
                       "run `accrue rebuild`", (unsigned long long)h->seq);
}

/* ---- Table digests ------------------------------------------------------------ */

#define DIGESTS_KEY "digests"

acr__digest_t acr__dg_row(int db, const void *key, size_t klen, const void *val, size_t vlen)
{
    XXH128_hash_t h = XXH3_128bits_withSeed(val, vlen, XXH3_64bits_withSeed(key, klen,
                                                                            (uint64_t)db));
    return (acr__digest_t){h.low64, h.high64};
}

void acr__dg_move(acr__txn_t *tx, int db, const void *key, size_t klen, const void *val,
                  size_t vlen, bool remove)
{
    acr__digest_t r = acr__dg_row(db, key, klen, val, vlen);
    if (remove) {
        tx->dg[db].lo -= r.lo;
        tx->dg[db].hi -= r.hi;
    } else {
        tx->dg[db].lo += r.lo;
        tx->dg[db].hi += r.hi;
    }
}

/* An overwrite and a delete each take one descent of the B-tree: the cursor that found
 * the old row (to take it out of the digest) is the one that replaces or deletes it. */
int acr__dput(acr__txn_t *tx, int db, MDB_val *k, MDB_val *v, unsigned flags)
{
    if (flags & MDB_APPEND) {
        int rc = mdb_put(tx->txn, tx->dbi[db], k, v, flags);
        if (rc == 0)
            acr__dg_move(tx, db, k->mv_data, k->mv_size, v->mv_data, v->mv_size, false);
        return rc;
    }
    MDB_cursor *c;
    int rc = mdb_cursor_open(tx->txn, tx->dbi[db], &c);
    if (rc != 0)
        return rc;
    MDB_val cur = *v;
    if ((rc = mdb_cursor_put(c, k, &cur, MDB_NOOVERWRITE)) == 0) {
        acr__dg_move(tx, db, k->mv_data, k->mv_size, v->mv_data, v->mv_size, false);
    } else if (rc == MDB_KEYEXIST && (flags & MDB_NOOVERWRITE)) {
        *v = cur;
    } else if (rc == MDB_KEYEXIST) {
        acr__dg_move(tx, db, k->mv_data, k->mv_size, cur.mv_data, cur.mv_size, true);
        if ((rc = mdb_cursor_put(c, k, v, MDB_CURRENT)) == 0)
            acr__dg_move(tx, db, k->mv_data, k->mv_size, v->mv_data, v->mv_size, false);
    }
    mdb_cursor_close(c);
    return rc;
}

int acr__ddel(acr__txn_t *tx, int db, MDB_val *k)
{
    MDB_cursor *c;
    int rc = mdb_cursor_open(tx->txn, tx->dbi[db], &c);
    if (rc != 0)
        return rc;
    MDB_val key = *k, old;
    if ((rc = mdb_cursor_get(c, &key, &old, MDB_SET_KEY)) == 0) {
        acr__dg_move(tx, db, k->mv_data, k->mv_size, old.mv_data, old.mv_size, true);
        rc = mdb_cursor_del(c, 0);
    }
    mdb_cursor_close(c);
    return rc;
}

int acr__dg_load(const acr_ledger_t *l, MDB_txn *stxn, acr__digest_t out[ACR_DB__COUNT])
{
    memset(out, 0, ACR_DB__COUNT * sizeof *out);
    MDB_val k = acr__val(DIGESTS_KEY, sizeof DIGESTS_KEY - 1), v;
    int rc = mdb_get(stxn, l->dbi[ACR_DB_APPLIED], &k, &v);
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc != 0)
        return rc;
    if (v.mv_size != ACR_DB__COUNT * 16)
        return MDB_CORRUPTED;
    const uint8_t *p = v.mv_data;
    for (int i = 0; i < ACR_DB__COUNT; i++) {
        out[i].lo = acr__be_u64(p + 16 * i);
        out[i].hi = acr__be_u64(p + 16 * i + 8);
    }
    return 0;
}

int acr__dg_store(const acr_ledger_t *l, MDB_txn *stxn, const acr__digest_t d[ACR_DB__COUNT])
{
    uint8_t b[ACR_DB__COUNT * 16];
    for (int i = 0; i < ACR_DB__COUNT; i++) {
        acr__u64_be(d[i].lo, b + 16 * i);
        acr__u64_be(d[i].hi, b + 16 * i + 8);
    }
    MDB_val k = acr__val(DIGESTS_KEY, sizeof DIGESTS_KEY - 1), v = acr__val(b, sizeof b);
    return mdb_put(stxn, l->dbi[ACR_DB_APPLIED], &k, &v, 0);
}

int acr__dg_scan(MDB_txn *txn, MDB_dbi dbi, int db, acr__digest_t *out)
{
    MDB_cursor *cur;
    MDB_val k, v;
    *out = (acr__digest_t){0, 0};
    int rc = mdb_cursor_open(txn, dbi, &cur);
    if (rc != 0)
        return rc;
    while ((rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) == 0) {
        acr__digest_t r = acr__dg_row(db, k.mv_data, k.mv_size, v.mv_data, v.mv_size);
        out->lo += r.lo;
        out->hi += r.hi;
    }
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

int acr__dg_rescan(const acr_ledger_t *l, MDB_txn *stxn)
{
    acr__digest_t d[ACR_DB__COUNT];
    memset(d, 0, sizeof d);
    int rc = 0;
    for (int db = 0; rc == 0 && db < ACR_DB__COUNT; db++)
        if (db_table[db].derived)
            rc = acr__dg_scan(stxn, l->dbi[db], db, &d[db]);
    return rc ? rc : acr__dg_store(l, stxn, d);
}

int acr__tx_seal(acr__txn_t *tx, const acr__head_t *head)
{
    acr__digest_t d[ACR_DB__COUNT];
    bool moved = false;
    if (tx->pseq_copies != 0) /* an event applied and not logged (acr__state_logged) */
        return EINVAL;
    for (int i = 0; i < ACR_DB__COUNT; i++)
        moved = moved || tx->dg[i].lo != 0 || tx->dg[i].hi != 0;
    int rc = acr__applied_put(tx->ledger, tx->txn, head);
    if (rc == 0 && moved && (rc = acr__dg_load(tx->ledger, tx->txn, d)) == 0) {
        for (int i = 0; i < ACR_DB__COUNT; i++) {
            d[i].lo += tx->dg[i].lo;
            d[i].hi += tx->dg[i].hi;
        }
        rc = acr__dg_store(tx->ledger, tx->txn, d);
    }
    if (rc == 0)
        memset(tx->dg, 0, sizeof tx->dg);
    return rc;
}

int acr__env_begin(MDB_env *env, unsigned flags, MDB_txn **txn)
{
    int rc = mdb_txn_begin(env, NULL, flags, txn);
    if (rc == MDB_MAP_RESIZED) {
        mdb_env_set_mapsize(env, 0);
        rc = mdb_txn_begin(env, NULL, flags, txn);
    }
    return rc;
}

int acr__wtxn_begin(acr_ledger_t *l, acr__txn_t *tx)
{
    tx->txn = tx->ltxn = NULL;
    int rc = acr__env_begin(l->senv, 0, &tx->txn);
    if (rc == 0 && (rc = acr__env_begin(l->env, 0, &tx->ltxn)) != 0) {
        mdb_txn_abort(tx->txn);
        tx->txn = NULL;
    }
    return rc;
}

int acr__wtxn_commit(acr__txn_t *tx, bool *log_done)
{
    int rc = mdb_txn_commit(tx->ltxn);
    tx->ltxn = NULL;
    *log_done = rc == 0;
    if (rc != 0)
        mdb_txn_abort(tx->txn);
    else
        rc = mdb_txn_commit(tx->txn);
    tx->txn = NULL;
    return rc;
}

void acr__wtxn_abort(acr__txn_t *tx)
{
    if (tx->ltxn != NULL)
        mdb_txn_abort(tx->ltxn);
    if (tx->txn != NULL)
        mdb_txn_abort(tx->txn);
    tx->txn = tx->ltxn = NULL;
}

void acr__wtxn_end(acr__txn_t *tx)
{
    acr__wtxn_abort(tx);
    pthread_rwlock_unlock(&tx->ledger->map_lock);
    acr_buf_destroy(&tx->scratch);
    acr_buf_destroy(&tx->scratch2);
    acr__cache_free(&tx->cache);
}

int acr__grow_maps(acr_ledger_t *l, acr_err_t *err)
{
    MDB_env *envs[2] = {l->env, l->senv};
    int rc = 0;
    pthread_rwlock_wrlock(&l->map_lock);
    for (int i = 0; rc == 0 && i < 2; i++) {
        MDB_envinfo info;
        mdb_env_info(envs[i], &info);
        rc = mdb_env_set_mapsize(envs[i], info.me_mapsize * 2);
    }
    pthread_rwlock_unlock(&l->map_lock);
    return rc ? acr__mdb_err(rc, err, "growing the map") : 0;
}

/* ---- kv: length-prefixed strings and little-endian int64s ---------------- */

int acr__kv_put_str(acr_buf_t *b, const char *p, size_t len)
{
    uint8_t hdr[2] = {(uint8_t)(len & 0xff), (uint8_t)(len >> 8)};
    if (len > 0xffff)
        return ACR_ETOO_LARGE;
    int rc = acr_buf_append(b, hdr, 2);
    return rc ? rc : acr_buf_append(b, p, len);
}

int acr__kv_put_i64(acr_buf_t *b, int64_t v)
{
    uint8_t out[8];
    uint64_t u = (uint64_t)v;
    for (int i = 0; i < 8; i++)
        out[i] = (uint8_t)(u >> (8 * i));
    return acr_buf_append(b, out, 8);
}

void acr__kv_reader_init(acr__kv_reader_t *r, const void *p, size_t len)
{
    r->p = p;
    r->end = r->p + len;
    r->bad = false;
}

acr_str_t acr__kv_get_str(acr__kv_reader_t *r)
{
    acr_str_t s = {"", 0};
    if (r->end - r->p < 2) {
        r->bad = true;
        return s;
    }
    size_t len = (size_t)r->p[0] | ((size_t)r->p[1] << 8);
    if ((size_t)(r->end - r->p - 2) < len) {
        r->bad = true;
        return s;
    }
    s.ptr = (const char *)r->p + 2;
    s.len = (uint32_t)len;
    r->p += 2 + len;
    return s;
}

int64_t acr__kv_get_i64(acr__kv_reader_t *r)
{
    if (r->end - r->p < 8) {
        r->bad = true;
        return 0;
    }
    uint64_t u = 0;
    for (int i = 7; i >= 0; i--)
        u = (u << 8) | r->p[i];
    r->p += 8;
    return (int64_t)u;
}

MDB_val acr__key2(acr_buf_t *buf, acr_str_t a, acr_str_t b)
{
    acr_buf_reset(buf);
    if (acr_buf_append(buf, a.ptr, a.len) || acr_buf_append(buf, "", 1) ||
        acr_buf_append(buf, b.ptr, b.len))
        return acr__val(NULL, 0);
    return acr__val(buf->data, buf->len);
}

int acr__tx_fail(acr__txn_t *tx, int rc, acr_err_t *err, const char *what)
{
    tx->mdb_rc = rc;
    return acr__mdb_err(rc, err, what);
}

/* ---- The per-transaction row cache --------------------------------------- */

static acr__cached_row_t *row_at(const acr__cache_t *c, uint32_t i)
{
    return &c->chunks[i / ACR__CACHE_CHUNK][i % ACR__CACHE_CHUNK];
}

static uint64_t row_hash(int db, const void *key, size_t klen)
{
    return XXH3_64bits_withSeed(key, klen, (uint64_t)db + 1);
}

/* Doubles the slot table (or makes the first one). */
static int cache_grow(acr__cache_t *c)
{
    uint32_t cap = c->cap ? c->cap * 2 : 1024;
    uint64_t *slots = calloc(cap, sizeof *slots);
    if (slots == NULL)
        return ACR_ENOMEM;
    for (uint32_t i = 0; i < c->count; i++) {
        uint64_t h = row_at(c, i)->hash;
        uint32_t j = (uint32_t)h & (cap - 1);
        while (slots[j] != 0)
            j = (j + 1) & (cap - 1);
        slots[j] = (h >> 32 << 32) | (i + 1);
    }
    free(c->slots);
    c->slots = slots;
    c->cap = cap;
    return 0;
}

/* n bytes of the arena (8-aligned), or NULL. */
static uint8_t *arena_alloc(acr__cache_t *c, size_t n)
{
    n = (n + 7) & ~(size_t)7;
    if (n > ACR__CACHE_BLOCK)
        return NULL;
    if (c->nblocks == 0 || ACR__CACHE_BLOCK - c->block_used < n) {
        if (c->nblocks != 0) {
            c->block++;
            c->block_used = 0;
        }
        if (c->block >= c->nblocks) {
            uint8_t **blocks = realloc(c->blocks, (c->nblocks + 1) * sizeof *blocks);
            if (blocks == NULL)
                return NULL;
            c->blocks = blocks;
            if ((blocks[c->nblocks] = malloc(ACR__CACHE_BLOCK)) == NULL)
                return NULL;
            c->nblocks++;
        }
    }
    uint8_t *p = c->blocks[c->block] + c->block_used;
    c->block_used += n;
    return p;
}

acr__cached_row_t *acr__cache_get(acr__txn_t *tx, int db, const void *key, size_t klen,
                            bool *out_new)
{
    acr__cache_t *c = &tx->cache;
    if (klen > ACR_ROW_KEY_MAX)
        return NULL;
    if ((c->count + 1) * 2 > c->cap && cache_grow(c) != 0)
        return NULL;
    uint64_t h = row_hash(db, key, klen);
    uint32_t j = (uint32_t)h & (c->cap - 1);
    uint64_t tag = h >> 32 << 32;
    for (; c->slots[j] != 0; j = (j + 1) & (c->cap - 1)) {
        if ((c->slots[j] & 0xffffffff00000000u) != tag) /* most misses stop here */
            continue;
        acr__cached_row_t *e = row_at(c, (uint32_t)c->slots[j] - 1);
        if (e->hash == h && e->db == db && e->klen == klen && memcmp(e->key, key, klen) == 0) {
            *out_new = false;
            return e;
        }
    }
    if (c->count / ACR__CACHE_CHUNK >= c->nchunks) {
        acr__cached_row_t **chunks = realloc(c->chunks, (c->nchunks + 1) * sizeof *chunks);
        if (chunks == NULL)
            return NULL;
        c->chunks = chunks;
        if ((chunks[c->nchunks] = malloc(ACR__CACHE_CHUNK * sizeof **chunks)) == NULL)
            return NULL;
        c->nchunks++;
    }
    uint8_t *kp = arena_alloc(c, klen ? klen : 1);
    if (kp == NULL)
        return NULL;
    acr__cached_row_t *e = row_at(c, c->count);
    c->slots[j] = tag | ++c->count;
    memcpy(kp, key, klen);
    *e = (acr__cached_row_t){.hash = h, .key = kp, .klen = (uint16_t)klen, .db = (uint8_t)db,
                       .state = ACR__ROW_ABSENT};
    *out_new = true;
    return e;
}

int acr__cached_row_set(acr__txn_t *tx, acr__cached_row_t *e, const void *p, size_t n)
{
    if (n > 0xffff)
        return ACR_ENOMEM;
    if (e->val == NULL || n > e->vcap) {
        size_t cap = n < 16 ? 16 : n;
        uint8_t *v = arena_alloc(&tx->cache, cap);
        if (v == NULL)
            return ACR_ENOMEM;
        e->val = v;
        e->vcap = (uint16_t)cap;
    }
    memmove(e->val, p, n);
    e->vlen = (uint16_t)n;
    e->state = ACR__ROW_PRESENT;
    return 0;
}

void acr__cache_clear(acr__cache_t *c)
{
    if (c->count != 0)
        memset(c->slots, 0, c->cap * sizeof *c->slots);
    c->count = 0;
    c->block = 0;
    c->block_used = 0;
}

void acr__cache_free(acr__cache_t *c)
{
    for (uint32_t i = 0; i < c->nchunks; i++)
        free(c->chunks[i]);
    free(c->chunks);
    free(c->slots);
    for (uint32_t i = 0; i < c->nblocks; i++)
        free(c->blocks[i]);
    free(c->blocks);
    memset(c, 0, sizeof *c);
}

static int row_order(const void *a, const void *b)
{
    const acr__cached_row_t *x = *(const acr__cached_row_t *const *)a;
    const acr__cached_row_t *y = *(const acr__cached_row_t *const *)b;
    if (x->db != y->db)
        return x->db < y->db ? -1 : 1;
    size_t n = x->klen < y->klen ? x->klen : y->klen;
    int d = memcmp(x->key, y->key, n);
    return d ? d : (x->klen > y->klen) - (x->klen < y->klen);
}

/* Dirty entries are put in (table, key) order: LMDB's default key order is
 * memcmp then length, so consecutive puts walk neighbouring pages. */
int acr__tx_flush(acr__txn_t *tx, acr_err_t *err)
{
    acr__cache_t *c = &tx->cache;
    uint32_t n = 0;
    for (uint32_t i = 0; i < c->count; i++)
        n += row_at(c, i)->dirty;
    if (n == 0) {
        acr__cache_clear(c);
        c->empty = false;
        return 0;
    }
    acr__cached_row_t **order = malloc(n * sizeof *order);
    if (order == NULL)
        return acr_err_set(err, ACR_ENOMEM, "out of memory");
    n = 0;
    for (uint32_t i = 0; i < c->count; i++)
        if (row_at(c, i)->dirty)
            order[n++] = row_at(c, i);
    qsort(order, n, sizeof *order, row_order);
    int rc = 0;
    for (uint32_t i = 0; rc == 0 && i < n; i++) {
        acr__cached_row_t *e = order[i];
        MDB_val k = acr__val(e->key, e->klen), v = acr__val(e->val, e->vlen);
        if (e->state == ACR__ROW_PRESENT) /* into empty tables, in key order: append */
            rc = acr__dput(tx, e->db, &k, &v, c->empty ? MDB_APPEND : 0);
        else if (!c->empty && (rc = acr__ddel(tx, e->db, &k)) == MDB_NOTFOUND)
            rc = 0;
        if (rc != 0)
            rc = acr__tx_fail(tx, rc, err, acr__db_name(e->db));
    }
    free(order);
    acr__cache_clear(c);
    c->empty = false; /* the tables hold rows now (or might) */
    return rc;
}

bool acr__replica_marked(MDB_txn *txn, const MDB_dbi *dbi)
{
    MDB_val k = acr__val(ACR__REPLICA_MARKER_KEY, strlen(ACR__REPLICA_MARKER_KEY)), v;
    return mdb_get(txn, dbi[ACR_DB_META], &k, &v) == 0;
}

int acr__pseq_marker_covers(MDB_txn *txn, MDB_dbi dbi, uint64_t head, acr_err_t *err)
{
    uint8_t key[ACR__PSEQ_KEY_LEN];
    acr__pseq_key(ACR__PSEQ_MARKER_PERIOD, ACR__PSEQ_MARKER_SEQ, key);
    MDB_val k = {.mv_size = sizeof key, .mv_data = key}, v;
    int rc = mdb_get(txn, dbi, &k, &v);
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc != 0)
        return acr__mdb_err(rc, err, "period_seqs");
    const uint8_t *p = v.mv_data;
    return v.mv_size == ACR__PSEQ_MARKER_LEN && p[0] == ACR__PSEQ_FORMAT &&
           acr__be_u64(p + 1) == 1 && acr__be_u64(p + 9) == head;
}
