/* writer.c - the one thread that writes: group commit.
 *
 * LMDB allows one write transaction at a time and wants it begun and
 * committed on the same thread, so every write of the server (event
 * appends, deal registrations and moves, payout closes) is a job for this
 * thread, and so is the check of a refused body (its rule errors found by a
 * transaction that writes nothing, run once the group's writers are answered).
 * Jobs arrive on a mutex-protected queue (a condition variable wakes the
 * thread). The thread takes every append waiting and hands them to
 * acr_ledger_append_group: each request is its own atomic batch (a nested
 * transaction), a rejected one leaves the others untouched, and the whole
 * group is committed with one fsync. Only then are the jobs put on the done
 * queue and the loop woken with uv_async_send (which coalesces, so the loop
 * drains the whole queue on each wake-up): no client hears 200 before its
 * events are durable. Throughput grows with concurrency because the fsync
 * is shared. The loop keeps submitting while a commit runs, so the next
 * group holds everything that arrived during this one's fsync.
 *
 * Gathering: right after a commit, the clients it answered are on their way
 * back, so the queue holds only what arrived during the commit. The writer
 * waits until as many more jobs as the last group answered have come (counted
 * from the queue's length when the group was handed back, since by the time
 * the writer looks again some of them may be queued already), but
 * never longer than half the last commit's latency (capped at
 * GATHER_US_MAX): so under load one fsync serves every client in turn,
 * instead of two half-empty groups alternating, and a lone client never
 * waits (its group was 1).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"

/* Scratch arrays of one group, grown as needed (writer thread only). */
typedef struct group {
    acr_srv_wjob_t **jobs; /* the group's append jobs, in order */
    const acr_batch_t **batches;
    acr_idem_t **idems; /* per batch its key, or NULL */
    acr_append_result_t *results;
    acr_errlist_t *errs;
    int *rcs;
    size_t cap;
    acr_batch_t merged;  /* the group's small batches back to back (merge_commit) */
    uint64_t *seqs;      /* the merged batch's seqs */
    size_t seqs_cap;
    uint32_t merge_skip; /* groups left to commit the usual way after a refused merge */
} group_t;

/* A group of small unkeyed POST /v1/events batches of one token is committed as one batch of
 * their events in request order when that batch is accepted whole: the engine's group path
 * applies each request in a nested transaction of its own, which costs ~6 us per request on
 * top of the work (64 single-sale requests: 1.58 ms against 1.21 ms, p50 on the reference
 * machine). Applying the events of one batch in order is applying the requests one after the
 * other (events.md: each event sees the ones before it), so every request gets what the group
 * path would have answered, computed from the seqs: an event is new when its seq is past every
 * seq this batch appended before it, else a duplicate (of an older event, or of one earlier in
 * the group). A batch with any error writes nothing (log.h), and the group then goes the
 * group path, where each request is accepted or refused on its own; after such a failure the
 * next MERGE_SKIP_AFTER_FAILURE groups go the group path directly, so a stream of requests
 * that are refused costs the apply twice only now and then. */
#define MERGE_EVENTS_MAX 4096
#define MERGE_SKIP_AFTER_FAILURE 8

/* *p holds at least n elements of elem bytes (*cap counts them); false when out of memory. */
static bool reserve(void **p, size_t *cap, size_t n, size_t elem)
{
    if (*cap >= n)
        return true;
    void *q = realloc(*p, n * elem);
    if (q == NULL)
        return false;
    *p = q;
    *cap = n;
    return true;
}

/* The merged batch of jobs[0..n) into g->merged, or false when the group does not qualify. */
static bool merge_build(group_t *g, acr_srv_wjob_t *const *jobs, size_t n)
{
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        const acr_srv_wjob_t *j = jobs[i];
        if (j->idem != NULL || (j->kind_detail != ACR_SRV_ANSWER_EVENTS &&
                                j->kind_detail != ACR_SRV_ANSWER_NDJSON) ||
            strcmp(j->batch.actor, jobs[0]->batch.actor) != 0)
            return false;
        total += j->batch.count;
    }
    if (n < 2 || total > MERGE_EVENTS_MAX)
        return false;
    acr_batch_t *m = &g->merged;
    acr_batch_reset(m);
    acr_batch_set_actor(m, jobs[0]->batch.actor);
    if (!reserve((void **)&m->items, &m->items_cap, total, sizeof *m->items) ||
        !reserve((void **)&g->seqs, &g->seqs_cap, total, sizeof *g->seqs))
        return false;
    for (size_t i = 0; i < n; i++) {
        const acr_batch_t *b = &jobs[i]->batch;
        size_t base = m->records.len;
        if (acr_buf_append(&m->records, b->records.data, b->records.len) != 0)
            return false;
        for (size_t k = 0; k < b->count; k++) {
            m->items[m->count] = b->items[k];
            m->items[m->count++].off += base;
        }
    }
    return true;
}

