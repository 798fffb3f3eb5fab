/* append.c - the write path: idempotency, streams, stateful rules, the
 * chained log record, group commit and automatic map growth.
 *
 * For each event, in order: the ids table decides between new, idempotent
 * resubmission (identical content bytes: a no-op answering the original
 * seq) and id_conflict; the stream's version is checked against
 * expected_version; state.c checks every stateful rule and updates the state
 * and projection tables; then the record goes under the next seq with
 * MDB_APPEND | MDB_RESERVE, written straight into the page as
 * [prev hash][record], the engine fields patched in, and the chain hash of
 * those bytes written over the prev hash. A batch with any error is
 * aborted whole: the ledger stays byte-for-byte as it was.
 *
 * To save B-tree descents (the dominant cost of a 100 000-event transaction),
 * the id and a new stream are written where they are looked up (insert with
 * MDB_NOOVERWRITE; an existing key answers its value instead), an existing
 * stream is rewritten in place through the cursor that found it, and both
 * claims are deleted again when the event is rejected or not logged, so the
 * tables hold exactly what the look-up-then-write order would have left.
 */
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#define XXH_STATIC_LINKING_ONLY
#include <xxhash.h>

#include "accrue/idem.h"
#include "../state/state_internal.h"
#include "log_internal.h"

typedef acr__head_t head_t;

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void hash_bytes(const void *p, size_t len, uint8_t out[ACR_HASH_LEN])
{
    XXH128_canonical_t c;
    XXH128_canonicalFromHash(&c, XXH3_128bits(p, len));
    memcpy(out, c.digest, ACR_HASH_LEN);
}

/* The head's link of the chain: hash(head) = XXH3_128(hash(head-1) || record head). An
 * append onto a head that does not verify would chain new events to damaged bytes, so it
 * is refused (commissions.md: a ledger whose chain does not verify). Two look-ups per
 * transaction. ACR_ECHAIN_BROKEN with err set, or a store error. */
static int check_head(acr_ledger_t *l, MDB_txn *txn, const head_t *head, acr_err_t *err)
{
    if (head->seq == 0)
        return 0;
    uint8_t prev[ACR_HASH_LEN], key[8];
    MDB_val k, v;
    if (head->seq == 1) {
        acr__genesis(l, prev);
    } else {
        acr__u64_be(head->seq - 1, key);
        k = acr__val(key, 8);
        int rc = mdb_get(txn, l->dbi[ACR_DB_LOG], &k, &v);
        if (rc != 0 && rc != MDB_NOTFOUND)
            return acr__mdb_err(rc, err, "log");
        if (rc == MDB_NOTFOUND || v.mv_size < ACR_HASH_LEN)
            goto broken;
        memcpy(prev, v.mv_data, ACR_HASH_LEN);
    }
    acr__u64_be(head->seq, key);
    k = acr__val(key, 8);
    int rc = mdb_get(txn, l->dbi[ACR_DB_LOG], &k, &v);
    if (rc != 0)
        return acr__mdb_err(rc, err, "log");
    if (v.mv_size > ACR_HASH_LEN && memcmp(v.mv_data, head->hash, ACR_HASH_LEN) == 0 &&
        acr__chain_ok(prev, v.mv_data, v.mv_size))
        return 0;
broken:
    return acr_err_set(err, ACR_ECHAIN_BROKEN,
                       "the chain does not verify at its head (seq %llu): nothing is appended "
                       "to damaged data; run `accrue verify` and restore from a backup",
                       (unsigned long long)head->seq);
}

static void event_err(acr_err_t *err, const acr_batch_item_t *it, const acr_event_t *ev)
{
    err->line = it->line;
    size_t n = ev->id.len < sizeof err->id - 1 ? ev->id.len : sizeof err->id - 1;
    memcpy(err->id, ev->id.ptr, n);
    err->id[n] = '\0';
}

/* Idempotency, claiming the id in the same B-tree descent: the id is
 * inserted (mapping to seq, the seq the event will get) with MDB_NOOVERWRITE,
 * and when it is already there LMDB answers the stored seq instead. 1 = a
 * resubmission of the event stored at *out_seq (nothing written), 0 = new
 * (the id is now claimed: release_claims undoes it if the event is not
 * written), negative = id_conflict (err set) or a store error (*mdb_rc set). */
