/* server.h - the HTTP server of http.md as a module (tools/server/): its one
 * entry point and its options. The CLI command `accrue serve`
 * (tools/cmd_serve.c) parses flags into an acr_srv_opts_t, opens the
 * ledger and calls acr_srv_run; nothing of the server includes the CLI's
 * header. The module's own declarations are in internal.h.
 */
#ifndef ACCRUE_TOOLS_SERVER_H
#define ACCRUE_TOOLS_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "accrue/log.h"

/* Limits (http.md defaults, set by acr_srv_opts_default). */
typedef struct acr_srv_limits {
    size_t header_bytes_max;       /* request line + headers: 16 KiB (431 beyond) */
    size_t body_bytes_max;         /* 64 MiB (413 beyond) */
    uint64_t header_ms_max;        /* whole head within 10 s of its first byte (408) */
    uint64_t idle_ms_max;          /* keep-alive idle and body stall: 30 s */
    uint64_t body_ms_max;          /* whole body within 300 s of the head (408) */
    uint32_t expensive_max;        /* slow-lane threads: replays and whole-log scans (KPI,
                                      payout run, audit, staff statement, promotions, verify)
                                      running at once: 2 */
    uint32_t connections_max;      /* 1024 open connections */
    size_t feed_pending_bytes_max; /* a feed subscriber's unsent bytes: 1 MiB */
    uint64_t feed_heartbeat_ms;    /* 15 s */
    uint32_t slow_queue_max;       /* slow requests waiting for a lane thread: 64 (503 and
                                      Retry-After beyond) */
} acr_srv_limits_t;

/* A larger --expensive-max starts this many lane threads: each replay holds a
 * statement's memory (hundreds of MiB at 10 M events), so more would only swap. */
#define ACR_SRV_LANE_THREADS_MAX 16

typedef struct acr_srv_opts {
    const char *host;       /* address to listen on: "127.0.0.1" */
    int port;               /* 8080; 0 picks a free port (printed on stderr) */
    const char *token_file; /* bootstrap tokens (`SECRET ROLE [PARTNER]` lines), or NULL */
    acr_srv_limits_t lim;
} acr_srv_opts_t;

/* Results of acr_srv_run (the CLI maps them onto its exit codes 0, 1, 2). */
enum { ACR_SRV_OK = 0, ACR_SRV_ERUNTIME = 1, ACR_SRV_EUSAGE = 2 };

/* Fills o with the defaults of http.md (127.0.0.1:8080, no token file). */
void acr_srv_opts_default(acr_srv_opts_t *o);

/* Serves ledger (opened by the caller, closed by it afterwards) until
 * SIGTERM or SIGINT, then finishes the requests in flight and returns
 * ACR_SRV_OK. ACR_SRV_EUSAGE: a malformed token file; ACR_SRV_ERUNTIME: the
 * token file cannot be read, the address cannot be bound, or the server
 * cannot start. Every failure is described on stderr. */
int acr_srv_run(acr_ledger_t *ledger, const acr_srv_opts_t *opts);

#endif