/* Commits jobs[0..n) as one batch (see above) and fills results and rcs as the group path
 * would; false, with nothing written, when the group does not qualify or the batch failed. */
static bool merge_commit(acr_srv_t *s, group_t *g, acr_srv_wjob_t *const *jobs, size_t n)
{
    if (g->merge_skip > 0) {
        g->merge_skip--;
        return false;
    }
    if (!merge_build(g, jobs, n))
        return false;
    acr_append_result_t mr = {.seqs = g->seqs};
    acr_errlist_clear(&g->errs[0]);
    if (acr_ledger_append(s->ledger, &g->merged, &mr, &g->errs[0]) != 0) {
        g->merge_skip = MERGE_SKIP_AFTER_FAILURE;
        return false;
    }
    uint64_t newest = 0; /* the highest seq appended so far */
    size_t e = 0;
    for (size_t i = 0; i < n; i++) {
        acr_append_result_t *r = &g->results[i];
        for (size_t k = 0; k < jobs[i]->batch.count; k++, e++) {
            uint64_t seq = g->seqs[e];
            if (r->seqs != NULL)
                r->seqs[k] = seq;
            if (mr.appended > 0 && seq >= mr.first_seq && seq > newest) {
                newest = seq;
                r->first_seq = r->appended == 0 ? seq : r->first_seq;
                r->last_seq = seq;
                r->appended++;
            } else {
                r->duplicates++;
            }
        }
        g->rcs[i] = 0;
    }
    return true;
}

/* The wall clock in UTC ms: the close's "now" (payout.h: the processor never reads it). */
static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int group_reserve(group_t *g, size_t n)
{
    if (n <= g->cap)
        return 0;
    size_t cap = n < 64 ? 64 : n;
    void *b = realloc(g->batches, cap * sizeof *g->batches);
    if (b != NULL)
        g->batches = b;
    void *r = realloc(g->results, cap * sizeof *g->results);
    if (r != NULL)
        g->results = r;
    void *e = realloc(g->errs, cap * sizeof *g->errs);
    if (e != NULL)
        g->errs = e;
    void *c = realloc(g->rcs, cap * sizeof *g->rcs);
    if (c != NULL)
        g->rcs = c;
    void *k = realloc(g->idems, cap * sizeof *g->idems);
    if (k != NULL)
        g->idems = k;
    void *j = realloc(g->jobs, cap * sizeof *g->jobs);
    if (j != NULL)
        g->jobs = j;
    if (b == NULL || r == NULL || e == NULL || c == NULL || k == NULL || j == NULL)
        return ACR_ENOMEM;
    g->cap = cap;
    return 0;
}

/* Commits the appends among jobs together; returns the highest seq written. */
static uint64_t commit_appends(acr_srv_t *s, group_t *g, acr_srv_wjob_t *jobs)
{
    size_t n = 0;
    for (acr_srv_wjob_t *j = jobs; j != NULL; j = j->next)
        n += j->kind == ACR_SRV_JOB_APPEND;
    if (n == 0)
        return 0;
    if (group_reserve(g, n) != 0) {
        for (acr_srv_wjob_t *j = jobs; j != NULL; j = j->next)
            j->rc = ACR_ENOMEM;
        return 0;
    }
    size_t i = 0;
    bool keyed = false;
    for (acr_srv_wjob_t *j = jobs; j != NULL; j = j->next) {
        if (j->kind != ACR_SRV_JOB_APPEND)
            continue;
        g->jobs[i] = j;
        g->idems[i] = j->idem;
        if (j->idem != NULL)
            j->idem->answer = s->idem_format;
        keyed = keyed || j->idem != NULL;
        g->batches[i] = &j->batch;
        memset(&g->results[i], 0, sizeof g->results[i]);
        g->results[i].seqs = j->result.seqs;
        i++;
    }
    uint64_t t0 = uv_hrtime();
    /* Our commit writes no token: the token cache stays valid across it. */
    uint64_t stamp = acr_token_cache_write_begin(s->tokens);
    /* keys are looked up and stored in the group's own transaction (idem.h) */
    int grc = 0;
    if (keyed)
        grc = acr_ledger_append_group_idem(s->ledger, g->batches, n, g->results, g->errs, g->rcs,
                                           g->idems);
    else if (!merge_commit(s, g, g->jobs, n))
        grc = acr_ledger_append_group(s->ledger, g->batches, n, g->results, g->errs, g->rcs);
    /* Whether the group's transaction committed changes: only then did it take a txn id
     * (duplicates and rejected batches alone commit nothing; a stored key does). */
    bool wrote = false;
    for (size_t k = 0; grc == 0 && k < n; k++)
        wrote = wrote || (g->rcs[k] == 0 && g->results[k].appended > 0) ||
                (g->idems[k] != NULL && g->idems[k]->state == ACR_IDEM_STORED);
    acr_token_cache_write_end(s->tokens, stamp, wrote);
    uint64_t us = (uv_hrtime() - t0) / 1000, appended = 0, head = 0;
    i = 0;
    for (acr_srv_wjob_t *j = jobs; j != NULL; j = j->next) {
        if (j->kind != ACR_SRV_JOB_APPEND)
            continue;
        j->rc = g->rcs[i];
        j->result = g->results[i];
        if (j->rc != 0) {
            const acr_errlist_t *e = &g->errs[i];
            memcpy(j->errs->items, e->items, e->count * sizeof e->items[0]);
            j->errs->count = e->count;
            j->errs->total = e->total;
        } else {
            appended += j->result.appended;
            if (j->result.last_seq > head)
                head = j->result.last_seq;
        }
        i++;
    }
    acr_srv_metrics_commit(n, appended, us);
    return head;
}

