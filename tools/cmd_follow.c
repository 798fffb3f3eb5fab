/* cmd_follow.c - `accrue follow --nats URL [--stream S]`: a read replica.
 *
 * On an empty (or missing) ledger directory, message 1 of the stream gives the
 * primary's config (ledger id, period kind, UTC offset): the replica is
 * created with it, so its chain starts from the same genesis hash, and marked
 * read-only. Then a durable pull consumer of its own (name stored in the
 * marker) delivers the stream from the replica's head + 1; each fetched batch
 * is applied by acr_replica_apply (link by link, byte for byte, every
 * projection derived as on the primary) in durable transactions, and only
 * then acknowledged. The replica's committed head, not the consumer's ack
 * floor, is the position: at every start the consumer is re-anchored at head
 * + 1, so an ack lost to a crash neither skips nor repeats a record.
 *
 * Every message's Nats-Msg-Id must be `<this ledger's id>:<its stream seq>`:
 * a stream of another ledger is refused (chain_broken, exit 5), as is a record
 * whose hash does not link to the replica's head.
 *
 * A request NATS does not answer (a leader election of the stream, its consumer or the
 * meta group; a node killed or restarting) is never taken for an answer: it is said, at
 * most every 10 s, and retried with a growing pause until a leader answers. Only --once
 * gives up, with exit 1, after 30 s without one.
 */
#include <dirent.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "accrue/replica.h"
#include "replica/rpl.h"

#define FETCH_TIMEOUT_MS 500
#define FOLLOW_SILENT_MS 5000 /* stats: a follow that saw nothing of the primary for this long
                                 is not running (it refreshes every 0.5 s) */
#define LAG_BUCKETS 2048 /* lag histogram: 1 ms buckets up to 2 s, then coarser */
#define RETRY_FIRST_MS 250    /* pause after a first failed NATS request, doubled ... */
#define RETRY_MAX_MS 4000     /* ... up to this while NATS keeps failing */
#define RETRY_SAY_MS 10000    /* a run of failures is said at most this often */
#define API_WAIT_MS 2000      /* a stream info or message request: its leader answers in ms;
                                 silence means an election, asked again after a pause */
#define ONCE_GIVE_UP_MS 30000 /* --once gives up after this long without a leader's answer or
                                 a record (tests: ACR_RPL_GIVE_UP_MS) */

static const char usage_follow[] =
    "usage: accrue follow --nats URL [--stream NAME] [--once] [--batch N] [--lag-report]\n"
    "\n"
    "Makes the ledger directory (empty, or a replica made by an earlier follow) a\n"
    "read replica of the stream that `accrue replicate` fills, and applies new\n"
    "records as they arrive (until SIGTERM), or only those already there (--once).\n"
    "Writes on a replica are refused (read_only).\n"
    "\n"
    "  --nats URL       NATS server(s), e.g. nats://127.0.0.1:4222 (comma-separated)\n"
    "  --stream NAME    the stream (default: the replica's, else the only ACCRUE_* stream)\n"
    "  --once           stop once the stream's last message is applied (exit 1 when the\n"
    "                   stream has had no leader for 30 s)\n"
    "  --batch N        messages fetched and applied per transaction (default 4096)\n"
    "  --lag-report     at exit, print the commit-to-commit lag p50/p99/max (ms)\n";

typedef struct lag_hist {
    uint64_t n;
    uint64_t bucket[LAG_BUCKETS + 1]; /* ms; the last one: >= LAG_BUCKETS */
    int64_t max;
} lag_hist_t;

static void lag_add(lag_hist_t *h, int64_t ms)
{
    if (ms < 0)
        ms = 0;
    h->bucket[ms < LAG_BUCKETS ? ms : LAG_BUCKETS]++;
    h->max = ms > h->max ? ms : h->max;
    h->n++;
}

static int64_t lag_pct(const lag_hist_t *h, double q)
{
    uint64_t want = (uint64_t)((double)h->n * q), seen = 0;
    for (int i = 0; i <= LAG_BUCKETS; i++)
        if ((seen += h->bucket[i]) > want || (seen == h->n && seen > 0))
            return i < LAG_BUCKETS ? i : h->max;
    return 0;
}

static int64_t be64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return (int64_t)v;
}

/* The primary's commit time of a stored record (its recorded_at). */
static int64_t recorded_at(const acr_stored_t *s)
{
    const uint8_t *rec = s->bytes + ACR_HASH_LEN;
    if (s->len < ACR_HASH_LEN + ACR_RECORD_CONTENT_OFF || rec[ACR_RECORD_RECORDED_AT_OFF] != 0xd3)
        return 0;
    return be64(rec + ACR_RECORD_RECORDED_AT_OFF + 1);
}

/* A JetStream request NATS did not answer, or answered with an error that says nothing
 * about the stream itself: what an election (the stream, its consumer or the cluster's meta
 * group without a leader for a few seconds) or a node restart looks like from here. No
 * timeout, "no responders", 10008 (JetStream temporarily unavailable) or a closed
 * connection ends a follower: they are waited out (outage_wait). */
