/* cmd_sink.c - `accrue sink postgres --dsn DSN [--schema S] [--follow]`.
 *
 * Catch-up runs transactions of up to --batch-events events (COPY) until the
 * position reaches the ledger's head; then the command ends, or with
 * --follow keeps polling the head of the ledger (a read snapshot every 50 ms:
 * an LMDB read transaction, nothing that slows the writer) and mirrors each
 * new commit as it appears.
 *
 * PostgreSQL going away after the first connection (a restart, a dropped
 * connection) is retried with a doubling backoff (0.1 s up to 5 s) and a
 * message per attempt; the position makes the retried transaction safe.
 * Without --follow the retries stop after ACR__SINK_GIVE_UP_S seconds of
 * outage (exit 1). A server that cannot be reached at the start, a DSN that
 * does not parse, a permission, a full disk: one clear message, non-zero exit,
 * and nothing half-applied (every write is inside the transaction that moves
 * the position).
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "sink/sink.h"

#define ACR__SINK_POLL_MS 50 /* follow: how often the ledger's head is looked at */
#define ACR__SINK_BACKOFF_MIN_MS 100
#define ACR__SINK_BACKOFF_MAX_MS 5000
#define ACR__SINK_GIVE_UP_S 60 /* without --follow: longest outage waited for */

static const char usage_sink[] =
    "usage: accrue sink postgres --dsn DSN [--schema NAME] [--follow] [--batch-events N]\n"
    "\n"
    "Mirrors the ledger into PostgreSQL tables (docs/reporting.md): events, partners,\n"
    "reps, trainings, onboarding, pipeline_stages, deals, deal_stages, sales, closes,\n"
    "statement_lines, and sink_position, which moves in the same transaction as the\n"
    "rows it covers (exactly once; a restart resumes from it). DSN is a libpq\n"
    "connection string or URI (\"host=/run/postgresql dbname=bi\",\n"
    "\"postgresql://user@host/db\"). --schema defaults to accrue; its tables are\n"
    "created when missing (a mirror that lost a table its position covers is refused:\n"
    "drop the schema and mirror again). Without --follow the command ends at the\n"
    "ledger's head; with it, new commits are mirrored as they appear and a PostgreSQL\n"
    "restart is waited out. --batch-events: events per PostgreSQL transaction (default\n"
    "100000).\n"
    "Exit 5 (chain_broken) when the schema holds another ledger or a history the\n"
    "ledger no longer has.\n";

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (!stop_requested && nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static bool schema_valid(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > ACR__SINK_SCHEMA_MAX || (s[0] >= '0' && s[0] <= '9'))
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
            return false;
    }
    return true;
}

typedef struct sink_opts {
    const char *dsn, *schema;
    bool follow;
    uint64_t batch_events;
} sink_opts_t;

static int parse_opts(acr_cli_t *cli, int argc, char **argv, sink_opts_t *o)
{
    static const struct option opts[] = {{"dsn", required_argument, NULL, 'd'},
                                         {"schema", required_argument, NULL, 's'},
                                         {"follow", no_argument, NULL, 'f'},
                                         {"batch-events", required_argument, NULL, 'b'},
                                         ACR_CLI_COMMON_OPTS,
                                         {NULL, 0, NULL, 0}};
    *o = (sink_opts_t){.schema = "accrue", .batch_events = ACR__SINK_CHUNK_EVENTS};
    int c, rc;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == 'd')
            o->dsn = optarg;
        else if (c == 's')
            o->schema = optarg;
        else if (c == 'f')
            o->follow = true;
        else if (c == 'b') {
            if (!acr__parse_u64(optarg, &o->batch_events) || o->batch_events == 0)
                return acr__usage(usage_sink, "--batch-events wants a positive integer");
        } else if ((rc = acr__common_opt(cli, c, argv, usage_sink)) >= 0)
            return rc;
    }
    if (optind != argc)
        return acr__usage(usage_sink, "unexpected argument '%s'", argv[optind]);
    if (o->dsn == NULL)
        return acr__usage(usage_sink, "sink postgres needs --dsn");
    if (!schema_valid(o->schema))
        return acr__usage(usage_sink,
                          "--schema '%s': lower-case letters, digits and _, at most %d, not "
                          "starting with a digit",
                          o->schema, ACR__SINK_SCHEMA_MAX);
    char msg[200];
    if (!acr__sink_dsn_valid(o->dsn, msg, sizeof msg))
        return acr__usage(usage_sink, "--dsn does not parse: %s", msg);
    return -1;
}

