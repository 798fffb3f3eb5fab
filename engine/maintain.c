/* maintain.c - whole-ledger work: verify, rebuild, stats and backup.
 *
 * Every derived table (ids, streams, the validation state and the
 * projections) is a pure function of the log. rebuild empties them and
 * replays the log through the same code the append path uses, in one write
 * transaction; verify replays into a scratch LMDB environment and compares
 * each derived table with the live one key by key, after checking the whole
 * hash chain from the stored bytes.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#define XXH_STATIC_LINKING_ONLY
#include <xxhash.h>

#include "internal.h"

/* Replays one stored event into tx's derived tables. */
static int replay_one(acr__txn_t *tx, const acr_event_t *ev, acr_err_t *err)
{
    int rc = acr__state_apply(tx, ev, err);
    if (rc != 0) {
        if (acr_err_exit_code(rc) == 3 || acr_err_exit_code(rc) == 4)
            return acr_err_set(err, ACR_EMISMATCH, "seq %llu no longer passes validation (%s)",
                               (unsigned long long)ev->seq, acr_err_name(rc));
        return rc;
    }
    uint8_t sv[8], vv[8];
    acr__u64_be(ev->seq, sv);
    acr__u64_be(ev->version, vv);
    char stream[ACR_STRING_LEN_MAX + 16];
    size_t stream_len = acr_event_stream(ev, stream, sizeof stream);
    MDB_val k = acr__val(ev->id.ptr, ev->id.len), v = acr__val(sv, 8);
    MDB_val sk = acr__val(stream, stream_len), svv = acr__val(vv, 8);
    if ((rc = mdb_put(tx->txn, tx->dbi[ACR_DB_IDS], &k, &v, 0)) != 0 ||
        (rc = mdb_put(tx->txn, tx->dbi[ACR_DB_STREAMS], &sk, &svv, 0)) != 0)
        return acr__tx_fail(tx, rc, err, "replay");
    return 0;
}

/* Iterates the log of read_txn checking the chain; replays into tx when not NULL. */
static int scan_log(acr_ledger_t *l, MDB_txn *read_txn, acr__txn_t *tx, uint64_t *out_events,
                    uint8_t out_head[ACR_HASH_LEN], uint64_t *bad_seq,
                    void (*progress)(uint64_t, uint64_t), acr_err_t *err)
{
    MDB_cursor *cur;
    MDB_stat st;
    int rc = mdb_stat(read_txn, l->dbi[ACR_DB_LOG], &st);
    if (rc == 0)
        rc = mdb_cursor_open(read_txn, l->dbi[ACR_DB_LOG], &cur);
    if (rc != 0)
        return acr__mdb_err(rc, err, "log");
    uint8_t prev[ACR_HASH_LEN];
    XXH128_canonical_t c;
    XXH128_canonicalFromHash(&c, XXH3_128bits(l->cfg.ledger_id, sizeof l->cfg.ledger_id));
    memcpy(prev, c.digest, ACR_HASH_LEN);
    uint64_t seq = 0;
    MDB_val k, v;
    acr_event_t ev;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        seq++;
        const uint8_t *p = v.mv_data;
        bool ok = k.mv_size == 8 && acr__be_u64(k.mv_data) == seq && v.mv_size > ACR_HASH_LEN;
        if (ok) {
            XXH3_state_t hs;
            XXH3_128bits_reset(&hs);
            XXH3_128bits_update(&hs, prev, ACR_HASH_LEN);
            XXH3_128bits_update(&hs, p + ACR_HASH_LEN, v.mv_size - ACR_HASH_LEN);
            XXH128_canonicalFromHash(&c, XXH3_128bits_digest(&hs));
            ok = memcmp(c.digest, p, ACR_HASH_LEN) == 0 &&
                 acr_record_decode(p + ACR_HASH_LEN, v.mv_size - ACR_HASH_LEN, &ev) == 0;
        }
        if (!ok) {
            *bad_seq = seq;
            mdb_cursor_close(cur);
            return acr_err_set(err, ACR_ECHAIN_BROKEN,
                               "seq %llu: stored hash, content or position does not match the "
                               "chain", (unsigned long long)seq);
        }
        memcpy(prev, p, ACR_HASH_LEN);
        ev.seq = seq;
        if (tx != NULL && (rc = replay_one(tx, &ev, err)) != 0) {
            mdb_cursor_close(cur);
            return rc;
        }
        if (progress != NULL && (seq & 0xffff) == 0)
            progress(seq, st.ms_entries);
    }
    mdb_cursor_close(cur);
    if (rc != MDB_NOTFOUND)
        return tx ? acr__tx_fail(tx, rc, err, "log") : acr__mdb_err(rc, err, "log");
    if (progress != NULL)
        progress(seq, st.ms_entries);
    *out_events = seq;
    memcpy(out_head, prev, ACR_HASH_LEN);
    return 0;
}

