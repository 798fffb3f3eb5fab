/* cmd_payout.c - plans and payouts: plan publish|show, payout
 * run|close|audit|list.
 *
 * `plan publish` wraps a plan document into a plan.published event and
 * appends it like `append` would (same validation, same diagnostics), so a
 * plan file never has to be hand-edited into an envelope. The payout
 * commands are thin: the engine (payout.h) computes, closes and audits; this
 * file writes DIR/statement.csv (exactly the fingerprinted bytes) and
 * DIR/summary.json, or prints the engine's table, and maps refusals to the
 * exit codes of cli.md (4 for period_closed / period_order /
 * unplanned_sales, 5 for an audit mismatch).
 */
#define _GNU_SOURCE /* O_DIRECT */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "accrue/buf.h"
#include "accrue/date.h"
#include "accrue/event.h"
#include "accrue/limits.h"
#include "accrue/log.h"
#include "accrue/money.h"
#include "accrue/payout.h"
#include "cli.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

/* ---- plan publish -------------------------------------------------------- */

static const char usage_plan[] =
    "usage: accrue plan publish FILE [--id ID] [--at TS]\n"
    "       accrue plan show PLAN_ID [--version N] [--format table|json]\n"
    "\n"
    "publish wraps the plan document of FILE (- for stdin) into\n"
    "  {\"id\":ID,\"type\":\"plan.published\",\"at\":TS,\"data\":{\"plan\":<document>}}\n"
    "and appends it.\n"
    "  --id ID   default plan:<plan_id>:v<version> (event ids allow no '@')\n"
    "  --at TS   default the local midnight starting the document's effective_from under\n"
    "            the ledger's UTC offset (effective_from 2026-07-01 at +09:00 gives\n"
    "            2026-06-30T15:00:00Z)\n"
    "Publishing the same document again with the same id is a no-op.\n"
    "\n"
    "show prints the stored versions of PLAN_ID (or only --version N) in publication\n"
    "order: a table (version, effective_from, currency, ceiling, clawback days,\n"
    "bonuses, cap, publishing seq and time in the ledger's business time), then each\n"
    "version's rules and brackets; with --format json one document per line, as stored.\n";

/* The defaults of publish, read from the document (the engine validates it). */
static int plan_defaults(const acr_cli_t *cli, acr_ledger_t *ledger, const acr_input_t *in,
                         char *id, size_t id_cap, char at[ACR_TS_BUF], bool need_id, bool need_at)
{
    acr_jv_t doc, v;
    size_t pos = 0;
    char plan_id[128] = "", eff[16] = "";
    int64_t version = 0;
    int32_t day;
    (void)cli;
    if (acr__json_value((const char *)in->data, in->len, &pos, &doc) != 0 || doc.kind != 'o') {
        acr__diag(ACR_EINVALID_PLAN, "the plan file does not hold a JSON object");
        return acr_err_exit_code(ACR_EINVALID_PLAN);
    }
    if (acr__json_get(&doc, "plan_id", &v) && v.kind == 's')
        acr__json_text(&v, plan_id, sizeof plan_id);
    if (acr__json_get(&doc, "version", &v))
        acr__json_i64(&v, &version);
    if (acr__json_get(&doc, "effective_from", &v) && v.kind == 's')
        acr__json_text(&v, eff, sizeof eff);
    if (need_id && (plan_id[0] == '\0' || version < 1)) {
        acr__diag(ACR_EINVALID_PLAN, "no plan_id / version in the document (or give --id)");
        return acr_err_exit_code(ACR_EINVALID_PLAN);
    }
    if (need_at && !acr_date_parse(eff, strlen(eff), &day)) {
        acr__diag(ACR_EINVALID_PLAN, "no valid effective_from in the document (or give --at)");
        return acr_err_exit_code(ACR_EINVALID_PLAN);
    }
    if (need_id)
        snprintf(id, id_cap, "plan:%s:v%" PRId64, plan_id, version);
    if (need_at) {
        int64_t off_ms = (int64_t)acr_ledger_config(ledger)->utc_offset_min * 60000;
        acr_ts_format((int64_t)day * ACR_MS_PER_DAY - off_ms, at);
    }
    return 0;
}

/* Builds the envelope around the document (trailing whitespace trimmed). */
static int plan_envelope(const acr_input_t *in, const char *id, const char *at, acr_buf_t *out)
{
    size_t n = in->len;
    while (n > 0 && strchr(" \t\r\n", in->data[n - 1]) != NULL)
        n--;
    int rc = acr_buf_append_str(out, "{\"id\":");
    rc = rc ? rc : acr_buf_append_json_str(out, id, strlen(id));
    rc = rc ? rc : acr_buf_append_str(out, ",\"type\":\"plan.published\",\"at\":");
    rc = rc ? rc : acr_buf_append_json_str(out, at, strlen(at));
    rc = rc ? rc : acr_buf_append_str(out, ",\"data\":{\"plan\":");
    rc = rc ? rc : acr_buf_append(out, in->data, n);
    rc = rc ? rc : acr_buf_append_str(out, "}}");
    return rc;
}

/* Appends one event; reports like append. */
static int append_one(const acr_cli_t *cli, acr_ledger_t *ledger, const acr_buf_t *text,
                      const char *what)
{
    acr_batch_t b;
    acr_err_t err;
    acr_errlist_t *errs = calloc(1, sizeof *errs);
    uint64_t seq = 0;
    acr_append_result_t res = {.seqs = &seq};
    if (errs == NULL)
        return acr__fail(ACR_ENOMEM, NULL);
    acr_batch_init(&b);
    acr_batch_set_actor(&b, acr__cli_actor());
    acr_err_clear(&err);
    int rc = acr_batch_add_json(&b, acr_ledger_config(ledger), 1, (const char *)text->data,
                                text->len, &err);
    if (rc != 0) {
        err.line = 0;
        rc = acr__fail(rc, &err);
    } else if ((rc = acr_ledger_append(ledger, &b, &res, errs)) != 0) {
        for (size_t i = 0; i < errs->count; i++)
            errs->items[i].line = 0;
        if (errs->count > 0)
            acr__diag_errlist(errs);
        rc = errs->count > 0 ? acr_errlist_exit_code(errs) : acr__fail(rc, NULL);
    } else if (!cli->quiet) {
        printf("%s %s (seq %" PRIu64 ")\n", res.appended ? "published" : "already present:", what,
               seq);
    }
    acr_batch_destroy(&b);
    free(errs);
    return rc;
}

