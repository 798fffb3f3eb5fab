/* server.c - the server's one entry point, acr_srv_run: startup and
 * graceful shutdown (tools/server/server.h).
 *
 * Starts the writer thread and the slow lane's threads, listens, and runs the libuv loop until SIGTERM
 * or SIGINT. Then it stops accepting, closes idle connections and event
 * streams, lets every request in flight finish (its commit included) and
 * answers it with `Connection: close`, and returns once nothing is left.
 * The token file adds bootstrap tokens kept in memory only
 * (docs/integration-guide.md): lines `SECRET ROLE [PARTNER]`, `#` comments,
 * so a fresh deployment can be driven before any token exists in the
 * ledger. This file wires the layers together (the hooks of acr_srv_t) and
 * nothing calls back into it.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "accrue/replica.h"
#include "internal.h"

static void diag(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* `accrue: <code>: message` on stderr, like every accrue diagnostic. */
static void diag(int code, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "accrue: %s: ", acr_err_name(code));
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static void on_signal(uv_signal_t *sig, int signum)
{
    acr_srv_t *s = sig->data;
    if (s->stopping)
        return;
    fprintf(stderr,
            "{\"event\":\"shutdown\",\"signal\":%d,\"connections\":%u,"
            "\"in_flight\":%" PRIu64 "}\n",
            signum, s->conn_count, s->writer.in_flight);
    s->stopping = true;
    acr_srv_log_flush();
    uv_close((uv_handle_t *)&s->sigterm, NULL);
    uv_close((uv_handle_t *)&s->sigint, NULL);
    acr_srv_feed_stop(s);
    acr_srv_http_stop(s);
    acr_srv_maybe_finish(s);
}

/* Parses SECRET ROLE [PARTNER] lines. */
static int load_token_file(acr_srv_t *s, const char *path)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        diag(ACR_EIO, "%s: %s", path, strerror(errno));
        return ACR_SRV_ERUNTIME;
    }
    char line[1024];
    unsigned lineno = 0;
    int rc = 0;
    while (rc == 0 && fgets(line, sizeof line, f) != NULL) {
        lineno++;
        char *save = NULL, *secret = strtok_r(line, " \t\r\n", &save);
        if (secret == NULL || secret[0] == '#')
            continue;
        char *role_s = strtok_r(NULL, " \t\r\n", &save);
        char *partner = strtok_r(NULL, " \t\r\n", &save);
        int role = role_s ? acr_role_from_name(role_s) : ACR_ROLE_NONE;
        bool bad = strlen(secret) < 16 || role == ACR_ROLE_NONE ||
                   (role == ACR_ROLE_PARTNER) != (partner != NULL) ||
                   (partner && strlen(partner) > ACR_ID_LEN_MAX) ||
                   strtok_r(NULL, " \t\r\n", &save) != NULL;
        if (bad) {
            diag(ACR_EUSAGE,
                 "%s: line %u: want `SECRET ROLE [PARTNER]` (secret of 16+ "
                 "characters; PARTNER only and always with role partner)",
                 path, lineno);
            rc = ACR_SRV_EUSAGE;
            break;
        }
        acr_srv_boot_token_t *grown = realloc(s->boot, (s->boot_count + 1) * sizeof *s->boot);
        if (grown == NULL) {
            rc = ACR_SRV_ERUNTIME;
            break;
        }
        s->boot = grown;
        acr_srv_boot_token_t *t = &s->boot[s->boot_count++];
        memset(t, 0, sizeof *t);
        acr_token_hash(secret, strlen(secret), t->hash);
        t->role = role;
        if (partner)
            snprintf(t->partner, sizeof t->partner, "%s", partner);
        snprintf(t->name, sizeof t->name, "file:%u", lineno);
    }
    fclose(f);
    return rc;
}