int acr__replay_into(acr_ledger_t *l, MDB_txn *read_txn, acr__txn_t *tx,
                     void (*progress)(uint64_t done, uint64_t total), acr_err_t *err)
{
    uint64_t events, bad = 0;
    uint8_t head[ACR_HASH_LEN];
    int rc = mdb_put(tx->txn, tx->dbi[ACR_DB_PIPELINE], &(MDB_val){6, "stages"},
                     &(MDB_val){strlen(ACR__DEFAULT_PIPELINE_JSON),
                                (void *)ACR__DEFAULT_PIPELINE_JSON},
                     0);
    if (rc != 0)
        return acr__tx_fail(tx, rc, err, "pipeline");
    return scan_log(l, read_txn, tx, &events, head, &bad, progress, err);
}

static int rebuild_once(acr_ledger_t *l, void (*progress)(uint64_t, uint64_t), acr_err_t *err)
{
    acr__txn_t tx = {.ledger = l, .dbi = l->dbi, .utc_offset_min = l->cfg.utc_offset_min};
    acr_buf_init(&tx.scratch);
    acr_buf_init(&tx.scratch2);
    int rc = mdb_txn_begin(l->env, NULL, 0, &tx.txn);
    if (rc != 0) {
        rc = acr__tx_fail(&tx, rc, err, "rebuild");
    } else {
        for (int db = 0; rc == 0 && db < ACR_DB__COUNT; db++)
            if (acr__db_derived(db) && (rc = mdb_drop(tx.txn, l->dbi[db], 0)) != 0)
                rc = acr__tx_fail(&tx, rc, err, "emptying a table");
        if (rc == 0)
            rc = acr__replay_into(l, tx.txn, &tx, progress, err);
        if (rc == 0 && (rc = mdb_txn_commit(tx.txn)) != 0)
            rc = acr__tx_fail(&tx, rc, err, "commit");
        else if (rc != 0)
            mdb_txn_abort(tx.txn);
    }
    acr_buf_destroy(&tx.scratch);
    acr_buf_destroy(&tx.scratch2);
    return rc == 0 ? 0 : (tx.mdb_rc == MDB_MAP_FULL ? -MDB_MAP_FULL : rc);
}

int acr_ledger_rebuild(acr_ledger_t *l, void (*progress)(uint64_t, uint64_t), acr_err_t *err)
{
    for (;;) {
        pthread_rwlock_rdlock(&l->map_lock);
        int rc = rebuild_once(l, progress, err);
        pthread_rwlock_unlock(&l->map_lock);
        if (rc != -MDB_MAP_FULL)
            return rc;
        MDB_envinfo info;
        pthread_rwlock_wrlock(&l->map_lock);
        mdb_env_info(l->env, &info);
        rc = mdb_env_set_mapsize(l->env, info.me_mapsize * 2);
        pthread_rwlock_unlock(&l->map_lock);
        if (rc != 0)
            return acr__mdb_err(rc, err, "growing the map");
    }
}