static int plan_publish(acr_cli_t *cli, const char *file, const char *id_opt, const char *at_opt)
{
    acr_ledger_t *ledger;
    acr_input_t in;
    acr_err_t err;
    char id[160], at[ACR_TS_BUF];
    int rc = acr__open_ledger(cli, &ledger);
    if (rc != 0)
        return rc;
    if ((rc = acr__refuse_on_replica(ledger)) != 0) {
        acr_ledger_close(ledger);
        return rc;
    }
    acr_err_clear(&err);
    if ((rc = acr__input_read(file, &in, &err)) != 0) {
        acr_ledger_close(ledger);
        return acr__fail(rc, &err);
    }
    acr__input_skip_bom(&in);
    rc = plan_defaults(cli, ledger, &in, id, sizeof id, at, id_opt == NULL, at_opt == NULL);
    if (rc == 0) {
        acr_buf_t text;
        acr_buf_init(&text);
        const char *use_id = id_opt != NULL ? id_opt : id;
        rc = plan_envelope(&in, use_id, at_opt != NULL ? at_opt : at, &text);
        rc = rc != 0 ? acr__fail(rc, NULL) : append_one(cli, ledger, &text, use_id);
        acr_buf_destroy(&text);
    }
    acr__input_free(&in);
    acr_ledger_close(ledger);
    return rc;
}

/* ---- plan show ----------------------------------------------------------- */

static bool plan_matches(const acr_event_t *ev, const char *plan_id, int64_t version)
{
    acr_jv_t doc, v;
    size_t pos = 0;
    char pid[128] = "";
    int64_t ver = 0;
    const acr_str_t *s = &ev->str[ACR_F_PLAN];
    if (acr__json_value(s->ptr, s->len, &pos, &doc) != 0 || doc.kind != 'o')
        return false;
    if (acr__json_get(&doc, "plan_id", &v))
        acr__json_text(&v, pid, sizeof pid);
    if (acr__json_get(&doc, "version", &v))
        acr__json_i64(&v, &ver);
    return strcmp(pid, plan_id) == 0 && (version == 0 || ver == version);
}

/* A rate in basis points as a percentage with two decimals: 1500 -> "15.00%". */
static void rate_text(int64_t bp, char *out, size_t cap)
{
    snprintf(out, cap, "%s%" PRId64 ".%02" PRId64 "%%", bp < 0 ? "-" : "",
             (bp < 0 ? -bp : bp) / 100, (bp < 0 ? -bp : bp) % 100);
}

/* An integer member as text ("-" when absent); money in the plan's currency. */
static void member_text(const acr_jv_t *doc, const char *key, int money_dec, const char *cur,
                        char *out, size_t cap)
{
    acr_jv_t v;
    int64_t n;
    if (!acr__json_get(doc, key, &v) || !acr__json_i64(&v, &n)) {
        snprintf(out, cap, "-");
        return;
    }
    if (money_dec >= 0)
        acr_money_display(n, money_dec, cur, out, (unsigned)cap);
    else if (money_dec == -2)
        rate_text(n, out, cap);
    else
        snprintf(out, cap, "%" PRId64, n);
}

typedef struct plan_row {
    acr_jv_t doc;
    uint64_t seq;
    int64_t at_ms;
} plan_row_t;

static void plan_table_row(acr_table_t *t, const plan_row_t *r, int32_t off_min)
{
    acr_jv_t v, targets, tg;
    char cur[8] = "", cell[9][96];
    if (acr__json_get(&r->doc, "currency", &v))
        acr__json_text(&v, cur, sizeof cur);
    int dec = acr_currency_decimals(cur, strlen(cur));
    dec = dec < 0 ? 0 : dec;
    member_text(&r->doc, "version", -1, NULL, cell[0], sizeof cell[0]);
    snprintf(cell[1], sizeof cell[1], "-");
    if (acr__json_get(&r->doc, "effective_from", &v))
        acr__json_text(&v, cell[1], sizeof cell[1]);
    member_text(&r->doc, "ceiling_bp", -2, NULL, cell[2], sizeof cell[2]);
    member_text(&r->doc, "clawback_days", -1, NULL, cell[3], sizeof cell[3]);
    member_text(&r->doc, "new_customer_bonus_minor", dec, cur, cell[4], sizeof cell[4]);
    size_t n = 0, pos = 0;
    if (acr__json_get(&r->doc, "targets", &targets) && targets.kind == 'a')
        while (acr__json_arr_next(&targets, &pos, &tg) == 1)
            n++;
    snprintf(cell[5], sizeof cell[5], "%zu", n);
    member_text(&r->doc, "cap_bp", -2, NULL, cell[6], sizeof cell[6]);
    snprintf(cell[7], sizeof cell[7], "%" PRIu64, r->seq);
    char at[ACR_TS_BUF];
    acr_ts_format_local(r->at_ms, off_min, at);
    snprintf(cell[8], sizeof cell[8], "%s", at);
    acr__table_add(t, cell[0]);
    acr__table_add(t, cell[1]);
    acr__table_add(t, cur);
    for (int i = 2; i < 9; i++)
        acr__table_add(t, cell[i]);
}

/* "tier=gold kind=reseller" or "(any)". */
static void match_text(const acr_jv_t *rule, char *out, size_t cap)
{
    acr_jv_t match, k, v;
    size_t pos = 0, used = 0;
    out[0] = '\0';
    if (acr__json_get(rule, "match", &match) && match.kind == 'o')
        while (acr__json_obj_next(&match, &pos, &k, &v) == 1 && used + 2 < cap) {
            char key[32], val[96];
            acr__json_text(&k, key, sizeof key);
            acr__json_text(&v, val, sizeof val);
            int w = snprintf(out + used, cap - used, "%s%s=%s", used ? " " : "", key, val);
            used = w < 0 ? used : (size_t)w < cap - used ? used + (size_t)w : cap - 1;
        }
    if (out[0] == '\0')
        snprintf(out, cap, "(any)");
}