static void close_walk(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

static int run(acr_srv_t *s, const char *host, int port)
{
    int rc = acr_srv_http_listen(s, host, port);
    if (rc != 0) {
        diag(ACR_EIO, "cannot listen on %s:%d: %s", host, port, uv_strerror(rc));
        return ACR_SRV_ERUNTIME;
    }
    struct sockaddr_storage addr;
    int len = sizeof addr;
    uv_tcp_getsockname(&s->listener, (struct sockaddr *)&addr, &len);
    char name[64] = "?";
    int bound = port;
    if (addr.ss_family == AF_INET6) {
        uv_ip6_name((struct sockaddr_in6 *)&addr, name, sizeof name);
        bound = ntohs(((struct sockaddr_in6 *)&addr)->sin6_port);
    } else {
        uv_ip4_name((struct sockaddr_in *)&addr, name, sizeof name);
        bound = ntohs(((struct sockaddr_in *)&addr)->sin_port);
    }
    fprintf(stderr, "accrue: listening on http://%s%s%s:%d (ledger %s)\n",
            addr.ss_family == AF_INET6 ? "[" : "", name, addr.ss_family == AF_INET6 ? "]" : "",
            bound, acr_ledger_path(s->ledger));
    uv_signal_init(s->loop, &s->sigterm);
    uv_signal_init(s->loop, &s->sigint);
    s->sigterm.data = s->sigint.data = s;
    uv_signal_start(&s->sigterm, on_signal, SIGTERM);
    uv_signal_start(&s->sigint, on_signal, SIGINT);
    uv_run(s->loop, UV_RUN_DEFAULT);
    uv_walk(s->loop, close_walk, NULL);
    uv_run(s->loop, UV_RUN_DEFAULT);
    acr_srv_log_flush();
    fprintf(stderr, "accrue: stopped\n");
    return ACR_SRV_OK;
}

void acr_srv_opts_default(acr_srv_opts_t *o)
{
    memset(o, 0, sizeof *o);
    o->host = "127.0.0.1";
    o->port = 8080;
    o->lim =
        (acr_srv_limits_t){16 * 1024, 64u << 20, 10000, 30000, 300000, 2, 1024, 1u << 20, 15000,
                           64};
}

int acr_srv_run(acr_ledger_t *ledger, const acr_srv_opts_t *opts)
{
    static acr_srv_t server;
    acr_srv_t *s = &server;
    memset(s, 0, sizeof *s);
    s->lim = opts->lim;
    s->ledger = ledger;
    s->replica = acr_replica_get(ledger, NULL, NULL) == 1;
    s->on_head = acr_srv_authorize;
    s->on_request = acr_srv_dispatch;
    s->on_job_done = acr_srv_job_done;
    s->idem_format = acr_srv_idem_format;
    s->on_conn_closed = acr_srv_feed_drop;
    const char *host = opts->host;
    int port = opts->port, rc;
    uint8_t probe[ACR_TOKEN_HASH_LEN];
    if (acr_token_hash("", 0, probe) != 0) { /* initialises libsodium before any thread */
        diag(ACR_EIO, "libsodium cannot initialise");
        return ACR_SRV_ERUNTIME;
    }
    if (opts->token_file != NULL && (rc = load_token_file(s, opts->token_file)) != 0)
        return rc;
    if (getenv("UV_THREADPOOL_SIZE") == NULL)
        setenv("UV_THREADPOOL_SIZE", "8", 0); /* reads are blocking LMDB calls */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
    if ((s->tokens = acr_token_cache_new(s->ledger)) == NULL) {
        free(s->boot);
        return ACR_SRV_ERUNTIME;
    }
    s->loop = uv_default_loop();
    s->loop->data = s;
    rc = acr_srv_writer_start(s);
    if (rc == 0)
        rc = acr_srv_lane_start(s);
    if (rc == 0)
        rc = acr_srv_feed_init(s);
    int exit_code = rc == 0 ? run(s, host, port) : ACR_SRV_ERUNTIME;
    if (rc != 0)
        diag(ACR_EIO, "cannot start the server");
    if (exit_code != 0) {
        s->stopping = true;
        uv_walk(s->loop, close_walk, NULL);
        uv_run(s->loop, UV_RUN_DEFAULT);
    }
    acr_srv_writer_join(s);
    acr_srv_lane_join(s);
    acr_srv_log_flush();
    uv_loop_close(s->loop);
    acr_token_cache_free(s->tokens);
    free(s->boot);
    return exit_code;
}
