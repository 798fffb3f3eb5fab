/* cli.h - declarations private to the accrue command line (tools/).
 *
 * Every command is a function `int acr__cmd_<name>(acr_cli_t *, argc, argv)`
 * that parses its own options with getopt_long (argv[0] is the command name)
 * and returns the process exit code of cli.md. The helpers below keep the
 * diagnostics in the one format of cli.md: `accrue: <code>: <message>`.
 */
#ifndef ACCRUE_TOOLS_CLI_H
#define ACCRUE_TOOLS_CLI_H

#include <getopt.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "accrue/error.h"
#include "accrue/log.h"

/* Exit codes of cli.md that the CLI itself decides (the rest come from
 * acr_err_exit_code). */
enum { ACR_EXIT_OK = 0, ACR_EXIT_RUNTIME = 1, ACR_EXIT_USAGE = 2 };

/* Global options. */
typedef struct acr_cli {
    const char *ledger_dir; /* --ledger, else $ACCRUE_LEDGER, else ./accrue-ledger */
    bool quiet;             /* --quiet: no progress line, no narration */
} acr_cli_t;

/* Options every command accepts, after its own (the option table ends with
 * ACR_CLI_COMMON_OPTS and {0}). */
#define ACR_OPT_HELP 'h'
#define ACR_OPT_LEDGER 0x100
#define ACR_OPT_QUIET 0x101
#define ACR_CLI_COMMON_OPTS                                                                        \
    {"help", no_argument, NULL, ACR_OPT_HELP},                                                     \
        {"ledger", required_argument, NULL, ACR_OPT_LEDGER},                                       \
    {                                                                                              \
        "quiet", no_argument, NULL, ACR_OPT_QUIET                                                  \
    }

/* ---- cmd_query.c: rendering a JSON array of rows ------------------------- */

enum { OUT_TABLE, OUT_CSV, OUT_JSON };

/* One output column: the JSON key, its table title and how to show it. */
typedef struct col {
    const char *key;   /* member of each row object */
    const char *title; /* table header */
    char kind;         /* 's' text, 'n' number, 'm' amount in minor units, 'c' array length,
                          't' a UTC timestamp, shown in business time in a table */
} col_t;

/* table | csv | json into OUT_*; -1 when unknown. */
int acr__parse_format(const char *s, int *out);
typedef struct acr_names acr_names_t;
/* Renders a JSON array of row objects as a table (format OUT_TABLE) or CSV on stdout. With
 * names (NULL for none; tables only), a "name" column follows a first column of partner ids.
 * A table shows 't' columns at the ledger's offset_min (CSV keeps the stored UTC text). */
int acr__render_rows(const char *json, size_t len, const col_t *cols, size_t ncols, int format,
                     acr_names_t *names, int32_t offset_min);

/* ---- util.c ------------------------------------------------------------- */

/* Resets getopt for a fresh scan of a command's argv (glibc: optind = 0). */
void acr__getopt_reset(void);
/* Handles a common option or a getopt error. Returns -1 to go on, or the exit
 * code to return now (0 after printing usage for --help, 2 on bad usage). */