/* Compares one derived table of the live snapshot with the replayed one. */
static int compare_table(MDB_txn *live, MDB_dbi live_dbi, MDB_txn *fresh, MDB_dbi fresh_dbi,
                         char *bad_key, size_t bad_key_len)
{
    MDB_cursor *a, *b;
    if (mdb_cursor_open(live, live_dbi, &a) != 0)
        return -1;
    if (mdb_cursor_open(fresh, fresh_dbi, &b) != 0) {
        mdb_cursor_close(a);
        return -1;
    }
    MDB_val ka, va, kb, vb;
    int ra = mdb_cursor_get(a, &ka, &va, MDB_FIRST), rb = mdb_cursor_get(b, &kb, &vb, MDB_FIRST);
    int differ = 0;
    while (ra == 0 || rb == 0) {
        bool same = ra == 0 && rb == 0 && ka.mv_size == kb.mv_size && va.mv_size == vb.mv_size &&
                    memcmp(ka.mv_data, kb.mv_data, ka.mv_size) == 0 &&
                    memcmp(va.mv_data, vb.mv_data, va.mv_size) == 0;
        if (!same) {
            const MDB_val *k = ra == 0 ? &ka : &kb;
            size_t n = 0;
            for (size_t i = 0; i < k->mv_size && n + 4 < bad_key_len; i++) {
                unsigned char ch = ((const unsigned char *)k->mv_data)[i];
                n += (size_t)snprintf(bad_key + n, bad_key_len - n, ch >= 0x20 && ch < 0x7f ? "%c"
                                                                     : "\\x%02x", ch);
            }
            differ = 1;
            break;
        }
        ra = mdb_cursor_get(a, &ka, &va, MDB_NEXT);
        rb = mdb_cursor_get(b, &kb, &vb, MDB_NEXT);
    }
    mdb_cursor_close(a);
    mdb_cursor_close(b);
    return differ;
}