static void plan_rules(const plan_row_t *r, const char *plan_id)
{
    acr_jv_t rules, rule, brackets, br, v;
    char cur[8] = "", ver[24];
    if (acr__json_get(&r->doc, "currency", &v))
        acr__json_text(&v, cur, sizeof cur);
    int dec = acr_currency_decimals(cur, strlen(cur));
    member_text(&r->doc, "version", -1, NULL, ver, sizeof ver);
    printf("\n%s@%s rules (first match wins):\n", plan_id, ver);
    size_t pos = 0;
    if (!acr__json_get(&r->doc, "rules", &rules) || rules.kind != 'a')
        return;
    for (int i = 0; acr__json_arr_next(&rules, &pos, &rule) == 1; i++) {
        char match[256];
        match_text(&rule, match, sizeof match);
        printf("  #%d %-28s", i, match);
        size_t bpos = 0;
        if (acr__json_get(&rule, "brackets", &brackets) && brackets.kind == 'a')
            for (int k = 0; acr__json_arr_next(&brackets, &bpos, &br) == 1; k++) {
                char from[64], rate[24];
                member_text(&br, "from_minor", dec < 0 ? 0 : dec, cur, from, sizeof from);
                member_text(&br, "rate_bp", -2, NULL, rate, sizeof rate);
                printf("%s from %s: %s", k ? "," : "", from, rate);
            }
        printf("\n");
    }
    /* the target bonuses: the highest target the period's net revenue reaches pays */
    acr_jv_t targets, tg;
    pos = 0;
    if (!acr__json_get(&r->doc, "targets", &targets) || targets.kind != 'a')
        return;
    for (int i = 0; acr__json_arr_next(&targets, &pos, &tg) == 1; i++) {
        char at[64], bonus[64];
        member_text(&tg, "net_revenue_minor", dec < 0 ? 0 : dec, cur, at, sizeof at);
        member_text(&tg, "bonus_minor", dec < 0 ? 0 : dec, cur, bonus, sizeof bonus);
        printf("%s    net revenue of a period from %s: bonus %s\n",
               i ? "" : "  targets (the highest reached pays):\n", at, bonus);
    }
}

static int plan_print(const char *plan_id, const plan_row_t *rows, size_t n, int32_t off_min)
{
    static const char *head[] = {"version", "effective_from", "currency", "ceiling",
                                 "clawback_days", "new_customer_bonus", "targets", "cap",
                                 "seq", "published (business time)"};
    acr_table_t t;
    acr__table_init(&t, 10, 0x1f9);
    for (size_t i = 0; i < 10; i++)
        acr__table_add(&t, head[i]);
    for (size_t i = 0; i < n; i++)
        plan_table_row(&t, &rows[i], off_min);
    printf("plan %s\n", plan_id);
    acr__table_print(&t, stdout);
    acr__table_destroy(&t);
    for (size_t i = 0; i < n; i++)
        plan_rules(&rows[i], plan_id);
    return ACR_EXIT_OK;
}

static int plan_show(acr_cli_t *cli, const char *plan_id, int64_t version, bool json)
{
    acr_ledger_t *ledger;
    acr_reader_t *r = NULL;
    acr_err_t err;
    acr_event_t ev;
    plan_row_t *rows = NULL;
    size_t found = 0, cap = 0;
    int rc = acr__open_ledger(cli, &ledger);
    if (rc != 0)
        return rc;
    acr_err_clear(&err);
    rc = acr_reader_open(ledger, &r, &err);
    if (rc == 0 && acr_reader_head_seq(r) > 0)
        rc = acr_reader_seek(r, 1, &err);
    while (rc == 0 && acr_reader_head_seq(r) > 0) {
        rc = acr_reader_next(r, &ev, NULL, &err);
        if (rc <= 0)
            break;
        rc = 0;
        if (ev.type != ACR_EV_PLAN_PUBLISHED || !plan_matches(&ev, plan_id, version))
            continue;
        if (json) {
            acr__out(ev.str[ACR_F_PLAN].ptr, ev.str[ACR_F_PLAN].len);
            acr__out("\n", 1);
        } else if (found == cap) { /* slices stay valid while the reader is open */
            cap = cap ? cap * 2 : 8;
            plan_row_t *grown = realloc(rows, cap * sizeof *rows);
            if (grown == NULL) {
                rc = acr_err_set(&err, ACR_ENOMEM, "out of memory");
                break;
            }
            rows = grown;
        }
        if (!json) {
            size_t pos = 0;
            const acr_str_t *s = &ev.str[ACR_F_PLAN];
            acr__json_value(s->ptr, s->len, &pos, &rows[found].doc);
            rows[found].seq = ev.seq;
            rows[found].at_ms = ev.at_ms;
        }
        found++;
    }
    if (rc == 0 && found > 0 && !json)
        plan_print(plan_id, rows, found, acr_ledger_config(ledger)->utc_offset_min);
    free(rows);
    if (r != NULL)
        acr_reader_close(r);
    acr_ledger_close(ledger);
    if (rc < 0)
        return acr__fail(rc, &err);
    if (found == 0) {
        acr__diag(ACR_ENOT_FOUND, "plan %s has no published version%s", plan_id,
                  version ? " with that number" : "");
        return acr_err_exit_code(ACR_ENOT_FOUND);
    }
    return ACR_EXIT_OK;
}

