/* payout.c - payout runs over a ledger: the glue between the log and the
 * pure commission processor (processors/), plus close, audit and list.
 *
 * A run reads one snapshot, feeds every event with seq <= X (the chain is
 * checked link by link as it is read) and, at each period.closed, the
 * statement stored by that close, so the processor can subtract what was
 * already paid. A run of a period closed as of X is computed as of that
 * close's through_seq, which reproduces the recorded bytes. A close appends
 * period.closed and the statement bytes in one write transaction that
 * first checks the head did not move (else it recomputes).
 */
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "accrue/date.h"
#include "accrue/money.h"
#include "accrue/payout.h"
#include "../log/log_internal.h"
#include "csv_async.h"
#include "payout_internal.h"
#include "pseq_walk.h"

/* The period.closed event of period_id, when it exists in the snapshot:
 * 1 with *out decoded (slices valid while r is open), 0 when not closed. */
static int find_close(acr_reader_t *r, acr_ledger_t *l, const char *period_id, acr_event_t *out,
                      acr_err_t *err)
{
    int rc = acr__close_record(l, acr__reader_txn(r, ACR_DB_IDS), acr__reader_txn(r, ACR_DB_LOG),
                               period_id, strlen(period_id), out, err);
    return rc == 2 ? acr_err_set(err, ACR_ECORRUPT, "the close of %s is damaged", period_id) : rc;
}

typedef struct feed_state {
    int64_t max_at_ms; /* latest business time of any event fed */
    bool any_event;
    bool budgets;      /* in: the run's summary wants each promotion's use as of X */
    bool budgets_fed;  /* out: the later sales that could spend a budget were fed with the
                          run (budgets_fed_through: the last period), see feed_budgets */
    int32_t budgets_fed_through;
} feed_state_t;

/* The replay is a two-stage pipeline over a ring of slots. The reader stage walks the
 * log (cursor, chain hash, record header: every record) and puts the records the
 * processor uses, undecoded, into a slot, with the stored statement of a period.closed
 * (which ends its slot). The feed stage decodes a slot's records in batches of
 * FEED_BATCH, feeds them, then adds the statement. With a second thread the stages
 * overlap (the machine has two cores); without one they alternate. Only the reader stage
 * touches the read transaction. The order of effects is the order of a plain loop: an
 * error of the reader stage at seq k is reported after every record before k was fed, a
 * decode error at j < k first. */
#define SLOT_RECS 1024 /* records per slot */
#define RING_SLOTS 8
#define FEED_BATCH 64  /* events decoded ahead, so the processor can prefetch their ids */

typedef struct slot {
    acr_str_t recs[SLOT_RECS];
    uint64_t seqs[SLOT_RECS];
    size_t n;
    const char *csv;  /* the statement of the period.closed ending the slot, else NULL */
    size_t csv_len;
    bool end;         /* the last slot: through_seq reached, or rc != 0 */
    int rc;           /* the reader stage's error, after recs */
    acr_err_t err;
} slot_t;

typedef struct pipe {
    acr_reader_t *r;
    acr__pseq_walk_t *walk; /* an indexed run's seqs (period_seqs), else NULL: every record */
    uint64_t through;
    bool closes;      /* feed the statement of each period.closed (else the run ignores closes) */
    int64_t max_at;
    slot_t *slots;
    pthread_mutex_t mu;
    pthread_cond_t not_full, not_empty;
    size_t produced, consumed; /* slots; guarded by mu */
    bool stop;                 /* the feed stage failed: the reader stage stops */
} pipe_t;

/* An indexed run fills a slot with the records of the walk's seqs, each checked against its
 * predecessor's stored hash: read from the index row's copy when it has one (the records
 * scattered over the log), else fetched from the log by seq; up to a period.closed (like
 * acr__reader_next_raw: 0, or the error of the first bad seq after the records before it). */
static int fill_indexed(pipe_t *pp, slot_t *s)
{
    s->n = 0;
    while (s->n < SLOT_RECS) {
        uint64_t seq;
        uint8_t listed;
        const uint8_t *copy;
        size_t copy_len;
        int type, rc = acr__pseq_walk_next(pp->walk, &seq, &listed, &copy, &copy_len, &s->err);
        if (rc <= 0)
            return rc;
        rc = copy != NULL
                 ? acr__reader_copy_raw(seq, copy, copy_len, &s->recs[s->n], &type, &s->err)
                 : acr__reader_fetch_raw(pp->r, seq, &s->recs[s->n], &type, &s->err);
        if (rc != 0)
            return rc;
        if (type != listed)
            return acr_err_set(&s->err, ACR_ECORRUPT, "period_seqs lists seq %llu as another "
                               "type than the log's: run `accrue rebuild`",
                               (unsigned long long)seq);
        s->seqs[s->n++] = seq;
        if (type == ACR_EV_PERIOD_CLOSED)
            return 0; /* its statement comes before the next event */
    }
    return 0;
}

static void produce(pipe_t *pp, slot_t *s)
{
    acr_err_clear(&s->err);
    s->csv = NULL;
    s->csv_len = 0;
    if (pp->walk != NULL)
        s->rc = fill_indexed(pp, s);
    else
        s->rc = acr__reader_next_raw(pp->r, pp->through, ACR_COMM_TYPE_MASK, s->recs, s->seqs,
                                     SLOT_RECS, &s->n, &pp->max_at, &s->err);
    bool closed = s->rc == 0 && s->n > 0 &&
                  (uint8_t)s->recs[s->n - 1].ptr[ACR_RECORD_CONTENT_OFF] == ACR_EV_PERIOD_CLOSED;
    s->end = s->rc != 0 || (!closed && s->n < SLOT_RECS);
    if (!closed || !pp->closes)
        return;
    acr_event_t ev;
    const acr_str_t *rec = &s->recs[s->n - 1];
    if (acr_record_decode(rec->ptr, rec->len, &ev) != 0) {
        s->end = true; /* the feed stage reports it when it decodes the record */
        return;
    }
    char period[ACR_PERIOD_ID_MAX + 1];
    acr_str_t p = ev.str[ACR_F_PERIOD];
    snprintf(period, sizeof period, "%.*s", (int)p.len, p.ptr);
    /* checked against the close just read (acr_reader_statement would look it up again) */
    if ((s->rc = acr__reader_statement_raw(pp->r, period, &s->csv, &s->csv_len, &s->err)) == 0)
        s->rc = acr__statement_check(period, s->csv, s->csv_len, ev.str[ACR_F_FINGERPRINT],
                                     ACR_STATEMENT_HINT, &s->err);
    if (s->rc != 0)
        s->end = true;
}

