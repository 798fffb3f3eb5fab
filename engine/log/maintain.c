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
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "../state/state_internal.h"
#include "log_internal.h"

/* ---- ids and streams of a replay -----------------------------------------
 *
 * A replay fills empty tables, and nothing it runs reads `ids` or `streams`:
 * their rows (event id -> seq, stream -> version) are collected in memory
 * and written at the end in key order with MDB_APPEND (for a stream, its
 * last row in log order: what one put per event would have left), instead
 * of two random B-tree inserts per event. */
typedef struct pairs {
    acr_buf_t bytes; /* records: u16 key length, key, 8-byte value */
    uint64_t *off;   /* record offsets, in log order */
    size_t n;        /* records */
    size_t cap;      /* off's capacity */
} pairs_t;

typedef struct pair_ref {
    uint64_t pre[2];    /* the key's first 16 bytes, big-endian, zero-padded */
    const uint8_t *rec; /* into pairs_t.bytes, appended in log order: its address is the order */
} pair_ref_t;

static void pairs_destroy(pairs_t *p)
{
    acr_buf_destroy(&p->bytes);
    free(p->off);
    memset(p, 0, sizeof *p);
}

static int pairs_add(pairs_t *p, const void *key, size_t klen, const uint8_t val[8])
{
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 4096;
        uint64_t *off = realloc(p->off, cap * sizeof *off);
        if (off == NULL)
            return ACR_ENOMEM;
        p->off = off;
        p->cap = cap;
    }
    uint8_t hdr[2] = {(uint8_t)(klen & 0xff), (uint8_t)(klen >> 8)};
    p->off[p->n] = p->bytes.len;
    if (klen > 0xffff || acr_buf_append(&p->bytes, hdr, 2) != 0 ||
        acr_buf_append(&p->bytes, key, klen) != 0 || acr_buf_append(&p->bytes, val, 8) != 0)
        return ACR_ENOMEM;
    p->n++;
    return 0;
}

static size_t rec_klen(const uint8_t *rec)
{
    return (size_t)rec[0] | ((size_t)rec[1] << 8);
}

/* LMDB's default order (memcmp, then the shorter first), ties by log order. The prefixes
 * decide most pairs without touching the records (a cache miss each, in random order): where
 * they differ, the first differing byte lies in them, and a zero pad sorts below any byte but
 * a zero one, which makes the prefixes equal and leaves it to the full comparison. */
static int pair_order(const void *a, const void *b)
{
    const pair_ref_t *x = a, *y = b;
    if (x->pre[0] != y->pre[0])
        return x->pre[0] < y->pre[0] ? -1 : 1;
    if (x->pre[1] != y->pre[1])
        return x->pre[1] < y->pre[1] ? -1 : 1;
    size_t xl = rec_klen(x->rec), yl = rec_klen(y->rec);
    int d = memcmp(x->rec + 2, y->rec + 2, xl < yl ? xl : yl);
    if (d == 0)
        d = (xl > yl) - (xl < yl);
    return d ? d : (x->rec > y->rec) - (x->rec < y->rec);
}

/* p's records in key order (refs NULL when out of memory). */
static void pairs_sort(const pairs_t *p, pair_ref_t **out)
{
    pair_ref_t *refs = malloc((p->n ? p->n : 1) * sizeof *refs);
    if (refs != NULL) {
        for (size_t i = 0; i < p->n; i++) {
            const uint8_t *r = p->bytes.data + p->off[i];
            uint8_t b[16] = {0};
            size_t kl = rec_klen(r);
            memcpy(b, r + 2, kl < 16 ? kl : 16);
            refs[i] = (pair_ref_t){{acr__be_u64(b), acr__be_u64(b + 8)}, r};
        }
        qsort(refs, p->n, sizeof *refs, pair_order);
    }
    *out = refs;
}

/* ids' records sorted on a thread of their own while the replay's caller writes the other
 * tables' last rows and sorts streams' records: the two sorts take both cores. */
typedef struct pairs_sorter {
    const pairs_t *pairs;
    pair_ref_t *refs; /* sorted, NULL when out of memory */
    pthread_t th;
    bool threaded;
} pairs_sorter_t;

static void *pairs_sort_main(void *arg)
{
    pairs_sorter_t *s = arg;
    pairs_sort(s->pairs, &s->refs);
    return NULL;
}

static void pairs_sort_start(pairs_sorter_t *s, const pairs_t *pairs)
{
    memset(s, 0, sizeof *s);
    s->pairs = pairs;
    s->threaded = pthread_create(&s->th, NULL, pairs_sort_main, s) == 0;
}

static pair_ref_t *pairs_sort_join(pairs_sorter_t *s)
{
    if (s->threaded)
        pthread_join(s->th, NULL);
    else
        pairs_sort_main(s);
    s->threaded = false;
    return s->refs;
}

