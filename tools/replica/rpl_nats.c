/* rpl_nats.c - what `replicate` and `follow` share: the NATS connection, the
 * stream's names, signals and diagnostics. */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "accrue/error.h"
#include "rpl.h"

volatile sig_atomic_t rpl_stop = 0;

static void on_signal(int sig)
{
    (void)sig;
    rpl_stop = 1;
}

void rpl_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

int64_t rpl_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void rpl_sleep_ms(int ms)
{
    for (int i = 0; i < ms && !rpl_stop; i += 10) {
        struct timespec ts = {0, 10 * 1000000L};
        nanosleep(&ts, NULL);
    }
}

void rpl_stream_name(const char *ledger_hex, char out[RPL_NAME_MAX])
{
    snprintf(out, RPL_NAME_MAX, RPL_STREAM_PREFIX "%s", ledger_hex);
}

void rpl_subject(const char *ledger_hex, char out[RPL_NAME_MAX])
{
    snprintf(out, RPL_NAME_MAX, "accrue.%s.log", ledger_hex);
}

const char *rpl_period_name(acr_period_kind_t k)
{
    return k == ACR_PERIOD_QUARTER ? "quarter" : "month";
}

void rpl_diag_nats(int code, const char *what, natsStatus s, jsErrCode jerr)
{
    const char *last = nats_GetLastError(NULL);
    if (last != NULL && *last == '\0')
        last = NULL; /* no detail: no trailing ": " */
    if (jerr == JSNotEnabledErr || jerr == JSNotEnabledForAccountErr)
        fprintf(stderr, "accrue: %s: %s: no JetStream answers on this NATS (JetStream error "
                        "%d): is it enabled (nats-server -js, or a jetstream block in its "
                        "configuration) and, in a cluster, ready?\n",
                acr_err_name(code), what, (int)jerr);
    else if (jerr != 0)
        fprintf(stderr, "accrue: %s: %s: %s (JetStream error %d)%s%s\n", acr_err_name(code), what,
                natsStatus_GetText(s), (int)jerr, last ? ": " : "", last ? last : "");
    else
        fprintf(stderr, "accrue: %s: %s: %s%s%s\n", acr_err_name(code), what,
                natsStatus_GetText(s), last ? ": " : "", last ? last : "");
}

static bool say(char *why, size_t why_len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static bool say(char *why, size_t why_len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, why_len, fmt, ap);
    va_end(ap);
    return false;
}

/* The port after a host's ':' up to an optional trailing '/': 1 to 65535. */
static bool port_valid(const char *p, int index, char *why, size_t why_len)
{
    size_t digits = strspn(p, "0123456789");
    const char *end = p + digits;
    if (digits == 0 || digits > 5 || (*end != '\0' && *end != '/') || atoi(p) < 1 ||
        atoi(p) > 65535)
        return say(why, why_len, "server %d: port '%.*s' is not 1 to 65535", index,
                   (int)strcspn(p, "/"), p);
    if (end[0] == '/' && end[1] != '\0')
        return say(why, why_len, "server %d: a path after the port", index);
    return true;
}

/* One entry of the list, spaces around it removed. The reason names only the faulty part
 * (never the user part: it may hold a password). */
static bool server_valid(char *e, int index, char *why, size_t why_len)
{
    char *host = e;
    char *scheme_end = strstr(e, "://");
    if (scheme_end != NULL) {
        *scheme_end = '\0';
        if (strcasecmp(e, "nats") != 0 && strcasecmp(e, "tls") != 0)
            return say(why, why_len, "server %d: scheme '%.20s://' is not nats:// or tls://",
                       index, e);
        host = scheme_end + 3;
    }
    char *at = strrchr(host, '@');
    if (at != NULL) {
        for (const char *u = host; u < at; u++)
            if (isspace((unsigned char)*u) || iscntrl((unsigned char)*u))
                return say(why, why_len, "server %d: a space in its user part", index);
        host = at + 1;
    }
    size_t n;
    if (host[0] == '[') { /* an IPv6 address */
        n = strspn(host + 1, "0123456789abcdefABCDEF:.");
        char after = n > 0 && host[n + 1] == ']' ? host[n + 2] : 'x';
        if (after != '\0' && after != ':' && after != '/')
            return say(why, why_len, "server %d: '%.60s' is not a bracketed IPv6 address",
                       index, host);
        n += 2;
    } else {
        n = strspn(host, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_");
        if (host[0] == '\0')
            return say(why, why_len, "server %d: no host", index);
        if (n == 0 || (host[n] != '\0' && host[n] != ':' && host[n] != '/'))
            return say(why, why_len, "server %d: '%.60s' is not a host name or address", index,
                       host);
    }
    char *rest = host + n;
    if (rest[0] == ':')
        return port_valid(rest + 1, index, why, why_len);
    if (rest[0] == '/' && rest[1] != '\0')
        return say(why, why_len, "server %d: a path after the host", index);
    return true;
}

/* Splits a --nats list (buf, a copy the entries then point into) at its commas, spaces around
 * an entry removed and empty entries skipped: at most max entries into out. Returns how many
 * there are, max + 1 when there are more. */
static int split_servers(char *buf, const char **out, int max)
{
    int count = 0;
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok != NULL;
         tok = strtok_r(NULL, ",", &save)) {
        while (isspace((unsigned char)*tok))
            tok++;
        size_t len = strlen(tok);
        while (len > 0 && isspace((unsigned char)tok[len - 1]))
            tok[--len] = '\0';
        if (len == 0)
            continue;
        if (count == max)
            return max + 1;
        out[count++] = tok;
    }
    return count;
}

