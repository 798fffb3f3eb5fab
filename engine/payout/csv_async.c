/* csv_async.c - the statement CSV written on a second thread (csv_async.h).
 *
 * BUFS buffers of BUF_BYTES circulate between the formatting thread (fills the current
 * one) and the writer thread (drains full ones in order). Memory stays at BUFS x
 * BUF_BYTES whatever the statement's size; a slow disk makes the formatter wait. */
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "accrue/error.h"
#include "csv_async.h"

#define BUFS 4
#define BUF_BYTES (1u << 20)
#define BUF_ALIGN 4096u
_Static_assert(BUF_BYTES % BUF_ALIGN == 0, "every full buffer is a whole number of pages");

typedef struct buf {
    char *data;
    size_t len;
} buf_t;

struct acr__csv_async {
    acr_csv_write_fn write; /* the caller's sink */
    void *arg;
    buf_t bufs[BUFS];
    size_t filled;          /* buffers handed to the writer (monotonic); guarded by mu */
    size_t written;         /* buffers the writer has drained (monotonic); guarded by mu */
    bool done;              /* no more buffers will come; guarded by mu */
    int rc;                 /* the sink's first error; guarded by mu */
    bool threaded;
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t cv;      /* filled, written or done changed */
};

static void *writer_main(void *arg)
{
    acr__csv_async_t *w = arg;
    pthread_mutex_lock(&w->mu);
    for (;;) {
        while (w->written == w->filled && !w->done)
            pthread_cond_wait(&w->cv, &w->mu);
        if (w->written == w->filled)
            break; /* done and drained */
        buf_t *b = &w->bufs[w->written % BUFS];
        int failed = w->rc;
        pthread_mutex_unlock(&w->mu);
        int rc = failed ? failed : w->write(w->arg, b->data, b->len);
        pthread_mutex_lock(&w->mu);
        if (rc != 0 && w->rc == 0)
            w->rc = rc;
        w->written++;
        pthread_cond_broadcast(&w->cv);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

/* Hands the current buffer to the writer and waits for a free one. */
static int hand_over(acr__csv_async_t *w)
{
    pthread_mutex_lock(&w->mu);
    w->filled++;
    pthread_cond_broadcast(&w->cv);
    while (w->filled - w->written == BUFS)
        pthread_cond_wait(&w->cv, &w->mu);
    w->bufs[w->filled % BUFS].len = 0;
    int rc = w->rc;
    pthread_mutex_unlock(&w->mu);
    return rc;
}

static int async_write(void *arg, const void *p, size_t n)
{
    acr__csv_async_t *w = arg;
    if (!w->threaded)
        return w->write(w->arg, p, n);
    for (const char *s = p; n > 0;) {
        buf_t *b = &w->bufs[w->filled % BUFS]; /* only this thread moves filled */
        size_t k = BUF_BYTES - b->len < n ? BUF_BYTES - b->len : n;
        memcpy(b->data + b->len, s, k);
        b->len += k;
        s += k;
        n -= k;
        if (b->len == BUF_BYTES) {
            int rc = hand_over(w);
            if (rc != 0)
                return rc;
        }
    }
    return 0;
}

acr__csv_async_t *acr__csv_async_open(const acr_comm_output_t *o, acr_comm_output_t *wrapped)
{
    acr__csv_async_t *w = calloc(1, sizeof *w);
    if (w == NULL)
        return NULL;
    w->write = o->csv_write;
    w->arg = o->csv_arg;
    *wrapped = *o;
    wrapped->csv_write = async_write;
    wrapped->csv_arg = w;
    bool bufs = true;
    for (int i = 0; i < BUFS; i++) /* page-aligned: a sink may write them with O_DIRECT */
        bufs = bufs && (w->bufs[i].data = aligned_alloc(BUF_ALIGN, BUF_BYTES)) != NULL;
    if (!bufs || pthread_mutex_init(&w->mu, NULL) != 0)
        return w; /* synchronous; close frees what was allocated */
    if (pthread_cond_init(&w->cv, NULL) != 0) {
        pthread_mutex_destroy(&w->mu);
        return w;
    }
    w->threaded = pthread_create(&w->th, NULL, writer_main, w) == 0;
    if (!w->threaded) {
        pthread_cond_destroy(&w->cv);
        pthread_mutex_destroy(&w->mu);
    }
    return w;
}

int acr__csv_async_close(acr__csv_async_t *w)
{
    int rc = 0;
    if (w->threaded) {
        buf_t *b = &w->bufs[w->filled % BUFS];
        pthread_mutex_lock(&w->mu);
        if (b->len > 0)
            w->filled++;
        w->done = true;
        pthread_cond_broadcast(&w->cv);
        pthread_mutex_unlock(&w->mu);
        pthread_join(w->th, NULL);
        rc = w->rc;
        pthread_cond_destroy(&w->cv);
        pthread_mutex_destroy(&w->mu);
    }
    for (int i = 0; i < BUFS; i++)
        free(w->bufs[i].data);
    free(w);
    return rc;
}
