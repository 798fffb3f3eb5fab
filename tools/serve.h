/* serve.h - declarations private to `accrue serve` (tools/serve*.c).
 *
 * One libuv loop owns every socket, timer and response (serve_http.c). Work
 * that touches LMDB never runs on it: reads and the check of a token not
 * yet in the token cache run on the libuv thread pool (serve_routes.c),
 * every write transaction on one writer thread that commits waiting appends
 * together (serve_writer.c), and the live feed reads committed events
 * off-loop in chunks (serve_feed.c). A cached token and a small append are
 * handled on the loop itself: hashing, a table lookup and a few events'
 * stateless parsing cost less than a pool round trip.
 * Metrics are counters behind one mutex (serve_metrics.c).
 *
 * The parts that need no socket (head scanner, llhttp callbacks, target
 * splitting, the route table and the auth / route decision) live in
 * serve_parse.c, shared with the fuzz target tests/fuzz/fuzz_http.c.
 *
 * Ownership: a connection (srv_conn_t) owns its TCP and timer handles, its
 * input buffer and at most one request in flight (srv_req_t); the request
 * owns its body and its response. A request handed to the pool or to the
 * writer keeps a reference on its connection, so a client that hangs up
 * mid-request never frees memory a worker still uses.
 */
#ifndef ACCRUE_TOOLS_SERVE_H
#define ACCRUE_TOOLS_SERVE_H

#include <llhttp.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "accrue/buf.h"
#include "accrue/error.h"
#include "accrue/limits.h"
#include "accrue/log.h"
#include "accrue/payout.h"
#include "accrue/token.h"
#include "cli.h"

/* Entry points (dispatched from main.c). */
int acr__cmd_httpd(acr_cli_t *cli, int argc, char **argv);
int acr__cmd_tokens(acr_cli_t *cli, int argc, char **argv);

/* ---- limits (flags of serve, http.md defaults) ---------------------------- */

typedef struct srv_limits {
    size_t header_bytes_max;       /* request line + headers: 16 KiB (431 beyond) */
    size_t body_bytes_max;         /* 64 MiB (413 beyond) */
    uint64_t header_ms_max;        /* whole head within 10 s of its first byte (408) */
    uint64_t idle_ms_max;          /* keep-alive idle and body stall: 30 s */
    uint32_t connections_max;      /* 1024 open connections */
    size_t feed_pending_bytes_max; /* a feed subscriber's unsent bytes: 1 MiB */
    uint64_t feed_heartbeat_ms;    /* 15 s */
} srv_limits_t;

/* A bootstrap token from --token-file (kept in memory only). */
typedef struct srv_boot_token {
    uint8_t hash[ACR_TOKEN_HASH_LEN];
    int role;
    char partner[ACR_ID_LEN_MAX + 1];
    char name[32];
} srv_boot_token_t;

/* ---- requests -------------------------------------------------------------- */

enum srv_next { SRV_NEXT_RESPOND = 0, SRV_NEXT_WRITE, SRV_NEXT_FEED };

typedef struct srv_wjob srv_wjob_t;
typedef struct srv_conn srv_conn_t;
typedef struct srv srv_t;

typedef struct srv_req {
    srv_conn_t *conn;       /* owner (holds a reference while the request lives) */
    uv_work_t work;         /* the pool job of the request */
    uint8_t method;         /* llhttp_method_t */
    acr_buf_t url;          /* request target as received */
    char *path;             /* decoded path, NUL-terminated (heap) */
    char *query;            /* raw query after '?', NUL-terminated (heap, "" when none) */
    acr_buf_t body;         /* request body */
    acr_buf_t auth;         /* Authorization header value */
    char content_type[96];  /* Content-Type, lower-cased, parameters stripped */
    char accept[128];       /* Accept, lower-cased */
    char last_event_id[24]; /* Last-Event-ID */
    bool keep_alive;        /* llhttp_should_keep_alive at completion */
    uint64_t start_ns;      /* first byte of the request (uv_hrtime) */
    /* set by the pool job */
    int role;                         /* acr_role_t of the token, ACR_ROLE_NONE before auth */
    char partner[ACR_ID_LEN_MAX + 1]; /* the token's partner ("" unless partner role) */
    char token_name[ACR_TOKEN_NAME_MAX + 8]; /* its name ("file:N": --token-file line N) */
    char request_id[32];              /* Accrue-Request-Id: server start (hex s) - counter */
    const char *route;                /* route label for metrics and the log */
    int next;                         /* enum srv_next */
    srv_wjob_t *wjob;                 /* SRV_NEXT_WRITE: the job for the writer */
    uint64_t feed_from;               /* SRV_NEXT_FEED: first seq to send */
    /* the response */
    int status;              /* HTTP status */
    const char *ctype;       /* Content-Type of resp */
    acr_buf_t resp;          /* body */
    acr_buf_t head;          /* status line and headers (built on the loop) */
    char extra_headers[160]; /* extra header lines, each ending in \r\n */
    bool close_after;        /* Connection: close */
    uv_write_t wreq;
} srv_req_t;

