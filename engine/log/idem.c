/* idem.c - the records of idempotency keys (idem.h): encoding, look-up, storing, pruning.
 *
 * One row per key in the `idem` table, keyed by scope \0 key:
 *
 *   [fmt 1][created_ms int64 BE][request hash 16][status u16 BE][ctype len u8][ctype][body]
 *
 * The table is primary data beside the log (like `tokens`): rebuild and verify touch only
 * the derived tables, so they neither recompute nor compare it, and backup copies it.
 *
 * Pruning is opportunistic and bounded: every write transaction that stores a key also
 * visits the next PRUNE_SCAN rows after where the last visit stopped (wrapping at the end)
 * and deletes those older than ACR_IDEM_TTL_MS. A write stores at most one row per request
 * and sweeps PRUNE_SCAN, so the sweep always outruns the growth, and no transaction pays
 * for more than a few dozen rows. An expired row still present counts as absent.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "accrue/idem.h"
#include "log_internal.h"

#define REC_FMT 1
#define REC_HEAD (1 + 8 + ACR_IDEM_HASH_LEN + 2 + 1) /* bytes before the content type */
#define PRUNE_SCAN 32                                 /* rows visited per storing transaction */

_Static_assert(ACR_IDEM_KEY_MAX <= ACR_ROW_KEY_MAX, "the prune position holds any key");
_Static_assert(ACR_IDEM_CTYPE_MAX <= 256, "a content type's length is one byte");

bool acr_idem_init(acr_idem_t *idem, const char *scope, const char *key)
{
    memset(idem, 0, sizeof *idem);
    acr_buf_init(&idem->body);
    size_t s = strlen(scope), k = strlen(key);
    if (s + 1 + k > sizeof idem->key)
        return false;
    memcpy(idem->key, scope, s);
    idem->key[s] = '\0';
    memcpy(idem->key + s + 1, key, k);
    idem->key_len = s + 1 + k;
    return true;
}

void acr_idem_destroy(acr_idem_t *idem)
{
    if (idem != NULL)
        acr_buf_destroy(&idem->body);
}

static int64_t be_i64(const uint8_t *p)
{
    return (int64_t)acr__be_u64(p);
}

/* Decodes a stored row into idem's answer fields. false when it does not decode. */
static bool decode(const MDB_val *v, acr_idem_t *idem, uint8_t hash[ACR_IDEM_HASH_LEN])
{
    const uint8_t *p = v->mv_data;
    if (v->mv_size < REC_HEAD || p[0] != REC_FMT)
        return false;
    size_t clen = p[REC_HEAD - 1];
    if (v->mv_size < REC_HEAD + clen || clen >= sizeof idem->ctype)
        return false;
    idem->at_ms = be_i64(p + 1);
    memcpy(hash, p + 9, ACR_IDEM_HASH_LEN);
    idem->status = (p[9 + ACR_IDEM_HASH_LEN] << 8) | p[10 + ACR_IDEM_HASH_LEN];
    memcpy(idem->ctype, p + REC_HEAD, clen);
    idem->ctype[clen] = '\0';
    acr_buf_reset(&idem->body);
    return acr_buf_append(&idem->body, p + REC_HEAD + clen, v->mv_size - REC_HEAD - clen) == 0;
}

static bool expired(int64_t at_ms, int64_t now_ms)
{
    return now_ms - at_ms > ACR_IDEM_TTL_MS;
}

