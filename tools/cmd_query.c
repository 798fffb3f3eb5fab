/* cmd_query.c - read-model queries: partner list|show, pipeline, kpi.
 *
 * The engine answers every query in JSON (projection.h); this file only
 * renders it. `json` prints the engine's bytes as they are (the stable
 * machine form of cli.md); `csv` prints one header line of the keys and the
 * values as written (amounts in minor units); `table` aligns columns for a
 * human and shows amounts as finance reads them (acr_money_display: "1,234.56 USD").
 * Values are handled as text spans (json.c), never as doubles.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "accrue/buf.h"
#include "accrue/date.h"
#include "accrue/event.h"
#include "accrue/money.h"
#include "accrue/projection.h"
#include "cli.h"

static int parse_format(const char *s, int *out)
{
    return acr__parse_format(s, out);
}

int acr__parse_format(const char *s, int *out)
{
    if (strcmp(s, "table") == 0)
        *out = OUT_TABLE;
    else if (strcmp(s, "csv") == 0)
        *out = OUT_CSV;
    else if (strcmp(s, "json") == 0)
        *out = OUT_JSON;
    else
        return -1;
    return 0;
}

/* One cell as text: table form (amounts with decimals, times in business time, null as -)
 * or csv. */
static void cell_text(const acr_jv_t *row, const col_t *col, bool table, int32_t offset_min,
                      char *buf, size_t cap)
{
    acr_jv_t v, cur;
    if (!acr__json_get(row, col->key, &v) || v.kind == 'z') {
        snprintf(buf, cap, "%s", table ? "-" : "");
        return;
    }
    if (col->kind == 'c' && v.kind == 'a') {
        size_t pos = 0, n = 0;
        acr_jv_t e;
        while (acr__json_arr_next(&v, &pos, &e) == 1)
            n++;
        snprintf(buf, cap, "%zu", n);
        return;
    }
    int64_t amount;
    if (table && col->kind == 'm' && acr__json_i64(&v, &amount)) {
        int decimals = 0;
        char code[8] = "";
        if (acr__json_get(row, "currency", &cur) && cur.kind == 's') {
            decimals = acr_currency_decimals(cur.ptr, cur.len);
            acr__json_text(&cur, code, sizeof code);
        }
        acr_money_display(amount, decimals < 0 ? 0 : decimals, code, buf, (unsigned)cap);
        return;
    }
    int64_t ms;
    if (table && col->kind == 't' && v.kind == 's' && acr_ts_parse(v.ptr, v.len, &ms) &&
        cap >= ACR_TS_BUF) {
        acr_ts_format_local(ms, offset_min, buf);
        return;
    }
    acr__json_text(&v, buf, cap);
}

static void csv_field(const char *s, acr_buf_t *out)
{
    if (strpbrk(s, ",\"\n\r") == NULL) {
        acr_buf_append_str(out, s);
        return;
    }
    acr_buf_append(out, "\"", 1);
    for (; *s != '\0'; s++) {
        if (*s == '"')
            acr_buf_append(out, "\"", 1);
        acr_buf_append(out, s, 1);
    }
    acr_buf_append(out, "\"", 1);
}

/* Renders a JSON array of row objects as a table or CSV on stdout. With names (tables
 * only), a "name" column follows a first column of partner ids. */