static int consume(acr_comm_t *c, const slot_t *s, acr_event_t *evs, acr_err_t *err)
{
    for (size_t base = 0; base < s->n; base += FEED_BATCH) {
        size_t m = s->n - base < FEED_BATCH ? s->n - base : FEED_BATCH;
        for (size_t i = 0; i < m; i++) {
            const acr_str_t *rec = &s->recs[base + i];
            if (base + i + 8 < s->n) { /* bytes last touched by the reader stage's core */
                __builtin_prefetch(s->recs[base + i + 8].ptr);
                __builtin_prefetch(s->recs[base + i + 8].ptr + 64);
            }
            if (acr_record_decode(rec->ptr, rec->len, &evs[i]) != 0)
                return acr_err_set(err, ACR_ECHAIN_BROKEN,
                                   "seq %llu: the stored record does not decode",
                                   (unsigned long long)s->seqs[base + i]);
            evs[i].seq = s->seqs[base + i];
        }
        int rc = acr_comm_feed_batch(c, evs, m, err);
        if (rc != 0)
            return rc;
    }
    if (s->csv != NULL) {
        int rc = acr_comm_add_closed(c, s->csv, s->csv_len, err);
        if (rc != 0)
            return rc;
    }
    if (s->rc != 0) {
        if (err != NULL)
            *err = s->err;
        return s->rc;
    }
    return 0;
}

static void *reader_stage(void *arg)
{
    pipe_t *pp = arg;
    for (;;) {
        pthread_mutex_lock(&pp->mu);
        while (pp->produced - pp->consumed == RING_SLOTS && !pp->stop)
            pthread_cond_wait(&pp->not_full, &pp->mu);
        bool stop = pp->stop;
        size_t i = pp->produced % RING_SLOTS;
        pthread_mutex_unlock(&pp->mu);
        if (stop)
            break;
        slot_t *s = &pp->slots[i];
        produce(pp, s);
        pthread_mutex_lock(&pp->mu);
        pp->produced++;
        pthread_cond_signal(&pp->not_empty);
        pthread_mutex_unlock(&pp->mu);
        if (s->end)
            break;
    }
    return NULL;
}

/* What the index and the program table say of a run's period, read once per run for the
 * choice of the scan (full_scan) and for the budgets' feed (feed_budgets). */
typedef struct log_view {
    bool covered;      /* period_seqs covers the snapshot */
    bool dated;        /* covered, and some sale, refund or adjustment is dated (last) */
    int32_t last;      /* the last period one is dated in */
    int32_t promo_to;  /* budgets asked: the last period a promotion may reach, else INT32_MIN */
    bool promo_spans;  /* budgets asked: a promotion runs within or before the period and after */
} log_view_t;

static int view_log(acr_reader_t *r, const acr_ledger_t *l, int32_t period, bool budgets,
                    log_view_t *v, acr_err_t *err)
{
    memset(v, 0, sizeof *v);
    v->promo_to = INT32_MIN;
    int rc = acr__pseq_covers(r, l, err);
    v->covered = rc == 1;
    if (rc == 1 && (rc = acr__pseq_last_dated(r, l, &v->last, err)) >= 0)
        v->dated = rc == 1;
    if (rc >= 0 && budgets)
        rc = acr__promo_reach(l, acr__reader_txn(r, ACR_DB_PROGRAM), period, &v->promo_to,
                              &v->promo_spans, err);
    return rc < 0 ? rc : 0;
}

/* True when the run reads the whole log: asked for (ACR_PAYOUT_FULL_SCAN=1, the reference
 * the tests compare with; a close, which needs the latest business date of any event),
 * period_seqs does not cover the snapshot (a ledger not yet rebuilt by this release),
 * nothing is dated after `period` (the walk would skip no dated record), the run's summary
 * will want a promotion's budget use beyond `period` (budgets: a promotion runs within and
 * past it, and the later sales would be read by a second run anyway; a full scan feeds them
 * with the run, feed_budgets), or the walk would skip less than half of the log. A record
 * the walk reads costs about twice a scanned one (the seek by seq, the predecessor's hash,
 * the index's own pages: on a 10 M-event year the walk of September took 14.9 s, the scan
 * 11.5 s), so the walk pays only for the earlier part of a log. The part it skips is
 * estimated by the first seq of the periods after `period`: in a log appended in
 * business-time order every later record comes from there on; late records dated earlier
 * make the estimate high, never low, so the walk is kept where it was the rule before.
 * ACR_PAYOUT_FULL_SCAN=0 takes the walk wherever the index covers the snapshot (the tests'
 * other side). *out_rc is set on a store error. */
static bool full_scan(acr_reader_t *r, const acr_ledger_t *l, int32_t period,
                      uint64_t through_seq, bool want_full, const log_view_t *v, int *out_rc,
                      acr_err_t *err)
{
    const char *env = getenv("ACR_PAYOUT_FULL_SCAN");
    bool walk = env != NULL && strcmp(env, "0") == 0;
    if (want_full || (env != NULL && strcmp(env, "1") == 0) || !v->covered || !v->dated ||
        v->last <= period)
        return true;
    if (walk)
        return false;
    if (v->promo_spans)
        return true;
    uint64_t first_after = 0;
    int rc = acr__pseq_first_seq_after(r, l, period, &first_after, err);
    *out_rc = rc < 0 ? rc : 0;
    if (rc != 1)
        return true;
    /* the records the walk would skip, about: those of seqs first_after..through_seq */
    return first_after > through_seq || through_seq - first_after + 1 < through_seq / 2;
}

/* A run that reads the whole log feeds about every sale of the ledger: the state's counts
 * of sales and of customers (O(1) each) size the processor's tables up front, sparing it
 * the doublings that rehash every sale so far (about 10-20 % of a 10 M-event run). An
 * indexed run feeds a part it cannot count as cheaply: its tables grow as they go. */
static void reserve_for_log(const acr_ledger_t *l, acr_reader_t *r, acr_comm_t *c)
{
    MDB_stat sales, customers;
    if (mdb_stat(acr__reader_txn(r, ACR_DB_SALES), l->dbi[ACR_DB_SALES], &sales) == 0 &&
        mdb_stat(acr__reader_txn(r, ACR_DB_PROJ_FIRST_SALE), l->dbi[ACR_DB_PROJ_FIRST_SALE],
                 &customers) == 0)
        acr_comm_reserve(c, sales.ms_entries, customers.ms_entries);
}

/* A full scan reads the sales of the periods after the run's anyway: when a promotion may
 * run past the run's period, those up to the last period a promotion may reach or a sale
 * is dated in are fed with the run for the budgets alone (acr_comm_budgets_through),
 * instead of a second run over the log after it (promo_used_as_of_x). */
