/* internal.h - declarations private to `accrue serve` (tools/server/).
 *
 * One libuv loop owns every socket, timer and response (http.c). Work
 * that touches LMDB never runs on it: reads and the check of a token not
 * yet in the token cache run on the libuv thread pool (routes.c), the
 * reads that replay or scan the whole log on the slow lane's own threads
 * (lane.c), every write transaction on one writer thread that commits
 * waiting appends together (writer.c), and the live feed reads committed
 * events off-loop in chunks (feed.c). A cached token and a small append are
 * handled on the loop itself: hashing, a table lookup and a few events'
 * stateless parsing cost less than a pool round trip.
 * Metrics are counters behind one mutex (metrics.c).
 *
 * The parts that need no socket (head scanner, llhttp callbacks, target
 * splitting, the route table and the auth / route decision) live in
 * parse.c, shared with the fuzz target tests/fuzz/fuzz_http.c.
 *
 * Layers (a file calls only files of lower layers; upward calls go through
 * the hooks of acr_srv_t, set by server.c):
 *
 *   0  parse.c, respond.c, metrics.c, job.c, life.c   leaves
 *   1  http.c      connections: accept, parse, timers, respond;  lane.c  the slow lane;
 *                  idem.c  Idempotency-Key answers
 *   2  feed.c      the event stream
 *   3  writer.c    the writer thread;  ingest.c  the write routes' bodies into jobs;
 *                  program.c  the partner program's routes;  dashboard.c  the web page
 *   4  routes.c    auth on the head, routing, read handlers
 *   5  server.c    acr_srv_run: wires the hooks, starts and stops
 *
 * Idempotency-Key (http.md): parse.c checks the header, job.c scopes it to the token and
 * hashes the request into the job, the writer looks it up and stores the answer in the
 * write's own transaction (idem.h), ingest.c formats and replays answers.
 *
 * Ownership: a connection (acr_srv_conn_t) owns its TCP and timer handles, its
 * input buffer and at most one request in flight (acr_srv_req_t); the request
 * owns its body and its response. A request handed to the pool, the slow
 * lane or the writer keeps a reference on its connection, so a client that hangs up
 * mid-request never frees memory a worker still uses.
 */
#ifndef ACCRUE_TOOLS_SERVE_H
#define ACCRUE_TOOLS_SERVE_H

#include <llhttp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "accrue/buf.h"
#include "accrue/error.h"
#include "accrue/idem.h"
#include "accrue/limits.h"
#include "accrue/log.h"
#include "accrue/payout.h"
#include "accrue/token.h"
#include "server.h"

/* Built with AddressSanitizer (gcc says __SANITIZE_ADDRESS__, clang __has_feature): the
 * spares of parse.c and job.c keep nothing then, so a use after release is still caught. */
#if defined(__SANITIZE_ADDRESS__)
#define ACR_SRV_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ACR_SRV_ASAN 1
#endif
#endif

/* A bootstrap token from --token-file (kept in memory only). */
typedef struct acr_srv_boot_token {
    uint8_t hash[ACR_TOKEN_HASH_LEN];
    int role;
    char partner[ACR_ID_LEN_MAX + 1];
    char name[32];
} acr_srv_boot_token_t;

/* ---- requests -------------------------------------------------------------- */

enum acr_srv_next { ACR_SRV_NEXT_RESPOND = 0, ACR_SRV_NEXT_WRITE, ACR_SRV_NEXT_FEED };

typedef struct acr_srv_wjob acr_srv_wjob_t;
typedef struct acr_srv_conn acr_srv_conn_t;
typedef struct acr_srv acr_srv_t;

struct acr_srv_req;

/* A request's place on the slow lane (lane.c). */
typedef struct acr_srv_lane_item {
    void (*run)(acr_srv_t *s, struct acr_srv_req *req);  /* lane thread: the work */
    void (*done)(acr_srv_t *s, struct acr_srv_req *req); /* loop thread: after run */
    struct acr_srv_req *next; /* next on the lane's waiting or done queue (lane.mu) */
} acr_srv_lane_item_t;