int acr__render_rows(const char *json, size_t len, const col_t *cols, size_t ncols, int format,
                     acr_names_t *names, int32_t offset_min)
{
    acr_jv_t arr, row;
    size_t pos = 0;
    char cell[1024];
    if (acr__json_value(json, len, &pos, &arr) != 0 || arr.kind != 'a') {
        acr__diag(ACR_ECORRUPT, "the engine answered with unexpected JSON");
        return ACR_EXIT_RUNTIME;
    }
    acr_table_t t;
    acr_buf_t csv;
    uint32_t right = 0;
    bool named = names != NULL && format == OUT_TABLE && ncols > 0 &&
                 strcmp(cols[0].key, "partner_id") == 0;
    size_t shift = named ? 1 : 0;
    for (size_t c = 0; c < ncols; c++)
        if (cols[c].kind != 's' && cols[c].kind != 't')
            right |= 1u << (c > 0 ? c + shift : c);
    acr__table_init(&t, ncols + shift, right);
    acr_buf_init(&csv);
    for (size_t c = 0; c < ncols; c++) {
        acr__table_add(&t, cols[c].title);
        if (c == 0 && named)
            acr__table_add(&t, "name");
        acr_buf_printf(&csv, "%s%s", c ? "," : "", cols[c].key);
    }
    acr_buf_append(&csv, "\n", 1);
    pos = 0;
    while (acr__json_arr_next(&arr, &pos, &row) == 1) {
        for (size_t c = 0; c < ncols; c++) {
            cell_text(&row, &cols[c], format == OUT_TABLE, offset_min, cell, sizeof cell);
            acr__table_add(&t, cell);
            if (c == 0 && named) {
                const char *name = acr__name_of(names, cell);
                acr__table_add(&t, name != NULL && name[0] != '\0' ? name : "-");
            }
            if (c > 0)
                acr_buf_append(&csv, ",", 1);
            csv_field(cell, &csv);
        }
        acr_buf_append(&csv, "\n", 1);
    }
    if (format == OUT_TABLE)
        acr__table_print(&t, stdout);
    else
        acr__out(csv.data, csv.len);
    acr__table_destroy(&t);
    acr_buf_destroy(&csv);
    return ACR_EXIT_OK;
}

static int print_json(const acr_buf_t *out)
{
    acr__out(out->data, out->len);
    if (out->len == 0 || out->data[out->len - 1] != '\n')
        acr__out("\n", 1);
    return ACR_EXIT_OK;
}

/* ---- partner ------------------------------------------------------------- */

static const char usage_partner[] =
    "usage: accrue partner list [--format table|csv|json]\n"
    "       accrue partner show ID [--format table|json]\n"
    "\n"
    "Partners with tier, kind, status, plan, currency, region, reps and training\n"
    "modules, as of the head. json is the engine's partner objects as they are.\n";

static const col_t partner_cols[] = {
    {"partner_id", "partner", 's'}, {"name", "name", 's'},         {"kind", "kind", 's'},
    {"tier", "tier", 's'},          {"status", "status", 's'},     {"plan_id", "plan", 's'},
    {"currency", "currency", 's'},  {"region", "region", 's'},     {"source", "source", 's'},
    {"reps", "reps", 'c'},          {"training", "training", 'c'},
};

/* The texts of a JSON array, space-separated, into out (cut at cap); its length. */
static size_t join_words(const acr_jv_t *arr, char *out, size_t cap)
{
    char word[256];
    size_t n = 0, pos = 0;
    acr_jv_t e;
    out[0] = '\0';
    while (acr__json_arr_next(arr, &pos, &e) == 1 && n + 2 < cap) {
        acr__json_text(&e, word, sizeof word);
        int w = snprintf(out + n, cap - n, "%s%s", n ? " " : "", word);
        n = w < 0 || (size_t)w >= cap - n ? cap - 1 : n + (size_t)w;
    }
    return n;
}

