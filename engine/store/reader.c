/* reader.c - read snapshots of the log: sequential reads that check the
 * chain as they go, random access by seq, stored statements.
 *
 * A reader is one MDB_NOTLS read transaction, so it may be used from any
 * thread (one at a time) and runs concurrently with the writer. Records are
 * decoded in place: the slices of an acr_event_t point into the LMDB page
 * and stay valid until the reader is closed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#define XXH_INLINE_ALL /* one-shot XXH3-128 of a short record: inlined, no call */
#include <xxhash.h>

#include "store_internal.h"

struct acr_reader {
    acr_ledger_t *ledger;
    MDB_txn *stxn;                  /* the derived state's snapshot, begun first */
    MDB_txn *txn;                   /* the log's */
    MDB_cursor *cur;
    uint64_t head_seq;
    uint8_t head_hash[ACR_HASH_LEN];
    uint64_t next_seq;              /* seq the next acr_reader_next returns */
    uint8_t prev_hash[ACR_HASH_LEN]; /* hash(next_seq - 1) */
    bool positioned;                /* the cursor sits on next_seq - 1 (or before 1) */
    uintptr_t seen_lo, seen_hi;     /* the map addresses of the records read since the drop */
    size_t scanned;                 /* record bytes read sequentially since the last drop */
    uintptr_t drop_lo, drop_hi;     /* bulk reads: the previous window, dropped one window late */
    uint64_t fetch_seq;             /* fetches by seq: the seq the cursor sits on (0: none) */
    const uint8_t *fetch_val;       /* its stored value (hash first), valid while r is open */
};

/* A long sequential read maps every page of the log it passes (file-backed, counted in the
 * process RSS: ~4 GB for 10 M events). The map is read-only and the pages stay in the page
 * cache, so every so often the reader unmaps the range of addresses its records came from
 * (MADV_DONTNEED): later accesses, such as the slices of events already returned, fault
 * the same bytes back in. */
#define DROP_EVERY_BYTES ((size_t)16 << 20)

void acr_hash_hex(const uint8_t hash[ACR_HASH_LEN], char out[33])
{
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < ACR_HASH_LEN; i++) {
        out[2 * i] = hex[hash[i] >> 4];
        out[2 * i + 1] = hex[hash[i] & 15];
    }
    out[32] = '\0';
}

static void genesis_hash(const acr_ledger_t *l, uint8_t out[ACR_HASH_LEN])
{
    acr__genesis(l, out);
}

/* The snapshot is the log through the state's APPLIED marker: the state is read first, so
 * the log (committed before it) holds at least that much, and a record after the marker
 * (a writer between its two commits, or one that died there) is not part of it. */
int acr_reader_open(acr_ledger_t *l, acr_reader_t **out, acr_err_t *err)
{
    acr_reader_t *r = calloc(1, sizeof *r);
    if (r == NULL)
        return acr_err_set(err, ACR_ENOMEM, "out of memory");
    r->ledger = l;
    pthread_rwlock_rdlock(&l->map_lock);
    acr__head_t applied;
    int rc = acr__read_begin(l->senv, &r->stxn);
    if (rc == 0 && (rc = acr__applied_get(l, r->stxn, &applied)) == MDB_NOTFOUND)
        rc = MDB_CORRUPTED;
    if (rc == 0)
        rc = acr__read_begin(l->env, &r->txn);
    if (rc == 0)
        rc = mdb_cursor_open(r->txn, l->dbi[ACR_DB_LOG], &r->cur);
    int code = rc ? acr__mdb_err(rc, err, "opening a read snapshot") : 0;
    if (code == 0 && (code = acr__applied_check(l, r->txn, &applied, err)) == 0) {
        r->head_seq = applied.seq;
        memcpy(r->head_hash, applied.hash, ACR_HASH_LEN);
    }
    if (code != 0) {
        if (r->cur != NULL)
            mdb_cursor_close(r->cur);
        if (r->txn != NULL)
            mdb_txn_abort(r->txn);
        if (r->stxn != NULL)
            mdb_txn_abort(r->stxn);
        pthread_rwlock_unlock(&l->map_lock);
        free(r);
        return code;
    }
    genesis_hash(l, r->prev_hash);
    r->next_seq = 1;
    *out = r;
    return 0;
}

