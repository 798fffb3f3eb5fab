/* layout.c - the ledger's two environments kept in step: the config record, re-applying log
 * records the derived state has not seen (catch-up), and upgrading a ledger of an earlier release
 * (one environment holding everything) to the two-environment layout.
 *
 * Catch-up. A writer commits the log, then the state; a process that dies in between, or
 * a system crash that undoes the state's last commit (MDB_NOMETASYNC), leaves the APPLIED
 * marker behind the log. Readers then see the log through the marker; the next writer (or
 * the next open) applies the missing records as a replica applies a primary's: the id
 * claimed, the stream's version the next, every rule (which the record passed when it was
 * appended, against the same state). A record that no longer passes is the mismatch a
 * replay finds: corrupt, `accrue rebuild`.
 *
 * Upgrade. Under the old environment's writer lock (so two new processes do not both
 * upgrade): state.mdb is created afresh next to data.mdb and the derived tables copied
 * into it in key order, with the marker at the log's head, and synced; then, in the same
 * write transaction of data.mdb, the derived tables are dropped, "meta" is copied to
 * "ledger" and dropped, and the transaction commits. That commit is the switch: a crash
 * before it leaves the old layout (and a state.mdb the next open discards and makes
 * again), after it the new. The log's pages stay where they were; `accrue backup` writes
 * a compacted copy, in which the log is contiguous.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "../state/state_internal.h"
#include "log_internal.h"

/* ---- The config record (the log environment's "ledger" table) ----------------- */

#define CONFIG_FORMAT 1

void acr__config_encode(const acr_config_t *cfg, uint8_t out[24])
{
    memset(out, 0, 24);
    out[0] = CONFIG_FORMAT;
    out[1] = (uint8_t)cfg->period_kind;
    uint32_t off = (uint32_t)cfg->utc_offset_min;
    for (int i = 0; i < 4; i++)
        out[2 + i] = (uint8_t)(off >> (24 - 8 * i));
    memcpy(out + 8, cfg->ledger_id, 16);
}

int acr__config_decode(const MDB_val *v, acr_config_t *cfg)
{
    const uint8_t *p = v->mv_data;
    if (v->mv_size != 24 || p[0] != CONFIG_FORMAT || p[1] > ACR_PERIOD_QUARTER)
        return ACR_ECORRUPT;
    cfg->period_kind = (acr_period_kind_t)p[1];
    uint32_t off = ((uint32_t)p[2] << 24) | ((uint32_t)p[3] << 16) | ((uint32_t)p[4] << 8) | p[5];
    cfg->utc_offset_min = (int32_t)off;
    memcpy(cfg->ledger_id, p + 8, 16);
    return 0;
}

/* ---- Applying stored records ---------------------------------------------------- */

int acr__apply_stored(acr__txn_t *tx, const acr_event_t *ev, const uint8_t prev[ACR_HASH_LEN],
                      const uint8_t *entry, size_t len, acr_err_t *err)
{
    uint8_t sv[8];
    acr__u64_be(ev->seq, sv);
    MDB_val k = acr__val(ev->id.ptr, ev->id.len), v = acr__val(sv, 8);
    int rc = acr__dput(tx, ACR_DB_IDS, &k, &v, MDB_NOOVERWRITE);
    if (rc == MDB_KEYEXIST)
        return acr_err_set(err, ACR_EMISMATCH, "seq %llu: id %.*s is already used",
                           (unsigned long long)ev->seq, (int)ev->id.len, ev->id.ptr);
    if (rc != 0)
        return acr__tx_fail(tx, rc, err, "ids");
    char stream[ACR_STRING_LEN_MAX + 16];
    size_t slen = acr_event_stream(ev, stream, sizeof stream);
    MDB_val sk = acr__val(stream, slen), svv;
    rc = mdb_get(tx->txn, tx->dbi[ACR_DB_STREAMS], &sk, &svv);
    uint64_t version = 0;
    if (rc == 0 && svv.mv_size == 8)
        version = acr__be_u64(svv.mv_data);
    else if (rc != MDB_NOTFOUND)
        return acr__tx_fail(tx, rc ? rc : MDB_CORRUPTED, err, "streams");
    if (ev->version != version + 1)
        return acr_err_set(err, ACR_EMISMATCH,
                           "seq %llu: version %llu of stream %s, the state expects %llu",
                           (unsigned long long)ev->seq, (unsigned long long)ev->version, stream,
                           (unsigned long long)version + 1);
    uint8_t vv[8];
    acr__u64_be(version + 1, vv);
    svv = acr__val(vv, 8);
    if ((rc = acr__dput(tx, ACR_DB_STREAMS, &sk, &svv, 0)) != 0)
        return acr__tx_fail(tx, rc, err, "streams");
    acr_err_t rule;
    acr_err_clear(&rule);
    if ((rc = acr__state_apply(tx, ev, &rule)) == 0)
        return acr__state_logged(tx, ev->seq, prev, entry, len, err);
    if (!acr_err_rejects_input(rc)) { /* a failure, not a rule: as it is */
        if (err != NULL)
            *err = rule;
        return rc;
    }
    return acr_err_set(err, ACR_EMISMATCH, "seq %llu (%.*s) fails %s against the state: %s",
                       (unsigned long long)ev->seq, (int)ev->id.len, ev->id.ptr,
                       acr_err_name(rc), rule.msg);
}

