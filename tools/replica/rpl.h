/* rpl.h - the replication commands' private declarations (tools/replica/).
 *
 * `accrue replicate` (../cmd_replicate.c) publishes the committed log of a ledger
 * to a NATS JetStream stream; `accrue follow` (../cmd_follow.c) turns a ledger
 * directory into a read replica of that stream. rpl_nats.c holds what both
 * share: the connection, the names, the message layout and diagnostics.
 *
 * The stream (docs/replication.md):
 *   name     ACCRUE_<ledger id> unless --stream; subject accrue.<ledger id>.log
 *   message  seq N of the ledger is stream seq N; payload = the stored bytes of
 *            the log table at N: chain hash (16 bytes) || record
 *   headers  Nats-Msg-Id: <ledger id>:<seq> on every message; message 1 also
 *            carries the ledger's config (Accrue-Ledger-Id, Accrue-Period,
 *            Accrue-Utc-Offset-Min), from which a replica creates itself.
 * Only include/accrue/ headers are included from outside this folder.
 */
#ifndef ACCRUE_TOOLS_REPLICA_RPL_H
#define ACCRUE_TOOLS_REPLICA_RPL_H

#include <nats/nats.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "accrue/log.h"

#define RPL_HDR_LEDGER "Accrue-Ledger-Id"
#define RPL_HDR_PERIOD "Accrue-Period"
#define RPL_HDR_OFFSET "Accrue-Utc-Offset-Min"
#define RPL_STREAM_PREFIX "ACCRUE_"
#define RPL_NAME_MAX 64

typedef struct rpl_conn {
    natsConnection *nc;
    jsCtx *js;
} rpl_conn_t;

/* Set by SIGINT / SIGTERM once rpl_signals ran. */
extern volatile sig_atomic_t rpl_stop;
void rpl_signals(void);

#define RPL_SERVERS_MAX 32    /* servers in one --nats list (libnats takes an array) */
#define RPL_URL_LIST_MAX 4096 /* bytes of one --nats list */

/* Checks a --nats argument before anything connects: a comma-separated list (empty
 * entries and spaces around an entry are ignored) of one to RPL_SERVERS_MAX servers, each
 * [nats:// | tls://][user[:password] | token @]HOST[:PORT][/], HOST a name, an IPv4
 * address or a bracketed IPv6 one, PORT 1 to 65535 (default 4222). What libnats would
 * only refuse at connect time (`not a url`, `http://x`, `host:notaport`) is a usage
 * error (exit 2), not a NATS outage. Returns true, or false with the reason in why. */
bool rpl_url_valid(const char *url, char *why, size_t why_len);

/* The --nats and --stream arguments of both commands, checked alike before anything
 * connects: --nats missing or malformed (rpl_url_valid), or a stream name JetStream would
 * refuse (empty, RPL_NAME_MAX bytes or more, or holding a space, a tab, '.', '*' or '>').
 * stream may be NULL (the default name). Returns true, or false with the usage error's
 * message in why. */
bool rpl_args_valid(const char *url, const char *stream, char *why, size_t why_len);

/* Connects to url (a comma-separated list of servers is allowed), reconnecting
 * forever, with a JetStream context whose async publishes' answers (acks and errors) go
 * to ack_cb (may be NULL; it destroys the message it is given) and allow `window`
 * messages in flight. Prints the diagnostic and returns an exit code on failure, 0 on
 * success. */
int rpl_connect(const char *url, const char *name, int window, jsPubAckHandler ack_cb,
                void *ack_arg, rpl_conn_t *out);
void rpl_close(rpl_conn_t *c);

/* The default stream name and the subject of a ledger id (32 hex digits). */
void rpl_stream_name(const char *ledger_hex, char out[RPL_NAME_MAX]);
void rpl_subject(const char *ledger_hex, char out[RPL_NAME_MAX]);

/* `accrue: <code>: <what>: <nats status text> (<JetStream error>)` on stderr. */
void rpl_diag_nats(int code, const char *what, natsStatus s, jsErrCode jerr);

/* Wall-clock milliseconds; sleeps ms unless stopped. */
int64_t rpl_now_ms(void);
void rpl_sleep_ms(int ms);

/* Names of the config headers' values. */
const char *rpl_period_name(acr_period_kind_t k);

#endif