void acr_reader_close(acr_reader_t *r)
{
    if (r == NULL)
        return;
    mdb_cursor_close(r->cur);
    mdb_txn_abort(r->txn);
    mdb_txn_abort(r->stxn);
    pthread_rwlock_unlock(&r->ledger->map_lock);
    free(r);
}

uint64_t acr_reader_head_seq(const acr_reader_t *r)
{
    return r->head_seq;
}

void acr_reader_head_hash(const acr_reader_t *r, uint8_t out[ACR_HASH_LEN])
{
    memcpy(out, r->head_hash, ACR_HASH_LEN);
}

int acr_reader_hash_at(acr_reader_t *r, uint64_t seq, uint8_t out[ACR_HASH_LEN], acr_err_t *err)
{
    if (seq == 0) {
        genesis_hash(r->ledger, out);
        return 0;
    }
    uint8_t key[8];
    acr__u64_be(seq, key);
    MDB_val k = acr__val(key, 8), v;
    int rc = seq > r->head_seq ? MDB_NOTFOUND /* after the snapshot's marker */
                               : mdb_get(r->txn, r->ledger->dbi[ACR_DB_LOG], &k, &v);
    if (rc == MDB_NOTFOUND)
        return acr_err_set(err, ACR_ENOT_FOUND, "no event at seq %llu", (unsigned long long)seq);
    if (rc != 0)
        return acr__mdb_err(rc, err, "log");
    if (v.mv_size < ACR_HASH_LEN)
        return acr_err_set(err, ACR_ECORRUPT, "seq %llu: record too short",
                           (unsigned long long)seq);
    memcpy(out, v.mv_data, ACR_HASH_LEN);
    return 0;
}

int acr_reader_seek(acr_reader_t *r, uint64_t seq, acr_err_t *err)
{
    if (seq == 0)
        seq = 1;
    int rc = acr_reader_hash_at(r, seq - 1, r->prev_hash, err);
    if (rc == ACR_ENOT_FOUND && seq - 1 > r->head_seq) {
        memcpy(r->prev_hash, r->head_hash, ACR_HASH_LEN);
        rc = 0;
    }
    if (rc != 0)
        return rc;
    r->next_seq = seq;
    r->positioned = false;
    r->fetch_seq = 0;
    return 0;
}

/* Checks one stored value against the chain: 0, or the error naming seq. */
static int check_value(acr_reader_t *r, uint64_t seq, const MDB_val *v, acr_event_t *out,
                       acr_err_t *err)
{
    if (v->mv_size <= ACR_HASH_LEN)
        return acr_err_set(err, ACR_ECHAIN_BROKEN, "seq %llu: the stored record is truncated",
                           (unsigned long long)seq);
    const uint8_t *p = v->mv_data;
    size_t len = v->mv_size - ACR_HASH_LEN;
    if (!acr__chain_ok(r->prev_hash, p, v->mv_size))
        return acr_err_set(err, ACR_ECHAIN_BROKEN,
                           "seq %llu: the stored hash does not match its content and chain",
                           (unsigned long long)seq);
    if (acr_record_decode(p + ACR_HASH_LEN, len, out) != 0)
        return acr_err_set(err, ACR_ECHAIN_BROKEN, "seq %llu: the stored record does not decode",
                           (unsigned long long)seq);
    out->seq = seq;
    return 0;
}