static int claim_id(acr__txn_t *tx, const uint8_t *rec, size_t len, const acr_event_t *ev,
                    uint64_t seq, uint64_t batch_first, uint64_t *out_seq, int *mdb_rc,
                    acr_err_t *err)
{
    uint8_t sv[8];
    acr__u64_be(seq, sv);
    MDB_val k = acr__val(ev->id.ptr, ev->id.len), v = acr__val(sv, 8);
    int rc = acr__dput(tx, ACR_DB_IDS, &k, &v, MDB_NOOVERWRITE);
    if (rc == 0)
        return 0;
    if (rc != MDB_KEYEXIST || v.mv_size != 8)
        return acr__mdb_err(*mdb_rc = rc != MDB_KEYEXIST ? rc : MDB_CORRUPTED, err, "ids");
    uint8_t key[8];
    memcpy(key, v.mv_data, 8);
    *out_seq = acr__be_u64(key);
    MDB_val lk = acr__val(key, 8), lv;
    rc = mdb_get(tx->ltxn, tx->dbi[ACR_DB_LOG], &lk, &lv);
    if (rc != 0)
        return acr__mdb_err(*mdb_rc = rc, err, "log");
    const uint8_t *stored = (const uint8_t *)lv.mv_data + ACR_HASH_LEN;
    /* the content without the stored actor: a resubmission by someone else is a no-op */
    size_t stored_len = acr_record_content_len(stored, lv.mv_size - ACR_HASH_LEN);
    if (stored_len == len && len >= ACR_RECORD_CONTENT_OFF &&
        memcmp(stored + ACR_RECORD_CONTENT_OFF, rec + ACR_RECORD_CONTENT_OFF,
               len - ACR_RECORD_CONTENT_OFF) == 0)
        return 1;
    if (*out_seq >= batch_first) /* a seq of this batch, which is now refused: never written */
        acr_err_set(err, ACR_EID_CONFLICT,
                    "event id already used by an earlier event of this batch, with different "
                    "content");
    else
        acr_err_set(err, ACR_EID_CONFLICT,
                    "event id already used (seq %llu) with different content",
                    (unsigned long long)*out_seq);
    snprintf(err->field, sizeof err->field, "id");
    return ACR_EID_CONFLICT;
}

/* The stream of one event being applied, and what was claimed for it. */
typedef struct stream_slot {
    char name[ACR_STRING_LEN_MAX + 16];
    size_t len;
    uint64_t version; /* current version, 0 when the stream is new */
    bool inserted;    /* a new stream: its row (version 1) is already in place */
} stream_slot_t;

/* Reads the stream's version in one descent: a new stream is inserted at
 * version 1 right away (MDB_NOOVERWRITE), an existing one leaves cur on its
 * row so that bump_stream rewrites it in place. MDB codes. */
static int claim_stream(acr__txn_t *tx, MDB_cursor *cur, stream_slot_t *s)
{
    uint8_t one[8];
    acr__u64_be(1, one);
    MDB_val k = acr__val(s->name, s->len), v = acr__val(one, 8);
    int rc = mdb_cursor_put(cur, &k, &v, MDB_NOOVERWRITE);
    s->inserted = rc == 0;
    s->version = 0;
    if (rc == 0) {
        acr__dg_move(tx, ACR_DB_STREAMS, s->name, s->len, one, 8, false);
        return 0;
    }
    if (rc != MDB_KEYEXIST)
        return rc;
    if (v.mv_size != 8)
        return MDB_CORRUPTED;
    s->version = acr__be_u64(v.mv_data);
    return 0;
}

/* Writes version+1 over an existing stream's row; cur is still on it (only
 * other tables were written since claim_stream). */
