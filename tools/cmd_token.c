/* cmd_token.c - `accrue token create | list | revoke` (cli.md, http.md).
 *
 * `create` prints the new secret as the only line on stdout, once: the
 * ledger keeps only its hash (token.h), so a lost secret is revoked and
 * replaced, never recovered. `list` shows names, roles, partners, creation
 * and expiry times and a hash fingerprint, never a secret.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "accrue/date.h"
#include "accrue/token.h"
#include "cli.h"

static const char usage_token[] =
    "usage: accrue token create --role ROLE [--partner P] [--name N] [--expires DATE]\n"
    "       accrue token list\n"
    "       accrue token revoke NAME\n"
    "\n"
    "API tokens for `accrue serve`. ROLE is admin, finance, auditor, ingest, feed or\n"
    "partner (partner needs --partner P: the token sees only that partner). create\n"
    "prints the secret as the only line on stdout, once; the ledger keeps only its\n"
    "BLAKE2b hash. The name (default <role>-<8 hex>) is unique and is what revoke takes.\n"
    "--expires YYYY-MM-DD: the token works through that day (UTC) and is refused from\n"
    "the next midnight UTC on; an RFC 3339 timestamp (2026-12-31T18:00:00Z) sets the\n"
    "instant. The expiry is checked on every request. list shows it (\"never\" without).\n";

/* --expires: a date (valid through that UTC day) or an RFC 3339 instant. */
static bool parse_expiry(const char *s, int64_t *out_ms)
{
    int32_t day;
    if (acr_date_parse(s, strlen(s), &day)) {
        *out_ms = ((int64_t)day + 1) * 86400000;
        return true;
    }
    return acr_ts_parse(s, strlen(s), out_ms);
}

static int token_create(acr_cli_t *cli, int argc, char **argv)
{
    static const struct option opts[] = {{"role", required_argument, NULL, 'r'},
                                         {"partner", required_argument, NULL, 'p'},
                                         {"name", required_argument, NULL, 'n'},
                                         {"expires", required_argument, NULL, 'e'},
                                         ACR_CLI_COMMON_OPTS,
                                         {NULL, 0, NULL, 0}};
    const char *role_s = NULL, *partner = NULL, *name = NULL;
    int64_t expires_ms = 0;
    int c, rc;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == 'r')
            role_s = optarg;
        else if (c == 'p')
            partner = optarg;
        else if (c == 'n')
            name = optarg;
        else if (c == 'e') {
            if (!parse_expiry(optarg, &expires_ms))
                return acr__usage(usage_token,
                                  "--expires wants YYYY-MM-DD or an RFC 3339 time, not '%s'",
                                  optarg);
        } else if ((rc = acr__common_opt(cli, c, argv, usage_token)) >= 0)
            return rc;
    }
    if (optind != argc)
        return acr__usage(usage_token, "token create takes no argument");
    if (role_s == NULL)
        return acr__usage(usage_token, "token create needs --role");
    int role = acr_role_from_name(role_s);
    if (role == ACR_ROLE_NONE)
        return acr__usage(usage_token, "unknown role '%s'", role_s);
    if (role == ACR_ROLE_PARTNER && partner == NULL)
        return acr__usage(usage_token, "--role partner needs --partner P");
    if (role != ACR_ROLE_PARTNER && partner != NULL)
        return acr__usage(usage_token, "--partner goes only with --role partner");
    acr_ledger_t *ledger;
    if ((rc = acr__open_ledger(cli, &ledger)) != 0)
        return rc;
    char used[ACR_TOKEN_NAME_MAX + 1], secret[ACR_TOKEN_SECRET_HEX_LEN + 1];
    acr_err_t err;
    acr_err_clear(&err);
    rc = acr_token_create(ledger, role, partner, name, expires_ms, used, secret, &err);
    acr_ledger_close(ledger);
    if (rc == ACR_EUSAGE)
        return acr__usage(usage_token, "%s", err.msg);
    if (rc != 0)
        return acr__fail(rc, &err);
    printf("%s\n", secret);
    if (!cli->quiet)
        fprintf(stderr, "accrue: token '%s' (%s%s%s) created; the secret above is shown once\n",
                used, role_s, partner ? " of " : "", partner ? partner : "");
    return ACR_EXIT_OK;
}

static int token_list(acr_cli_t *cli)
{
    acr_ledger_t *ledger;
    int rc = acr__open_ledger(cli, &ledger);
    if (rc != 0)
        return rc;
    acr_token_info_t *list;
    size_t n;
    acr_err_t err;
    acr_err_clear(&err);
    rc = acr_token_list(ledger, &list, &n, &err);
    acr_ledger_close(ledger);
    if (rc != 0)
        return acr__fail(rc, &err);
    acr_table_t t;
    acr__table_init(&t, 6, 0);
    const char *head[] = {"name", "role", "partner", "created", "expires", "hash"};
    for (size_t i = 0; i < 6; i++)
        acr__table_add(&t, head[i]);
    for (size_t i = 0; i < n; i++) {
        char ts[ACR_TS_BUF], exp[ACR_TS_BUF] = "never";
        acr_ts_format(list[i].created_ms, ts);
        if (list[i].expires_ms > 0)
            acr_ts_format(list[i].expires_ms, exp);
        acr__table_add(&t, list[i].name);
        acr__table_add(&t, acr_role_name(list[i].role));
        acr__table_add(&t, list[i].partner_id[0] ? list[i].partner_id : "-");
        acr__table_add(&t, ts);
        acr__table_add(&t, exp);
        acr__table_add(&t, list[i].hash_prefix);
    }
    acr__table_print(&t, stdout);
    acr__table_destroy(&t);
    free(list);
    return ACR_EXIT_OK;
}

static int token_revoke(acr_cli_t *cli, const char *name)
{
    acr_ledger_t *ledger;
    int rc = acr__open_ledger(cli, &ledger);
    if (rc != 0)
        return rc;
    acr_err_t err;
    acr_err_clear(&err);
    rc = acr_token_revoke(ledger, name, &err);
    acr_ledger_close(ledger);
    if (rc != 0)
        return acr__fail(rc, &err);
    if (!cli->quiet)
        printf("revoked token '%s'\n", name);
    return ACR_EXIT_OK;
}

int acr__cmd_tokens(acr_cli_t *cli, int argc, char **argv)
{
    static const struct option opts[] = {ACR_CLI_COMMON_OPTS, {NULL, 0, NULL, 0}};
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        if (argc >= 2)
            return fputs(usage_token, stdout), ACR_EXIT_OK;
        return acr__usage(usage_token, "token wants create, list or revoke");
    }
    const char *sub = argv[1];
    argc--;
    argv++;
    if (strcmp(sub, "create") == 0)
        return token_create(cli, argc, argv);
    if (strcmp(sub, "list") != 0 && strcmp(sub, "revoke") != 0)
        return acr__usage(usage_token, "unknown subcommand 'token %s'", sub);
    int c, rc;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1)
        if ((rc = acr__common_opt(cli, c, argv, usage_token)) >= 0)
            return rc;
    if (strcmp(sub, "list") == 0) {
        if (optind != argc)
            return acr__usage(usage_token, "token list takes no argument");
        return token_list(cli);
    }
    if (argc - optind != 1)
        return acr__usage(usage_token, "token revoke wants one NAME");
    return token_revoke(cli, argv[optind]);
}
