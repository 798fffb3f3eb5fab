/* http.c - connections of `accrue serve`: accept, parse, respond.
 *
 * HTTP/1.1 with keep-alive and pipelining on one libuv loop, parsed by
 * llhttp (Node's maintained parser; docs/integration-guide.md says why).
 * A connection handles one request at a time: llhttp is paused when a
 * message completes (on_message_complete returns HPE_PAUSED) and the bytes of
 * pipelined requests wait unparsed in the input buffer until the response
 * has been written. Reading goes on while the request is in flight (stopping
 * and restarting it would cost two epoll_ctl calls per request) until
 * PIPELINE_BYTES_MAX is buffered; an EOF then is held back until the
 * answer is out. So the memory a client can pin is bounded by the head
 * limit, the body limit, PIPELINE_BYTES_MAX and one read.
 *
 * The parsing itself (head scanner, llhttp callbacks) is parse.c.
 *
 * Cheap per request: access-log lines are buffered and written once per
 * loop iteration (a prepare handle flushes before the loop polls), and the
 * response head is formatted into a buffer kept by the request. Past the
 * connection cap a client is answered 503 and closed, not dropped silently.
 *
 * The token is checked on the head: llhttp pauses when a head is complete
 * (PH_AUTH), routes.c decides (on the loop from the token cache, or on
 * the pool from the tokens table) and calls acr_srv_head_decided. A refused
 * request (401, 403, 404, 405, 400) is answered at once and the connection
 * closed, without reading its body; `100 Continue` is sent only after the
 * head is accepted. So a client without a valid token pins no more than the
 * head limit and PIPELINE_BYTES_MAX, whatever body it announces.
 *
 * Timers, one per connection: the whole head must arrive within
 * header_ms_max of its first byte (a slow client that trickles bytes is
 * answered 408 and closed), a body may stall at most idle_ms_max and must be
 * complete within body_ms_max of its head, and an idle keep-alive
 * connection is closed after idle_ms_max. A connection is
 * closed "lingering": shutdown, then unread input is drained for a moment,
 * so the client reads a 4xx before the socket goes away.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "accrue/date.h"
#include "internal.h"

#define READ_CHUNK (64 * 1024)
#define LINGER_MS 1000
/* After a stop, a request still arriving has this long to finish its body (then 503). */
#define STOP_BODY_GRACE_MS 2000
/* Reading goes on while a request is in flight (no epoll_ctl per request) until this much of
 * the next requests is buffered. */
#define PIPELINE_BYTES_MAX (64 * 1024)

/* PH_AUTH: a head is complete and its token is being checked; no body byte is read
 * (bytes that arrive are held, up to PIPELINE_BYTES_MAX, then reading stops). */
enum phase { PH_IDLE, PH_HEAD, PH_AUTH, PH_BODY, PH_BUSY, PH_FEED, PH_LINGER };

struct acr_srv_conn {
    uv_tcp_t tcp;     /* the socket */
    uv_timer_t timer; /* head / body / idle / linger deadline */
    uv_shutdown_t shut;
    acr_srv_t *srv;
    acr_srv_parse_t p; /* the parser; p.cur is the request being parsed */
    acr_buf_t in;      /* received bytes; [in_off, in.len) not parsed yet */
    size_t in_off;
    acr_srv_req_t *active;   /* request complete and in flight */
    int phase;               /* enum phase */
    int refs;                /* 1 for the handles + 1 per request held elsewhere */
    int handles;             /* open handles (tcp, timer) */
    bool closing;            /* uv_close called */
    bool reading;            /* uv_read_start in effect */
    bool peer_done;          /* EOF or error seen while a request was in flight */
    uint64_t body_deadline;  /* uv_now() by which the body must be complete (PH_BODY) */
    struct acr_srv_sub *sub; /* feed subscriber, when the connection is a stream */
    acr_srv_conn_t *prev, *next;
};

/* ---- requests ---------------------------------------------------------------- */

static acr_srv_req_t *req_new(void *owner)
{
    acr_srv_req_t *r = acr_srv_req_alloc();
    if (r == NULL)
        return NULL;
    r->conn = owner;
    r->start_ns = uv_hrtime();
    return r;
}