int acr__catch_up(acr__txn_t *tx, const acr__head_t *applied, const acr__head_t *head,
                  acr_err_t *err)
{
    acr_ledger_t *l = tx->ledger;
    if (applied->seq > head->seq)
        return acr_err_set(err, ACR_ECORRUPT,
                           "the derived state (state.mdb) was applied through seq %llu but the "
                           "log ends at %llu: run `accrue rebuild`",
                           (unsigned long long)applied->seq, (unsigned long long)head->seq);
    int rc = acr__applied_check(l, tx->ltxn, applied, err);
    if (rc != 0 || applied->seq == head->seq)
        return rc;
    MDB_cursor *cur;
    if ((rc = mdb_cursor_open(tx->ltxn, l->dbi[ACR_DB_LOG], &cur)) != 0)
        return acr__tx_fail(tx, rc, err, "log");
    uint8_t key[8], prev[ACR_HASH_LEN];
    memcpy(prev, applied->hash, ACR_HASH_LEN);
    acr__u64_be(applied->seq + 1, key);
    MDB_val k = acr__val(key, 8), v;
    acr__cache_clear(&tx->cache);
    uint64_t seq = applied->seq;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_KEY); rc == 0 && seq < head->seq;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        seq++;
        const uint8_t *p = v.mv_data;
        acr_event_t ev;
        bool ok = k.mv_size == 8 && acr__be_u64(k.mv_data) == seq && v.mv_size > ACR_HASH_LEN;
        ok = ok && acr__chain_ok(prev, p, v.mv_size) &&
             acr_record_decode(p + ACR_HASH_LEN, v.mv_size - ACR_HASH_LEN, &ev) == 0;
        if (!ok) {
            mdb_cursor_close(cur);
            return acr_err_set(err, ACR_ECHAIN_BROKEN,
                               "seq %llu: stored hash, content or position does not match the "
                               "chain", (unsigned long long)seq);
        }
        ev.seq = seq;
        rc = acr__apply_stored(tx, &ev, prev, p, v.mv_size, err);
        memcpy(prev, p, ACR_HASH_LEN);
        if (rc != 0) {
            mdb_cursor_close(cur);
            return rc;
        }
    }
    mdb_cursor_close(cur);
    if (rc != 0 && rc != MDB_NOTFOUND)
        return acr__tx_fail(tx, rc, err, "log");
    if (seq != head->seq)
        return acr_err_set(err, ACR_ECHAIN_BROKEN, "seq %llu is missing from the log",
                           (unsigned long long)seq + 1);
    if ((rc = acr__tx_flush(tx, err)) != 0)
        return rc;
    rc = acr__tx_seal(tx, head);
    return rc ? acr__tx_fail(tx, rc, err, "applied") : 0;
}

