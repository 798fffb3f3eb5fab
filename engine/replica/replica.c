/* replica.c - reading the log as stored, and the read replica that applies
 * it byte for byte (replica.h).
 *
 * A replica's records go through the same steps as an append on the primary,
 * in the same order (ids, the stream's version, every stateful rule of
 * state.c with its projections), but the record itself is not re-encoded or
 * re-stamped: its stored bytes are written under its seq exactly as they
 * arrived, after the link XXH3-128(previous hash || record) == its hash has
 * been checked against the replica's own head. Since every derived table is
 * a pure function of the log (maintain.c), the replica's tables then equal
 * the primary's, which `verify` on either side confirms.
 *
 * The statement a close stores beside its period.closed is not in the log:
 * the replica recomputes it from its own log as of the close's through_seq
 * (as `payout audit` does) and applies the close only when the recomputed
 * fingerprint and line count are the ones the record carries.
 *
 * The marker: meta["replica"] = kv(stream, consumer, source_head,
 * source_head_ms, applied_ms, last_lag_ms), rewritten in every transaction
 * that applies records. Its presence makes the ledger read-only for every
 * other writer (append.c asks acr__replica_marked in its transaction).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "accrue/payout.h"
#include "accrue/replica.h"
#include "../store/store_internal.h"
#include "../log/log_internal.h"
#include "../state/state_internal.h"
#include "../payout/payout_internal.h"

#define MARKER_KEY ACR__REPLICA_MARKER_KEY
#define MARKER_FORMAT 1

/* reader.c */
int acr__reader_next_raw(acr_reader_t *r, uint64_t through, uint32_t type_mask, acr_str_t *recs,
                         uint64_t *seqs, size_t max, size_t *n_out, int64_t *max_at_ms,
                         acr_err_t *err);

static uint64_t current_head(acr_ledger_t *l);

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void acr_ledger_id_hex(const acr_ledger_t *l, char out[33])
{
    acr_hash_hex(l->cfg.ledger_id, out);
}

/* ---- reading stored records --------------------------------------------- */

int acr_log_read_stored(acr_reader_t *r, uint64_t from, acr_stored_t *out, size_t max,
                        size_t *n, acr_err_t *err)
{
    *n = 0;
    if (from == 0)
        from = 1;
    if (from > acr_reader_head_seq(r) || max == 0)
        return 0;
    int rc = acr_reader_seek(r, from, err);
    if (rc != 0)
        return rc;
    enum { CHUNK = 256 };
    acr_str_t recs[CHUNK];
    uint64_t seqs[CHUNK];
    while (*n < max) {
        size_t want = max - *n < CHUNK ? max - *n : CHUNK, got = 0;
        int64_t max_at = 0;
        rc = acr__reader_next_raw(r, UINT64_MAX, 0xffffffffu, recs, seqs, want, &got, &max_at,
                                  err);
        for (size_t i = 0; i < got; i++)
            out[(*n)++] = (acr_stored_t){seqs[i], (const uint8_t *)recs[i].ptr - ACR_HASH_LEN,
                                         recs[i].len + ACR_HASH_LEN};
        if (rc != 0)
            return rc;
        if (got == 0)
            break;
    }
    return 0;
}

/* ---- the marker ---------------------------------------------------------- */

static int marker_encode(const acr_replica_info_t *in, acr_buf_t *b)
{
    uint8_t fmt = MARKER_FORMAT;
    if (acr_buf_append(b, &fmt, 1) != 0 ||
        acr__kv_put_str(b, in->stream, strlen(in->stream)) != 0 ||
        acr__kv_put_str(b, in->consumer, strlen(in->consumer)) != 0 ||
        acr__kv_put_i64(b, (int64_t)in->source_head) != 0 ||
        acr__kv_put_i64(b, in->source_head_ms) != 0 || acr__kv_put_i64(b, in->applied_ms) != 0 ||
        acr__kv_put_i64(b, in->last_lag_ms) != 0)
        return ACR_ENOMEM;
    return 0;
}