static void req_free(acr_srv_req_t *r)
{
    if (r == NULL)
        return;
    if (r->wjob != NULL)
        acr_srv_wjob_free(r->wjob);
    r->wjob = NULL;
    acr_srv_req_release(r);
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static acr_buf_t log_buf; /* access-log lines not written yet (loop thread) */

void acr_srv_log_flush(void)
{
    if (log_buf.len > 0)
        fwrite(log_buf.data, 1, log_buf.len, stderr);
    log_buf.len = 0;
}

void acr_srv_log_request(acr_srv_req_t *req, size_t bytes)
{
    static int64_t ts_ms = -1;
    static char ts[ACR_TS_BUF];
    int64_t now = wall_ms();
    if (now != ts_ms) { /* one format per millisecond */
        acr_ts_format(now, ts);
        ts_ms = now;
    }
    uint64_t us = (uv_hrtime() - req->start_ns) / 1000;
    const char *m = req->has_method ? llhttp_method_name((llhttp_method_t)req->method) : "-";
    acr_buf_t *line = &log_buf;
    acr_buf_append_str(line, "{\"ts\":\"");
    acr_buf_append_str(line, ts);
    acr_buf_append_str(line, "\",\"request_id\":\"");
    acr_buf_append_str(line, req->request_id);
    acr_buf_append_str(line, "\",\"method\":\"");
    acr_buf_append_str(line, m);
    acr_buf_append_str(line, "\",\"path\":");
    const char *path;
    size_t plen;
    acr_srv_log_path(req, &path, &plen);
    acr_buf_append_json_str(line, path, plen);
    acr_buf_append_str(line, ",\"status\":");
    acr_srv_buf_u64(line, (uint64_t)(req->status > 0 ? req->status : 0));
    acr_buf_append_str(line, ",\"bytes\":");
    acr_srv_buf_u64(line, bytes);
    acr_buf_append_str(line, ",\"duration_us\":");
    acr_srv_buf_u64(line, us);
    acr_buf_append_str(line, ",\"role\":\"");
    acr_buf_append_str(line, acr_role_name(req->role));
    acr_buf_append_str(line, "\",\"token\":");
    acr_buf_append_json_str(line, req->token_name[0] ? req->token_name : "-",
                            req->token_name[0] ? strlen(req->token_name) : 1);
    acr_buf_append_str(line, ",\"route\":\"");
    acr_buf_append_str(line, req->route);
    acr_buf_append_str(line, "\"}\n");
    if (log_buf.len >= 64 * 1024)
        acr_srv_log_flush();
    acr_srv_metrics_request(req->route, req->status);
}

/* ---- connection lifetime ------------------------------------------------------------- */

void acr_srv_conn_ref(acr_srv_conn_t *c)
{
    c->refs++;
}

void acr_srv_conn_unref(acr_srv_conn_t *c)
{
    if (--c->refs > 0)
        return;
    acr_srv_t *s = c->srv;
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    acr_srv_parse_destroy(&c->p);
    acr_buf_destroy(&c->in);
    free(c);
    s->conn_count--;
    acr_srv_metrics_gauge_conns(-1);
    acr_srv_maybe_finish(s);
}

bool acr_srv_conn_closing(const acr_srv_conn_t *c)
{
    return c->closing;
}

uv_stream_t *acr_srv_conn_stream(acr_srv_conn_t *c)
{
    return (uv_stream_t *)&c->tcp;
}

static void on_handle_closed(uv_handle_t *h)
{
    acr_srv_conn_t *c = h->data;
    if (--c->handles == 0)
        acr_srv_conn_unref(c);
}

void acr_srv_conn_close(acr_srv_conn_t *c)
{
    if (c->closing)
        return;
    c->closing = true;
    acr_srv_req_t *held[2] = {c->active, c->p.cur};
    for (int i = 0; i < 2; i++) {
        if (held[i] == NULL)
            continue;
        atomic_store(&held[i]->gone, true); /* a pool job not yet begun skips its work */
        if (held[i]->in_pool)
            uv_cancel((uv_req_t *)&held[i]->work); /* still queued: never runs */
    }
    if (c->sub != NULL) {
        struct acr_srv_sub *sub = c->sub;
        c->sub = NULL;
        c->srv->on_conn_closed(c->srv, sub);
    }
    uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
    uv_close((uv_handle_t *)&c->timer, on_handle_closed);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    (void)hint;
    acr_srv_conn_t *c = h->data;
    if (c->phase == PH_FEED || c->phase == PH_LINGER)
        c->in.len = c->in_off = 0; /* input is discarded */
    if (acr_buf_reserve(&c->in, READ_CHUNK) != 0) {
        *buf = uv_buf_init(NULL, 0);
        return;
    }
    *buf = uv_buf_init((char *)c->in.data + c->in.len, (unsigned)(c->in.cap - c->in.len));
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf);

static void set_reading(acr_srv_conn_t *c, bool on)
{
    if (c->closing || c->reading == on)
        return;
    if (on) {
        c->reading = uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) == 0;
    } else {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = false;
    }
}