/* Connects and prepares the session (tables, temporary tables). */
static int open_session(acr_ledger_t *ledger, acr__sink_pg_t *pg, acr_err_t *err)
{
    char id[33], h0[33];
    uint8_t hash0[ACR_HASH_LEN];
    acr_reader_t *rd;
    acr_hash_hex(acr_ledger_config(ledger)->ledger_id, id);
    int rc = acr_reader_open(ledger, &rd, err);
    if (rc != 0)
        return rc;
    rc = acr_reader_hash_at(rd, 0, hash0, err);
    acr_reader_close(rd);
    if (rc != 0)
        return rc;
    acr_hash_hex(hash0, h0);
    rc = acr__sink_pg_connect(pg, err);
    if (rc == 0)
        rc = acr__sink_schema_ensure(pg, id, h0, err);
    if (rc == 0)
        rc = acr__sink_session_setup(pg, err);
    if (rc == 0)
        rc = acr__sink_onboarding_upgrade(pg, acr_ledger_config(ledger)->utc_offset_min, err);
    return rc;
}

/* The ledger's head seq through a short read snapshot (the follow poll). */
static int ledger_head(acr_ledger_t *ledger, uint64_t *out, acr_err_t *err)
{
    acr_reader_t *rd;
    int rc = acr_reader_open(ledger, &rd, err);
    if (rc != 0)
        return rc;
    *out = acr_reader_head_seq(rd);
    acr_reader_close(rd);
    return 0;
}

typedef struct sink_run {
    uint64_t events; /* mirrored by this run */
    uint64_t first, last;
    uint64_t position; /* latest known position */
} sink_run_t;

/* Waits out an outage: reconnects with backoff until it works (0), the
 * outage outlasts the limit (rc), or a non-retryable error comes (rc). */
static int reconnect(acr_ledger_t *ledger, acr__sink_pg_t *pg, const sink_opts_t *o, acr_err_t *err)
{
    double since = now_s();
    long backoff_ms = ACR__SINK_BACKOFF_MIN_MS;
    int rc = ACR__SINK_RETRY;
    while (rc == ACR__SINK_RETRY && !stop_requested) {
        if (!o->follow && now_s() - since > ACR__SINK_GIVE_UP_S) {
            acr__diag(ACR_EIO,
                      "PostgreSQL unavailable for %d s: giving up (nothing is "
                      "half-applied; run the sink again to resume)",
                      ACR__SINK_GIVE_UP_S);
            return ACR_EIO;
        }
        acr__diag(ACR_EIO, "%s; retrying in %.1f s", err->msg, (double)backoff_ms / 1000);
        sleep_ms(backoff_ms);
        backoff_ms =
            backoff_ms * 2 > ACR__SINK_BACKOFF_MAX_MS ? ACR__SINK_BACKOFF_MAX_MS : backoff_ms * 2;
        acr_err_clear(err);
        rc = open_session(ledger, pg, err);
    }
    if (rc == 0)
        fprintf(stderr, "accrue: note: PostgreSQL is back; resuming\n");
    return rc == ACR__SINK_RETRY ? ACR_EIO : rc;
}

