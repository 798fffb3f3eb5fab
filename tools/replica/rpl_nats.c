/* rpl_nats.c - what `replicate` and `follow` share: the NATS connection, the
 * stream's names, signals and diagnostics. */
#include <stdio.h>
#include <string.h>
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

int rpl_connect(const char *url, const char *name, int window, jsPubAckHandler ack_cb,
                void *ack_arg, rpl_conn_t *out)
{
    memset(out, 0, sizeof *out);
    natsOptions *o = NULL;
    natsStatus s = natsOptions_Create(&o);
    char list[4096];
    const char *servers[32];
    int count = 0;
    snprintf(list, sizeof list, "%s", url);
    for (char *save = NULL, *tok = strtok_r(list, ",", &save); tok != NULL && count < 32;
         tok = strtok_r(NULL, ",", &save))
        if (*tok != '\0')
            servers[count++] = tok;
    if (s == NATS_OK && count == 0)
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
        rpl_diag_nats(ACR_EIO, url, s, 0);
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