typedef struct nats_fail {
    const char *what; /* the request, for the diagnostic */
    natsStatus s;     /* NATS_OK: no NATS error, what says it all */
    jsErrCode je;
} nats_fail_t;

static int failed(nats_fail_t *fail, const char *what, natsStatus s, jsErrCode je)
{
    *fail = (nats_fail_t){what, s, je};
    return 2;
}

/* Options of a request only a stream's leader answers (the context's wait is 10 s). */
static jsOptions *api_wait(jsOptions *o)
{
    jsOptions_Init(o);
    o->Wait = API_WAIT_MS;
    return o;
}

/* Finds the stream when none was named: the only ACCRUE_* stream. 0, 2 = NATS did not
 * answer (fail set), or an exit code negated. */
static int discover_stream(rpl_conn_t *c, char out[RPL_NAME_MAX], nats_fail_t *fail)
{
    jsStreamNamesList *list = NULL;
    jsErrCode je = 0;
    natsStatus s = js_StreamNames(&list, c->js, NULL, &je);
    if (s == NATS_NOT_FOUND) { /* answered: the list is empty */
        acr__diag(ACR_EUSAGE, "no stream on this NATS yet: start `accrue replicate` on the "
                              "primary, or name one with --stream");
        return -ACR_EXIT_USAGE;
    }
    if (s != NATS_OK)
        return failed(fail, "listing streams (retrying)", s, je);
    int found = 0;
    for (int i = 0; i < list->Count; i++)
        if (strncmp(list->List[i], RPL_STREAM_PREFIX, strlen(RPL_STREAM_PREFIX)) == 0 &&
            found++ == 0)
            snprintf(out, RPL_NAME_MAX, "%s", list->List[i]);
    jsStreamNamesList_Destroy(list);
    if (found == 1)
        return 0;
    acr__diag(ACR_EUSAGE, "%s: name the stream with --stream",
              found ? "several ACCRUE_* streams on this NATS" : "no ACCRUE_* stream on this NATS");
    return -ACR_EXIT_USAGE;
}

typedef struct origin {
    char hex[33];
    acr_config_t cfg;
} origin_t;

static int hex_nibble(char ch)
{
    return ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
}

/* Reads message 1 of the stream: the primary's ledger id and config. 0, 1 = not there
 * yet (the stream's answer: missing or empty), 2 = NATS did not answer (fail set: an
 * election, a node restarting), or an exit code negated. */
static int read_origin(rpl_conn_t *c, const char *stream, origin_t *o, nats_fail_t *fail)
{
    natsMsg *m = NULL;
    jsErrCode je = 0;
    jsOptions jo;
    natsStatus s = js_GetMsg(&m, c->js, stream, 1, api_wait(&jo), &je);
    if (s == NATS_NOT_FOUND || je == JSStreamNotFoundErr || je == JSNoMessageFoundErr)
        return 1;
    if (s != NATS_OK)
        return failed(fail, "reading the stream's first message (retrying)", s, je);
    const char *id = NULL, *period = NULL, *off = NULL, *msgid = NULL;
    natsMsgHeader_Get(m, RPL_HDR_LEDGER, &id);
    natsMsgHeader_Get(m, RPL_HDR_PERIOD, &period);
    natsMsgHeader_Get(m, RPL_HDR_OFFSET, &off);
    natsMsgHeader_Get(m, "Nats-Msg-Id", &msgid);
    int rc = 0;
    memset(o, 0, sizeof *o);
    char want[48];
    snprintf(want, sizeof want, "%s:1", id ? id : "");
    char *end = NULL;
    long offv = off ? strtol(off, &end, 10) : 0;
    if (id == NULL || strlen(id) != 32 || period == NULL || off == NULL || *end != '\0' ||
        offv < -24 * 60 || offv > 24 * 60 || msgid == NULL || strcmp(msgid, want) != 0 ||
        (strcmp(period, "month") != 0 && strcmp(period, "quarter") != 0)) {
        acr__diag(ACR_ECHAIN_BROKEN, "stream %s does not start with an accrue ledger's first "
                                     "event (headers %s, %s, %s)",
                  stream, RPL_HDR_LEDGER, RPL_HDR_PERIOD, RPL_HDR_OFFSET);
        rc = -acr_err_exit_code(ACR_ECHAIN_BROKEN);
    } else {
        snprintf(o->hex, sizeof o->hex, "%s", id);
        for (int i = 0; i < 16; i++) {
            int hi = hex_nibble(id[2 * i]), lo = hex_nibble(id[2 * i + 1]);
            if (hi < 0 || lo < 0) {
                acr__diag(ACR_ECHAIN_BROKEN, "bad ledger id %s in stream %s", id, stream);
                rc = -acr_err_exit_code(ACR_ECHAIN_BROKEN);
                break;
            }
            o->cfg.ledger_id[i] = (uint8_t)(hi << 4 | lo);
        }
        o->cfg.period_kind = strcmp(period, "quarter") == 0 ? ACR_PERIOD_QUARTER : ACR_PERIOD_MONTH;
        o->cfg.utc_offset_min = (int32_t)offv;
    }
    natsMsg_Destroy(m);
    return rc;
}