static int marker_decode(const MDB_val *v, acr_replica_info_t *out)
{
    memset(out, 0, sizeof *out);
    const uint8_t *p = v->mv_data;
    if (v->mv_size < 1 || p[0] != MARKER_FORMAT)
        return ACR_ECORRUPT;
    acr__kv_reader_t r;
    acr__kv_reader_init(&r, p + 1, v->mv_size - 1);
    acr_str_t s = acr__kv_get_str(&r), c = acr__kv_get_str(&r);
    out->source_head = (uint64_t)acr__kv_get_i64(&r);
    out->source_head_ms = acr__kv_get_i64(&r);
    out->applied_ms = acr__kv_get_i64(&r);
    out->last_lag_ms = acr__kv_get_i64(&r);
    if (r.bad || s.len >= sizeof out->stream || c.len >= sizeof out->consumer)
        return ACR_ECORRUPT;
    memcpy(out->stream, s.ptr, s.len);
    memcpy(out->consumer, c.ptr, c.len);
    return 0;
}

/* 1 when the transaction's ledger carries the marker (*out filled when not
 * NULL), 0 when not, or an LMDB code (> 1 never: LMDB codes are negative or
 * errno values, mapped by the caller). */
static int marker_read(MDB_txn *txn, MDB_dbi meta, acr_replica_info_t *out, int *mdb_rc)
{
    MDB_val k = acr__val(MARKER_KEY, strlen(MARKER_KEY)), v;
    int rc = mdb_get(txn, meta, &k, &v);
    *mdb_rc = 0;
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc != 0) {
        *mdb_rc = rc;
        return -1;
    }
    if (out != NULL && marker_decode(&v, out) != 0) {
        *mdb_rc = MDB_CORRUPTED;
        return -1;
    }
    return 1;
}

static int marker_write(MDB_txn *txn, MDB_dbi meta, const acr_replica_info_t *info)
{
    acr_buf_t b;
    acr_buf_init(&b);
    int rc = marker_encode(info, &b) != 0 ? ENOMEM : 0;
    if (rc == 0) {
        MDB_val k = acr__val(MARKER_KEY, strlen(MARKER_KEY)), v = acr__val(b.data, b.len);
        rc = mdb_put(txn, meta, &k, &v, 0);
    }
    acr_buf_destroy(&b);
    return rc;
}

int acr_replica_get(acr_ledger_t *l, acr_replica_info_t *out, acr_err_t *err)
{
    MDB_txn *txn;
    pthread_rwlock_rdlock(&l->map_lock);
    int rc = acr__read_begin(l->env, &txn);
    int mrc = rc;
    int got = -1;
    if (rc == 0) {
        got = marker_read(txn, l->dbi[ACR_DB_META], out, &mrc);
        mdb_txn_abort(txn);
    }
    pthread_rwlock_unlock(&l->map_lock);
    if (got < 0)
        return mrc == MDB_CORRUPTED
                   ? acr_err_set(err, ACR_ECORRUPT, "the replica marker is damaged")
                   : acr__mdb_err(mrc, err, "replica marker");
    return got;
}

int acr_replica_lag(acr_ledger_t *l, uint64_t *events_behind, int64_t *lag_ms,
                    int64_t *seen_age_ms, acr_err_t *err)
{
    acr_replica_info_t info;
    *events_behind = 0;
    *lag_ms = -1;
    *seen_age_ms = -1;
    int got = acr_replica_get(l, &info, err);
    if (got != 1)
        return got;
    uint64_t head = current_head(l);
    *events_behind = info.source_head > head ? info.source_head - head : 0;
    /* caught up, the replica lags by nothing: the last record's lag is history (after a
     * catch-up of old records it would read as minutes forever) */
    *lag_ms = *events_behind == 0 && info.last_lag_ms >= 0 ? 0 : info.last_lag_ms;
    if (info.source_head_ms != 0)
        *seen_age_ms = wall_ms() - info.source_head_ms;
    return 1;
}

int acr_replica_adopt(acr_ledger_t *l, const acr_replica_info_t *info, acr_err_t *err)
{
    MDB_txn *txn;
    pthread_rwlock_rdlock(&l->map_lock);
    int rc = mdb_txn_begin(l->env, NULL, 0, &txn);
    if (rc == 0) {
        MDB_stat st;
        rc = mdb_stat(txn, l->dbi[ACR_DB_LOG], &st);
        if (rc == 0 && st.ms_entries != 0) {
            mdb_txn_abort(txn);
            pthread_rwlock_unlock(&l->map_lock);
            return acr_err_set(err, ACR_EEXISTS,
                               "%s holds a ledger with %llu events: a replica starts empty",
                               l->path, (unsigned long long)st.ms_entries);
        }
        if (rc == 0)
            rc = marker_write(txn, l->dbi[ACR_DB_META], info);
        rc = rc == 0 ? mdb_txn_commit(txn) : (mdb_txn_abort(txn), rc);
    }
    pthread_rwlock_unlock(&l->map_lock);
    return rc ? acr__mdb_err(rc, err, "replica marker") : 0;
}