static void feed_budgets(acr_comm_t *c, int32_t period, const log_view_t *v, feed_state_t *fs)
{
    int32_t to = v->promo_to;
    if (to <= period)
        return; /* no promotion runs past the run's period: the run sees every spend */
    if (v->dated && v->last < to)
        to = v->last; /* nothing dated after `last` */
    if (to > period)
        acr_comm_budgets_through(c, to);
    fs->budgets_fed = true;
    fs->budgets_fed_through = to;
}

/* Feeds the events of run period `period` among 1..through_seq (every event the processor
 * uses with a full scan, else those period_seqs lists for the period) and, when closes,
 * the statements of the closes among them. */
static int feed_log(const acr_ledger_t *l, acr_reader_t *r, acr_comm_t *c, int32_t period,
                    uint64_t through_seq, bool closes, bool want_full, feed_state_t *fs,
                    acr_err_t *err)
{
    int rc = acr_reader_seek(r, 1, err);
    if (rc == 0 && through_seq > acr_reader_head_seq(r))
        rc = acr_err_set(err, ACR_ECHAIN_BROKEN, "the log ends early");
    acr__pseq_walk_t walk;
    log_view_t view;
    if (rc == 0)
        rc = view_log(r, l, period, fs->budgets, &view, err);
    bool indexed = rc == 0 && !full_scan(r, l, period, through_seq, want_full, &view, &rc, err);
    if (rc == 0 && indexed)
        rc = acr__pseq_walk_open(&walk, r, l, period, through_seq, err);
    if (rc == 0 && !indexed && fs->budgets)
        feed_budgets(c, period, &view, fs);
    if (rc != 0) {
        if (indexed)
            acr__pseq_walk_close(&walk);
        return rc;
    }
    if (!indexed)
        reserve_for_log(l, r, c);
    pipe_t pp = {.r = r, .walk = indexed ? &walk : NULL, .through = through_seq,
                 .closes = closes, .max_at = INT64_MIN};
    acr_event_t *evs = malloc(FEED_BATCH * sizeof *evs);
    pp.slots = malloc(RING_SLOTS * sizeof *pp.slots);
    if (evs == NULL || pp.slots == NULL) {
        free(evs);
        free(pp.slots);
        if (indexed)
            acr__pseq_walk_close(&walk);
        return acr_err_set(err, ACR_ENOMEM, "out of memory");
    }
    pthread_t th;
    bool threaded = through_seq > 0 && pthread_mutex_init(&pp.mu, NULL) == 0;
    if (threaded && pthread_cond_init(&pp.not_full, NULL) != 0) {
        pthread_mutex_destroy(&pp.mu);
        threaded = false;
    }
    if (threaded && pthread_cond_init(&pp.not_empty, NULL) != 0) {
        pthread_cond_destroy(&pp.not_full);
        pthread_mutex_destroy(&pp.mu);
        threaded = false;
    }
    bool started = threaded && pthread_create(&th, NULL, reader_stage, &pp) == 0;
    size_t fed = 0; /* events since the last look at the cancel flag */
    for (bool end = through_seq == 0; rc == 0 && !end;) {
        slot_t *s;
        if (started) {
            pthread_mutex_lock(&pp.mu);
            while (pp.produced == pp.consumed)
                pthread_cond_wait(&pp.not_empty, &pp.mu);
            s = &pp.slots[pp.consumed % RING_SLOTS];
            pthread_mutex_unlock(&pp.mu);
        } else {
            s = &pp.slots[0];
            produce(&pp, s);
        }
        rc = consume(c, s, evs, err);
        if (rc == 0 && (fed += s->n) >= ACR_CANCEL_EVERY) {
            fed = 0;
            if (acr_cancel_requested())
                rc = acr_cancel_error(err);
        }
        end = s->end;
        if (started) {
            pthread_mutex_lock(&pp.mu);
            pp.consumed++;
            pp.stop = rc != 0;
            pthread_cond_signal(&pp.not_full);
            pthread_mutex_unlock(&pp.mu);
        }
    }
    if (started)
        pthread_join(th, NULL);
    if (threaded) {
        pthread_cond_destroy(&pp.not_empty);
        pthread_cond_destroy(&pp.not_full);
        pthread_mutex_destroy(&pp.mu);
    }
    if (pp.max_at != INT64_MIN) {
        fs->max_at_ms = pp.max_at;
        fs->any_event = true;
    }
    free(pp.slots);
    free(evs);
    if (indexed)
        acr__pseq_walk_close(&walk);
    return rc;
}

/* The finish's threads (acr_comm_output_t.threads): one per online CPU, at most 4, or
 * ACR_PAYOUT_THREADS (1: the sequential finish, the reference for A/B runs); and
 * ACR_PAYOUT_CHUNK_SALES, the sales of a group of partners (tests: 1). The statement is
 * the same whatever they say (processors/lines.c). */
static void finish_threads(acr_comm_output_t *o)
{
    const char *t = getenv("ACR_PAYOUT_THREADS"), *k = getenv("ACR_PAYOUT_CHUNK_SALES");
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    o->threads = cpus > 4 ? 4u : cpus > 1 ? (unsigned)cpus : 1u;
    if (t != NULL && atoi(t) >= 1)
        o->threads = (unsigned)atoi(t);
    if (k != NULL && atoi(k) >= 1)
        o->chunk_sales = (uint32_t)atoi(k);
}

/* The processor's statement of run period `period` over events 1..through_seq of r's
 * snapshot (with the closes' statements when closes; what-if plans of req, output o). */
static int run_processor(const acr_ledger_t *l, acr_reader_t *r, int32_t period,
                         uint64_t through_seq, bool closes, bool want_full,
                         const acr_payout_request_t *req, const acr_comm_output_t *o,
                         acr_statement_t *out, feed_state_t *fs, acr_err_t *err)
{
    acr_comm_config_t cfg = {l->cfg.period_kind, l->cfg.utc_offset_min, period, through_seq};
    acr_comm_t *c = acr_comm_new(&cfg);
    acr_comm_output_t given = o != NULL ? *o : (acr_comm_output_t){0}, wrapped;
    finish_threads(&given);
    acr__csv_async_t *w = NULL; /* a streamed CSV is written on a second thread */
    if (c != NULL && given.csv_write != NULL &&
        (w = acr__csv_async_open(&given, &wrapped)) == NULL) {
        acr_comm_free(c);
        c = NULL;
    }
    if (c == NULL)
        return acr_err_set(err, ACR_ENOMEM, "out of memory");
    acr_comm_set_output(c, w != NULL ? &wrapped : &given);
    int rc = feed_log(l, r, c, period, through_seq, closes, want_full, fs, err);
    for (size_t i = 0; rc == 0 && req != NULL && i < req->whatif_plan_count; i++)
        rc = acr_comm_add_whatif_plan(c, req->whatif_plans[i], req->whatif_plan_lens[i], err);
    if (rc == 0)
        rc = acr_comm_finish(c, out, err);
    int wrc = w != NULL ? acr__csv_async_close(w) : 0;
    if (rc == 0 && wrc != 0) {
        acr_statement_destroy(out);
        rc = acr_err_set(err, wrc, "cannot write the statement CSV");
    }
    acr_comm_free(c);
    return rc;
}