static void on_timer(uv_timer_t *t);

static void arm(acr_srv_conn_t *c, uint64_t ms)
{
    uv_timer_start(&c->timer, on_timer, ms, 0);
}

static void on_shutdown(uv_shutdown_t *sr, int status)
{
    (void)status;
    acr_srv_conn_t *c = sr->data;
    if (c->closing)
        return;
    set_reading(c, true);
    arm(c, LINGER_MS);
}

/* Half-closes and drains briefly, so the peer reads our last response. */
static void linger_close(acr_srv_conn_t *c)
{
    if (c->closing)
        return;
    c->phase = PH_LINGER;
    set_reading(c, false);
    uv_timer_stop(&c->timer);
    c->shut.data = c;
    if (uv_shutdown(&c->shut, (uv_stream_t *)&c->tcp, on_shutdown) != 0)
        acr_srv_conn_close(c);
}

/* ---- responses ------------------------------------------------------------------------ */

static void conn_parse(acr_srv_conn_t *c);

static void finish_request(acr_srv_conn_t *c, acr_srv_req_t *req, bool sent)
{
    acr_srv_log_request(req, sent ? req->resp.len : 0);
    bool keep = req->keep_alive && !req->close_after && !c->srv->stopping;
    if (c->active == req)
        c->active = NULL;
    req_free(req);
    if (!c->closing && c->phase != PH_FEED) {
        if (!keep) {
            linger_close(c);
        } else {
            c->phase = PH_IDLE;
            arm(c, c->srv->lim.idle_ms_max);
            conn_parse(c);
        }
    }
    acr_srv_conn_unref(c);
}

void acr_srv_req_done(acr_srv_req_t *req)
{
    finish_request(req->conn, req, true);
}

static void on_written(uv_write_t *w, int status)
{
    acr_srv_req_t *req = w->data;
    acr_srv_conn_t *c = req->conn;
    if (status != 0 && !c->closing)
        acr_srv_conn_close(c);
    finish_request(c, req, status == 0);
}

/* Responses that uv_try_write sent whole are finished on the next turn of the loop, by an idle
 * handle that is active only while some wait: finishing at once would parse and answer the
 * connection's next pipelined request from inside acr_srv_respond (recursion as deep as the
 * pipeline, and callers that still hold the request). An active idle handle also keeps the
 * loop alive and polling without a timeout until they are finished. */
static uv_idle_t sent_idle;
static acr_srv_req_t *sent_head, *sent_tail; /* written whole, not yet finished (loop thread) */

static void on_sent_idle(uv_idle_t *h)
{
    while (sent_head != NULL) { /* finishing may answer and add more: a loop, not recursion */
        acr_srv_req_t *req = sent_head;
        sent_head = req->sent_next;
        if (sent_head == NULL)
            sent_tail = NULL;
        req->sent_next = NULL;
        finish_request(req->conn, req, true);
    }
    uv_idle_stop(h);
}

static void sent_push(acr_srv_req_t *req)
{
    req->sent_next = NULL;
    if (sent_tail != NULL)
        sent_tail->sent_next = req;
    else
        sent_head = req;
    sent_tail = req;
    uv_idle_start(&sent_idle, on_sent_idle);
}

/* Writes bufs[0..n) at once where the socket takes them (the usual case: no write request, no
 * epoll_ctl to watch for writability and another to stop watching, which libuv's uv_write
 * costs per response); what it does not take goes through uv_write. */