static int bump_stream(acr__txn_t *tx, MDB_cursor *cur, const stream_slot_t *s)
{
    if (s->inserted)
        return 0;
    MDB_val k, v;
    int rc = mdb_cursor_get(cur, &k, &v, MDB_GET_CURRENT);
    if (rc != 0)
        return rc;
    assert(k.mv_size == s->len && memcmp(k.mv_data, s->name, s->len) == 0);
    uint8_t vv[8];
    acr__dg_move(tx, ACR_DB_STREAMS, s->name, s->len, v.mv_data, v.mv_size, true);
    acr__u64_be(s->version + 1, vv);
    acr__dg_move(tx, ACR_DB_STREAMS, s->name, s->len, vv, 8, false);
    v = acr__val(vv, 8);
    return mdb_cursor_put(cur, &k, &v, MDB_CURRENT);
}

/* Undoes claim_id / claim_stream for an event that is not written. MDB codes. */
static int release_claims(acr__txn_t *tx, const acr_event_t *ev, bool id_claimed,
                          const stream_slot_t *s)
{
    int rc = 0;
    if (id_claimed) {
        MDB_val k = acr__val(ev->id.ptr, ev->id.len);
        rc = acr__ddel(tx, ACR_DB_IDS, &k);
    }
    if (rc == 0 && s != NULL && s->inserted) {
        MDB_val k = acr__val(s->name, s->len);
        rc = acr__ddel(tx, ACR_DB_STREAMS, &k);
    }
    return rc;
}

_Static_assert(ACR_ACTOR_MAX < 256, "an actor is a fixstr or a str8");

/* Writes the record as the next seq, chaining its hash: the parsed record (fmt 1) gets
 * the actor as its last element (fmt 2, one more element), so the chain covers who
 * appended it while the content bytes stay those of the event. MDB codes. */
static int put_record(acr__txn_t *tx, head_t *head, const uint8_t *rec, size_t len,
                      int64_t now_ms, uint64_t version, const char *actor, MDB_val *out)
{
    uint8_t key[8];
    size_t alen = strlen(actor), ahdr = alen < 32 ? 1 : 2;
    assert(rec[1] == ACR_RECORD_FMT && (rec[0] & 0x0f) < 15);
    acr__u64_be(head->seq + 1, key);
    MDB_val k = acr__val(key, 8), v = acr__val(NULL, ACR_HASH_LEN + len + ahdr + alen);
    int rc = mdb_put(tx->ltxn, tx->dbi[ACR_DB_LOG], &k, &v, MDB_APPEND | MDB_RESERVE);
    if (rc != 0)
        return rc;
    uint8_t *dst = v.mv_data;
    memcpy(dst, head->hash, ACR_HASH_LEN);
    memcpy(dst + ACR_HASH_LEN, rec, len);
    dst[ACR_HASH_LEN] = (uint8_t)(rec[0] + 1); /* fixarray: one element more */
    dst[ACR_HASH_LEN + 1] = ACR_RECORD_FMT_ACTOR;
    uint8_t *a = dst + ACR_HASH_LEN + len;
    if (ahdr == 1) {
        a[0] = (uint8_t)(0xa0 | alen);
    } else {
        a[0] = 0xd9;
        a[1] = (uint8_t)alen;
    }
    memcpy(a + ahdr, actor, alen);
    acr_record_patch(dst + ACR_HASH_LEN, now_ms, version);
    hash_bytes(dst, v.mv_size, head->hash); /* hash(n-1) || the whole record, actor included */
    memcpy(dst, head->hash, ACR_HASH_LEN);
    head->seq++;
    *out = v; /* the page stays ours until the log's next write */
    return 0;
}

/* Applies one event. 0 = applied (or duplicate), a rule error (err set), or
 * a fatal code (ACR_E* from a store failure; *mdb_rc holds the LMDB code).
 * When !write (an earlier event of the batch failed) the rules are still
 * checked, but the id and stream claims are released and nothing is logged. */