static void random_name(char out[ACR_REPLICA_NAME_MAX])
{
    uint8_t b[8] = {0};
    FILE *f = fopen("/dev/urandom", "rb");
    if (f != NULL) {
        if (fread(b, 1, sizeof b, f) != sizeof b)
            memset(b, 0, sizeof b);
        fclose(f);
    }
    snprintf(out, ACR_REPLICA_NAME_MAX, "accrue_replica_%02x%02x%02x%02x%02x%02x%02x%02x", b[0],
             b[1], b[2], b[3], b[4], b[5], b[6], b[7]);
}

/* (Re)creates the durable consumer at head + 1 and binds a pull subscription. */
typedef struct puller {
    char inbox[128];     /* where the consumer delivers */
    char next_subj[256]; /* $JS.API.CONSUMER.MSG.NEXT.<stream>.<consumer> */
    int outstanding;     /* messages the open pull request may still deliver (0: none open) */
    int64_t expires_ms;  /* when the open request expires on the server (wall clock) */
} puller_t;

static int subscribe(rpl_conn_t *c, const char *stream, const char *subject, const char *consumer,
                     uint64_t head, natsSubscription **sub, puller_t *p, nats_fail_t *fail)
{
    jsErrCode je = 0;
    js_DeleteConsumer(c->js, stream, consumer, NULL, &je); /* absent is fine */
    jsConsumerConfig cc;
    jsConsumerConfig_Init(&cc);
    cc.Durable = consumer;
    cc.Description = "accrue read replica (position: the replica's committed head)";
    cc.DeliverPolicy = js_DeliverByStartSequence;
    cc.OptStartSeq = head + 1;
    cc.AckPolicy = js_AckAll;
    cc.AckWait = (int64_t)60 * 1000000000;
    cc.MaxAckPending = 1 << 16; /* bounds what is delivered ahead of the replica's commits */
    cc.FilterSubject = subject;
    jsConsumerInfo *ci = NULL;
    je = 0;
    natsStatus s = js_AddConsumer(&ci, c->js, stream, &cc, NULL, &je);
    if (s != NATS_OK)
        return failed(fail, "creating the durable consumer (retrying)", s, je);
    jsConsumerInfo_Destroy(ci);
    /* The consumer is pulled with JetStream's own protocol over a core inbox
     * subscription (pull.c below), not natsSubscription_Fetch: libnats 3.4.1's
     * Fetch can return more messages than the batch it allocated for. */
    natsInbox *ib = NULL;
    s = natsInbox_Create(&ib);
    if (s == NATS_OK) {
        snprintf(p->inbox, sizeof p->inbox, "%s", (const char *)ib);
        natsInbox_Destroy(ib);
        snprintf(p->next_subj, sizeof p->next_subj, "$JS.API.CONSUMER.MSG.NEXT.%s.%s", stream,
                 consumer);
        s = natsConnection_SubscribeSync(sub, c->nc, p->inbox);
        p->outstanding = 0;
    }
    if (s == NATS_OK)
        s = natsSubscription_SetPendingLimits(*sub, -1, -1); /* never drop: one batch is out */
    if (s != NATS_OK)
        return failed(fail, "subscribing (retrying)", s, 0);
    return 0;
}

/* When the stream holds a message past the replica's head that its consumer (filtered on
 * the ledger's subject) did not deliver: the stream's message head + 1 on another subject
 * means the stream is not this ledger's log alone (its seq N is no longer the ledger's seq
 * N), which no wait repairs, so follow stops (chain_broken) instead of polling forever.
 * 0, or an exit code negated. */
static int check_next(rpl_conn_t *c, const char *stream, const char *subject, uint64_t head)
{
    natsMsg *m = NULL;
    jsErrCode je = 0;
    jsOptions jo;
    if (js_GetMsg(&m, c->js, stream, head + 1, api_wait(&jo), &je) != NATS_OK)
        return 0; /* gone or not reachable now: the fetch's own re-anchoring decides */
    const char *subj = natsMsg_GetSubject(m);
    int rc = 0;
    if (subj == NULL || strcmp(subj, subject) != 0) {
        acr__diag(ACR_ECHAIN_BROKEN,
                  "message %" PRIu64 " of stream %s is on subject %s, not %s: the stream "
                  "carries more than this ledger's log, and the replica cannot go past seq "
                  "%" PRIu64,
                  head + 1, stream, subj ? subj : "(none)", subject, head);
        rc = -acr_err_exit_code(ACR_ECHAIN_BROKEN);
    }
    natsMsg_Destroy(m);
    return rc;
}

/* The stream's last seq as its leader knows it: 0, or 2 (fail set). While a stream has no
 * leader, nats-server (2.9) lets each member answer its info with its own state, which may
 * lag the stream's (cluster.leader is then empty): that is no answer, or --once could stop
 * with the replica behind the stream. */
