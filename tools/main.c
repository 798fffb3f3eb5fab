/* main.c - the `accrue` command line: global options and dispatch.
 *
 *     accrue [--ledger DIR] [--quiet] COMMAND [ARGS]
 *
 * Global options are parsed up to the first non-option word (the command);
 * each command then parses its own argv with getopt_long, so every command
 * and subcommand answers --help (stdout, exit 0) and reports bad usage as
 * `accrue: usage: ...` (stderr, exit 2). The command table below is the one
 * list of commands: --help prints it and dispatch walks it.
 */
#include <lmdb.h>
#include <msgpack.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>
#include <xxhash.h>

#include "cli.h"

#ifndef ACR_VERSION
#define ACR_VERSION "0.0.0"
#endif

typedef int (*cmd_fn)(acr_cli_t *cli, int argc, char **argv);

static const struct command {
    const char *name;    /* the word on the command line */
    cmd_fn fn;           /* its handler */
    const char *summary; /* one line for --help */
} commands[] = {
    {"init", acr__cmd_init, "create a ledger"},
    {"append", acr__cmd_append, "append events (JSON Lines or msgpack) as atomic batches"},
    {"log", acr__cmd_log, "print stored events"},
    {"verify", acr__cmd_verify, "check the hash chain and every projection"},
    {"rebuild", acr__cmd_rebuild, "rebuild all projections from the log"},
    {"stats", acr__cmd_stats, "events, per-type counts, head, file and map size"},
    {"backup", acr__cmd_backup, "consistent compact copy of a live ledger"},
    {"partner", acr__cmd_partner, "partner list | partner show ID"},
    {"pipeline", acr__cmd_pipeline, "open deals by stage"},
    {"kpi", acr__cmd_kpi, "partner KPIs for a month or a quarter"},
    {"onboarding", acr__cmd_onboarding, "onboarding progress and certification per partner"},
    {"promotion", acr__cmd_promotion, "promotion list: lines and budgets"},
    {"announcements", acr__cmd_announcements, "announcements: audience, read, pending, overdue"},
    {"plan", acr__cmd_plan, "plan publish FILE | plan show PLAN_ID"},
    {"payout", acr__cmd_payout, "payout run | close | audit | list"},
    {"serve", acr__cmd_serve, "the HTTP server"},
    {"token", acr__cmd_tokens, "API tokens: create | list | revoke"},
    {"sink", acr__cmd_sink, "mirror the ledger into PostgreSQL (sink postgres)"},
    {"replicate", acr__cmd_replicate, "publish the log to a NATS JetStream stream"},
    {"follow", acr__cmd_follow, "make this ledger a read replica of such a stream"},
};

static const char usage_main[] =
    "usage: accrue [--ledger DIR] [--quiet] COMMAND [ARGS]\n"
    "       accrue --version | --help\n"
    "\n"
    "accrue records every partner fact (deals, sales, refunds, plans) in an append-only,\n"
    "hash-chained log and computes each period's partner payout statements from it, so every\n"
    "amount paid traces back to its events and any closed period re-derives byte for byte.\n"
    "\n"
    "Start here:\n"
    "  finance      accrue payout run PERIOD, then accrue payout close PERIOD (docs/finance-guide.md)\n"
    "  auditor      accrue verify, then accrue payout audit PERIOD (docs/auditor-guide.md)\n"
    "  integrator   accrue append FILE, or accrue serve and POST /v1/events (docs/integration-guide.md)\n"
    "\n"
    "Global options:\n"
    "  --ledger DIR   the ledger directory (default $ACCRUE_LEDGER, else ./accrue-ledger)\n"
    "  --quiet        no progress line on stderr\n"
    "  --version      print the versions of accrue and of its libraries\n"
    "  --help         this text; `accrue COMMAND --help` for a command\n"
    "\n"
    "Exit status: 0 ok, 1 runtime failure, 2 usage, 3 input rejected, 4 conflict,\n"
    "5 verification or audit mismatch.\n"
    "\n"
    "Commands:\n";

static void print_help(void)
{
    fputs(usage_main, stdout);
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        printf("  %-9s %s\n", commands[i].name, commands[i].summary);
}

static void print_version(void)
{
    int major, minor, patch;
    mdb_version(&major, &minor, &patch);
    unsigned xxh = XXH_versionNumber();
    printf("accrue %s\n", ACR_VERSION);
    printf("LMDB %d.%d.%d\n", major, minor, patch);
    printf("msgpack-c %s\n", msgpack_version());
    printf("libuv %s\n", uv_version_string());
    printf("xxHash %u.%u.%u\n", xxh / 10000, (xxh / 100) % 100, xxh % 100);
}

static const struct command *find_command(const char *name)
{
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"ledger", required_argument, NULL, 'L'},
        {"quiet", no_argument, NULL, 'q'},
        {"version", no_argument, NULL, 'V'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *env = getenv("ACCRUE_LEDGER");
    acr_cli_t cli = {.ledger_dir = env != NULL && env[0] != '\0' ? env : "./accrue-ledger"};
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "+hq", opts, NULL)) != -1) {
        switch (c) {
        case 'L':
            cli.ledger_dir = optarg;
            break;
        case 'q':
            cli.quiet = true;
            break;
        case 'V':
            print_version();
            return ACR_EXIT_OK;
        case 'h':
            print_help();
            return ACR_EXIT_OK;
        default:
            return acr__usage(usage_main, "unknown option or missing argument: %s",
                              argv[optind - 1]);
        }
    }
    if (optind >= argc)
        return acr__usage(usage_main, "a command is required (`accrue --help` lists them)");
    if (strcmp(argv[optind], "help") == 0) {
        print_help();
        return ACR_EXIT_OK;
    }
    const struct command *cmd = find_command(argv[optind]);
    if (cmd == NULL)
        return acr__usage(usage_main, "unknown command '%s'", argv[optind]);
    int first = optind;
    acr__getopt_reset();
    int rc = cmd->fn(&cli, argc - first, argv + first);
    if (fflush(stdout) != 0 && rc == 0) {
        acr__diag(ACR_EIO, "cannot write to stdout");
        rc = ACR_EXIT_RUNTIME;
    }
    return rc;
}
