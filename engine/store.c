/* store.c - the LMDB environment of a ledger: opening it with every table,
 * mapping LMDB errors to accrue codes, and the tiny record encoding used by
 * the state tables.
 *
 * The environment is opened without MDB_NOSYNC, MDB_WRITEMAP or
 * MDB_MAPASYNC: a commit returns only once its pages and meta page are on
 * disk. MDB_NOTLS lets read transactions move between threads (the server's
 * worker pool).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include "internal.h"

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
static int check_file_size(MDB_env *env, const char *dir, acr_err_t *err)
{
    MDB_envinfo info;
    MDB_stat st;
    struct stat fs;
    char path[4096 + 16];
    snprintf(path, sizeof path, "%s/data.mdb", dir);
    if (mdb_env_info(env, &info) != 0 || mdb_env_stat(env, &st) != 0 || stat(path, &fs) != 0)
        return 0; /* nothing to compare: LMDB reports its own errors later */
    uint64_t need = ((uint64_t)info.me_last_pgno + 1) * st.ms_psize;
    if ((uint64_t)fs.st_size < need)
        return acr_err_set(err, ACR_ECORRUPT,
                           "%s is truncated: %llu bytes, its last commit uses %llu", path,
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

int acr__env_open(const char *dir, bool create, uint64_t map_size_bytes, MDB_env **out_env,
                  MDB_dbi dbi[ACR_DB__COUNT], acr_err_t *err)
{
    MDB_env *env = NULL;
    int rc = mdb_env_create(&env);
    if (rc != 0)
        return acr__mdb_err(rc, err, "mdb_env_create");
    mdb_env_set_maxdbs(env, ACR_DB__COUNT + 4);
    mdb_env_set_maxreaders(env, 510);
    if (map_size_bytes != 0)
        mdb_env_set_mapsize(env, (size_t)map_size_bytes);
    rc = mdb_env_open(env, dir, MDB_NOTLS, 0644);
    if (rc != 0) {
        mdb_env_close(env);
        if (rc == ENOENT)
            return acr_err_set(err, ACR_ENO_LEDGER, "no ledger at %s", dir);
        return acr__mdb_err(rc, err, dir);
    }
    if ((rc = check_file_size(env, dir, err)) != 0) {
        mdb_env_close(env);
        return rc;
    }
    MDB_txn *txn = NULL;
    rc = mdb_txn_begin(env, NULL, create ? 0 : MDB_RDONLY, &txn);
    for (int i = 0; rc == 0 && i < ACR_DB__COUNT; i++)
        rc = mdb_dbi_open(txn, db_table[i].name, create ? MDB_CREATE : 0, &dbi[i]);
    if (rc == 0)
        rc = mdb_txn_commit(txn); /* also for read-only: an aborted txn closes its dbi handles */
    else if (txn != NULL)
        mdb_txn_abort(txn);
    if (rc != 0) {
        mdb_env_close(env);
        if (rc == MDB_NOTFOUND)
            return acr_err_set(err, ACR_ENO_LEDGER, "no ledger at %s", dir);
        return acr__mdb_err(rc, err, "opening tables");
    }
    *out_env = env;
    return 0;
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
