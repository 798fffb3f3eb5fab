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
    return acr__pseq_period_key(
        acr_period_of_ms(tx->ledger->cfg.period_kind, tx->utc_offset_min, at_ms));
}

/* ---- a replay's rows, collected per period ---- */

typedef struct bulk_list {
    uint32_t key;     /* the period key */
    uint64_t *seqs;   /* ascending */
    uint8_t *types;
    uint64_t *copies; /* 0 (the value is the type), or 1 + the offset in values of the value */
    size_t n, cap;
} bulk_list_t;

struct acr__pseq_bulk {
    bulk_list_t *lists; /* ascending key */
    size_t n, cap;
    size_t last;        /* the list the last row went to */
    acr_buf_t values;   /* the longer values (a size_t length, then the bytes), back to back */
};

int acr__pseq_bulk_begin(acr__txn_t *tx, acr_err_t *err)
{
    if ((tx->pseq_bulk = calloc(1, sizeof *tx->pseq_bulk)) == NULL)
        return acr_err_set(err, ACR_ENOMEM, "out of memory");
    acr_buf_init(&tx->pseq_bulk->values);
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
    acr_buf_destroy(&b->values);
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

/* Adds a row of value val (vlen >= 1 bytes: the type, then a copy when longer). */
static int bulk_add(struct acr__pseq_bulk *b, uint32_t key, uint64_t seq, const uint8_t *val,
                    size_t vlen)
{
    bulk_list_t *l = bulk_list(b, key);
    if (l == NULL)
        return ACR_ENOMEM;
    uint64_t at = 0;
    if (vlen > 1) {
        at = 1 + b->values.len;
        if (acr_buf_append(&b->values, &vlen, sizeof vlen) != 0 ||
            acr_buf_append(&b->values, val, vlen) != 0)
            return ACR_ENOMEM;
    }
    uint8_t type = val[0];
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
            MDB_val k = acr__val(key, sizeof key), v = acr__val(&l->types[j], 1);
            if (l->copies[j] != 0) {
                const uint8_t *c = b->values.data + l->copies[j] - 1;
                memcpy(&v.mv_size, c, sizeof v.mv_size);
                v.mv_data = (void *)(c + sizeof v.mv_size);
            }
            bool append = !have_last || memcmp(key, last, sizeof key) > 0;
            rc = acr__dput(tx, ACR_DB_PERIOD_SEQS, &k, &v, append ? MDB_APPEND : 0);
        }
    }
    tx->pseq_bulk = b;
    acr__pseq_bulk_abort(tx);
    return rc ? acr__tx_fail(tx, rc, err, acr__db_name(ACR_DB_PERIOD_SEQS)) : 0;
}

/* Writes the row (period_key, seq) with value val (the type, then a copy when longer). */
static int put_row(acr__txn_t *tx, uint32_t period_key, uint64_t seq, const uint8_t *val,
                   size_t vlen, acr_err_t *err)
{
    if (tx->pseq_bulk != NULL)
        return bulk_add(tx->pseq_bulk, period_key, seq, val, vlen) == 0
                   ? 0 : acr_err_set(err, ACR_ENOMEM, "out of memory");
    uint8_t key[ACR__PSEQ_KEY_LEN];
    acr__pseq_key(period_key, seq, key);
    MDB_val k = acr__val(key, sizeof key), v = acr__val(val, vlen);
    int rc = acr__dput(tx, ACR_DB_PERIOD_SEQS, &k, &v, 0);
    return rc ? acr__tx_fail(tx, rc, err, acr__db_name(ACR_DB_PERIOD_SEQS)) : 0;
}

/* A row that carries a copy of ev's log value: noted, and written by acr__state_logged once
 * the value exists (the append path applies the state before it writes the record). */
static int put_copy_row(acr__txn_t *tx, uint32_t period_key, const acr_event_t *ev,
                        acr_err_t *err)
{
    if (tx->pseq_copies >= sizeof tx->pseq_copy_key / sizeof tx->pseq_copy_key[0])
        return acr_err_set(err, ACR_ECORRUPT, "internal: seq %llu has more copy rows than "
                           "there is room for", (unsigned long long)ev->seq);
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
    /* the value: type, prev, entry */
    acr_buf_t *v = &tx->scratch2;
    acr_buf_reset(v);
    if (acr_buf_append(v, &tx->pseq_copy_type, 1) != 0 ||
        acr_buf_append(v, prev, ACR_HASH_LEN) != 0 || acr_buf_append(v, entry, len) != 0)
        return acr_err_set(err, ACR_ENOMEM, "out of memory");
    int rc = 0;
    for (uint8_t i = 0; rc == 0 && i < n; i++)
        rc = put_row(tx, tx->pseq_copy_key[i], seq, v->data, v->len, err);
    return rc;
}

void acr__state_not_logged(acr__txn_t *tx)
{
    tx->pseq_copies = 0;
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
    uint8_t type = (uint8_t)ev->type; /* the value of a row without a copy */
    if (bit & DATED_MASK)
        rc = put_row(tx, period_key_of(tx, ev->at_ms), ev->seq, &type, 1, err);
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
