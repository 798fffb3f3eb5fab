/* serve_writer.c - the one thread that writes: group commit.
 *
 * LMDB allows one write transaction at a time and wants it begun and
 * committed on the same thread, so every write of the server (event
 * appends, deal registrations and moves, payout closes) is a job for this
 * thread. Jobs arrive on a mutex-protected queue (a condition variable wakes
 * the thread). The thread takes every append waiting and hands them to
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
 * waits until as many more jobs as the last group answered have come, but
 * never longer than half the last commit's latency (capped at
 * GATHER_US_MAX): so under load one fsync serves every client in turn,
 * instead of two half-empty groups alternating, and a lone client never
 * waits (its group was 1).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "serve.h"

/* Spare error lists (40 KiB each): an append request takes one from here
 * instead of a fresh malloc, and gives it back when its job is freed. */
#define SPARE_ERRS_MAX 64
static pthread_mutex_t spare_mu = PTHREAD_MUTEX_INITIALIZER;
static acr_errlist_t *spare_errs[SPARE_ERRS_MAX];
static size_t spare_count;

static acr_errlist_t *errs_take(void)
{
    acr_errlist_t *e = NULL;
    pthread_mutex_lock(&spare_mu);
    if (spare_count > 0)
        e = spare_errs[--spare_count];
    pthread_mutex_unlock(&spare_mu);
    if (e == NULL && (e = malloc(sizeof *e)) == NULL)
        return NULL;
    acr_errlist_clear(e); /* only count and total are read before items are written */
    return e;
}

static void errs_give(acr_errlist_t *e)
{
    if (e == NULL)
        return;
    pthread_mutex_lock(&spare_mu);
    if (spare_count < SPARE_ERRS_MAX) {
        spare_errs[spare_count++] = e;
        e = NULL;
    }
    pthread_mutex_unlock(&spare_mu);
    free(e);
}

srv_wjob_t *srv_wjob_new(int kind)
{
    srv_wjob_t *job = calloc(1, sizeof *job);
    if (job == NULL)
        return NULL;
    job->kind = kind;
    acr_batch_init(&job->batch);
    if (kind == SRV_JOB_APPEND && (job->errs = errs_take()) == NULL) {
        free(job);
        return NULL;
    }
    return job;
}

void srv_wjob_free(srv_wjob_t *job)
{
    if (job == NULL)
        return;
    acr_batch_destroy(&job->batch);
    free(job->result.seqs);
    errs_give(job->errs);
    acr_payout_destroy(&job->payout);
    free(job);
}

/* Scratch arrays of one group, grown as needed (writer thread only). */
typedef struct group {
    const acr_batch_t **batches;
    acr_append_result_t *results;
    acr_errlist_t *errs;
    int *rcs;
    size_t cap;
} group_t;

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
    if (b == NULL || r == NULL || e == NULL || c == NULL)
        return ACR_ENOMEM;
    g->cap = cap;
    return 0;
}

