/* pseq_walk.c - the k-way merge of period_seqs lists that feeds an indexed payout run.
 *
 * k is the number of periods <= U that hold a row, plus one ("every run"): a dozen for a
 * year of months. Each list is a range of keys with one period part, already in seq
 * order; a binary heap of their cursors yields the union in seq order. The lists are
 * found by seeking to (p, 0) for the next period p after each list found.
 */
#include <stdlib.h>
#include <string.h>

#include "pseq_walk.h"

int acr__pseq_covers(acr_reader_t *r, const acr_ledger_t *l, acr_err_t *err)
{
    return acr__pseq_marker_covers(acr__reader_txn(r, ACR_DB_PERIOD_SEQS), l->dbi[ACR_DB_PERIOD_SEQS],
                                   acr_reader_head_seq(r), err);
}

/* A new cursor at the first row at or after (period_key, seq): 0 with *out_cur (NULL past
 * the table's end) and the row in *k, *v, or an LMDB error. */
static int seek(MDB_txn *txn, MDB_dbi dbi, uint32_t period_key, uint64_t seq,
                MDB_cursor **out_cur, MDB_val *k, MDB_val *v, acr_err_t *err)
{
    uint8_t key[ACR__PSEQ_KEY_LEN];
    acr__pseq_key(period_key, seq, key);
    *k = acr__val(key, sizeof key);
    *out_cur = NULL;
    MDB_cursor *cur = NULL;
    int rc = mdb_cursor_open(txn, dbi, &cur);
    if (rc != 0)
        return acr__mdb_err(rc, err, "period_seqs");
    rc = mdb_cursor_get(cur, k, v, MDB_SET_RANGE);
    if (rc == 0) {
        *out_cur = cur;
        return 0;
    }
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND ? 0 : acr__mdb_err(rc, err, "period_seqs");
}

int acr__pseq_last_dated(acr_reader_t *r, const acr_ledger_t *l, int32_t *out, acr_err_t *err)
{
    MDB_cursor *cur;
    MDB_val k, v;
    int rc = mdb_cursor_open(acr__reader_txn(r, ACR_DB_PERIOD_SEQS), l->dbi[ACR_DB_PERIOD_SEQS],
                             &cur);
    if (rc != 0)
        return acr__mdb_err(rc, err, "period_seqs");
    rc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
    while (rc == 0 && k.mv_size == ACR__PSEQ_KEY_LEN &&
           acr__pseq_key_period(k.mv_data) == ACR__PSEQ_MARKER_PERIOD)
        rc = mdb_cursor_get(cur, &k, &v, MDB_PREV);
    uint32_t pk = rc == 0 && k.mv_size == ACR__PSEQ_KEY_LEN ? acr__pseq_key_period(k.mv_data)
                                                            : ACR__PSEQ_EVERY_RUN;
    mdb_cursor_close(cur);
    if (rc != 0 && rc != MDB_NOTFOUND)
        return acr__mdb_err(rc, err, "period_seqs");
    if (pk == ACR__PSEQ_EVERY_RUN)
        return 0;
    *out = (int32_t)(pk - 1);
    return 1;
}

int acr__pseq_first_seq_after(acr_reader_t *r, const acr_ledger_t *l, int32_t period,
                              uint64_t *out_seq, acr_err_t *err)
{
    MDB_txn *txn = acr__reader_txn(r, ACR_DB_PERIOD_SEQS);
    MDB_dbi dbi = l->dbi[ACR_DB_PERIOD_SEQS];
    uint64_t best = UINT64_MAX;
    for (uint32_t next = acr__pseq_period_key(period) + 1; next < ACR__PSEQ_MARKER_PERIOD;) {
        MDB_cursor *cur;
        MDB_val k, v;
        int rc = seek(txn, dbi, next, 0, &cur, &k, &v, err);
        if (rc != 0)
            return rc;
        if (cur == NULL)
            break;
        mdb_cursor_close(cur);
        if (k.mv_size != ACR__PSEQ_KEY_LEN)
            return acr_err_set(err, ACR_ECORRUPT, "a period_seqs key is damaged: run `accrue "
                               "rebuild`");
        uint32_t pk = acr__pseq_key_period(k.mv_data);
        if (pk == ACR__PSEQ_MARKER_PERIOD)
            break;
        uint64_t seq = acr__be_u64((const uint8_t *)k.mv_data + 4);
        best = seq < best ? seq : best;
        next = pk + 1;
    }
    if (best == UINT64_MAX)
        return 0;
    *out_seq = best;
    return 1;
}

/* Reads the row under src's cursor: 1 when it is on src's list at a seq <= through, 0
 * when the list ends there, or ACR_ECORRUPT. */
static int src_load(acr__pseq_src_t *s, const MDB_val *k, const MDB_val *v, uint64_t through,
                    acr_err_t *err)
{
    const uint8_t *p = k->mv_data;
    if (k->mv_size != ACR__PSEQ_KEY_LEN)
        return acr_err_set(err, ACR_ECORRUPT, "a period_seqs key is damaged: run `accrue "
                           "rebuild`");
    if (acr__pseq_key_period(p) != s->period_key)
        return 0;
    s->seq = acr__be_u64(p + 4);
    if (s->seq == 0 || s->seq > through)
        return 0; /* past X (the marker's seq is past every X) */
    /* the type, or the type and a copy: the hash before, then the log's hash and record */
    if (v->mv_size != 1 && v->mv_size <= ACR__PSEQ_COPY_OFF + ACR_HASH_LEN)
        return acr_err_set(err, ACR_ECORRUPT, "the period_seqs row of seq %llu is damaged: run "
                           "`accrue rebuild`", (unsigned long long)s->seq);
    s->type = *(const uint8_t *)v->mv_data;
    s->copy = v->mv_size > 1 ? (const uint8_t *)v->mv_data + 1 : NULL;
    s->copy_len = v->mv_size - 1;
    return 1;
}

