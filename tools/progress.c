/* progress.c - a one-line progress indicator on stderr.
 *
 * Long commands (a large append, verify, rebuild, payout runs) call
 * acr__progress_update often; the line is redrawn with `\r` at most ten
 * times a second, and only when stderr is a terminal and --quiet is off, so
 * scripts and logs never see it. acr__progress_end erases the line. The
 * engine's progress callbacks carry no context pointer, hence the one static
 * state: the CLI runs one long operation at a time.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

static struct {
    bool on;           /* stderr is a tty and not --quiet */
    bool drawn;        /* something is on the line */
    const char *label; /* "append", "verify", ... */
    uint64_t last_ms;  /* monotonic time of the last draw */
    int width;         /* characters drawn, to erase them */
} prog;

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void acr__progress_begin(const acr_cli_t *cli, const char *label)
{
    memset(&prog, 0, sizeof prog);
    prog.on = !cli->quiet && isatty(STDERR_FILENO);
    prog.label = label;
}

void acr__progress_update(uint64_t done, uint64_t total)
{
    if (!prog.on)
        return;
    uint64_t t = now_ms();
    if (prog.drawn && t - prog.last_ms < 100 && done != total)
        return;
    prog.last_ms = t;
    int n;
    if (total > 0) {
        uint64_t pct = done >= total              ? 100
                       : total > UINT64_MAX / 100 ? done / (total / 100)
                                                  : done * 100 / total;
        n = fprintf(stderr, "\r%s: %" PRIu64 "/%" PRIu64 " (%" PRIu64 "%%)", prog.label, done,
                    total, pct);
    } else {
        n = fprintf(stderr, "\r%s: %" PRIu64, prog.label, done);
    }
    if (n - 1 > prog.width)
        prog.width = n - 1;
    prog.drawn = true;
    fflush(stderr);
}

void acr__progress_end(void)
{
    if (prog.on && prog.drawn)
        fprintf(stderr, "\r%*s\r", prog.width, "");
    prog.drawn = false;
    prog.on = false;
}