int acr_reader_next(acr_reader_t *r, acr_event_t *out, uint8_t out_hash[ACR_HASH_LEN],
                    acr_err_t *err)
{
    if (r->next_seq > r->head_seq)
        return 0;
    MDB_val k, v;
    int rc;
    r->fetch_seq = 0;
    if (r->positioned) {
        rc = mdb_cursor_get(r->cur, &k, &v, MDB_NEXT);
    } else {
        uint8_t key[8];
        acr__u64_be(r->next_seq, key);
        k = acr__val(key, 8);
        rc = mdb_cursor_get(r->cur, &k, &v, MDB_SET_KEY);
        r->positioned = true;
    }
    if (rc == MDB_NOTFOUND || (rc == 0 && (k.mv_size != 8 ||
                                           acr__be_u64(k.mv_data) != r->next_seq)))
        return acr_err_set(err, ACR_ECHAIN_BROKEN, "seq %llu is missing from the log",
                           (unsigned long long)r->next_seq);
    if (rc != 0)
        return acr__mdb_err(rc, err, "log");
    rc = check_value(r, r->next_seq, &v, out, err);
    if (rc != 0)
        return rc;
    memcpy(r->prev_hash, v.mv_data, ACR_HASH_LEN);
    if (out_hash != NULL)
        memcpy(out_hash, v.mv_data, ACR_HASH_LEN);
    r->next_seq++;
    uintptr_t a = (uintptr_t)v.mv_data;
    if (r->scanned == 0 || a < r->seen_lo)
        r->seen_lo = a;
    if (r->scanned == 0 || a + v.mv_size > r->seen_hi)
        r->seen_hi = a + v.mv_size;
    if ((r->scanned += v.mv_size) >= DROP_EVERY_BYTES) {
        uintptr_t lo = r->seen_lo & ~(uintptr_t)4095, hi = (r->seen_hi + 4095) & ~(uintptr_t)4095;
        madvise((void *)lo, hi - lo, MADV_DONTNEED); /* advice: a failure is harmless */
        r->scanned = 0;
    }
    return 1;
}

/* ---- bulk sequential read (engine-internal: payout runs) ---------------- */

static inline uint64_t load_be64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return __builtin_bswap64(v);
}

int acr__reader_next_raw(acr_reader_t *r, uint64_t through, uint32_t type_mask, acr_str_t *recs,
                         uint64_t *seqs, size_t max, size_t *n_out, int64_t *max_at_ms,
                         acr_err_t *err)
{
    size_t n = 0;
    int rc = 0;
    int64_t mx = *max_at_ms;
    uint64_t seq = r->next_seq;
    if (through > r->head_seq)
        through = r->head_seq;
    const uint8_t *prev = r->prev_hash;
    r->fetch_seq = 0;
    uintptr_t lo = r->seen_lo, hi = r->seen_hi;
    size_t scanned = r->scanned;
    while (n < max && seq <= through) {
        MDB_val k, v;
        if (r->positioned) {
            rc = mdb_cursor_get(r->cur, &k, &v, MDB_NEXT);
        } else {
            uint8_t key[8];
            acr__u64_be(seq, key);
            k = acr__val(key, 8);
            rc = mdb_cursor_get(r->cur, &k, &v, MDB_SET_KEY);
            r->positioned = true;
        }
        if (rc == MDB_NOTFOUND || (rc == 0 && (k.mv_size != 8 || load_be64(k.mv_data) != seq))) {
            rc = acr_err_set(err, ACR_ECHAIN_BROKEN, "seq %llu is missing from the log",
                             (unsigned long long)seq);
            break;
        }
        if (rc != 0) {
            rc = acr__mdb_err(rc, err, "log");
            break;
        }
        const uint8_t *p = v.mv_data;
        if (v.mv_size <= ACR_HASH_LEN) {
            rc = acr_err_set(err, ACR_ECHAIN_BROKEN, "seq %llu: the stored record is truncated",
                             (unsigned long long)seq);
            break;
        }
        size_t len = v.mv_size - ACR_HASH_LEN;
        if (!acr__chain_ok(prev, p, v.mv_size)) {
            rc = acr_err_set(err, ACR_ECHAIN_BROKEN,
                             "seq %llu: the stored hash does not match its content and chain",
                             (unsigned long long)seq);
            break;
        }
        const uint8_t *rec = p + ACR_HASH_LEN;
        int type = acr_record_check_header(rec, len);
        if (type <= 0) {
            rc = acr_err_set(err, ACR_ECHAIN_BROKEN, "seq %llu: the stored record does not decode",
                             (unsigned long long)seq);
            break;
        }
        if (type != ACR_EV_PERIOD_CLOSED) {
            int64_t at = (int64_t)load_be64(rec + ACR_RECORD_CONTENT_OFF + 2);
            mx = at > mx ? at : mx;
        }
        prev = p;
        uintptr_t a = (uintptr_t)p;
        if (scanned == 0 || a < lo)
            lo = a;
        if (scanned == 0 || a + v.mv_size > hi)
            hi = a + v.mv_size;
        if ((scanned += v.mv_size) >= DROP_EVERY_BYTES) {
            /* drop the window before this one: its records have been consumed by now
             * (a consumer may still be decoding this window's) */
            if (r->drop_hi > r->drop_lo)
                madvise((void *)r->drop_lo, r->drop_hi - r->drop_lo, MADV_DONTNEED);
            r->drop_lo = lo & ~(uintptr_t)4095;
            r->drop_hi = (hi + 4095) & ~(uintptr_t)4095;
            scanned = 0;
        }
        if ((type_mask >> type) & 1u) {
            recs[n] = (acr_str_t){(const char *)rec, (uint32_t)len};
            seqs[n++] = seq++;
            if (type == ACR_EV_PERIOD_CLOSED)
                break; /* the caller adds its statement before the next event */
        } else {
            seq++;
        }
    }
    if (prev != r->prev_hash)
        memcpy(r->prev_hash, prev, ACR_HASH_LEN);
    r->next_seq = seq;
    r->seen_lo = lo;
    r->seen_hi = hi;
    r->scanned = scanned;
    *max_at_ms = mx;
    *n_out = n;
    return rc;
}