static int marker_with_config(MDB_txn *txn, const MDB_dbi *dbi, void *info)
{
    return marker_write(txn, dbi[ACR_DB_META], info);
}

/* The marker is written in the transaction that writes the new ledger's config, so a
 * `follow` killed at any instant leaves a replica (resumed by the next `follow`), or no
 * ledger, or the unfinished files the next create replaces: never a writable ledger that
 * carries the primary's id. */
int acr_replica_create(const char *dir, const acr_config_t *cfg, const acr_replica_info_t *info,
                       acr_err_t *err)
{
    return acr__ledger_create(dir, cfg, 0, marker_with_config, (void *)info, err);
}

/* ---- applying records ---------------------------------------------------- */

typedef acr__head_t head_t;

/* A record at or below the head (a redelivery): it must be the stored one. */
static int check_applied(acr__txn_t *tx, const acr_stored_t *s, acr_err_t *err)
{
    uint8_t key[8];
    acr__u64_be(s->seq, key);
    MDB_val k = acr__val(key, 8), v;
    int rc = mdb_get(tx->ltxn, tx->dbi[ACR_DB_LOG], &k, &v);
    if (rc != 0)
        return acr__tx_fail(tx, rc, err, "log");
    if (v.mv_size != s->len || memcmp(v.mv_data, s->bytes, s->len) != 0)
        return acr_err_set(err, ACR_ECHAIN_BROKEN,
                           "seq %llu from the stream differs from the record this replica "
                           "already holds at that seq",
                           (unsigned long long)s->seq);
    return 0;
}

/* The record's link: seq head+1, hash = XXH3-128(head hash || record), and a
 * record that decodes (*ev, slices into s). */
static int check_link(const head_t *head, const acr_stored_t *s, acr_event_t *ev, acr_err_t *err)
{
    if (s->seq != head->seq + 1)
        return acr_err_set(err, ACR_ECHAIN_BROKEN,
                           "the stream skips from seq %llu to %llu: seq %llu is missing",
                           (unsigned long long)head->seq, (unsigned long long)s->seq,
                           (unsigned long long)head->seq + 1);
    if (s->len <= ACR_HASH_LEN)
        return acr_err_set(err, ACR_ECHAIN_BROKEN, "seq %llu: the record is truncated",
                           (unsigned long long)s->seq);
    const uint8_t *rec = s->bytes + ACR_HASH_LEN;
    size_t len = s->len - ACR_HASH_LEN;
    if (!acr__chain_ok(head->hash, s->bytes, s->len))
        return acr_err_set(err, ACR_ECHAIN_BROKEN,
                           "seq %llu does not link to this replica's head: its hash is not "
                           "XXH3-128(hash(%llu) || record)",
                           (unsigned long long)s->seq, (unsigned long long)head->seq);
    if (acr_record_decode(rec, len, ev) != 0)
        return acr_err_set(err, ACR_ECHAIN_BROKEN, "seq %llu: the record does not decode",
                           (unsigned long long)s->seq);
    ev->seq = s->seq;
    return 0;
}

/* Applies one new record (seq head+1) as the primary's append did. */
static int apply_one(acr__txn_t *tx, MDB_cursor *log, head_t *head, const acr_stored_t *s,
                     acr_event_t *ev, acr_err_t *err)
{
    int rc = check_link(head, s, ev, err);
    if (rc == 0) /* id, stream, every rule, state and projection, as on the primary */
        rc = acr__apply_stored(tx, ev, head->hash, s->bytes, s->len, err);
    if (rc != 0)
        return rc;
    /* the stored bytes, verbatim */
    uint8_t key[8];
    acr__u64_be(s->seq, key);
    MDB_val lk = acr__val(key, 8), lv = acr__val(s->bytes, s->len);
    if ((rc = mdb_cursor_put(log, &lk, &lv, MDB_APPEND)) != 0)
        return acr__tx_fail(tx, rc, err, "log");
    head->seq = s->seq;
    memcpy(head->hash, s->bytes, ACR_HASH_LEN);
    return 0;
}

/* What one transaction applies: recs[0..n) and, when csv is set, the close
 * statement of the last record (a period.closed). */
typedef struct txn_work {
    const acr_stored_t *recs;
    size_t n;
    const char *period_id; /* the close's period, with csv */
    const char *csv;
    size_t csv_len;
    uint64_t source_head;
    int64_t source_head_ms;
} txn_work_t;

