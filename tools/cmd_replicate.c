/* cmd_replicate.c - `accrue replicate --nats URL [--stream S]`: the committed log,
 * record by record, into a NATS JetStream stream.
 *
 * Each event of the ledger becomes the stream message with the same seq: the
 * payload is its stored bytes (chain hash || record), Nats-Msg-Id is
 * `<ledger id>:<seq>` and Nats-Expected-Last-Sequence is seq - 1, so the
 * stream can only ever hold seq 1..N in order: a message that would leave a
 * gap or repeat one is refused by the stream itself. Publishing is
 * asynchronous (a window of messages in flight); the first refused or
 * unanswered message stops the window, and the publisher resynchronises: it
 * waits for every ack still out, reads the stream's last seq L, checks that
 * message L is byte for byte the ledger's record L (else the stream belongs
 * to another ledger or another history: chain_broken, exit 5), and goes on
 * from L + 1. A restart after kill -9 does the same, so nothing is skipped
 * and nothing is published twice. A publish the stream answers as a duplicate (its
 * Nats-Msg-Id is already stored: normally this publisher's own message; else another
 * copy of the ledger, with the same id, that went another way) is checked the same way:
 * the stored message must be this ledger's record, else chain_broken. Without that, a
 * stream already holding another copy's seq s took this copy's s + 1, which chains to
 * neither, and both publishers went on.
 *
 * The ledger is read through short read snapshots only (one per chunk of
 * records; a poll every 50 ms once caught up): the writer never waits.
 */
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "accrue/replica.h"
#include "replica/rpl.h"

#define CHUNK 4096       /* records read per snapshot */
#define POLL_MS 50       /* head poll once caught up */
#define ACK_WAIT_MS 5000 /* an unanswered publish is a failure after this */
#define RETRY_SAY_MS 10000     /* a failing stream request is said at most this often */
#define RETRY_GIVE_UP_MS 60000 /* --no-follow gives up after failing this long (tests:
                                  ACR_RPL_GIVE_UP_MS) */

typedef struct pub {
    rpl_conn_t c;
    acr_ledger_t *l;
    char hex[33];
    char stream[RPL_NAME_MAX];
    char subject[RPL_NAME_MAX];
    int replicas;
    bool replicas_given;
    atomic_int failed;
    _Atomic uint64_t dup_seq; /* the lowest seq answered as a duplicate (0: none) */
    char fail_msg[512];
    uint64_t published; /* messages accepted by the client library this run */
} pub_t;

static const char usage_replicate[] =
    "usage: accrue replicate --nats URL [--stream NAME] [--replicas N] [--window N]\n"
    "                        [--follow|--no-follow]\n"
    "\n"
    "Publishes every committed event (seq, stored bytes, chain hash) in seq order to\n"
    "a NATS JetStream stream (default ACCRUE_<ledger id>, created when missing with\n"
    "N replicas, default 3), resuming after the stream's last message; then keeps\n"
    "publishing new commits as they happen, unless --no-follow.\n"
    "\n"
    "  --nats URL       NATS server(s), e.g. nats://127.0.0.1:4222 (comma-separated)\n"
    "  --stream NAME    the stream (default ACCRUE_<ledger id>)\n"
    "  --replicas N     replicas of a stream it creates (default 3; 1 on a single node)\n"
    "  --follow         keep publishing new commits (the default)\n"
    "  --no-follow      stop once the head is published (alias --once)\n"
    "  --window N       messages in flight (default 16384)\n";

/* Every publish's answer (the client library's thread): a refusal or a duplicate stops the
 * window, and the publisher resynchronises (publish). */
static void on_ack(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *arg)
{
    (void)js;
    pub_t *p = arg;
    if (pae != NULL && atomic_exchange(&p->failed, 1) == 0)
        snprintf(p->fail_msg, sizeof p->fail_msg, "%s (JetStream error %d%s%s)",
                 natsStatus_GetText(pae->Err), (int)pae->ErrCode, pae->ErrText ? ": " : "",
                 pae->ErrText ? pae->ErrText : "");
    if (pa != NULL && pa->Duplicate) {
        uint64_t d = atomic_load(&p->dup_seq);
        while ((d == 0 || pa->Sequence < d) &&
               !atomic_compare_exchange_weak(&p->dup_seq, &d, pa->Sequence)) {
        }
        if (atomic_exchange(&p->failed, 1) == 0)
            snprintf(p->fail_msg, sizeof p->fail_msg, "the stream already held message %" PRIu64
                     " (a duplicate id)", pa->Sequence);
    }
    natsMsg_Destroy(msg); /* ours to destroy with an ack handler */
}