/* ---- fetch by seq (engine-internal: indexed payout runs) ------------------ */

/* Fetches wanted within this many seqs of the last one walk the cursor forward instead of
 * descending the B-tree again: a month's wanted seqs are mostly close together. */
#define FETCH_SKIP_MAX 16

/* Moves the cursor to the value of seq (MDB_NEXT when next, else MDB_SET_KEY). */
static int fetch_move(acr_reader_t *r, uint64_t seq, bool next, MDB_val *v, acr_err_t *err)
{
    uint8_t key[8];
    MDB_val k = acr__val(key, 8);
    acr__u64_be(seq, key);
    int rc = mdb_cursor_get(r->cur, &k, v, next ? MDB_NEXT : MDB_SET_KEY);
    if (rc == MDB_NOTFOUND || (rc == 0 && (k.mv_size != 8 || load_be64(k.mv_data) != seq)))
        return acr_err_set(err, ACR_ECHAIN_BROKEN, "seq %llu is missing from the log",
                           (unsigned long long)seq);
    if (rc != 0)
        return acr__mdb_err(rc, err, "log");
    if (v->mv_size <= ACR_HASH_LEN)
        return acr_err_set(err, ACR_ECHAIN_BROKEN, "seq %llu: the stored record is truncated",
                           (unsigned long long)seq);
    return 0;
}

/* Unmaps the pages of what was fetched, one window late (see DROP_EVERY_BYTES). A window
 * ends after DROP_EVERY_BYTES of records or four times that of address range: a run that skips most
 * records maps (fault-around) far more than it fetches. */