static int apply_one(acr__txn_t *tx, MDB_cursor *streams, head_t *head, uint64_t batch_first,
                     const uint8_t *rec, size_t len, int64_t expected_version, int64_t now_ms,
                     bool write, const char *actor, uint64_t *out_seq, bool *out_dup,
                     int *mdb_rc, acr_err_t *err)
{
    acr_event_t ev;
    if (acr_record_decode(rec, len, &ev) != 0)
        return acr_err_set(err, ACR_ECORRUPT, "internal: an encoded event does not decode");
    int rc = claim_id(tx, rec, len, &ev, head->seq + 1, batch_first, out_seq, mdb_rc, err);
    if (rc == 1) {
        *out_dup = true;
        return 0;
    }
    if (rc != 0)
        return rc;
    stream_slot_t st;
    st.len = acr_event_stream(&ev, st.name, sizeof st.name);
    if ((*mdb_rc = claim_stream(tx, streams, &st)) != 0)
        return acr__mdb_err(*mdb_rc, err, "streams");
    if (expected_version >= 0 && (uint64_t)expected_version != st.version) {
        snprintf(err->field, sizeof err->field, "expected_version");
        rc = acr_err_set(err, ACR_EVERSION_CONFLICT, "stream %s is at version %llu, not %lld",
                         st.name, (unsigned long long)st.version, (long long)expected_version);
    } else {
        ev.seq = head->seq + 1; /* the seq it gets: program rows key (at, seq) */
        rc = acr__state_apply(tx, &ev, err);
    }
    if (rc != 0 && !acr_err_rejects_input(rc))
        return rc;
    if (rc != 0 || !write) {
        acr__state_not_logged(tx);
        if ((*mdb_rc = release_claims(tx, &ev, true, &st)) != 0)
            return acr__mdb_err(*mdb_rc, err, "append");
        return rc;
    }
    uint8_t prev[ACR_HASH_LEN];
    memcpy(prev, head->hash, ACR_HASH_LEN);
    MDB_val entry;
    if ((*mdb_rc = put_record(tx, head, rec, len, now_ms, st.version + 1, actor, &entry)) != 0)
        return acr__mdb_err(*mdb_rc, err, "append");
    if ((rc = acr__state_logged(tx, head->seq, prev, entry.mv_data, entry.mv_size, err)) != 0)
        return rc; /* a store failure (the state's apply reports one the same way) */
    if ((*mdb_rc = bump_stream(tx, streams, &st)) != 0)
        return acr__mdb_err(*mdb_rc, err, "append");
    *out_seq = head->seq;
    return 0;
}

/* Clears what apply_one may set, without zeroing the whole struct per event. */
static void err_init(acr_err_t *err)
{
    err->code = 0;
    err->line = 0;
    err->id[0] = '\0';
    err->field[0] = '\0';
    err->msg[0] = '\0';
}

/* Applies a whole batch into tx. 0 when every event is valid; a rule error
 * code (errs filled) or a fatal code (*mdb_rc set when it came from LMDB). */
static int apply_batch(acr__txn_t *tx, head_t *head, const acr_batch_t *b, int64_t now_ms,
                       acr_append_result_t *res, acr_errlist_t *errs, int *mdb_rc)
{
    int first = 0;
    uint64_t first_seq = 0, appended = 0, dups = 0;
    MDB_cursor *streams;
    uint64_t batch_first = head->seq + 1; /* the first seq this batch would write */
    acr__cache_clear(&tx->cache); /* rows cached by an earlier (maybe aborted) batch */
    if ((*mdb_rc = mdb_cursor_open(tx->txn, tx->dbi[ACR_DB_STREAMS], &streams)) != 0)
        return ACR_ESTORE;
    for (size_t i = 0; i < b->count; i++) {
        const acr_batch_item_t *it = &b->items[i];
        const uint8_t *rec = b->records.data + it->off;
        acr_err_t err;
        err_init(&err);
        uint64_t seq = 0;
        bool dup = false;
        int rc = apply_one(tx, streams, head, batch_first, rec, it->len, it->expected_version,
                           now_ms, first == 0, b->actor[0] ? b->actor : "accrue", &seq, &dup,
                           mdb_rc, &err);
        if (rc != 0 && !acr_err_rejects_input(rc)) {
            mdb_cursor_close(streams);
            return rc;
        }
        if (rc != 0) {
            acr_event_t ev;
            if (acr_record_decode(rec, it->len, &ev) == 0)
                event_err(&err, it, &ev);
            acr_errlist_add(errs, &err);
            first = first ? first : rc;
            continue;
        }
        if (res != NULL && res->seqs != NULL)
            res->seqs[i] = seq;
        dups += dup;
        if (!dup && appended++ == 0)
            first_seq = seq;
    }
    mdb_cursor_close(streams);
    if (first == 0) { /* the cached KPI rows go in before this batch commits */
        acr_err_t err;
        err_init(&err);
        int rc = acr__tx_flush(tx, &err);
        if (rc != 0) { /* fatal, like a failed put of apply_one */
            *mdb_rc = tx->mdb_rc;
            return rc;
        }
    }
    if (first == 0 && res != NULL) {
        res->first_seq = appended ? first_seq : 0;
        res->last_seq = appended ? head->seq : 0;
        res->appended = appended;
        res->duplicates = dups;
    }
    return first;
}

