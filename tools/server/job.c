/* job.c - write jobs (the writer's unit of work): allocation and release.
 *
 * A leaf: http.c frees the job of a request that dies, ingest.c and
 * routes.c create them, writer.c runs them; none of them needs the others
 * for it.
 */
#include <stdio.h>
#include <stdlib.h>

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

acr_srv_wjob_t *acr_srv_wjob_new(const acr_srv_req_t *req, int kind)
{
    acr_srv_wjob_t *job = calloc(1, sizeof *job);
    if (job == NULL)
        return NULL;
    job->kind = kind;
    acr_batch_init(&job->batch);
    /* events.md: who appended it, "token:<name>", stored with every event the job appends
     * and on the period.closed it writes */
    char actor[ACR_ACTOR_MAX + 1];
    snprintf(actor, sizeof actor, "token:%s",
             req != NULL && req->token_name[0] ? req->token_name : "?");
    acr_batch_set_actor(&job->batch, actor);
    if (kind == ACR_SRV_JOB_APPEND && (job->errs = errs_take()) == NULL) {
        free(job);
        return NULL;
    }
    return job;
}

void acr_srv_wjob_free(acr_srv_wjob_t *job)
{
    if (job == NULL)
        return;
    acr_batch_destroy(&job->batch);
    free(job->result.seqs);
    errs_give(job->errs);
    acr_payout_destroy(&job->payout);
    free(job);
}