/* The work of one transaction inside it: records, the close's statement, the
 * marker. 0 or an ACR_E* code (LMDB failures also leave tx->mdb_rc set). */
static int apply_in_txn(acr_ledger_t *l, acr__txn_t *tx, const txn_work_t *w, head_t *head,
                        acr_err_t *err)
{
    acr_replica_info_t info;
    head_t applied;
    int mdb_rc = acr__log_head(l, tx->ltxn, head);
    if (mdb_rc == 0 && marker_read(tx->ltxn, l->dbi[ACR_DB_META], &info, &mdb_rc) == 0)
        return acr_err_set(err, ACR_EUSAGE, "%s is not a replica", l->path);
    if (mdb_rc == 0)
        mdb_rc = acr__applied_get(l, tx->txn, &applied);
    if (mdb_rc != 0)
        return acr__tx_fail(tx, mdb_rc, err, "replica");
    int rc = acr__catch_up(tx, &applied, head, err);
    MDB_cursor *log = NULL;
    if (rc == 0 && (mdb_rc = mdb_cursor_open(tx->ltxn, l->dbi[ACR_DB_LOG], &log)) != 0)
        return acr__tx_fail(tx, mdb_rc, err, "replica");
    int64_t last_recorded = -1;
    for (size_t i = 0; rc == 0 && i < w->n; i++) {
        acr_event_t ev;
        if (w->recs[i].seq <= head->seq) {
            rc = check_applied(tx, &w->recs[i], err); /* a redelivery */
        } else if ((rc = apply_one(tx, log, head, &w->recs[i], &ev, err)) == 0) {
            last_recorded = ev.recorded_at_ms;
        }
    }
    mdb_cursor_close(log);
    if (rc == 0)
        rc = acr__tx_flush(tx, err);
    if (rc == 0 && w->csv != NULL) {
        MDB_val k = acr__val(w->period_id, strlen(w->period_id));
        MDB_val v = acr__val(w->csv, w->csv_len);
        int prc = mdb_put(tx->ltxn, l->dbi[ACR_DB_CLOSES], &k, &v, MDB_NOOVERWRITE);
        if (prc == MDB_KEYEXIST)
            rc = acr_err_set(err, ACR_EMISMATCH, "period %s is already closed here",
                             w->period_id);
        else if (prc != 0)
            rc = acr__tx_fail(tx, prc, err, "closes");
    }
    if (rc != 0)
        return rc;
    int64_t now = wall_ms();
    if (w->source_head != 0) {
        info.source_head = w->source_head;
        info.source_head_ms = w->source_head_ms;
    }
    if (last_recorded >= 0) {
        info.applied_ms = now;
        info.last_lag_ms = now - last_recorded;
    }
    mdb_rc = marker_write(tx->ltxn, l->dbi[ACR_DB_META], &info);
    if (mdb_rc == 0)
        mdb_rc = acr__tx_seal(tx, head);
    return mdb_rc ? acr__tx_fail(tx, mdb_rc, err, "replica marker") : 0;
}

/* One durable write transaction of w; the map grows and the transaction is
 * redone when it is full. */
static int apply_txn(acr_ledger_t *l, const txn_work_t *w, uint64_t *out_head, acr_err_t *err)
{
    for (;;) {
        pthread_rwlock_rdlock(&l->map_lock);
        acr__txn_t tx = {.ledger = l, .dbi = l->dbi, .utc_offset_min = l->cfg.utc_offset_min};
        acr_buf_init(&tx.scratch);
        acr_buf_init(&tx.scratch2);
        head_t head;
        bool log_done = false;
        int rc = 0, mdb_rc = acr__wtxn_begin(l, &tx);
        if (mdb_rc == 0)
            rc = apply_in_txn(l, &tx, w, &head, err);
        if (mdb_rc == 0 && rc == 0)
            mdb_rc = acr__wtxn_commit(&tx, &log_done);
        acr__wtxn_end(&tx);
        if (!log_done && (mdb_rc == MDB_MAP_FULL || tx.mdb_rc == MDB_MAP_FULL)) {
            if ((rc = acr__grow_maps(l, err)) != 0)
                return rc;
            acr_err_clear(err);
            continue;
        }
        if (log_done)
            mdb_rc = 0; /* durable in the log; the state catches up at the next write */
        if (rc == 0 && mdb_rc != 0)
            rc = acr__commit_err(l, mdb_rc, err);
        if (rc == 0)
            *out_head = head.seq;
        return rc;
    }
}