/* Work done after the batches inside the same transaction (a close stores
 * its statement). Returns 0 or an ACR_E* code. */
typedef int (*extra_fn)(acr__txn_t *tx, void *arg, acr_err_t *err);

typedef struct group_opts {
    uint64_t expect_head; /* UINT64_MAX: any head */
    extra_fn extra;
    void *extra_arg;
    bool dry_run;         /* check every rule, then abort: nothing is written */
    acr_idem_t *const *idems; /* per batch its Idempotency-Key (NULL entries: none), or NULL */
} group_opts_t;

/* Batch i's key, when it has one. */
static acr_idem_t *idem_of(const group_opts_t *opts, size_t i)
{
    return opts->idems != NULL ? opts->idems[i] : NULL;
}

/* A keyed batch whose key is live (REPLAY or CONFLICT) is not applied: its result is
 * nothing, its answer the record's. true when batch i is such a batch. MDB codes in *mdb_rc. */
static bool idem_known(acr_ledger_t *l, MDB_txn *txn, acr_idem_t *idem, int64_t now_ms,
                       acr_append_result_t *res, int *rc_batch, int *mdb_rc)
{
    if (idem == NULL)
        return false;
    if ((*mdb_rc = acr__idem_get(txn, l->dbi[ACR_DB_IDEM], idem, now_ms)) != 0)
        return false;
    if (idem->state == ACR_IDEM_NEW)
        return false;
    uint64_t *seqs = res->seqs;
    memset(res, 0, sizeof *res);
    res->seqs = seqs;
    *rc_batch = 0;
    return true;
}

/* Stores the answer of a decided keyed batch in txn (the group's parent): the callback
 * formats it from the outcome; an answer too large, or one it declines, is not kept. */
static int idem_keep(acr_ledger_t *l, MDB_txn *txn, acr_idem_t *idem, int rc_batch,
                     const acr_append_result_t *res, const acr_errlist_t *errs, int64_t now_ms,
                     bool *stored)
{
    if (idem == NULL || idem->answer == NULL)
        return 0;
    acr_buf_reset(&idem->body);
    idem->status = 0;
    idem->ctype[0] = '\0';
    if (!idem->answer(idem, rc_batch, res, errs) || !acr__idem_fits(idem))
        return 0;
    int rc = acr__idem_put(txn, l->dbi[ACR_DB_IDEM], idem, now_ms);
    if (rc == 0) {
        idem->state = ACR_IDEM_STORED; /* undone by idem_unstore if the commit fails */
        *stored = true;
    }
    return rc;
}

static void idem_unstore(const group_opts_t *opts, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (idem_of(opts, i) != NULL && idem_of(opts, i)->state == ACR_IDEM_STORED)
            idem_of(opts, i)->state = ACR_IDEM_NEW;
}

/* The log's head of tx, checked, with the state caught up to it (layout.c). 0, or an
 * ACR_E* code (err set; *mdb_rc set when it came from LMDB). */
static int start_txn(acr_ledger_t *l, acr__txn_t *tx, head_t *head, const group_opts_t *opts,
                     int *mdb_rc, acr_err_t *err)
{
    head_t applied;
    if ((*mdb_rc = acr__log_head(l, tx->ltxn, head)) != 0)
        return ACR_ESTORE;
    if (acr__replica_marked(tx->ltxn, l->dbi))
        return acr_err_set(err, ACR_EREAD_ONLY, ACR_READ_ONLY_MSG);
    if (opts->expect_head != UINT64_MAX && head->seq != opts->expect_head)
        return acr_err_set(err, ACR_EVERSION_CONFLICT, "the log moved on (head %llu)",
                           (unsigned long long)head->seq);
    int rc = check_head(l, tx->ltxn, head, err);
    if (rc != 0)
        return rc;
    if ((*mdb_rc = acr__applied_get(l, tx->txn, &applied)) != 0)
        return ACR_ESTORE;
    if ((rc = acr__catch_up(tx, &applied, head, err)) != 0 && tx->mdb_rc != 0)
        *mdb_rc = tx->mdb_rc;
    return rc;
}