/* Writes the last row of each key of p (sorted: refs), in key order, into the empty table. */
static int pairs_write(const pairs_t *p, const pair_ref_t *refs, acr__txn_t *tx, int db,
                       acr_err_t *err)
{
    if (p->n == 0)
        return 0;
    if (refs == NULL)
        return acr_err_set(err, ACR_ENOMEM, "out of memory");
    MDB_cursor *cur = NULL;
    int rc = mdb_cursor_open(tx->txn, tx->dbi[db], &cur);
    for (size_t i = 0; rc == 0 && i < p->n; i++) {
        const uint8_t *r = refs[i].rec;
        size_t kl = rec_klen(r);
        if (i + 1 < p->n && rec_klen(refs[i + 1].rec) == kl &&
            memcmp(refs[i + 1].rec + 2, r + 2, kl) == 0)
            continue; /* a later row of the same key wins */
        MDB_val k = acr__val(r + 2, kl), v = acr__val(r + 2 + kl, 8);
        rc = mdb_cursor_put(cur, &k, &v, MDB_APPEND);
    }
    if (cur != NULL)
        mdb_cursor_close(cur);
    return rc ? acr__tx_fail(tx, rc, err, acr__db_name(db)) : 0;
}

/* Replays one stored event into tx's derived tables (ids and streams into
 * ids, streams). */
static int replay_one(acr__txn_t *tx, const acr_event_t *ev, const uint8_t prev[ACR_HASH_LEN],
                      const MDB_val *entry, pairs_t *ids, pairs_t *streams, acr_err_t *err)
{
    int rc = acr__state_apply(tx, ev, err);
    if (rc != 0) {
        if (acr_err_rejects_input(rc))
            return acr_err_set(err, ACR_EMISMATCH, "seq %llu no longer passes validation (%s)",
                               (unsigned long long)ev->seq, acr_err_name(rc));
        return rc;
    }
    if ((rc = acr__state_logged(tx, ev->seq, prev, entry->mv_data, entry->mv_size, err)) != 0)
        return rc;
    uint8_t sv[8], vv[8];
    acr__u64_be(ev->seq, sv);
    acr__u64_be(ev->version, vv);
    char stream[ACR_STRING_LEN_MAX + 16];
    size_t stream_len = acr_event_stream(ev, stream, sizeof stream);
    if (pairs_add(ids, ev->id.ptr, ev->id.len, sv) != 0 ||
        pairs_add(streams, stream, stream_len, vv) != 0)
        return acr_err_set(err, ACR_ENOMEM, "out of memory");
    return 0;
}

/* Iterates the log of read_txn (a transaction of the log's environment) through seq
 * `through`, checking the chain; replays into tx when not NULL. */
static int scan_log(acr_ledger_t *l, MDB_txn *read_txn, uint64_t through, acr__txn_t *tx,
                    pairs_t pairs[2], bool check_chain, uint64_t *out_events, uint8_t out_head[ACR_HASH_LEN], uint64_t *bad_seq,
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
    acr__genesis(l, prev);
    uint64_t seq = 0, total = st.ms_entries < through ? st.ms_entries : through;
    MDB_val k, v;
    acr_event_t ev;
    for (rc = through ? mdb_cursor_get(cur, &k, &v, MDB_FIRST) : MDB_NOTFOUND; rc == 0;
         rc = seq < through ? mdb_cursor_get(cur, &k, &v, MDB_NEXT) : MDB_NOTFOUND) {
        seq++;
        const uint8_t *p = v.mv_data;
        bool ok = k.mv_size == 8 && acr__be_u64(k.mv_data) == seq && v.mv_size > ACR_HASH_LEN;
        if (ok && !check_chain) { /* verified by an earlier scan of the same snapshot */
            ok = acr_record_decode(p + ACR_HASH_LEN, v.mv_size - ACR_HASH_LEN, &ev) == 0;
        } else if (ok) {
            ok = acr__chain_ok(prev, p, v.mv_size) &&
                 acr_record_decode(p + ACR_HASH_LEN, v.mv_size - ACR_HASH_LEN, &ev) == 0;
        }
        if (!ok) {
            *bad_seq = seq;
            mdb_cursor_close(cur);
            return acr_err_set(err, ACR_ECHAIN_BROKEN,
                               "seq %llu: stored hash, content or position does not match the "
                               "chain", (unsigned long long)seq);
        }
        ev.seq = seq;
        if (tx != NULL && (rc = replay_one(tx, &ev, prev, &v, &pairs[0], &pairs[1], err)) != 0) {
            mdb_cursor_close(cur);
            return rc;
        }
        memcpy(prev, p, ACR_HASH_LEN);
        if ((seq & (ACR_CANCEL_EVERY - 1)) == 0) {
            if (acr_cancel_requested()) {
                mdb_cursor_close(cur);
                return acr_cancel_error(err);
            }
            if (progress != NULL)
                progress(seq, total);
        }
    }
    mdb_cursor_close(cur);
    if (rc != MDB_NOTFOUND)
        return tx ? acr__tx_fail(tx, rc, err, "log") : acr__mdb_err(rc, err, "log");
    if (progress != NULL)
        progress(seq, total);
    if (through != UINT64_MAX && seq != through) {
        *bad_seq = seq + 1;
        return acr_err_set(err, ACR_ECHAIN_BROKEN, "seq %llu is missing from the log",
                           (unsigned long long)seq + 1);
    }
    *out_events = seq;
    memcpy(out_head, prev, ACR_HASH_LEN);
    return 0;
}