/* partner show in table form: one `key  value` line per field. */
static void partner_block(const acr_jv_t *p)
{
    char val[1024], a[256], b[256];
    acr_jv_t v, e, x;
    for (size_t c = 0; c < 9; c++) {
        cell_text(p, &partner_cols[c], true, 0, val, sizeof val);
        printf("%-10s  %s\n", partner_cols[c].key, val);
    }
    size_t pos = 0;
    if (acr__json_get(p, "reps", &v))
        while (acr__json_arr_next(&v, &pos, &e) == 1) {
            a[0] = b[0] = '\0';
            if (acr__json_get(&e, "rep_id", &x))
                acr__json_text(&x, a, sizeof a);
            if (acr__json_get(&e, "name", &x))
                acr__json_text(&x, b, sizeof b);
            printf("%-10s  %s (%s)\n", "rep", a, b);
        }
    pos = 0;
    if (acr__json_get(p, "training", &v))
        while (acr__json_arr_next(&v, &pos, &e) == 1) {
            char d[32] = "";
            a[0] = b[0] = '\0';
            if (acr__json_get(&e, "date", &x))
                acr__json_text(&x, d, sizeof d);
            if (acr__json_get(&e, "module", &x))
                acr__json_text(&x, a, sizeof a);
            if (acr__json_get(&e, "rep_id", &x) && x.kind == 's')
                acr__json_text(&x, b, sizeof b);
            printf("%-10s  %s %s%s%s\n", "training", d, a, b[0] ? " rep " : "", b);
        }
    acr_jv_t o; /* program.md: onboarding and certification */
    if (!acr__json_get(p, "onboarding", &o))
        return;
    static const char *const keys[] = {"certified", "certified_on", "completed", "missing"};
    for (size_t k = 0; k < 4; k++) {
        char line[1024] = "";
        if (acr__json_get(&o, keys[k], &v) && v.kind == 'a') {
            join_words(&v, line, sizeof line);
        } else if (acr__json_get(&o, keys[k], &v)) {
            acr__json_text(&v, line, sizeof line);
            if (v.kind == 'z')
                snprintf(line, sizeof line, "-");
        }
        printf("%-10s  %s\n", k < 2 ? keys[k] : k == 2 ? "completed" : "missing", line);
    }
    /* and per rep: `rep cert.  R1 false (since -), missing a b` */
    pos = 0;
    if (acr__json_get(&o, "reps", &v))
        while (acr__json_arr_next(&v, &pos, &e) == 1) {
            char cert[16] = "", on[32] = "-", missing[768] = "";
            a[0] = '\0';
            if (acr__json_get(&e, "rep_id", &x))
                acr__json_text(&x, a, sizeof a);
            if (acr__json_get(&e, "certified", &x))
                acr__json_text(&x, cert, sizeof cert);
            if (acr__json_get(&e, "certified_on", &x) && x.kind == 's')
                acr__json_text(&x, on, sizeof on);
            bool any = acr__json_get(&e, "missing", &x) && join_words(&x, missing, sizeof missing);
            printf("%-10s  %s %s (since %s), missing %s\n", "rep cert.", a, cert, on,
                   any ? missing : "-");
        }
}

static int partner_run(acr_cli_t *cli, const char *id, int format)
{
    acr_ledger_t *ledger;
    int rc = acr__open_ledger(cli, &ledger);
    if (rc != 0)
        return rc;
    acr_buf_t out;
    acr_err_t err;
    acr_buf_init(&out);
    acr_err_clear(&err);
    rc = acr_query_partners(ledger, id, &out, &err);
    acr_ledger_close(ledger);
    if (rc != 0) {
        if (rc == ACR_ENOT_FOUND && err.msg[0] == '\0')
            snprintf(err.msg, sizeof err.msg, "no partner %s", id);
        rc = acr__fail(rc, &err);
    } else if (format == OUT_JSON) {
        rc = print_json(&out);
    } else if (id == NULL) {
        rc = acr__render_rows((const char *)out.data, out.len, partner_cols,
                              sizeof partner_cols / sizeof partner_cols[0], format, NULL, 0);
    } else {
        acr_jv_t p;
        size_t pos = 0;
        if (acr__json_value((const char *)out.data, out.len, &pos, &p) == 0 && p.kind == 'o')
            partner_block(&p);
        rc = ACR_EXIT_OK;
    }
    acr_buf_destroy(&out);
    return rc;
}

int acr__cmd_partner(acr_cli_t *cli, int argc, char **argv)
{
    static const struct option opts[] = {
        {"format", required_argument, NULL, 'f'}, ACR_CLI_COMMON_OPTS, {NULL, 0, NULL, 0}};
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        if (argc >= 2)
            return fputs(usage_partner, stdout), ACR_EXIT_OK;
        return acr__usage(usage_partner, "partner wants list or show");
    }
    bool list = strcmp(argv[1], "list") == 0;
    if (!list && strcmp(argv[1], "show") != 0)
        return acr__usage(usage_partner, "unknown subcommand 'partner %s'", argv[1]);
    int format = OUT_TABLE, c, rc;
    argc--;
    argv++;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == 'f' && (parse_format(optarg, &format) != 0 || (!list && format == OUT_CSV)))
            return acr__usage(usage_partner, "bad --format '%s'", optarg);
        if (c != 'f' && (rc = acr__common_opt(cli, c, argv, usage_partner)) >= 0)
            return rc;
    }
    if (argc - optind != (list ? 0 : 1))
        return acr__usage(usage_partner, list ? "partner list takes no argument"
                                              : "partner show wants one partner id");
    return partner_run(cli, list ? NULL : argv[optind], format);
}