typedef struct acr_srv_req {
    acr_srv_conn_t *conn;   /* owner (holds a reference while the request lives) */
    uv_work_t work;         /* the pool job of the request */
    acr_srv_lane_item_t lane; /* the slow-lane job of the request (instead of work) */
    uint8_t method;         /* llhttp_method_t (valid when has_method) */
    bool has_method;        /* the request line's method was parsed */
    bool authed;            /* the token was checked on the head (role set, or refused) */
    bool in_pool;           /* req->work is queued or running (loop thread) */
    atomic_bool gone;       /* the client hung up (set on the loop, read by pool jobs) */
    acr_buf_t url;          /* request target as received */
    char *path;             /* decoded path, NUL-terminated (heap) */
    char *query;            /* raw query after '?', NUL-terminated (heap, "" when none) */
    acr_buf_t body;         /* request body */
    acr_buf_t auth;         /* Authorization header value */
    char content_type[96];  /* Content-Type, lower-cased, parameters stripped */
    char accept[512];       /* Accept, lower-cased (a longer one: its whole ranges only) */
    char last_event_id[24]; /* Last-Event-ID */
    char if_none_match[80]; /* If-None-Match (the dashboard's assets) */
    char idem_key[ACR_ID_LEN_MAX + 1]; /* Idempotency-Key ("" when none or idem_bad) */
    bool idem_bad;          /* an Idempotency-Key that is not an id, or given twice */
    bool keep_alive;        /* llhttp_should_keep_alive at completion */
    uint64_t start_ns;      /* first byte of the request (uv_hrtime) */
    /* set by the pool job */
    int role;                         /* acr_role_t of the token, ACR_ROLE_NONE before auth */
    char partner[ACR_ID_LEN_MAX + 1]; /* the token's partner ("" unless partner role) */
    char token_name[ACR_TOKEN_NAME_MAX + 8]; /* its name ("file:N": --token-file line N) */
    uint8_t token_hash[ACR_TOKEN_HASH_LEN]; /* which token of that name (idempotency keys take
                                             * its first bytes); a feed rechecks it (revoke) */
    bool token_stored;                /* a token of the ledger's table (not --token-file) */
    char request_id[32];              /* Accrue-Request-Id: server start (hex s) - counter */
    const char *route;                /* route label for metrics and the log */
    int next;                         /* enum acr_srv_next */
    acr_srv_wjob_t *wjob;             /* ACR_SRV_NEXT_WRITE: the job for the writer */
    uint64_t feed_from;               /* ACR_SRV_NEXT_FEED: first seq to send */
    /* the response */
    int status;              /* HTTP status */
    const char *ctype;       /* Content-Type of resp */
    acr_buf_t resp;          /* body */
    acr_buf_t head;          /* status line and headers (built on the loop) */
    char extra_headers[160]; /* extra header lines, each ending in \r\n */
    const char *static_headers; /* constant header lines after those (dashboard.c) */
    bool close_after;        /* Connection: close */
    uv_write_t wreq;         /* the write of what uv_try_write could not send at once */
    struct acr_srv_req *sent_next; /* next on http.c's list of requests written whole */
} acr_srv_req_t;

/* ---- the server ------------------------------------------------------------ */

typedef struct acr_srv_writer {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    acr_srv_wjob_t *in_head, *in_tail;     /* submitted, not yet taken (guarded by mu) */
    acr_srv_wjob_t *done_head, *done_tail; /* answered by the writer (guarded by mu) */
    size_t in_count;                       /* jobs in in_head..in_tail (guarded by mu) */
    size_t want;                           /* wake the writer at this many queued (mu) */
    bool stop;                             /* guarded by mu */
    bool started;
    uint64_t committed_seq; /* head after the last commit (guarded by mu) */
    uv_async_t async;       /* wakes the loop when jobs are done */
    uint64_t in_flight;     /* loop-side count of submitted, unanswered jobs */
    uint64_t commits;       /* group commits done (writer thread) */
} acr_srv_writer_t;