/* The servers of a list for a diagnostic, without their user parts (they may hold a
 * password): "nats://127.0.0.1:4222, 10.0.0.2:4222". */
static void servers_shown(const char *const *servers, int count, char *out, size_t cap)
{
    size_t used = 0;
    out[0] = '\0';
    for (int i = 0; i < count && used + 1 < cap; i++) {
        const char *e = servers[i], *scheme = strstr(e, "://"), *host = scheme ? scheme + 3 : e;
        const char *at = strrchr(host, '@');
        int w = snprintf(out + used, cap - used, "%s%.*s%s", i ? ", " : "",
                         scheme ? (int)(host - e) : 0, e, at ? at + 1 : host);
        used = w < 0 ? used : (size_t)w < cap - used ? used + (size_t)w : cap - 1;
    }
}

bool rpl_url_valid(const char *url, char *why, size_t why_len)
{
    if (strlen(url) >= RPL_URL_LIST_MAX)
        return say(why, why_len, "longer than %d bytes", RPL_URL_LIST_MAX - 1);
    char list[RPL_URL_LIST_MAX];
    const char *servers[RPL_SERVERS_MAX];
    snprintf(list, sizeof list, "%s", url);
    int count = split_servers(list, servers, RPL_SERVERS_MAX);
    if (count > RPL_SERVERS_MAX)
        return say(why, why_len, "more than %d servers", RPL_SERVERS_MAX);
    for (int i = 0; i < count; i++)
        if (!server_valid((char *)servers[i], i + 1, why, why_len))
            return false;
    return count > 0 || say(why, why_len, "no server");
}

bool rpl_args_valid(const char *url, const char *stream, char *why, size_t why_len)
{
    char bad[160];
    if (url == NULL || strspn(url, ", ") == strlen(url))
        return say(why, why_len, "--nats URL is required (nats://HOST:PORT, or a "
                                 "comma-separated list)");
    if (!rpl_url_valid(url, bad, sizeof bad))
        return say(why, why_len, "--nats: %s (want nats://HOST:PORT, tls://HOST:PORT or "
                                 "HOST:PORT, comma-separated)",
                   bad);
    if (stream != NULL && (stream[0] == '\0' || strlen(stream) >= RPL_NAME_MAX ||
                           strpbrk(stream, " \t.*>") != NULL))
        return say(why, why_len, "bad stream name '%.*s' (1 to %d bytes, no space, tab, '.', "
                                 "'*' or '>')",
                   RPL_NAME_MAX, stream, RPL_NAME_MAX - 1);
    return true;
}

int rpl_connect(const char *url, const char *name, int window, jsPubAckHandler ack_cb,
                void *ack_arg, rpl_conn_t *out)
{
    memset(out, 0, sizeof *out);
    natsOptions *o = NULL;
    natsStatus s = natsOptions_Create(&o);
    char list[RPL_URL_LIST_MAX];
    const char *servers[RPL_SERVERS_MAX];
    snprintf(list, sizeof list, "%s", url);
    int count = split_servers(list, servers, RPL_SERVERS_MAX); /* checked: rpl_url_valid */
    if (s == NATS_OK && (count == 0 || count > RPL_SERVERS_MAX))
        s = NATS_INVALID_ARG;
    if (s == NATS_OK)
        s = natsOptions_SetServers(o, servers, count);
    if (s == NATS_OK)
        s = natsOptions_SetName(o, name);
    if (s == NATS_OK)
        s = natsOptions_SetMaxReconnect(o, -1); /* a node may come back any time */
    if (s == NATS_OK)
        s = natsOptions_SetReconnectWait(o, 200);
    if (s == NATS_OK)
        s = natsOptions_SetReconnectBufSize(o, 64 << 20);
    if (s == NATS_OK)
        s = natsOptions_SetTimeout(o, 5000);
    if (s == NATS_OK)
        s = natsOptions_SetRetryOnFailedConnect(o, false, NULL, NULL);
    if (s == NATS_OK)
        s = natsConnection_Connect(&out->nc, o);
    natsOptions_Destroy(o);
    if (s != NATS_OK) {
        char shown[RPL_URL_LIST_MAX];
        servers_shown(servers, count > RPL_SERVERS_MAX ? RPL_SERVERS_MAX : count, shown,
                      sizeof shown);
        rpl_diag_nats(ACR_EIO, shown, s, 0);
        return acr_err_exit_code(ACR_EIO);
    }
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Wait = 10000;
    jo.PublishAsync.MaxPending = window > 0 ? window : 1;
    jo.PublishAsync.AckHandler = ack_cb;
    jo.PublishAsync.AckHandlerClosure = ack_arg;
    jo.PublishAsync.StallWait = 30000; /* a full window waits for acks, not fails */
    s = natsConnection_JetStream(&out->js, out->nc, &jo);
    if (s != NATS_OK) {
        rpl_diag_nats(ACR_EIO, "JetStream context", s, 0);
        rpl_close(out);
        return acr_err_exit_code(ACR_EIO);
    }
    return 0;
}

void rpl_close(rpl_conn_t *c)
{
    if (c->js != NULL)
        jsCtx_Destroy(c->js);
    if (c->nc != NULL) {
        natsConnection_Close(c->nc);
        natsConnection_Destroy(c->nc);
    }
    memset(c, 0, sizeof *c);
}