static uint64_t current_head(acr_ledger_t *l)
{
    acr_reader_t *r;
    acr_err_t e;
    if (acr_reader_open(l, &r, &e) != 0)
        return 0;
    uint64_t h = acr_reader_head_seq(r);
    acr_reader_close(r);
    return h;
}

/* The record at s is a period.closed: recompute its statement here as of its
 * through_seq and compare with what the record says. On success *out holds
 * the statement (caller destroys). */
static int close_statement(acr_ledger_t *l, const acr_stored_t *s, acr_payout_t *out,
                           char period_id[ACR_PERIOD_ID_MAX + 1], acr_err_t *err)
{
    acr_event_t ev;
    if (s->len <= ACR_HASH_LEN ||
        acr_record_decode(s->bytes + ACR_HASH_LEN, s->len - ACR_HASH_LEN, &ev) != 0)
        return acr_err_set(err, ACR_ECHAIN_BROKEN, "seq %llu: the record does not decode",
                           (unsigned long long)s->seq);
    acr_str_t p = ev.str[ACR_F_PERIOD], fp = ev.str[ACR_F_FINGERPRINT];
    snprintf(period_id, ACR_PERIOD_ID_MAX + 1, "%.*s", (int)p.len, p.ptr);
    acr_payout_request_t req = {.period_id = period_id,
                                .as_of_seq = (uint64_t)ev.num[ACR_F_THROUGH_SEQ]};
    memset(out, 0, sizeof *out);
    if (req.as_of_seq == 0)
        return acr_err_set(err, ACR_EMISMATCH, "seq %llu: a close through seq 0",
                           (unsigned long long)s->seq);
    int rc = acr_payout_run(l, &req, out, err);
    if (rc != 0)
        return rc;
    if (fp.len != 32 || memcmp(fp.ptr, out->stmt.fingerprint, 32) != 0 ||
        out->stmt.line_count != (uint64_t)ev.num[ACR_F_LINES]) {
        rc = acr_err_set(err, ACR_EMISMATCH,
                         "the close of %s (seq %llu) records fingerprint %.*s with %lld lines; "
                         "the replica computes %s with %llu lines as of seq %llu",
                         period_id, (unsigned long long)s->seq, (int)fp.len, fp.ptr,
                         (long long)ev.num[ACR_F_LINES], out->stmt.fingerprint,
                         (unsigned long long)out->stmt.line_count,
                         (unsigned long long)req.as_of_seq);
        acr_payout_destroy(out);
    }
    return rc;
}

int acr_replica_apply(acr_ledger_t *l, const acr_stored_t *recs, size_t n, uint64_t source_head,
                      int64_t source_head_ms, uint64_t *out_head, acr_err_t *err)
{
    *out_head = current_head(l);
    size_t i = 0;
    int rc = 0;
    while (rc == 0 && (i < n || n == 0)) {
        /* the run up to (excluding) the next period.closed */
        size_t j = i;
        while (j < n && !(recs[j].len > ACR_HASH_LEN + ACR_RECORD_CONTENT_OFF &&
                          recs[j].bytes[ACR_HASH_LEN + ACR_RECORD_CONTENT_OFF] ==
                              ACR_EV_PERIOD_CLOSED && recs[j].seq > *out_head))
            j++;
        txn_work_t w = {recs + i, j - i, NULL, NULL, 0, source_head, source_head_ms};
        if (j > i || n == 0)
            rc = apply_txn(l, &w, out_head, err);
        if (rc != 0 || j == n)
            break;
        /* recs[j] is a new period.closed */
        acr_payout_t pay;
        char period_id[ACR_PERIOD_ID_MAX + 1];
        if (recs[j].seq != *out_head + 1)
            return acr_err_set(err, ACR_ECHAIN_BROKEN,
                               "the stream skips from seq %llu to %llu: seq %llu is missing",
                               (unsigned long long)*out_head, (unsigned long long)recs[j].seq,
                               (unsigned long long)*out_head + 1);
        if ((rc = close_statement(l, &recs[j], &pay, period_id, err)) != 0)
            break;
        txn_work_t c = {recs + j, 1, period_id, pay.stmt.csv, pay.stmt.csv_len, source_head,
                        source_head_ms};
        rc = apply_txn(l, &c, out_head, err);
        acr_payout_destroy(&pay);
        i = j + 1;
    }
    return rc;
}