/* 0 with *last set; 1 = try again later (message printed); < 0: exit code negated. */
static int ensure_stream(pub_t *p, uint64_t *last, bool quiet)
{
    jsStreamInfo *si = NULL;
    jsErrCode je = 0;
    natsStatus s = js_GetStreamInfo(&si, p->c.js, p->stream, NULL, &je);
    if (s == NATS_NOT_FOUND || je == JSStreamNotFoundErr) {
        jsStreamConfig cfg;
        jsStreamConfig_Init(&cfg);
        const char *subjects[1] = {p->subject};
        char desc[128];
        snprintf(desc, sizeof desc, "accrue ledger %s: its committed log, stream seq = ledger seq",
                 p->hex);
        cfg.Name = p->stream;
        cfg.Description = desc;
        cfg.Subjects = subjects;
        cfg.SubjectsLen = 1;
        cfg.Storage = js_FileStorage;
        cfg.Retention = js_LimitsPolicy;
        cfg.Replicas = p->replicas;
        cfg.DenyDelete = true;
        cfg.DenyPurge = true;
        je = 0;
        s = js_AddStream(&si, p->c.js, &cfg, NULL, &je);
        if (s != NATS_OK && !p->replicas_given && p->replicas > 1 &&
            (je == JSInsufficientResourcesErr || je == JSClusterNoPeersErr ||
             je == 10074 /* replicas > 1 not supported in non-clustered mode */)) {
            if (!quiet)
                fprintf(stderr, "accrue replicate: this NATS has no cluster for %d replicas: "
                                "creating %s with 1 replica\n", p->replicas, p->stream);
            p->replicas = 1;
            cfg.Replicas = 1;
            je = 0;
            s = js_AddStream(&si, p->c.js, &cfg, NULL, &je);
        }
        if (s == NATS_OK && !quiet)
            fprintf(stderr, "accrue replicate: created stream %s (subject %s, %d replica%s)\n",
                    p->stream, p->subject, p->replicas, p->replicas == 1 ? "" : "s");
    }
    if (s != NATS_OK && (je == JSStreamSubjectOverlapErr || je == JSStreamNameExistErr)) {
        /* the server's answer, not an outage: no retry can change it */
        rpl_diag_nats(ACR_EIO,
                      je == JSStreamSubjectOverlapErr
                          ? "creating the stream (another stream already carries this ledger's "
                            "subject: name it with --stream, or drop the other)"
                          : "creating the stream (the name is taken with another configuration)",
                      s, je);
        return -acr_err_exit_code(ACR_EIO);
    }
    if (s != NATS_OK) {
        if (!quiet)
            rpl_diag_nats(ACR_EIO, "stream info (retrying)", s, je);
        return 1;
    }
    int rc = 0;
    const jsStreamConfig *cfg = si->Config;
    if (cfg == NULL || cfg->SubjectsLen != 1 || strcmp(cfg->Subjects[0], p->subject) != 0) {
        acr__diag(ACR_ECHAIN_BROKEN, "stream %s does not carry this ledger's log (subject %s): "
                                     "it belongs to another ledger",
                  p->stream, p->subject);
        rc = -acr_err_exit_code(ACR_ECHAIN_BROKEN);
    }
    *last = si->State.LastSeq;
    jsStreamInfo_Destroy(si);
    return rc;
}

/* Message `last` of the stream (its last, or one answered as a duplicate) must be the
 * ledger's record `last`. */