int acr__cmd_plan(acr_cli_t *cli, int argc, char **argv)
{
    static const struct option opts[] = {
        {"id", required_argument, NULL, 'i'},
        {"at", required_argument, NULL, 'a'},
        {"version", required_argument, NULL, 'v'},
        {"format", required_argument, NULL, 'f'},
        ACR_CLI_COMMON_OPTS,
        {NULL, 0, NULL, 0},
    };
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        if (argc >= 2)
            return fputs(usage_plan, stdout), ACR_EXIT_OK;
        return acr__usage(usage_plan, "plan wants publish or show");
    }
    bool publish = strcmp(argv[1], "publish") == 0;
    if (!publish && strcmp(argv[1], "show") != 0)
        return acr__usage(usage_plan, "unknown subcommand 'plan %s'", argv[1]);
    const char *id = NULL, *at = NULL;
    uint64_t version = 0;
    bool json = false;
    int c, rc;
    argc--;
    argv++;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if ((c == 'i' || c == 'a') && !publish)
            return acr__usage(usage_plan, "--id and --at belong to plan publish");
        if (c == 'v' &&
            (!acr__parse_u64(optarg, &version) || version == 0 || publish || version > INT64_MAX))
            return acr__usage(usage_plan, "plan show --version wants an integer >= 1");
        if (c == 'f' && (publish || (strcmp(optarg, "json") != 0 && strcmp(optarg, "table") != 0)))
            return acr__usage(usage_plan, "plan show --format wants table or json");
        if (c == 'i')
            id = optarg;
        else if (c == 'a')
            at = optarg;
        else if (c == 'f')
            json = strcmp(optarg, "json") == 0;
        else if (c != 'v' && (rc = acr__common_opt(cli, c, argv, usage_plan)) >= 0)
            return rc;
    }
    if (argc - optind != 1)
        return acr__usage(usage_plan,
                          publish ? "plan publish wants one FILE" : "plan show wants one PLAN_ID");
    if (publish)
        return plan_publish(cli, argv[optind], id, at);
    return plan_show(cli, argv[optind], (int64_t)version, json);
}

/* ---- payout -------------------------------------------------------------- */

static const char usage_payout[] =
    "usage: accrue payout run PERIOD [--as-of SEQ] [--out DIR] [--plan-file FILE]... [--totals]\n"
    "       accrue payout close PERIOD [--out DIR] [--force]\n"
    "       accrue payout audit PERIOD [--out DIR]\n"
    "       accrue payout list\n"
    "       accrue payout export PERIOD [--format csv]\n"
    "\n"
    "PERIOD is a month (2026-07) or a quarter (2026-Q3), the ledger's payout period.\n"
    "\n"
    "run    computes the run of PERIOD as of the head (or --as-of SEQ): a draft that\n"
    "       writes nothing to the ledger. For a period closed as of the run, it is the\n"
    "       reproduction of its close. --plan-file adds an unpublished plan version for\n"
    "       a what-if run (validated like plan.published, taken as published after the\n"
    "       run's seq; repeatable, in order); its table and summary.json say WHAT-IF.\n"
    "       --totals prints one row per partner (lines, prior-period, total) instead of\n"
    "       every line.\n"
    "close  computes the run as of the head and appends period.closed. Refused (exit 4)\n"
    "       with period_open (the period's end, its local midnight, is still in the\n"
    "       future by this machine's clock; --force closes it anyway), period_closed,\n"
    "       period_order or unplanned_sales; exit 5 when the chain does not verify.\n"
    "       A close is final: a wrong one is corrected forward (docs/finance-guide.md).\n"
    "audit  recomputes a closed period as of its recorded through_seq: exit 0 when the\n"
    "       bytes and the fingerprint equal the recorded ones, else exit 5 and the first\n"
    "       differing line (recorded vs computed).\n"
    "list   closed periods with their seq, through_seq, lines, fingerprint and totals.\n"
    "export a closed period for payroll / ERP, CSV on stdout, one row per partner of its\n"
    "       statement: partner_id,name,currency,amount,lines,fingerprint; amount is the\n"
    "       partner's total in major units as an exact decimal (1234.50; 1234 for JPY).\n"
    "\n"
    "--out DIR (created if missing) writes DIR/statement.csv, the exact fingerprinted\n"
    "bytes (check them with `xxh128sum DIR/statement.csv`), and DIR/summary.json.\n"
    "Without --out the run is printed as a table per partner with the fingerprint.\n";

enum { PAY_RUN, PAY_CLOSE, PAY_AUDIT, PAY_LIST, PAY_EXPORT };

typedef struct payout_args {
    int sub;                 /* PAY_* */
    const char *period;      /* PERIOD operand */
    uint64_t as_of;          /* --as-of, 0 = head */
    const char *out_dir;     /* --out or NULL */
    const char **plan_files; /* --plan-file, in order */
    size_t plan_file_count;
    bool force;              /* --force: close a period that has not ended */
    bool totals;             /* --totals: per-partner totals instead of every line */
    const char *format;      /* export --format (csv) */
} payout_args_t;

/* Writes DIR/statement.csv and DIR/summary.json. */
static int write_out(const char *dir, const acr_payout_t *p)
{
    char path[4096];
    acr_err_t err;
    acr_buf_t summary;
    acr_err_clear(&err);
    acr_buf_init(&summary);
    int rc = acr__mkdir_p(dir, &err);
    if (rc == 0 && p->stmt.csv != NULL) { /* else it was streamed there by the run */
        snprintf(path, sizeof path, "%s/statement.csv", dir);
        rc = acr__write_file(path, p->stmt.csv, p->stmt.csv_len, &err);
    }
    if (rc == 0 && (rc = acr_payout_summary_json(p, &summary)) != 0)
        acr_err_set(&err, rc, "cannot render summary.json");
    if (rc == 0 && (summary.len == 0 || summary.data[summary.len - 1] != '\n'))
        rc = acr_buf_append(&summary, "\n", 1);
    if (rc == 0) {
        snprintf(path, sizeof path, "%s/summary.json", dir);
        rc = acr__write_file(path, summary.data, summary.len, &err);
    }
    acr_buf_destroy(&summary);
    return rc != 0 ? acr__fail(rc, &err) : ACR_EXIT_OK;
}

/* The run's output: files with --out, else the engine's table (with --totals, the
 * per-partner totals table, also after the files). */