/* Commits the appends among jobs together; returns the highest seq written. */
static uint64_t commit_appends(srv_t *s, group_t *g, srv_wjob_t *jobs)
{
    size_t n = 0;
    for (srv_wjob_t *j = jobs; j != NULL; j = j->next)
        n += j->kind == SRV_JOB_APPEND;
    if (n == 0)
        return 0;
    if (group_reserve(g, n) != 0) {
        for (srv_wjob_t *j = jobs; j != NULL; j = j->next)
            j->rc = ACR_ENOMEM;
        return 0;
    }
    size_t i = 0;
    for (srv_wjob_t *j = jobs; j != NULL; j = j->next) {
        if (j->kind != SRV_JOB_APPEND)
            continue;
        g->batches[i] = &j->batch;
        memset(&g->results[i], 0, sizeof g->results[i]);
        g->results[i].seqs = j->result.seqs;
        i++;
    }
    uint64_t t0 = uv_hrtime();
    /* Our commit writes no token: the token cache stays valid across it. */
    uint64_t stamp = acr_token_cache_write_begin(s->tokens);
    acr_ledger_append_group(s->ledger, g->batches, n, g->results, g->errs, g->rcs);
    acr_token_cache_write_end(s->tokens, stamp);
    uint64_t us = (uv_hrtime() - t0) / 1000, appended = 0, head = 0;
    i = 0;
    for (srv_wjob_t *j = jobs; j != NULL; j = j->next) {
        if (j->kind != SRV_JOB_APPEND)
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
    srv_metrics_commit(n, appended, us);
    return head;
}

#define GATHER_US_MAX 2000

/* Waits (mu held) until want jobs are queued or wait_us passed. */
static void gather(srv_writer_t *w, size_t want, uint64_t wait_us)
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

static void *writer_main(void *arg)
{
    srv_t *s = arg;
    srv_writer_t *w = &s->writer;
    group_t g = {0};
    size_t last_n = 0;    /* jobs of the last group */
    uint64_t last_us = 0; /* its commit latency */
    for (;;) {
        pthread_mutex_lock(&w->mu);
        while (w->in_head == NULL && !w->stop)
            pthread_cond_wait(&w->cv, &w->mu);
        /* everyone the last group answered, besides what is queued already */
        size_t want = w->in_count + last_n;
        if (!w->stop && last_n > 1 && last_us > 0)
            gather(w, want, last_us / 2 < GATHER_US_MAX ? last_us / 2 : GATHER_US_MAX);
        srv_wjob_t *jobs = w->in_head;
        last_n = w->in_count;
        w->in_head = w->in_tail = NULL;
        w->in_count = 0;
        bool stop = w->stop;
        pthread_mutex_unlock(&w->mu);
        if (jobs == NULL && stop)
            break;
        uint64_t t0 = uv_hrtime();
        uint64_t head = commit_appends(s, &g, jobs);
        last_us = (uv_hrtime() - t0) / 1000;
        for (srv_wjob_t *j = jobs; j != NULL; j = j->next) {
            if (j->kind != SRV_JOB_CLOSE)
                continue;
            acr_err_clear(&j->err);
            acr_close_request_t req = {.period_id = j->period, .now_ms = acr__wall_ms(),
                                       .actor = j->batch.actor};
            j->rc = acr_payout_close(s->ledger, &req, &j->payout, &j->close_seq, &j->err);
            if (j->rc == 0 && j->close_seq > head)
                head = j->close_seq;
        }
        srv_wjob_t *last = jobs;
        while (last->next != NULL)
            last = last->next;
        pthread_mutex_lock(&w->mu);
        if (w->done_tail)
            w->done_tail->next = jobs;
        else
            w->done_head = jobs;
        w->done_tail = last;
        if (head > w->committed_seq)
            w->committed_seq = head;
        pthread_mutex_unlock(&w->mu);
        uv_async_send(&w->async);
    }
    free(g.batches);
    free(g.results);
    free(g.errs);
    free(g.rcs);
    return NULL;
}

/* Loop side: answers every job the writer finished. */
static void on_done(uv_async_t *a)
{
    srv_t *s = a->data;
    srv_writer_t *w = &s->writer;
    pthread_mutex_lock(&w->mu);
    srv_wjob_t *jobs = w->done_head;
    w->done_head = w->done_tail = NULL;
    uint64_t head = w->committed_seq;
    pthread_mutex_unlock(&w->mu);
    while (jobs != NULL) {
        srv_wjob_t *next = jobs->next;
        jobs->next = NULL;
        srv_req_t *req = jobs->req;
        w->in_flight--;
        srv_answer_job(req, jobs);
        srv_respond(req);
        jobs = next;
    }
    srv_feed_notify(s, head);
    srv_maybe_finish(s);
}

int srv_writer_start(srv_t *s)
{
    srv_writer_t *w = &s->writer;
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

void srv_writer_submit(srv_t *s, srv_wjob_t *job)
{
    srv_writer_t *w = &s->writer;
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

void srv_writer_join(srv_t *s)
{
    srv_writer_t *w = &s->writer;
    if (!w->started)
        return;
    pthread_mutex_lock(&w->mu);
    w->stop = true;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->thread, NULL);
    w->started = false;
}
