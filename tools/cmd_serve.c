/* cmd_serve.c - `accrue serve` and `accrue token` (http.md).
 *
 * The HTTP server and its API tokens are a later issue; until they land
 * both commands keep their usage (so --help works everywhere) and refuse to
 * run with a clear message and exit 1.
 */
#include <string.h>

#include "cli.h"

static const char usage_serve[] =
    "usage: accrue serve [--listen HOST:PORT] [--token-file F]\n"
    "\n"
    "The HTTP API of http.md (default 127.0.0.1:8080). Not available in this build.\n";

static const char usage_token[] =
    "usage: accrue token create --role ROLE [--partner P] [--name N]\n"
    "       accrue token list\n"
    "       accrue token revoke NAME\n"
    "\n"
    "API tokens for `accrue serve`. Not available in this build.\n";

/* --help anywhere in argv prints the usage; anything else is refused. */
static int not_available(int argc, char **argv, const char *usage, const char *name)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(usage, stdout);
            return ACR_EXIT_OK;
        }
    fprintf(stderr, "accrue: %s: not available in this build\n", name);
    return ACR_EXIT_RUNTIME;
}

int acr__cmd_serve(acr_cli_t *cli, int argc, char **argv)
{
    (void)cli;
    return not_available(argc, argv, usage_serve, "serve");
}

int acr__cmd_token(acr_cli_t *cli, int argc, char **argv)
{
    (void)cli;
    return not_available(argc, argv, usage_token, "serve");
}