int acr__catch_up_open(acr_ledger_t *l, acr_err_t *err)
{
    for (;;) {
        MDB_txn *s = NULL, *g = NULL;
        acr__head_t applied, head;
        pthread_rwlock_rdlock(&l->map_lock);
        int rc = acr__read_begin(l->senv, &s);
        if (rc == 0)
            rc = acr__applied_get(l, s, &applied);
        if (rc == 0 && (rc = acr__read_begin(l->env, &g)) == 0)
            rc = acr__log_head(l, g, &head);
        if (g != NULL)
            mdb_txn_abort(g);
        if (s != NULL)
            mdb_txn_abort(s);
        pthread_rwlock_unlock(&l->map_lock);
        if (rc == 0 && applied.seq == head.seq)
            return 0; /* in step (the hashes are compared by whoever writes next) */
        if (rc != 0 && rc != MDB_NOTFOUND)
            return acr__mdb_err(rc, err, "opening the derived state");
        if (rc == MDB_NOTFOUND) { /* a state.mdb made afresh: everything is to apply */
            applied.seq = 0;
            acr__genesis(l, applied.hash);
        }
        pthread_rwlock_rdlock(&l->map_lock);
        acr__txn_t tx = {.ledger = l, .dbi = l->dbi, .utc_offset_min = l->cfg.utc_offset_min};
        acr_buf_init(&tx.scratch);
        acr_buf_init(&tx.scratch2);
        bool log_done = false;
        rc = acr__wtxn_begin(l, &tx);
        int code = rc ? acr__mdb_err(rc, err, "catch-up") : 0;
        if (rc == 0) {
            /* under the locks: what another writer left, if it caught up meanwhile */
            int arc = acr__applied_get(l, tx.txn, &applied);
            if (arc == MDB_NOTFOUND) {
                applied.seq = 0;
                acr__genesis(l, applied.hash);
            } else if (arc != 0) {
                code = acr__mdb_err(arc, err, "applied");
            }
            if (code == 0 && (arc = acr__log_head(l, tx.ltxn, &head)) != 0)
                code = acr__mdb_err(arc, err, "log");
            if (code == 0)
                code = acr__catch_up(&tx, &applied, &head, err);
            if (code == 0 && (rc = acr__wtxn_commit(&tx, &log_done)) != 0)
                code = acr__commit_err(l, rc, err);
        }
        acr__wtxn_end(&tx);
        if (rc == MDB_MAP_FULL || tx.mdb_rc == MDB_MAP_FULL) {
            if ((code = acr__grow_maps(l, err)) != 0)
                return code;
            acr_err_clear(err);
            continue;
        }
        return code;
    }
}

/* ---- Upgrade from one environment ------------------------------------------ */

/* Copies table name of txn `from` (absent: nothing) into the empty table to_dbi of `to`,
 * in key order. MDB codes. */