/* ---- pipeline ------------------------------------------------------------ */

static const char usage_pipeline[] =
    "usage: accrue pipeline [--partner P] [--today YYYY-MM-DD] [--format table|csv|json]\n"
    "\n"
    "Open deals by stage: count, amount and the age in stage of the oldest (days from\n"
    "the local date of entering the stage to --today, default the local date now under\n"
    "the ledger's UTC offset); per partner, or one partner with --partner. csv and json\n"
    "have the keys partner_id, stage, deals, amount_minor, currency, oldest_days.\n";

static const col_t pipeline_cols[] = {
    {"partner_id", "partner", 's'}, {"stage", "stage", 's'},
    {"deals", "deals", 'n'},        {"amount_minor", "amount", 'm'},
    {"currency", "currency", 's'},  {"oldest_days", "oldest_days", 'n'},
};

/* Runs a JSON query and renders it; shared by pipeline and kpi. */
typedef struct query {
    const char *partner; /* --partner or NULL */
    const char *period;  /* kpi --period */
    bool by_rep;         /* kpi --by rep */
    bool has_today;      /* pipeline --today given */
    int32_t today_day;   /* its day number */
    int format;          /* OUT_* */
} query_t;

static int query_run(acr_cli_t *cli, query_t *q, bool kpi)
{
    acr_ledger_t *ledger;
    int rc = acr__open_ledger(cli, &ledger);
    if (rc != 0)
        return rc;
    if (!kpi && !q->has_today) {
        int64_t now_ms = (int64_t)time(NULL) * 1000;
        q->today_day = acr_local_day(now_ms, acr_ledger_config(ledger)->utc_offset_min);
    }
    acr_buf_t out;
    acr_err_t err;
    acr_buf_init(&out);
    acr_err_clear(&err);
    if (kpi)
        rc = acr_query_kpi(ledger, q->period, q->partner, q->by_rep, &out, &err);
    else
        rc = acr_query_pipeline(ledger, q->partner, q->today_day, &out, &err);
    acr_names_t names = {NULL, 0};
    if (rc == 0 && q->format == OUT_TABLE)
        acr__names_load(ledger, &names);
    acr_ledger_close(ledger);
    static const col_t kpi_cols[] = {
        {"partner_id", "partner", 's'},
        {"period", "period", 's'},
        {"currency", "currency", 's'},
        {"deals_registered", "registered", 'n'},
        {"deals_won", "won", 'n'},
        {"deals_lost", "lost", 'n'},
        {"win_rate_bp", "win_rate_bp", 'n'},
        {"net_revenue_minor", "net_revenue", 'm'},
        {"new_customers", "new_customers", 'n'},
        {"median_days_to_win", "median_days", 'n'},
        {"training_modules", "training", 'n'},
        {"commission_minor", "commission", 'm'},
        {"certified", "certified", 's'}, /* program.md: kpi gains certified per partner */
    };
    static const col_t rep_cols[] = {
        {"partner_id", "partner", 's'},
        {"rep_id", "rep", 's'},
        {"period", "period", 's'},
        {"currency", "currency", 's'},
        {"sales", "sales", 'n'},
        {"net_revenue_minor", "net_revenue", 'm'},
        {"new_customers", "new_customers", 'n'},
        {"deals_registered", "registered", 'n'},
        {"deals_won", "won", 'n'},
        {"commission_minor", "commission", 'm'},
    };
    const col_t *cols = !kpi ? pipeline_cols : q->by_rep ? rep_cols : kpi_cols;
    size_t ncols = !kpi        ? sizeof pipeline_cols / sizeof pipeline_cols[0]
                   : q->by_rep ? sizeof rep_cols / sizeof rep_cols[0]
                               : sizeof kpi_cols / sizeof kpi_cols[0];
    if (rc != 0)
        rc = acr__fail(rc, &err);
    else if (q->format == OUT_JSON)
        rc = print_json(&out);
    else
        rc = acr__render_rows((const char *)out.data, out.len, cols, ncols, q->format, &names,
                              0);
    acr__names_free(&names);
    acr_buf_destroy(&out);
    return rc;
}