static int write_response(acr_srv_req_t *req, uv_buf_t *bufs, unsigned n)
{
    acr_srv_conn_t *c = req->conn;
    size_t total = 0;
    for (unsigned i = 0; i < n; i++)
        total += bufs[i].len;
    int w = uv_try_write((uv_stream_t *)&c->tcp, bufs, n);
    if (w == UV_EAGAIN || w == UV_ENOSYS)
        w = 0;
    if (w < 0)
        return w;
    if ((size_t)w == total) {
        sent_push(req);
        return 0;
    }
    size_t skip = (size_t)w; /* a partial write: the rest through uv_write */
    unsigned first = 0;
    while (skip >= bufs[first].len) {
        skip -= bufs[first].len;
        first++;
    }
    bufs[first].base += skip;
    bufs[first].len -= skip;
    return uv_write(&req->wreq, (uv_stream_t *)&c->tcp, bufs + first, n - first, on_written);
}

void acr_srv_respond(acr_srv_req_t *req)
{
    acr_srv_conn_t *c = req->conn;
    if (c->closing) {
        finish_request(c, req, false);
        return;
    }
    if (req->status == 0)
        acr_srv_set_error(req, 500, "internal", "no response was produced");
    bool close = !req->keep_alive || req->close_after || c->srv->stopping;
    acr_buf_t *h = &req->head;
    acr_buf_reset(h);
    acr_buf_reserve(h, 160);
    acr_buf_append_str(h, "HTTP/1.1 ");
    acr_srv_buf_u64(h, (uint64_t)(req->status >= 100 && req->status <= 999 ? req->status : 500));
    acr_buf_append_str(h, " ");
    acr_buf_append_str(h, acr_srv_reason_of(req->status));
    acr_buf_append_str(h, "\r\nContent-Type: ");
    acr_buf_append_str(h, req->ctype ? req->ctype : "application/json");
    acr_buf_append_str(h, "\r\nContent-Length: ");
    acr_srv_buf_u64(h, req->resp.len);
    acr_buf_append_str(h, "\r\nAccrue-Request-Id: ");
    acr_buf_append_str(h, req->request_id);
    acr_buf_append_str(h, "\r\n");
    acr_buf_append_str(h, req->extra_headers);
    if (req->static_headers != NULL)
        acr_buf_append_str(h, req->static_headers);
    acr_buf_append_str(h, close ? "Connection: close\r\n\r\n" : "\r\n");
    uv_buf_t bufs[2] = {
        uv_buf_init((char *)req->head.data, (unsigned)req->head.len),
        uv_buf_init((char *)req->resp.data, (unsigned)req->resp.len),
    };
    req->wreq.data = req;
    req->close_after = close;
    bool body = req->resp.len > 0 && req->method != HTTP_HEAD; /* a HEAD: the head alone */
    if (write_response(req, bufs, body ? 2 : 1) != 0) {
        acr_srv_conn_close(c);
        finish_request(c, req, false);
    }
}

/* Answers an HTTP-level failure (bad framing, limits, timeouts) and closes. */
static void fail(acr_srv_conn_t *c, int status, const char *why)
{
    if (c->closing || c->phase == PH_LINGER)
        return;
    acr_srv_req_t *req = c->p.cur ? c->p.cur : req_new(c);
    c->p.cur = NULL;
    if (req == NULL) {
        acr_srv_conn_close(c);
        return;
    }
    c->active = req;
    c->phase = PH_BUSY;
    set_reading(c, false);
    uv_timer_stop(&c->timer);
    req->keep_alive = false;
    req->route = "http";
    acr_srv_set_error(req, status, acr_srv_code_of_status(status), "%s", why);
    acr_srv_conn_ref(c);
    acr_srv_respond(req);
}

/* ---- parsing ------------------------------------------------------------------------- */

/* Arms the body timer: the body may stall at most idle_ms_max and must be complete by
 * body_deadline, whichever comes first. */
static void arm_body(acr_srv_conn_t *c)
{
    uint64_t now = uv_now(c->srv->loop);
    uint64_t left = c->body_deadline > now ? c->body_deadline - now : 0;
    arm(c, left < c->srv->lim.idle_ms_max ? left : c->srv->lim.idle_ms_max);
}

