/* serve_http.c - connections of `accrue serve`: accept, parse, respond.
 *
 * HTTP/1.1 with keep-alive and pipelining on one libuv loop, parsed by
 * llhttp (Node's maintained parser; docs/integration-guide.md says why).
 * A connection handles one request at a time: llhttp is paused when a
 * message completes (on_message_complete returns HPE_PAUSED), reading stops
 * while the request is in flight, and the bytes of pipelined requests wait
 * unparsed in the input buffer until the response has been written. So the
 * memory a client can pin is bounded by the head limit, the body limit and
 * one read.
 *
 * llhttp 8.1 in its strict default already refuses Content-Length together
 * with Transfer-Encoding, duplicate Content-Length and bad chunk framing,
 * but it accepts obs-fold continuation lines, a bare LF ending the request
 * line or the head, and whitespace before a header's colon. A small scanner
 * runs over each request head before llhttp sees it and refuses those (400),
 * and it counts the head's bytes for the 16 KiB limit (431).
 *
 * Timers, one per connection: the whole head must arrive within
 * header_ms_max of its first byte (a slow client that trickles bytes is
 * answered 408 and closed), a body may stall at most idle_ms_max, and an
 * idle keep-alive connection is closed after idle_ms_max. A connection is
 * closed "lingering": shutdown, then unread input is drained for a moment,
 * so the client reads a 4xx before the socket goes away.
 */
#include <ctype.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "accrue/date.h"
#include "serve.h"

#define READ_CHUNK (64 * 1024)
#define LINGER_MS 1000

enum phase { PH_IDLE, PH_HEAD, PH_BODY, PH_BUSY, PH_FEED, PH_LINGER };

/* Head scanner state: what llhttp lets through but RFC 9112 refuses. */
typedef struct scan {
    size_t bytes;    /* bytes of this head so far */
    uint32_t line;   /* 0 = request line, then header lines */
    size_t line_len; /* bytes on the current line, CR excluded */
    bool in_name;    /* before the colon of a header line */
    bool done;       /* the empty line ending the head was seen */
    char prev;       /* the previous byte */
} scan_t;

struct srv_conn {
    uv_tcp_t tcp;     /* the socket */
    uv_timer_t timer; /* head / body / idle / linger deadline */
    uv_shutdown_t shut;
    srv_t *srv;
    llhttp_t parser;
    acr_buf_t in; /* received bytes; [in_off, in.len) not parsed yet */
    size_t in_off;
    scan_t scan;
    srv_req_t *cur;        /* request being parsed */
    srv_req_t *active;     /* request complete and in flight */
    int phase;             /* enum phase */
    int refs;              /* 1 for the handles + 1 per request held elsewhere */
    int handles;           /* open handles (tcp, timer) */
    int fail_status;       /* status chosen by a parser callback that failed */
    bool closing;          /* uv_close called */
    bool reading;          /* uv_read_start in effect */
    bool expect_continue;  /* Expect: 100-continue on the current request */
    acr_buf_t hname, hval; /* the header being parsed */
    struct srv_sub *sub;   /* feed subscriber, when the connection is a stream */
    srv_conn_t *prev, *next;
};

static llhttp_settings_t settings;

/* ---- small helpers ---------------------------------------------------------------- */

static const char *reason_of(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 409:
        return "Conflict";
    case 413:
        return "Content Too Large";
    case 415:
        return "Unsupported Media Type";
    case 422:
        return "Unprocessable Content";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 503:
        return "Service Unavailable";
    case 507:
        return "Insufficient Storage";
    default:
        return "Unknown";
    }
}

static const char *code_of_status(int status)
{
    switch (status) {
    case 408:
        return "timeout";
    case 413:
        return "too_large";
    case 431:
        return "headers_too_large";
    case 503:
        return "unavailable";
    default:
        return "bad_request";
    }
}

void srv_set_error(srv_req_t *req, int status, const char *code, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    req->status = status;
    req->ctype = "application/json";
    acr_buf_reset(&req->resp);
    acr_buf_append_str(&req->resp, "{\"error\":{\"code\":");
    acr_buf_append_json_str(&req->resp, code, strlen(code));
    acr_buf_append_str(&req->resp, ",\"message\":");
    acr_buf_append_json_str(&req->resp, msg, strlen(msg));
    acr_buf_append_str(&req->resp, ",\"details\":[]}}\n");
}