/* The slow lane (lane.c). */
typedef struct acr_srv_lane {
    pthread_t *threads;      /* thread_count started threads */
    uint32_t thread_count;   /* lim.expensive_max, at most ACR_SRV_LANE_THREADS_MAX */
    pthread_mutex_t mu;
    pthread_cond_t cv;       /* wakes a thread: a request is waiting, or stop */
    struct acr_srv_req *in_head, *in_tail;     /* admitted, not yet taken (mu) */
    struct acr_srv_req *done_head, *done_tail; /* run, not yet answered (mu) */
    bool stop;               /* the threads exit once the queue is empty (mu) */
    bool ready;              /* async is initialised (close it at the end) */
    uv_async_t async;        /* wakes the loop when requests are done */
    uint32_t in_flight;      /* loop side: admitted, not yet answered */
    uint64_t test_delay_ms;  /* ACCRUE_TEST_SLOW_MS: sleep per request (tests only) */
} acr_srv_lane_t;

typedef struct acr_srv_chunk acr_srv_chunk_t;

typedef struct acr_srv_feed {
    struct acr_srv_sub *subs; /* every subscriber (loop thread only) */
    size_t sub_count;
    uint64_t broadcast_seq; /* last seq sent to live subscribers */
    uint64_t known_head;    /* last committed seq the loop heard of */
    bool fetching;          /* a live-chunk read is running on the pool */
    bool recheck;           /* another commit was seen while fetching: read to the head again */
    uint64_t seen_txnid;    /* the ledger's last txn id at the previous watch tick */
    uv_timer_t heartbeat;
    uv_timer_t watch;       /* notices commits made by other processes (acr_srv_feed_init) */
} acr_srv_feed_t;

struct acr_srv {
    uv_loop_t *loop;
    uv_tcp_t listener;
    uv_signal_t sigterm, sigint;
    acr_ledger_t *ledger;
    bool replica;               /* the ledger is a read replica: every write is read_only */
    acr_srv_limits_t lim;
    acr_srv_boot_token_t *boot; /* --token-file entries */
    acr_token_cache_t *tokens;  /* verified ledger tokens (token.h) */
    uint32_t rejecting;         /* connections past the cap being answered 503 */
    size_t boot_count;
    uint32_t conn_count;   /* open connections (freed ones excluded) */
    uint32_t pool_jobs;    /* pool jobs in flight */
    acr_srv_conn_t *conns; /* every open connection */
    bool stopping;         /* SIGTERM/SIGINT seen */
    bool finished;         /* the last handles are closing */
    acr_srv_writer_t writer;
    acr_srv_lane_t lane;
    acr_srv_feed_t feed;
    /* Hooks, set by acr_srv_run, through which a lower layer hands work up
     * (so no two files call each other): a head is complete (routes.c
     * authorizes it), a request is complete (routes.c dispatches it), a
     * write job is done (routes.c answers it), a feed connection closed
     * (feed.c drops its subscriber), a keyed job's answer is to be stored. */
    void (*on_head)(acr_srv_t *s, acr_srv_req_t *req);
    void (*on_request)(acr_srv_t *s, acr_srv_req_t *req);
    void (*on_job_done)(acr_srv_t *s, acr_srv_req_t *req, acr_srv_wjob_t *job);
    void (*on_conn_closed)(acr_srv_t *s, struct acr_srv_sub *sub);
    /* The writer formats a keyed job's answer to store through this (ingest.c's
     * acr_srv_idem_format). */
    acr_idem_answer_fn idem_format;
};

/* ---- parse.c: request handling without sockets ------------------------ */

#define ACR_SRV_PARAMS_MAX 2
#define ACR_SRV_TOKEN_LEN_MAX 1024 /* longer bearer tokens are unknown (401) */

