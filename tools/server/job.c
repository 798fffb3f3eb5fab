/* job.c - write jobs (the writer's unit of work): allocation and release.
 *
 * A leaf: http.c frees the job of a request that dies, ingest.c and
 * routes.c create them, writer.c runs them; none of them needs the others
 * for it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#define XXH_STATIC_LINKING_ONLY /* XXH3_state_t on the stack */
#include <xxhash.h>

#include "internal.h"

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

/* "Same request" (http.md, Idempotency-Key): the same method, target (path and query as
 * sent) and body bytes; lengths go in first so no two requests hash the same bytes. */
static void request_hash(const acr_srv_req_t *req, uint8_t out[ACR_IDEM_HASH_LEN])
{
    XXH3_state_t st;
    XXH128_canonical_t c;
    uint8_t head[17] = {req->method};
    uint64_t lens[2] = {req->url.len, req->body.len};
    for (int i = 0; i < 16; i++)
        head[1 + i] = (uint8_t)(lens[i / 8] >> (8 * (i % 8)));
    XXH3_128bits_reset(&st);
    XXH3_128bits_update(&st, head, sizeof head);
    XXH3_128bits_update(&st, req->url.data, req->url.len);
    XXH3_128bits_update(&st, req->body.data, req->body.len);
    XXH128_canonicalFromHash(&c, XXH3_128bits_digest(&st));
    memcpy(out, c.digest, ACR_IDEM_HASH_LEN);
}

/* An Idempotency-Key belongs to the token that sent it: its name and the first bytes of
 * its hash, so a token revoked and its name given to another (another partner's, say) never
 * replays the first one's answers. idem's init with that scope; false when it does not fit. */
static bool idem_init_scoped(acr_idem_t *idem, const acr_srv_req_t *req)
{
    enum { TAG_BYTES = 8 };
    char scope[ACR_IDEM_SCOPE_MAX + 1], tag[2 * TAG_BYTES + 1];
    for (size_t i = 0; i < TAG_BYTES; i++)
        snprintf(tag + 2 * i, 3, "%02x", req->token_hash[i]);
    int n = snprintf(scope, sizeof scope, "%s#%s", req->token_name[0] ? req->token_name : "?",
                     tag);
    return n > 0 && (size_t)n < sizeof scope && acr_idem_init(idem, scope, req->idem_key);
}

/* The job's key: req's Idempotency-Key in the scope of its token. false when out
 * of memory (a request without a key needs nothing). */
static bool attach_idem(const acr_srv_req_t *req, acr_srv_wjob_t *job)
{
    if (req == NULL || req->idem_key[0] == '\0')
        return true;
    acr_idem_t *idem = malloc(sizeof *idem);
    if (idem == NULL)
        return false;
    if (!idem_init_scoped(idem, req)) {
        free(idem); /* cannot happen: a token's scope and an id always fit */
        return false;
    }
    request_hash(req, idem->req_hash);
    idem->answer_arg = job; /* idem->answer: set by the writer (the hook idem_format) */
    job->idem = idem;
    return true;
}