static int check_tail(pub_t *p, uint64_t last, bool quiet)
{
    if (last == 0)
        return 0;
    acr_reader_t *r;
    acr_err_t err;
    acr_err_clear(&err);
    if (acr_reader_open(p->l, &r, &err) != 0)
        return -acr__fail(err.code, &err);
    if (last > acr_reader_head_seq(r)) {
        acr__diag(ACR_ECHAIN_BROKEN,
                  "stream %s holds %" PRIu64 " messages but this ledger only %" PRIu64
                  " events: it is another ledger's or another history's stream",
                  p->stream, last, acr_reader_head_seq(r));
        acr_reader_close(r);
        return -acr_err_exit_code(ACR_ECHAIN_BROKEN);
    }
    acr_stored_t rec;
    size_t n = 0;
    int rc = acr_log_read_stored(r, last, &rec, 1, &n, &err);
    if (rc != 0 || n != 1) {
        acr_reader_close(r);
        return -acr__fail(rc ? rc : ACR_ECORRUPT, &err);
    }
    natsMsg *m = NULL;
    jsErrCode je = 0;
    natsStatus s = js_GetMsg(&m, p->c.js, p->stream, last, NULL, &je);
    if (s != NATS_OK) {
        acr_reader_close(r);
        if (!quiet)
            rpl_diag_nats(ACR_EIO, "reading the stream's last message (retrying)", s, je);
        return 1;
    }
    const char *id = NULL;
    char want[80];
    snprintf(want, sizeof want, "%s:%" PRIu64, p->hex, last);
    bool same = natsMsgHeader_Get(m, "Nats-Msg-Id", &id) == NATS_OK && id != NULL &&
                strcmp(id, want) == 0 && (size_t)natsMsg_GetDataLength(m) == rec.len &&
                memcmp(natsMsg_GetData(m), rec.bytes, rec.len) == 0;
    char got[80]; /* the id lives in the message: copied before it is destroyed */
    snprintf(got, sizeof got, "%s", id != NULL ? id : "none");
    natsMsg_Destroy(m);
    acr_reader_close(r);
    if (!same) {
        acr__diag(ACR_ECHAIN_BROKEN,
                  "message %" PRIu64 " of stream %s is not this ledger's event %" PRIu64
                  " (id %s): another ledger or a rewritten history",
                  last, p->stream, last, got);
        return -acr_err_exit_code(ACR_ECHAIN_BROKEN);
    }
    return 0;
}

/* Publishes one record asynchronously. */
static natsStatus publish_one(pub_t *p, const acr_stored_t *s)
{
    char id[80];
    snprintf(id, sizeof id, "%s:%" PRIu64, p->hex, s->seq);
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MsgId = id;
    po.ExpectLastSeq = s->seq - 1; /* 0 (seq 1) means "no expectation" to the client */
    po.MaxWait = ACK_WAIT_MS;
    if (s->seq != 1)
        return js_PublishAsync(p->c.js, p->subject, s->bytes, (int)s->len, &po);
    /* the first message also carries the ledger's config: a replica is created from it */
    const acr_config_t *cfg = acr_ledger_config(p->l);
    char off[16];
    snprintf(off, sizeof off, "%d", (int)cfg->utc_offset_min);
    natsMsg *m = NULL;
    natsStatus st = natsMsg_Create(&m, p->subject, NULL, (const char *)s->bytes, (int)s->len);
    if (st == NATS_OK)
        st = natsMsgHeader_Set(m, RPL_HDR_LEDGER, p->hex);
    if (st == NATS_OK)
        st = natsMsgHeader_Set(m, RPL_HDR_PERIOD, rpl_period_name(cfg->period_kind));
    if (st == NATS_OK)
        st = natsMsgHeader_Set(m, RPL_HDR_OFFSET, off);
    if (st == NATS_OK)
        st = js_PublishMsgAsync(p->c.js, &m, &po);
    if (m != NULL)
        natsMsg_Destroy(m);
    return st;
}

/* Waits for every publish still in flight. */
static void drain(pub_t *p)
{
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MaxWait = 4 * ACK_WAIT_MS;
    if (js_PublishAsyncComplete(p->c.js, &po) != NATS_OK)
        atomic_store(&p->failed, 1);
}

/* Publishes from `next` on; returns 0 when --no-follow finished, 1 to resync, or
 * an exit code negated. */