/* ---- the server ------------------------------------------------------------ */

typedef struct srv_writer {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    srv_wjob_t *in_head, *in_tail;     /* submitted, not yet taken (guarded by mu) */
    srv_wjob_t *done_head, *done_tail; /* answered by the writer (guarded by mu) */
    size_t in_count;                   /* jobs in in_head..in_tail (guarded by mu) */
    size_t want;                       /* wake the writer at this many queued (mu) */
    bool stop;                         /* guarded by mu */
    bool started;
    uint64_t committed_seq; /* head after the last commit (guarded by mu) */
    uv_async_t async;       /* wakes the loop when jobs are done */
    uint64_t in_flight;     /* loop-side count of submitted, unanswered jobs */
    uint64_t commits;       /* group commits done (writer thread) */
} srv_writer_t;

typedef struct srv_chunk srv_chunk_t;

typedef struct srv_feed {
    struct srv_sub *subs; /* every subscriber (loop thread only) */
    size_t sub_count;
    uint64_t broadcast_seq; /* last seq sent to live subscribers */
    uint64_t known_head;    /* last committed seq the loop heard of */
    bool fetching;          /* a live-chunk read is running on the pool */
    bool recheck;           /* another commit was seen while fetching: read to the head again */
    uint64_t seen_txnid;    /* the ledger's last txn id at the previous watch tick */
    uv_timer_t heartbeat;
    uv_timer_t watch;       /* notices commits made by other processes (srv_feed_init) */
} srv_feed_t;

struct srv {
    uv_loop_t *loop;
    uv_tcp_t listener;
    uv_signal_t sigterm, sigint;
    acr_ledger_t *ledger;
    srv_limits_t lim;
    srv_boot_token_t *boot;    /* --token-file entries */
    acr_token_cache_t *tokens; /* verified ledger tokens (token.h) */
    uint32_t rejecting;        /* connections past the cap being answered 503 */
    size_t boot_count;
    uint32_t conn_count; /* open connections (freed ones excluded) */
    uint32_t pool_jobs;  /* pool jobs in flight */
    srv_conn_t *conns;   /* every open connection */
    bool stopping;       /* SIGTERM/SIGINT seen */
    bool finished;       /* the last handles are closing */
    srv_writer_t writer;
    srv_feed_t feed;
};

/* ---- serve_parse.c: request handling without sockets ------------------------ */

#define SRV_PARAMS_MAX 2
#define SRV_TOKEN_LEN_MAX 1024 /* longer bearer tokens are unknown (401) */

enum srv_route_id {
    SRV_R_METRICS = 0,
    SRV_R_EVENTS_APPEND,
    SRV_R_EVENTS_READ,
    SRV_R_FEED,
    SRV_R_PARTNERS,
    SRV_R_PARTNER,
    SRV_R_DEAL,
    SRV_R_DEAL_REGISTER,
    SRV_R_DEAL_STAGE,
    SRV_R_PIPELINE,
    SRV_R_KPI,
    SRV_R_RUN,
    SRV_R_STATEMENT,
    SRV_R_CLOSE,
    SRV_R_PAYOUTS,
    SRV_R_AUDIT,
    SRV_R_VERIFY,
    SRV_R__COUNT
};

typedef struct srv_route {
    uint8_t method;      /* llhttp method */
    const char *pattern; /* '*' matches one path segment */
    const char *label;   /* for metrics and the access log */
    uint32_t roles;      /* bit per acr_role_t allowed */
    int id;              /* enum srv_route_id */
} srv_route_t;

extern const srv_route_t srv_routes[SRV_R__COUNT];

/* The outcome of routing one request for one role. */
typedef struct srv_decision {
    const srv_route_t *route;     /* the route (when method and path match) */
    char *params[SRV_PARAMS_MAX]; /* its '*' segments, inside buf */
    char buf[512];
    char allow[64]; /* 405: the methods of the path */
} srv_decision_t;

/* 0 when role may use the route found for req->method and req->path (after
 * srv_split_target), else the status: 401 (role NONE), 404, 405, 403. */