static void fetch_note(acr_reader_t *r, const MDB_val *v)
{
    uintptr_t a = (uintptr_t)v->mv_data;
    if (r->scanned == 0 || a < r->seen_lo)
        r->seen_lo = a;
    if (r->scanned == 0 || a + v->mv_size > r->seen_hi)
        r->seen_hi = a + v->mv_size;
    if ((r->scanned += v->mv_size) < DROP_EVERY_BYTES &&
        r->seen_hi - r->seen_lo < 4 * DROP_EVERY_BYTES)
        return;
    if (r->drop_hi > r->drop_lo)
        madvise((void *)r->drop_lo, r->drop_hi - r->drop_lo, MADV_DONTNEED);
    r->drop_lo = r->seen_lo & ~(uintptr_t)4095;
    r->drop_hi = (r->seen_hi + 4095) & ~(uintptr_t)4095;
    r->scanned = 0;
}

/* The record of the log value p (hash || record, size > ACR_HASH_LEN bytes) that follows
 * chain hash prev: its type with *out_rec, 0 when XXH3-128(prev || record) is not the stored
 * hash, -1 when the record's header does not decode. */
static int entry_record(const uint8_t *prev, const uint8_t *p, size_t size, acr_str_t *out_rec)
{
    if (!acr__chain_ok(prev, p, size))
        return 0;
    const uint8_t *rec = p + ACR_HASH_LEN;
    size_t len = size - ACR_HASH_LEN;
    int type = acr_record_check_header(rec, len);
    if (type <= 0)
        return -1;
    *out_rec = (acr_str_t){(const char *)rec, (uint32_t)len};
    return type;
}

int acr__reader_copy_raw(uint64_t seq, const uint8_t *copy, size_t len, acr_str_t *out_rec,
                         int *out_type, acr_err_t *err)
{
    int type = entry_record(copy, copy + ACR_HASH_LEN, len - ACR_HASH_LEN, out_rec);
    if (type <= 0)
        return acr_err_set(err, ACR_ECORRUPT, "the period_seqs copy of seq %llu does not match "
                           "its chain hash: run `accrue rebuild`", (unsigned long long)seq);
    *out_type = type;
    return 0;
}

int acr__reader_fetch_raw(acr_reader_t *r, uint64_t seq, acr_str_t *out_rec, int *out_type,
                          acr_err_t *err)
{
    if (seq == 0 || seq > r->head_seq)
        return acr_err_set(err, ACR_ECHAIN_BROKEN, "seq %llu is missing from the log",
                           (unsigned long long)seq);
    r->positioned = false; /* the sequential reads position the cursor again */
    uint8_t genesis[ACR_HASH_LEN];
    const uint8_t *prev = genesis;
    MDB_val v;
    int rc = 0;
    uint64_t at = r->fetch_seq;
    if (at != 0 && at < seq && seq - at <= FETCH_SKIP_MAX) {
        prev = r->fetch_val;
        for (; rc == 0 && at + 1 < seq; prev = v.mv_data)
            rc = fetch_move(r, ++at, true, &v, err);
    } else if (seq == 1) {
        genesis_hash(r->ledger, genesis);
        at = 0;
    } else {
        rc = fetch_move(r, at = seq - 1, false, &v, err);
        prev = v.mv_data;
    }
    if (rc == 0)
        rc = fetch_move(r, seq, at != 0, &v, err);
    r->fetch_seq = 0;
    if (rc != 0)
        return rc;
    const uint8_t *p = v.mv_data;
    int type = entry_record(prev, p, v.mv_size, out_rec);
    if (type == 0)
        return acr_err_set(err, ACR_ECHAIN_BROKEN,
                           "seq %llu: the stored hash does not match its content and chain",
                           (unsigned long long)seq);
    if (type < 0)
        return acr_err_set(err, ACR_ECHAIN_BROKEN, "seq %llu: the stored record does not decode",
                           (unsigned long long)seq);
    r->fetch_seq = seq;
    r->fetch_val = p;
    fetch_note(r, &v);
    *out_type = type;
    return 0;
}