static int stream_last(rpl_conn_t *c, const char *stream, uint64_t *out, nats_fail_t *fail)
{
    jsStreamInfo *si = NULL;
    jsErrCode je = 0;
    jsOptions jo;
    natsStatus s = js_GetStreamInfo(&si, c->js, stream, api_wait(&jo), &je);
    if (s != NATS_OK)
        return failed(fail, "reading the stream's state (retrying)", s, je);
    bool led = si->Cluster == NULL || (si->Cluster->Leader != NULL && *si->Cluster->Leader);
    *out = si->State.LastSeq;
    jsStreamInfo_Destroy(si);
    if (!led)
        return failed(fail, "the stream has no leader (an election, or most of its NATS "
                            "nodes down): retrying",
                      NATS_OK, 0);
    return 0;
}

typedef struct follower {
    rpl_conn_t c;
    acr_ledger_t *l;
    char hex[33];
    char stream[RPL_NAME_MAX];
    char subject[RPL_NAME_MAX];
    acr_replica_info_t info;
    uint64_t head;
    uint64_t applied;
    lag_hist_t lag;
    acr_stored_t *recs;
    int batch;
    natsSubscription *dead[64]; /* unsubscribed, destroyed once the connection is closed */
    int ndead;
    bool bare;            /* the folder holds a ledger with no event and no replica row */
    bool once;            /* --once: an outage ends the run after give_up_ms */
    bool quiet;           /* --quiet: outages are not said */
    bool started;         /* head is the replica's */
    int64_t give_up_ms;   /* --once: how long an outage is waited out */
    int64_t out_since_ms; /* when the current outage began (0: none) */
    int64_t out_said_ms;  /* when it was last said (0: not yet) */
    int out_pause_ms;     /* the next pause before a retry (backoff) */
} follower_t;

/* NATS failed a request (fail; NULL: the replica is behind and the stream's messages did
 * not come this time, which is not said and not paused for). Says so, at most every
 * RETRY_SAY_MS, and pauses before the retry, the pause doubling from RETRY_FIRST_MS to
 * RETRY_MAX_MS: an election takes seconds, a node restart longer. 0 to retry; with --once,
 * once no leader answered for give_up_ms, the exit code (1) after saying why. Never the end
 * of a follower without --once: only a signal, a foreign or broken stream or the local
 * ledger end it. */
static int outage_wait(follower_t *f, const nats_fail_t *fail)
{
    int64_t now = rpl_now_ms();
    if (f->out_since_ms == 0) {
        f->out_since_ms = now;
        f->out_pause_ms = RETRY_FIRST_MS;
    }
    if (fail != NULL && !f->quiet && now - f->out_said_ms >= RETRY_SAY_MS) {
        if (fail->s == NATS_OK)
            acr__diag(ACR_EIO, "%s", fail->what);
        else
            rpl_diag_nats(ACR_EIO, fail->what, fail->s, fail->je);
        f->out_said_ms = now;
    }
    if (f->once && now - f->out_since_ms >= f->give_up_ms) {
        char at[64] = "";
        if (f->started)
            snprintf(at, sizeof at, " with the replica at seq %" PRIu64, f->head);
        acr__diag(ACR_EIO, "stream %s: no leader answered for %.1f s (an election that does "
                           "not end, most NATS nodes down): giving up (--once)%s; run it "
                           "again once the stream has a leader",
                  f->stream, (double)(now - f->out_since_ms) / 1000, at);
        return ACR_EXIT_RUNTIME;
    }
    if (fail != NULL) {
        rpl_sleep_ms(f->out_pause_ms);
        f->out_pause_ms = f->out_pause_ms * 2 < RETRY_MAX_MS ? f->out_pause_ms * 2 : RETRY_MAX_MS;
    }
    return 0;
}

/* The stream's leader answered, or records came: the outage, if any, is over. */
static void outage_over(follower_t *f)
{
    if (f->out_said_ms != 0 && !f->quiet)
        fprintf(stderr, "accrue follow: stream %s answers again after %.1f s; following from "
                        "seq %" PRIu64 "\n",
                f->stream, (double)(rpl_now_ms() - f->out_since_ms) / 1000, f->head + 1);
    f->out_since_ms = 0;
    f->out_said_ms = 0;
}

/* Retires a subscription. nats.c 3.4 may still be handing it an inbound message on its
 * read thread (nats.c issue 637, fixed in 3.6): unsubscribe now, destroy it only after
 * the connection is closed. */
static void retire(follower_t *f, natsSubscription *sub)
{
    natsSubscription_Unsubscribe(sub);
    if (f->ndead < (int)(sizeof f->dead / sizeof f->dead[0]))
        f->dead[f->ndead++] = sub; /* beyond, a few bytes are left to the process's exit */
}

/* The first entry of dir that is none of a ledger's own files (those a creation cut short
 * leaves are fine: the create replaces them), copied into name; false when there is none
 * or dir does not exist. */