int srv_route_decide(const srv_req_t *req, int role, srv_decision_t *d);
/* Splits req->url into the decoded req->path and the raw req->query (heap);
 * false when the target is not an origin-form path or decodes badly. */
bool srv_split_target(srv_req_t *req);
/* The token of an Authorization value `Bearer TOKEN` (case-insensitive
 * scheme, blanks trimmed), pointing into a; false when there is none or it
 * is longer than SRV_TOKEN_LEN_MAX. */
bool srv_bearer(const char *a, size_t n, const char **out_tok, size_t *out_len);

/* A request with its buffers initialised (route "-"); srv_req_release frees
 * the buffers, path, query and the struct (not a writer job). */
srv_req_t *srv_req_alloc(void);
/* Appends v in decimal (no printf on the per-request path). */
int srv_buf_u64(acr_buf_t *b, uint64_t v);
void srv_req_release(srv_req_t *r);

typedef struct srv_scan {
    size_t bytes;    /* bytes of this head so far */
    uint32_t line;   /* 0 = request line, then header lines */
    size_t line_len; /* bytes on the current line, CR excluded */
    bool in_name;    /* before the colon of a header line */
    bool done;       /* the empty line ending the head was seen */
    char prev;       /* the previous byte */
} srv_scan_t;

enum { SRV_PARSE_MORE = 0, SRV_PARSE_REQUEST, SRV_PARSE_ERROR };

/* One connection's parser: head scanner + llhttp + header capture. */
typedef struct srv_parse {
    llhttp_t parser;
    srv_scan_t scan;
    size_t header_bytes_max, body_bytes_max;
    srv_req_t *cur;        /* request being parsed (owned) */
    srv_req_t *done;       /* the request srv_parse_feed completed (take it) */
    int fail_status;       /* status chosen by a callback that failed */
    bool expect_continue;  /* Expect: 100-continue on the current request */
    acr_buf_t hname, hval; /* the header being parsed */
    void *owner;
    /* optional hooks: allocate / free a request (default srv_req_alloc /
     * srv_req_release), and the head of a request is complete */
    srv_req_t *(*new_req)(void *owner);
    void (*free_req)(srv_req_t *r);
    void (*on_head)(void *owner, bool expect_continue);
} srv_parse_t;

void srv_parse_init(srv_parse_t *p, size_t header_bytes_max, size_t body_bytes_max, void *owner);
void srv_parse_destroy(srv_parse_t *p);
/* Runs data[0..len) through the scanner and llhttp. SRV_PARSE_MORE: all of it
 * was consumed, the request is not complete. SRV_PARSE_REQUEST: p->done
 * holds a complete request (url NUL-terminated) and *out_used bytes were
 * consumed; the rest belongs to the next request. SRV_PARSE_ERROR: answer
 * *out_status (400, 413 or 431) with msg and close; p->cur holds the partial
 * request, if any. */
int srv_parse_feed(srv_parse_t *p, const char *data, size_t len, size_t *out_used, int *out_status,
                   char *msg, size_t cap);

/* ---- serve_http.c ---------------------------------------------------------- */

int srv_http_listen(srv_t *s, const char *host, int port);
/* Sends req's response (status, ctype, resp, extra_headers) and then goes on
 * with the connection's next request or closes it. Loop thread only. */