int acr__cmd_pipeline(acr_cli_t *cli, int argc, char **argv)
{
    static const struct option opts[] = {
        {"partner", required_argument, NULL, 'p'},
        {"today", required_argument, NULL, 't'},
        {"format", required_argument, NULL, 'f'},
        ACR_CLI_COMMON_OPTS,
        {NULL, 0, NULL, 0},
    };
    query_t q = {.format = OUT_TABLE};
    int c, rc;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == 'p')
            q.partner = optarg;
        else if (c == 't' && !acr_date_parse(optarg, strlen(optarg), &q.today_day))
            return acr__usage(usage_pipeline, "--today wants YYYY-MM-DD, not '%s'", optarg);
        else if (c == 't')
            q.has_today = true;
        else if (c == 'f' && parse_format(optarg, &q.format) != 0)
            return acr__usage(usage_pipeline, "bad --format '%s'", optarg);
        else if (c != 'f' && (rc = acr__common_opt(cli, c, argv, usage_pipeline)) >= 0)
            return rc;
    }
    if (optind < argc)
        return acr__usage(usage_pipeline, "unexpected argument '%s'", argv[optind]);
    return query_run(cli, &q, false);
}

/* ---- kpi ----------------------------------------------------------------- */

static const char usage_kpi[] =
    "usage: accrue kpi --period PERIOD [--partner P] [--by rep] [--format table|csv|json]\n"
    "\n"
    "Partner KPIs for a month (2026-07) or a quarter (2026-Q3), whatever the ledger's\n"
    "payout period: deals registered, won, lost, win rate (bp), net revenue, new\n"
    "customers, median days from registration to win, training modules completed and\n"
    "commission earned. With --by rep, one row per (partner, rep). The json keys are\n"
    "those of cli.md; csv has the same keys with amounts in minor units.\n";

int acr__cmd_kpi(acr_cli_t *cli, int argc, char **argv)
{
    static const struct option opts[] = {
        {"period", required_argument, NULL, 'P'},
        {"partner", required_argument, NULL, 'p'},
        {"by", required_argument, NULL, 'b'},
        {"format", required_argument, NULL, 'f'},
        ACR_CLI_COMMON_OPTS,
        {NULL, 0, NULL, 0},
    };
    query_t q = {.format = OUT_TABLE};
    int c, rc;
    int32_t idx;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == 'P')
            q.period = optarg;
        else if (c == 'p')
            q.partner = optarg;
        else if (c == 'b' && strcmp(optarg, "rep") != 0)
            return acr__usage(usage_kpi, "--by accepts only rep");
        else if (c == 'b')
            q.by_rep = true;
        else if (c == 'f' && parse_format(optarg, &q.format) != 0)
            return acr__usage(usage_kpi, "bad --format '%s'", optarg);
        else if (c != 'f' && (rc = acr__common_opt(cli, c, argv, usage_kpi)) >= 0)
            return rc;
    }
    if (optind < argc)
        return acr__usage(usage_kpi, "unexpected argument '%s'", argv[optind]);
    if (q.period == NULL)
        return acr__usage(usage_kpi, "--period is required");
    size_t n = strlen(q.period);
    if (!acr_period_parse(ACR_PERIOD_MONTH, q.period, n, &idx) &&
        !acr_period_parse(ACR_PERIOD_QUARTER, q.period, n, &idx))
        return acr__usage(usage_kpi, "--period wants YYYY-MM or YYYY-Qn, not '%s'", q.period);
    return query_run(cli, &q, true);
}