int acr__close_record(const acr_ledger_t *l, MDB_txn *stxn, MDB_txn *ltxn, const char *period,
                      size_t len, acr_event_t *out, acr_err_t *err)
{
    char id[16 + ACR_PERIOD_ID_MAX];
    int n = snprintf(id, sizeof id, ACR_CLOSE_ID_PREFIX "%.*s", (int)len, period);
    if (n < 0 || (size_t)n >= sizeof id)
        return 0;
    MDB_val k = acr__val(id, (size_t)n), v;
    int rc = mdb_get(stxn, l->dbi[ACR_DB_IDS], &k, &v);
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc != 0 || v.mv_size != 8)
        return acr__mdb_err(rc ? rc : MDB_CORRUPTED, err, "ids");
    uint64_t seq = acr__be_u64(v.mv_data);
    MDB_val lk = acr__val(v.mv_data, 8), lv;
    if ((rc = mdb_get(ltxn, l->dbi[ACR_DB_LOG], &lk, &lv)) != 0)
        return acr__mdb_err(rc, err, "log");
    if (lv.mv_size <= ACR_HASH_LEN ||
        acr_record_decode((const uint8_t *)lv.mv_data + ACR_HASH_LEN, lv.mv_size - ACR_HASH_LEN,
                          out) != 0 ||
        out->type != ACR_EV_PERIOD_CLOSED)
        return 2;
    out->seq = seq;
    return 1;
}

int acr__reader_statement_raw(acr_reader_t *r, const char *period_id, const char **out_csv,
                              size_t *out_len, acr_err_t *err)
{
    MDB_val k = acr__val(period_id, strlen(period_id)), v;
    int rc = mdb_get(r->txn, r->ledger->dbi[ACR_DB_CLOSES], &k, &v);
    if (rc == MDB_NOTFOUND)
        return acr_err_set(err, ACR_ENOT_FOUND, "period %s is not closed", period_id);
    if (rc != 0)
        return acr__mdb_err(rc, err, "closes");
    *out_csv = v.mv_data;
    *out_len = v.mv_size;
    return 0;
}

int acr__statement_check(const char *period, const char *csv, size_t len, acr_str_t recorded,
                         const char *hint, acr_err_t *err)
{
    char got[33];
    XXH128_canonical_t c;
    XXH128_canonicalFromHash(&c, XXH3_128bits(csv, len));
    acr_hash_hex(c.digest, got);
    if (recorded.len == 32 && memcmp(recorded.ptr, got, 32) == 0)
        return 0;
    return acr_err_set(err, ACR_EMISMATCH, "the stored statement of %s hashes to %s, not the "
                       "fingerprint its close recorded (%.*s)%s", period, got,
                       (int)recorded.len, recorded.ptr, hint);
}

/* The statement bytes are not in the chain; the fingerprint their close recorded, which
 * is, covers them. A statement whose close is not in the snapshot is not one yet. */
int acr_reader_statement(acr_reader_t *r, const char *period_id, const char **out_csv,
                         size_t *out_len, char *out_fingerprint, acr_err_t *err)
{
    acr_event_t close;
    int rc = acr__close_record(r->ledger, r->stxn, r->txn, period_id, strlen(period_id), &close,
                               err);
    if (rc == 0)
        return acr_err_set(err, ACR_ENOT_FOUND, "period %s is not closed", period_id);
    if (rc == 2)
        return acr_err_set(err, ACR_ECORRUPT, "the close of %s is damaged", period_id);
    if (rc < 0 || (rc = acr__reader_statement_raw(r, period_id, out_csv, out_len, err)) != 0)
        return rc;
    acr_str_t fp = close.str[ACR_F_FINGERPRINT];
    rc = acr__statement_check(period_id, *out_csv, *out_len, fp, ACR_STATEMENT_HINT, err);
    if (rc == 0 && out_fingerprint != NULL)
        snprintf(out_fingerprint, 33, "%.*s", (int)fp.len, fp.ptr); /* checked: 32 digits */
    return rc;
}

/* Engine-internal access to the snapshot's transaction. */
MDB_txn *acr__reader_txn(acr_reader_t *r, int db)
{
    return acr__db_in_log(db) ? r->txn : r->stxn;
}