int acr__payout_lines_ignoring_closes(const acr_ledger_t *l, acr_reader_t *r, int32_t period,
                                      uint64_t through_seq, const acr_comm_output_t *o,
                                      acr_statement_t *out, acr_err_t *err)
{
    feed_state_t fs = {.max_at_ms = 0};
    return run_processor(l, r, period, through_seq, false, false, NULL, o, out, &fs, err);
}

/* program.md: summary.json gives each promotion's "budget used and left as of X", and a
 * budget is spent over the whole log. The run's processor saw the sales of periods up to
 * `period` only, so when a promotion with lines in the run lasts beyond it, the sales of
 * the later periods up to its last day are counted by a second processor run through that
 * period (no lines, no CSV kept): its used_minor is the whole log's, since no sale after a
 * promotion's last day qualifies. Sales are allotted in (at, seq) order and a later
 * period's sales come after, so the run's own lines do not change. A what-if run's second
 * run takes the same what-if plans (they decide which sales are planned, and only planned
 * sales qualify). */
static int promo_used_as_of_x(const acr_ledger_t *l, acr_reader_t *r, int32_t period,
                              uint64_t through_seq, const acr_payout_request_t *req,
                              const feed_state_t *fs_run, acr_statement_t *st, acr_err_t *err)
{
    int32_t through = period;
    for (size_t i = 0; i < st->promotion_count; i++) {
        int32_t p = acr_period_of_day(l->cfg.period_kind, st->promotions[i].last_day);
        if (st->promotions[i].lines > 0 && p > through)
            through = p;
    }
    if (through == period)
        return 0;
    /* No sale dated after the run's period (the index knows, when it covers the log): the
     * run saw them all. Else read no further than the last period a sale is dated in. */
    int32_t last;
    int rc = acr__pseq_covers(r, l, err);
    if (rc == 1 && (rc = acr__pseq_last_dated(r, l, &last, err)) >= 0) {
        if (rc == 0 || last <= period)
            return 0;
        through = last < through ? last : through;
    }
    if (rc < 0)
        return rc;
    if (fs_run->budgets_fed && fs_run->budgets_fed_through >= through)
        return 0; /* the run itself fed the sales up to there (feed_budgets) */
    acr_statement_t all;
    memset(&all, 0, sizeof all);
    feed_state_t fs = {.max_at_ms = 0};
    rc = run_processor(l, r, through, through_seq, false, false, req,
                       &(acr_comm_output_t){.omit_lines = true, .omit_csv = true,
                                            .promotions_only = true},
                       &all, &fs, err);
    for (size_t i = 0; rc == 0 && i < st->promotion_count; i++)
        for (size_t j = 0; j < all.promotion_count; j++)
            if (strcmp(st->promotions[i].promo_id, all.promotions[j].promo_id) == 0)
                st->promotions[i].used_minor = all.promotions[j].used_minor;
    acr_statement_destroy(&all);
    return rc;
}

/* want_full: read the whole log (a close: it needs fs's latest business date too; an audit:
 * the log itself, chain-checked). */
static int compute(acr_ledger_t *l, acr_reader_t *r, int32_t period, uint64_t through_seq,
                   bool want_full, const acr_payout_request_t *req, const acr_comm_output_t *o,
                   acr_payout_t *out, feed_state_t *fs, acr_err_t *err)
{
    fs->budgets = true;
    int rc = run_processor(l, r, period, through_seq, true, want_full, req, o, &out->stmt, fs,
                           err);
    if (rc == 0 &&
        (rc = promo_used_as_of_x(l, r, period, through_seq, req, fs, &out->stmt, err)) != 0) {
        acr_statement_destroy(&out->stmt); /* a failed compute leaves no statement */
        memset(&out->stmt, 0, sizeof out->stmt);
    }
    if (rc == 0)
        rc = acr_reader_hash_at(r, through_seq, out->chain_hash, err);
    out->through_seq = through_seq;
    return rc;
}

static int parse_period(const acr_ledger_t *l, const char *id, int32_t *out, acr_err_t *err)
{
    if (id == NULL || !acr_period_parse(l->cfg.period_kind, id, strlen(id), out))
        return acr_err_set(err, ACR_EUSAGE, "'%s' is not a %s period id of this ledger",
                           id ? id : "", l->cfg.period_kind == ACR_PERIOD_MONTH
                                             ? "month (YYYY-MM)" : "quarter (YYYY-Qn)");
    return 0;
}

static void payout_init(const acr_ledger_t *l, acr_payout_t *out, int32_t period)
{
    memset(out, 0, sizeof *out);
    out->period_kind = l->cfg.period_kind;
    out->utc_offset_min = l->cfg.utc_offset_min;
    acr_period_format(l->cfg.period_kind, period, out->period_id);
}

/* "plan_id@version" of each what-if document, for the labels of the output (the
 * documents are validated by the processor; an unreadable one gets "?"). */
static void whatif_labels(const acr_payout_request_t *req, acr_payout_t *out)
{
    out->whatif_count = req->whatif_plan_count;
    for (size_t i = 0; i < req->whatif_plan_count && i < ACR_WHATIF_LABELS_MAX; i++) {
        json_t *doc = json_loadb(req->whatif_plans[i], req->whatif_plan_lens[i], 0, NULL);
        json_t *id = json_object_get(doc, "plan_id"), *ver = json_object_get(doc, "version");
        if (json_is_string(id) && json_is_integer(ver))
            snprintf(out->whatif_plans[i], sizeof out->whatif_plans[i], "%.60s@%lld",
                     json_string_value(id), (long long)json_integer_value(ver));
        else
            snprintf(out->whatif_plans[i], sizeof out->whatif_plans[i], "?");
        json_decref(doc);
    }
}

int acr_payout_run(acr_ledger_t *l, const acr_payout_request_t *req, acr_payout_t *out,
                   acr_err_t *err)
{
    return acr_payout_run_with_output(l, req, NULL, out, err);
}