static int copy_named(MDB_txn *from, const char *name, MDB_txn *to, MDB_dbi to_dbi,
                      MDB_dbi *out_from)
{
    MDB_cursor *a, *b;
    int rc = mdb_dbi_open(from, name, 0, out_from);
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc != 0 || (rc = mdb_cursor_open(from, *out_from, &a)) != 0)
        return rc;
    if ((rc = mdb_cursor_open(to, to_dbi, &b)) != 0) {
        mdb_cursor_close(a);
        return rc;
    }
    MDB_val k, v;
    for (rc = mdb_cursor_get(a, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(a, &k, &v, MDB_NEXT))
        if ((rc = mdb_cursor_put(b, &k, &v, MDB_APPEND)) != 0)
            break;
    mdb_cursor_close(a);
    mdb_cursor_close(b);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

static void state_paths(const char *dir, char *file, char *lock, size_t n)
{
    snprintf(file, n, "%s/state.mdb", dir);
    snprintf(lock, n, "%s/state.mdb-lock", dir);
}

/* Writes state.mdb from the old environment's write transaction w. MDB codes or ACR_E*
 * (err set). */
static int write_state(const char *dir, MDB_env *old, MDB_txn *w, acr_config_t *cfg,
                       MDB_dbi dbi[ACR_DB__COUNT], acr_err_t *err)
{
    char file[4096 + 32], lock[4096 + 32];
    state_paths(dir, file, lock, sizeof file);
    unlink(file); /* a state.mdb of an upgrade that died before its switch */
    unlink(lock);
    MDB_envinfo info;
    mdb_env_info(old, &info);
    MDB_env *senv;
    int rc = acr__env_open(file, ACR__ENV_STATE, true, info.me_mapsize, 0, &senv, dbi, NULL,
                           err);
    if (rc != 0)
        return rc;
    MDB_txn *s;
    if ((rc = mdb_txn_begin(senv, NULL, 0, &s)) != 0) {
        mdb_env_close(senv);
        return acr__mdb_err(rc, err, "upgrade");
    }
    MDB_dbi from;
    for (int db = ACR__DB_LOG_LAST + 1; rc == 0 && db < ACR_DB__COUNT; db++)
        if (acr__db_derived(db))
            rc = copy_named(w, acr__db_name(db), s, dbi[db], &from);
    /* the marker at the old log's head */
    acr_ledger_t tmp = {.cfg = *cfg};
    MDB_dbi log_dbi;
    acr__head_t head;
    if (rc == 0 && (rc = mdb_dbi_open(w, "log", 0, &log_dbi)) == 0) {
        tmp.dbi[ACR_DB_LOG] = log_dbi;
        for (int db = ACR__DB_LOG_LAST + 1; db < ACR_DB__COUNT; db++)
            tmp.dbi[db] = dbi[db];
        if ((rc = acr__log_head(&tmp, w, &head)) == 0 &&
            (rc = acr__applied_put(&tmp, s, &head)) == 0)
            rc = acr__dg_rescan(&tmp, s);
    }
    rc = rc == 0 ? mdb_txn_commit(s) : (mdb_txn_abort(s), rc);
    if (rc == 0)
        rc = mdb_env_sync(senv, 1); /* the meta page too, before the switch */
    mdb_env_close(senv);
    return rc ? acr__mdb_err(rc, err, "writing state.mdb") : 0;
}

int acr__upgrade(const char *dir, MDB_env *old, acr_config_t *cfg, acr_err_t *err)
{
    MDB_txn *w;
    MDB_dbi meta, ledger, dbi[ACR_DB__COUNT];
    int rc = mdb_txn_begin(old, NULL, 0, &w);
    if (rc != 0)
        return acr__mdb_err(rc, err, "upgrading the ledger (it must be writable by you)");
    if (mdb_dbi_open(w, acr__db_name(ACR_DB_META), 0, &ledger) == 0) {
        mdb_txn_abort(w); /* another process upgraded it meanwhile */
        return 0;
    }
    MDB_val k = acr__val("config", 6), v;
    if ((rc = mdb_dbi_open(w, "meta", 0, &meta)) == 0 && (rc = mdb_get(w, meta, &k, &v)) == 0)
        rc = acr__config_decode(&v, cfg);
    int code = rc == ACR_ECORRUPT ? acr_err_set(err, rc, "the ledger's config record is damaged")
               : rc != 0          ? acr__mdb_err(rc, err, "upgrade")
                                  : write_state(dir, old, w, cfg, dbi, err);
    MDB_dbi from;
    for (int db = ACR__DB_LOG_LAST + 1; code == 0 && db < ACR_DB__COUNT; db++) {
        if (!acr__db_derived(db) || (rc = mdb_dbi_open(w, acr__db_name(db), 0, &from)) ==
                                        MDB_NOTFOUND)
            continue;
        if (rc == 0)
            rc = mdb_drop(w, from, 1);
        if (rc != 0)
            code = acr__mdb_err(rc, err, "upgrade");
    }
    if (code == 0 && ((rc = mdb_dbi_open(w, acr__db_name(ACR_DB_META), MDB_CREATE, &ledger)) != 0 ||
                      (rc = copy_named(w, "meta", w, ledger, &from)) != 0 ||
                      (rc = mdb_drop(w, meta, 1)) != 0))
        code = acr__mdb_err(rc, err, "upgrade");
    if (code == 0 && (rc = mdb_txn_commit(w)) != 0)
        code = acr__mdb_err(rc, err, "upgrade");
    else if (code != 0)
        mdb_txn_abort(w);
    return code;
}