static int append_txn(acr_ledger_t *l, const acr_batch_t *const *batches, size_t n,
                      acr_append_result_t *results, acr_errlist_t *errs, int *rcs,
                      const group_opts_t *opts)
{
    acr_err_t err;
    for (;;) {
        acr_err_clear(&err);
        int mdb_rc = 0, fatal = 0;
        pthread_rwlock_rdlock(&l->map_lock);
        acr__txn_t tx = {.ledger = l, .dbi = l->dbi, .utc_offset_min = l->cfg.utc_offset_min};
        acr_buf_init(&tx.scratch);
        acr_buf_init(&tx.scratch2);
        head_t head;
        int64_t now_ms = wall_ms();
        mdb_rc = acr__wtxn_begin(l, &tx);
        MDB_txn *parent = tx.txn, *lparent = tx.ltxn; /* the pair; children per batch */
        if (mdb_rc == 0)
            fatal = start_txn(l, &tx, &head, opts, &mdb_rc, &err);
        if (fatal == ACR_ESTORE && mdb_rc != 0)
            fatal = 0; /* an LMDB failure: reported below from mdb_rc */
        /* keyed batches run nested even alone: a rejected one is rolled back while its
         * answer is committed */
        bool nested = n > 1 || opts->idems != NULL, skipped = false, stored = false;
        for (size_t i = 0; mdb_rc == 0 && fatal == 0 && i < n; i++) {
            acr_errlist_clear(&errs[i]);
            acr_idem_t *idem = idem_of(opts, i);
            if (idem_known(l, lparent, idem, now_ms, &results[i], &rcs[i], &mdb_rc)) {
                skipped = skipped || n == 1;
                continue;
            }
            if (mdb_rc != 0)
                break;
            MDB_txn *child = parent, *lchild = lparent;
            if (nested && (mdb_rc = mdb_txn_begin(l->senv, parent, 0, &child)) != 0)
                break;
            if (nested && (mdb_rc = mdb_txn_begin(l->env, lparent, 0, &lchild)) != 0) {
                mdb_txn_abort(child);
                break;
            }
            head_t saved = head;
            acr__digest_t dg_saved[ACR_DB__COUNT]; /* a rolled-back batch moves nothing */
            memcpy(dg_saved, tx.dg, sizeof dg_saved);
            tx.txn = child;
            tx.ltxn = lchild;
            tx.pipeline_loaded = false;
            rcs[i] = apply_batch(&tx, &head, batches[i], now_ms, &results[i], &errs[i], &mdb_rc);
            if (rcs[i] != 0 && !acr_err_rejects_input(rcs[i])) {
                fatal = rcs[i];
                if (errs[i].count == 0)
                    acr_err_set(&err, fatal, "%s", "store failure");
                if (nested) {
                    mdb_txn_abort(lchild);
                    mdb_txn_abort(child);
                }
            } else if (nested && rcs[i] == 0) {
                if ((mdb_rc = mdb_txn_commit(lchild)) == 0)
                    mdb_rc = mdb_txn_commit(child);
                else
                    mdb_txn_abort(child);
            } else if (nested) {
                mdb_txn_abort(lchild);
                mdb_txn_abort(child);
                head = saved;
                memcpy(tx.dg, dg_saved, sizeof dg_saved);
            }
            tx.txn = parent;
            tx.ltxn = lparent;
            if (mdb_rc == 0 && fatal == 0)
                mdb_rc = idem_keep(l, lparent, idem, rcs[i], &results[i], &errs[i], now_ms,
                                   &stored);
        }
        if (mdb_rc == 0 && fatal == 0 && stored)
            mdb_rc = acr__idem_prune(l, lparent, now_ms);
        bool all_rejected = n == 1 && rcs[0] != 0;
        if (mdb_rc == 0 && fatal == 0 && !all_rejected && !skipped && opts->extra != NULL)
            fatal = opts->extra(&tx, opts->extra_arg, &err);
        bool log_done = false;
        if (mdb_rc == 0 && fatal == 0 && (!all_rejected || nested) && !opts->dry_run &&
            (mdb_rc = acr__tx_seal(&tx, &head)) == 0)
            mdb_rc = acr__wtxn_commit(&tx, &log_done);
        acr__wtxn_end(&tx);
        if (!log_done && (mdb_rc == MDB_MAP_FULL || tx.mdb_rc == MDB_MAP_FULL)) {
            idem_unstore(opts, n);
            if (acr__grow_maps(l, &err) == 0)
                continue;
        }
        if (mdb_rc == 0 && fatal == 0)
            return 0;
        idem_unstore(opts, n);
        int code = fatal ? fatal : acr__commit_err(l, mdb_rc, &err);
        /* The log committed and the state did not (a full disk): not acknowledged, since no
         * reader sees the events until the state catches up (the next write or open does);
         * a retry answers them as already present. */
        if (log_done && fatal == 0) {
            char why[sizeof err.msg];
            memcpy(why, err.msg, sizeof why);
            acr_err_set(&err, code, "%s (the events are in the log; they show once the derived "
                        "state catches up, at the next write or open: a retry is safe)", why);
        }
        for (size_t i = 0; i < n; i++) {
            rcs[i] = code;
            acr_errlist_clear(&errs[i]);
            acr_errlist_add(&errs[i], &err);
        }
        return code;
    }
}