static void remove_scratch(const char *dir)
{
    char path[4096 + 16];
    snprintf(path, sizeof path, "%s/data.mdb", dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/lock.mdb", dir);
    unlink(path);
    rmdir(dir);
}

/* Replays the live snapshot into a scratch environment and compares. */
static int verify_projections(acr_ledger_t *l, MDB_txn *live, acr_verify_result_t *out,
                              void (*progress)(uint64_t, uint64_t), acr_err_t *err)
{
    const char *tmp = getenv("TMPDIR");
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/accrue-verify-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (mkdtemp(dir) == NULL)
        return acr_err_set(err, ACR_EIO, "cannot create a scratch folder: %s", strerror(errno));
    MDB_envinfo info;
    mdb_env_info(l->env, &info);
    MDB_env *env;
    acr__txn_t tx = {.ledger = l, .utc_offset_min = l->cfg.utc_offset_min};
    MDB_dbi dbi[ACR_DB__COUNT];
    tx.dbi = dbi;
    acr_buf_init(&tx.scratch);
    acr_buf_init(&tx.scratch2);
    int rc = acr__env_open(dir, true, (uint64_t)info.me_mapsize, &env, dbi, err);
    if (rc == 0) {
        int mrc = mdb_txn_begin(env, NULL, 0, &tx.txn);
        rc = mrc ? acr__mdb_err(mrc, err, "scratch") : 0;
        if (rc == 0)
            rc = acr__replay_into(l, live, &tx, progress, err);
        for (int db = 0; rc == 0 && db < ACR_DB__COUNT; db++) {
            if (!acr__db_derived(db))
                continue;
            int d = compare_table(live, l->dbi[db], tx.txn, dbi[db], out->bad_key,
                                  sizeof out->bad_key);
            if (d != 0) {
                snprintf(out->bad_table, sizeof out->bad_table, "%s", acr__db_name(db));
                rc = acr_err_set(err, ACR_EMISMATCH, "table %s differs from a fresh replay at "
                                 "key %s", acr__db_name(db), out->bad_key);
            }
        }
        if (tx.txn != NULL)
            mdb_txn_abort(tx.txn);
        mdb_env_close(env);
    }
    acr_buf_destroy(&tx.scratch);
    acr_buf_destroy(&tx.scratch2);
    remove_scratch(dir);
    return rc;
}

int acr_ledger_verify(acr_ledger_t *l, acr_verify_result_t *out,
                      void (*progress)(uint64_t done, uint64_t total), acr_err_t *err)
{
    memset(out, 0, sizeof *out);
    pthread_rwlock_rdlock(&l->map_lock);
    MDB_txn *live;
    int rc = mdb_txn_begin(l->env, NULL, MDB_RDONLY, &live);
    if (rc != 0) {
        pthread_rwlock_unlock(&l->map_lock);
        return acr__mdb_err(rc, err, "verify");
    }
    rc = scan_log(l, live, NULL, &out->events, out->head_hash, &out->bad_seq, progress, err);
    if (rc == 0)
        rc = verify_projections(l, live, out, NULL, err);
    mdb_txn_abort(live);
    pthread_rwlock_unlock(&l->map_lock);
    return rc;
}

int acr_ledger_stats(acr_ledger_t *l, acr_stats_t *out, acr_err_t *err)
{
    memset(out, 0, sizeof *out);
    acr_reader_t *r;
    int rc = acr_reader_open(l, &r, err);
    if (rc != 0)
        return rc;
    out->head_seq = acr_reader_head_seq(r);
    acr_reader_head_hash(r, out->head_hash);
    MDB_txn *txn = NULL;
    rc = mdb_txn_begin(l->env, NULL, MDB_RDONLY, &txn);
    MDB_cursor *cur;
    if (rc == 0 && (rc = mdb_cursor_open(txn, l->dbi[ACR_DB_LOG], &cur)) == 0) {
        MDB_val k, v;
        while ((rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) == 0) {
            const uint8_t *p = v.mv_data;
            size_t t = v.mv_size > ACR_HASH_LEN + ACR_RECORD_CONTENT_OFF
                           ? p[ACR_HASH_LEN + ACR_RECORD_CONTENT_OFF] : 0;
            out->events++;
            out->by_type[t < ACR_EV__COUNT ? t : 0]++;
        }
        mdb_cursor_close(cur);
        rc = rc == MDB_NOTFOUND ? 0 : rc;
    }
    MDB_envinfo info;
    MDB_stat st;
    mdb_env_info(l->env, &info);
    mdb_env_stat(l->env, &st);
    out->map_bytes = info.me_mapsize;
    out->used_bytes = (uint64_t)(info.me_last_pgno + 1) * st.ms_psize;
    if (txn != NULL)
        mdb_txn_abort(txn);
    acr_reader_close(r);
    char path[4096 + 16];
    struct stat fs;
    snprintf(path, sizeof path, "%s/data.mdb", l->path);
    if (stat(path, &fs) == 0)
        out->file_bytes = (uint64_t)fs.st_size;
    return rc ? acr__mdb_err(rc, err, "stats") : 0;
}

int acr_ledger_backup(acr_ledger_t *l, const char *dest, acr_err_t *err)
{
    if (mkdir(dest, 0755) != 0 && errno != EEXIST)
        return acr_err_set(err, ACR_EIO, "cannot create %s: %s", dest, strerror(errno));
    DIR *d = opendir(dest);
    if (d == NULL)
        return acr_err_set(err, ACR_EIO, "cannot open %s: %s", dest, strerror(errno));
    struct dirent *e;
    int entries = 0;
    while ((e = readdir(d)) != NULL)
        entries += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    closedir(d);
    if (entries != 0)
        return acr_err_set(err, ACR_EEXISTS, "%s is not empty", dest);
    pthread_rwlock_rdlock(&l->map_lock);
    int rc = mdb_env_copy2(l->env, dest, MDB_CP_COMPACT);
    pthread_rwlock_unlock(&l->map_lock);
    return rc ? acr__mdb_err(rc, err, "backup") : 0;
}
