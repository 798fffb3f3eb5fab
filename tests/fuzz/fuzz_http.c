/* fuzz_http.c - libFuzzer target: the request handling of `accrue serve`
 * without sockets (tools/server/parse.c).
 *
 * The input's first byte picks the limits (small ones reach 431 and 413
 * quickly) and a chunk size; the rest is the byte stream of one connection.
 * It is run twice through the server's own parser (head scanner, llhttp with
 * the server's settings, header capture): once as one read, once cut into
 * chunks the way reads arrive, each time feeding the unparsed rest again
 * after every complete request, exactly like tools/server/http.c. Every complete
 * request then goes through target splitting, the bearer-token parser, query
 * parameters and the route decision for every role.
 *
 * The parser pauses after each head (pause_on_head, as in the server, which
 * authorizes the head before reading a body) and is resumed at once.
 *
 * Oracles: no crash, leak or UB (ASan/UBSan); each run yields a sequence of
 * requests followed by either nothing (waiting for more bytes) or exactly one
 * error status among 400, 413, 431; both runs see the same requests (method,
 * target, headers the server keeps, body, keep-alive) and end the same way;
 * parsed fields respect the limits; routing answers only 0, 401, 403, 404 or
 * 405, 401 exactly for role none, and 0 only for a route whose method matches
 * and whose roles include the role.
 */
#include <stdint.h>
#include <string.h>

#include "fuzz_common.h"
#include "internal.h"

#define REQS_MAX 64

typedef struct outcome {
    size_t nreq;
    uint64_t digest[REQS_MAX];
    int end; /* ACR_SRV_PARSE_MORE or ACR_SRV_PARSE_ERROR */
    int status;
    size_t heads;
} outcome_t;

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 1099511628211u;
    return h;
}

static uint64_t digest_of(const acr_srv_req_t *r)
{
    uint64_t h = 14695981039346656037u;
    h = fnv(h, &r->method, 1);
    h = fnv(h, r->url.data, r->url.len);
    h = fnv(h, "|", 1);
    h = fnv(h, r->body.data, r->body.len);
    h = fnv(h, "|", 1);
    h = fnv(h, r->auth.data, r->auth.len);
    h = fnv(h, r->content_type, strlen(r->content_type));
    h = fnv(h, r->accept, strlen(r->accept));
    h = fnv(h, r->last_event_id, strlen(r->last_event_id));
    uint8_t ka = r->keep_alive;
    return fnv(h, &ka, 1);
}

static void check_cstr(const char *s, size_t cap, const char *what)
{
    FUZZ_ASSERT(memchr(s, '\0', cap) != NULL, what);
}

/* What the router does with a complete request. */
static void route_checks(acr_srv_req_t *r, size_t body_max)
{
    FUZZ_ASSERT(r->body.len <= body_max, "body within the body limit");
    FUZZ_ASSERT(r->url.cap > r->url.len && r->url.data[r->url.len] == '\0', "url NUL-terminated");
    check_cstr(r->content_type, sizeof r->content_type, "content_type terminated");
    check_cstr(r->accept, sizeof r->accept, "accept terminated");
    check_cstr(r->last_event_id, sizeof r->last_event_id, "last_event_id terminated");

    const char *tok;
    size_t n;
    if (acr_srv_bearer((const char *)r->auth.data, r->auth.len, &tok, &n)) {
        const char *a = (const char *)r->auth.data;
        FUZZ_ASSERT(tok >= a && tok + n <= a + r->auth.len, "token inside the header");
        FUZZ_ASSERT(n > 0 && n <= ACR_SRV_TOKEN_LEN_MAX, "token length");
        FUZZ_ASSERT(tok[0] != ' ' && tok[0] != '\t' && tok[n - 1] != ' ' && tok[n - 1] != '\t',
                    "token trimmed");
    }

    bool split = acr_srv_split_target(r);
    /* what the access log prints, whether the target decoded or not (a failed decode
     * once left an unterminated path that the log ran strlen over) */
    const char *lp;
    size_t ln;
    acr_srv_log_path(r, &lp, &ln);
    FUZZ_ASSERT(ln > 0 && ln <= 256 && memchr(lp, '\0', ln) == NULL, "log path within bounds");
    if (r->path != NULL)
        FUZZ_ASSERT(strlen(r->path) <= r->url.len, "a path is terminated");
    if (!split)
        return;
    FUZZ_ASSERT(r->path != NULL && r->query != NULL, "split target fills path and query");
    FUZZ_ASSERT(r->path[0] == '/', "path starts with /");
    FUZZ_ASSERT(strlen(r->path) <= r->url.len, "decoded path no longer than the target");

    static const char *const keys[] = {"from", "limit", "partner", "period", "as_of", "today"};
    for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
        char out[24];
        memset(out, 'x', sizeof out);
        if (acr_srv_query_param(r->query, keys[k], out, sizeof out))
            check_cstr(out, sizeof out, "query value terminated");
    }

    for (int role = ACR_ROLE_NONE; role < ACR_ROLE__COUNT; role++) {
        acr_srv_decision_t d;
        int st = acr_srv_route_decide(r, role, &d);
        FUZZ_ASSERT(st == 0 || st == 401 || st == 403 || st == 404 || st == 405,
                    "route decision status");
        FUZZ_ASSERT((st == 401) == (role == ACR_ROLE_NONE), "401 exactly for role none");
        if (st == 0 || st == 403) {
            FUZZ_ASSERT(d.route != NULL && d.route->method == r->method, "route matches method");
            FUZZ_ASSERT(((d.route->roles >> role) & 1u) == (st == 0), "roles decide 0 vs 403");
            size_t stars = 0;
            for (const char *p = d.route->pattern; *p; p++)
                stars += *p == '*';
            for (size_t i = 0; i < ACR_SRV_PARAMS_MAX; i++) {
                FUZZ_ASSERT((d.params[i] != NULL) == (i < stars), "one param per '*'");
                if (d.params[i] != NULL)
                    FUZZ_ASSERT(d.params[i][0] != '\0' && strchr(d.params[i], '/') == NULL,
                                "param is one non-empty segment");
            }
        }
        if (st == 405)
            FUZZ_ASSERT(d.allow[0] != '\0', "405 names the allowed methods");
        if (st == 404)
            FUZZ_ASSERT(d.route == NULL && d.allow[0] == '\0', "404: no route for the path");
    }
}

