/* period_seqs.c - the period_seqs table: which seqs a payout run of a period reads.
 *
 * A run of period U depends only on the sales, refunds and adjustments of the periods
 * <= U, the refunds of those sales whatever their own period, and the events every run
 * reads (partners, plans, the program, closes): commissions.md and docs/benchmarks.md,
 * "A run in proportion to its periods". This file writes, in the write transaction of
 * each accepted event (append, group commit, the replica's apply, rebuild's and verify's
 * replay: every caller of acr__state_apply), the rows that let the payout driver list
 * exactly those seqs (layout in store_internal.h). The rows of one period are keyed by
 * seq, so within a period each put lands at the end of its range.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "accrue/commission.h"
#include "accrue/date.h"
#include "pseq_internal.h"

/* The types listed under their own period; the others the processor uses are read by
 * every run. */
#define DATED_MASK                                                                                 \
    ((1u << ACR_EV_SALE_RECORDED) | (1u << ACR_EV_SALE_REFUNDED) |                                \
     (1u << ACR_EV_ADJUSTMENT_RECORDED))
#define EVERY_RUN_MASK (ACR_COMM_TYPE_MASK & ~DATED_MASK)

_Static_assert((DATED_MASK & ACR_COMM_TYPE_MASK) == DATED_MASK,
               "the processor reads every dated type");

static uint32_t period_key_of(const acr__txn_t *tx, int64_t at_ms)
{
    int32_t day = acr_local_day(at_ms, tx->utc_offset_min);
    return acr__pseq_period_key(acr_period_of_day(tx->ledger->cfg.period_kind, day));
}

/* ---- a replay's rows, collected per period ---- */

typedef struct bulk_list {
    uint32_t key;     /* the period key */
    uint64_t *seqs;   /* ascending */
    uint8_t *types;
    uint64_t *copies; /* 0, or 1 + the offset in copy_bytes of the row's copy (u32 len, bytes) */
    size_t n, cap;
} bulk_list_t;

struct acr__pseq_bulk {
    bulk_list_t *lists; /* ascending key */
    size_t n, cap;
    size_t last;        /* the list the last row went to */
    acr_buf_t copy_bytes; /* the copy rows' values after their type byte */
};

int acr__pseq_bulk_begin(acr__txn_t *tx, acr_err_t *err)
{
    if ((tx->pseq_bulk = calloc(1, sizeof *tx->pseq_bulk)) == NULL)
        return acr_err_set(err, ACR_ENOMEM, "out of memory");
    acr_buf_init(&tx->pseq_bulk->copy_bytes);
    return 0;
}

void acr__pseq_bulk_abort(acr__txn_t *tx)
{
    struct acr__pseq_bulk *b = tx->pseq_bulk;
    if (b == NULL)
        return;
    for (size_t i = 0; i < b->n; i++) {
        free(b->lists[i].seqs);
        free(b->lists[i].types);
        free(b->lists[i].copies);
    }
    free(b->lists);
    acr_buf_destroy(&b->copy_bytes);
    free(b);
    tx->pseq_bulk = NULL;
}

/* The list of period_key, added in key order when new; NULL on out of memory. */
static bulk_list_t *bulk_list(struct acr__pseq_bulk *b, uint32_t key)
{
    if (b->last < b->n && b->lists[b->last].key == key)
        return &b->lists[b->last];
    size_t lo = 0, hi = b->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (b->lists[mid].key < key)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == b->n || b->lists[lo].key != key) {
        if (b->n == b->cap) {
            size_t cap = b->cap ? b->cap * 2 : 16;
            bulk_list_t *l = realloc(b->lists, cap * sizeof *l);
            if (l == NULL)
                return NULL;
            b->lists = l;
            b->cap = cap;
        }
        memmove(&b->lists[lo + 1], &b->lists[lo], (b->n - lo) * sizeof *b->lists);
        b->lists[lo] = (bulk_list_t){.key = key};
        b->n++;
    }
    b->last = lo;
    return &b->lists[lo];
}

/* Adds a row; copy (len bytes after the type, NULL for an index row) is kept in the bulk's
 * buffer. */
