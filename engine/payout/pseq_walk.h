/* pseq_walk.h - the seqs an indexed payout run reads, from the period_seqs table
 * (engine/payout only; the table's layout is in store_internal.h).
 *
 * A run of period U as of X reads the "every run" list and the lists of the periods <= U,
 * merged by seq (a binary heap of one cursor per list), each seq once (a refund is listed
 * under its own period and its sale's), none above X. */
#ifndef ACCRUE_ENGINE_PAYOUT_PSEQ_WALK_H
#define ACCRUE_ENGINE_PAYOUT_PSEQ_WALK_H

#include <stdbool.h>
#include <stdint.h>

#include "../store/store_internal.h"

typedef struct acr__pseq_src {
    MDB_cursor *cur;     /* on the list's current row */
    uint32_t period_key; /* the list's period part */
    uint64_t seq;        /* the current row's seq */
    uint8_t type;        /* the current row's event type */
    const uint8_t *copy; /* its copy of the record (prev hash, hash, record), or NULL */
    size_t copy_len;
} acr__pseq_src_t;

typedef struct acr__pseq_walk {
    acr__pseq_src_t *src; /* a min-heap by seq */
    size_t n;             /* lists not yet exhausted */
    size_t cap;           /* src's capacity */
    uint64_t through;     /* X: no seq above it */
    uint64_t last;        /* the last seq returned (0: none) */
} acr__pseq_walk_t;

/* 1 when period_seqs covers r's snapshot (its marker says seqs 1..head were indexed, in
 * this format), 0 when not (a ledger from before the table, or appended to by an older
 * release): the run then reads the whole log. Negative: an LMDB error. */
int acr__pseq_covers(acr_reader_t *r, const acr_ledger_t *l, acr_err_t *err);

/* The latest period a sale, refund or adjustment is dated in (a refund counts under its
 * sale's period): 1 with *out set, 0 when none is, negative on an LMDB error. */
int acr__pseq_last_dated(acr_reader_t *r, const acr_ledger_t *l, int32_t *out, acr_err_t *err);

/* The smallest first seq of the lists of the periods after `period` (its first row's seq of
 * each, found by one seek per period): 1 with *out_seq, 0 when no period after it holds a
 * row, negative on an LMDB error. In a log appended in business-time order, the rows from
 * that seq on are about those the walk of `period` skips. */
int acr__pseq_first_seq_after(acr_reader_t *r, const acr_ledger_t *l, int32_t period,
                              uint64_t *out_seq, acr_err_t *err);

/* Opens the walk of run period `period` as of `through` in r's snapshot. 0 or ACR_ENOMEM /
 * an LMDB error (nothing to close then). */
int acr__pseq_walk_open(acr__pseq_walk_t *w, acr_reader_t *r, const acr_ledger_t *l,
                        int32_t period, uint64_t through, acr_err_t *err);

/* The next seq in ascending order: 1 with *out_seq, *out_type (the type its row names) and
 * *out_copy, *out_copy_len (the row's copy of the log's entry and the hash before it, in the
 * snapshot's pages; NULL when the row has none: the record is read from the log), 0 at the
 * end, or an LMDB error / ACR_ECORRUPT (a damaged row). */
int acr__pseq_walk_next(acr__pseq_walk_t *w, uint64_t *out_seq, uint8_t *out_type,
                        const uint8_t **out_copy, size_t *out_copy_len, acr_err_t *err);

void acr__pseq_walk_close(acr__pseq_walk_t *w);

#endif