static int replay(acr_ledger_t *l, MDB_txn *read_txn, uint64_t through, acr__txn_t *tx,
                  bool check_chain, void (*progress)(uint64_t done, uint64_t total),
                  acr_err_t *err)
{
    uint64_t events, bad = 0;
    uint8_t head[ACR_HASH_LEN];
    int rc = mdb_put(tx->txn, tx->dbi[ACR_DB_PIPELINE], &(MDB_val){6, "stages"},
                     &(MDB_val){strlen(ACR__DEFAULT_PIPELINE_JSON),
                                (void *)ACR__DEFAULT_PIPELINE_JSON},
                     0);
    if (rc != 0)
        return acr__tx_fail(tx, rc, err, "pipeline");
    acr__cache_clear(&tx->cache);
    tx->cache.empty = true; /* every table starts empty: no look-up on a miss */
    pairs_t pairs[2] = {{.off = NULL}, {.off = NULL}}; /* ids, streams */
    acr_buf_init(&pairs[0].bytes);
    acr_buf_init(&pairs[1].bytes);
    rc = acr__pseq_bulk_begin(tx, err);
    if (rc == 0)
        rc = scan_log(l, read_txn, through, tx, pairs, check_chain, &events, head, &bad,
                      progress, err);
    bool sorting = rc == 0;
    pairs_sorter_t sorter;
    if (sorting)
        pairs_sort_start(&sorter, &pairs[0]);
    if (rc == 0)
        rc = acr__pseq_bulk_end(tx, err); /* before the flush: its marker is the last key */
    acr__pseq_bulk_abort(tx);
    if (rc == 0)
        rc = acr__tx_flush(tx, err); /* the cached KPI rows */
    if (sorting) {
        pair_ref_t *refs[2];
        pairs_sort(&pairs[1], &refs[1]);
        refs[0] = pairs_sort_join(&sorter);
        for (int i = 0; i < 2; i++) {
            if (rc == 0)
                rc = pairs_write(&pairs[i], refs[i], tx, i ? ACR_DB_STREAMS : ACR_DB_IDS, err);
            free(refs[i]);
        }
    }
    pairs_destroy(&pairs[0]);
    pairs_destroy(&pairs[1]);
    return rc;
}

/* ---- The scratch environment of a replay ----------------------------------
 *
 * rebuild and verify replay the log into a private LMDB environment in a
 * fresh folder of $TMPDIR: it is never committed, so it is opened with
 * MDB_NOSYNC | MDB_NOMETASYNC and, when the folder's file system has room
 * for every page the ledger uses, MDB_WRITEMAP (pages are written in the
 * map: no dirty-page list, no spilling of a huge transaction). Without that
 * room a full disk would surface as SIGBUS on a mapped page, so it falls
 * back to ordinary writes, which fail with ENOSPC instead. */
typedef struct scratch {
    char dir[4096];
    int owner_fd; /* owner.lock, flock'ed for the life of the run */
    MDB_env *env;
    MDB_dbi dbi[ACR_DB__COUNT];
    acr__txn_t tx; /* the replay's write transaction in env */
} scratch_t;

static void remove_scratch(const char *dir)
{
    static const char *const files[] = {"data.mdb", "lock.mdb", "owner.lock", "owner.lock.new"};
    char path[4096 + 16];
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        unlink(path);
    }
    rmdir(dir);
}

static const char *scratch_parent(void)
{
    const char *tmp = getenv("TMPDIR");
    return tmp != NULL && *tmp != '\0' ? tmp : "/tmp";
}

/* Removes the scratch folders of runs that died (killed, crashed): a live run holds an flock
 * on its owner.lock, which the kernel drops when the process dies, so a folder whose lock can
 * be taken is dead. A folder without owner.lock (an earlier release's, or one being created
 * this instant) is removed once it is a minute old. Best effort: errors are ignored. */
static void sweep_dead_scratch(void)
{
    const char *parent = scratch_parent();
    DIR *d = opendir(parent);
    if (d == NULL)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, "accrue-scratch-", 15) != 0)
            continue;
        char dir[4096], lock[4096 + 16];
        struct stat st;
        snprintf(dir, sizeof dir, "%s/%s", parent, e->d_name);
        snprintf(lock, sizeof lock, "%s/owner.lock", dir);
        if (lstat(dir, &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != geteuid())
            continue;
        int fd = open(lock, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0) {
            if (errno == ENOENT && time(NULL) - st.st_mtime > 60)
                remove_scratch(dir);
            continue;
        }
        if (flock(fd, LOCK_EX | LOCK_NB) == 0)
            remove_scratch(dir);
        close(fd);
    }
    closedir(d);
}

/* Bytes the replay will write into the scratch: the pages of the derived tables today. */
static uint64_t scratch_need(acr_ledger_t *l)
{
    MDB_txn *r;
    uint64_t need = 0;
    if (mdb_txn_begin(l->senv, NULL, MDB_RDONLY, &r) != 0)
        return 0;
    for (int db = 0; db < ACR_DB__COUNT; db++) {
        MDB_stat st;
        if (acr__db_derived(db) && mdb_stat(r, l->dbi[db], &st) == 0)
            need += (uint64_t)(st.ms_branch_pages + st.ms_leaf_pages + st.ms_overflow_pages) *
                    st.ms_psize;
    }
    mdb_txn_abort(r);
    return need;
}