void acr_srv_head_decided(acr_srv_req_t *req)
{
    acr_srv_conn_t *c = req->conn;
    if (c->closing || c->phase != PH_AUTH || c->p.cur != req)
        return; /* the client is gone: the parser frees the request with the connection */
    if (req->status != 0) { /* refused on its head: answered without reading the body */
        c->p.cur = NULL;
        c->active = req;
        c->phase = PH_BUSY;
        set_reading(c, false);
        uv_timer_stop(&c->timer);
        req->keep_alive = false;
        acr_srv_conn_ref(c);
        acr_srv_respond(req);
        return;
    }
    acr_srv_parse_resume(&c->p);
    c->phase = PH_BODY;
    c->body_deadline = uv_now(c->srv->loop) + c->srv->lim.body_ms_max;
    arm_body(c);
    if (c->p.expect_continue) { /* only now that the token and the route are known good */
        static char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        uv_buf_t b = uv_buf_init(cont, sizeof cont - 1);
        uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
    }
    conn_parse(c);
}

static void start_request(acr_srv_conn_t *c)
{
    acr_srv_req_t *r = c->active;
    c->phase = PH_BUSY;
    uv_timer_stop(&c->timer);
    if (c->in.len - c->in_off >= PIPELINE_BYTES_MAX)
        set_reading(c, false);
    acr_srv_conn_ref(c);
    c->srv->on_request(c->srv, r);
}

static void conn_parse(acr_srv_conn_t *c)
{
    bool head = false;
    while (c->active == NULL && !c->closing && c->phase != PH_FEED && c->phase != PH_LINGER &&
           c->phase != PH_AUTH && (c->in_off < c->in.len || c->p.resumed)) {
        const char *data = (const char *)c->in.data + c->in_off;
        size_t len = c->in.len - c->in_off;
        if (c->phase == PH_IDLE) {
            c->phase = PH_HEAD;
            arm(c, c->srv->lim.header_ms_max);
        }
        size_t used = 0;
        int status = 0;
        char msg[160];
        int r = acr_srv_parse_feed(&c->p, data, len, &used, &status, msg, sizeof msg);
        if (r == ACR_SRV_PARSE_MORE) {
            c->in_off = c->in.len;
            break;
        }
        if (r == ACR_SRV_PARSE_HEAD) {
            c->in_off += used;
            c->phase = PH_AUTH;
            uv_timer_stop(&c->timer);
            head = true;
            break;
        }
        if (r == ACR_SRV_PARSE_REQUEST) {
            c->in_off += used;
            c->active = c->p.done;
            c->p.done = NULL;
            start_request(c);
            break;
        }
        fail(c, status, msg);
        return;
    }
    if (c->closing)
        return;
    if (c->in_off == c->in.len) {
        c->in.len = c->in_off = 0;
    } else if (c->in_off > 0) {
        memmove(c->in.data, c->in.data + c->in_off, c->in.len - c->in_off);
        c->in.len -= c->in_off;
        c->in_off = 0;
    }
    if (head) { /* held bytes wait until the head is authorized */
        if (!c->peer_done)
            set_reading(c, c->in.len < PIPELINE_BYTES_MAX);
        c->srv->on_head(c->srv, c->p.cur);
        return;
    }
    if (c->active == NULL && c->phase != PH_BUSY) {
        if (c->peer_done)
            acr_srv_conn_close(
                c); /* answered what it sent; a partial request has nobody to answer */
        else
            set_reading(c, true);
    }
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    (void)buf;
    acr_srv_conn_t *c = st->data;
    bool busy = (c->phase == PH_BUSY && c->active != NULL) || c->phase == PH_AUTH;
    if (nread < 0 && busy) { /* answer the request in flight first */
        c->peer_done = true;
        set_reading(c, false);
        /* except long work (the slow lane: verify, runs, audits, KPIs): a client that hangs up, or
         * half-closes, while one runs is taken as gone and the work stops (nginx's 499) */
        if (c->active != NULL && (c->active->lane.run != NULL || nread != UV_EOF))
            atomic_store(&c->active->gone, true);
        return;
    }
    if (nread < 0) {
        acr_srv_conn_close(c); /* EOF or error: a partial request has nobody to answer */
        return;
    }
    if (nread == 0)
        return;
    if (c->phase == PH_FEED || c->phase == PH_LINGER) {
        c->in.len = c->in_off = 0;
        return;
    }
    c->in.len += (size_t)nread;
    if (c->phase == PH_BODY)
        arm_body(c); /* bytes came: the stall timer restarts, the total stands */
    if (busy) {      /* pipelined bytes wait, parsed once the response is out */
        if (c->in.len - c->in_off >= PIPELINE_BYTES_MAX)
            set_reading(c, false);
        return;
    }
    conn_parse(c);
}