int acr__common_opt(acr_cli_t *cli, int c, char **argv, const char *usage);
/* Prints `accrue: usage: <message>` and the usage synopsis on stderr; returns 2. */
int acr__usage(const char *usage, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* `accrue: <code>: <message>` on stderr. */
void acr__diag(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* An error record: `accrue: <code>: line N: id X: field F: message` (parts
 * that are empty are left out). */
void acr__diag_err(const acr_err_t *err);
/* Every item of a list, then a count of those left out past the cap. */
void acr__diag_errlist(const acr_errlist_t *list);
/* Reports err (or, when it carries no code, rc) and returns its exit code. */
int acr__fail(int rc, const acr_err_t *err);

/* Opens cli->ledger_dir; on failure prints the diagnostic and returns the
 * exit code (0 on success). */
int acr__open_ledger(const acr_cli_t *cli, acr_ledger_t **out);
/* A write command on a read replica is refused read_only (exit 4) before its input is read,
 * as the server refuses it (reporting.md): its exit status, or 0 when ledger is a primary. */
int acr__refuse_on_replica(acr_ledger_t *ledger);

/* A whole input file in memory: mmap'd when it is a regular file, else read. */
typedef struct acr_input {
    const uint8_t *data; /* the bytes (not NUL-terminated) */
    size_t len;          /* their count */
    void *map;           /* mmap'd region, or NULL */
    size_t map_len;      /* its size */
    uint8_t *heap;       /* read buffer, or NULL */
} acr_input_t;

/* path NULL or "-" reads stdin. ACR_EIO with err set on failure. */
int acr__input_read(const char *path, acr_input_t *in, acr_err_t *err);
void acr__input_free(acr_input_t *in);
/* A UTF-8 byte-order mark at the start of a text input (Excel and some Windows editors
 * write one) is not data: moves in->data past it. */
void acr__input_skip_bom(acr_input_t *in);

/* mkdir -p. */
int acr__mkdir_p(const char *dir, acr_err_t *err);
/* Writes (replaces) a whole file. */
int acr__write_file(const char *path, const void *p, size_t n, acr_err_t *err);
/* Strict decimal uint64 (no sign, no spaces). */
bool acr__parse_u64(const char *s, uint64_t *out);
/* The wall clock, UTC ms: read by commands, never by the engine or the processor. */
int64_t acr__wall_ms(void);
/* The actor of this command line (events.md): "cli:<user>", the login name from $USER
 * (else $LOGNAME, else "uid<N>" of the effective uid). A static string. */
const char *acr__cli_actor(void);
/* fwrite to stdout; false on error. */
bool acr__out(const void *p, size_t n);

/* ---- progress.c --------------------------------------------------------- */

/* A `\r` progress line on stderr, only when stderr is a terminal and not
 * --quiet; throttled; erased by acr__progress_end. */
void acr__progress_begin(const acr_cli_t *cli, const char *label);
void acr__progress_update(uint64_t done, uint64_t total);
void acr__progress_end(void);

/* ---- json.c: a small reader over JSON the engine produced --------------- */

/* A JSON value as a span of its text. Numbers stay text (no floating point). */
typedef struct acr_jv {
    char kind;       /* 's' string, 'n' number, 't' true, 'f' false, 'z' null, 'o', 'a' */
    const char *ptr; /* the value's text (for strings: inside the quotes, escaped) */
    size_t len;
} acr_jv_t;

/* Parses one value at text[*pos..len) (skipping whitespace), advancing *pos. */
int acr__json_value(const char *text, size_t len, size_t *pos, acr_jv_t *out);
/* Iterates an object's members / an array's elements: *pos starts at 0;
 * returns 1 with the next member, 0 at the end, -1 on bad JSON. */
int acr__json_obj_next(const acr_jv_t *obj, size_t *pos, acr_jv_t *key, acr_jv_t *val);
int acr__json_arr_next(const acr_jv_t *arr, size_t *pos, acr_jv_t *val);
/* The member `key` of an object. */
bool acr__json_get(const acr_jv_t *obj, const char *key, acr_jv_t *out);
/* A string value unescaped (or any other value's text) into buf, NUL-terminated
 * and truncated to cap - 1; returns the length written. */
size_t acr__json_text(const acr_jv_t *v, char *buf, size_t cap);
/* An integer number value. */
bool acr__json_i64(const acr_jv_t *v, int64_t *out);

/* ---- table.c: aligned text tables ---------------------------------------- */

typedef struct acr_table {
    size_t cols;  /* columns */
    size_t cells; /* cells added so far (row-major, header first) */
    size_t cap;
    char **cell;         /* owned strings */
    uint32_t right_mask; /* bit i: right-align column i (numbers) */
} acr_table_t;

void acr__table_init(acr_table_t *t, size_t cols, uint32_t right_mask);
int acr__table_add(acr_table_t *t, const char *text); /* next cell */
void acr__table_print(const acr_table_t *t, FILE *f);
void acr__table_destroy(acr_table_t *t);

/* ---- names.c: partner display names for human tables --------------------- */

typedef struct acr_name {
    char partner_id[72]; /* id pattern: at most 64 bytes */
    char name[264];      /* a string field: at most 256 bytes */
} acr_name_t;

struct acr_names {
    acr_name_t *items; /* sorted by partner_id bytewise */
    size_t count;
};

/* Reads every partner's name as of the head (an empty set when that fails). */
void acr__names_load(acr_ledger_t *ledger, acr_names_t *names);
/* The name of partner_id or NULL; the signature of acr_partner_name_fn (payout.h). */
const char *acr__name_of(void *names, const char *partner_id);
void acr__names_free(acr_names_t *names);

/* ---- commands ------------------------------------------------------------ */

int acr__cmd_init(acr_cli_t *cli, int argc, char **argv);
int acr__cmd_append(acr_cli_t *cli, int argc, char **argv);
int acr__cmd_log(acr_cli_t *cli, int argc, char **argv);
int acr__cmd_verify(acr_cli_t *cli, int argc, char **argv);
int acr__cmd_rebuild(acr_cli_t *cli, int argc, char **argv);
int acr__cmd_stats(acr_cli_t *cli, int argc, char **argv);
int acr__cmd_backup(acr_cli_t *cli, int argc, char **argv);
int acr__cmd_partner(acr_cli_t *cli, int argc, char **argv);
int acr__cmd_pipeline(acr_cli_t *cli, int argc, char **argv);
int acr__cmd_kpi(acr_cli_t *cli, int argc, char **argv);
int acr__cmd_onboarding(acr_cli_t *cli, int argc, char **argv);
int acr__cmd_promotion(acr_cli_t *cli, int argc, char **argv);
int acr__cmd_announcements(acr_cli_t *cli, int argc, char **argv);
int acr__cmd_plan(acr_cli_t *cli, int argc, char **argv);
int acr__cmd_payout(acr_cli_t *cli, int argc, char **argv);
int acr__cmd_serve(acr_cli_t *cli, int argc, char **argv);  /* cmd_serve.c */
int acr__cmd_tokens(acr_cli_t *cli, int argc, char **argv); /* cmd_token.c */
int acr__cmd_sink(acr_cli_t *cli, int argc, char **argv);   /* cmd_sink.c */
int acr__cmd_replicate(acr_cli_t *cli, int argc, char **argv); /* cmd_replicate.c */
int acr__cmd_follow(acr_cli_t *cli, int argc, char **argv);    /* cmd_follow.c */
/* The replica lines of `accrue stats` (cmd_follow.c): info is the acr_replica_info_t of
 * accrue/replica.h and behind, lag_ms, seen_age_ms what acr_replica_lag said of the ledger. */
struct acr_replica_info;
void acr__replica_stats(const struct acr_replica_info *info, uint64_t behind, int64_t lag_ms,
                        int64_t seen_age_ms);

#endif