void srv_respond(srv_req_t *req);
/* Logs and frees a request that was answered another way (the feed). */
void srv_req_done(srv_req_t *req);
/* Fills req with an error body {"error":{code,message,details:[]}}. */
void srv_set_error(srv_req_t *req, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Stop accepting and close idle connections (shutdown). */
void srv_http_stop(srv_t *s);
/* Closes the connection now (feed subscribers that fall behind). */
void srv_conn_close(srv_conn_t *c);
/* The connection's TCP stream (for the feed's writes). */
uv_stream_t *srv_conn_stream(srv_conn_t *c);
void srv_conn_ref(srv_conn_t *c);
void srv_conn_unref(srv_conn_t *c);
bool srv_conn_closing(const srv_conn_t *c);
/* Turns the connection into an event stream (no more requests on it). */
void srv_conn_make_feed(srv_conn_t *c, struct srv_sub *sub);
/* The access-log line and request metrics, once per request. */
void srv_log_request(srv_req_t *req, size_t bytes);
/* Buffered access-log lines out to stderr (the loop flushes before it polls). */
void srv_log_flush(void);
/* When stopping and nothing is in flight: close the last handles. */
void srv_maybe_finish(srv_t *s);

/* ---- serve_routes.c -------------------------------------------------------- */

/* Routes a complete request (loop thread): /healthz and / are answered at
 * once, everything else goes to the pool. */
void srv_dispatch(srv_t *s, srv_req_t *req);
/* Maps an ACR_E* code to an HTTP status. */
int srv_status_of(int code);
/* Fills req with the response for a finished writer job (loop thread). */
void srv_answer_job(srv_req_t *req, srv_wjob_t *job);

/* Query parameter key of a raw query string, percent-decoded into out
 * (NUL-terminated); false when absent or longer than cap - 1 (serve_parse.c). */
bool srv_query_param(const char *query, const char *key, char *out, size_t cap);
/* An error body for an engine error (status from its code). */
void srv_set_acr_error(srv_req_t *req, int rc, const acr_err_t *err);
/* The error body of a rejected batch: status 409 when a conflict is among the
 * errors, 413 for too_large, else 422; details list every error. */
void srv_set_errlist(srv_req_t *req, const acr_errlist_t *errs, bool by_line);

/* ---- serve_ingest.c: the write routes (run on the pool) -------------------- */

/* POST /v1/events, POST /v1/deals, POST /v1/deals/{id}/stage,
 * POST /v1/payouts/{period}/close: parse and check the request, then set
 * req->next = SRV_NEXT_WRITE with req->wjob, or answer an error. */
void srv_h_append(srv_t *s, srv_req_t *req, char **params);
void srv_h_deal_register(srv_t *s, srv_req_t *req, char **params);
void srv_h_deal_stage(srv_t *s, srv_req_t *req, char **params);
void srv_h_close(srv_t *s, srv_req_t *req, char **params);
/* Bodies up to this size are parsed on the loop thread (no pool round trip):
 * a few events, tens of microseconds at most. */
#define SRV_LOOP_BODY_MAX 4096

/* ---- serve_writer.c -------------------------------------------------------- */

enum srv_wjob_kind { SRV_JOB_APPEND = 0, SRV_JOB_CLOSE };
enum srv_job_detail {
    SRV_ANSWER_EVENTS = 0,
    SRV_ANSWER_NDJSON,
    SRV_ANSWER_DEAL_NEW,
    SRV_ANSWER_DEAL_MOVE
};

struct srv_wjob {
    int kind;                          /* enum srv_wjob_kind */
    srv_req_t *req;                    /* the request to answer */
    acr_batch_t batch;                 /* APPEND: the parsed events */
    acr_append_result_t result;        /* APPEND: engine result (seqs owned here) */
    acr_errlist_t *errs;               /* APPEND: errors (heap) */
    int rc;                            /* 0 = committed */
    char period[ACR_PERIOD_ID_MAX];    /* CLOSE: the period */
    acr_payout_t payout;               /* CLOSE: the computed close */
    uint64_t close_seq;                /* CLOSE: seq of period.closed */
    acr_err_t err;                     /* CLOSE: the error */
    int kind_detail;                   /* enum srv_job_detail: how to answer */
    char deal_id[ACR_ID_LEN_MAX + 1];  /* deal routes: the deal */
    char event_id[ACR_ID_LEN_MAX + 1]; /* deal routes: the event's id */
    srv_wjob_t *next;
};

srv_wjob_t *srv_wjob_new(int kind);
void srv_wjob_free(srv_wjob_t *job);
int srv_writer_start(srv_t *s);
/* Queues a job (loop thread); its answer arrives through srv_answer_job. */
void srv_writer_submit(srv_t *s, srv_wjob_t *job);
/* Stops and joins the writer thread after it answered everything queued. */
void srv_writer_join(srv_t *s);

/* ---- serve_feed.c ---------------------------------------------------------- */

int srv_feed_init(srv_t *s);
/* Starts an event stream on req's connection from req->feed_from. */
void srv_feed_start(srv_t *s, srv_req_t *req);
/* A commit landed: new head. */
void srv_feed_notify(srv_t *s, uint64_t head_seq);
/* A subscriber's connection closed. */
void srv_feed_drop(srv_t *s, struct srv_sub *sub);
void srv_feed_stop(srv_t *s);

/* ---- serve_metrics.c ------------------------------------------------------- */

void srv_metrics_request(const char *route, int status);
void srv_metrics_commit(size_t batches, uint64_t events, uint64_t latency_us);
void srv_metrics_batch(uint64_t events);
void srv_metrics_gauge_conns(int64_t delta);
void srv_metrics_gauge_subs(int64_t delta);
void srv_metrics_feed_dropped(void);
/* A request authenticated on the loop (true) or a token checked in the table (false). */
void srv_metrics_path(bool on_loop);
int srv_metrics_render(acr_buf_t *out);

#endif