static int bulk_add(struct acr__pseq_bulk *b, uint32_t key, uint64_t seq, uint8_t type,
                    const uint8_t *copy, size_t len)
{
    bulk_list_t *l = bulk_list(b, key);
    if (l == NULL)
        return ACR_ENOMEM;
    uint64_t at = 0;
    if (copy != NULL) {
        uint8_t n[4] = {(uint8_t)(len >> 24), (uint8_t)(len >> 16), (uint8_t)(len >> 8),
                        (uint8_t)len};
        at = 1 + b->copy_bytes.len;
        if (acr_buf_append(&b->copy_bytes, n, sizeof n) != 0 ||
            acr_buf_append(&b->copy_bytes, copy, len) != 0)
            return ACR_ENOMEM;
    }
    if (l->n > 0 && l->seqs[l->n - 1] == seq) { /* the same row again: the last put wins */
        l->types[l->n - 1] = type;
        l->copies[l->n - 1] = at;
        return 0;
    }
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 1024;
        uint64_t *s = realloc(l->seqs, cap * sizeof *s);
        if (s == NULL)
            return ACR_ENOMEM;
        l->seqs = s;
        uint8_t *t = realloc(l->types, cap);
        if (t == NULL)
            return ACR_ENOMEM;
        l->types = t;
        uint64_t *c = realloc(l->copies, cap * sizeof *c);
        if (c == NULL)
            return ACR_ENOMEM;
        l->copies = c;
        l->cap = cap;
    }
    l->seqs[l->n] = seq;
    l->copies[l->n] = at;
    l->types[l->n++] = type;
    return 0;
}

/* A row's value: the type, then the copy when it has one (in scratch). */
static MDB_val row_value(acr_buf_t *scratch, const uint8_t *type, const uint8_t *copy,
                         size_t len)
{
    if (copy == NULL)
        return acr__val(type, 1);
    acr_buf_reset(scratch);
    if (acr_buf_append(scratch, type, 1) != 0 || acr_buf_append(scratch, copy, len) != 0)
        return acr__val(NULL, 0);
    return acr__val(scratch->data, scratch->len);
}

int acr__pseq_bulk_end(acr__txn_t *tx, acr_err_t *err)
{
    struct acr__pseq_bulk *b = tx->pseq_bulk;
    tx->pseq_bulk = NULL; /* the puts below go to the table */
    MDB_cursor *cur;
    int rc = mdb_cursor_open(tx->txn, tx->dbi[ACR_DB_PERIOD_SEQS], &cur);
    uint8_t last[ACR__PSEQ_KEY_LEN];
    bool have_last = false; /* rows a flush during the replay already wrote (the marker) */
    if (rc == 0) {
        MDB_val k, v;
        int lrc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
        if (lrc == 0 && k.mv_size == sizeof last) {
            memcpy(last, k.mv_data, sizeof last);
            have_last = true;
        } else if (lrc != 0 && lrc != MDB_NOTFOUND) {
            rc = lrc;
        }
        mdb_cursor_close(cur);
    }
    for (size_t i = 0; rc == 0 && i < b->n; i++) {
        const bulk_list_t *l = &b->lists[i];
        for (size_t j = 0; rc == 0 && j < l->n; j++) {
            uint8_t key[ACR__PSEQ_KEY_LEN];
            acr__pseq_key(l->key, l->seqs[j], key);
            const uint8_t *copy = NULL;
            size_t len = 0;
            if (l->copies[j] != 0) {
                const uint8_t *c = b->copy_bytes.data + l->copies[j] - 1;
                len = (size_t)c[0] << 24 | (size_t)c[1] << 16 | (size_t)c[2] << 8 | c[3];
                copy = c + 4;
            }
            MDB_val k = acr__val(key, sizeof key);
            MDB_val v = row_value(&tx->scratch, &l->types[j], copy, len);
            if (v.mv_data == NULL) {
                rc = ENOMEM;
                break;
            }
            bool append = !have_last || memcmp(key, last, sizeof key) > 0;
            rc = acr__dput(tx, ACR_DB_PERIOD_SEQS, &k, &v, append ? MDB_APPEND : 0);
        }
    }
    tx->pseq_bulk = b;
    acr__pseq_bulk_abort(tx);
    return rc ? acr__tx_fail(tx, rc, err, acr__db_name(ACR_DB_PERIOD_SEQS)) : 0;
}

/* Writes the row (period_key, seq) of an event of type `type`, with copy (len bytes) or
 * without (copy NULL). */
static int put_row(acr__txn_t *tx, uint32_t period_key, uint64_t seq, uint8_t type,
                   const uint8_t *copy, size_t len, acr_err_t *err)
{
    if (tx->pseq_bulk != NULL)
        return bulk_add(tx->pseq_bulk, period_key, seq, type, copy, len) == 0
                   ? 0 : acr_err_set(err, ACR_ENOMEM, "out of memory");
    uint8_t key[ACR__PSEQ_KEY_LEN];
    acr__pseq_key(period_key, seq, key);
    MDB_val k = acr__val(key, sizeof key), v = row_value(&tx->scratch, &type, copy, len);
    if (v.mv_data == NULL)
        return acr_err_set(err, ACR_ENOMEM, "out of memory");
    int rc = acr__dput(tx, ACR_DB_PERIOD_SEQS, &k, &v, 0);
    return rc ? acr__tx_fail(tx, rc, err, acr__db_name(ACR_DB_PERIOD_SEQS)) : 0;
}