enum acr_srv_route_id {
    ACR_SRV_R_METRICS = 0,
    ACR_SRV_R_EVENTS_APPEND,
    ACR_SRV_R_EVENTS_READ,
    ACR_SRV_R_FEED,
    ACR_SRV_R_PARTNERS,
    ACR_SRV_R_PARTNER,
    ACR_SRV_R_DEAL,
    ACR_SRV_R_DEAL_REGISTER,
    ACR_SRV_R_DEAL_STAGE,
    ACR_SRV_R_PIPELINE,
    ACR_SRV_R_KPI,
    ACR_SRV_R_RUN,
    ACR_SRV_R_STATEMENT,
    ACR_SRV_R_CLOSE,
    ACR_SRV_R_PAYOUTS,
    ACR_SRV_R_AUDIT,
    ACR_SRV_R_VERIFY,
    ACR_SRV_R_ONBOARDING,      /* program.c */
    ACR_SRV_R_ANNOUNCEMENTS,
    ACR_SRV_R_ANNOUNCEMENT_ACK,
    ACR_SRV_R_PROMOTIONS,
    ACR_SRV_R_STATUS,          /* dashboard.c */
    ACR_SRV_R_DEALS_LIST,
    ACR_SRV_R__COUNT
};

typedef struct acr_srv_route {
    uint8_t method;      /* llhttp method */
    const char *pattern; /* '*' matches one path segment */
    const char *label;   /* for metrics and the access log */
    uint32_t roles;      /* bit per acr_role_t allowed */
    int id;              /* enum acr_srv_route_id */
} acr_srv_route_t;

extern const acr_srv_route_t acr_srv_routes[ACR_SRV_R__COUNT];

/* The outcome of routing one request for one role. */
typedef struct acr_srv_decision {
    const acr_srv_route_t *route;     /* the route (when method and path match) */
    char *params[ACR_SRV_PARAMS_MAX]; /* its '*' segments, inside buf */
    char buf[512];
    char allow[64]; /* 405: the methods of the path */
} acr_srv_decision_t;

/* 0 when role may use the route found for req->method and req->path (after
 * acr_srv_split_target), else the status: 401 (role NONE), 404, 405, 403. */
int acr_srv_route_decide(const acr_srv_req_t *req, int role, acr_srv_decision_t *d);
/* A GET, or a HEAD (RFC 9110: every GET resource answers it, the same head without the body;
 * the feed excepted, which is a stream with no end). */
bool acr_srv_is_get(const acr_srv_req_t *req);
/* Splits req->url into the decoded req->path and the raw req->query (heap);
 * false when the target is not an origin-form path or decodes badly. */
bool acr_srv_split_target(acr_srv_req_t *req);
/* The token of an Authorization value `Bearer TOKEN` (case-insensitive
 * scheme, blanks trimmed), pointing into a; false when there is none or it
 * is longer than ACR_SRV_TOKEN_LEN_MAX. */
bool acr_srv_bearer(const char *a, size_t n, const char **out_tok, size_t *out_len);

/* A request with its buffers initialised (route "-"); acr_srv_req_release frees
 * the buffers, path, query and the struct (not a writer job). */
acr_srv_req_t *acr_srv_req_alloc(void);
void acr_srv_req_release(acr_srv_req_t *r);

typedef struct acr_srv_scan {
    size_t bytes;    /* bytes of this head so far */
    uint32_t line;   /* 0 = request line, then header lines */
    size_t line_len; /* bytes on the current line, CR excluded */
    bool in_name;    /* before the colon of a header line */
    bool done;       /* the empty line ending the head was seen */
    char prev;       /* the previous byte */
} acr_srv_scan_t;

enum { ACR_SRV_PARSE_MORE = 0, ACR_SRV_PARSE_REQUEST, ACR_SRV_PARSE_ERROR, ACR_SRV_PARSE_HEAD };

/* One connection's parser: head scanner + llhttp + header capture. */
typedef struct acr_srv_parse {
    llhttp_t parser;
    acr_srv_scan_t scan;
    size_t header_bytes_max, body_bytes_max;
    acr_srv_req_t *cur;   /* request being parsed (owned) */
    acr_srv_req_t *done;  /* the request acr_srv_parse_feed completed (take it) */
    int fail_status;      /* status chosen by a callback that failed */
    const char *fail_why; /* and its message (static), NULL for llhttp's reason */
    bool expect_continue; /* Expect: 100-continue on the current request */
    bool pause_on_head;   /* stop after each head (ACR_SRV_PARSE_HEAD) until acr_srv_parse_resume */
    bool head_paused;     /* stopped after a head */
    bool resumed;         /* resumed after a head: feed again even with no new byte */
    bool in_body;         /* the head of the current request is complete */
    uint8_t auth_count, host_count, te_count; /* of the current head */
    acr_buf_t hname, hval;                    /* the header being parsed */
    void *owner;
    /* optional hooks: allocate / free a request (default acr_srv_req_alloc /
     * acr_srv_req_release) */
    acr_srv_req_t *(*new_req)(void *owner);
    void (*free_req)(acr_srv_req_t *r);
} acr_srv_parse_t;