int acr__idem_get(MDB_txn *txn, MDB_dbi dbi, acr_idem_t *idem, int64_t now_ms)
{
    MDB_val k = acr__val(idem->key, idem->key_len), v;
    idem->state = ACR_IDEM_NEW;
    int rc = mdb_get(txn, dbi, &k, &v);
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc != 0)
        return rc;
    uint8_t hash[ACR_IDEM_HASH_LEN];
    acr_idem_t found;
    acr_buf_init(&found.body);
    if (!decode(&v, &found, hash)) {
        acr_buf_destroy(&found.body);
        return MDB_CORRUPTED;
    }
    if (!expired(found.at_ms, now_ms)) {
        bool same = memcmp(hash, idem->req_hash, ACR_IDEM_HASH_LEN) == 0;
        idem->state = same ? ACR_IDEM_REPLAY : ACR_IDEM_CONFLICT;
        idem->at_ms = found.at_ms;
        if (same) {
            idem->status = found.status;
            memcpy(idem->ctype, found.ctype, sizeof idem->ctype);
            acr_buf_t t = idem->body;
            idem->body = found.body;
            found.body = t;
        }
    }
    acr_buf_destroy(&found.body);
    return 0;
}

bool acr__idem_fits(const acr_idem_t *idem)
{
    return idem->body.len <= ACR_IDEM_ANSWER_MAX && strlen(idem->ctype) < ACR_IDEM_CTYPE_MAX &&
           idem->status > 0 && idem->status < 1000;
}

int acr__idem_put(MDB_txn *txn, MDB_dbi dbi, const acr_idem_t *idem, int64_t now_ms)
{
    size_t clen = strlen(idem->ctype);
    MDB_val k = acr__val(idem->key, idem->key_len);
    MDB_val v = acr__val(NULL, REC_HEAD + clen + idem->body.len);
    int rc = mdb_put(txn, dbi, &k, &v, MDB_RESERVE);
    if (rc != 0)
        return rc;
    uint8_t *p = v.mv_data;
    p[0] = REC_FMT;
    acr__u64_be((uint64_t)now_ms, p + 1);
    memcpy(p + 9, idem->req_hash, ACR_IDEM_HASH_LEN);
    p[9 + ACR_IDEM_HASH_LEN] = (uint8_t)(idem->status >> 8);
    p[10 + ACR_IDEM_HASH_LEN] = (uint8_t)idem->status;
    p[REC_HEAD - 1] = (uint8_t)clen;
    memcpy(p + REC_HEAD, idem->ctype, clen);
    if (idem->body.len > 0)
        memcpy(p + REC_HEAD + clen, idem->body.data, idem->body.len);
    return 0;
}

int acr__idem_prune(acr_ledger_t *l, MDB_txn *txn, int64_t now_ms)
{
    MDB_cursor *cur;
    int rc = mdb_cursor_open(txn, l->dbi[ACR_DB_IDEM], &cur);
    if (rc != 0)
        return rc;
    MDB_val k = acr__val(l->idem_prune_key, l->idem_prune_len), v;
    rc = l->idem_prune_len ? mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE)
                           : mdb_cursor_get(cur, &k, &v, MDB_FIRST);
    for (int i = 0; i < PRUNE_SCAN && rc == 0; i++) {
        const uint8_t *p = v.mv_data;
        bool stale = v.mv_size < REC_HEAD || expired(be_i64(p + 1), now_ms);
        if (stale && (rc = mdb_cursor_del(cur, 0)) != 0)
            break;
        /* after a delete LMDB's MDB_NEXT answers the row the cursor slid onto */
        rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    if (rc == 0 && k.mv_size <= sizeof l->idem_prune_key) {
        memcpy(l->idem_prune_key, k.mv_data, k.mv_size);
        l->idem_prune_len = k.mv_size;
    } else if (rc == MDB_NOTFOUND) {
        l->idem_prune_len = 0; /* the end: the next scan starts over */
        rc = 0;
    }
    mdb_cursor_close(cur);
    return rc;
}

int acr_idem_lookup(acr_ledger_t *l, acr_idem_t *idem, int64_t now_ms, acr_err_t *err)
{
    acr_reader_t *r;
    int rc = acr_reader_open(l, &r, err);
    if (rc != 0)
        return rc;
    int mrc = acr__idem_get(acr__reader_txn(r, ACR_DB_IDEM), l->dbi[ACR_DB_IDEM], idem, now_ms);
    acr_reader_close(r);
    return mrc ? acr__mdb_err(mrc, err, "idem") : 0;
}