/* Runs a close job. A keyed close whose key is known is not run (answered from the
 * record); one refused by the period's state (409: period_open, period_closed, ...) has
 * its answer stored in a transaction of its own (the refusal has no effect to share one
 * with); a successful one stores it in the close's own transaction. */
static void run_close(acr_srv_t *s, acr_srv_wjob_t *j)
{
    acr_err_clear(&j->err);
    int64_t now_ms = wall_ms();
    if (j->idem != NULL) {
        j->idem->answer = s->idem_format;
        j->rc = acr_idem_lookup(s->ledger, j->idem, now_ms, &j->err);
        if (j->rc != 0 || j->idem->state != ACR_IDEM_NEW)
            return;
    }
    acr_close_request_t req = {.period_id = j->period, .now_ms = now_ms,
                               .actor = j->batch.actor, .idem = j->idem};
    j->rc = acr_payout_close(s->ledger, &req, &j->payout, &j->close_seq, &j->err);
    if (j->rc == 0 || j->idem == NULL || j->idem->state != ACR_IDEM_NEW ||
        acr_err_class(j->rc) != ACR_CLASS_CONFLICT || j->rc == ACR_EVERSION_CONFLICT)
        return; /* not decided (a failure, or a log that kept moving): a retry runs again */
    acr_err_t serr;
    acr_err_clear(&serr);
    if (j->idem->answer(j->idem, j->rc, NULL, NULL))
        (void)acr_idem_store(s->ledger, j->idem, &serr); /* not kept: a retry closes again */
}

#define GATHER_US_MAX 2000

/* Waits (mu held) until want jobs are queued or wait_us passed. */
static void gather(acr_srv_writer_t *w, size_t want, uint64_t wait_us)
{
    struct timespec dl;
    clock_gettime(CLOCK_MONOTONIC, &dl);
    uint64_t ns = (uint64_t)dl.tv_nsec + wait_us * 1000;
    dl.tv_sec += (time_t)(ns / 1000000000u);
    dl.tv_nsec = (long)(ns % 1000000000u);
    w->want = want;
    while (w->in_count < want && !w->stop)
        if (pthread_cond_timedwait(&w->cv, &w->mu, &dl) == ETIMEDOUT)
            break;
    w->want = 1;
}

/* Hands finished jobs (a list, maybe empty) to the loop with the committed head; answers
 * how many jobs were queued meanwhile (none of these is answered yet: the loop needs mu). */
static size_t publish(acr_srv_writer_t *w, acr_srv_wjob_t *jobs, uint64_t head)
{
    acr_srv_wjob_t *last = jobs;
    while (last != NULL && last->next != NULL)
        last = last->next;
    pthread_mutex_lock(&w->mu);
    if (jobs != NULL) {
        if (w->done_tail)
            w->done_tail->next = jobs;
        else
            w->done_head = jobs;
        w->done_tail = last;
    }
    if (head > w->committed_seq)
        w->committed_seq = head;
    size_t others = w->in_count;
    pthread_mutex_unlock(&w->mu);
    uv_async_send(&w->async);
    return others;
}