/* A row that carries a copy of ev's log value: noted, and written by acr__state_logged once
 * the value exists (the append path applies the state before it writes the record). */
static int put_copy_row(acr__txn_t *tx, uint32_t period_key, const acr_event_t *ev,
                        acr_err_t *err)
{
    if (tx->pseq_copies >= sizeof tx->pseq_copy_key / sizeof tx->pseq_copy_key[0] ||
        (tx->pseq_copies > 0 && tx->pseq_copy_seq != ev->seq))
        return acr_err_set(err, ACR_ECORRUPT, "internal: the period index rows of seq %llu "
                           "were not written", (unsigned long long)tx->pseq_copy_seq);
    tx->pseq_copy_seq = ev->seq;
    tx->pseq_copy_type = (uint8_t)ev->type;
    tx->pseq_copy_key[tx->pseq_copies++] = period_key;
    return 0;
}

int acr__state_logged(acr__txn_t *tx, uint64_t seq, const uint8_t prev[ACR_HASH_LEN],
                      const uint8_t *entry, size_t len, acr_err_t *err)
{
    uint8_t n = tx->pseq_copies;
    tx->pseq_copies = 0;
    if (n == 0)
        return 0;
    if (tx->pseq_copy_seq != seq)
        return acr_err_set(err, ACR_ECORRUPT, "internal: the period index rows of seq %llu "
                           "were given seq %llu", (unsigned long long)tx->pseq_copy_seq,
                           (unsigned long long)seq);
    /* prev || entry, after the type byte: the copy */
    acr_buf_t *c = &tx->scratch2;
    acr_buf_reset(c);
    if (acr_buf_append(c, prev, ACR_HASH_LEN) != 0 || acr_buf_append(c, entry, len) != 0)
        return acr_err_set(err, ACR_ENOMEM, "out of memory");
    int rc = 0;
    for (uint8_t i = 0; rc == 0 && i < n; i++)
        rc = put_row(tx, tx->pseq_copy_key[i], seq, tx->pseq_copy_type, c->data, c->len, err);
    return rc;
}

/* The marker lives in tx's row cache (write-back): one put per batch, not per event. */
static int touch_marker(acr__txn_t *tx, uint64_t seq, acr_err_t *err)
{
    uint8_t key[ACR__PSEQ_KEY_LEN], val[ACR__PSEQ_MARKER_LEN];
    acr__pseq_key(ACR__PSEQ_MARKER_PERIOD, ACR__PSEQ_MARKER_SEQ, key);
    bool fresh;
    acr__cached_row_t *e = acr__cache_get(tx, ACR_DB_PERIOD_SEQS, key, sizeof key, &fresh);
    if (e == NULL)
        return acr_err_set(err, ACR_ENOMEM, "out of memory");
    if (fresh && !tx->cache.empty) {
        MDB_val k = acr__val(key, sizeof key), v;
        int rc = mdb_get(tx->txn, tx->dbi[ACR_DB_PERIOD_SEQS], &k, &v);
        if (rc != 0 && rc != MDB_NOTFOUND)
            return acr__tx_fail(tx, rc, err, acr__db_name(ACR_DB_PERIOD_SEQS));
        if (rc == 0 && acr__cached_row_set(tx, e, v.mv_data, v.mv_size) != 0)
            return acr_err_set(err, ACR_ENOMEM, "out of memory");
    }
    uint64_t first = seq;
    if (e->state == ACR__ROW_PRESENT && e->vlen == ACR__PSEQ_MARKER_LEN &&
        e->val[0] == ACR__PSEQ_FORMAT)
        first = acr__be_u64(e->val + 1);
    val[0] = ACR__PSEQ_FORMAT;
    acr__u64_be(first, val + 1);
    acr__u64_be(seq, val + 9);
    if (acr__cached_row_set(tx, e, val, sizeof val) != 0)
        return acr_err_set(err, ACR_ENOMEM, "out of memory");
    e->dirty = true;
    return 0;
}

int acr__pseq_apply(acr__txn_t *tx, const acr_event_t *ev, acr_err_t *err)
{
    int rc = 0;
    uint32_t bit = 1u << ev->type;
    if (bit & DATED_MASK)
        rc = put_row(tx, period_key_of(tx, ev->at_ms), ev->seq, (uint8_t)ev->type, NULL, 0, err);
    else if (bit & EVERY_RUN_MASK)
        rc = put_copy_row(tx, ACR__PSEQ_EVERY_RUN, ev, err);
    return rc ? rc : touch_marker(tx, ev->seq, err);
}

int acr__pseq_refund_sale(acr__txn_t *tx, const acr_event_t *ev, int64_t sale_at_ms,
                          acr_err_t *err)
{
    uint32_t own = period_key_of(tx, ev->at_ms), sale = period_key_of(tx, sale_at_ms);
    return sale == own ? 0 : put_copy_row(tx, sale, ev, err);
}
