/* feed.c - GET /v1/feed: the live event stream (Server-Sent Events).
 *
 * A subscriber starts in catch-up: pool jobs read the log from its next
 * seq in chunks (at most CHUNK_EVENTS events or CHUNK_BYTES bytes, each job
 * with its own short read snapshot, so a reader never holds back LMDB's map
 * growth or page reuse for long), pacing themselves on the socket's write
 * queue. When a read finds nothing new and the subscriber is past
 * everything already broadcast, it turns live.
 *
 * Live subscribers share one read per commit: when the writer reports a new
 * head, one pool job renders the new events once into a reference-counted
 * chunk, and the loop writes the part each live subscriber has not seen
 * (by per-event offsets) to all of them. A live subscriber that still has
 * unsent bytes and whose backlog would pass feed_pending_bytes_max is
 * disconnected (it can resume
 * with Last-Event-ID): a slow reader never holds back writers or grows the
 * server's memory. A comment line every feed_heartbeat_ms keeps proxies
 * from timing the stream out and detects dead peers.
 *
 * Commits made by other processes (an `accrue append` or `payout close` run beside
 * the server) never pass through the writer, so a watch timer reads LMDB's last
 * transaction id every WATCH_MS (a look at the shared meta page: no I/O, no lock wait)
 * and, when it moved, reads the live chunk up to the head: a foreign commit reaches
 * live subscribers within WATCH_MS plus one read.
 *
 * Frames are `id: <seq>\ndata: <event JSON as GET /v1/events>\n\n`.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define CHUNK_EVENTS 1000
#define CHUNK_BYTES (256 * 1024)
#define WATCH_MS 100 /* foreign commits reach live subscribers within this, plus a read */

struct acr_srv_chunk {
    int refs;             /* writes in flight + the creator */
    uint64_t first, last; /* seq range, gapless */
    size_t *offs;         /* offs[i]: offset of event first+i; offs[count]: end */
    acr_buf_t data;       /* the SSE frames */
};

typedef struct acr_srv_sub {
    acr_srv_t *srv;
    acr_srv_conn_t *conn; /* NULL once the connection closed */
    uint64_t next_seq;    /* next seq to send */
    bool live;            /* receives broadcasts */
    bool reading;         /* a catch-up read is in flight */
    int writes;           /* uv_writes in flight */
    bool token_stored;    /* its token is in the ledger's table: rechecked (revoke, expiry) */
    uint8_t token_hash[ACR_TOKEN_HASH_LEN];
    struct acr_srv_sub *prev, *next;
} acr_srv_sub_t;

typedef struct feed_read {
    uv_work_t work;
    acr_srv_t *srv;
    acr_srv_sub_t *sub;     /* NULL for the shared live read */
    uint64_t from, to;      /* seq range wanted (to inclusive; UINT64_MAX = the head) */
    acr_srv_chunk_t *chunk; /* result, NULL when nothing */
    int rc;
} feed_read_t;

typedef struct feed_write {
    uv_write_t w;
    acr_srv_sub_t *sub;
    acr_srv_chunk_t *chunk; /* NULL for static text */
} feed_write_t;

static void chunk_unref(acr_srv_chunk_t *c)
{
    if (c == NULL || --c->refs > 0)
        return;
    free(c->offs);
    acr_buf_destroy(&c->data);
    free(c);
}

static void sub_maybe_free(acr_srv_sub_t *sub)
{
    if (sub->conn == NULL && !sub->reading && sub->writes == 0)
        free(sub);
}

/* ---- reading (pool thread) ---------------------------------------------------------- */

static int render(acr_reader_t *r, feed_read_t *fr, acr_err_t *err)
{
    uint64_t head = acr_reader_head_seq(r);
    uint64_t to = fr->to < head ? fr->to : head;
    if (fr->from > to)
        return 0;
    int rc = acr_reader_seek(r, fr->from, err);
    if (rc != 0)
        return rc;
    acr_srv_chunk_t *c = calloc(1, sizeof *c);
    uint64_t max = to - fr->from + 1 < CHUNK_EVENTS ? to - fr->from + 1 : CHUNK_EVENTS;
    if (c == NULL || (c->offs = malloc((max + 1) * sizeof *c->offs)) == NULL) {
        free(c);
        return ACR_ENOMEM;
    }
    acr_buf_init(&c->data);
    c->refs = 1;
    c->first = fr->from;
    size_t n = 0;
    acr_event_t ev;
    uint8_t hash[ACR_HASH_LEN];
    while (n < max && c->data.len < CHUNK_BYTES && (rc = acr_reader_next(r, &ev, hash, err)) == 1) {
        c->offs[n++] = c->data.len;
        acr_buf_printf(&c->data, "id: %" PRIu64 "\ndata: ", ev.seq);
        acr_event_to_json(&ev, hash, true, &c->data);
        acr_buf_append(&c->data, "\n\n", 2);
    }
    if (rc < 0 || n == 0) {
        chunk_unref(c);
        return rc < 0 ? rc : 0;
    }
    c->offs[n] = c->data.len;
    c->last = c->first + n - 1;
    fr->chunk = c;
    return 0;
}