static void *writer_main(void *arg)
{
    acr_srv_t *s = arg;
    acr_srv_writer_t *w = &s->writer;
    group_t g = {0};
    acr_batch_init(&g.merged);
    size_t last_n = 0;    /* jobs of the last group */
    size_t others = 0;    /* jobs queued by the time the last group was answered */
    uint64_t last_us = 0; /* its commit latency */
    for (;;) {
        pthread_mutex_lock(&w->mu);
        while (w->in_head == NULL && !w->stop)
            pthread_cond_wait(&w->cv, &w->mu);
        /* everyone the last group answered, besides those that came during its commit (what
         * is queued now may already hold some of the answered: counting them twice made
         * nearly every group wait out the whole time limit) */
        size_t want = others + last_n;
        if (!w->stop && last_n > 1 && last_us > 0)
            gather(w, want, last_us / 2 < GATHER_US_MAX ? last_us / 2 : GATHER_US_MAX);
        acr_srv_wjob_t *jobs = w->in_head;
        last_n = w->in_count;
        w->in_head = w->in_tail = NULL;
        w->in_count = 0;
        bool stop = w->stop;
        pthread_mutex_unlock(&w->mu);
        if (jobs == NULL && stop)
            break;
        /* check jobs (refused bodies: their rule errors, nothing written) go after the
         * group is answered, so no committed append waits for another client's dry run */
        acr_srv_wjob_t *checks = NULL, **ct = &checks, **jp = &jobs;
        while (*jp != NULL) {
            if ((*jp)->kind == ACR_SRV_JOB_CHECK) {
                *ct = *jp;
                *jp = (*jp)->next;
                ct = &(*ct)->next;
                *ct = NULL;
            } else {
                jp = &(*jp)->next;
            }
        }
        uint64_t t0 = uv_hrtime();
        uint64_t head = commit_appends(s, &g, jobs);
        last_us = (uv_hrtime() - t0) / 1000;
        for (acr_srv_wjob_t *j = jobs; j != NULL; j = j->next) {
            if (j->kind != ACR_SRV_JOB_CLOSE)
                continue;
            run_close(s, j);
            if (j->rc == 0 && j->close_seq > head)
                head = j->close_seq;
        }
        others = publish(w, jobs, head);
        for (acr_srv_wjob_t *j = checks; j != NULL; j = j->next) {
            acr_ledger_add_rule_errors(s->ledger, &j->batch, j->errs);
            j->rc = j->errs->count > 0 ? j->errs->items[0].code : ACR_EINVALID_VALUE;
        }
        if (checks != NULL)
            others = publish(w, checks, 0);
    }
    free(g.jobs);
    free(g.seqs);
    acr_batch_destroy(&g.merged);
    free(g.batches);
    free(g.results);
    free(g.errs);
    free(g.rcs);
    free(g.idems);
    return NULL;
}

/* Loop side: answers every job the writer finished. */
static void on_done(uv_async_t *a)
{
    acr_srv_t *s = a->data;
    acr_srv_writer_t *w = &s->writer;
    pthread_mutex_lock(&w->mu);
    acr_srv_wjob_t *jobs = w->done_head;
    w->done_head = w->done_tail = NULL;
    uint64_t head = w->committed_seq;
    pthread_mutex_unlock(&w->mu);
    while (jobs != NULL) {
        acr_srv_wjob_t *next = jobs->next;
        jobs->next = NULL;
        acr_srv_req_t *req = jobs->req;
        w->in_flight--;
        s->on_job_done(s, req, jobs);
        jobs = next;
    }
    acr_srv_feed_notify(s, head);
    acr_srv_maybe_finish(s);
}

int acr_srv_writer_start(acr_srv_t *s)
{
    acr_srv_writer_t *w = &s->writer;
    pthread_mutex_init(&w->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&w->cv, &ca);
    pthread_condattr_destroy(&ca);
    w->want = 1;
    int rc = uv_async_init(s->loop, &w->async, on_done);
    if (rc != 0)
        return rc;
    w->async.data = s;
    if (pthread_create(&w->thread, NULL, writer_main, s) != 0)
        return UV_EAGAIN;
    w->started = true;
    return 0;
}

void acr_srv_writer_submit(acr_srv_t *s, acr_srv_wjob_t *job)
{
    acr_srv_writer_t *w = &s->writer;
    w->in_flight++;
    job->next = NULL;
    pthread_mutex_lock(&w->mu);
    if (w->in_tail)
        w->in_tail->next = job;
    else
        w->in_head = job;
    w->in_tail = job;
    if (++w->in_count >= w->want)
        pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

void acr_srv_writer_join(acr_srv_t *s)
{
    acr_srv_writer_t *w = &s->writer;
    if (!w->started)
        return;
    pthread_mutex_lock(&w->mu);
    w->stop = true;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->thread, NULL);
    w->started = false;
}