int acr_ledger_append(acr_ledger_t *l, const acr_batch_t *batch, acr_append_result_t *out,
                      acr_errlist_t *errs)
{
    int rc_batch = 0;
    acr_append_result_t local = {0};
    acr_append_result_t *res = out ? out : &local;
    uint64_t *seqs = res->seqs;
    memset(res, 0, sizeof *res);
    res->seqs = seqs;
    group_opts_t opts = {UINT64_MAX, NULL, NULL, false, NULL};
    int rc = append_txn(l, &batch, 1, res, errs, &rc_batch, &opts);
    return rc ? rc : rc_batch;
}

int acr_ledger_check(acr_ledger_t *l, const acr_batch_t *batch, acr_errlist_t *errs)
{
    int rc_batch = 0;
    acr_append_result_t res = {0};
    group_opts_t opts = {UINT64_MAX, NULL, NULL, true, NULL};
    int rc = append_txn(l, &batch, 1, &res, errs, &rc_batch, &opts);
    return rc ? rc : rc_batch;
}

/* Merges two lists ordered by line into out, keeping the first ACR_ERRLIST_MAX. */
static void errlist_merge(const acr_errlist_t *a, const acr_errlist_t *b, acr_errlist_t *out)
{
    size_t i = 0, j = 0;
    acr_errlist_clear(out);
    while (i < a->count || j < b->count) {
        bool take_a = j == b->count || (i < a->count && a->items[i].line <= b->items[j].line);
        acr_errlist_add(out, take_a ? &a->items[i++] : &b->items[j++]);
    }
    out->total = a->total + b->total;
}

void acr_ledger_add_rule_errors(acr_ledger_t *l, const acr_batch_t *batch, acr_errlist_t *errs)
{
    acr_errlist_t *rules = malloc(sizeof *rules), *merged = malloc(sizeof *merged);
    if (rules != NULL && merged != NULL && batch->count > 0) {
        acr_errlist_clear(rules);
        int rc = acr_ledger_check(l, batch, rules);
        if (rc != 0 && rules->count > 0 && acr_err_rejects_input(rc)) {
            errlist_merge(errs, rules, merged);
            *errs = *merged;
        }
    }
    free(rules);
    free(merged);
}

int acr_ledger_append_group(acr_ledger_t *l, const acr_batch_t *const *batches, size_t n,
                            acr_append_result_t *results, acr_errlist_t *errs, int *rcs)
{
    group_opts_t opts = {UINT64_MAX, NULL, NULL, false, NULL};
    return append_txn(l, batches, n, results, errs, rcs, &opts);
}