static int emit_run(const acr_cli_t *cli, acr_ledger_t *ledger, const payout_args_t *a,
                    const acr_payout_t *p)
{
    static const char *verb[] = {"run", "close", "audit", "list", "export"};
    if (a->out_dir != NULL) {
        int rc = write_out(a->out_dir, p);
        /* `--out review/` names review/statement.csv, not review//statement.csv */
        size_t dn = strlen(a->out_dir);
        while (dn > 1 && a->out_dir[dn - 1] == '/')
            dn--;
        const char *sep = dn == 1 && a->out_dir[0] == '/' ? "" : "/";
        if (rc == 0 && !cli->quiet)
            printf("%s %s through seq %" PRIu64 ": %zu lines, fingerprint %s%s%s; wrote "
                   "%.*s%sstatement.csv and %.*s%ssummary.json\n",
                   verb[a->sub], p->period_id, p->through_seq, p->stmt.line_count,
                   p->stmt.fingerprint, p->reproduces_close ? " (reproduces its close)" : "",
                   p->whatif_count ? " (WHAT-IF: unpublished plans, not payable)" : "",
                   (int)dn, a->out_dir, sep, (int)dn, a->out_dir, sep);
        if (rc != 0 || !a->totals)
            return rc;
    }
    acr_buf_t out;
    acr_names_t names;
    acr_buf_init(&out);
    acr__names_load(ledger, &names);
    int rc = a->totals ? acr_payout_totals_table(p, acr__name_of, &names, &out)
                       : acr_payout_table(p, acr__name_of, &names, &out);
    acr__names_free(&names);
    if (rc == 0)
        acr__out(out.data, out.len);
    acr_buf_destroy(&out);
    return rc != 0 ? acr__fail(rc, NULL) : ACR_EXIT_OK;
}

/* The statement file of --out. A year's statement is ~1.3 GB: written through the page cache,
 * each page is allocated (reclaiming another on a machine whose memory holds the ledger and
 * everything read before) and copied into, which cost the writer thread as much CPU as the
 * processor's formatting. So the file is opened with O_DIRECT where the file system takes it,
 * and the streamed run's chunks (4 KiB-aligned 1 MiB buffers, csv_async.c) go from our memory
 * to the disk. The first write that is not aligned (the last chunk, or any chunk of a run that
 * streams synchronously) turns O_DIRECT off for the rest of the file, as does a file system
 * that refuses such a write (EINVAL). */
#define CSV_ALIGN 4096u

typedef struct csv_file {
    int fd;
    bool direct; /* O_DIRECT still set: every write so far was whole pages, so the file
                  * offset is page-aligned too */
} csv_file_t;

static int csv_open(csv_file_t *f, const char *path)
{
    int flags = O_WRONLY | O_CREAT | O_TRUNC;
    f->fd = open(path, flags | O_DIRECT, 0644);
    f->direct = f->fd >= 0;
    if (f->fd < 0 && errno == EINVAL) /* tmpfs and others */
        f->fd = open(path, flags, 0644);
    return f->fd;
}

static void csv_direct_off(csv_file_t *f)
{
    int fl = fcntl(f->fd, F_GETFL);
    if (fl >= 0)
        (void)fcntl(f->fd, F_SETFL, fl & ~O_DIRECT);
    f->direct = false;
}

/* Streams the statement CSV to the file while the run computes it, so a
 * 10 M-line statement never sits in memory (commission.h, acr_comm_output_t). */
