/* serve.h - declarations private to `accrue serve` (tools/serve*.c).
 *
 * One libuv loop owns every socket, timer and response (serve_http.c). Work
 * that touches LMDB never runs on it: authentication and reads run on the
 * libuv thread pool (serve_routes.c), every write transaction on one writer
 * thread that commits waiting appends together (serve_writer.c), and the
 * live feed reads committed events off-loop in chunks (serve_feed.c).
 * Metrics are counters behind one mutex (serve_metrics.c).
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
    bool stop;                         /* guarded by mu */
    bool started;
    uint64_t committed_seq; /* head after the last commit (guarded by mu) */
    uv_async_t async;       /* wakes the loop when jobs are done */
    uint64_t in_flight;     /* loop-side count of submitted, unanswered jobs */
} srv_writer_t;

typedef struct srv_chunk srv_chunk_t;

typedef struct srv_feed {
    struct srv_sub *subs; /* every subscriber (loop thread only) */
    size_t sub_count;
    uint64_t broadcast_seq; /* last seq sent to live subscribers */
    uint64_t known_head;    /* last committed seq the loop heard of */
    bool fetching;          /* a live-chunk read is running on the pool */
    uv_timer_t heartbeat;
} srv_feed_t;

struct srv {
    uv_loop_t *loop;
    uv_tcp_t listener;
    uv_signal_t sigterm, sigint;
    acr_ledger_t *ledger;
    srv_limits_t lim;
    srv_boot_token_t *boot; /* --token-file entries */
    size_t boot_count;
    uint32_t conn_count; /* open connections (freed ones excluded) */
    uint32_t pool_jobs;  /* pool jobs in flight */
    srv_conn_t *conns;   /* every open connection */
    bool stopping;       /* SIGTERM/SIGINT seen */
    bool finished;       /* the last handles are closing */
    srv_writer_t writer;
    srv_feed_t feed;
};

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
 * (NUL-terminated); false when absent or longer than cap - 1. */
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
int srv_metrics_render(acr_buf_t *out);

#endif