static int publish_from(pub_t *p, uint64_t next, bool follow)
{
    acr_stored_t *recs = malloc(CHUNK * sizeof *recs);
    if (recs == NULL) {
        acr__diag(ACR_ENOMEM, "out of memory");
        return -ACR_EXIT_RUNTIME;
    }
    int rc = 0;
    while (!rpl_stop) {
        acr_reader_t *r;
        acr_err_t err;
        acr_err_clear(&err);
        if (acr_reader_open(p->l, &r, &err) != 0) {
            rc = -acr__fail(err.code, &err);
            break;
        }
        size_t n = 0;
        int erc = acr_log_read_stored(r, next, recs, CHUNK, &n, &err);
        natsStatus s = NATS_OK;
        for (size_t i = 0; i < n && s == NATS_OK && !atomic_load(&p->failed); i++)
            if ((s = publish_one(p, &recs[i])) == NATS_OK)
                p->published++, next = recs[i].seq + 1;
        acr_reader_close(r);
        if (erc != 0) { /* the ledger's own chain is broken: never publish past it */
            drain(p);
            rc = -acr__fail(erc, &err);
            break;
        }
        if (s != NATS_OK && atomic_exchange(&p->failed, 1) == 0)
            snprintf(p->fail_msg, sizeof p->fail_msg, "%s", natsStatus_GetText(s));
        if (atomic_load(&p->failed)) {
            rc = 1;
            break;
        }
        if (n == 0) {
            if (!follow) {
                drain(p);
                rc = atomic_load(&p->failed) ? 1 : 0;
                break;
            }
            rpl_sleep_ms(POLL_MS);
        }
    }
    free(recs);
    return rc;
}

typedef struct pub_opts {
    const char *url;
    const char *stream; /* NULL: ACCRUE_<ledger id> */
    uint64_t replicas;
    uint64_t window;
    bool follow;
    bool replicas_given;
} pub_opts_t;

/* -1 to go on, else the exit code. */
static int parse_opts(acr_cli_t *cli, int argc, char **argv, pub_opts_t *o)
{
    static const struct option opts[] = {
        {"nats", required_argument, NULL, 'n'},     {"stream", required_argument, NULL, 's'},
        {"replicas", required_argument, NULL, 'r'}, {"no-follow", no_argument, NULL, 'o'},
        {"once", no_argument, NULL, 'o'},           {"window", required_argument, NULL, 'w'},
        {"follow", no_argument, NULL, 'F'},
        ACR_CLI_COMMON_OPTS,                        {NULL, 0, NULL, 0},
    };
    *o = (pub_opts_t){NULL, NULL, 3, 16384, true, false};
    int c;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        if (c == 'n') {
            o->url = optarg;
        } else if (c == 's') {
            o->stream = optarg;
        } else if (c == 'r') {
            if (!acr__parse_u64(optarg, &o->replicas) || o->replicas < 1 || o->replicas > 5)
                return acr__usage(usage_replicate, "--replicas takes 1 to 5");
            o->replicas_given = true;
        } else if (c == 'w') {
            if (!acr__parse_u64(optarg, &o->window) || o->window < 1 || o->window > 1000000)
                return acr__usage(usage_replicate, "--window takes 1 to 1000000");
        } else if (c == 'o') {
            o->follow = false;
        } else if (c == 'F') {
            o->follow = true; /* reporting.md: the default, accepted when said */
        } else {
            int rc = acr__common_opt(cli, c, argv, usage_replicate);
            if (rc >= 0)
                return rc;
        }
    }
    if (optind != argc)
        return acr__usage(usage_replicate, "unexpected argument '%s'", argv[optind]);
    char why[256];
    if (!rpl_args_valid(o->url, o->stream, why, sizeof why))
        return acr__usage(usage_replicate, "%s", why);
    return -1;
}

/* Resynchronises and publishes until stopped or, with --no-follow, done.
 * Sets *first to the first seq this run published. 0 or an exit code. */