int acr_payout_run_with_output(acr_ledger_t *l, const acr_payout_request_t *req,
                               const acr_comm_output_t *o, acr_payout_t *out, acr_err_t *err)
{
    int32_t period;
    int rc = parse_period(l, req->period_id, &period, err);
    if (rc != 0)
        return rc;
    payout_init(l, out, period);
    acr_reader_t *r;
    if ((rc = acr_reader_open(l, &r, err)) != 0)
        return rc;
    uint64_t x = req->as_of_seq ? req->as_of_seq : acr_reader_head_seq(r);
    acr_event_t close;
    if (x > acr_reader_head_seq(r)) {
        rc = acr_err_set(err, ACR_EUSAGE, "--as-of %llu is beyond the head (%llu)",
                         (unsigned long long)x, (unsigned long long)acr_reader_head_seq(r));
    } else if ((rc = find_close(r, l, out->period_id, &close, err)) == 1) {
        rc = 0;
        if (close.seq <= x) {
            out->reproduces_close = true;
            x = (uint64_t)close.num[ACR_F_THROUGH_SEQ];
            req = NULL; /* a closed period's statement is what was paid: no what-if */
        }
    }
    feed_state_t fs = {.max_at_ms = 0};
    if (rc == 0 && req != NULL)
        whatif_labels(req, out);
    if (rc == 0)
        rc = compute(l, r, period, x, false, req, o, out, &fs, err);
    acr_reader_close(r);
    return rc;
}

/* The latest closed period of the snapshot: 1 with *out set, 0 when none. A statement
 * whose close is not in the snapshot (committed to the log after its marker) is not one. */
static int latest_close(acr_reader_t *r, acr_ledger_t *l, int32_t *out, acr_err_t *err)
{
    MDB_cursor *cur = NULL;
    MDB_val k, v;
    int rc = mdb_cursor_open(acr__reader_txn(r, ACR_DB_CLOSES), l->dbi[ACR_DB_CLOSES], &cur);
    for (rc = rc ? rc : mdb_cursor_get(cur, &k, &v, MDB_LAST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_PREV)) {
        char id[ACR_PERIOD_ID_MAX + 1];
        acr_event_t close;
        snprintf(id, sizeof id, "%.*s", (int)k.mv_size, (const char *)k.mv_data);
        int found = find_close(r, l, id, &close, err);
        if (found < 0) {
            mdb_cursor_close(cur);
            return found;
        }
        if (found == 1)
            break;
    }
    if (cur != NULL)
        mdb_cursor_close(cur);
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc != 0)
        return acr__mdb_err(rc, err, "closes");
    if (!acr_period_parse(l->cfg.period_kind, k.mv_data, k.mv_size, out))
        return acr_err_set(err, ACR_ECORRUPT, "a close record has a bad period id");
    return 1;
}

/* The rules of commissions.md, Closing, checked against the snapshot. */
static int check_close_order(acr_reader_t *r, acr_ledger_t *l, int32_t period,
                             const char *period_id, acr_err_t *err)
{
    acr_event_t close;
    int rc = find_close(r, l, period_id, &close, err);
    if (rc != 0)
        return rc < 0 ? rc
                      : acr_err_set(err, ACR_EPERIOD_CLOSED, "period %s is already closed (seq %llu)",
                                    period_id, (unsigned long long)close.seq);
    int32_t last;
    if ((rc = latest_close(r, l, &last, err)) < 0)
        return rc;
    if (rc == 1 && period != last + 1) {
        char last_id[ACR_PERIOD_ID_MAX];
        acr_period_format(l->cfg.period_kind, last, last_id);
        return acr_err_set(err, ACR_EPERIOD_ORDER,
                           "the latest closed period is %s: only the period right after it "
                           "can be closed", last_id);
    }
    return 0;
}

static int close_event(const acr_payout_t *p, const char *period_id, acr_buf_t *scratch,
                       acr_event_t *ev, char *id, size_t id_len)
{
    memset(ev, 0, sizeof *ev);
    snprintf(id, id_len, ACR_CLOSE_ID_PREFIX "%s", period_id);
    acr_buf_reset(scratch);
    acr_buf_append(scratch, "{", 1);
    for (size_t i = 0; i < p->stmt.currency_count; i++)
        acr_buf_printf(scratch, "%s\"%s\":%lld", i ? "," : "", p->stmt.currency_totals[i].currency,
                       (long long)p->stmt.currency_totals[i].total_minor);
    if (acr_buf_append(scratch, "}", 1) != 0)
        return ACR_ENOMEM;
    int32_t period;
    acr_period_parse(p->period_kind, period_id, strlen(period_id), &period);
    ev->type = ACR_EV_PERIOD_CLOSED;
    ev->at_ms = acr_period_end_ms(p->period_kind, period, p->utc_offset_min);
    ev->id = (acr_str_t){id, (uint32_t)strlen(id)};
    ev->str[ACR_F_PERIOD] = (acr_str_t){period_id, (uint32_t)strlen(period_id)};
    ev->str[ACR_F_FINGERPRINT] = (acr_str_t){p->stmt.fingerprint, 32};
    ev->str[ACR_F_TOTALS] = (acr_str_t){(const char *)scratch->data, (uint32_t)scratch->len};
    ev->num[ACR_F_THROUGH_SEQ] = (int64_t)p->through_seq;
    ev->num[ACR_F_LINES] = (int64_t)p->stmt.line_count;
    ev->present = (1u << ACR_F_PERIOD) | (1u << ACR_F_FINGERPRINT) | (1u << ACR_F_TOTALS) |
                  (1u << ACR_F_THROUGH_SEQ) | (1u << ACR_F_LINES);
    return 0;
}

/* One attempt: compute as of the head and check every refusal. */
static int close_compute(acr_ledger_t *l, int32_t period, const acr_comm_output_t *o,
                         acr_payout_t *out, acr_err_t *err)
{
    acr_reader_t *r;
    int rc = acr_reader_open(l, &r, err);
    if (rc != 0)
        return rc;
    feed_state_t fs = {.max_at_ms = 0};
    rc = check_close_order(r, l, period, out->period_id, err);
    if (rc == 0)
        rc = compute(l, r, period, acr_reader_head_seq(r), true, NULL, o, out, &fs, err);
    int32_t last;
    if (rc == 0 && (rc = latest_close(r, l, &last, err)) == 0) {
        int32_t first_day = acr_period_first_day(l->cfg.period_kind, period);
        if (!fs.any_event || first_day > acr_local_day(fs.max_at_ms, l->cfg.utc_offset_min))
            rc = acr_err_set(err, ACR_EPERIOD_ORDER,
                             "period %s starts after the latest business date in the ledger",
                             out->period_id);
    } else if (rc == 1) {
        rc = 0;
    }
    if (rc == 0 && out->stmt.unplanned_count > 0)
        rc = acr_err_set(err, ACR_EUNPLANNED_SALES,
                         "%zu sale(s) up to %s have no applicable plan (first: %s of partner %s)",
                         out->stmt.unplanned_count, out->period_id,
                         out->stmt.unplanned[0].sale_id, out->stmt.unplanned[0].partner_id);
    acr_reader_close(r);
    return rc;
}