/* Feeds data in reads of `chunk` bytes (0: one read), like http.c. */
static void run(const uint8_t *data, size_t size, size_t chunk, size_t head_max, size_t body_max,
                outcome_t *o)
{
    memset(o, 0, sizeof *o);
    acr_srv_parse_t p;
    acr_srv_parse_init(&p, head_max, body_max, o);
    p.pause_on_head = true; /* like the server: each head stops the parser for its auth */
    size_t avail = chunk == 0 ? size : (chunk < size ? chunk : size); /* bytes "read" so far */
    size_t off = 0, rounds = 0;
    o->end = ACR_SRV_PARSE_MORE;
    for (;;) {
        FUZZ_ASSERT(++rounds <= 2 * size + 4, "parsing makes progress");
        if (off == avail && !p.resumed) {
            if (avail == size)
                break;
            avail = avail + chunk < size ? avail + chunk : size;
            continue;
        }
        size_t used = 0;
        int status = 0;
        char msg[160];
        memset(msg, 'x', sizeof msg);
        int rc = acr_srv_parse_feed(&p, (const char *)data + off, avail - off, &used, &status, msg,
                                    sizeof msg);
        FUZZ_ASSERT(used <= avail - off, "consumed no more than given");
        if (rc == ACR_SRV_PARSE_MORE) {
            FUZZ_ASSERT(used == avail - off && p.done == NULL, "MORE consumes everything");
            off = avail;
            continue;
        }
        if (rc == ACR_SRV_PARSE_HEAD) {
            FUZZ_ASSERT(p.cur != NULL && p.done == NULL && p.head_paused, "a head is handed over");
            FUZZ_ASSERT(p.cur->url.cap > p.cur->url.len && p.cur->url.data[p.cur->url.len] == '\0',
                        "url NUL-terminated at the head");
            FUZZ_ASSERT(p.cur->body.len == 0, "no body byte read before the head is authorized");
            o->heads++;
            off += used;
            acr_srv_parse_resume(&p);
            continue;
        }
        if (rc == ACR_SRV_PARSE_ERROR) {
            FUZZ_ASSERT(status == 400 || status == 413 || status == 431, "error status");
            check_cstr(msg, sizeof msg, "error message terminated");
            o->end = ACR_SRV_PARSE_ERROR;
            o->status = status;
            break;
        }
        FUZZ_ASSERT(rc == ACR_SRV_PARSE_REQUEST && p.done != NULL, "a request is handed over");
        acr_srv_req_t *r = p.done;
        p.done = NULL;
        off += used;
        if (o->nreq < REQS_MAX)
            o->digest[o->nreq] = digest_of(r);
        o->nreq++;
        route_checks(r, body_max);
        acr_srv_req_release(r);
    }
    acr_srv_parse_destroy(&p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t ctl = data[0];
    data++;
    size--;
    size_t head_max = (ctl & 1) ? 16384 : 200;
    size_t body_max = (ctl & 2) ? (64u << 20) : 100;
    size_t chunk = 1 + (ctl >> 2); /* 1..64 bytes per read */
    outcome_t whole, cut;
    run(data, size, 0, head_max, body_max, &whole);
    run(data, size, chunk, head_max, body_max, &cut);
    FUZZ_ASSERT(whole.nreq == cut.nreq, "same number of requests however the bytes arrive");
    for (size_t i = 0; i < whole.nreq && i < REQS_MAX; i++)
        FUZZ_ASSERT(whole.digest[i] == cut.digest[i], "same requests however the bytes arrive");
    FUZZ_ASSERT(whole.end == cut.end, "same ending however the bytes arrive");
    FUZZ_ASSERT(whole.heads == cut.heads, "same heads however the bytes arrive");
    return 0;
}