static int csv_sink(void *arg, const void *p, size_t n)
{
    csv_file_t *f = arg;
    if (f->direct && ((uintptr_t)p % CSV_ALIGN != 0 || n % CSV_ALIGN != 0))
        csv_direct_off(f);
    for (const char *c = p; n > 0;) {
        ssize_t w = write(f->fd, c, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && errno == EINVAL && f->direct) {
            csv_direct_off(f);
            continue;
        }
        if (w <= 0)
            return ACR_EIO;
        if (f->direct && (size_t)w % CSV_ALIGN != 0)
            csv_direct_off(f); /* a short write leaves the rest unaligned */
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

/* The run itself: with --out, the CSV is streamed to DIR/statement.csv.tmp and
 * renamed into place only when the run succeeded. */
static int run_streamed(acr_ledger_t *ledger, const acr_payout_request_t *req, const char *dir,
                        bool totals_only, acr_payout_t *p, acr_err_t *err)
{
    if (dir == NULL && totals_only) {
        acr_comm_output_t lean = {.omit_lines = true}; /* 100 k lines need not sit in memory */
        return acr_payout_run_with_output(ledger, req, &lean, p, err);
    }
    if (dir == NULL)
        return acr_payout_run(ledger, req, p, err);
    char tmp[4096], path[4096];
    snprintf(tmp, sizeof tmp, "%s/statement.csv.tmp", dir);
    snprintf(path, sizeof path, "%s/statement.csv", dir);
    csv_file_t f = {.fd = -1};
    int rc = acr__mkdir_p(dir, err);
    if (rc == 0 && csv_open(&f, tmp) < 0)
        return acr_err_set(err, ACR_EIO, "cannot write %s: %s", tmp, strerror(errno));
    if (rc != 0)
        return rc;
    acr_comm_output_t out = {.csv_write = csv_sink, .csv_arg = &f, .omit_lines = true}; /* the lines are in the file */
    rc = acr_payout_run_with_output(ledger, req, &out, p, err);
    if (close(f.fd) != 0 && rc == 0)
        rc = acr_err_set(err, ACR_EIO, "cannot write %s: %s", tmp, strerror(errno));
    if (rc == 0 && rename(tmp, path) != 0)
        rc = acr_err_set(err, ACR_EIO, "cannot rename %s: %s", tmp, strerror(errno));
    if (rc != 0)
        unlink(tmp);
    return rc;
}

static int payout_run(acr_cli_t *cli, acr_ledger_t *ledger, const payout_args_t *a)
{
    acr_input_t *plans = calloc(a->plan_file_count + 1, sizeof *plans);
    const char **texts = calloc(a->plan_file_count + 1, sizeof *texts);
    size_t *lens = calloc(a->plan_file_count + 1, sizeof *lens);
    acr_err_t err;
    acr_payout_t p;
    int rc = plans && texts && lens ? 0 : ACR_ENOMEM;
    size_t loaded = 0;
    acr_err_clear(&err);
    memset(&p, 0, sizeof p);
    for (; rc == 0 && loaded < a->plan_file_count; loaded++) {
        rc = acr__input_read(a->plan_files[loaded], &plans[loaded], &err);
        acr__input_skip_bom(&plans[loaded]);
        texts[loaded] = (const char *)plans[loaded].data;
        lens[loaded] = plans[loaded].len;
    }
    if (rc == 0) {
        acr_payout_request_t req = {a->period, a->as_of, texts, lens, a->plan_file_count};
        acr__progress_begin(cli, "payout run");
        rc = run_streamed(ledger, &req, a->out_dir, a->totals, &p, &err);
        acr__progress_end();
    }
    rc = rc != 0 ? acr__fail(rc, &err) : emit_run(cli, ledger, a, &p);
    acr_payout_destroy(&p);
    for (size_t i = 0; i < loaded; i++)
        acr__input_free(&plans[i]);
    free(plans);
    free(texts);
    free(lens);
    return rc;
}

/* --out of a close, checked before the close is committed (cli.md: exit 1, nothing
 * half-written): the folder made and writable, and each file it will write either absent or a
 * regular file this process may write. 0, or an error in err. */
static int close_out_ready(const char *dir, acr_err_t *err)
{
    static const char *const names[] = {"statement.csv", "summary.json"};
    if (acr__mkdir_p(dir, err) != 0)
        return ACR_EIO;
    if (access(dir, W_OK | X_OK) != 0)
        return acr_err_set(err, ACR_EIO, "%s is not writable: %s", dir, strerror(errno));
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        char path[4096];
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        if (lstat(path, &st) != 0)
            continue; /* made by the write */
        if (!S_ISREG(st.st_mode))
            return acr_err_set(err, ACR_EIO, "%s exists and is not a regular file", path);
        if (access(path, W_OK) != 0)
            return acr_err_set(err, ACR_EIO, "%s is not writable: %s", path, strerror(errno));
    }
    return 0;
}

static int payout_close(acr_cli_t *cli, acr_ledger_t *ledger, const payout_args_t *a)
{
    acr_err_t err;
    acr_payout_t p;
    uint64_t seq = 0;
    int refused = acr__refuse_on_replica(ledger);
    if (refused != 0)
        return refused;
    acr_err_clear(&err);
    memset(&p, 0, sizeof p);
    if (a->out_dir != NULL && close_out_ready(a->out_dir, &err) != 0)
        return acr__fail(ACR_EIO, &err);
    acr__progress_begin(cli, "payout close");
    acr_close_request_t req = {.period_id = a->period, .now_ms = acr__wall_ms(),
                               .force = a->force, .actor = acr__cli_actor()};
    int rc = acr_payout_close(ledger, &req, &p, &seq, &err);
    acr__progress_end();
    if (rc == ACR_EPERIOD_OPEN) {
        acr__diag_err(&err);
        fprintf(stderr, "accrue: hint: close it after it ends, or give --force to close it "
                        "now (its events recorded after the close are paid by the next run as "
                        "prior-period lines)\n");
        rc = acr_err_exit_code(rc);
    } else if (rc != 0) {
        rc = acr__fail(rc, &err);
    } else {
        if (!cli->quiet)
            printf("closed %s as seq %" PRIu64 " (through seq %" PRIu64
                   "): %zu lines, fingerprint %s\n",
                   p.period_id, seq, p.through_seq, p.stmt.line_count, p.stmt.fingerprint);
        if (a->out_dir != NULL || !cli->quiet)
            rc = emit_run(cli, ledger, a, &p);
        /* the files failed after all (a disk that filled up): the close stands, and its
         * audit writes the same statement.csv */
        if (rc != 0 && a->out_dir != NULL)
            fprintf(stderr, "accrue: note: %s is closed (seq %" PRIu64 "); write its files "
                            "with `accrue payout audit %s --out %s`\n",
                    p.period_id, seq, p.period_id, a->out_dir);
    }
    acr_payout_destroy(&p);
    return rc;
}

static void audit_report(const char *period, const acr_audit_t *au, const acr_payout_t *p)
{
    if (au->first_diff_line == 0) {
        acr__diag(ACR_EMISMATCH, "%s: recorded fingerprint %s, computed %s", period,
                  au->recorded_fingerprint, p->stmt.fingerprint);
        return;
    }
    acr__diag(ACR_EMISMATCH, "%s: line %" PRIu64 " differs from the recorded statement", period,
              au->first_diff_line);
    acr__diag(ACR_EMISMATCH, "recorded: %s",
              au->recorded_line[0] ? au->recorded_line : "(past the end)");
    acr__diag(ACR_EMISMATCH, "computed: %s",
              au->computed_line[0] ? au->computed_line : "(past the end)");
}

static int payout_audit(acr_cli_t *cli, acr_ledger_t *ledger, const payout_args_t *a)
{
    acr_err_t err;
    acr_payout_t p;
    acr_audit_t au;
    acr_err_clear(&err);
    memset(&p, 0, sizeof p);
    memset(&au, 0, sizeof au);
    acr__progress_begin(cli, "payout audit");
    int rc = acr_payout_audit(ledger, a->period, &p, &au, &err);
    acr__progress_end();
    if (rc == ACR_ENOT_FOUND && err.msg[0] == '\0')
        snprintf(err.msg, sizeof err.msg, "period %s is not closed", a->period);
    if (rc != 0) {
        rc = acr__fail(rc, &err);
    } else if (a->out_dir != NULL && (rc = write_out(a->out_dir, &p)) != 0) {
        /* reported */
    } else if (au.match) {
        if (!cli->quiet)
            printf("ok: %s matches its close: %zu lines, fingerprint %s\n", a->period,
                   p.stmt.line_count, au.recorded_fingerprint);
        if (a->out_dir == NULL && !cli->quiet) /* cli.md: without --out, a table per partner */
            rc = emit_run(cli, ledger, a, &p);
    } else {
        audit_report(a->period, &au, &p);
        rc = acr_err_exit_code(ACR_EMISMATCH);
    }
    acr_payout_destroy(&p);
    return rc;
}

/* A close's totals ({"JPY":463214,"USD":100}) as finance reads them: "463,214 JPY, 1.00 USD". */
static void totals_text(const char *json, char *out, size_t cap)
{
    acr_jv_t obj, key, val;
    size_t pos = 0, used = 0;
    out[0] = '\0';
    if (acr__json_value(json, strlen(json), &pos, &obj) != 0 || obj.kind != 'o') {
        snprintf(out, cap, "%s", json);
        return;
    }
    pos = 0;
    while (acr__json_obj_next(&obj, &pos, &key, &val) == 1 && used + 1 < cap) {
        char cur[8], amount[64];
        int64_t minor;
        acr__json_text(&key, cur, sizeof cur);
        if (!acr__json_i64(&val, &minor))
            continue;
        int dec = acr_currency_decimals(cur, strlen(cur));
        acr_money_display(minor, dec < 0 ? 0 : dec, cur, amount, sizeof amount);
        int n = snprintf(out + used, cap - used, "%s%s", used ? ", " : "", amount);
        if (n < 0)
            break;
        used += (size_t)n < cap - used ? (size_t)n : cap - used - 1;
    }
    if (used == 0) /* a close without lines ({}): nothing paid, said so rather than blank */
        snprintf(out, cap, "nothing");
}

static int payout_list(acr_ledger_t *ledger)
{
    acr_close_info_t *list = NULL;
    size_t n = 0;
    acr_err_t err;
    acr_err_clear(&err);
    int rc = acr_payout_list(ledger, &list, &n, &err);
    if (rc != 0)
        return acr__fail(rc, &err);
    acr_table_t t;
    char num[3][24];
    acr__table_init(&t, 6, 0x2e);
    static const char *head[] = {"period", "seq", "through_seq", "lines", "fingerprint", "totals"};
    for (size_t i = 0; i < 6; i++)
        acr__table_add(&t, head[i]);
    for (size_t i = 0; i < n; i++) {
        snprintf(num[0], sizeof num[0], "%" PRIu64, list[i].seq);
        snprintf(num[1], sizeof num[1], "%" PRIu64, list[i].through_seq);
        snprintf(num[2], sizeof num[2], "%" PRIu64, list[i].lines);
        acr__table_add(&t, list[i].period_id);
        for (size_t k = 0; k < 3; k++)
            acr__table_add(&t, num[k]);
        acr__table_add(&t, list[i].fingerprint);
        char totals[256];
        totals_text(list[i].totals_json, totals, sizeof totals);
        acr__table_add(&t, totals);
    }
    acr__table_print(&t, stdout);
    acr__table_destroy(&t);
    free(list);
    return ACR_EXIT_OK;
}

/* ---- payout export --------------------------------------------------------- */

/* A CSV field: quoted (RFC 4180) when it holds a comma, a quote or a line break. */
static void csv_cell(acr_buf_t *b, const char *text)
{
    if (strpbrk(text, ",\"\r\n") == NULL) {
        acr_buf_append_str(b, text);
        return;
    }
    acr_buf_append(b, "\"", 1);
    for (const char *c = text; *c != '\0'; c++) {
        if (*c == '"')
            acr_buf_append(b, "\"", 1); /* a quote is doubled */
        acr_buf_append(b, c, 1);
    }
    acr_buf_append(b, "\"", 1);
}

/* Field i (0-based) of one statement record [p, end) (no field holds a comma). */
static bool stmt_field(const char *p, const char *end, int i, char *out, size_t cap)
{
    for (; i > 0 && p < end; i--) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        if (comma == NULL)
            return false;
        p = comma + 1;
    }
    const char *comma = memchr(p, ',', (size_t)(end - p));
    size_t n = (size_t)((comma ? comma : end) - p);
    if (i != 0 || n >= cap)
        return false;
    memcpy(out, p, n);
    out[n] = '\0';
    return true;
}