static int scratch_open(acr_ledger_t *l, uint64_t map_bytes, scratch_t *s, acr_err_t *err)
{
    const char *parent = scratch_parent();
    sweep_dead_scratch();
    struct statvfs vfs;
    uint64_t need = scratch_need(l) + (uint64_t)ACR_SCRATCH_MARGIN_BYTES;
    if (statvfs(parent, &vfs) == 0 && (uint64_t)vfs.f_bavail * vfs.f_frsize < need)
        return acr_err_set(err, ACR_ELEDGER_FULL,
                           "not enough free space in %s for the scratch replay: %llu MiB free, "
                           "about %llu MiB needed; set TMPDIR to a folder with more room",
                           parent, (unsigned long long)((uint64_t)vfs.f_bavail * vfs.f_frsize >> 20),
                           (unsigned long long)((need + (1u << 20) - 1) >> 20));
    snprintf(s->dir, sizeof s->dir, "%s/accrue-scratch-XXXXXX", parent);
    if (mkdtemp(s->dir) == NULL)
        return acr_err_set(err, ACR_EIO, "cannot create a scratch folder in %s: %s", parent,
                           strerror(errno));
    /* The lock is taken under another name and renamed into place: a sweep (another run of
     * this process or another) that finds owner.lock finds it locked already. Created under
     * its own name, it could be opened and locked by a sweep between our open and our flock,
     * and the folder removed under us. */
    char tmp[4096 + 16], lock[4096 + 16];
    snprintf(tmp, sizeof tmp, "%s/owner.lock.new", s->dir);
    snprintf(lock, sizeof lock, "%s/owner.lock", s->dir);
    s->owner_fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (s->owner_fd < 0 || flock(s->owner_fd, LOCK_EX | LOCK_NB) != 0 || rename(tmp, lock) != 0) {
        int e = errno;
        if (s->owner_fd >= 0)
            close(s->owner_fd);
        remove_scratch(s->dir);
        return acr_err_set(err, ACR_EIO, "cannot lock the scratch folder: %s", strerror(e));
    }
    uint64_t used = acr__env_used_bytes(l->senv, NULL);
    bool room = statvfs(s->dir, &vfs) == 0 &&
                (uint64_t)vfs.f_bavail * vfs.f_frsize > used + (64u << 20);
    unsigned flags = MDB_NOSYNC | MDB_NOMETASYNC | (room ? MDB_WRITEMAP : 0);
    memset(&s->tx, 0, sizeof s->tx);
    s->tx.ledger = l;
    s->tx.dbi = s->dbi;
    s->tx.utc_offset_min = l->cfg.utc_offset_min;
    acr_buf_init(&s->tx.scratch);
    acr_buf_init(&s->tx.scratch2);
    int rc = acr__env_open(s->dir, ACR__ENV_ALL, true, map_bytes, flags, &s->env, s->dbi, NULL,
                           err);
    if (rc == 0 && (rc = mdb_txn_begin(s->env, NULL, 0, &s->tx.txn)) != 0) {
        rc = acr__mdb_err(rc, err, "scratch");
        mdb_env_close(s->env);
    }
    s->tx.ltxn = s->tx.txn; /* one environment holds every table */
    if (rc != 0) {
        acr_buf_destroy(&s->tx.scratch);
        acr_buf_destroy(&s->tx.scratch2);
        remove_scratch(s->dir);
        close(s->owner_fd);
    }
    return rc;
}

static void scratch_close(scratch_t *s)
{
    if (s->tx.txn != NULL)
        mdb_txn_abort(s->tx.txn);
    mdb_env_close(s->env);
    acr_buf_destroy(&s->tx.scratch);
    acr_buf_destroy(&s->tx.scratch2);
    acr__cache_free(&s->tx.cache);
    remove_scratch(s->dir);
    close(s->owner_fd); /* after the removal: a sweeper never sees it unlocked */
}

/* A map for the scratch: the derived state's and more. */
static uint64_t scratch_map_bytes(acr_ledger_t *l)
{
    MDB_envinfo info;
    mdb_env_info(l->senv, &info);
    return (uint64_t)info.me_mapsize * 2;
}

/* Copies table from (a replay's result, in key order) into the empty table
 * to with MDB_APPEND: every page is filled once, left to right; *dg gets the table's
 * digest on the way (no second pass over the copy). MDB codes. */