static bool before(const acr__pseq_src_t *a, const acr__pseq_src_t *b)
{
    return a->seq < b->seq;
}

static void sift_down(acr__pseq_walk_t *w, size_t i)
{
    for (;;) {
        size_t m = i, l = 2 * i + 1, r = l + 1;
        if (l < w->n && before(&w->src[l], &w->src[m]))
            m = l;
        if (r < w->n && before(&w->src[r], &w->src[m]))
            m = r;
        if (m == i)
            return;
        acr__pseq_src_t t = w->src[i];
        w->src[i] = w->src[m];
        w->src[m] = t;
        i = m;
    }
}

/* Adds the list of period_key starting at cur's row (cur is owned by w from now on). */
static int add_src(acr__pseq_walk_t *w, MDB_cursor *cur, uint32_t period_key, const MDB_val *k,
                   const MDB_val *v, acr_err_t *err)
{
    acr__pseq_src_t s = {cur, period_key, 0, 0, NULL, 0};
    int rc = src_load(&s, k, v, w->through, err);
    if (rc == 1 && w->n == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 16;
        acr__pseq_src_t *g = realloc(w->src, cap * sizeof *g);
        if (g == NULL) {
            rc = acr_err_set(err, ACR_ENOMEM, "out of memory");
        } else {
            w->src = g;
            w->cap = cap;
        }
    }
    if (rc != 1) {
        mdb_cursor_close(cur);
        return rc;
    }
    w->src[w->n++] = s;
    return 0;
}

/* Adds the list of every period <= last_key that holds a row. */
static int add_periods(acr__pseq_walk_t *w, MDB_txn *txn, MDB_dbi dbi, uint32_t last_key,
                       acr_err_t *err)
{
    uint32_t next = ACR__PSEQ_EVERY_RUN + 1; /* the first period's key */
    for (;;) {
        MDB_cursor *cur;
        MDB_val k, v;
        int rc = seek(txn, dbi, next, 0, &cur, &k, &v, err);
        if (rc != 0 || cur == NULL)
            return rc;
        uint32_t pk = k.mv_size == ACR__PSEQ_KEY_LEN ? acr__pseq_key_period(k.mv_data) : 0;
        if (k.mv_size != ACR__PSEQ_KEY_LEN || pk > last_key) {
            mdb_cursor_close(cur);
            return 0;
        }
        if ((rc = add_src(w, cur, pk, &k, &v, err)) != 0)
            return rc;
        next = pk + 1; /* pk <= last_key < ACR__PSEQ_MARKER_PERIOD: no wrap */
    }
}

int acr__pseq_walk_open(acr__pseq_walk_t *w, acr_reader_t *r, const acr_ledger_t *l,
                        int32_t period, uint64_t through, acr_err_t *err)
{
    memset(w, 0, sizeof *w);
    w->through = through;
    MDB_txn *txn = acr__reader_txn(r, ACR_DB_PERIOD_SEQS);
    MDB_dbi dbi = l->dbi[ACR_DB_PERIOD_SEQS];
    int rc = add_periods(w, txn, dbi, acr__pseq_period_key(period), err);
    MDB_cursor *cur = NULL;
    MDB_val k, v;
    if (rc == 0)
        rc = seek(txn, dbi, ACR__PSEQ_EVERY_RUN, 1, &cur, &k, &v, err);
    if (rc == 0 && cur != NULL)
        rc = add_src(w, cur, ACR__PSEQ_EVERY_RUN, &k, &v, err);
    if (rc != 0) {
        acr__pseq_walk_close(w);
        return rc;
    }
    for (size_t i = w->n / 2; i-- > 0;)
        sift_down(w, i);
    return 0;
}

/* Moves the heap's top list to its next row (dropping the list at its end). */
static int advance_top(acr__pseq_walk_t *w, acr_err_t *err)
{
    acr__pseq_src_t *s = &w->src[0];
    MDB_val k, v;
    int rc = mdb_cursor_get(s->cur, &k, &v, MDB_NEXT);
    if (rc == 0)
        rc = src_load(s, &k, &v, w->through, err);
    else if (rc == MDB_NOTFOUND)
        rc = 0;
    else
        return acr__mdb_err(rc, err, "period_seqs");
    if (rc < 0)
        return rc;
    if (rc == 0) {
        mdb_cursor_close(s->cur);
        w->src[0] = w->src[--w->n];
    }
    if (w->n > 0)
        sift_down(w, 0);
    return 0;
}

int acr__pseq_walk_next(acr__pseq_walk_t *w, uint64_t *out_seq, uint8_t *out_type,
                        const uint8_t **out_copy, size_t *out_copy_len, acr_err_t *err)
{
    while (w->n > 0) {
        acr__pseq_src_t top = w->src[0];
        int rc = advance_top(w, err);
        if (rc != 0)
            return rc;
        if (top.seq == w->last)
            continue; /* a refund listed under its own period and its sale's */
        w->last = top.seq;
        *out_seq = top.seq;
        *out_type = top.type;
        *out_copy = top.copy;
        *out_copy_len = top.copy_len;
        return 1;
    }
    return 0;
}

void acr__pseq_walk_close(acr__pseq_walk_t *w)
{
    for (size_t i = 0; i < w->n; i++)
        mdb_cursor_close(w->src[i].cur);
    free(w->src);
    memset(w, 0, sizeof *w);
}