typedef struct export_row {
    char partner_id[72];
    char currency[8];
    int64_t total_minor;
    uint64_t lines;
} export_row_t;

static void export_emit(acr_buf_t *b, const export_row_t *r, acr_names_t *names, const char *fp)
{
    char amount[48];
    int dec = acr_currency_decimals(r->currency, strlen(r->currency));
    const char *name = acr__name_of(names, r->partner_id);
    acr_money_format(r->total_minor, dec < 0 ? 0 : dec, amount, sizeof amount);
    csv_cell(b, r->partner_id);
    acr_buf_append_str(b, ",");
    csv_cell(b, name ? name : "");
    acr_buf_printf(b, ",%s,%s,%" PRIu64 ",%s\n", r->currency, amount, r->lines, fp);
}

/* One row per partner of the stored statement: what the close paid, summed from the
 * fingerprinted bytes themselves (checked against the recorded fingerprint first). */
static int export_rows(const char *csv, size_t len, acr_names_t *names, const char *fp,
                       acr_buf_t *out, acr_err_t *err)
{
    const char *p = memchr(csv, '\n', len), *end = csv + len;
    export_row_t row = {.partner_id = ""};
    acr_buf_append_str(out, "partner_id,name,currency,amount,lines,fingerprint\n");
    for (p = p ? p + 1 : end; p < end;) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *eol = nl ? nl : end;
        char pid[72], amount[32], cur[8];
        int64_t minor;
        char *tail;
        if (!stmt_field(p, eol, 1, pid, sizeof pid) || !stmt_field(p, eol, 10, amount, sizeof amount) ||
            !stmt_field(p, eol, 11, cur, sizeof cur))
            return acr_err_set(err, ACR_ECORRUPT, "the stored statement has a malformed line");
        minor = strtoll(amount, &tail, 10);
        if (*tail != '\0')
            return acr_err_set(err, ACR_ECORRUPT, "the stored statement has a bad amount");
        if (strcmp(pid, row.partner_id) != 0) {
            if (row.partner_id[0] != '\0')
                export_emit(out, &row, names, fp);
            memset(&row, 0, sizeof row);
            snprintf(row.partner_id, sizeof row.partner_id, "%s", pid);
            snprintf(row.currency, sizeof row.currency, "%s", cur);
        }
        if (!acr_add_checked(&row.total_minor, minor))
            return acr_err_set(err, ACR_EOVERFLOW, "partner %s: the total leaves int64", pid);
        row.lines++;
        p = eol + (nl != NULL);
    }
    if (row.partner_id[0] != '\0')
        export_emit(out, &row, names, fp);
    return 0;
}