static int copy_table(MDB_txn *from, MDB_dbi from_dbi, MDB_txn *to, MDB_dbi to_dbi, int db,
                      acr__digest_t *dg)
{
    MDB_cursor *a, *b;
    int rc = mdb_cursor_open(from, from_dbi, &a);
    if (rc != 0)
        return rc;
    if ((rc = mdb_cursor_open(to, to_dbi, &b)) != 0) {
        mdb_cursor_close(a);
        return rc;
    }
    MDB_val k, v;
    *dg = (acr__digest_t){0, 0};
    for (rc = mdb_cursor_get(a, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(a, &k, &v, MDB_NEXT)) {
        acr__digest_t r = acr__dg_row(db, k.mv_data, k.mv_size, v.mv_data, v.mv_size);
        dg->lo += r.lo;
        dg->hi += r.hi;
        if ((rc = mdb_cursor_put(b, &k, &v, MDB_APPEND)) != 0)
            break;
    }
    mdb_cursor_close(a);
    mdb_cursor_close(b);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

/* One rebuild: in the ledger's write transaction (no append can slip in),
 * the log is replayed into a scratch environment; then every derived table
 * is emptied and refilled from the scratch in key order, and the
 * transaction commits: the ledger changes at once or not at all. Returns
 * -MDB_MAP_FULL when the ledger's map must grow. *scratch_full is set
 * when the scratch map was too small. */
static int rebuild_once(acr_ledger_t *l, uint64_t scratch_map, bool *scratch_full,
                        void (*progress)(uint64_t, uint64_t), acr_err_t *err)
{
    MDB_txn *w, *lr = NULL;
    scratch_t s;
    acr__head_t head;
    /* the state's writer lock first, as every writer takes it: no append slips in */
    int rc = mdb_txn_begin(l->senv, NULL, 0, &w);
    if (rc == 0 && (rc = acr__read_begin(l->env, &lr)) == 0)
        rc = acr__log_head(l, lr, &head);
    if (rc != 0) {
        if (lr != NULL)
            mdb_txn_abort(lr);
        if (w != NULL)
            mdb_txn_abort(w);
        return rc == MDB_MAP_FULL ? -MDB_MAP_FULL : acr__mdb_err(rc, err, "rebuild");
    }
    if ((rc = scratch_open(l, scratch_map, &s, err)) != 0) {
        mdb_txn_abort(lr);
        mdb_txn_abort(w);
        return rc;
    }
    rc = replay(l, lr, head.seq, &s.tx, true, progress, err);
    *scratch_full = rc != 0 && s.tx.mdb_rc == MDB_MAP_FULL;
    int mrc = 0;
    acr__digest_t dg[ACR_DB__COUNT];
    memset(dg, 0, sizeof dg);
    for (int db = 0; rc == 0 && mrc == 0 && db < ACR_DB__COUNT; db++)
        if (acr__db_derived(db) && (mrc = mdb_drop(w, l->dbi[db], 0)) == 0)
            mrc = copy_table(s.tx.txn, s.dbi[db], w, l->dbi[db], db, &dg[db]);
    if (rc == 0 && mrc == 0 && (mrc = acr__applied_put(l, w, &head)) == 0)
        mrc = acr__dg_store(l, w, dg);
    mdb_txn_abort(lr);
    if (rc == 0 && mrc == 0)
        mrc = mdb_txn_commit(w);
    else
        mdb_txn_abort(w);
    scratch_close(&s);
    if (mrc == MDB_MAP_FULL)
        return -MDB_MAP_FULL;
    if (mrc != 0)
        rc = mrc == EIO || mrc == ENOSPC ? acr__commit_err(l, mrc, err)
                                         : acr__mdb_err(mrc, err, "rebuild");
    return rc;
}

/* Grows the maps until the state's has room for a second copy of every derived table beside
 * the first: a rebuild writes the new tables before its commit frees the old ones' pages, and
 * a map found too small only at the copy would cost the whole replay again. */
static int rebuild_room(acr_ledger_t *l, acr_err_t *err)
{
    uint64_t need = scratch_need(l) + (uint64_t)ACR_SCRATCH_MARGIN_BYTES;
    for (int i = 0; i < 8; i++) {
        uint64_t map = 0, used = acr__env_used_bytes(l->senv, &map);
        if (map >= used + need)
            return 0;
        int rc = acr__grow_maps(l, err);
        if (rc != 0)
            return rc;
    }
    return 0; /* the copy's own MDB_MAP_FULL path grows further */
}

int acr_ledger_rebuild(acr_ledger_t *l, void (*progress)(uint64_t, uint64_t), acr_err_t *err)
{
    uint64_t scratch_map = 0;
    int grown = rebuild_room(l, err);
    if (grown != 0)
        return grown;
    for (;;) {
        bool scratch_full = false;
        pthread_rwlock_rdlock(&l->map_lock);
        if (scratch_map == 0)
            scratch_map = scratch_map_bytes(l);
        int rc = rebuild_once(l, scratch_map, &scratch_full, progress, err);
        pthread_rwlock_unlock(&l->map_lock);
        if (scratch_full) {
            scratch_map *= 2;
            continue;
        }
        if (rc != -MDB_MAP_FULL)
            return rc;
        if ((rc = acr__grow_maps(l, err)) != 0)
            return rc;
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

/* Replays the live snapshot (its chain already checked) into a scratch
 * environment and compares. */
static int verify_projections(acr_ledger_t *l, MDB_txn *live, MDB_txn *live_log,
                              uint64_t through, acr_verify_result_t *out,
                              void (*progress)(uint64_t, uint64_t), acr_err_t *err)
{
    scratch_t s;
    uint64_t map = scratch_map_bytes(l);
    int rc;
    for (;;) {
        if ((rc = scratch_open(l, map, &s, err)) != 0)
            return rc;
        rc = replay(l, live_log, through, &s.tx, false, progress, err);
        if (rc == 0 || s.tx.mdb_rc != MDB_MAP_FULL)
            break;
        scratch_close(&s);
        map *= 2;
    }
    for (int db = 0; rc == 0 && db < ACR_DB__COUNT; db++) {
        if (!acr__db_derived(db))
            continue;
        /* an index never built for this log (a ledger of an older release, or appended to
         * by one since) is not damage: runs scan the log until `rebuild` builds it (an empty
         * log has no marker yet, and nothing to index) */
        if (db == ACR_DB_PERIOD_SEQS && through > 0 &&
            (rc = acr__pseq_marker_covers(live, l->dbi[db], through, err)) != 1) {
            out->period_index_stale = rc == 0;
            rc = rc < 0 ? rc : 0;
            continue;
        }
        rc = 0;
        int d = compare_table(live, l->dbi[db], s.tx.txn, s.dbi[db], out->bad_key,
                              sizeof out->bad_key);
        if (d != 0) {
            snprintf(out->bad_table, sizeof out->bad_table, "%s", acr__db_name(db));
            rc = acr_err_set(err, ACR_EMISMATCH, "table %s differs from a fresh replay at "
                             "key %s", acr__db_name(db), out->bad_key);
        }
    }
    scratch_close(&s);
    return rc;
}

/* The fingerprint recorded by the close of period (k): 0 with out_hex set, 1 when the
 * ledger holds no period.closed for it, else an error. */
static int recorded_fingerprint(acr_ledger_t *l, MDB_txn *txn, MDB_txn *ltxn,
                                const MDB_val *period, char out_hex[33], acr_err_t *err)
{
    acr_event_t ev;
    int rc = acr__close_record(l, txn, ltxn, period->mv_data, period->mv_size, &ev, err);
    if (rc < 0)
        return rc;
    if (rc != 1 || ev.str[ACR_F_FINGERPRINT].len != 32)
        return 1; /* no readable close: verify reports the statement without one */
    memcpy(out_hex, ev.str[ACR_F_FINGERPRINT].ptr, 32);
    out_hex[32] = '\0';
    return 0;
}

/* period.closed events, counted from the ids table (verified against a replay first). */
static int count_closes(acr_ledger_t *l, MDB_txn *txn, uint64_t *out, acr_err_t *err)
{
    static const char prefix[] = ACR_CLOSE_ID_PREFIX;
    MDB_cursor *cur;
    MDB_val k = acr__val(prefix, sizeof prefix - 1), v;
    *out = 0;
    int rc = mdb_cursor_open(txn, l->dbi[ACR_DB_IDS], &cur);
    if (rc != 0)
        return acr__mdb_err(rc, err, "ids");
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
         rc == 0 && k.mv_size >= sizeof prefix - 1 &&
         memcmp(k.mv_data, prefix, sizeof prefix - 1) == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT))
        (*out)++;
    mdb_cursor_close(cur);
    return rc == 0 || rc == MDB_NOTFOUND ? 0 : acr__mdb_err(rc, err, "ids");
}

/* true when a record after seq `after` in the log of ltxn closes period (k): a statement
 * committed with its close after the state's marker (the few records of a writer between
 * its two commits). */
static bool closed_after(acr_ledger_t *l, MDB_txn *ltxn, uint64_t after, const MDB_val *period)
{
    MDB_cursor *cur;
    uint8_t key[8];
    acr__u64_be(after + 1, key);
    MDB_val k = acr__val(key, 8), v;
    bool found = false;
    if (mdb_cursor_open(ltxn, l->dbi[ACR_DB_LOG], &cur) != 0)
        return false;
    for (int rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0 && !found;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        acr_event_t ev;
        found = v.mv_size > ACR_HASH_LEN &&
                acr_record_decode((const uint8_t *)v.mv_data + ACR_HASH_LEN,
                                  v.mv_size - ACR_HASH_LEN, &ev) == 0 &&
                ev.type == ACR_EV_PERIOD_CLOSED && ev.str[ACR_F_PERIOD].len == period->mv_size &&
                memcmp(ev.str[ACR_F_PERIOD].ptr, period->mv_data, period->mv_size) == 0;
    }
    mdb_cursor_close(cur);
    return found;
}

/* Every stored statement hashes to the fingerprint its period.closed recorded (the
 * statement bytes are not part of the chain: this is what covers them), and every
 * close has its statement. */
static int verify_statements(acr_ledger_t *l, MDB_txn *txn, MDB_txn *ltxn, uint64_t through,
                             acr_verify_result_t *out, acr_err_t *err)
{
    MDB_cursor *cur;
    MDB_val k, v;
    uint64_t statements = 0, closes = 0;
    int rc = count_closes(l, txn, &closes, err);
    if (rc != 0)
        return rc;
    if ((rc = mdb_cursor_open(ltxn, l->dbi[ACR_DB_CLOSES], &cur)) != 0)
        return acr__mdb_err(rc, err, "closes");
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        char want[33];
        statements++;
        snprintf(out->bad_key, sizeof out->bad_key, "%.*s", (int)k.mv_size,
                 (const char *)k.mv_data);
        int frc = recorded_fingerprint(l, txn, ltxn, &k, want, err);
        if (frc < 0) {
            mdb_cursor_close(cur);
            return frc;
        }
        if (frc == 1 && closed_after(l, ltxn, through, &k)) {
            statements--; /* its close is after the snapshot (a writer between commits) */
            continue;
        }
        if (frc == 1 || acr__statement_check(out->bad_key, v.mv_data, v.mv_size,
                                             (acr_str_t){want, 32}, "", err) != 0) {
            mdb_cursor_close(cur);
            snprintf(out->bad_table, sizeof out->bad_table, "closes");
            if (frc == 1)
                return acr_err_set(err, ACR_EMISMATCH, "a stored statement of period %s without "
                                   "its period.closed event", out->bad_key);
            return ACR_EMISMATCH;
        }
    }
    mdb_cursor_close(cur);
    if (rc != MDB_NOTFOUND)
        return acr__mdb_err(rc, err, "closes");
    out->bad_key[0] = '\0';
    if (statements != closes) {
        snprintf(out->bad_table, sizeof out->bad_table, "closes");
        snprintf(out->bad_key, sizeof out->bad_key, "-");
        return acr_err_set(err, ACR_EMISMATCH, "%llu period.closed events, %llu stored "
                           "statements", (unsigned long long)closes,
                           (unsigned long long)statements);
    }
    out->statements = statements;
    return 0;
}

/* The digests of a snapshot's derived tables, summed on a thread of their own while the
 * caller checks the chain (the two read different environments), the caller taking the
 * tables that are left once its chain is done: a verify keeps both cores busy. Tables go
 * largest first. Each side has its own MDB_NOTLS read transaction of the same snapshot:
 * the caller's, live, and one begun on the state's environment for the thread, used only
 * when its marker is live's (no write came in between). */
typedef struct dg_job {
    acr_ledger_t *l;
    MDB_txn *live, *own;             /* the caller's snapshot; the thread's (or NULL) */
    int order[ACR_DB__COUNT];        /* derived tables, largest first */
    int n;
    atomic_int next;                 /* the next entry of order to take */
    acr__digest_t got[ACR_DB__COUNT];
    atomic_int rc;                   /* the first MDB code */
    pthread_t th;
    bool threaded;
} dg_job_t;

static void dg_take(dg_job_t *j, MDB_txn *txn)
{
    for (int i; atomic_load(&j->rc) == 0 && (i = atomic_fetch_add(&j->next, 1)) < j->n;) {
        int db = j->order[i], rc = acr__dg_scan(txn, j->l->dbi[db], db, &j->got[db]);
        if (rc != 0)
            atomic_store(&j->rc, rc);
    }
}

static void *dg_run(void *arg)
{
    dg_job_t *j = arg;
    dg_take(j, j->own);
    return NULL;
}

static void dg_start(dg_job_t *j, acr_ledger_t *l, MDB_txn *live, const acr__head_t *applied)
{
    memset(j, 0, sizeof *j);
    j->l = l;
    j->live = live;
    size_t pages[ACR_DB__COUNT];
    for (int db = 0; db < ACR_DB__COUNT; db++) {
        MDB_stat st;
        if (!acr__db_derived(db))
            continue;
        pages[db] = mdb_stat(live, l->dbi[db], &st) == 0 ? st.ms_leaf_pages + st.ms_overflow_pages
                                                         : 0;
        int i = j->n++;
        for (; i > 0 && pages[j->order[i - 1]] < pages[db]; i--)
            j->order[i] = j->order[i - 1];
        j->order[i] = db;
    }
    acr__head_t mark;
    if (acr__read_begin(l->senv, &j->own) != 0) {
        j->own = NULL;
    } else if (acr__applied_get(l, j->own, &mark) != 0 || mark.seq != applied->seq ||
               memcmp(mark.hash, applied->hash, ACR_HASH_LEN) != 0) {
        mdb_txn_abort(j->own); /* a write came in: the caller sums every table itself */
        j->own = NULL;
    }
    j->threaded = j->own != NULL && pthread_create(&j->th, NULL, dg_run, j) == 0;
}

/* The caller's share (none when its chain check failed: the thread then stops after its
 * current table), then the thread's end. */
static void dg_join(dg_job_t *j, bool help)
{
    if (help)
        dg_take(j, j->live);
    else
        atomic_store(&j->next, j->n);
    if (j->threaded)
        pthread_join(j->th, NULL);
    if (j->own != NULL)
        mdb_txn_abort(j->own);
    j->threaded = false;
    j->own = NULL;
}

/* Each derived table of the snapshot live against its stored digest (the sums of j). */
static int verify_digests(acr_ledger_t *l, MDB_txn *live, const dg_job_t *j,
                          acr_verify_result_t *out, acr_err_t *err)
{
    acr__digest_t want[ACR_DB__COUNT];
    int rc = atomic_load(&j->rc);
    if (rc == 0)
        rc = acr__dg_load(l, live, want);
    for (int db = 0; rc == 0 && db < ACR_DB__COUNT; db++) {
        const acr__digest_t got = j->got[db];
        if (!acr__db_derived(db))
            continue;
        if (got.lo != want[db].lo || got.hi != want[db].hi) {
            snprintf(out->bad_table, sizeof out->bad_table, "%s", acr__db_name(db));
            snprintf(out->bad_key, sizeof out->bad_key, "-");
            return acr_err_set(err, ACR_EMISMATCH, "table %s does not match the digest its "
                               "writes kept: a row was changed, added or lost outside the "
                               "write path; run `accrue rebuild`", acr__db_name(db));
        }
    }
    return rc ? acr__mdb_err(rc, err, "digests") : 0;
}

static int verify(acr_ledger_t *l, bool deep, acr_verify_result_t *out,
                  void (*progress)(uint64_t done, uint64_t total), acr_err_t *err)
{
    memset(out, 0, sizeof *out);
    pthread_rwlock_rdlock(&l->map_lock);
    MDB_txn *live = NULL, *live_log = NULL;
    acr__head_t applied;
    /* the snapshot of a reader: the state first, the log through its marker */
    int rc = acr__read_begin(l->senv, &live);
    if (rc == 0 && (rc = acr__applied_get(l, live, &applied)) == MDB_NOTFOUND)
        rc = MDB_CORRUPTED;
    if (rc == 0)
        rc = acr__read_begin(l->env, &live_log);
    if (rc != 0) {
        if (live != NULL)
            mdb_txn_abort(live);
        pthread_rwlock_unlock(&l->map_lock);
        return acr__mdb_err(rc, err, "verify");
    }
    /* the chain of the whole log; the derived state as of its marker (records after it are
     * a writer's between its two commits, or wait for the next write's catch-up) */
    dg_job_t dg;
    dg_start(&dg, l, live, &applied);
    rc = scan_log(l, live_log, UINT64_MAX, NULL, NULL, true, &out->events, out->head_hash,
                  &out->bad_seq, progress, err);
    dg_join(&dg, rc == 0);
    if (rc == 0 && acr__applied_check(l, live_log, &applied, err) != 0) {
        snprintf(out->bad_table, sizeof out->bad_table, "applied");
        rc = acr_err_set(err, ACR_EMISMATCH, "the derived state was applied through seq %llu, "
                         "which the log does not hold as recorded: run `accrue rebuild`",
                         (unsigned long long)applied.seq);
    }
    /* a replay names the row that differs; the digests then also find a table written
     * consistently but outside the write path (the replay would agree with neither) */
    if (rc == 0 && deep)
        rc = verify_projections(l, live, live_log, applied.seq, out, NULL, err);
    if (rc == 0)
        rc = verify_digests(l, live, &dg, out, err);
    if (rc == 0)
        rc = verify_statements(l, live, live_log, applied.seq, out, err);
    mdb_txn_abort(live_log);
    mdb_txn_abort(live);
    pthread_rwlock_unlock(&l->map_lock);
    return rc;
}

int acr_ledger_verify(acr_ledger_t *l, acr_verify_result_t *out,
                      void (*progress)(uint64_t done, uint64_t total), acr_err_t *err)
{
    return verify(l, true, out, progress, err);
}

int acr_ledger_verify_fast(acr_ledger_t *l, acr_verify_result_t *out,
                           void (*progress)(uint64_t done, uint64_t total), acr_err_t *err)
{
    return verify(l, false, out, progress, err);
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
    MDB_cursor *cur;
    if ((rc = mdb_cursor_open(acr__reader_txn(r, ACR_DB_LOG), l->dbi[ACR_DB_LOG], &cur)) == 0) {
        MDB_val k, v;
        while (out->events < out->head_seq && (rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) == 0) {
            const uint8_t *p = v.mv_data;
            size_t t = v.mv_size > ACR_HASH_LEN + ACR_RECORD_CONTENT_OFF
                           ? p[ACR_HASH_LEN + ACR_RECORD_CONTENT_OFF] : 0;
            out->events++;
            out->by_type[t < ACR_EV__COUNT ? t : 0]++;
        }
        mdb_cursor_close(cur);
        rc = rc == MDB_NOTFOUND ? 0 : rc;
    }
    /* both environments: the log's and the derived state's */
    MDB_env *envs[2] = {l->env, l->senv};
    for (int i = 0; i < 2; i++) {
        uint64_t map = 0;
        out->used_bytes += acr__env_used_bytes(envs[i], &map);
        out->map_bytes += map;
    }
    acr_reader_close(r);
    static const char *const files[] = {"data.mdb", "state.mdb"};
    for (int i = 0; i < 2; i++) {
        char path[4096 + 16];
        struct stat fs;
        snprintf(path, sizeof path, "%s/%s", l->path, files[i]);
        if (stat(path, &fs) == 0)
            out->file_bytes += (uint64_t)fs.st_size;
    }
    return rc ? acr__mdb_err(rc, err, "stats") : 0;
}

/* Gives dest's file the mode of the ledger's file of the same name. */
static int copy_mode(const acr_ledger_t *l, const char *dest, const char *file)
{
    char src[4096 + 16], dst[4096 + 16];
    struct stat sf;
    snprintf(src, sizeof src, "%s/%s", l->path, file);
    snprintf(dst, sizeof dst, "%s/%s", dest, file);
    return stat(src, &sf) != 0 || chmod(dst, sf.st_mode & 07777) != 0 ? -1 : 0;
}

int acr_ledger_backup(acr_ledger_t *l, const char *dest, acr_err_t *err)
{
    if (mkdir(dest, 0700) != 0 && errno != EEXIST)
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
    /* The state first, then the log: the copy's log holds at least what its state was
     * applied through, and the first open of the copy applies the rest. Both compacted:
     * in the copy, the log's pages lie in seq order. */
    char state[4096 + 16];
    snprintf(state, sizeof state, "%s/state.mdb", dest);
    pthread_rwlock_rdlock(&l->map_lock);
    int rc = mdb_env_copy2(l->senv, state, MDB_CP_COMPACT);
    if (rc == 0)
        rc = mdb_env_copy2(l->env, dest, MDB_CP_COMPACT);
    pthread_rwlock_unlock(&l->map_lock);
    if (rc != 0)
        return acr__mdb_err(rc, err, "backup");
    /* The copy keeps the source's modes (LMDB creates it 0666 less the umask). */
    struct stat sd;
    if (stat(l->path, &sd) != 0 || copy_mode(l, dest, "data.mdb") != 0 ||
        copy_mode(l, dest, "state.mdb") != 0 || chmod(dest, sd.st_mode & 07777) != 0)
        return acr_err_set(err, ACR_EIO, "cannot set the modes of %s: %s", dest, strerror(errno));
    return 0;
}