void acr_srv_parse_init(acr_srv_parse_t *p, size_t header_bytes_max, size_t body_bytes_max,
                        void *owner);
void acr_srv_parse_destroy(acr_srv_parse_t *p);
/* Runs data[0..len) through the scanner and llhttp. ACR_SRV_PARSE_MORE: all of it
 * was consumed, the request is not complete. ACR_SRV_PARSE_REQUEST: p->done
 * holds a complete request (url NUL-terminated) and *out_used bytes were
 * consumed; the rest belongs to the next request. ACR_SRV_PARSE_HEAD (only with
 * pause_on_head): the head of p->cur is complete (url NUL-terminated, no
 * body byte read yet) and *out_used bytes were consumed; call
 * acr_srv_parse_resume before feeding the rest. ACR_SRV_PARSE_ERROR: answer
 * *out_status (400, 413 or 431) with msg and close; p->cur holds the partial
 * request, if any. */
int acr_srv_parse_feed(acr_srv_parse_t *p, const char *data, size_t len, size_t *out_used,
                       int *out_status, char *msg, size_t cap);
void acr_srv_parse_resume(acr_srv_parse_t *p);
/* The path to log for req: the decoded path, else the raw target, else "-"
 * (never past a buffer: a target that failed to decode has no path). */
void acr_srv_log_path(const acr_srv_req_t *req, const char **out, size_t *out_len);
/* A decimal without sign or blanks into *out; false on anything else or overflow. */
bool acr_srv_parse_u64(const char *s, uint64_t *out);

/* ---- http.c ---------------------------------------------------------- */

int acr_srv_http_listen(acr_srv_t *s, const char *host, int port);
/* Sends req's response (status, ctype, resp, extra_headers) and then goes on
 * with the connection's next request or closes it. Loop thread only. */
void acr_srv_respond(acr_srv_req_t *req);
/* The auth decision on a request's head is made (req->status set: refused,
 * answered at once; else the body is read). Loop thread only. */
void acr_srv_head_decided(acr_srv_req_t *req);
/* Logs and frees a request that was answered another way (the feed). */
void acr_srv_req_done(acr_srv_req_t *req);
/* Stop accepting and close idle connections (shutdown). */
void acr_srv_http_stop(acr_srv_t *s);
/* Closes the connection now (feed subscribers that fall behind). */
void acr_srv_conn_close(acr_srv_conn_t *c);
/* The connection's TCP stream (for the feed's writes). */
uv_stream_t *acr_srv_conn_stream(acr_srv_conn_t *c);
void acr_srv_conn_ref(acr_srv_conn_t *c);
void acr_srv_conn_unref(acr_srv_conn_t *c);
bool acr_srv_conn_closing(const acr_srv_conn_t *c);
/* Turns the connection into an event stream (no more requests on it). */
void acr_srv_conn_make_feed(acr_srv_conn_t *c, struct acr_srv_sub *sub);
/* The access-log line and request metrics, once per request. */
void acr_srv_log_request(acr_srv_req_t *req, size_t bytes);
/* Buffered access-log lines out to stderr (the loop flushes before it polls). */
void acr_srv_log_flush(void);

/* ---- routes.c -------------------------------------------------------- */

/* Authenticates and authorizes a request's head (loop thread): from the
 * --token-file entries and the token cache at once, else from the tokens
 * table on the pool; then acr_srv_head_decided(req). */
void acr_srv_authorize(acr_srv_t *s, acr_srv_req_t *req);
/* Routes a complete request (loop thread): /healthz and / are answered at
 * once, everything else goes to the pool. */