bool acr_srv_idem_seen(acr_srv_t *s, const acr_srv_req_t *req, acr_idem_t *idem)
{
    if (req->idem_key[0] == '\0' || !idem_init_scoped(idem, req))
        return false;
    request_hash(req, idem->req_hash);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    acr_err_t err;
    acr_err_clear(&err);
    if (acr_idem_lookup(s->ledger, idem, (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000,
                        &err) == 0 &&
        idem->state != ACR_IDEM_NEW)
        return true;
    acr_idem_destroy(idem);
    return false;
}

/* Freed jobs are kept for the next ones (under spare_mu, like the error lists) with their
 * batch's memory, error list and seqs array: a single-event append then allocates nothing
 * but what the engine's parser needs. Memory a big batch grew is freed rather than kept past
 * SPARE_RECORDS_CAP_MAX, so spares pin little; under AddressSanitizer nothing is kept. */
#if defined(ACR_SRV_ASAN)
#define SPARE_JOBS_MAX 0
#else
#define SPARE_JOBS_MAX 128
#endif
#define SPARE_RECORDS_CAP_MAX (64 * 1024)
static acr_srv_wjob_t *spare_jobs[SPARE_JOBS_MAX + 1];
static size_t spare_job_count;

/* A job from the spares (emptied, its kept memory in place), or a fresh one. */
static acr_srv_wjob_t *job_take(void)
{
    acr_srv_wjob_t *job = NULL;
    pthread_mutex_lock(&spare_mu);
    if (spare_job_count > 0)
        job = spare_jobs[--spare_job_count];
    pthread_mutex_unlock(&spare_mu);
    if (job == NULL) {
        if ((job = calloc(1, sizeof *job)) != NULL)
            acr_batch_init(&job->batch);
        return job;
    }
    acr_batch_t batch = job->batch;
    acr_errlist_t *errs = job->errs;
    uint64_t *seqs = job->seqs_kept;
    size_t seqs_cap = job->seqs_cap;
    memset(job, 0, sizeof *job);
    job->batch = batch;
    job->errs = errs;
    job->seqs_kept = seqs;
    job->seqs_cap = seqs_cap;
    return job;
}

acr_srv_wjob_t *acr_srv_wjob_new(const acr_srv_req_t *req, int kind)
{
    acr_srv_wjob_t *job = job_take();
    if (job == NULL)
        return NULL;
    job->kind = kind;
    /* events.md: who appended it, "token:<name>", stored with every event the job appends
     * and on the period.closed it writes */
    char actor[ACR_ACTOR_MAX + 1];
    snprintf(actor, sizeof actor, "token:%s",
             req != NULL && req->token_name[0] ? req->token_name : "?");
    acr_batch_set_actor(&job->batch, actor);
    job->role = req != NULL ? req->role : ACR_ROLE_NONE;
    if (kind == ACR_SRV_JOB_APPEND && job->errs != NULL)
        acr_errlist_clear(job->errs);
    if (kind != ACR_SRV_JOB_APPEND) {
        errs_give(job->errs);
        job->errs = NULL;
    }
    if ((kind == ACR_SRV_JOB_APPEND && job->errs == NULL && (job->errs = errs_take()) == NULL) ||
        !attach_idem(req, job)) {
        acr_srv_wjob_free(job);
        return NULL;
    }
    return job;
}

int acr_srv_wjob_seqs(acr_srv_wjob_t *job, size_t n)
{
    if (n > job->seqs_cap) {
        uint64_t *seqs = realloc(job->seqs_kept, n * sizeof *seqs);
        if (seqs == NULL)
            return ACR_ENOMEM;
        job->seqs_kept = seqs;
        job->seqs_cap = n;
    }
    memset(job->seqs_kept, 0, n * sizeof *job->seqs_kept);
    job->result.seqs = job->seqs_kept;
    return 0;
}

void acr_srv_wjob_forget_key(acr_srv_wjob_t *job)
{
    acr_idem_destroy(job->idem);
    free(job->idem);
    job->idem = NULL;
}

void acr_srv_wjob_free(acr_srv_wjob_t *job)
{
    if (job == NULL)
        return;
    acr_payout_destroy(&job->payout);
    acr_srv_wjob_forget_key(job);
    bool keep = job->batch.records.cap <= SPARE_RECORDS_CAP_MAX &&
                job->seqs_cap * sizeof(uint64_t) <= SPARE_RECORDS_CAP_MAX;
    if (keep) {
        acr_batch_reset(&job->batch);
        pthread_mutex_lock(&spare_mu);
        if (spare_job_count < SPARE_JOBS_MAX) {
            spare_jobs[spare_job_count++] = job;
            job = NULL;
        }
        pthread_mutex_unlock(&spare_mu);
        if (job == NULL)
            return;
    }
    acr_batch_destroy(&job->batch);
    free(job->seqs_kept);
    errs_give(job->errs);
    free(job);
}