int acr_ledger_append_group_idem(acr_ledger_t *l, const acr_batch_t *const *batches, size_t n,
                                 acr_append_result_t *results, acr_errlist_t *errs, int *rcs,
                                 acr_idem_t *const *idems)
{
    group_opts_t opts = {UINT64_MAX, NULL, NULL, false, idems};
    return append_txn(l, batches, n, results, errs, rcs, &opts);
}

/* The extra of acr_idem_store: the key's row alone. */
static int store_idem(acr__txn_t *tx, void *arg, acr_err_t *err)
{
    acr_idem_t *idem = arg;
    int64_t now_ms = wall_ms();
    int rc = acr__idem_put(tx->ltxn, tx->dbi[ACR_DB_IDEM], idem, now_ms);
    if (rc == 0)
        rc = acr__idem_prune(tx->ledger, tx->ltxn, now_ms);
    return rc ? acr__tx_fail(tx, rc, err, "idem") : 0;
}

int acr_idem_store(acr_ledger_t *l, acr_idem_t *idem, acr_err_t *err)
{
    if (!acr__idem_fits(idem))
        return 0;
    group_opts_t opts = {UINT64_MAX, store_idem, idem, false, NULL};
    int rc = append_txn(l, NULL, 0, NULL, NULL, NULL, &opts);
    if (rc != 0)
        return acr_err_set(err, rc, "storing the Idempotency-Key's answer failed");
    idem->state = ACR_IDEM_STORED;
    return 0;
}

typedef struct close_arg {
    const char *period_id;
    const char *csv;
    size_t csv_len;
} close_arg_t;

static int store_statement(acr__txn_t *tx, void *arg, acr_err_t *err)
{
    const close_arg_t *c = arg;
    MDB_val k = acr__val(c->period_id, strlen(c->period_id)), v = acr__val(c->csv, c->csv_len);
    int rc = mdb_put(tx->ltxn, tx->dbi[ACR_DB_CLOSES], &k, &v, MDB_NOOVERWRITE);
    if (rc == MDB_KEYEXIST)
        return acr_err_set(err, ACR_EPERIOD_CLOSED, "period %s is already closed", c->period_id);
    return rc ? acr__tx_fail(tx, rc, err, "closes") : 0;
}

int acr__append_close(acr_ledger_t *l, uint64_t expect_head, const acr_event_t *ev,
                      const char *actor, const char *period_id, const char *csv, size_t csv_len,
                      acr_idem_t *idem, uint64_t *out_seq, acr_err_t *err)
{
    acr_batch_t b;
    acr_batch_init(&b);
    acr_batch_set_actor(&b, actor);
    int rc = acr_record_encode(ev, &b.records);
    if (rc == 0) {
        b.items = calloc(1, sizeof *b.items);
        rc = b.items ? 0 : ACR_ENOMEM;
    }
    if (rc != 0) {
        acr_batch_destroy(&b);
        return acr_err_set(err, ACR_ENOMEM, "out of memory");
    }
    b.items[0] = (acr_batch_item_t){0, (uint32_t)b.records.len, 1, -1};
    b.count = 1;
    b.items_cap = 1;
    close_arg_t arg = {period_id, csv, csv_len};
    acr_idem_t *idems[1] = {idem};
    group_opts_t opts = {expect_head, store_statement, &arg, false, idem ? idems : NULL};
    const acr_batch_t *bp = &b;
    acr_append_result_t res = {0};
    acr_errlist_t *errs = malloc(sizeof *errs);
    int rc_batch = 0;
    if (errs == NULL) {
        acr_batch_destroy(&b);
        return acr_err_set(err, ACR_ENOMEM, "out of memory");
    }
    acr_errlist_clear(errs);
    rc = append_txn(l, &bp, 1, &res, errs, &rc_batch, &opts);
    rc = rc ? rc : rc_batch;
    if (rc != 0 && errs->count > 0 && err != NULL)
        *err = errs->items[0];
    else if (rc == 0)
        *out_seq = res.last_seq;
    free(errs);
    acr_batch_destroy(&b);
    return rc;
}