static bool foreign_entry(const char *dir, char *name, size_t n)
{
    static const char *const own[] = {".",        "..",          "data.mdb",   "lock.mdb",
                                      "state.mdb", "state.mdb-lock", "owner.lock", "owner.lock.new"};
    DIR *d = opendir(dir);
    if (d == NULL)
        return false;
    struct dirent *e;
    bool found = false;
    while (!found && (e = readdir(d)) != NULL) {
        found = true;
        for (size_t i = 0; i < sizeof own / sizeof own[0]; i++)
            found = found && strcmp(e->d_name, own[i]) != 0;
        if (found)
            snprintf(name, n, "%s", e->d_name);
    }
    closedir(d);
    return found;
}

/* Opens or creates the replica. 0, 1 = the stream is not there yet, 2 = NATS did not
 * answer (fail set), or an exit code negated. */
static int open_replica(follower_t *f, acr_cli_t *cli, const char *stream_opt, nats_fail_t *fail)
{
    acr_err_t err;
    acr_err_clear(&err);
    struct stat st;
    char path[4096];
    snprintf(path, sizeof path, "%s/data.mdb", cli->ledger_dir);
    bool exists = stat(path, &st) == 0;
    int rc = 0;
    if (exists) {
        rc = acr_ledger_open(cli->ledger_dir, &f->l, &err);
        acr_err_t uerr;
        /* the files of a creation cut short are no ledger: the create below replaces them
         * (looked at only when the folder does not open, so a restart pays nothing) */
        if (rc != 0 && acr_ledger_unfinished(cli->ledger_dir, &uerr) == 1)
            exists = false;
        else if (rc != 0)
            return -acr__fail(rc, &err);
    }
    char other[256];
    if (!exists && foreign_entry(cli->ledger_dir, other, sizeof other)) {
        acr__diag(ACR_EEXISTS, "%s is not empty (it holds %s) and is no ledger: follow makes "
                               "a replica in an empty folder (or a missing one)",
                  cli->ledger_dir, other);
        return -ACR_EXIT_RUNTIME;
    }
    if (exists) {
        acr_ledger_id_hex(f->l, f->hex);
        int got = acr_replica_get(f->l, &f->info, &err);
        if (got < 0)
            return -acr__fail(got, &err);
        if (got == 1) {
            if (stream_opt != NULL)
                snprintf(f->stream, sizeof f->stream, "%s", stream_opt);
            else
                snprintf(f->stream, sizeof f->stream, "%s", f->info.stream);
        } else {
            acr_reader_t *r;
            if ((rc = acr_reader_open(f->l, &r, &err)) != 0)
                return -acr__fail(rc, &err);
            uint64_t head = acr_reader_head_seq(r);
            acr_reader_close(r);
            if (head != 0) {
                acr__diag(ACR_EEXISTS, "%s holds a ledger with events that is not a replica: "
                                       "follow needs an empty directory",
                          cli->ledger_dir);
                return -ACR_EXIT_RUNTIME;
            }
            /* an empty ledger: a creation cut short, or `init` by hand */
            f->bare = true;
            if (stream_opt != NULL)
                snprintf(f->stream, sizeof f->stream, "%s", stream_opt);
            else
                rpl_stream_name(f->hex, f->stream);
            memset(&f->info, 0, sizeof f->info);
            f->info.last_lag_ms = -1;
            snprintf(f->info.stream, sizeof f->info.stream, "%s", f->stream);
            random_name(f->info.consumer);
        }
    } else if (stream_opt != NULL) {
        snprintf(f->stream, sizeof f->stream, "%s", stream_opt);
    } else if ((rc = discover_stream(&f->c, f->stream, fail)) != 0) {
        return rc;
    }
    origin_t o;
    rc = read_origin(&f->c, f->stream, &o, fail);
    if (rc != 0)
        return rc;
    if (f->l != NULL && f->bare &&
        (strcmp(o.hex, f->hex) != 0 || memcmp(&o.cfg, acr_ledger_config(f->l), sizeof o.cfg))) {
        /* `accrue init` made it (a creation cut short by follow has the stream's id and
         * config): no history to conflict with, but not this ledger either */
        acr__diag(ACR_EEXISTS, "%s holds a ledger made by `accrue init` (no events yet), not "
                               "a replica of ledger %s: follow creates the replica itself from "
                               "the stream; remove the folder or name an empty one",
                  cli->ledger_dir, o.hex);
        return -ACR_EXIT_RUNTIME;
    }
    if (f->l != NULL && strcmp(o.hex, f->hex) != 0) {
        acr__diag(ACR_ECHAIN_BROKEN,
                  "stream %s carries ledger %s; this replica follows ledger %s: refused",
                  f->stream, o.hex, f->hex);
        return -acr_err_exit_code(ACR_ECHAIN_BROKEN);
    }
    if (f->l != NULL && memcmp(&o.cfg, acr_ledger_config(f->l), sizeof o.cfg) != 0) {
        acr__diag(ACR_ECHAIN_BROKEN, "stream %s: the ledger's config differs from this replica's",
                  f->stream);
        return -acr_err_exit_code(ACR_ECHAIN_BROKEN);
    }
    if (f->l == NULL) {
        memset(&f->info, 0, sizeof f->info);
        f->info.last_lag_ms = -1;
        snprintf(f->info.stream, sizeof f->info.stream, "%s", f->stream);
        random_name(f->info.consumer);
        if ((rc = acr_replica_create(cli->ledger_dir, &o.cfg, &f->info, &err)) != 0)
            return -acr__fail(rc, &err);
        if ((rc = acr__open_ledger(cli, &f->l)) != 0)
            return -rc;
        snprintf(f->hex, sizeof f->hex, "%s", o.hex);
        if (!cli->quiet)
            fprintf(stderr, "accrue follow: %s is now a read replica of ledger %s (stream %s)\n",
                    cli->ledger_dir, o.hex, f->stream);
    } else if (acr_replica_get(f->l, &f->info, &err) == 0) {
        snprintf(f->info.stream, sizeof f->info.stream, "%s", f->stream);
        if ((rc = acr_replica_adopt(f->l, &f->info, &err)) != 0)
            return -acr__fail(rc, &err);
    }
    return 0;
}

