/* serve.c - `accrue serve`: options, startup and graceful shutdown.
 *
 *     accrue serve [--listen HOST:PORT] [--token-file F] [limits...]
 *
 * Opens the ledger once, starts the writer thread, listens, and runs the
 * libuv loop until SIGTERM or SIGINT. Then it stops accepting, closes idle
 * connections and event streams, lets every request in flight finish (its
 * commit included) and answers it with `Connection: close`, and exits 0
 * once nothing is left. --token-file adds bootstrap tokens kept in memory
 * only (docs/integration-guide.md): lines `SECRET ROLE [PARTNER]`, `#`
 * comments, so a fresh deployment can be driven before any token exists in
 * the ledger.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "serve.h"

static const char usage_serve[] =
    "usage: accrue serve [--listen HOST:PORT] [--token-file F] [--header-bytes-max N]\n"
    "                    [--body-bytes-max N] [--header-timeout-ms N] [--idle-timeout-ms N]\n"
    "                    [--connections-max N] [--feed-buffer-bytes N] [--heartbeat-ms N]\n"
    "                    [--body-timeout-ms N] [--expensive-max N]\n"
    "\n"
    "The HTTP API of http.md on HOST:PORT (default 127.0.0.1:8080; port 0 picks a free\n"
    "port, printed as `listening on http://HOST:PORT` on stderr). Requests need\n"
    "`Authorization: Bearer <token>` (see `accrue token`); --token-file F adds bootstrap\n"
    "tokens, one `SECRET ROLE [PARTNER]` per line (# comments), never stored. Limits default\n"
    "to http.md: headers 16384 bytes, body 67108864 bytes, head within 10000 ms, keep-alive\n"
    "idle 30000 ms (also the longest a body may stall), a whole body within 300000 ms,\n"
    "1024 connections, 2 expensive requests (verify, payout run, audit) at once (503 and\n"
    "Retry-After beyond); a feed subscriber may lag 1048576 bytes; heartbeat\n"
    "every 15000 ms. One access-log line (JSON) per request on stderr. SIGTERM/SIGINT\n"
    "finish the requests in flight and exit 0.\n";

enum {
    OPT_LISTEN = 0x200,
    OPT_TOKEN_FILE,
    OPT_HEADER_BYTES,
    OPT_BODY_BYTES,
    OPT_HEADER_MS,
    OPT_IDLE_MS,
    OPT_CONNS,
    OPT_FEED_BYTES,
    OPT_HEARTBEAT_MS,
    OPT_BODY_MS,
    OPT_EXPENSIVE,
};

static srv_t *the_server;

void srv_maybe_finish(srv_t *s)
{
    if (!s->stopping || s->finished || s->conn_count > 0 || s->pool_jobs > 0 ||
        s->writer.in_flight > 0)
        return;
    s->finished = true;
    uv_close((uv_handle_t *)&s->writer.async, NULL);
}

static void on_signal(uv_signal_t *sig, int signum)
{
    srv_t *s = sig->data;
    if (s->stopping)
        return;
    fprintf(stderr,
            "{\"event\":\"shutdown\",\"signal\":%d,\"connections\":%u,"
            "\"in_flight\":%" PRIu64 "}\n",
            signum, s->conn_count, s->writer.in_flight);
    s->stopping = true;
    srv_log_flush();
    uv_close((uv_handle_t *)&s->sigterm, NULL);
    uv_close((uv_handle_t *)&s->sigint, NULL);
    srv_feed_stop(s);
    srv_http_stop(s);
    srv_maybe_finish(s);
}

/* Parses SECRET ROLE [PARTNER] lines. */
static int load_token_file(srv_t *s, const char *path)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        acr__diag(ACR_EIO, "%s: %s", path, strerror(errno));
        return ACR_EXIT_RUNTIME;
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
            acr__diag(ACR_EUSAGE,
                      "%s: line %u: want `SECRET ROLE [PARTNER]` (secret of 16+ "
                      "characters; PARTNER only and always with role partner)",
                      path, lineno);
            rc = ACR_EXIT_USAGE;
            break;
        }
        srv_boot_token_t *grown = realloc(s->boot, (s->boot_count + 1) * sizeof *s->boot);
        if (grown == NULL) {
            rc = ACR_EXIT_RUNTIME;
            break;
        }
        s->boot = grown;
        srv_boot_token_t *t = &s->boot[s->boot_count++];
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

static bool parse_listen(const char *arg, char *host, size_t cap, int *port)
{
    const char *colon = strrchr(arg, ':');
    if (colon == NULL || colon == arg || (size_t)(colon - arg) >= cap)
        return false;
    uint64_t p;
    if (!acr__parse_u64(colon + 1, &p) || p > 65535)
        return false;
    size_t n = (size_t)(colon - arg);
    if (arg[0] == '[' && n >= 2 && arg[n - 1] == ']') { /* [::1]:8080 */
        memcpy(host, arg + 1, n - 2);
        host[n - 2] = '\0';
    } else {
        memcpy(host, arg, n);
        host[n] = '\0';
    }
    *port = (int)p;
    return true;
}

static int parse_limit(const char *arg, uint64_t *out)
{
    return acr__parse_u64(arg, out) && *out > 0 ? 0 : -1;
}