static int payout_export(acr_ledger_t *ledger, const payout_args_t *a)
{
    acr_close_info_t *list = NULL, *close = NULL;
    size_t n = 0;
    acr_err_t err;
    acr_err_clear(&err);
    if (a->format != NULL && strcmp(a->format, "csv") != 0)
        return acr__usage(usage_payout, "payout export --format wants csv");
    int rc = acr_payout_list(ledger, &list, &n, &err);
    for (size_t i = 0; rc == 0 && i < n; i++)
        if (strcmp(list[i].period_id, a->period) == 0)
            close = &list[i];
    if (rc == 0 && close == NULL)
        rc = acr_err_set(&err, ACR_ENOT_FOUND, "period %s is not closed: only a closed "
                         "period (what was paid) is exported", a->period);
    acr_reader_t *r = NULL;
    const char *csv = NULL;
    size_t len = 0;
    if (rc == 0 && (rc = acr_reader_open(ledger, &r, &err)) == 0)
        rc = acr_reader_statement(r, a->period, &csv, &len, NULL, &err); /* checked */
    acr_buf_t out;
    acr_names_t names;
    acr_buf_init(&out);
    if (rc == 0) {
        acr__names_load(ledger, &names);
        rc = export_rows(csv, len, &names, close->fingerprint, &out, &err);
        acr__names_free(&names);
    }
    if (r != NULL)
        acr_reader_close(r);
    free(list);
    if (rc == 0)
        acr__out(out.data, out.len);
    acr_buf_destroy(&out);
    return rc != 0 ? acr__fail(rc, &err) : ACR_EXIT_OK;
}

static int payout_sub(const char *s)
{
    static const char *names[] = {"run", "close", "audit", "list", "export"};
    for (int i = 0; i < 5; i++)
        if (strcmp(s, names[i]) == 0)
            return i;
    return -1;
}

/* Parses the options of a payout subcommand into a (plan_files owned by a). */
static int payout_opts(acr_cli_t *cli, int argc, char **argv, payout_args_t *a)
{
    static const struct option opts[] = {
        {"as-of", required_argument, NULL, 's'},
        {"out", required_argument, NULL, 'o'},
        {"plan-file", required_argument, NULL, 'p'},
        {"force", no_argument, NULL, 'F'},
        {"totals", no_argument, NULL, 'T'},
        {"format", required_argument, NULL, 'f'},
        ACR_CLI_COMMON_OPTS,
        {NULL, 0, NULL, 0},
    };
    int c, rc;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if ((c == 's' || c == 'p') && a->sub != PAY_RUN)
            return acr__usage(usage_payout, "--as-of and --plan-file belong to payout run");
        if (c == 'F' && a->sub != PAY_CLOSE)
            return acr__usage(usage_payout, "--force belongs to payout close");
        if (c == 'T' && a->sub != PAY_RUN)
            return acr__usage(usage_payout, "--totals belongs to payout run");
        if (c == 'f' && a->sub != PAY_EXPORT)
            return acr__usage(usage_payout, "--format belongs to payout export");
        if (c == 'o' && a->sub == PAY_EXPORT)
            return acr__usage(usage_payout, "payout export writes to stdout (redirect it)");
        if (c == 'o' && a->sub == PAY_LIST)
            return acr__usage(usage_payout, "payout list takes no --out");
        if (c == 's' && (!acr__parse_u64(optarg, &a->as_of) || a->as_of == 0))
            return acr__usage(usage_payout, "--as-of wants a seq >= 1");
        if (c == 'o')
            a->out_dir = optarg;
        else if (c == 'p')
            a->plan_files[a->plan_file_count++] = optarg;
        else if (c == 'F')
            a->force = true;
        else if (c == 'T')
            a->totals = true;
        else if (c == 'f')
            a->format = optarg;
        else if (c != 's' && (rc = acr__common_opt(cli, c, argv, usage_payout)) >= 0)
            return rc;
    }
    int want = a->sub == PAY_LIST ? 0 : 1;
    if (argc - optind != want)
        return acr__usage(usage_payout,
                          want ? "payout %s wants one PERIOD" : "payout %s takes no argument",
                          argv[0]);
    a->period = want ? argv[optind] : NULL;
    return -1;
}

int acr__cmd_payout(acr_cli_t *cli, int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        if (argc >= 2)
            return fputs(usage_payout, stdout), ACR_EXIT_OK;
        return acr__usage(usage_payout, "payout wants run, close, audit, list or export");
    }
    payout_args_t a = {.sub = payout_sub(argv[1])};
    if (a.sub < 0)
        return acr__usage(usage_payout, "unknown subcommand 'payout %s'", argv[1]);
    a.plan_files = calloc((size_t)argc, sizeof *a.plan_files);
    if (a.plan_files == NULL)
        return acr__fail(ACR_ENOMEM, NULL);
    int rc = payout_opts(cli, argc - 1, argv + 1, &a);
    acr_ledger_t *ledger = NULL;
    if (rc < 0 && (rc = acr__open_ledger(cli, &ledger)) == 0) {
        switch (a.sub) {
        case PAY_RUN:
            rc = payout_run(cli, ledger, &a);
            break;
        case PAY_CLOSE:
            rc = payout_close(cli, ledger, &a);
            break;
        case PAY_AUDIT:
            rc = payout_audit(cli, ledger, &a);
            break;
        case PAY_EXPORT:
            rc = payout_export(ledger, &a);
            break;
        default:
            rc = payout_list(ledger);
            break;
        }
        acr_ledger_close(ledger);
    }
    free(a.plan_files);
    return rc;
}
