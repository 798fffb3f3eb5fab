/* parse.c - the request handling of `accrue serve` that needs no socket.
 *
 * Everything here works on byte buffers and request structs only (no loop,
 * no LMDB), so the connection code (http.c), the router
 * (routes.c) and the fuzz target (tests/fuzz/fuzz_http.c) run the very
 * same code: the head scanner, the llhttp settings and callbacks, header
 * capture, request-target splitting and percent-decoding, the route table
 * and the auth / route decision.
 *
 * llhttp 8.1 is built with LLHTTP_STRICT_MODE (Makefile) and no lenient
 * flag: it refuses Content-Length together with Transfer-Encoding,
 * duplicate Content-Length and bad chunk framing (CRLF after chunk data is
 * checked, not skipped). It still accepts obs-fold continuation lines, a
 * bare LF ending the request line or the head, whitespace before a header's
 * colon, an empty header name and runs of spaces in the request line; the
 * head scanner runs over each request head before llhttp sees it and
 * refuses those (400); it also counts the head's bytes for the header limit
 * (431). The callbacks refuse a second Authorization or Host header, an
 * HTTP/1.1 request without Host, any Transfer-Encoding but exactly
 * `chunked`, and trailer fields after a chunked body (so nothing in a
 * trailer is ever honoured, and a trailer cannot grow memory).
 *
 * With pause_on_head, llhttp is paused when a head is complete
 * (on_headers_complete returns HPE_PAUSED): the server authenticates and
 * authorizes the head before it reads a single body byte.
 * A message that completes pauses llhttp (on_message_complete returns
 * HPE_PAUSED), so one acr_srv_parse_feed call yields at most one request and the
 * bytes of a pipelined next request stay unparsed.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>
#include <strings.h>

#include "internal.h"

#define R(role) (1u << ACR_ROLE_##role)
#define READERS (R(ADMIN) | R(FINANCE) | R(AUDITOR) | R(PARTNER))

const acr_srv_route_t acr_srv_routes[ACR_SRV_R__COUNT] = {
    {HTTP_GET, "/metrics", "metrics", R(ADMIN) | R(FINANCE), ACR_SRV_R_METRICS},
    {HTTP_POST, "/v1/events", "events.append", R(ADMIN) | R(FINANCE) | R(INGEST),
     ACR_SRV_R_EVENTS_APPEND},
    {HTTP_GET, "/v1/events", "events.read", R(ADMIN) | R(FINANCE) | R(AUDITOR) | R(FEED),
     ACR_SRV_R_EVENTS_READ},
    {HTTP_GET, "/v1/feed", "feed", R(ADMIN) | R(FINANCE) | R(AUDITOR) | R(FEED), ACR_SRV_R_FEED},
    {HTTP_GET, "/v1/partners", "partners.list", READERS, ACR_SRV_R_PARTNERS},
    {HTTP_GET, "/v1/partners/*", "partners.show", READERS, ACR_SRV_R_PARTNER},
    {HTTP_GET, "/v1/deals/*", "deals.show", READERS, ACR_SRV_R_DEAL},
    {HTTP_POST, "/v1/deals", "deals.register", R(ADMIN) | R(FINANCE) | R(PARTNER),
     ACR_SRV_R_DEAL_REGISTER},
    {HTTP_POST, "/v1/deals/*/stage", "deals.stage", R(ADMIN) | R(FINANCE) | R(PARTNER),
     ACR_SRV_R_DEAL_STAGE},
    {HTTP_GET, "/v1/pipeline", "pipeline", READERS, ACR_SRV_R_PIPELINE},
    {HTTP_GET, "/v1/kpi", "kpi", READERS, ACR_SRV_R_KPI},
    {HTTP_POST, "/v1/payouts/*/run", "payouts.run", R(ADMIN) | R(FINANCE) | R(AUDITOR),
     ACR_SRV_R_RUN},
    {HTTP_GET, "/v1/payouts/*/statement", "payouts.statement", READERS, ACR_SRV_R_STATEMENT},
    {HTTP_POST, "/v1/payouts/*/close", "payouts.close", R(ADMIN) | R(FINANCE), ACR_SRV_R_CLOSE},
    {HTTP_GET, "/v1/payouts", "payouts.list", R(ADMIN) | R(FINANCE) | R(AUDITOR),
     ACR_SRV_R_PAYOUTS},
    {HTTP_GET, "/v1/payouts/*/audit", "payouts.audit", R(ADMIN) | R(FINANCE) | R(AUDITOR),
     ACR_SRV_R_AUDIT},
    {HTTP_GET, "/v1/verify", "verify", R(ADMIN) | R(AUDITOR), ACR_SRV_R_VERIFY},
    {HTTP_GET, "/v1/onboarding", "onboarding", READERS, ACR_SRV_R_ONBOARDING},
    {HTTP_GET, "/v1/announcements", "announcements", READERS, ACR_SRV_R_ANNOUNCEMENTS},
    {HTTP_POST, "/v1/announcements/*/ack", "announcements.ack", R(ADMIN) | R(FINANCE) | R(PARTNER),
     ACR_SRV_R_ANNOUNCEMENT_ACK},
    {HTTP_GET, "/v1/promotions", "promotions", R(ADMIN) | R(FINANCE) | R(AUDITOR),
     ACR_SRV_R_PROMOTIONS},
    {HTTP_GET, "/v1/status", "status", READERS | R(INGEST) | R(FEED), ACR_SRV_R_STATUS},
    {HTTP_GET, "/v1/deals", "deals.list", READERS, ACR_SRV_R_DEALS_LIST},
};