static void on_timer(uv_timer_t *t)
{
    acr_srv_conn_t *c = t->data;
    switch (c->phase) {
    case PH_HEAD:
        fail(c, 408, "the request head did not arrive in time");
        break;
    case PH_BODY:
        if (c->srv->stopping && uv_now(c->srv->loop) >= c->body_deadline)
            fail(c, 503, "the server is stopping and the request body did not arrive in time");
        else
            fail(c, 408, uv_now(c->srv->loop) >= c->body_deadline
                             ? "the request body did not arrive in time"
                             : "the request body stalled");
        break;
    case PH_IDLE:
    case PH_LINGER:
        acr_srv_conn_close(c);
        break;
    default:
        break;
    }
}

void acr_srv_conn_make_feed(acr_srv_conn_t *c, struct acr_srv_sub *sub)
{
    c->phase = PH_FEED;
    c->sub = sub;
    uv_timer_stop(&c->timer);
    c->in.len = c->in_off = 0;
    set_reading(c, true); /* to notice the subscriber hanging up */
}

/* ---- accepting ------------------------------------------------------------------------- */

static void free_rejected(uv_handle_t *h)
{
    free(h->data);
}

/* A connection past the cap: answered 503 at once, half-closed, its input
 * drained for a moment (so the client reads the answer, not a reset), then
 * closed. At most REJECTING_MAX of them linger; beyond that they are closed. */
#define REJECTING_MAX 256

typedef struct rejected {
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_shutdown_t shut;
    acr_srv_t *srv;
    int handles;
    bool closing;
    char drain[1024];
    char answer[320]; /* busy_503 with its request id */
} rejected_t;

/* Every answer carries Accrue-Request-Id (http.md), this one too. A literal, so that the
 * compiler checks the format against its argument. The code is one of events.md's list: the
 * breach of a limit of serve (--connections-max) is too_large, as its other limits are.
 * Content-Length is BUSY_BODY's size, taken by sizeof: no hand-counted number. */
#define BUSY_BODY                                                                                  \
    "{\"error\":{\"code\":\"too_large\",\"message\":\"too many open connections (the server's "   \
    "limit)\",\"details\":[]}}\n"
#define BUSY_503                                                                                   \
    "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"                    \
    "Content-Length: %zu\r\nRetry-After: 1\r\nAccrue-Request-Id: %s\r\nConnection: close\r\n"  \
    "\r\n" BUSY_BODY

static void rej_closed(uv_handle_t *h)
{
    rejected_t *r = h->data;
    if (--r->handles == 0) {
        r->srv->rejecting--;
        free(r);
    }
}

static void rej_close(rejected_t *r)
{
    if (r->closing)
        return;
    r->closing = true;
    uv_close((uv_handle_t *)&r->tcp, rej_closed);
    uv_close((uv_handle_t *)&r->timer, rej_closed);
}

static void rej_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    (void)hint;
    rejected_t *r = h->data;
    *buf = uv_buf_init(r->drain, sizeof r->drain);
}

static void rej_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    (void)buf;
    if (nread < 0)
        rej_close(st->data);
}

static void rej_timer(uv_timer_t *t)
{
    rej_close(t->data);
}

static void rej_shutdown(uv_shutdown_t *sr, int status)
{
    (void)sr;
    (void)status;
}