/* Up to max messages into msgs (*n), waiting up to timeout_ms for the first
 * and a few ms for each next one, so that a trickle is applied at once. One
 * pull request is open at a time (a new one once the last is used up, answered
 * 404/408, or expired): the server never holds more waiting requests than one.
 * NATS_OK (also with *n = 0: nothing new), or an error after which the caller
 * re-subscribes (a 409 status: the consumer was deleted or lost its leader; a
 * connection failure). */
static natsStatus fetch(rpl_conn_t *c, natsSubscription *sub, puller_t *p, natsMsg **msgs,
                        int max, int64_t timeout_ms, int *n)
{
    natsStatus s = NATS_OK;
    int64_t now = rpl_now_ms(), deadline = now + timeout_ms;
    *n = 0;
    if (p->outstanding <= 0 || now > p->expires_ms + 1000) {
        char req[96];
        int len = snprintf(req, sizeof req, "{\"batch\":%d,\"expires\":%lld}", max,
                           (long long)(timeout_ms - 20) * 1000000LL);
        s = natsConnection_PublishRequest(c->nc, p->next_subj, p->inbox, req, len);
        p->outstanding = max;
        p->expires_ms = now + timeout_ms - 20;
    }
    while (s == NATS_OK && *n < max) {
        int64_t left = deadline - rpl_now_ms();
        if (*n > 0 && left > 5)
            left = 5; /* what has arrived is applied now; the rest comes with the next call */
        natsMsg *m = NULL;
        s = natsSubscription_NextMsg(&m, sub, left > 0 ? left : 0);
        if (s == NATS_TIMEOUT) {
            s = NATS_OK;
            break;
        }
        if (s != NATS_OK)
            break;
        const char *status = NULL;
        if (natsMsgHeader_Get(m, "Status", &status) == NATS_OK && status != NULL) {
            bool done = strncmp(status, "404", 3) == 0 || strncmp(status, "408", 3) == 0;
            bool idle = strncmp(status, "100", 3) == 0;
            natsMsg_Destroy(m);
            if (done) { /* no more messages for now, or the request expired */
                p->outstanding = 0;
                break;
            }
            if (!idle)
                s = NATS_ERR; /* 409 and others: re-subscribe */
            continue;
        }
        msgs[(*n)++] = m;
        p->outstanding--;
    }
    return s;
}

/* Applies the fetched messages msgs[0..count). 0, 1 = a gap (the consumer
 * skipped messages it counted as delivered: re-subscribe at the head), or an
 * exit code negated. */
static int apply_msgs(follower_t *f, natsMsg **msgs, int count)
{
    uint64_t source_head = 0;
    int n = 0, gap = 0, last_i = 0;
    uint64_t expect = f->head + 1;
    for (int i = 0; i < count; i++) {
        natsMsg *m = msgs[i];
        jsMsgMetaData *meta = NULL;
        if (natsMsg_GetMetaData(&meta, m) != NATS_OK)
            continue; /* a status message, not a record */
        uint64_t seq = meta->Sequence.Stream;
        source_head = seq + meta->NumPending;
        jsMsgMetaData_Destroy(meta);
        if (seq > expect) { /* not contiguous: apply what is, then re-anchor */
            gap = 1;
            break;
        }
        expect = seq >= expect ? seq + 1 : expect;
        const char *id = NULL;
        char want[80];
        snprintf(want, sizeof want, "%s:%" PRIu64, f->hex, seq);
        if (natsMsgHeader_Get(m, "Nats-Msg-Id", &id) != NATS_OK || id == NULL ||
            strcmp(id, want) != 0) {
            acr__diag(ACR_ECHAIN_BROKEN,
                      "message %" PRIu64 " of stream %s has id %s, not %s: it is not this "
                      "ledger's log",
                      seq, f->stream, id ? id : "(none)", want);
            return -acr_err_exit_code(ACR_ECHAIN_BROKEN);
        }
        f->recs[n++] = (acr_stored_t){seq, (const uint8_t *)natsMsg_GetData(m),
                                      (size_t)natsMsg_GetDataLength(m)};
        last_i = i;
    }
    if (n == 0)
        return gap;
    acr_err_t err;
    acr_err_clear(&err);
    uint64_t before = f->head;
    int rc = acr_replica_apply(f->l, f->recs, (size_t)n, source_head, rpl_now_ms(), &f->head,
                               &err);
    int64_t now = rpl_now_ms();
    for (int i = 0; i < n; i++)
        if (f->recs[i].seq > before && f->recs[i].seq <= f->head)
            lag_add(&f->lag, now - recorded_at(&f->recs[i]));
    f->applied += f->head > before ? f->head - before : 0;
    if (rc != 0)
        return -acr__fail(rc, &err);
    const char *reply = natsMsg_GetReply(msgs[last_i]); /* AckAll: everything up to it */
    if (reply != NULL)
        natsConnection_Publish(f->c.nc, reply, "+ACK", 4);
    return gap;
}

