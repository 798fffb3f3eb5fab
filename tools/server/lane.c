/* lane.c - the slow lane: a few threads of their own for the reads that
 * replay or scan the whole log.
 *
 * A KPI with commission, a payout run, an audit, a staff statement, the
 * promotions' budget use and a verify each take seconds to tens of
 * seconds on a large ledger. On libuv's thread pool they would hold its
 * threads, and the small projection reads of the dashboard's next view
 * (a partner, the pipeline, the deals) would queue behind them. So they
 * run here instead: lim.expensive_max threads take requests off a
 * mutex-protected queue (a condition variable wakes them), and at most
 * lim.slow_queue_max more may wait; past that acr_srv_lane_submit refuses
 * and the caller answers 503 with Retry-After. A thread that finished a
 * request puts it on the done queue and wakes the loop with uv_async_send
 * (sent while holding the mutex, so the loop cannot drain the job and close
 * the handle between the two); the loop runs each request's done callback,
 * as libuv would run a pool job's after-callback.
 *
 * Layer 1 (it calls only the leaves parse.c and life.c): the work and the
 * answer are the caller's callbacks (routes.c);
 * the loop-side count lane.in_flight keeps the server alive at shutdown
 * (life.c) until every admitted request is answered, and acr_srv_lane_join
 * then stops and joins the threads.
 *
 * Test hook: ACCRUE_TEST_SLOW_MS=N in the environment of `accrue serve`
 * (read once at start) makes each slow request sleep N ms on its lane
 * thread before it works, so a test can hold the lane busy for as long as
 * it needs on a small ledger. For tests only; nothing else reads it.
 */
#include <assert.h>
#include <stdlib.h>
#include <time.h>

#include "internal.h"

static void sleep_ms(uint64_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

/* Lane thread: the next waiting request, or NULL when told to stop. */
static acr_srv_req_t *take(acr_srv_lane_t *l)
{
    pthread_mutex_lock(&l->mu);
    while (l->in_head == NULL && !l->stop)
        pthread_cond_wait(&l->cv, &l->mu);
    acr_srv_req_t *req = l->in_head;
    if (req != NULL) {
        l->in_head = req->lane.next;
        if (l->in_head == NULL)
            l->in_tail = NULL;
        req->lane.next = NULL;
    }
    pthread_mutex_unlock(&l->mu);
    return req;
}

static void give_back(acr_srv_lane_t *l, acr_srv_req_t *req)
{
    pthread_mutex_lock(&l->mu);
    if (l->done_tail)
        l->done_tail->lane.next = req;
    else
        l->done_head = req;
    l->done_tail = req;
    uv_async_send(&l->async);
    pthread_mutex_unlock(&l->mu);
}

static void *lane_main(void *arg)
{
    acr_srv_t *s = arg;
    acr_srv_lane_t *l = &s->lane;
    acr_srv_req_t *req;
    while ((req = take(l)) != NULL) {
        if (l->test_delay_ms > 0 && !atomic_load(&req->gone))
            sleep_ms(l->test_delay_ms);
        req->lane.run(s, req);
        give_back(l, req);
    }
    return NULL;
}

/* Loop side: answers every request the lane finished. */
static void on_done(uv_async_t *a)
{
    acr_srv_t *s = a->data;
    acr_srv_lane_t *l = &s->lane;
    pthread_mutex_lock(&l->mu);
    acr_srv_req_t *req = l->done_head;
    l->done_head = l->done_tail = NULL;
    pthread_mutex_unlock(&l->mu);
    while (req != NULL) {
        acr_srv_req_t *next = req->lane.next;
        req->lane.next = NULL;
        l->in_flight--;
        req->lane.done(s, req);
        req = next;
    }
    acr_srv_maybe_finish(s);
}

static uint64_t test_delay_ms(void)
{
    const char *v = getenv("ACCRUE_TEST_SLOW_MS");
    uint64_t ms = 0;
    if (v == NULL || !acr_srv_parse_u64(v, &ms))
        return 0;
    return ms < 600000 ? ms : 600000;
}

int acr_srv_lane_start(acr_srv_t *s)
{
    acr_srv_lane_t *l = &s->lane;
    uint32_t n = s->lim.expensive_max;
    if (n == 0)
        n = 1;
    if (n > ACR_SRV_LANE_THREADS_MAX)
        n = ACR_SRV_LANE_THREADS_MAX;
    l->test_delay_ms = test_delay_ms();
    if ((l->threads = calloc(n, sizeof *l->threads)) == NULL)
        return UV_ENOMEM;
    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->cv, NULL);
    int rc = uv_async_init(s->loop, &l->async, on_done);
    if (rc != 0)
        return rc;
    l->async.data = s;
    l->ready = true;
    for (; l->thread_count < n; l->thread_count++) {
        if (pthread_create(&l->threads[l->thread_count], NULL, lane_main, s) != 0)
            return UV_EAGAIN;
    }
    return 0;
}

bool acr_srv_lane_submit(acr_srv_t *s, acr_srv_req_t *req)
{
    acr_srv_lane_t *l = &s->lane;
    assert(req->lane.run != NULL);
    assert(req->lane.done != NULL);
    if (l->thread_count == 0 || l->in_flight >= l->thread_count + s->lim.slow_queue_max)
        return false;
    l->in_flight++;
    req->lane.next = NULL;
    pthread_mutex_lock(&l->mu);
    if (l->in_tail)
        l->in_tail->lane.next = req;
    else
        l->in_head = req;
    l->in_tail = req;
    pthread_cond_signal(&l->cv);
    pthread_mutex_unlock(&l->mu);
    return true;
}

void acr_srv_lane_join(acr_srv_t *s)
{
    acr_srv_lane_t *l = &s->lane;
    if (l->threads == NULL)
        return;
    pthread_mutex_lock(&l->mu);
    l->stop = true;
    pthread_cond_broadcast(&l->cv);
    pthread_mutex_unlock(&l->mu);
    for (uint32_t i = 0; i < l->thread_count; i++)
        pthread_join(l->threads[i], NULL);
    l->thread_count = 0;
    free(l->threads);
    l->threads = NULL;
    pthread_cond_destroy(&l->cv);
    pthread_mutex_destroy(&l->mu);
}