static void reject_busy(acr_srv_t *s, rejected_t *r)
{
    s->rejecting++;
    r->srv = s;
    r->tcp.data = r;
    r->timer.data = r;
    r->shut.data = r;
    r->handles = 2;
    uv_timer_init(s->loop, &r->timer);
    char rid[32];
    acr_srv_request_id(rid);
    int len = snprintf(r->answer, sizeof r->answer, BUSY_503, sizeof BUSY_BODY - 1, rid);
    if (len <= 0 || (size_t)len >= sizeof r->answer) {
        rej_close(r);
        return;
    }
    uv_buf_t b = uv_buf_init(r->answer, (unsigned)len);
    int n = uv_try_write((uv_stream_t *)&r->tcp, &b, 1);
    if (n != len ||
        uv_shutdown(&r->shut, (uv_stream_t *)&r->tcp, rej_shutdown) != 0 ||
        uv_read_start((uv_stream_t *)&r->tcp, rej_alloc, rej_read) != 0) {
        rej_close(r);
        return;
    }
    uv_timer_start(&r->timer, rej_timer, LINGER_MS, 0);
}

static void on_connection(uv_stream_t *server, int status)
{
    acr_srv_t *s = server->data;
    if (status != 0)
        return;
    bool full = s->conn_count >= s->lim.connections_max;
    acr_srv_conn_t *c = calloc(1, full ? sizeof(rejected_t) : sizeof *c);
    if (c == NULL)
        return;
    uv_tcp_t *tcp = full ? &((rejected_t *)c)->tcp : &c->tcp;
    uv_tcp_init(s->loop, tcp);
    tcp->data = c;
    if (uv_accept(server, (uv_stream_t *)tcp) != 0 || s->stopping ||
        (full && s->rejecting >= REJECTING_MAX)) {
        uv_close((uv_handle_t *)tcp, free_rejected);
        return;
    }
    if (full) {
        acr_srv_metrics_request("http", 503);
        reject_busy(s, (rejected_t *)c);
        return;
    }
    uv_timer_init(s->loop, &c->timer);
    c->srv = s;
    c->timer.data = c;
    c->handles = 2;
    c->refs = 1;
    acr_buf_init(&c->in);
    acr_srv_parse_init(&c->p, s->lim.header_bytes_max, s->lim.body_bytes_max, c);
    c->p.new_req = req_new;
    c->p.free_req = req_free;
    c->p.pause_on_head = true; /* authenticate and authorize before reading a body */
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    s->conn_count++;
    acr_srv_metrics_gauge_conns(1);
    uv_tcp_nodelay(&c->tcp, 1);
    c->phase = PH_HEAD;
    arm(c, s->lim.header_ms_max);
    set_reading(c, true);
}

static uv_prepare_t log_flusher;

static void on_prepare(uv_prepare_t *h)
{
    (void)h;
    acr_srv_log_flush();
}

int acr_srv_http_listen(acr_srv_t *s, const char *host, int port)
{
    uv_idle_init(s->loop, &sent_idle);
    uv_prepare_init(s->loop, &log_flusher);
    uv_prepare_start(&log_flusher, on_prepare);
    uv_unref((uv_handle_t *)&log_flusher); /* never keeps the loop alive */
    struct sockaddr_storage addr;
    memset(&addr, 0, sizeof addr);
    int rc = uv_ip4_addr(host, port, (struct sockaddr_in *)&addr);
    if (rc != 0)
        rc = uv_ip6_addr(host, port, (struct sockaddr_in6 *)&addr);
    if (rc != 0)
        return rc;
    uv_tcp_init(s->loop, &s->listener);
    s->listener.data = s;
    rc = uv_tcp_bind(&s->listener, (const struct sockaddr *)&addr, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&s->listener, 511, on_connection);
    return rc;
}

void acr_srv_http_stop(acr_srv_t *s)
{
    uv_close((uv_handle_t *)&s->listener, NULL);
    for (acr_srv_conn_t *c = s->conns; c != NULL; c = c->next) {
        if (c->closing)
            continue;
        if (c->phase == PH_IDLE || c->phase == PH_HEAD || c->phase == PH_LINGER ||
            c->phase == PH_FEED)
            acr_srv_conn_close(c);
        /* PH_BUSY: in flight, answered (with Connection: close) before the connection goes.
         * PH_BODY: the request is still arriving; it has STOP_BODY_GRACE_MS more to arrive
         * (then 503), so a client trickling its body cannot hold the stop (http.md). */
        if (c->phase == PH_BODY) {
            uint64_t by = uv_now(s->loop) + STOP_BODY_GRACE_MS;
            if (by < c->body_deadline)
                c->body_deadline = by;
            arm_body(c);
        }
    }
}