/* commissions.md, Closing: a period whose end (the local midnight starting the next
 * one) is still in the future by the caller's clock is not closed without force. */
static int check_period_ended(const acr_ledger_t *l, int32_t period, const char *period_id,
                              const acr_close_request_t *req, acr_err_t *err)
{
    int64_t end_ms = acr_period_end_ms(l->cfg.period_kind, period, l->cfg.utc_offset_min);
    if (!acr_local_day_valid(acr_local_day(end_ms, l->cfg.utc_offset_min)))
        return acr_err_set(err, ACR_EINVALID_TIMESTAMP,
                           "period %s cannot be closed: its period.closed is dated at its end, "
                           "a local date after 9999-12-31, the last an event may have",
                           period_id);
    if (req->force || req->now_ms >= end_ms)
        return 0;
    char end_utc[ACR_TS_BUF], end_day[11], off[7], now[ACR_TS_BUF];
    acr_ts_format(end_ms, end_utc);
    acr_date_format(acr_period_end_day(l->cfg.period_kind, period), end_day);
    acr_offset_format(l->cfg.utc_offset_min, off);
    acr_ts_format(req->now_ms - req->now_ms % 1000, now);
    int64_t left_s = (end_ms - req->now_ms + 999) / 1000;
    return acr_err_set(err, ACR_EPERIOD_OPEN,
                       "period %s has not ended: it ends at %sT00:00:00%s (%s), in %lldd %02lldh "
                       "%02lldm (now %s); a close is final", period_id, end_day, off, end_utc,
                       (long long)(left_s / 86400), (long long)(left_s % 86400 / 3600),
                       (long long)(left_s % 3600 / 60), now);
}

int acr_payout_close(acr_ledger_t *l, const acr_close_request_t *req, acr_payout_t *out,
                     uint64_t *out_close_seq, acr_err_t *err)
{
    acr_comm_output_t o = {.omit_lines = req->omit_lines}; /* the CSV is stored: in memory */
    int32_t period;
    memset(out, 0, sizeof *out);
    int rc = parse_period(l, req->period_id, &period, err);
    if (rc == 0) {
        char period_id[ACR_PERIOD_ID_MAX];
        acr_period_format(l->cfg.period_kind, period, period_id);
        rc = check_period_ended(l, period, period_id, req, err);
    }
    for (int attempt = 0; rc == 0; attempt++) {
        payout_init(l, out, period);
        if ((rc = close_compute(l, period, &o, out, err)) != 0)
            break;
        acr_event_t ev;
        char id[64];
        acr_buf_t totals;
        acr_buf_init(&totals);
        rc = close_event(out, out->period_id, &totals, &ev, id, sizeof id);
        if (rc == 0)
            rc = acr__append_close(l, out->through_seq, &ev, req->actor, out->period_id,
                                   out->stmt.csv, out->stmt.csv_len, req->idem, out_close_seq,
                                   err);
        acr_buf_destroy(&totals);
        if (rc != ACR_EVERSION_CONFLICT || attempt == 8)
            break;
        acr_payout_destroy(out); /* the head moved: recompute */
        rc = 0;
    }
    if (rc != 0)
        acr_payout_destroy(out);
    return rc;
}

/* Copies the 1-based line n of a CSV buffer ("" past its end). */
static void csv_line(const char *csv, size_t len, uint64_t n, char *out, size_t out_len)
{
    const char *p = csv, *end = csv + len;
    for (uint64_t i = 1; i < n && p < end; i++) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        p = nl ? nl + 1 : end;
    }
    const char *nl = p < end ? memchr(p, '\n', (size_t)(end - p)) : NULL;
    size_t n_bytes = (size_t)((nl ? nl : end) - p);
    snprintf(out, out_len, "%.*s", (int)n_bytes, p);
}

/* The first 1-based line where two CSV buffers differ, 0 when identical. */
static uint64_t first_diff_line(const char *a, size_t a_len, const char *b, size_t b_len)
{
    size_t n = a_len < b_len ? a_len : b_len, i = 0;
    uint64_t line = 1;
    for (; i < n && a[i] == b[i]; i++)
        line += a[i] == '\n';
    return i == n && a_len == b_len ? 0 : line;
}

int acr_payout_audit(acr_ledger_t *l, const char *period_id, acr_payout_t *out,
                     acr_audit_t *audit, acr_err_t *err)
{
    int32_t period;
    memset(audit, 0, sizeof *audit);
    int rc = parse_period(l, period_id, &period, err);
    if (rc != 0)
        return rc;
    payout_init(l, out, period);
    acr_reader_t *r;
    if ((rc = acr_reader_open(l, &r, err)) != 0)
        return rc;
    acr_event_t close;
    rc = find_close(r, l, out->period_id, &close, err);
    if (rc == 0)
        rc = acr_err_set(err, ACR_ENOT_FOUND, "period %s is not closed", out->period_id);
    const char *stored = NULL;
    size_t stored_len = 0;
    if (rc == 1) {
        acr_str_t fp = close.str[ACR_F_FINGERPRINT];
        snprintf(audit->recorded_fingerprint, sizeof audit->recorded_fingerprint, "%.*s",
                 (int)fp.len, fp.ptr);
        rc = acr__reader_statement_raw(r, out->period_id, &stored, &stored_len, err);
    }
    /* An audit reads the log itself, every record through the close's through_seq with its
     * chain link, not the copies period_seqs keeps of scattered records: a log record
     * changed in place must fail the audit (chain_broken), whatever those copies say. */
    feed_state_t fs = {.max_at_ms = 0};
    if (rc == 0)
        rc = compute(l, r, period, (uint64_t)close.num[ACR_F_THROUGH_SEQ], true, NULL, NULL,
                     out, &fs, err);
    if (rc == 0) {
        audit->first_diff_line =
            first_diff_line(stored, stored_len, out->stmt.csv, out->stmt.csv_len);
        audit->match = audit->first_diff_line == 0 &&
                       strcmp(audit->recorded_fingerprint, out->stmt.fingerprint) == 0;
        if (audit->first_diff_line != 0) {
            csv_line(stored, stored_len, audit->first_diff_line, audit->recorded_line,
                     sizeof audit->recorded_line);
            csv_line(out->stmt.csv, out->stmt.csv_len, audit->first_diff_line,
                     audit->computed_line, sizeof audit->computed_line);
        }
    }
    acr_reader_close(r);
    return rc;
}