typedef struct follow_opts {
    const char *url;
    const char *stream; /* NULL: the replica's, else the only ACCRUE_* stream */
    uint64_t batch;
    bool once;
    bool lag_report;
} follow_opts_t;

/* -1 to go on, else the exit code. */
static int parse_opts(acr_cli_t *cli, int argc, char **argv, follow_opts_t *o)
{
    static const struct option opts[] = {
        {"nats", required_argument, NULL, 'n'},  {"stream", required_argument, NULL, 's'},
        {"once", no_argument, NULL, 'o'},        {"batch", required_argument, NULL, 'b'},
        {"lag-report", no_argument, NULL, 'g'},  ACR_CLI_COMMON_OPTS,
        {NULL, 0, NULL, 0},
    };
    *o = (follow_opts_t){NULL, NULL, 4096, false, false};
    int c;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        if (c == 'n') {
            o->url = optarg;
        } else if (c == 's') {
            o->stream = optarg;
        } else if (c == 'o') {
            o->once = true;
        } else if (c == 'g') {
            o->lag_report = true;
        } else if (c == 'b') {
            if (!acr__parse_u64(optarg, &o->batch) || o->batch < 1 || o->batch > 65536)
                return acr__usage(usage_follow, "--batch takes 1 to 65536");
        } else {
            int rc = acr__common_opt(cli, c, argv, usage_follow);
            if (rc >= 0)
                return rc;
        }
    }
    if (optind != argc)
        return acr__usage(usage_follow, "unexpected argument '%s'", argv[optind]);
    char why[256];
    if (!rpl_args_valid(o->url, o->stream, why, sizeof why))
        return acr__usage(usage_follow, "%s", why);
    return -1;
}

/* Opens (or creates) the replica, waiting for the stream in follow mode (and for NATS to
 * answer: bounded with --once), and reads its head. 0 or an exit code. */
static int start(follower_t *f, acr_cli_t *cli, const follow_opts_t *o)
{
    int rc = 0;
    while (!rpl_stop) {
        nats_fail_t fail;
        int s = open_replica(f, cli, o->stream, &fail);
        if (s < 0)
            return -s;
        if (s == 0)
            break;
        acr_ledger_close(f->l);
        f->l = NULL;
        if (s == 2) { /* no answer is no "not there": an election, a node restarting */
            if ((rc = outage_wait(f, &fail)) != 0)
                return rc;
            continue;
        }
        if (o->once) {
            acr__diag(ACR_EUSAGE, "stream %s does not exist or holds no message yet", f->stream);
            return ACR_EXIT_USAGE;
        }
        outage_over(f);
        rpl_sleep_ms(500); /* the stream is not there yet */
    }
    if (rpl_stop)
        return 0;
    rpl_subject(f->hex, f->subject);
    acr_reader_t *r;
    acr_err_t err;
    acr_err_clear(&err);
    if ((rc = acr_reader_open(f->l, &r, &err)) != 0)
        return acr__fail(rc, &err);
    f->head = acr_reader_head_seq(r);
    f->started = true;
    acr_reader_close(r);
    outage_over(f);
    return 0;
}

/* The consumer delivered nothing: where is the stream? 0 to go on, 1 = caught up with
 * --once, or an exit code negated. */
static int idle(follower_t *f, const follow_opts_t *o)
{
    nats_fail_t fail;
    uint64_t last = 0, h;
    int rc = stream_last(&f->c, f->stream, &last, &fail);
    if (rc != 0)
        return -outage_wait(f, &fail);
    if (f->head >= last) { /* caught up, says the stream's leader */
        outage_over(f);
        if (o->once)
            return 1;
    } else if ((rc = check_next(&f->c, f->stream, f->subject, f->head)) < 0) {
        return rc;
    } else if ((rc = outage_wait(f, NULL)) != 0) { /* behind, and nothing came: bounded */
        return -rc;
    }
    acr_err_t err;
    if (!o->once) /* keep the marker's view of the primary fresh */
        acr_replica_apply(f->l, NULL, 0, last, rpl_now_ms(), &h, &err);
    return 0;
}