static int parse_args(acr_cli_t *cli, int argc, char **argv, srv_t *s, const char **listen,
                      const char **token_file)
{
    static const struct option opts[] = {
        {"listen", required_argument, NULL, OPT_LISTEN},
        {"token-file", required_argument, NULL, OPT_TOKEN_FILE},
        {"header-bytes-max", required_argument, NULL, OPT_HEADER_BYTES},
        {"body-bytes-max", required_argument, NULL, OPT_BODY_BYTES},
        {"header-timeout-ms", required_argument, NULL, OPT_HEADER_MS},
        {"idle-timeout-ms", required_argument, NULL, OPT_IDLE_MS},
        {"connections-max", required_argument, NULL, OPT_CONNS},
        {"feed-buffer-bytes", required_argument, NULL, OPT_FEED_BYTES},
        {"heartbeat-ms", required_argument, NULL, OPT_HEARTBEAT_MS},
        {"body-timeout-ms", required_argument, NULL, OPT_BODY_MS},
        {"expensive-max", required_argument, NULL, OPT_EXPENSIVE},
        ACR_CLI_COMMON_OPTS,
        {NULL, 0, NULL, 0}};
    int c, rc;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        uint64_t v = 0;
        if (c >= OPT_HEADER_BYTES && c <= OPT_EXPENSIVE && parse_limit(optarg, &v) != 0)
            return acr__usage(usage_serve, "%s wants a positive integer, not '%s'",
                              argv[optind - 1], optarg);
        switch (c) {
        case OPT_LISTEN:
            *listen = optarg;
            break;
        case OPT_TOKEN_FILE:
            *token_file = optarg;
            break;
        case OPT_HEADER_BYTES:
            s->lim.header_bytes_max = v;
            break;
        case OPT_BODY_BYTES:
            s->lim.body_bytes_max = v;
            break;
        case OPT_HEADER_MS:
            s->lim.header_ms_max = v;
            break;
        case OPT_IDLE_MS:
            s->lim.idle_ms_max = v;
            break;
        case OPT_CONNS:
            s->lim.connections_max = v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
            break;
        case OPT_FEED_BYTES:
            s->lim.feed_pending_bytes_max = v;
            break;
        case OPT_HEARTBEAT_MS:
            s->lim.feed_heartbeat_ms = v;
            break;
        case OPT_BODY_MS:
            s->lim.body_ms_max = v;
            break;
        case OPT_EXPENSIVE:
            s->lim.expensive_max = v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
            break;
        default:
            if ((rc = acr__common_opt(cli, c, argv, usage_serve)) >= 0)
                return rc;
        }
    }
    if (optind != argc)
        return acr__usage(usage_serve, "serve takes no argument");
    return -1;
}

static void close_walk(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

static int run(srv_t *s, const char *host, int port)
{
    int rc = srv_http_listen(s, host, port);
    if (rc != 0) {
        acr__diag(ACR_EIO, "cannot listen on %s:%d: %s", host, port, uv_strerror(rc));
        return ACR_EXIT_RUNTIME;
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
    srv_log_flush();
    fprintf(stderr, "accrue: stopped\n");
    return ACR_EXIT_OK;
}

int acr__cmd_httpd(acr_cli_t *cli, int argc, char **argv)
{
    static srv_t server;
    srv_t *s = &server;
    memset(s, 0, sizeof *s);
    s->lim = (srv_limits_t){16 * 1024, 64u << 20, 10000, 30000, 300000, 2, 1024, 1u << 20, 15000};
    const char *listen = "127.0.0.1:8080", *token_file = NULL;
    int rc = parse_args(cli, argc, argv, s, &listen, &token_file);
    if (rc >= 0)
        return rc;
    char host[256];
    int port;
    if (!parse_listen(listen, host, sizeof host, &port))
        return acr__usage(usage_serve, "--listen wants HOST:PORT, not '%s'", listen);
    uint8_t probe[ACR_TOKEN_HASH_LEN];
    if (acr_token_hash("", 0, probe) != 0) { /* initialises libsodium before any thread */
        acr__diag(ACR_EIO, "libsodium cannot initialise");
        return ACR_EXIT_RUNTIME;
    }
    if (token_file != NULL && (rc = load_token_file(s, token_file)) != 0)
        return rc;
    if (getenv("UV_THREADPOOL_SIZE") == NULL)
        setenv("UV_THREADPOOL_SIZE", "8", 0); /* reads are blocking LMDB calls */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
    if ((rc = acr__open_ledger(cli, &s->ledger)) != 0) {
        free(s->boot);
        return rc;
    }
    if ((s->tokens = acr_token_cache_new(s->ledger)) == NULL) {
        acr_ledger_close(s->ledger);
        free(s->boot);
        return ACR_EXIT_RUNTIME;
    }
    s->loop = uv_default_loop();
    s->loop->data = s;
    the_server = s;
    rc = srv_writer_start(s);
    if (rc == 0)
        rc = srv_feed_init(s);
    int exit_code = rc == 0 ? run(s, host, port) : ACR_EXIT_RUNTIME;
    if (rc != 0)
        acr__diag(ACR_EIO, "cannot start the server");
    if (exit_code != 0) {
        s->stopping = true;
        uv_walk(s->loop, close_walk, NULL);
        uv_run(s->loop, UV_RUN_DEFAULT);
    }
    srv_writer_join(s);
    srv_log_flush();
    uv_loop_close(s->loop);
    acr_token_cache_free(s->tokens);
    acr_ledger_close(s->ledger);
    free(s->boot);
    return exit_code;
}