static void read_work(uv_work_t *w)
{
    feed_read_t *fr = w->data;
    acr_reader_t *r;
    acr_err_t err;
    fr->rc = acr_reader_open(fr->srv->ledger, &r, &err);
    if (fr->rc != 0)
        return;
    fr->rc = render(r, fr, &err);
    acr_reader_close(r);
}

static void read_done(uv_work_t *w, int status);
static bool sub_token_ok(acr_srv_t *s, acr_srv_sub_t *x);

static void queue_read(acr_srv_t *s, acr_srv_sub_t *sub, uint64_t from, uint64_t to)
{
    feed_read_t *fr = calloc(1, sizeof *fr);
    if (fr == NULL)
        return;
    fr->srv = s;
    fr->sub = sub;
    fr->from = from;
    fr->to = to;
    fr->work.data = fr;
    if (sub)
        sub->reading = true;
    else
        s->feed.fetching = true;
    s->pool_jobs++;
    uv_queue_work(s->loop, &fr->work, read_work, read_done);
}

/* ---- writing (loop thread) ------------------------------------------------------------ */

static void sub_pump(acr_srv_sub_t *sub);

static void on_feed_written(uv_write_t *w, int status)
{
    feed_write_t *fw = w->data;
    acr_srv_sub_t *sub = fw->sub;
    chunk_unref(fw->chunk);
    free(fw);
    sub->writes--;
    if (status != 0 && sub->conn != NULL) {
        /* drops the subscriber, which frees it unless a read or another write still holds
         * it (then that one frees it): sub may be gone now */
        acr_srv_conn_close(sub->conn);
        return;
    }
    if (sub->conn == NULL) {
        sub_maybe_free(sub);
        return;
    }
    sub_pump(sub);
}

static size_t queued(acr_srv_sub_t *sub)
{
    return uv_stream_get_write_queue_size(acr_srv_conn_stream(sub->conn));
}

/* Writes p[0..len) (inside chunk, or static text) to sub. false when the
 * subscriber was dropped (bounded: for falling behind). */
static bool sub_write(acr_srv_sub_t *sub, acr_srv_chunk_t *chunk, const char *p, size_t len,
                      bool bounded)
{
    acr_srv_t *s = sub->srv;
    size_t q = queued(sub);
    if (bounded && q > 0 && q + len > s->lim.feed_pending_bytes_max) {
        acr_srv_metrics_feed_dropped();
        fprintf(stderr,
                "{\"event\":\"feed_dropped\",\"next_seq\":%" PRIu64
                ",\"reason\":\"subscriber fell behind\"}\n",
                sub->next_seq);
        acr_srv_conn_close(sub->conn);
        return false;
    }
    feed_write_t *fw = malloc(sizeof *fw);
    if (fw == NULL) {
        acr_srv_conn_close(sub->conn);
        return false;
    }
    fw->sub = sub;
    fw->chunk = chunk;
    if (chunk)
        chunk->refs++;
    fw->w.data = fw;
    uv_buf_t b = uv_buf_init((char *)p, (unsigned)len);
    sub->writes++;
    if (uv_write(&fw->w, acr_srv_conn_stream(sub->conn), &b, 1, on_feed_written) != 0) {
        sub->writes--;
        chunk_unref(chunk);
        free(fw);
        acr_srv_conn_close(sub->conn);
        return false;
    }
    return true;
}

/* Sends the part of chunk that sub has not seen. */
static void deliver(acr_srv_sub_t *sub, acr_srv_chunk_t *c, bool bounded)
{
    if (sub->next_seq > c->last)
        return;
    if (sub->next_seq < c->first) { /* a gap: read it instead */
        sub->live = false;
        sub_pump(sub);
        return;
    }
    size_t i = (size_t)(sub->next_seq - c->first);
    size_t off = c->offs[i], end = c->offs[c->last - c->first + 1];
    uint64_t next = c->last + 1;
    if (sub_write(sub, c, (const char *)c->data.data + off, end - off, bounded))
        sub->next_seq = next;
}