/* The longest decoded value of each query parameter the routes read; each handler's buffer
 * holds at least one byte more (ids and stage names as events.md bounds them, a stream as
 * "deal:" + a string field, a date or period id, a u64). */
static size_t query_value_max(const char *key, size_t klen)
{
    static const struct {
        const char *key;
        size_t max;
    } t[] = {
        {"partner", ACR_ID_LEN_MAX},     {"stage", ACR_STAGE_NAME_MAX},
        {"after", ACR_STRING_LEN_MAX},   {"stream", ACR_STRING_LEN_MAX + 15},
        {"type", 63},                    {"today", 15},
        {"period", 15},                  {"by", 7},
        {"from", 23},                    {"limit", 23},
        {"as_of", 23},                   {"offset", 23},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        if (strlen(t[i].key) == klen && memcmp(t[i].key, key, klen) == 0)
            return t[i].max;
    return 1023;
}

bool acr_srv_scoped_partner(acr_srv_req_t *req, char *out, size_t cap, const char **pid)
{
    bool has = acr_srv_query_param(req->query, "partner", out, cap);
    *pid = has && out[0] ? out : NULL;
    if (req->role != ACR_ROLE_PARTNER)
        return true;
    if (*pid != NULL && strcmp(*pid, req->partner) != 0) {
        acr_srv_set_error(req, 404, "not_found", "no such record");
        return false;
    }
    *pid = req->partner;
    return true;
}

bool acr_srv_query_refused(acr_srv_req_t *req, const char *allowed)
{
    for (const char *p = req->query; p != NULL && *p != '\0';) {
        const char *amp = strchr(p, '&');
        size_t len = amp ? (size_t)(amp - p) : strlen(p);
        const char *eq = memchr(p, '=', len);
        size_t klen = eq ? (size_t)(eq - p) : len;
        bool known = false;
        for (const char *a = allowed; *a != '\0' && !known;) {
            size_t alen = strcspn(a, " ");
            known = alen == klen && memcmp(a, p, klen) == 0;
            a += alen + (a[alen] == ' ');
        }
        if (!known && klen > 0) {
            acr_srv_set_error(req, 400, "bad_request", "unknown query parameter '%.*s'%s%s",
                              (int)(klen < 64 ? klen : 64), p,
                              *allowed ? "; this endpoint takes: " : "", allowed);
            return true;
        }
        /* an empty value (`partner=`) or a parameter given twice would be read as absent or
         * as the first one: an answer for everything, or not for what was asked */
        if (klen > 0 && (eq == NULL || len == klen + 1)) {
            acr_srv_set_error(req, 400, "bad_request", "query parameter '%.*s' has no value",
                              (int)(klen < 64 ? klen : 64), p);
            return true;
        }
        for (const char *o = req->query; klen > 0 && o < p;) {
            const char *oamp = strchr(o, '&');
            size_t olen = oamp ? (size_t)(oamp - o) : strlen(o);
            if (olen > klen && o[klen] == '=' && memcmp(o, p, klen) == 0) {
                acr_srv_set_error(req, 400, "bad_request", "query parameter '%.*s' is given twice",
                                  (int)(klen < 64 ? klen : 64), p);
                return true;
            }
            o = oamp ? oamp + 1 : p;
        }
        /* a value must decode (valid %XX escapes, no NUL) and fit its handler's buffer:
         * a handler reads one that does not as absent, and would answer for everything */
        char val[1024];
        size_t vlen = eq ? len - klen - 1 : 0, max = query_value_max(p, klen);
        if (eq != NULL && (vlen >= sizeof val ||
                           !acr_srv_query_decode(eq + 1, vlen, val, sizeof val))) {
            acr_srv_set_error(req, 400, "bad_request", "malformed value of query parameter '%.*s'",
                              (int)(klen < 64 ? klen : 64), p);
            return true;
        }
        if (eq != NULL && strlen(val) > max) {
            acr_srv_set_error(req, 400, "bad_request",
                              "query parameter '%.*s' is longer than %zu bytes",
                              (int)(klen < 64 ? klen : 64), p, max);
            return true;
        }
        p = amp ? amp + 1 : NULL;
    }
    return false;
}