int acr_payout_list(acr_ledger_t *l, acr_close_info_t **out, size_t *out_count, acr_err_t *err)
{
    *out = NULL;
    *out_count = 0;
    acr_reader_t *r;
    int rc = acr_reader_open(l, &r, err);
    if (rc != 0)
        return rc;
    MDB_cursor *cur = NULL;
    MDB_val k, v;
    size_t cap = 0;
    int mrc = mdb_cursor_open(acr__reader_txn(r, ACR_DB_CLOSES), l->dbi[ACR_DB_CLOSES], &cur);
    for (mrc = mrc ? mrc : mdb_cursor_get(cur, &k, &v, MDB_FIRST); mrc == 0 && rc == 0;
         mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (*out_count == cap) {
            cap = cap ? cap * 2 : 16;
            acr_close_info_t *grown = realloc(*out, cap * sizeof **out);
            if (grown == NULL) {
                rc = acr_err_set(err, ACR_ENOMEM, "out of memory");
                break;
            }
            *out = grown;
        }
        acr_close_info_t *ci = &(*out)[*out_count];
        memset(ci, 0, sizeof *ci);
        snprintf(ci->period_id, sizeof ci->period_id, "%.*s", (int)k.mv_size,
                 (const char *)k.mv_data);
        acr_event_t ev;
        if ((rc = find_close(r, l, ci->period_id, &ev, err)) != 1) {
            if (rc < 0)
                break;
            rc = 0; /* its close is after the snapshot's marker (verify checks the pairs) */
            continue;
        }
        rc = 0;
        ci->seq = ev.seq;
        ci->through_seq = (uint64_t)ev.num[ACR_F_THROUGH_SEQ];
        ci->lines = (uint64_t)ev.num[ACR_F_LINES];
        snprintf(ci->fingerprint, sizeof ci->fingerprint, "%.*s",
                 (int)ev.str[ACR_F_FINGERPRINT].len, ev.str[ACR_F_FINGERPRINT].ptr);
        snprintf(ci->totals_json, sizeof ci->totals_json, "%.*s", (int)ev.str[ACR_F_TOTALS].len,
                 ev.str[ACR_F_TOTALS].ptr);
        (*out_count)++;
    }
    if (cur != NULL)
        mdb_cursor_close(cur);
    acr_reader_close(r);
    if (rc == 0 && mrc != 0 && mrc != MDB_NOTFOUND)
        rc = acr__mdb_err(mrc, err, "closes");
    if (rc != 0) {
        free(*out);
        *out = NULL;
        *out_count = 0;
    }
    return rc;
}

void acr_payout_destroy(acr_payout_t *p)
{
    if (p->stmt.csv != NULL || p->stmt.lines != NULL || p->stmt.arena != NULL)
        acr_statement_destroy(&p->stmt);
    memset(&p->stmt, 0, sizeof p->stmt);
}

static void json_kv_str(acr_buf_t *b, const char *key, const char *val, bool comma)
{
    acr_buf_printf(b, "%s\"%s\":", comma ? "," : "", key);
    acr_buf_append_json_str(b, val, strlen(val));
}

static void summary_partner(acr_buf_t *b, const acr_partner_total_t *pt)
{
    acr_buf_append_str(b, "{");
    json_kv_str(b, "partner_id", pt->partner_id, false);
    json_kv_str(b, "currency", pt->currency, true);
    acr_buf_printf(b, ",\"lines\":%u,\"by_kind\":{", pt->line_count);
    for (int k = 0; k < ACR_LINE__COUNT; k++)
        acr_buf_printf(b, "%s\"%s\":%lld", k ? "," : "", acr_line_kind_name(k),
                       (long long)pt->by_kind_minor[k]);
    acr_buf_printf(b, "},\"prior_period_minor\":%lld,\"total_minor\":%lld}",
                   (long long)pt->prior_period_minor, (long long)pt->total_minor);
}

int acr_payout_summary_json(const acr_payout_t *p, acr_buf_t *b)
{
    const acr_statement_t *s = &p->stmt;
    char hash[33], origin[ACR_PERIOD_ID_MAX];
    acr_hash_hex(p->chain_hash, hash);
    acr_buf_append_str(b, "{");
    json_kv_str(b, "period", p->period_id, false);
    acr_buf_printf(b, ",\"through_seq\":%llu", (unsigned long long)p->through_seq);
    json_kv_str(b, "chain_hash", hash, true);
    json_kv_str(b, "fingerprint", s->fingerprint, true);
    acr_buf_printf(b, ",\"line_count\":%zu,\"reproduces_close\":%s,\"plans_used\":[",
                   s->line_count, p->reproduces_close ? "true" : "false");
    for (size_t i = 0; i < s->plans_used_count; i++) {
        acr_buf_append_str(b, i ? "," : "");
        acr_buf_append_json_str(b, s->plans_used[i], strlen(s->plans_used[i]));
    }
    acr_buf_printf(b, "],\"unplanned_count\":%zu,\"unplanned\":[", s->unplanned_count);
    for (size_t i = 0; i < s->unplanned_count; i++) {
        acr_period_format(p->period_kind, s->unplanned[i].origin_period, origin);
        acr_buf_append_str(b, i ? ",{" : "{");
        json_kv_str(b, "sale_id", s->unplanned[i].sale_id, false);
        json_kv_str(b, "partner_id", s->unplanned[i].partner_id, true);
        json_kv_str(b, "origin_period", origin, true);
        acr_buf_append_str(b, "}");
    }
    acr_buf_append_str(b, "],\"totals\":{");
    for (size_t i = 0; i < s->currency_count; i++)
        acr_buf_printf(b, "%s\"%s\":%lld", i ? "," : "", s->currency_totals[i].currency,
                       (long long)s->currency_totals[i].total_minor);
    acr_buf_append_str(b, "},\"partners\":[");
    for (size_t i = 0; i < s->partner_count; i++) {
        acr_buf_append_str(b, i ? "," : "");
        summary_partner(b, &s->partners[i]);
    }
    /* program.md: per promotion applied in the run, its lines, total, budget used and left */
    acr_buf_append_str(b, "],\"promotions\":[");
    bool first = true;
    for (size_t i = 0; i < s->promotion_count; i++) {
        const acr_promo_total_t *pr = &s->promotions[i];
        if (pr->lines == 0)
            continue;
        acr_buf_append_str(b, first ? "{" : ",{");
        first = false;
        json_kv_str(b, "promo_id", pr->promo_id, false);
        json_kv_str(b, "plan_id", pr->plan_id, true);
        json_kv_str(b, "title", pr->title, true);
        acr_buf_printf(b, ",\"lines\":%u,\"total_minor\":%lld,\"budget_minor\":", pr->lines,
                       (long long)pr->total_minor);
        if (pr->has_budget)
            acr_buf_printf(b, "%lld,\"used_minor\":%lld,\"left_minor\":%lld}",
                           (long long)pr->budget_minor, (long long)pr->used_minor,
                           (long long)(pr->budget_minor - pr->used_minor));
        else
            acr_buf_printf(b, "null,\"used_minor\":%lld,\"left_minor\":null}",
                           (long long)pr->used_minor);
    }
    if (p->whatif_count > 0) { /* hypothetical: plans_used names versions never published */
        acr_buf_append_str(b, "],\"what_if\":true,\"what_if_plans\":[");
        for (size_t i = 0; i < p->whatif_count && i < ACR_WHATIF_LABELS_MAX; i++) {
            acr_buf_append_str(b, i ? "," : "");
            acr_buf_append_json_str(b, p->whatif_plans[i], strlen(p->whatif_plans[i]));
        }
    }
    return acr_buf_append_str(b, "]}\n");
}