/* Catch-up: reads the next chunk when the socket has room. */
static void sub_pump(acr_srv_sub_t *sub)
{
    if (sub->conn == NULL || sub->live || sub->reading || sub->srv->stopping)
        return;
    if (queued(sub) > sub->srv->lim.feed_pending_bytes_max / 2)
        return; /* on_feed_written calls back */
    queue_read(sub->srv, sub, sub->next_seq, UINT64_MAX);
}

static void pump_live(acr_srv_t *s);

static void live_read_done(acr_srv_t *s, feed_read_t *fr)
{
    acr_srv_chunk_t *c = fr->chunk;
    int rc = fr->rc;
    s->feed.fetching = false;
    if (c != NULL && c->last > s->feed.known_head)
        s->feed.known_head = c->last; /* read to the head: a foreign commit */
    if (c != NULL && fr->to == UINT64_MAX)
        s->feed.recheck = true; /* a chunk holds at most CHUNK_EVENTS: read on to the head */
    if (c != NULL) {
        for (acr_srv_sub_t *x = s->feed.subs; x != NULL;) {
            acr_srv_sub_t *next = x->next; /* deliver may drop x */
            if (x->live && sub_token_ok(s, x))
                deliver(x, c, true);
            x = next;
        }
        s->feed.broadcast_seq = c->last;
    }
    chunk_unref(c);
    free(fr);
    if (rc == 0 && s->feed.recheck && !s->stopping) {
        s->feed.recheck = false;
        queue_read(s, NULL, s->feed.broadcast_seq + 1, UINT64_MAX);
    } else if (rc == 0) {
        pump_live(s);
    }
}

static void read_done(uv_work_t *w, int status)
{
    (void)status;
    feed_read_t *fr = w->data;
    acr_srv_t *s = fr->srv;
    acr_srv_sub_t *sub = fr->sub;
    s->pool_jobs--;
    if (sub == NULL) {
        live_read_done(s, fr);
        acr_srv_maybe_finish(s);
        return;
    }
    acr_srv_chunk_t *c = fr->chunk;
    /* sub->reading stays set while we work, so a drop cannot free sub under us */
    if (sub->conn != NULL && !s->stopping) {
        if (c != NULL) {
            if (sub_token_ok(s, sub)) /* else closed: sub stays while reading is set */
                deliver(sub, c, false);
        } else if (fr->rc != 0)
            acr_srv_conn_close(sub->conn);
        else if (sub->next_seq > s->feed.broadcast_seq)
            sub->live = true;
    }
    sub->reading = false;
    chunk_unref(c);
    free(fr);
    if (sub->conn != NULL && !s->stopping)
        sub_pump(sub);
    else
        sub_maybe_free(sub);
    acr_srv_maybe_finish(s);
}

static void pump_live(acr_srv_t *s)
{
    acr_srv_feed_t *f = &s->feed;
    if (f->fetching || f->known_head <= f->broadcast_seq || s->stopping)
        return;
    bool any_live = false;
    for (acr_srv_sub_t *x = f->subs; x != NULL && !any_live; x = x->next)
        any_live = x->live;
    if (!any_live) {
        f->broadcast_seq = f->known_head; /* catch-up readers read these themselves */
        return;
    }
    queue_read(s, NULL, f->broadcast_seq + 1, f->known_head);
}

/* ---- the stream ------------------------------------------------------------------------- */

void acr_srv_feed_notify(acr_srv_t *s, uint64_t head_seq)
{
    if (head_seq > s->feed.known_head)
        s->feed.known_head = head_seq;
    pump_live(s);
}

/* A stream lasts no longer than its token: one revoked or expired since the stream began
 * ends it before anything more is delivered (as a new request would be refused), and at the
 * next heartbeat when nothing is. A --token-file token lives as long as the server. The
 * cache answers without LMDB until a foreign commit (a revoke's, say) empties it; then the
 * first stream checked reads the tokens table and refills it. False: x's connection is
 * closed (x dropped, freed unless it is reading). */
static bool sub_token_ok(acr_srv_t *s, acr_srv_sub_t *x)
{
    int role;
    char partner[ACR_ID_LEN_MAX + 1];
    if (x->conn == NULL || !x->token_stored ||
        acr_token_cache_get(s->tokens, x->token_hash, &role, partner, NULL) == 0 ||
        acr_token_check_hash(s->ledger, s->tokens, x->token_hash, &role, partner, NULL) !=
            ACR_EUNAUTHORIZED)
        return x->conn != NULL;
    acr_srv_conn_close(x->conn);
    return false;
}

static void on_heartbeat(uv_timer_t *t)
{
    static const char beat[] = ": heartbeat\n\n";
    acr_srv_t *s = t->data;
    for (acr_srv_sub_t *x = s->feed.subs; x != NULL;) {
        acr_srv_sub_t *next = x->next;
        if (sub_token_ok(s, x))
            sub_write(x, NULL, beat, sizeof beat - 1, true);
        x = next;
    }
}