void acr_srv_dispatch(acr_srv_t *s, acr_srv_req_t *req);
/* The writer's hook: answers the request of a finished write job (loop thread). */
void acr_srv_job_done(acr_srv_t *s, acr_srv_req_t *req, acr_srv_wjob_t *job);

/* Query parameter key of a raw query string, percent-decoded into out
 * (NUL-terminated); false when absent or longer than cap - 1 (parse.c). */
bool acr_srv_query_param(const char *query, const char *key, char *out, size_t cap);
/* One query value percent-decoded ('+' a space) into out (NUL-terminated): false on a bad
 * escape, a NUL or more than cap - 1 bytes (parse.c). */
bool acr_srv_query_decode(const char *s, size_t n, char *out, size_t cap);
/* How much an Accept header value (lower-cased) wants the media type "type/sub": its q in
 * thousandths from the most specific range that matches (type/sub, then type/any, then any/any),
 * 0 when none does; 1000 for an empty header (parse.c). */
int acr_srv_accept_q(const char *accept, const char *media);
/* A fresh request id, "<server start, hex seconds>-<n>" (parse.c): unique across restarts,
 * sortable within one run; answered in Accrue-Request-Id and written to the access log. */
void acr_srv_request_id(char out[32]);

/* http.md: an unknown query parameter is 400, never ignored. Sets the 400 naming the first
 * parameter of req's query not in allowed (space-separated names; "" for none), or whose
 * value does not decode or is longer than that parameter's handler takes, and answers true;
 * false when every one is known and well formed (http.c). */
bool acr_srv_query_refused(acr_srv_req_t *req, const char *allowed);
/* ?partner=P of a request, scoped (http.c): a partner token may name only itself and
 * defaults to itself; another partner is answered 404 and false returned. pid is out's
 * value, the token's partner, or NULL (not asked, and not a partner token). */
bool acr_srv_scoped_partner(acr_srv_req_t *req, char *out, size_t cap, const char **pid);

/* ---- respond.c: response helpers (a leaf) -------------------------------- */

/* Fills req with an error body {"error":{code,message,details:[]}}. */
void acr_srv_set_error(acr_srv_req_t *req, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* A partner's writes (deals, stage moves, acknowledgements) are dated by the server (http.md:
 * at = now): an `at` of its own could backdate a deal ahead of another partner's claim on
 * the customer, or into a closed period. True, with the 422 set, when req is a partner's and
 * has_at. */
bool acr_srv_partner_at_refused(acr_srv_req_t *req, bool has_at);
/* An error body for an engine error (status from its code). */
void acr_srv_set_acr_error(acr_srv_req_t *req, int rc, const acr_err_t *err);
/* The error body of a rejected batch: status 409 when a conflict is among the
 * errors, 413 for too_large, else 422; details list every error. */
void acr_srv_set_errlist(acr_srv_req_t *req, const acr_errlist_t *errs, bool by_line);
/* The answer of a key already used: the stored bytes (a replay says so in a header), or
 * 409 for a key reused with another request. false when idem is NULL or NEW. */
bool acr_srv_answer_idem(acr_srv_req_t *req, const acr_idem_t *idem);
/* Maps an ACR_E* code to an HTTP status. */
int acr_srv_status_of(int code);
/* The reason phrase of a status, and the error code of an HTTP-level failure. */
const char *acr_srv_reason_of(int status);
const char *acr_srv_code_of_status(int status);
/* Appends v in decimal (no printf on the per-request path). */
int acr_srv_buf_u64(acr_buf_t *b, uint64_t v);

/* ---- idem.c: the Idempotency-Key at the door ----------------------------- */

/* Every write handler asks first: 400 when req carries an Idempotency-Key that is not an
 * id; the stored answer, or 409, when the key was used already (acr_srv_answer_idem);
 * false when the key is new or absent. Pool thread (an LMDB read for a key). */
bool acr_srv_idem_refused(acr_srv_t *s, acr_srv_req_t *req);

/* ---- lane.c: the slow lane ------------------------------------------------- */

/* Starts lim.expensive_max threads (at least 1, at most ACR_SRV_LANE_THREADS_MAX)
 * and the loop's wake-up handle; reads ACCRUE_TEST_SLOW_MS. 0, or a libuv error. */