/* ---- requests ---------------------------------------------------------------------------- */

/* "<server start, hex seconds>-<n>": unique across restarts, cheap, and sortable within
 * one run; answered in Accrue-Request-Id and written to the access log. */
void acr_srv_request_id(char out[32])
{
    static _Atomic uint64_t counter;
    static _Atomic uint64_t started;
    uint64_t t = atomic_load(&started);
    if (t == 0) {
        uint64_t now = (uint64_t)time(NULL);
        atomic_compare_exchange_strong(&started, &t, now);
        t = atomic_load(&started);
    }
    snprintf(out, 32, "%" PRIx64 "-%" PRIu64, t, atomic_fetch_add(&counter, 1) + 1);
}

/* Released requests are kept for the next ones (loop thread only, like every request), with
 * their buffers emptied but not freed: a request then costs no calloc of the struct and no
 * malloc per buffer as it fills. A buffer grown past SPARE_BUF_CAP_MAX is freed rather than
 * kept, so spares pin at most SPARE_REQS_MAX * (the struct + 5 * SPARE_BUF_CAP_MAX). Under
 * AddressSanitizer nothing is kept, so a use after release is still caught. */
#if defined(ACR_SRV_ASAN)
#define SPARE_REQS_MAX 0
#else
#define SPARE_REQS_MAX 256
#endif
#define SPARE_BUF_CAP_MAX (8 * 1024)
static acr_srv_req_t *spare_reqs[SPARE_REQS_MAX + 1];
static size_t spare_req_count;

static void buf_keep(acr_buf_t *b)
{
    if (b->cap > SPARE_BUF_CAP_MAX)
        acr_buf_destroy(b);
    acr_buf_reset(b);
}

acr_srv_req_t *acr_srv_req_alloc(void)
{
    acr_srv_req_t *r;
    if (spare_req_count > 0) {
        r = spare_reqs[--spare_req_count];
        acr_buf_t keep[5] = {r->url, r->body, r->auth, r->resp, r->head};
        memset(r, 0, sizeof *r);
        r->url = keep[0];
        r->body = keep[1];
        r->auth = keep[2];
        r->resp = keep[3];
        r->head = keep[4];
        atomic_init(&r->gone, false);
    } else {
        if ((r = calloc(1, sizeof *r)) == NULL)
            return NULL;
        acr_buf_init(&r->url);
        acr_buf_init(&r->body);
        acr_buf_init(&r->auth);
        acr_buf_init(&r->resp);
        acr_buf_init(&r->head);
    }
    r->route = "-";
    acr_srv_request_id(r->request_id);
    return r;
}

void acr_srv_req_release(acr_srv_req_t *r)
{
    if (r == NULL)
        return;
    free(r->path);
    free(r->query);
    r->path = r->query = NULL;
    if (spare_req_count < SPARE_REQS_MAX) {
        buf_keep(&r->url);
        buf_keep(&r->body);
        buf_keep(&r->auth);
        buf_keep(&r->resp);
        buf_keep(&r->head);
        spare_reqs[spare_req_count++] = r;
        return;
    }
    acr_buf_destroy(&r->url);
    acr_buf_destroy(&r->body);
    acr_buf_destroy(&r->auth);
    acr_buf_destroy(&r->resp);
    acr_buf_destroy(&r->head);
    free(r);
}

