/* cmd_serve.c - `accrue serve` (http.md).
 *
 * The HTTP server is a later issue; until it lands the command keeps its
 * usage (so --help works everywhere) and refuses to run with a clear message
 * and exit 1. (`accrue token` lives in cmd_token.c.)
 */
#include <string.h>

#include "cli.h"

static const char usage_serve[] =
    "usage: accrue serve [--listen HOST:PORT] [--token-file F]\n"
    "\n"
    "The HTTP API of http.md (default 127.0.0.1:8080). Not available in this build.\n";

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