int acr_srv_lane_start(acr_srv_t *s);
/* Loop thread: queues req (req->lane.run and .done set) unless the lane
 * already holds its threads' worth running plus lim.slow_queue_max waiting;
 * false then (the caller answers 503). req->lane.run runs on a lane thread,
 * then req->lane.done on the loop. */
bool acr_srv_lane_submit(acr_srv_t *s, acr_srv_req_t *req);
/* Stops and joins the lane threads (after the loop ended: nothing in flight). */
void acr_srv_lane_join(acr_srv_t *s);

/* ---- life.c (a leaf) ------------------------------------------------------ */

/* When stopping and nothing is in flight: close the last handles. */
void acr_srv_maybe_finish(acr_srv_t *s);

/* ---- ingest.c: the write routes (run on the pool) -------------------- */

/* Fills req with the response for a finished writer job (loop thread; the writer thread
 * too, into a scratch request, to store a keyed job's answer: acr_srv_idem_format). */
void acr_srv_answer_job(acr_srv_req_t *req, acr_srv_wjob_t *job);
/* The writer's acr_idem_answer_fn: formats a keyed job's answer from its outcome; true
 * for the answers kept (2xx, 409, 422: the request was decided), never a 5xx. res NULL:
 * a close refused before its transaction (job->rc and job->err say why). */
bool acr_srv_idem_format(acr_idem_t *idem, int rc, const acr_append_result_t *res,
                         const acr_errlist_t *errs);
/* The partner_id member of an engine JSON object into out; false when the
 * object has none (or it does not fit, or memory ran out). */
bool acr_srv_json_partner(const acr_buf_t *json, char *out, size_t cap);

/* POST /v1/events, POST /v1/deals, POST /v1/deals/{id}/stage,
 * POST /v1/payouts/{period}/close: parse and check the request, then set
 * req->next = ACR_SRV_NEXT_WRITE with req->wjob, or answer an error. */
void acr_srv_h_append(acr_srv_t *s, acr_srv_req_t *req, char **params);
void acr_srv_h_deal_register(acr_srv_t *s, acr_srv_req_t *req, char **params);
void acr_srv_h_deal_stage(acr_srv_t *s, acr_srv_req_t *req, char **params);
void acr_srv_h_close(acr_srv_t *s, acr_srv_req_t *req, char **params);
/* dashboard.c: the page, its assets and its two read endpoints. */
/* True for the paths of the page: "/" and "/assets/...". */
bool acr_srv_dashboard_path(const char *path);
/* Answers the page or an asset (loop thread: embedded bytes, no disk). */
void acr_srv_dashboard_answer(acr_srv_req_t *req);
/* GET /v1/status and GET /v1/deals (pool thread). */
void acr_srv_h_status(acr_srv_t *s, acr_srv_req_t *req, char **params);
void acr_srv_h_deals_list(acr_srv_t *s, acr_srv_req_t *req, char **params);
/* program.c: the partner program (program.md). */
void acr_srv_h_onboarding(acr_srv_t *s, acr_srv_req_t *req, char **params);
void acr_srv_h_announcements(acr_srv_t *s, acr_srv_req_t *req, char **params);
void acr_srv_h_announcement_ack(acr_srv_t *s, acr_srv_req_t *req, char **params);
void acr_srv_h_promotions(acr_srv_t *s, acr_srv_req_t *req, char **params);
/* Bodies up to this size are parsed on the loop thread (no pool round trip):
 * a few events, tens of microseconds at most. */
#define ACR_SRV_LOOP_BODY_MAX 4096

/* ---- writer.c -------------------------------------------------------- */

/* CHECK: an append whose body had stateless errors; the writer adds the rule errors of the
 * events that did parse (acr_ledger_add_rule_errors) and writes nothing. */
enum acr_srv_wjob_kind { ACR_SRV_JOB_APPEND = 0, ACR_SRV_JOB_CLOSE, ACR_SRV_JOB_CHECK };
enum acr_srv_job_detail {
    ACR_SRV_ANSWER_EVENTS = 0,
    ACR_SRV_ANSWER_NDJSON,
    ACR_SRV_ANSWER_DEAL_NEW,
    ACR_SRV_ANSWER_DEAL_MOVE
};

