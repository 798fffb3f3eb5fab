/* cmd_program.c - the partner program's commands (program.md, cli.md):
 * onboarding, promotion list, announcements. The engine answers in JSON
 * (accrue/program.h); this file parses options and renders, like cmd_query.c. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "accrue/buf.h"
#include "accrue/date.h"
#include "accrue/program.h"
#include "accrue/program_query.h"
#include "cli.h"

typedef struct prog_q {
    const char *partner;
    bool has_today;
    int32_t today_day;
    int format;
} prog_q_t;

typedef int (*prog_query_fn)(acr_ledger_t *l, const prog_q_t *q, acr_buf_t *out, acr_err_t *err);

static int run_query(acr_cli_t *cli, prog_q_t *q, prog_query_fn fn, const col_t *cols,
                     size_t ncols)
{
    acr_ledger_t *ledger;
    int rc = acr__open_ledger(cli, &ledger);
    if (rc != 0)
        return rc;
    if (!q->has_today) {
        int64_t now_ms = (int64_t)time(NULL) * 1000;
        q->today_day = acr_local_day(now_ms, acr_ledger_config(ledger)->utc_offset_min);
    }
    acr_buf_t out;
    acr_err_t err;
    acr_buf_init(&out);
    acr_err_clear(&err);
    rc = fn(ledger, q, &out, &err);
    acr_names_t names = {NULL, 0}; /* names beside partner ids in tables */
    int32_t offset_min = acr_ledger_config(ledger)->utc_offset_min;
    if (rc == 0 && q->format == OUT_TABLE && ncols > 0 && strcmp(cols[0].key, "partner_id") == 0)
        acr__names_load(ledger, &names);
    acr_ledger_close(ledger);
    if (rc == 0 && q->format == OUT_JSON) {
        acr__out(out.data, out.len);
        acr__out("\n", 1);
    } else if (rc == 0) {
        rc = acr__render_rows((const char *)out.data, out.len, cols, ncols, q->format, &names,
                              offset_min);
        acr__names_free(&names);
        acr_buf_destroy(&out);
        return rc;
    }
    acr__names_free(&names);
    acr_buf_destroy(&out);
    return rc == 0 ? ACR_EXIT_OK : acr__fail(rc, &err);
}

/* Parses --partner, --today (when today_ok), --format; returns -1 to go on or an exit code. */
static int parse_opts(acr_cli_t *cli, int argc, char **argv, const char *usage, bool partner_ok,
                      bool today_ok, prog_q_t *q)
{
    static const struct option opts[] = {
        {"partner", required_argument, NULL, 'p'},
        {"today", required_argument, NULL, 't'},
        {"format", required_argument, NULL, 'f'},
        ACR_CLI_COMMON_OPTS,
        {NULL, 0, NULL, 0},
    };
    int c, rc;
    q->format = OUT_TABLE;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == 'p' && partner_ok)
            q->partner = optarg;
        else if (c == 't' && today_ok) {
            if (!acr_date_parse(optarg, strlen(optarg), &q->today_day))
                return acr__usage(usage, "--today wants YYYY-MM-DD, not '%s'", optarg);
            q->has_today = true;
        } else if (c == 'f') {
            if (acr__parse_format(optarg, &q->format) != 0)
                return acr__usage(usage, "bad --format '%s'", optarg);
        } else if (c == 'p' || c == 't') {
            return acr__usage(usage, "unexpected option");
        } else if ((rc = acr__common_opt(cli, c, argv, usage)) >= 0) {
            return rc;
        }
    }
    if (optind < argc)
        return acr__usage(usage, "unexpected argument '%s'", argv[optind]);
    return -1;
}

/* ---- onboarding ----------------------------------------------------------- */

static const char usage_onboarding[] =
    "usage: accrue onboarding [--partner P] [--format table|csv|json]\n"
    "The program's required modules (the latest onboarding.defined), and per partner and\n"
    "per rep the modules completed and missing, certified and certified_on. A table or CSV\n"
    "has a row per partner (rep empty) followed by a row per rep of it.\n";

/* The engine's partner objects, each with its "reps" array, as rows for a table or CSV
 * (program.md: per partner and per rep): the partner's row, then one per rep, which gets
 * the partner's id in front of its own keys. */
static int rep_rows(const acr_buf_t *in, acr_buf_t *out)
{
    acr_jv_t arr, row, pid, reps, rep;
    size_t pos = 0;
    if (acr__json_value((const char *)in->data, in->len, &pos, &arr) != 0 || arr.kind != 'a')
        return ACR_ECORRUPT;
    int rc = acr_buf_append_str(out, "["), more;
    bool first = true;
    for (pos = 0; rc == 0 && (more = acr__json_arr_next(&arr, &pos, &row)) != 0;) {
        if (more < 0)
            return ACR_ECORRUPT;
        if (row.kind != 'o' || !acr__json_get(&row, "partner_id", &pid) || pid.kind != 's')
            return ACR_ECORRUPT;
        rc = acr_buf_append_str(out, first ? "" : ",");
        rc = rc ? rc : acr_buf_append(out, row.ptr, row.len);
        first = false;
        if (!acr__json_get(&row, "reps", &reps) || reps.kind != 'a')
            continue;
        for (size_t rpos = 0; rc == 0 && (more = acr__json_arr_next(&reps, &rpos, &rep)) != 0;) {
            if (more < 0 || rep.kind != 'o' || rep.len < 2 || rep.ptr[0] != '{')
                return ACR_ECORRUPT;
            size_t mpos = 0;
            acr_jv_t mk, mv;
            bool members = acr__json_obj_next(&rep, &mpos, &mk, &mv) == 1;
            rc = acr_buf_append_str(out, ",{\"partner_id\":\"");
            rc = rc ? rc : acr_buf_append(out, pid.ptr, pid.len);
            rc = rc ? rc : acr_buf_append_str(out, members ? "\"," : "\"");
            rc = rc ? rc : acr_buf_append(out, rep.ptr + 1, rep.len - 1);
        }
    }
    return rc ? rc : acr_buf_append_str(out, "]");
}