static srv_req_t *req_new(srv_conn_t *c)
{
    srv_req_t *r = calloc(1, sizeof *r);
    if (r == NULL)
        return NULL;
    r->conn = c;
    r->start_ns = uv_hrtime();
    r->route = "-";
    acr_buf_init(&r->url);
    acr_buf_init(&r->body);
    acr_buf_init(&r->auth);
    acr_buf_init(&r->resp);
    acr_buf_init(&r->head);
    return r;
}

static void req_free(srv_req_t *r)
{
    if (r == NULL)
        return;
    acr_buf_destroy(&r->url);
    acr_buf_destroy(&r->body);
    acr_buf_destroy(&r->auth);
    acr_buf_destroy(&r->resp);
    acr_buf_destroy(&r->head);
    free(r->path);
    free(r->query);
    if (r->wjob != NULL)
        srv_wjob_free(r->wjob);
    free(r);
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void srv_log_request(srv_req_t *req, size_t bytes)
{
    char ts[ACR_TS_BUF];
    acr_ts_format(wall_ms(), ts);
    uint64_t us = (uv_hrtime() - req->start_ns) / 1000;
    const char *m = req->url.len ? llhttp_method_name((llhttp_method_t)req->method) : "-";
    acr_buf_t line;
    acr_buf_init(&line);
    acr_buf_printf(&line, "{\"ts\":\"%s\",\"method\":\"%s\",\"path\":", ts, m);
    const char *path = req->path ? req->path : (const char *)req->url.data;
    size_t plen = req->path ? strlen(req->path) : req->url.len;
    if (path == NULL || plen == 0)
        path = "-", plen = 1;
    acr_buf_append_json_str(&line, path, plen > 256 ? 256 : plen);
    acr_buf_printf(&line,
                   ",\"status\":%d,\"bytes\":%zu,\"duration_us\":%" PRIu64
                   ",\"role\":\"%s\",\"route\":\"%s\"}\n",
                   req->status, bytes, us, acr_role_name(req->role), req->route);
    fwrite(line.data, 1, line.len, stderr);
    acr_buf_destroy(&line);
    srv_metrics_request(req->route, req->status);
}

/* ---- connection lifetime ------------------------------------------------------------- */

void srv_conn_ref(srv_conn_t *c)
{
    c->refs++;
}

void srv_conn_unref(srv_conn_t *c)
{
    if (--c->refs > 0)
        return;
    srv_t *s = c->srv;
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    req_free(c->cur);
    acr_buf_destroy(&c->in);
    acr_buf_destroy(&c->hname);
    acr_buf_destroy(&c->hval);
    free(c);
    s->conn_count--;
    srv_metrics_gauge_conns(-1);
    srv_maybe_finish(s);
}

bool srv_conn_closing(const srv_conn_t *c)
{
    return c->closing;
}

uv_stream_t *srv_conn_stream(srv_conn_t *c)
{
    return (uv_stream_t *)&c->tcp;
}

static void on_handle_closed(uv_handle_t *h)
{
    srv_conn_t *c = h->data;
    if (--c->handles == 0)
        srv_conn_unref(c);
}

void srv_conn_close(srv_conn_t *c)
{
    if (c->closing)
        return;
    c->closing = true;
    if (c->sub != NULL) {
        struct srv_sub *sub = c->sub;
        c->sub = NULL;
        srv_feed_drop(c->srv, sub);
    }
    uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
    uv_close((uv_handle_t *)&c->timer, on_handle_closed);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    (void)hint;
    srv_conn_t *c = h->data;
    if (c->phase == PH_FEED || c->phase == PH_LINGER)
        c->in.len = c->in_off = 0; /* input is discarded */
    if (acr_buf_reserve(&c->in, READ_CHUNK) != 0) {
        *buf = uv_buf_init(NULL, 0);
        return;
    }
    *buf = uv_buf_init((char *)c->in.data + c->in.len, (unsigned)(c->in.cap - c->in.len));
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf);

static void set_reading(srv_conn_t *c, bool on)
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

static void arm(srv_conn_t *c, uint64_t ms)
{
    uv_timer_start(&c->timer, on_timer, ms, 0);
}

static void on_shutdown(uv_shutdown_t *sr, int status)
{
    (void)status;
    srv_conn_t *c = sr->data;
    if (c->closing)
        return;
    set_reading(c, true);
    arm(c, LINGER_MS);
}

/* Half-closes and drains briefly, so the peer reads our last response. */
static void linger_close(srv_conn_t *c)
{
    if (c->closing)
        return;
    c->phase = PH_LINGER;
    set_reading(c, false);
    uv_timer_stop(&c->timer);
    c->shut.data = c;
    if (uv_shutdown(&c->shut, (uv_stream_t *)&c->tcp, on_shutdown) != 0)
        srv_conn_close(c);
}

/* ---- responses ------------------------------------------------------------------------ */

static void conn_parse(srv_conn_t *c);

static void finish_request(srv_conn_t *c, srv_req_t *req, bool sent)
{
    srv_log_request(req, sent ? req->resp.len : 0);
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
    srv_conn_unref(c);
}

void srv_req_done(srv_req_t *req)
{
    finish_request(req->conn, req, true);
}

static void on_written(uv_write_t *w, int status)
{
    srv_req_t *req = w->data;
    srv_conn_t *c = req->conn;
    if (status != 0 && !c->closing)
        srv_conn_close(c);
    finish_request(c, req, status == 0);
}

void srv_respond(srv_req_t *req)
{
    srv_conn_t *c = req->conn;
    if (c->closing) {
        finish_request(c, req, false);
        return;
    }
    if (req->status == 0)
        srv_set_error(req, 500, "internal", "no response was produced");
    bool close = !req->keep_alive || req->close_after || c->srv->stopping;
    acr_buf_reset(&req->head);
    acr_buf_printf(
        &req->head, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s%s\r\n",
        req->status, reason_of(req->status), req->ctype ? req->ctype : "application/json",
        req->resp.len, req->extra_headers, close ? "Connection: close\r\n" : "");
    uv_buf_t bufs[2] = {
        uv_buf_init((char *)req->head.data, (unsigned)req->head.len),
        uv_buf_init((char *)req->resp.data, (unsigned)req->resp.len),
    };
    req->wreq.data = req;
    req->close_after = close;
    if (uv_write(&req->wreq, (uv_stream_t *)&c->tcp, bufs, req->resp.len ? 2 : 1, on_written) !=
        0) {
        srv_conn_close(c);
        finish_request(c, req, false);
    }
}

/* Answers an HTTP-level failure (bad framing, limits, timeouts) and closes. */
static void fail(srv_conn_t *c, int status, const char *why)
{
    if (c->closing || c->phase == PH_LINGER)
        return;
    srv_req_t *req = c->cur ? c->cur : req_new(c);
    c->cur = NULL;
    if (req == NULL) {
        srv_conn_close(c);
        return;
    }
    c->active = req;
    c->phase = PH_BUSY;
    set_reading(c, false);
    uv_timer_stop(&c->timer);
    req->keep_alive = false;
    req->route = "http";
    srv_set_error(req, status, code_of_status(status), "%s", why);
    srv_conn_ref(c);
    srv_respond(req);
}

/* ---- the head scanner ------------------------------------------------------------------ */

static void scan_reset(scan_t *s)
{
    memset(s, 0, sizeof *s);
    s->in_name = true;
}

/* 0 while fine, else the status to answer (400 or 431) with *why set. */
static int scan_head(scan_t *s, const char *p, size_t n, size_t max, const char **why)
{
    for (size_t i = 0; i < n && !s->done; i++) {
        char c = p[i];
        if (++s->bytes > max) {
            *why = "the request head exceeds the header limit";
            return 431;
        }
        if (c == '\n') {
            if (s->prev != '\r') {
                *why = "a line of the request head ends in a bare LF";
                return 400;
            }
            if (s->line_len == 0 && s->line > 0)
                s->done = true;
            else if (s->line_len > 0)
                s->line++;
            s->line_len = 0;
            s->in_name = true;
        } else if (s->prev == '\r') {
            *why = "a CR in the request head is not followed by LF";
            return 400;
        } else if (c != '\r') {
            if (s->line > 0 && s->line_len == 0 && (c == ' ' || c == '\t')) {
                *why = "obsolete line folding (obs-fold) is not accepted";
                return 400;
            }
            if (s->line > 0 && s->in_name) {
                if (c == ':') {
                    s->in_name = false;
                } else if (c == ' ' || c == '\t') {
                    *why = "whitespace between a header name and its colon";
                    return 400;
                }
            }
            s->line_len++;
        }
        s->prev = c;
    }
    return 0;
}

/* ---- llhttp callbacks ------------------------------------------------------------------ */

static int on_message_begin(llhttp_t *p)
{
    srv_conn_t *c = p->data;
    if (c->cur == NULL && (c->cur = req_new(c)) == NULL)
        return -1;
    acr_buf_reset(&c->hname);
    acr_buf_reset(&c->hval);
    c->expect_continue = false;
    return 0;
}

static int on_url(llhttp_t *p, const char *at, size_t n)
{
    srv_conn_t *c = p->data;
    return acr_buf_append(&c->cur->url, at, n) == 0 ? 0 : -1;
}

static int on_header_field(llhttp_t *p, const char *at, size_t n)
{
    srv_conn_t *c = p->data;
    return acr_buf_append(&c->hname, at, n) == 0 ? 0 : -1;
}

static int on_header_value(llhttp_t *p, const char *at, size_t n)
{
    srv_conn_t *c = p->data;
    return acr_buf_append(&c->hval, at, n) == 0 ? 0 : -1;
}

static bool name_is(const acr_buf_t *b, const char *name)
{
    size_t n = strlen(name);
    return b->len == n && strncasecmp((const char *)b->data, name, n) == 0;
}

/* Copies a header value lower-cased (up to ';' when cut_params) into out. */
static void copy_lower(const acr_buf_t *v, char *out, size_t cap, bool cut_params)
{
    size_t j = 0;
    for (size_t i = 0; i < v->len && j + 1 < cap; i++) {
        char ch = (char)v->data[i];
        if (cut_params && ch == ';')
            break;
        if (ch == ' ' && j == 0)
            continue;
        out[j++] = (char)tolower((unsigned char)ch);
    }
    while (j > 0 && out[j - 1] == ' ')
        j--;
    out[j] = '\0';
}

static int on_header_value_complete(llhttp_t *p)
{
    srv_conn_t *c = p->data;
    srv_req_t *r = c->cur;
    if (name_is(&c->hname, "authorization")) {
        acr_buf_reset(&r->auth);
        acr_buf_append(&r->auth, c->hval.data, c->hval.len);
    } else if (name_is(&c->hname, "content-type")) {
        copy_lower(&c->hval, r->content_type, sizeof r->content_type, true);
    } else if (name_is(&c->hname, "accept")) {
        copy_lower(&c->hval, r->accept, sizeof r->accept, false);
    } else if (name_is(&c->hname, "last-event-id")) {
        copy_lower(&c->hval, r->last_event_id, sizeof r->last_event_id, false);
    } else if (name_is(&c->hname, "expect")) {
        char v[32];
        copy_lower(&c->hval, v, sizeof v, false);
        c->expect_continue = strcmp(v, "100-continue") == 0;
    }
    acr_buf_reset(&c->hname);
    acr_buf_reset(&c->hval);
    return 0;
}

static int on_headers_complete(llhttp_t *p)
{
    srv_conn_t *c = p->data;
    const srv_limits_t *lim = &c->srv->lim;
    if ((p->flags & F_CONTENT_LENGTH) && p->content_length > lim->body_bytes_max) {
        c->fail_status = 413;
        return -1;
    }
    c->phase = PH_BODY;
    arm(c, lim->idle_ms_max);
    if (c->expect_continue && p->http_major == 1 && p->http_minor == 1) {
        static char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        uv_buf_t b = uv_buf_init(cont, sizeof cont - 1);
        uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
    }
    return 0;
}

static int on_body(llhttp_t *p, const char *at, size_t n)
{
    srv_conn_t *c = p->data;
    if (c->cur->body.len + n > c->srv->lim.body_bytes_max) {
        c->fail_status = 413;
        return -1;
    }
    return acr_buf_append(&c->cur->body, at, n) == 0 ? 0 : -1;
}

static int on_message_complete(llhttp_t *p)
{
    srv_conn_t *c = p->data;
    srv_req_t *r = c->cur;
    r->method = (uint8_t)llhttp_get_method(p);
    r->keep_alive = llhttp_should_keep_alive(p) && !llhttp_get_upgrade(p);
    c->active = r;
    c->cur = NULL;
    return HPE_PAUSED;
}

/* ---- parsing ------------------------------------------------------------------------- */

static void start_request(srv_conn_t *c)
{
    srv_req_t *r = c->active;
    c->phase = PH_BUSY;
    uv_timer_stop(&c->timer);
    set_reading(c, false);
    srv_conn_ref(c);
    acr_buf_append(&r->url, "", 1); /* NUL-terminated for the router */
    r->url.len--;
    srv_dispatch(c->srv, r);
}

static void conn_parse(srv_conn_t *c)
{
    while (c->active == NULL && !c->closing && c->phase != PH_FEED && c->phase != PH_LINGER &&
           c->in_off < c->in.len) {
        const char *data = (const char *)c->in.data + c->in_off;
        size_t len = c->in.len - c->in_off;
        if (c->phase == PH_IDLE) {
            c->phase = PH_HEAD;
            arm(c, c->srv->lim.header_ms_max);
        }
        const char *why = NULL;
        int bad =
            c->scan.done ? 0 : scan_head(&c->scan, data, len, c->srv->lim.header_bytes_max, &why);
        if (bad != 0) {
            fail(c, bad, why);
            return;
        }
        llhttp_errno_t e = llhttp_execute(&c->parser, data, len);
        if (e == HPE_OK) {
            c->in_off = c->in.len;
            break;
        }
        if (e == HPE_PAUSED && c->active != NULL) {
            c->in_off += (size_t)(llhttp_get_error_pos(&c->parser) - data);
            llhttp_resume(&c->parser);
            scan_reset(&c->scan);
            start_request(c);
            break;
        }
        int status = c->fail_status ? c->fail_status : 400;
        char msg[160];
        snprintf(msg, sizeof msg, "malformed request: %s", llhttp_get_error_reason(&c->parser));
        fail(c, status, status == 413 ? "the request body exceeds the body limit" : msg);
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
    if (c->active == NULL && c->phase != PH_BUSY)
        set_reading(c, true);
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    (void)buf;
    srv_conn_t *c = st->data;
    if (nread < 0) {
        srv_conn_close(c); /* EOF or error: a partial request has nobody to answer */
        return;
    }
    if (nread == 0)
        return;
    if (c->phase == PH_FEED || c->phase == PH_LINGER) {
        c->in.len = c->in_off = 0;
        return;
    }
    c->in.len += (size_t)nread;
    conn_parse(c);
}

static void on_timer(uv_timer_t *t)
{
    srv_conn_t *c = t->data;
    switch (c->phase) {
    case PH_HEAD:
        fail(c, 408, "the request head did not arrive in time");
        break;
    case PH_BODY:
        fail(c, 408, "the request body stalled");
        break;
    case PH_IDLE:
    case PH_LINGER:
        srv_conn_close(c);
        break;
    default:
        break;
    }
}

void srv_conn_make_feed(srv_conn_t *c, struct srv_sub *sub)
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

static void on_connection(uv_stream_t *server, int status)
{
    srv_t *s = server->data;
    if (status != 0)
        return;
    srv_conn_t *c = calloc(1, sizeof *c);
    if (c == NULL)
        return;
    uv_tcp_init(s->loop, &c->tcp);
    c->tcp.data = c;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0 || s->stopping ||
        s->conn_count >= s->lim.connections_max) {
        uv_close((uv_handle_t *)&c->tcp, free_rejected);
        return;
    }
    uv_timer_init(s->loop, &c->timer);
    c->srv = s;
    c->timer.data = c;
    c->handles = 2;
    c->refs = 1;
    acr_buf_init(&c->in);
    acr_buf_init(&c->hname);
    acr_buf_init(&c->hval);
    llhttp_init(&c->parser, HTTP_REQUEST, &settings);
    c->parser.data = c;
    scan_reset(&c->scan);
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    s->conn_count++;
    srv_metrics_gauge_conns(1);
    uv_tcp_nodelay(&c->tcp, 1);
    c->phase = PH_HEAD;
    arm(c, s->lim.header_ms_max);
    set_reading(c, true);
}

int srv_http_listen(srv_t *s, const char *host, int port)
{
    llhttp_settings_init(&settings);
    settings.on_message_begin = on_message_begin;
    settings.on_url = on_url;
    settings.on_header_field = on_header_field;
    settings.on_header_value = on_header_value;
    settings.on_header_value_complete = on_header_value_complete;
    settings.on_headers_complete = on_headers_complete;
    settings.on_body = on_body;
    settings.on_message_complete = on_message_complete;
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

void srv_http_stop(srv_t *s)
{
    uv_close((uv_handle_t *)&s->listener, NULL);
    for (srv_conn_t *c = s->conns; c != NULL; c = c->next) {
        if (c->closing)
            continue;
        if (c->phase == PH_IDLE || c->phase == PH_HEAD || c->phase == PH_LINGER ||
            c->phase == PH_FEED)
            srv_conn_close(c);
        /* PH_BODY: the request is still arriving; PH_BUSY: in flight. Both
         * are answered (with Connection: close) before the connection goes. */
    }
}