struct acr_srv_wjob {
    int kind;                          /* enum acr_srv_wjob_kind */
    acr_srv_req_t *req;                /* the request to answer */
    acr_batch_t batch;                 /* APPEND: the parsed events */
    acr_append_result_t result;        /* APPEND: engine result (seqs: seqs_kept) */
    uint64_t *seqs_kept;               /* the seqs array, kept when the job is reused */
    size_t seqs_cap;                   /* its capacity in seqs */
    acr_errlist_t *errs;               /* APPEND, CHECK: errors (heap) */
    int rc;                            /* 0 = committed */
    char period[ACR_PERIOD_ID_MAX];    /* CLOSE: the period */
    acr_payout_t payout;               /* CLOSE: the computed close */
    uint64_t close_seq;                /* CLOSE: seq of period.closed */
    acr_err_t err;                     /* CLOSE: the error */
    int kind_detail;                   /* enum acr_srv_job_detail: how to answer */
    char deal_id[ACR_ID_LEN_MAX + 1];  /* deal routes: the deal */
    char event_id[ACR_ID_LEN_MAX + 1]; /* deal routes: the event's id */
    acr_idem_t *idem;                  /* the request's Idempotency-Key (heap), NULL: none */
    int role;                          /* the request's token role (the answer's wording) */
    acr_srv_wjob_t *next;
};

/* job.c (a leaf): a job with its error list (spare lists are reused), its batch's actor
 * the token of req (events.md: "token:<name>"), and req's Idempotency-Key scoped to the
 * token's name with the XXH3-128 of its method, target and body. */
acr_srv_wjob_t *acr_srv_wjob_new(const acr_srv_req_t *req, int kind);
void acr_srv_wjob_free(acr_srv_wjob_t *job);
/* Drops job's Idempotency-Key: its answer will not be kept (a refusal made before a write). */
void acr_srv_wjob_forget_key(acr_srv_wjob_t *job);
/* Points job->result.seqs at a zeroed array of n seqs (the job's own, reused). ACR_ENOMEM. */
int acr_srv_wjob_seqs(acr_srv_wjob_t *job, size_t n);
/* Looks req's Idempotency-Key up in a read snapshot: true when it was used already (idem
 * filled: REPLAY or CONFLICT; the caller destroys it), false when absent, new or on a store
 * error (the writer's own look-up then decides). */
bool acr_srv_idem_seen(acr_srv_t *s, const acr_srv_req_t *req, acr_idem_t *idem);

int acr_srv_writer_start(acr_srv_t *s);
/* Queues a job (loop thread); its answer arrives through acr_srv_answer_job. */
void acr_srv_writer_submit(acr_srv_t *s, acr_srv_wjob_t *job);
/* Stops and joins the writer thread after it answered everything queued. */
void acr_srv_writer_join(acr_srv_t *s);

/* ---- feed.c ---------------------------------------------------------- */

int acr_srv_feed_init(acr_srv_t *s);
/* Starts an event stream on req's connection from req->feed_from. */
void acr_srv_feed_start(acr_srv_t *s, acr_srv_req_t *req);
/* A commit landed: new head. */
void acr_srv_feed_notify(acr_srv_t *s, uint64_t head_seq);
/* A subscriber's connection closed. */
void acr_srv_feed_drop(acr_srv_t *s, struct acr_srv_sub *sub);
void acr_srv_feed_stop(acr_srv_t *s);

/* ---- metrics.c ------------------------------------------------------- */

void acr_srv_metrics_request(const char *route, int status);
void acr_srv_metrics_commit(size_t batches, uint64_t events, uint64_t latency_us);
void acr_srv_metrics_batch(uint64_t events);
void acr_srv_metrics_gauge_conns(int64_t delta);
void acr_srv_metrics_gauge_subs(int64_t delta);
void acr_srv_metrics_feed_dropped(void);
/* A request authenticated on the loop (true) or a token checked in the table (false). */
void acr_srv_metrics_path(bool on_loop);
int acr_srv_metrics_render(acr_buf_t *out);

#endif
