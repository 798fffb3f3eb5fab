/* cmd_serve.c - `accrue serve`: flags into the server's options (cli.md,
 * http.md, docs/integration-guide.md).
 *
 *     accrue serve [--listen HOST:PORT] [--token-file F] [limits...]
 *
 * Parses the flags into an acr_srv_opts_t, opens the ledger and hands both
 * to acr_srv_run (tools/server/server.h); the server itself knows nothing of
 * the command line.
 */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "server/server.h"

static const char usage_serve[] =
    "usage: accrue serve [--listen HOST:PORT] [--token-file F] [--header-bytes-max N]\n"
    "                    [--body-bytes-max N] [--header-timeout-ms N] [--idle-timeout-ms N]\n"
    "                    [--connections-max N] [--feed-buffer-bytes N] [--heartbeat-ms N]\n"
    "                    [--body-timeout-ms N] [--expensive-max N] [--slow-queue-max N]\n"
    "\n"
    "The HTTP API of http.md on HOST:PORT (default 127.0.0.1:8080; port 0 picks a free\n"
    "port, printed as `listening on http://HOST:PORT` on stderr). Requests need\n"
    "`Authorization: Bearer <token>` (see `accrue token`); --token-file F adds bootstrap\n"
    "tokens, one `SECRET ROLE [PARTNER]` per line (# comments), never stored. Limits default\n"
    "to http.md: headers 16384 bytes, body 67108864 bytes, head within 10000 ms, keep-alive\n"
    "idle 30000 ms (also the longest a body may stall), a whole body within 300000 ms,\n"
    "1024 connections; requests that replay or scan the whole log (KPI, verify, payout run,\n"
    "audit, a staff statement, promotions) run on 2 threads of their own (--expensive-max)\n"
    "with up to 64 more waiting (--slow-queue-max; 503 and Retry-After beyond); a feed\n"
    "subscriber may lag 1048576 bytes; heartbeat\n"
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
    OPT_SLOW_QUEUE,
};

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

static int parse_args(acr_cli_t *cli, int argc, char **argv, acr_srv_opts_t *o, const char **listen)
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
        {"slow-queue-max", required_argument, NULL, OPT_SLOW_QUEUE},
        ACR_CLI_COMMON_OPTS,
        {NULL, 0, NULL, 0}};
    int c, rc;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        uint64_t v = 0;
        if (c >= OPT_HEADER_BYTES && c <= OPT_SLOW_QUEUE && parse_limit(optarg, &v) != 0)
            return acr__usage(usage_serve, "%s wants a positive integer, not '%s'",
                              argv[optind - 1], optarg);
        switch (c) {
        case OPT_LISTEN:
            *listen = optarg;
            break;
        case OPT_TOKEN_FILE:
            o->token_file = optarg;
            break;
        case OPT_HEADER_BYTES:
            o->lim.header_bytes_max = v;
            break;
        case OPT_BODY_BYTES:
            o->lim.body_bytes_max = v;
            break;
        case OPT_HEADER_MS:
            o->lim.header_ms_max = v;
            break;
        case OPT_IDLE_MS:
            o->lim.idle_ms_max = v;
            break;
        case OPT_CONNS:
            o->lim.connections_max = v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
            break;
        case OPT_FEED_BYTES:
            o->lim.feed_pending_bytes_max = v;
            break;
        case OPT_HEARTBEAT_MS:
            o->lim.feed_heartbeat_ms = v;
            break;
        case OPT_BODY_MS:
            o->lim.body_ms_max = v;
            break;
        case OPT_EXPENSIVE:
            o->lim.expensive_max = v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
            break;
        case OPT_SLOW_QUEUE:
            o->lim.slow_queue_max = v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
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

int acr__cmd_serve(acr_cli_t *cli, int argc, char **argv)
{
    acr_srv_opts_t o;
    acr_srv_opts_default(&o);
    const char *listen = "127.0.0.1:8080";
    int rc = parse_args(cli, argc, argv, &o, &listen);
    if (rc >= 0)
        return rc;
    char host[256];
    if (!parse_listen(listen, host, sizeof host, &o.port))
        return acr__usage(usage_serve, "--listen wants HOST:PORT, not '%s'", listen);
    o.host = host;
    acr_ledger_t *ledger;
    if ((rc = acr__open_ledger(cli, &ledger)) != 0)
        return rc;
    rc = acr_srv_run(ledger, &o);
    acr_ledger_close(ledger);
    return rc == ACR_SRV_OK       ? ACR_EXIT_OK
           : rc == ACR_SRV_EUSAGE ? ACR_EXIT_USAGE
                                  : ACR_EXIT_RUNTIME;
}