/* ---- the head scanner -------------------------------------------------------------------- */

static void scan_reset(acr_srv_scan_t *s)
{
    memset(s, 0, sizeof *s);
    s->in_name = true;
}

/* 0 while fine, else the status to answer (400 or 431) with *why set. */
static int scan_head(acr_srv_scan_t *s, const char *p, size_t n, size_t max, const char **why)
{
    for (size_t i = 0; i < n && !s->done; i++) {
        if (s->line > 0 && !s->in_name && s->prev != '\r') {
            /* A header value (most of a head's bytes: the token, the host): nothing to check
             * in it but the count, up to its CR or a bare LF, which the steps below judge. */
            size_t j = i;
            while (j < n && p[j] != '\r' && p[j] != '\n')
                j++;
            if (s->bytes + (j - i) > max) {
                *why = "the request head exceeds the header limit";
                return 431;
            }
            s->bytes += j - i;
            s->line_len += j - i;
            if (j > i)
                s->prev = p[j - 1];
            if ((i = j) == n)
                break;
        }
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
            if (s->line == 0 && (c == '\t' || (c == ' ' && (s->prev == ' ' || s->line_len == 0)))) {
                *why = "the request line wants single spaces between method, target and version";
                return 400;
            }
            if (s->line > 0 && s->in_name) {
                if (c == ':' && s->line_len == 0) {
                    *why = "a header line has an empty name";
                    return 400;
                }
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

/* ---- llhttp callbacks -------------------------------------------------------------------- */

static int on_message_begin(llhttp_t *lp)
{
    acr_srv_parse_t *p = lp->data;
    if (p->cur == NULL) {
        p->cur = p->new_req ? p->new_req(p->owner) : acr_srv_req_alloc();
        if (p->cur == NULL)
            return -1;
    }
    acr_buf_reset(&p->hname);
    acr_buf_reset(&p->hval);
    p->expect_continue = false;
    p->in_body = false;
    p->auth_count = p->host_count = p->te_count = 0;
    return 0;
}

static int on_url(llhttp_t *lp, const char *at, size_t n)
{
    acr_srv_parse_t *p = lp->data;
    p->cur->method = (uint8_t)llhttp_get_method(lp); /* known once the target starts */
    p->cur->has_method = true;
    return acr_buf_append(&p->cur->url, at, n) == 0 ? 0 : -1;
}

/* Fails the request with 400 and a message (a callback's return). */
static int refuse400(acr_srv_parse_t *p, const char *why)
{
    p->fail_status = 400;
    p->fail_why = why;
    return -1;
}

/* Trailer fields (after a chunked body) are refused: nothing in them is
 * honoured, and refusing at their first byte bounds their memory to nothing. */
static int on_header_field(llhttp_t *lp, const char *at, size_t n)
{
    acr_srv_parse_t *p = lp->data;
    if (p->in_body)
        return refuse400(p, "trailer fields after a chunked body are not accepted");
    return acr_buf_append(&p->hname, at, n) == 0 ? 0 : -1;
}

static int on_header_value(llhttp_t *lp, const char *at, size_t n)
{
    acr_srv_parse_t *p = lp->data;
    if (p->in_body)
        return refuse400(p, "trailer fields after a chunked body are not accepted");
    return acr_buf_append(&p->hval, at, n) == 0 ? 0 : -1;
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

/* An Idempotency-Key (http.md): an id of events.md, [A-Za-z0-9._:-]{1,64}, given once;
 * anything else marks the request (answered 400 by the write routes). */
static void idem_key(acr_srv_req_t *r, const acr_buf_t *v)
{
    bool ok = !r->idem_bad && r->idem_key[0] == '\0' && v->len >= 1 &&
              v->len <= ACR_ID_LEN_MAX;
    for (size_t i = 0; ok && i < v->len; i++) {
        char c = (char)v->data[i];
        ok = isalnum((unsigned char)c) || c == '.' || c == '_' || c == ':' || c == '-';
    }
    r->idem_bad = !ok;
    r->idem_key[0] = '\0';
    if (ok) {
        memcpy(r->idem_key, v->data, v->len);
        r->idem_key[v->len] = '\0';
    }
}

static int on_header_value_complete(llhttp_t *lp)
{
    acr_srv_parse_t *p = lp->data;
    acr_srv_req_t *r = p->cur;
    int rc = 0;
    if (p->in_body)
        return refuse400(p, "trailer fields after a chunked body are not accepted");
    if (name_is(&p->hname, "authorization")) {
        if (++p->auth_count > 1)
            return refuse400(p, "more than one Authorization header");
        acr_buf_reset(&r->auth);
        rc = acr_buf_append(&r->auth, p->hval.data, p->hval.len);
    } else if (name_is(&p->hname, "host")) {
        if (++p->host_count > 1)
            return refuse400(p, "more than one Host header");
    } else if (name_is(&p->hname, "transfer-encoding")) {
        char v[16];
        copy_lower(&p->hval, v, sizeof v, false);
        if (++p->te_count > 1 || strcmp(v, "chunked") != 0 || p->hval.len > 32)
            return refuse400(p, "Transfer-Encoding must be exactly `chunked`");
    } else if (name_is(&p->hname, "content-type")) {
        copy_lower(&p->hval, r->content_type, sizeof r->content_type, true);
    } else if (name_is(&p->hname, "accept")) {
        copy_lower(&p->hval, r->accept, sizeof r->accept, false);
        if (p->hval.len >= sizeof r->accept) { /* cut: keep whole ranges (a cut q=0.9 is q=0) */
            char *comma = strrchr(r->accept, ',');
            *(comma != NULL ? comma : r->accept) = '\0';
        }
    } else if (name_is(&p->hname, "last-event-id")) {
        copy_lower(&p->hval, r->last_event_id, sizeof r->last_event_id, false);
    } else if (name_is(&p->hname, "if-none-match")) {
        copy_lower(&p->hval, r->if_none_match, sizeof r->if_none_match, false);
    } else if (name_is(&p->hname, "idempotency-key")) {
        idem_key(r, &p->hval);
    } else if (name_is(&p->hname, "expect")) {
        char v[32];
        copy_lower(&p->hval, v, sizeof v, false);
        p->expect_continue = strcmp(v, "100-continue") == 0;
    }
    acr_buf_reset(&p->hname);
    acr_buf_reset(&p->hval);
    return rc == 0 ? 0 : -1;
}

static int on_headers_complete(llhttp_t *lp)
{
    acr_srv_parse_t *p = lp->data;
    if ((lp->flags & F_CONTENT_LENGTH) && lp->content_length > p->body_bytes_max) {
        p->fail_status = 413;
        return -1;
    }
    if (lp->http_major != 1) /* a request line without a version (HTTP/0.9) is malformed */
        return refuse400(p, "the request line needs an HTTP version, 1.0 or 1.1");
    if (lp->http_minor >= 1 && p->host_count != 1)
        return refuse400(p, "exactly one Host header is required");
    if (acr_buf_reserve(&p->cur->body, (lp->flags & F_CONTENT_LENGTH) && lp->content_length <= 65536
                                           ? (size_t)lp->content_length
                                           : 0) != 0)
        return -1;
    p->expect_continue = p->expect_continue && lp->http_major == 1 && lp->http_minor == 1;
    p->in_body = true;
    if (p->pause_on_head) {
        p->head_paused = true;
        return HPE_PAUSED; /* the caller authorizes the head before any body byte is read */
    }
    return 0;
}

static int on_body(llhttp_t *lp, const char *at, size_t n)
{
    acr_srv_parse_t *p = lp->data;
    if (p->cur->body.len + n > p->body_bytes_max) {
        p->fail_status = 413;
        return -1;
    }
    return acr_buf_append(&p->cur->body, at, n) == 0 ? 0 : -1;
}

static int on_message_complete(llhttp_t *lp)
{
    acr_srv_parse_t *p = lp->data;
    acr_srv_req_t *r = p->cur;
    r->method = (uint8_t)llhttp_get_method(lp);
    r->has_method = true;
    r->keep_alive = llhttp_should_keep_alive(lp) && !llhttp_get_upgrade(lp);
    p->done = r;
    p->cur = NULL;
    return HPE_PAUSED;
}

static llhttp_settings_t settings;
static bool settings_ready;

void acr_srv_parse_init(acr_srv_parse_t *p, size_t header_bytes_max, size_t body_bytes_max,
                        void *owner)
{
    if (!settings_ready) { /* first call is on the loop thread, before any other */
        llhttp_settings_init(&settings);
        settings.on_message_begin = on_message_begin;
        settings.on_url = on_url;
        settings.on_header_field = on_header_field;
        settings.on_header_value = on_header_value;
        settings.on_header_value_complete = on_header_value_complete;
        settings.on_headers_complete = on_headers_complete;
        settings.on_body = on_body;
        settings.on_message_complete = on_message_complete;
        settings_ready = true;
    }
    memset(p, 0, sizeof *p);
    llhttp_init(&p->parser, HTTP_REQUEST, &settings); /* strict: no lenient flag is set */
    p->parser.data = p;
    p->header_bytes_max = header_bytes_max;
    p->body_bytes_max = body_bytes_max;
    p->owner = owner;
    acr_buf_init(&p->hname);
    acr_buf_init(&p->hval);
    scan_reset(&p->scan);
}

void acr_srv_parse_destroy(acr_srv_parse_t *p)
{
    acr_srv_req_t *reqs[2] = {p->cur, p->done};
    for (int i = 0; i < 2; i++) {
        if (reqs[i] == NULL)
            continue;
        if (p->free_req != NULL)
            p->free_req(reqs[i]);
        else
            acr_srv_req_release(reqs[i]);
    }
    p->cur = p->done = NULL;
    acr_buf_destroy(&p->hname);
    acr_buf_destroy(&p->hval);
}

int acr_srv_parse_feed(acr_srv_parse_t *p, const char *data, size_t len, size_t *out_used,
                       int *out_status, char *msg, size_t cap)
{
    *out_used = 0;
    p->resumed = false;
    const char *why = NULL;
    int bad = p->scan.done ? 0 : scan_head(&p->scan, data, len, p->header_bytes_max, &why);
    if (bad != 0) {
        *out_status = bad;
        snprintf(msg, cap, "%s", why);
        return ACR_SRV_PARSE_ERROR;
    }
    llhttp_errno_t e = llhttp_execute(&p->parser, data, len);
    if (e == HPE_OK) {
        *out_used = len;
        return ACR_SRV_PARSE_MORE;
    }
    if (e == HPE_PAUSED && p->head_paused && p->done == NULL && p->cur != NULL) {
        *out_used = (size_t)(llhttp_get_error_pos(&p->parser) - data);
        acr_buf_append(&p->cur->url, "", 1); /* NUL-terminated for the router */
        p->cur->url.len--;
        return ACR_SRV_PARSE_HEAD;
    }
    if (e == HPE_PAUSED && p->done != NULL) {
        *out_used = (size_t)(llhttp_get_error_pos(&p->parser) - data);
        llhttp_resume(&p->parser);
        scan_reset(&p->scan);
        acr_buf_append(&p->done->url, "", 1); /* NUL-terminated for the router */
        p->done->url.len--;
        return ACR_SRV_PARSE_REQUEST;
    }
    int status = p->fail_status ? p->fail_status : 400;
    *out_status = status;
    if (status == 413)
        snprintf(msg, cap, "the request body exceeds the body limit");
    else if (p->fail_why != NULL)
        snprintf(msg, cap, "%s", p->fail_why);
    else
        snprintf(msg, cap, "malformed request: %s", llhttp_get_error_reason(&p->parser));
    return ACR_SRV_PARSE_ERROR;
}

void acr_srv_parse_resume(acr_srv_parse_t *p)
{
    if (p->head_paused) {
        p->head_paused = false;
        p->resumed = true; /* a request without a body completes on the next feed */
        llhttp_resume(&p->parser);
    }
}

bool acr_srv_parse_u64(const char *s, uint64_t *out)
{
    uint64_t v = 0;
    if (s == NULL || *s == '\0')
        return false;
    for (; *s != '\0'; s++) {
        if (*s < '0' || *s > '9' || v > (UINT64_MAX - (uint64_t)(*s - '0')) / 10)
            return false;
        v = v * 10 + (uint64_t)(*s - '0');
    }
    *out = v;
    return true;
}

/* ---- request targets --------------------------------------------------------------------- */

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Percent-decodes s[0..n) into out (cap bytes); false on bad escapes, NUL or overflow. */
static bool pct_decode(const char *s, size_t n, bool plus_space, char *out, size_t cap)
{
    size_t j = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '%') {
            if (i + 2 >= n)
                return false;
            int hi = hexval(s[i + 1]), lo = hexval(s[i + 2]);
            if (hi < 0 || lo < 0)
                return false;
            c = (char)(hi * 16 + lo);
            i += 2;
            if (c == '/' && !plus_space) { /* a path: an encoded '/' is no separator, and no */
                if (j + 3 >= cap)            /* id holds one: it stays "%2F", found nowhere */
                    return false;
                memcpy(out + j, s + i - 2, 3);
                j += 3;
                continue;
            }
        } else if (c == '+' && plus_space) {
            c = ' ';
        }
        if (c == '\0' || j + 1 >= cap)
            return false;
        out[j++] = c;
    }
    if (cap == 0)
        return false;
    out[j] = '\0';
    return true;
}

/* q=0.5 as 500; a bad value as 0 (RFC 9110: at most three decimals, 0 to 1). */
static int q_value(const char *p, size_t n)
{
    if (n == 0 || (p[0] != '0' && p[0] != '1'))
        return 0;
    int q = (p[0] - '0') * 1000, scale = 100;
    if (n > 1 && (p[1] != '.' || n > 5))
        return 0;
    for (size_t i = 2; i < n; i++, scale /= 10) {
        if (p[i] < '0' || p[i] > '9')
            return 0;
        q += (p[i] - '0') * scale;
    }
    return q > 1000 ? 0 : q;
}

int acr_srv_accept_q(const char *accept, const char *media)
{
    const char *slash = strchr(media, '/');
    size_t tlen = slash != NULL ? (size_t)(slash - media) : strlen(media);
    int best = -1, best_q = 0; /* specificity: 2 type/sub, 1 type/any, 0 any/any */
    bool any = false;
    for (const char *p = accept; *p != '\0';) {
        const char *end = strchr(p, ',');
        size_t n = end != NULL ? (size_t)(end - p) : strlen(p);
        const char *semi = memchr(p, ';', n);
        size_t rlen = semi != NULL ? (size_t)(semi - p) : n;
        while (rlen > 0 && (*p == ' ' || *p == '\t'))
            p++, rlen--, n--;
        while (rlen > 0 && (p[rlen - 1] == ' ' || p[rlen - 1] == '\t'))
            rlen--;
        int spec = -1;
        if (rlen == strlen(media) && memcmp(p, media, rlen) == 0)
            spec = 2;
        else if (rlen == tlen + 2 && memcmp(p, media, tlen) == 0 && memcmp(p + tlen, "/*", 2) == 0)
            spec = 1;
        else if (rlen == 3 && memcmp(p, "*/*", 3) == 0)
            spec = 0;
        any = any || rlen > 0;
        if (spec > best) {
            int q = 1000;
            for (const char *a = semi; a != NULL && a < p + n;) { /* parameters: q=... */
                a++;
                while (a < p + n && (*a == ' ' || *a == '\t'))
                    a++;
                const char *next = memchr(a, ';', (size_t)(p + n - a));
                size_t alen = next != NULL ? (size_t)(next - a) : (size_t)(p + n - a);
                while (alen > 0 && (a[alen - 1] == ' ' || a[alen - 1] == '\t'))
                    alen--;
                if (alen >= 2 && a[0] == 'q' && a[1] == '=')
                    q = q_value(a + 2, alen - 2);
                a = next;
            }
            best = spec;
            best_q = q;
        }
        if (end == NULL)
            break;
        p = end + 1;
    }
    return any ? best_q : 1000;
}

bool acr_srv_query_decode(const char *s, size_t n, char *out, size_t cap)
{
    return pct_decode(s, n, true, out, cap);
}

bool acr_srv_query_param(const char *query, const char *key, char *out, size_t cap)
{
    size_t klen = strlen(key);
    const char *p = query;
    while (p != NULL && *p != '\0') {
        const char *amp = strchr(p, '&');
        size_t len = amp ? (size_t)(amp - p) : strlen(p);
        if (len > klen && memcmp(p, key, klen) == 0 && p[klen] == '=')
            return pct_decode(p + klen + 1, len - klen - 1, true, out, cap);
        if (len == klen && memcmp(p, key, klen) == 0)
            return cap > 0 && (out[0] = '\0', true);
        p = amp ? amp + 1 : NULL;
    }
    return false;
}

bool acr_srv_split_target(acr_srv_req_t *req)
{
    const char *t = (const char *)req->url.data;
    size_t n = req->url.len;
    if (n == 0 || t[0] != '/')
        return false;
    const char *q = memchr(t, '?', n);
    size_t plen = q ? (size_t)(q - t) : n;
    free(req->path);
    free(req->query);
    req->path = malloc(plen + 1);
    req->query = q ? strndup(q + 1, n - plen - 1) : strdup("");
    if (req->path == NULL || req->query == NULL ||
        !pct_decode(t, plen, false, req->path, plen + 1)) {
        free(req->path); /* a failed decode leaves no terminator: never keep it */
        req->path = NULL;
        return false;
    }
    return true;
}

void acr_srv_log_path(const acr_srv_req_t *req, const char **out, size_t *out_len)
{
    const char *path = req->path ? req->path : (const char *)req->url.data;
    size_t plen = req->path ? strlen(req->path) : req->url.len;
    if (path == NULL || plen == 0)
        path = "-", plen = 1;
    *out = path;
    *out_len = plen > 256 ? 256 : plen;
}

/* Matches path against pattern, collecting '*' segments into params. */
static bool match(const char *pattern, const char *path, char *buf, size_t cap, char **params)
{
    size_t np = 0, used = 0;
    while (*pattern && *path) {
        if (*pattern == '*') {
            const char *end = strchr(path, '/');
            size_t n = end ? (size_t)(end - path) : strlen(path);
            if (n == 0 || np == ACR_SRV_PARAMS_MAX || used + n + 1 > cap)
                return false;
            memcpy(buf + used, path, n);
            buf[used + n] = '\0';
            params[np++] = buf + used;
            used += n + 1;
            pattern++;
            path += n;
        } else if (*pattern++ != *path++) {
            return false;
        }
    }
    return *pattern == '\0' && *path == '\0';
}

bool acr_srv_bearer(const char *a, size_t n, const char **out_tok, size_t *out_len)
{
    if (a == NULL || n < 7 || strncasecmp(a, "bearer ", 7) != 0)
        return false;
    a += 7;
    n -= 7;
    while (n > 0 && (*a == ' ' || *a == '\t'))
        a++, n--;
    while (n > 0 && (a[n - 1] == ' ' || a[n - 1] == '\t'))
        n--;
    if (n == 0 || n > ACR_SRV_TOKEN_LEN_MAX)
        return false;
    *out_tok = a;
    *out_len = n;
    return true;
}

bool acr_srv_is_get(const acr_srv_req_t *req)
{
    return req->method == HTTP_GET || req->method == HTTP_HEAD;
}

int acr_srv_route_decide(const acr_srv_req_t *req, int role, acr_srv_decision_t *d)
{
    memset(d, 0, sizeof *d);
    if (role <= ACR_ROLE_NONE || role >= ACR_ROLE__COUNT)
        return 401;
    for (size_t i = 0; i < ACR_SRV_R__COUNT; i++) {
        char *params[ACR_SRV_PARAMS_MAX] = {NULL, NULL};
        if (!match(acr_srv_routes[i].pattern, req->path, d->buf, sizeof d->buf, params))
            continue;
        bool get = acr_srv_routes[i].method == HTTP_GET;
        bool stream = acr_srv_routes[i].id == ACR_SRV_R_FEED;
        if (acr_srv_routes[i].method == req->method ||
            (get && !stream && req->method == HTTP_HEAD)) {
            d->route = &acr_srv_routes[i];
            memcpy(d->params, params, sizeof params);
            break;
        }
        size_t used = strlen(d->allow);
        snprintf(d->allow + used, sizeof d->allow - used, "%s%s", used ? ", " : "",
                 get ? (stream ? "GET" : "GET, HEAD") : "POST");
    }
    if (d->route == NULL)
        return d->allow[0] ? 405 : 404;
    if ((d->route->roles & (1u << role)) == 0)
        return 403;
    return 0;
}