static int publish(pub_t *p, const pub_opts_t *o, bool quiet, uint64_t *first)
{
    uint64_t last = 0;
    int64_t failing_since = 0, said_at = 0; /* ms: a run of unanswered stream requests */
    const char *env = getenv("ACR_RPL_GIVE_UP_MS");
    int64_t give_up_ms = env != NULL && atoi(env) > 0 ? atoi(env) : RETRY_GIVE_UP_MS;
    while (!rpl_stop) {
        atomic_store(&p->failed, 0);
        int64_t now = rpl_now_ms();
        bool say = !quiet && (failing_since == 0 || now - said_at >= RETRY_SAY_MS);
        int s = ensure_stream(p, &last, !say);
        if (s == 0)
            s = check_tail(p, last, !say);
        /* a message answered as a duplicate must be this ledger's too */
        uint64_t dup = atomic_exchange(&p->dup_seq, 0);
        if (s == 0 && dup != 0 && dup != last)
            s = check_tail(p, dup, !say);
        if (s == 1 && dup != 0)
            atomic_store(&p->dup_seq, dup); /* not checked yet: again next time */
        if (s < 0)
            return -s;
        if (s == 1) { /* retried every 0.5 s, said every RETRY_SAY_MS */
            if (failing_since == 0)
                failing_since = now;
            if (say)
                said_at = now;
            if (!o->follow && now - failing_since >= give_up_ms) {
                acr__diag(ACR_EIO, "NATS did not answer the stream's requests for %.1f s: "
                                   "giving up (--no-follow); run it again once NATS answers",
                          (double)give_up_ms / 1000);
                return acr_err_exit_code(ACR_EIO);
            }
            rpl_sleep_ms(500);
            continue;
        }
        failing_since = 0;
        if (*first == 0)
            *first = last + 1;
        if ((s = publish_from(p, last + 1, o->follow)) < 0)
            return -s;
        if (s == 0)
            break; /* --no-follow: done, or stopped */
        /* a refused or unanswered publish: settle, then resume after the tail */
        drain(p);
        if (!quiet)
            fprintf(stderr, "accrue replicate: publishing interrupted (%s); resuming "
                            "after the stream's last message\n", p->fail_msg);
        rpl_sleep_ms(200);
    }
    return 0;
}

int acr__cmd_replicate(acr_cli_t *cli, int argc, char **argv)
{
    pub_opts_t o;
    int rc = parse_opts(cli, argc, argv, &o);
    if (rc >= 0)
        return rc;
    static pub_t p; /* static: the error callback may run until the connection closes */
    memset(&p, 0, sizeof p);
    if ((rc = acr__open_ledger(cli, &p.l)) != 0)
        return rc;
    acr_replica_info_t ri;
    acr_err_t err;
    acr_err_clear(&err);
    int is_replica = acr_replica_get(p.l, &ri, &err);
    if (is_replica != 0) {
        acr_ledger_close(p.l);
        if (is_replica < 0)
            return acr__fail(is_replica, &err);
        acr__diag(ACR_EREAD_ONLY, "%s is a read replica: only its primary publishes the log",
                  cli->ledger_dir);
        return acr_err_exit_code(ACR_EREAD_ONLY);
    }
    acr_ledger_id_hex(p.l, p.hex);
    if (o.stream != NULL)
        snprintf(p.stream, sizeof p.stream, "%s", o.stream);
    else
        rpl_stream_name(p.hex, p.stream);
    rpl_subject(p.hex, p.subject);
    p.replicas = (int)o.replicas;
    p.replicas_given = o.replicas_given;
    rpl_signals();
    if ((rc = rpl_connect(o.url, "accrue replicate", (int)o.window, on_ack, &p, &p.c)) != 0) {
        acr_ledger_close(p.l);
        return rc;
    }
    uint64_t first = 0, tail = 0;
    rc = publish(&p, &o, cli->quiet, &first);
    if (rpl_stop)
        drain(&p);
    if (rc == 0 && !rpl_stop && ensure_stream(&p, &tail, true) == 0 && !cli->quiet) {
        if (tail >= first)
            printf("published seq %" PRIu64 "..%" PRIu64 " to stream %s (%s)\n", first, tail,
                   p.stream, p.subject);
        else
            printf("stream %s already holds seq 1..%" PRIu64 ": nothing to publish\n",
                   p.stream, tail);
    }
    rpl_close(&p.c);
    acr_ledger_close(p.l);
    return rc;
}