/* Fetches and applies until stopped (or, with --once, caught up). */
static int run(follower_t *f, const follow_opts_t *o)
{
    natsSubscription *sub = NULL;
    puller_t p;
    natsMsg **msgs = calloc((size_t)f->batch, sizeof *msgs);
    int rc = msgs == NULL ? acr__fail(ACR_ENOMEM, NULL) : 0;
    while (rc == 0 && !rpl_stop) {
        nats_fail_t fail;
        if (sub == NULL &&
            subscribe(&f->c, f->stream, f->subject, f->info.consumer, f->head, &sub, &p, &fail)) {
            rc = outage_wait(f, &fail);
            continue;
        }
        int count = 0;
        uint64_t before = f->head;
        natsStatus s = fetch(&f->c, sub, &p, msgs, f->batch, FETCH_TIMEOUT_MS, &count);
        int arc = count > 0 ? apply_msgs(f, msgs, count) : 0;
        for (int i = 0; i < count; i++)
            natsMsg_Destroy(msgs[i]);
        if (f->head > before)
            outage_over(f); /* records came: whatever failed before is over */
        if (arc < 0)
            rc = -arc;
        if (rc != 0 || (s == NATS_OK && count > 0 && arc == 0))
            continue;
        if (s == NATS_OK && arc == 0) {
            int irc = idle(f, o);
            if (irc == 1)
                break;
            rc = -irc;
            continue;
        }
        /* a gap, connection trouble, a consumer lost with a NATS node...: re-anchor */
        retire(f, sub);
        sub = NULL;
        if (s == NATS_OK)
            rpl_sleep_ms(250); /* a gap */
        else
            rc = outage_wait(f, &(nats_fail_t){"fetching (re-subscribing at the replica's "
                                               "head)",
                                               s, 0});
    }
    if (sub != NULL)
        retire(f, sub); /* the durable consumer stays */
    free(msgs);
    return rc;
}

int acr__cmd_follow(acr_cli_t *cli, int argc, char **argv)
{
    follow_opts_t o;
    int rc = parse_opts(cli, argc, argv, &o);
    if (rc >= 0)
        return rc;
    follower_t *f = calloc(1, sizeof *f);
    if (f == NULL || (f->recs = malloc(o.batch * sizeof *f->recs)) == NULL) {
        free(f);
        acr__diag(ACR_ENOMEM, "out of memory");
        return ACR_EXIT_RUNTIME;
    }
    f->batch = (int)o.batch;
    f->once = o.once;
    f->quiet = cli->quiet;
    const char *env = getenv("ACR_RPL_GIVE_UP_MS");
    f->give_up_ms = env != NULL && atoi(env) > 0 ? atoi(env) : ONCE_GIVE_UP_MS;
    rpl_signals();
    rc = rpl_connect(o.url, "accrue follow", 1, NULL, NULL, &f->c);
    if (rc == 0)
        rc = start(f, cli, &o);
    uint64_t start_head = f->head;
    if (rc == 0)
        rc = run(f, &o);
    if (rc == 0 && f->l != NULL && !cli->quiet)
        printf("replica at seq %" PRIu64 " (%" PRIu64 " applied this run from seq %" PRIu64
               ") following stream %s\n",
               f->head, f->applied, start_head + 1, f->stream);
    if (o.lag_report)
        printf("lag_ms p50 %" PRId64 " p99 %" PRId64 " max %" PRId64 " over %" PRIu64
               " events\n",
               lag_pct(&f->lag, 0.50), lag_pct(&f->lag, 0.99), f->lag.max, f->lag.n);
    if (f->c.nc != NULL)
        natsConnection_Close(f->c.nc); /* its read thread stops: subscriptions may go */
    for (int i = 0; i < f->ndead; i++)
        natsSubscription_Destroy(f->dead[i]);
    rpl_close(&f->c);
    acr_ledger_close(f->l);
    free(f->recs);
    free(f);
    return rc;
}

void acr__replica_stats(const struct acr_replica_info *ri, uint64_t behind, int64_t lag_ms,
                        int64_t seen_age_ms)
{
    int64_t now = rpl_now_ms();
    printf("replica     read-only, following stream %s (consumer %s)\n", ri->stream,
           ri->consumer);
    printf("primary head %" PRIu64 " (seen %" PRId64 " ms ago)\n", ri->source_head, seen_age_ms);
    /* a running follow refreshes what it saw of the primary every 0.5 s, idle or not */
    if (seen_age_ms > FOLLOW_SILENT_MS)
        printf("follow      not running (or stuck): nothing seen of the primary for %.1f s; "
               "the lag below is as of then\n",
               (double)seen_age_ms / 1000);
    printf("lag events  %" PRIu64 "\n", behind);
    int64_t applied_ago = ri->applied_ms ? now - ri->applied_ms : -1;
    if (behind == 0 && lag_ms == 0) /* caught up (acr_replica_lag's rule) */
        printf("lag ms      %" PRId64 " (caught up; the last record applied, %" PRId64
               " ms ago, came %" PRId64 " ms after its commit on the primary)\n",
               lag_ms, applied_ago, ri->last_lag_ms);
    else
        printf("lag ms      %" PRId64 " (primary commit to replica commit, last record "
               "applied %" PRId64 " ms ago)\n",
               lag_ms, applied_ago);
}