static void table_line(acr_buf_t *b, const acr_payout_t *p, const acr_line_t *ln, int decimals)
{
    char origin[ACR_PERIOD_ID_MAX], at[ACR_TS_BUF] = "", basis[64], amount[64];
    acr_period_format(p->period_kind, ln->origin_period, origin);
    if (ln->source_seq != 0)
        acr_ts_format_local(ln->at_ms, p->utc_offset_min, at);
    acr_money_display(ln->basis_minor, decimals, ln->currency, basis, sizeof basis);
    acr_money_display(ln->amount_minor, decimals, ln->currency, amount, sizeof amount);
    acr_buf_printf(b, "  %4u  %-7s %-18s %-16s %-29s %-18s %20s %20s\n", ln->line_no, origin,
                   acr_line_kind_name(ln->kind), ln->source_id, at, ln->rule, basis, amount);
}

/* The first line of a table: which run, and whether it is hypothetical. */
static void table_head(acr_buf_t *b, const acr_payout_t *p)
{
    char off[7];
    acr_offset_format(p->utc_offset_min, off);
    acr_buf_printf(b, "payout run %s as of seq %llu%s (times in business time %s)\n",
                   p->period_id, (unsigned long long)p->through_seq,
                   p->reproduces_close ? " (reproduction of its close)" : "", off);
    if (p->whatif_count == 0)
        return;
    acr_buf_append_str(b, "WHAT-IF: hypothetical, with unpublished plan version(s)");
    for (size_t i = 0; i < p->whatif_count && i < ACR_WHATIF_LABELS_MAX; i++)
        acr_buf_printf(b, " %s", p->whatif_plans[i]);
    acr_buf_append_str(b, "; nothing was written and nothing here is payable\n");
}

static const char *name_or_empty(acr_partner_name_fn name_of, void *arg, const char *id)
{
    const char *n = name_of != NULL ? name_of(arg, id) : NULL;
    return n != NULL ? n : "";
}

int acr_payout_table(const acr_payout_t *p, acr_partner_name_fn name_of, void *arg,
                     acr_buf_t *b)
{
    const acr_statement_t *s = &p->stmt;
    table_head(b, p);
    size_t li = 0;
    for (size_t i = 0; i < s->partner_count; i++) {
        const acr_partner_total_t *pt = &s->partners[i];
        int dec = acr_currency_decimals(pt->currency, strlen(pt->currency));
        dec = dec < 0 ? 0 : dec;
        const char *name = name_or_empty(name_of, arg, pt->partner_id);
        acr_buf_printf(b, "\npartner %s%s%s (%s)\n  %4s  %-7s %-18s %-16s %-29s %-18s %20s %20s\n",
                       pt->partner_id, name[0] ? "  " : "", name, pt->currency, "line", "origin",
                       "kind", "source", "at", "rule", "basis", "amount");
        for (; li < s->line_count && strcmp(s->lines[li].partner_id, pt->partner_id) == 0; li++)
            table_line(b, p, &s->lines[li], dec);
        char total[64], prior[64];
        acr_money_display(pt->total_minor, dec, pt->currency, total, sizeof total);
        acr_money_display(pt->prior_period_minor, dec, pt->currency, prior, sizeof prior);
        acr_buf_printf(b, "  total %s (prior-period %s)\n", total, prior);
    }
    for (size_t i = 0; i < s->unplanned_count; i++)
        acr_buf_printf(b, "\nunplanned: sale %s of partner %s\n", s->unplanned[i].sale_id,
                       s->unplanned[i].partner_id);
    return acr_buf_printf(b, "\nlines %zu  fingerprint %s%s\n", s->line_count, s->fingerprint,
                          p->whatif_count ? "  (what-if)" : "");
}

int acr_payout_totals_table(const acr_payout_t *p, acr_partner_name_fn name_of, void *arg,
                            acr_buf_t *b)
{
    const acr_statement_t *s = &p->stmt;
    size_t name_w = 4;
    for (size_t i = 0; i < s->partner_count; i++) {
        size_t n = strlen(name_or_empty(name_of, arg, s->partners[i].partner_id));
        name_w = n > name_w ? (n < 40 ? n : 40) : name_w;
    }
    table_head(b, p);
    acr_buf_printf(b, "\n%-16s  %-*s  %-8s  %8s  %22s  %22s\n", "partner", (int)name_w, "name",
                   "currency", "lines", "prior-period", "total");
    for (size_t i = 0; i < s->partner_count; i++) {
        const acr_partner_total_t *pt = &s->partners[i];
        int dec = acr_currency_decimals(pt->currency, strlen(pt->currency));
        dec = dec < 0 ? 0 : dec;
        char total[64], prior[64];
        acr_money_display(pt->total_minor, dec, pt->currency, total, sizeof total);
        acr_money_display(pt->prior_period_minor, dec, pt->currency, prior, sizeof prior);
        acr_buf_printf(b, "%-16s  %-*.*s  %-8s  %8u  %22s  %22s\n", pt->partner_id, (int)name_w,
                       (int)name_w, name_or_empty(name_of, arg, pt->partner_id), pt->currency,
                       pt->line_count, prior, total);
    }
    acr_buf_append_str(b, "\n");
    for (size_t i = 0; i < s->currency_count; i++) {
        const char *cur = s->currency_totals[i].currency;
        int dec = acr_currency_decimals(cur, strlen(cur));
        char total[64];
        acr_money_display(s->currency_totals[i].total_minor, dec < 0 ? 0 : dec, cur, total,
                          sizeof total);
        acr_buf_printf(b, "total %s\n", total);
    }
    return acr_buf_printf(b, "partners %zu  lines %zu  fingerprint %s%s\n", s->partner_count,
                          s->line_count, s->fingerprint, p->whatif_count ? "  (what-if)" : "");
}