/* A commit by anyone moves the ledger's last txn id; ours are also told by the writer,
 * which makes a second read of nothing new at worst. */
static void on_watch(uv_timer_t *t)
{
    acr_srv_t *s = t->data;
    acr_srv_feed_t *f = &s->feed;
    uint64_t txnid = acr_ledger_last_txnid(s->ledger);
    if (txnid == 0 || txnid == f->seen_txnid || s->stopping)
        return;
    f->seen_txnid = txnid;
    bool any_live = false;
    for (acr_srv_sub_t *x = f->subs; x != NULL && !any_live; x = x->next)
        any_live = x->live;
    if (!any_live)
        return; /* catch-up readers read to the head themselves */
    if (f->fetching)
        f->recheck = true;
    else
        queue_read(s, NULL, f->broadcast_seq + 1, UINT64_MAX);
}

int acr_srv_feed_init(acr_srv_t *s)
{
    acr_reader_t *r;
    acr_err_t err;
    int rc = acr_reader_open(s->ledger, &r, &err);
    if (rc != 0)
        return rc;
    s->feed.broadcast_seq = s->feed.known_head = acr_reader_head_seq(r);
    acr_reader_close(r);
    uv_timer_init(s->loop, &s->feed.heartbeat);
    s->feed.heartbeat.data = s;
    uv_timer_start(&s->feed.heartbeat, on_heartbeat, s->lim.feed_heartbeat_ms,
                   s->lim.feed_heartbeat_ms);
    s->feed.seen_txnid = acr_ledger_last_txnid(s->ledger);
    uv_timer_init(s->loop, &s->feed.watch);
    s->feed.watch.data = s;
    uv_timer_start(&s->feed.watch, on_watch, WATCH_MS, WATCH_MS);
    return 0;
}

void acr_srv_feed_start(acr_srv_t *s, acr_srv_req_t *req)
{
    static const char head_fmt[] = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                                   "Cache-Control: no-cache\r\nX-Accel-Buffering: no\r\n"
                                   "Accrue-Request-Id: %s\r\n"
                                   "Connection: close\r\n\r\n: accrue event stream\n\n";
    acr_srv_chunk_t *head = calloc(1, sizeof *head); /* held by the write until it is done */
    if (head != NULL) {
        head->refs = 1;
        acr_buf_init(&head->data);
        if (acr_buf_printf(&head->data, head_fmt, req->request_id) != 0) {
            chunk_unref(head);
            head = NULL;
        }
    }
    acr_srv_conn_t *conn = req->conn;
    acr_srv_sub_t *sub =
        head == NULL || acr_srv_conn_closing(conn) || s->stopping ? NULL : calloc(1, sizeof *sub);
    if (sub == NULL) {
        chunk_unref(head);
        acr_srv_set_error(req, 503, "unavailable", "the server is shutting down");
        req->close_after = true;
        acr_srv_respond(req);
        return;
    }
    sub->srv = s;
    sub->conn = conn;
    sub->next_seq = req->feed_from;
    sub->token_stored = req->token_stored;
    memcpy(sub->token_hash, req->token_hash, sizeof sub->token_hash);
    sub->next = s->feed.subs;
    if (s->feed.subs)
        s->feed.subs->prev = sub;
    s->feed.subs = sub;
    s->feed.sub_count++;
    acr_srv_metrics_gauge_subs(1);
    acr_srv_conn_make_feed(conn, sub);
    req->status = 200;
    acr_srv_req_done(req);
    bool ok = sub_write(sub, head, (const char *)head->data.data, head->data.len, false);
    chunk_unref(head);
    if (ok)
        sub_pump(sub);
}

void acr_srv_feed_drop(acr_srv_t *s, acr_srv_sub_t *sub)
{
    if (sub->prev)
        sub->prev->next = sub->next;
    else
        s->feed.subs = sub->next;
    if (sub->next)
        sub->next->prev = sub->prev;
    s->feed.sub_count--;
    acr_srv_metrics_gauge_subs(-1);
    sub->conn = NULL;
    sub_maybe_free(sub);
}

void acr_srv_feed_stop(acr_srv_t *s)
{
    uv_timer_stop(&s->feed.heartbeat);
    uv_close((uv_handle_t *)&s->feed.heartbeat, NULL);
    uv_timer_stop(&s->feed.watch);
    uv_close((uv_handle_t *)&s->feed.watch, NULL);
    while (s->feed.subs != NULL)
        acr_srv_conn_close(s->feed.subs->conn);
}