static int q_onboarding(acr_ledger_t *l, const prog_q_t *q, acr_buf_t *out, acr_err_t *err)
{
    if (q->format == OUT_JSON)
        return acr_query_onboarding(l, q->partner, out, err);
    acr_buf_t objs;
    acr_buf_init(&objs);
    int rc = acr_query_onboarding(l, q->partner, &objs, err);
    if (rc == 0 && (rc = rep_rows(&objs, out)) != 0)
        rc = acr_err_set(err, rc == ACR_ENOMEM ? rc : ACR_ECORRUPT,
                         rc == ACR_ENOMEM ? "out of memory" : "unexpected onboarding JSON");
    acr_buf_destroy(&objs);
    return rc;
}

int acr__cmd_onboarding(acr_cli_t *cli, int argc, char **argv)
{
    prog_q_t q = {0};
    int rc = parse_opts(cli, argc, argv, usage_onboarding, true, false, &q);
    if (rc >= 0)
        return rc;
    q.has_today = true; /* not used */
    static const col_t cols[] = {
        {"partner_id", "partner", 's'}, {"rep_id", "rep", 's'}, {"modules", "modules", 'c'},
        {"completed", "completed", 'c'}, {"missing", "missing", 'c'},
        {"certified", "certified", 's'}, {"certified_on", "certified_on", 's'},
    };
    return run_query(cli, &q, q_onboarding, cols, sizeof cols / sizeof *cols);
}

/* ---- promotion list ------------------------------------------------------- */

static const char usage_promotion[] =
    "usage: accrue promotion list [--format table|csv|json]\n"
    "Promotions with their lines and budget used / left as of the head (closes ignored).\n";

static int q_promotions(acr_ledger_t *l, const prog_q_t *q, acr_buf_t *out, acr_err_t *err)
{
    (void)q;
    return acr_query_promotions(l, out, err);
}

int acr__cmd_promotion(acr_cli_t *cli, int argc, char **argv)
{
    if (argc < 2 || argv[1][0] == '-') {
        if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
            fputs(usage_promotion, stdout);
            return ACR_EXIT_OK;
        }
        return acr__usage(usage_promotion, "promotion needs a subcommand: list");
    }
    if (strcmp(argv[1], "list") != 0)
        return acr__usage(usage_promotion, "unknown subcommand '%s'", argv[1]);
    prog_q_t q = {0};
    int rc = parse_opts(cli, argc - 1, argv + 1, usage_promotion, false, false, &q);
    if (rc >= 0)
        return rc;
    q.has_today = true;
    static const col_t cols[] = {
        {"promo_id", "promotion", 's'}, {"plan_id", "plan", 's'},
        {"from", "from", 's'},          {"last_day", "last_day", 's'},
        {"rate_bp", "rate_bp", 'n'},    {"per_sale_minor", "per_sale", 'm'},
        {"lines", "lines", 'n'},
        {"total_minor", "total", 'm'},  {"budget_minor", "budget", 'm'},
        {"used_minor", "used", 'm'},    {"left_minor", "left", 'm'},
    };
    return run_query(cli, &q, q_promotions, cols, sizeof cols / sizeof *cols);
}

/* ---- announcements -------------------------------------------------------- */

static const char usage_announcements[] =
    "usage: accrue announcements [--partner P] [--today DATE] [--format table|csv|json]\n"
    "Announcements with audience, acknowledged, pending, overdue; with --partner, that\n"
    "partner's announcements and their state (read, pending, overdue, info). --today\n"
    "(default: today's local date) decides overdue.\n";

static int q_announcements(acr_ledger_t *l, const prog_q_t *q, acr_buf_t *out, acr_err_t *err)
{
    return acr_query_announcements(l, q->partner, q->today_day, false, out, err);
}

int acr__cmd_announcements(acr_cli_t *cli, int argc, char **argv)
{
    prog_q_t q = {0};
    int rc = parse_opts(cli, argc, argv, usage_announcements, true, true, &q);
    if (rc >= 0)
        return rc;
    static const col_t all[] = {
        {"announcement_id", "announcement", 's'}, {"title", "title", 's'},
        {"at", "at", 't'},                        {"due", "due", 's'},
        {"audience", "audience", 'n'},            {"acknowledged", "acknowledged", 'n'},
        {"pending", "pending", 'n'},              {"overdue", "overdue", 'n'},
    };
    static const col_t mine[] = {
        {"announcement_id", "announcement", 's'}, {"title", "title", 's'},
        {"at", "at", 't'}, {"due", "due", 's'}, {"state", "state", 's'},
    };
    if (q.partner != NULL)
        return run_query(cli, &q, q_announcements, mine, sizeof mine / sizeof *mine);
    return run_query(cli, &q, q_announcements, all, sizeof all / sizeof *all);
}