static int run(acr_ledger_t *ledger, acr__sink_pg_t *pg, const sink_opts_t *o, sink_run_t *st,
               acr_err_t *err)
{
    acr__sink_rows_t *rows;
    if (acr__sink_rows_new(&rows) != 0)
        return acr_err_set(err, ACR_ENOMEM, "out of memory");
    int rc = 0;
    while (!stop_requested) {
        acr__sink_step_t step;
        rc = acr__sink_step(ledger, pg, rows, o->batch_events, &step, err);
        if (rc == ACR__SINK_RETRY) {
            if ((rc = reconnect(ledger, pg, o, err)) != 0)
                break;
            continue;
        }
        if (rc != 0)
            break;
        st->position = step.position;
        if (step.to_seq != 0) {
            st->events += step.to_seq - step.from_seq + 1;
            st->first = st->first ? st->first : step.from_seq;
            st->last = step.to_seq;
            continue;
        }
        if (!o->follow)
            break;
        /* Idle: watch the head through read snapshots only; PostgreSQL is not touched. */
        uint64_t head = st->position;
        while (!stop_requested && head == st->position && rc == 0) {
            sleep_ms(ACR__SINK_POLL_MS);
            rc = ledger_head(ledger, &head, err);
        }
    }
    acr__sink_rows_free(rows);
    return rc;
}

static int sink_postgres(acr_cli_t *cli, int argc, char **argv)
{
    sink_opts_t o;
    int rc = parse_opts(cli, argc, argv, &o);
    if (rc >= 0)
        return rc;
    acr_ledger_t *ledger;
    if ((rc = acr__open_ledger(cli, &ledger)) != 0)
        return rc;
    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    acr__sink_pg_t pg = {.dsn = o.dsn};
    snprintf(pg.schema, sizeof pg.schema, "%s", o.schema);
    acr_err_t err;
    acr_err_clear(&err);
    double t0 = now_s();
    sink_run_t st = {0};
    rc = open_session(ledger, &pg, &err);
    if (rc == ACR__SINK_RETRY) /* never reached: a clear error, not a wait */
        rc = ACR_EIO;
    if (rc == 0 && o.follow && !cli->quiet)
        fprintf(stderr, "accrue: note: following the ledger into schema %s\n", pg.schema);
    if (rc == 0)
        rc = run(ledger, &pg, &o, &st, &err);
    acr__sink_pg_close(&pg);
    acr_ledger_close(ledger);
    if (rc != 0) {
        if (err.code == 0)
            err.code = rc;
        acr__diag_err(&err);
        if (st.events > 0)
            fprintf(stderr,
                    "accrue: note: %" PRIu64 " events were mirrored before the error "
                    "(position %" PRIu64 ")\n",
                    st.events, st.position);
        return acr_err_exit_code(err.code);
    }
    double secs = now_s() - t0;
    if (st.events > 0 && st.events == st.last - st.first + 1)
        printf("mirrored %" PRIu64 " events (seq %" PRIu64 "..%" PRIu64 ") into schema %s in "
               "%.3f s; position %" PRIu64 "\n",
               st.events, st.first, st.last, pg.schema, secs, st.position);
    else if (st.events > 0) /* another sink on the schema took turns with this one */
        printf("mirrored %" PRIu64 " events (between seq %" PRIu64 " and %" PRIu64 "; another "
               "sink on the schema mirrored the rest) into schema %s in %.3f s; position %" PRIu64
               "\n",
               st.events, st.first, st.last, pg.schema, secs, st.position);
    else
        printf("mirrored 0 events into schema %s; position %" PRIu64 "\n", pg.schema, st.position);
    return ACR_EXIT_OK;
}

int acr__cmd_sink(acr_cli_t *cli, int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        if (argc >= 2)
            return fputs(usage_sink, stdout), ACR_EXIT_OK;
        return acr__usage(usage_sink, "sink wants a target: postgres");
    }
    if (strcmp(argv[1], "postgres") != 0)
        return acr__usage(usage_sink, "unknown sink '%s' (there is: postgres)", argv[1]);
    return sink_postgres(cli, argc - 1, argv + 1);
}
