/* cmd_ledger.c - the ledger commands: init, append, log, verify, rebuild,
 * stats, backup.
 *
 * `append` is the import path: it reads the whole input (mmap), splits JSON
 * Lines (a blank line is skipped but still counts for line numbers) or walks
 * a msgpack stream, parses every event statelessly (acr_batch_add_json)
 * collecting every error, and only when all parse does it hand the batch to
 * acr_ledger_append, which applies the stateful rules in one transaction.
 * With --batch-size the input is cut into consecutive atomic batches, so a
 * huge import never holds more than one batch in memory; a failure then
 * names the last committed seq (re-running is safe: ids are idempotent).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "accrue/buf.h"
#include "accrue/date.h"
#include "accrue/event.h"
#include "accrue/limits.h"
#include "accrue/log.h"
#include "accrue/replica.h"
#include "cli.h"

/* ---- init ---------------------------------------------------------------- */

static const char usage_init[] =
    "usage: accrue init [--period month|quarter] [--utc-offset +-hh:mm] [--map-size SIZE]\n"
    "\n"
    "Creates a ledger in the --ledger directory (created if missing); refuses one that\n"
    "already holds a ledger. The payout period and the business-day UTC offset are fixed\n"
    "for the life of the ledger.\n"
    "\n"
    "  --period month|quarter  payout period (default month)\n"
    "  --utc-offset +hh:mm     the program's business day (default +00:00)\n"
    "  --map-size SIZE         initial LMDB map size, bytes or with a K/M/G suffix\n"
    "                          (default 1G for each of the two environments, the log's\n"
    "                          and the derived state's: stats sums them; grown on demand)\n";

/* "64M", "1G", "1048576". */
static bool parse_size(const char *s, uint64_t *out)
{
    char digits[32];
    size_t n = strlen(s);
    uint64_t mult = 1;
    if (n == 0 || n >= sizeof digits)
        return false;
    memcpy(digits, s, n + 1);
    char last = digits[n - 1];
    if (last == 'K' || last == 'k')
        mult = 1ull << 10;
    else if (last == 'M' || last == 'm')
        mult = 1ull << 20;
    else if (last == 'G' || last == 'g')
        mult = 1ull << 30;
    if (mult != 1)
        digits[n - 1] = '\0';
    uint64_t v;
    if (!acr__parse_u64(digits, &v) || v > UINT64_MAX / mult)
        return false;
    *out = v * mult;
    return true;
}

static int random_id(uint8_t id[16])
{
    size_t got = 0;
    while (got < 16) {
        ssize_t n = getrandom(id + got, 16 - got, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    if (got == 16)
        return 0;
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return ACR_EIO;
    ssize_t n = read(fd, id, 16);
    close(fd);
    return n == 16 ? 0 : ACR_EIO;
}

int acr__cmd_init(acr_cli_t *cli, int argc, char **argv)
{
    static const struct option opts[] = {
        {"period", required_argument, NULL, 'p'},
        {"utc-offset", required_argument, NULL, 'o'},
        {"map-size", required_argument, NULL, 'm'},
        ACR_CLI_COMMON_OPTS,
        {NULL, 0, NULL, 0},
    };
    acr_config_t cfg = {.period_kind = ACR_PERIOD_MONTH};
    uint64_t map_size = 0;
    int c, rc;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == 'p' && strcmp(optarg, "month") == 0)
            cfg.period_kind = ACR_PERIOD_MONTH;
        else if (c == 'p' && strcmp(optarg, "quarter") == 0)
            cfg.period_kind = ACR_PERIOD_QUARTER;
        else if (c == 'p')
            return acr__usage(usage_init, "--period must be month or quarter, not '%s'", optarg);
        else if (c == 'o' && !acr_offset_parse(optarg, strlen(optarg), &cfg.utc_offset_min))
            return acr__usage(usage_init, "--utc-offset wants +hh:mm or -hh:mm, not '%s'", optarg);
        else if (c == 'm' && (!parse_size(optarg, &map_size) || map_size < ACR_MAP_SIZE_MIN))
            return acr__usage(usage_init, "--map-size wants a size of at least 1M, not '%s'",
                              optarg);
        else if (c != 'o' && c != 'm' && (rc = acr__common_opt(cli, c, argv, usage_init)) >= 0)
            return rc;
    }
    if (optind < argc)
        return acr__usage(usage_init, "unexpected argument '%s'", argv[optind]);
    if (random_id(cfg.ledger_id) != 0) {
        acr__diag(ACR_EIO, "cannot read random bytes for the ledger id");
        return ACR_EXIT_RUNTIME;
    }
    acr_err_t err;
    acr_err_clear(&err);
    rc = acr_ledger_create(cli->ledger_dir, &cfg, map_size, &err);
    if (rc != 0)
        return acr__fail(rc, &err);
    char hex[33], off[7];
    acr_hash_hex(cfg.ledger_id, hex);
    acr_offset_format(cfg.utc_offset_min, off);
    if (!cli->quiet)
        printf("initialized ledger %s (period %s, utc offset %s, id %s)\n", cli->ledger_dir,
               cfg.period_kind == ACR_PERIOD_QUARTER ? "quarter" : "month", off, hex);
    return ACR_EXIT_OK;
}

/* ---- append -------------------------------------------------------------- */

static const char usage_append[] =
    "usage: accrue append [FILE|-] [--format jsonl|msgpack] [--batch-size N]\n"
    "\n"
    "Appends the events of FILE (stdin when FILE is - or absent) as one atomic batch:\n"
    "every event is committed, in order, or none is. Input is JSON Lines (one event\n"
    "object per line; blank lines are skipped but counted for line numbers) or, with\n"
    "--format msgpack, a stream of msgpack event maps (positions count events).\n"
    "Engine fields of `accrue log` output (seq, recorded_at, stream, version, actor,\n"
    "hash) are ignored: the actor stored is this command's, cli:<user>. Resubmitting an event with the same id and content is a no-op.\n"
    "\n"
    "  --format jsonl|msgpack  input format (default jsonl)\n"
    "  --batch-size N          consecutive atomic batches of N events; on a failure the\n"
    "                          batches before it stay committed (the last committed seq\n"
    "                          is reported; re-running the same input is safe)\n"
    "\n"
    "Prints `appended N events (seq A..B), M already present`. Every rejected event is\n"
    "reported (up to 100, in line order, shape and business-rule errors together) as\n"
    "`accrue: <code>: line N: id X: field F: message`. A UTF-8 byte-order mark at the\n"
    "start of the file is skipped.\n"
    "Exit 3 when the input is rejected, 4 on id_conflict / version_conflict.\n";

enum { FMT_JSONL, FMT_MSGPACK };

/* Where the next event of the input starts. */
typedef struct event_src {
    const uint8_t *p; /* the input */
    size_t len;       /* its size */
    size_t pos;       /* next unread byte */
    uint64_t line;    /* line (jsonl) or event index (msgpack) of the last event */
    int format;       /* FMT_* */
    bool broken;      /* msgpack framing lost, or no input of its format: stop */
    bool started;     /* a non-blank line was read (jsonl) */
} event_src_t;

static bool blank(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r')
            return false;
    return true;
}

/* Whether b opens a msgpack map or array (fix, 16 or 32): never the first byte of JSON. */
static bool msgpack_container_byte(uint8_t b)
{
    return (b & 0xe0) == 0x80 || (b >= 0xdc && b <= 0xdf);
}

/* Adds the next event to b: 1 added, 0 at the end, else an error code with
 * err filled (that event skipped). */
static int src_next(event_src_t *s, acr_batch_t *b, const acr_config_t *cfg, acr_err_t *err)
{
    acr_err_clear(err);
    if (s->format == FMT_MSGPACK) {
        if (s->broken || s->pos >= s->len)
            return 0;
        size_t used = 0;
        s->line++;
        int rc = acr_batch_add_msgpack(b, cfg, s->line, s->p + s->pos, s->len - s->pos, &used, err);
        /* A value that is whole but not a valid event (an array, a duplicate key) leaves
         * the framing intact: the next event is read and checked too, as the server does
         * and as JSON Lines are. Only a value that cannot be delimited stops the reading. */
        bool map_or_array = msgpack_container_byte(s->p[s->pos]);
        if (rc != 0 && (used == 0 || used > s->len - s->pos)) {
            s->broken = true;
        } else if (rc != 0 && s->line == 1 && !map_or_array) {
            /* the very first value is a scalar: not a msgpack stream of events (JSON Lines read
             * as msgpack are a value per byte), so one error, not one per byte */
            s->broken = true;
            acr_err_set(err, ACR_EMALFORMED_MSGPACK,
                        "the input starts with no msgpack map, so it is no msgpack stream of "
                        "events (JSON Lines are --format jsonl); nothing more read");
        } else {
            s->pos += used;
        }
        if (rc != 0 && err->line == 0)
            err->line = s->line;
        return rc != 0 ? rc : 1;
    }
    for (;;) {
        if (s->broken || s->pos >= s->len)
            return 0;
        const uint8_t *start = s->p + s->pos;
        const uint8_t *nl = memchr(start, '\n', s->len - s->pos);
        size_t n = nl != NULL ? (size_t)(nl - start) : s->len - s->pos;
        s->pos += n + (nl != NULL);
        s->line++;
        if (blank(start, n))
            continue;
        size_t lead = 0;
        while (lead < n && (start[lead] == ' ' || start[lead] == '\t'))
            lead++;
        if (!s->started && lead < n && msgpack_container_byte(start[lead])) {
            /* a msgpack stream read as JSON Lines splits at every 0x0a byte into lines of
             * binary: one error naming the format, not one per line */
            s->broken = true;
            err->line = s->line;
            return acr_err_set(err, ACR_EMALFORMED_JSON,
                               "the input starts with a msgpack value (byte 0x%02x), not JSON: "
                               "a msgpack stream is --format msgpack; nothing more read",
                               start[lead]);
        }
        s->started = true;
        /* the event is the line's JSON: the blanks around it, and the CR of a CRLF line, are
         * not counted against its 64 KiB (as the server reads JSON Lines) */
        while (n > lead && (start[n - 1] == '\r' || start[n - 1] == ' ' || start[n - 1] == '\t'))
            n--;
        int rc = acr_batch_add_json(b, cfg, s->line, (const char *)start + lead, n - lead, err);
        if (rc != 0 && err->line == 0)
            err->line = s->line;
        return rc != 0 ? rc : 1;
    }
}

/* One too_large for an input past the batch limit, naming the way out. */
static void batch_limit_err(const event_src_t *s, acr_errlist_t *errs)
{
    acr_err_t err;
    acr_err_clear(&err);
    err.line = s->line;
    acr_err_set(&err, ACR_ETOO_LARGE,
                "the input holds more than %d events, the most one atomic batch may hold: "
                "append it with --batch-size N (consecutive atomic batches of N events; "
                "re-running is safe)", ACR_BATCH_EVENTS_MAX);
    acr_errlist_add(errs, &err);
}

/* Fills b with up to max events (0 = all), every stateless error into errs.
 * Returns the events seen (valid or not). An input past the batch limit stops the
 * reading with one too_large (*over_limit set). */
static uint64_t fill_batch(event_src_t *s, acr_batch_t *b, const acr_config_t *cfg, uint64_t max,
                           acr_errlist_t *errs, bool *over_limit)
{
    uint64_t seen = 0;
    acr_err_t err;
    *over_limit = false;
    while (max == 0 || seen < max) {
        int rc = src_next(s, b, cfg, &err);
        if (rc == 0)
            break;
        seen++;
        if (rc == ACR_ETOO_LARGE && b->over_limit) {
            acr_errlist_clear(errs); /* refused for its size: the one error that matters */
            batch_limit_err(s, errs);
            *over_limit = true;
            break;
        }
        if (rc < 0) {
            if (err.code == 0)
                err.code = rc;
            acr_errlist_add(errs, &err);
        }
        if ((seen & 1023) == 0)
            acr__progress_update(s->pos, s->len);
    }
    return seen;
}

typedef struct tally {
    uint64_t appended;   /* new events */
    uint64_t duplicates; /* idempotent no-ops */
    uint64_t first_seq;  /* first new seq, 0 = none */
    uint64_t last_seq;   /* last new seq */
    uint64_t dup_lo;     /* the lowest and highest seq of the events already present */
    uint64_t dup_hi;
} tally_t;

static void tally_add(tally_t *t, const acr_append_result_t *r, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        uint64_t s = r->seqs[i];
        if (s == 0 || (r->appended > 0 && s >= r->first_seq && s <= r->last_seq))
            continue; /* a new event */
        t->dup_lo = t->dup_lo == 0 || s < t->dup_lo ? s : t->dup_lo;
        t->dup_hi = s > t->dup_hi ? s : t->dup_hi;
    }
    if (r->appended > 0) {
        if (t->first_seq == 0)
            t->first_seq = r->first_seq;
        t->last_seq = r->last_seq;
    }
    t->appended += r->appended;
    t->duplicates += r->duplicates;
}

/* cli.md: `appended N events (seq A..B), M already present`. A..B is the new events' range;
 * when nothing is new, the range where the input's events already are (a re-run of a file
 * names where it went); an input without events has no range. */
static void print_tally(const tally_t *t)
{
    if (t->appended > 0)
        printf("appended %" PRIu64 " events (seq %" PRIu64 "..%" PRIu64 "), %" PRIu64
               " already present\n",
               t->appended, t->first_seq, t->last_seq, t->duplicates);
    else if (t->duplicates > 0 && t->dup_lo > 0)
        printf("appended 0 events (seq %" PRIu64 "..%" PRIu64 "), %" PRIu64
               " already present\n", t->dup_lo, t->dup_hi, t->duplicates);
    else
        printf("appended 0 events, %" PRIu64 " already present\n", t->duplicates);
}

/* After a failure in chunked mode: what stays committed. */
static void report_committed(const tally_t *t, acr_ledger_t *ledger)
{
    acr_reader_t *r = NULL;
    acr_err_t err;
    uint64_t head = t->last_seq;
    if (acr_reader_open(ledger, &r, &err) == 0) {
        head = acr_reader_head_seq(r);
        acr_reader_close(r);
    }
    fprintf(stderr,
            "accrue: earlier batches stay committed: %" PRIu64 " events appended, %" PRIu64
            " already present; last committed seq %" PRIu64 "\n",
            t->appended, t->duplicates, head);
}

/* The batch loop: parse, append, repeat (once without --batch-size). */
static int append_all(acr_ledger_t *ledger, event_src_t *src, uint64_t batch_size, tally_t *t)
{
    const acr_config_t *cfg = acr_ledger_config(ledger);
    acr_errlist_t *errs = malloc(sizeof *errs);
    acr_batch_t b;
    uint64_t *seqs = NULL; /* each event's seq (the original one for a duplicate) */
    int exit_code = ACR_EXIT_OK;
    if (errs == NULL)
        return acr__fail(ACR_ENOMEM, NULL);
    acr_batch_init(&b);
    acr_batch_set_actor(&b, acr__cli_actor());
    for (;;) {
        acr_batch_reset(&b);
        acr_errlist_clear(errs);
        bool over_limit;
        uint64_t seen = fill_batch(src, &b, cfg, batch_size, errs, &over_limit);
        if (seen == 0)
            break;
        int rc = 0;
        uint64_t *grown = realloc(seqs, (b.count ? b.count : 1) * sizeof *seqs);
        if (grown == NULL) {
            exit_code = acr__fail(ACR_ENOMEM, NULL);
            break;
        }
        seqs = grown;
        acr_append_result_t res = {.seqs = seqs};
        if (errs->total == 0)
            rc = acr_ledger_append(ledger, &b, &res, errs);
        else if (!over_limit)
            acr_ledger_add_rule_errors(ledger, &b, errs);
        if (errs->total > 0 || rc != 0) {
            acr__progress_end();
            if (errs->count > 0)
                acr__diag_errlist(errs);
            else
                acr__diag(rc, "the batch was not appended");
            exit_code = errs->count > 0 ? acr_errlist_exit_code(errs) : acr_err_exit_code(rc);
            if (batch_size != 0 && (t->appended > 0 || t->duplicates > 0))
                report_committed(t, ledger);
            break;
        }
        tally_add(t, &res, b.count);
        if (batch_size == 0)
            break;
    }
    acr_batch_destroy(&b);
    free(seqs);
    free(errs);
    return exit_code;
}

int acr__cmd_append(acr_cli_t *cli, int argc, char **argv)
{
    static const struct option opts[] = {
        {"format", required_argument, NULL, 'f'},
        {"batch-size", required_argument, NULL, 'b'},
        ACR_CLI_COMMON_OPTS,
        {NULL, 0, NULL, 0},
    };
    int format = FMT_JSONL, c, rc;
    uint64_t batch_size = 0;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == 'f' && strcmp(optarg, "jsonl") == 0)
            format = FMT_JSONL;
        else if (c == 'f' && strcmp(optarg, "msgpack") == 0)
            format = FMT_MSGPACK;
        else if (c == 'f')
            return acr__usage(usage_append, "--format must be jsonl or msgpack");
        else if (c == 'b' && (!acr__parse_u64(optarg, &batch_size) || batch_size == 0 ||
                              batch_size > ACR_BATCH_EVENTS_MAX))
            return acr__usage(usage_append, "--batch-size wants 1..%d", ACR_BATCH_EVENTS_MAX);
        else if (c != 'b' && (rc = acr__common_opt(cli, c, argv, usage_append)) >= 0)
            return rc;
    }
    if (argc - optind > 1)
        return acr__usage(usage_append, "one input file at most");
    const char *path = optind < argc ? argv[optind] : NULL;
    acr_ledger_t *ledger;
    if ((rc = acr__open_ledger(cli, &ledger)) != 0)
        return rc;
    if ((rc = acr__refuse_on_replica(ledger)) != 0) {
        acr_ledger_close(ledger);
        return rc;
    }
    acr_input_t in;
    acr_err_t err;
    acr_err_clear(&err);
    if ((rc = acr__input_read(path, &in, &err)) != 0) {
        acr_ledger_close(ledger);
        return acr__fail(rc, &err);
    }
    if (format == FMT_JSONL)
        acr__input_skip_bom(&in);
    event_src_t src = {.p = in.data, .len = in.len, .format = format};
    tally_t t = {0};
    acr__progress_begin(cli, "append");
    rc = append_all(ledger, &src, batch_size, &t);
    acr__progress_end();
    if (rc == ACR_EXIT_OK)
        print_tally(&t);
    acr__input_free(&in);
    acr_ledger_close(ledger);
    return rc;
}

/* ---- log ----------------------------------------------------------------- */

static const char usage_log[] =
    "usage: accrue log [--from SEQ] [--to SEQ] [--type T] [--stream S] [--format jsonl|table]\n"
    "\n"
    "Prints stored events in seq order, checking each one's chain hash as it is read.\n"
    "jsonl (the default) is one object per line with the engine fields first (seq,\n"
    "recorded_at, stream, version, actor, hash), then id, type, at, data; but for\n"
    "period.closed lines it is valid input for `accrue append` into another ledger.\n"
    "table shows seq, at and recorded_at (both in the ledger's business time zone),\n"
    "type, stream, version, hash, actor and id. actor\n"
    "is who appended the event (cli:<user>, token:<name>); events stored before the\n"
    "actor existed have none.\n"
    "\n"
    "  --from SEQ / --to SEQ   an inclusive seq range\n"
    "  --type T                only events of type T (e.g. sale.recorded)\n"
    "  --stream S              only events of stream S (e.g. partner:P1, sale:S1)\n"
    "  --format jsonl|table    jsonl (the default) or the human table\n";

typedef struct log_filter {
    uint64_t from, to; /* inclusive; to 0 = the head */
    int type;          /* ACR_EV_NONE = any */
    const char *stream;
    bool table;
    int32_t utc_offset_min; /* the ledger's: table times are business time */
} log_filter_t;

static int log_print(const log_filter_t *f, const acr_event_t *ev, const uint8_t hash[16],
                     acr_buf_t *out)
{
    char stream[256];
    acr_event_stream(ev, stream, sizeof stream);
    if (f->type != ACR_EV_NONE && ev->type != f->type)
        return 0;
    if (f->stream != NULL && strcmp(f->stream, stream) != 0)
        return 0;
    if (!f->table) {
        int rc = acr_event_to_json(ev, hash, true, out);
        return rc != 0 ? rc : acr_buf_append(out, "\n", 1);
    }
    char at[ACR_TS_BUF], rec[ACR_TS_BUF], hex[33];
    acr_ts_format_local(ev->at_ms, f->utc_offset_min, at);
    acr_ts_format_local(ev->recorded_at_ms, f->utc_offset_min, rec);
    acr_hash_hex(hash, hex);
    return acr_buf_printf(out,
                          "%8" PRIu64 "  %-29s  %-29s  %-22s  %-24s  %7" PRIu64
                          "  %s  %-20.*s  %.*s\n",
                          ev->seq, at, rec, acr_event_type_name(ev->type), stream, ev->version,
                          hex, ev->actor.len ? (int)ev->actor.len : 1,
                          ev->actor.len ? ev->actor.ptr : "-", (int)ev->id.len, ev->id.ptr);
}

static int log_run(acr_ledger_t *ledger, log_filter_t *f)
{
    f->utc_offset_min = acr_ledger_config(ledger)->utc_offset_min;
    acr_reader_t *r;
    acr_err_t err;
    acr_err_clear(&err);
    int rc = acr_reader_open(ledger, &r, &err);
    if (rc != 0)
        return acr__fail(rc, &err);
    uint64_t head = acr_reader_head_seq(r);
    uint64_t to = f->to == 0 || f->to > head ? head : f->to;
    acr_buf_t out;
    acr_buf_init(&out);
    if (f->table)
        acr_buf_printf(&out, "%8s  %-29s  %-29s  %-22s  %-24s  %7s  %-32s  %-20s  %s\n", "seq",
                       "at (business time)", "recorded_at", "type", "stream", "version", "hash",
                       "actor", "id");
    if (f->from <= to)
        rc = acr_reader_seek(r, f->from, &err);
    acr_event_t ev;
    uint8_t hash[ACR_HASH_LEN];
    while (rc == 0 && f->from <= to) {
        rc = acr_reader_next(r, &ev, hash, &err);
        if (rc <= 0 || ev.seq > to)
            break;
        rc = log_print(f, &ev, hash, &out);
        if (rc == 0 && out.len >= (1u << 20)) {
            acr__out(out.data, out.len);
            acr_buf_reset(&out);
        }
    }
    acr__out(out.data, out.len);
    acr_buf_destroy(&out);
    acr_reader_close(r);
    return rc < 0 ? acr__fail(rc, &err) : ACR_EXIT_OK;
}

int acr__cmd_log(acr_cli_t *cli, int argc, char **argv)
{
    static const struct option opts[] = {
        {"from", required_argument, NULL, 'F'},
        {"to", required_argument, NULL, 'T'},
        {"type", required_argument, NULL, 't'},
        {"stream", required_argument, NULL, 's'},
        {"format", required_argument, NULL, 'f'},
        ACR_CLI_COMMON_OPTS,
        {NULL, 0, NULL, 0},
    };
    log_filter_t f = {.from = 1, .type = ACR_EV_NONE};
    int c, rc;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'F':
        case 'T':
            if (!acr__parse_u64(optarg, c == 'F' ? &f.from : &f.to) ||
                (c == 'F' ? f.from : f.to) == 0)
                return acr__usage(usage_log, "--from / --to want a seq >= 1");
            break;
        case 't':
            f.type = acr_event_type_from_name(optarg, strlen(optarg));
            if (f.type == ACR_EV_NONE)
                return acr__usage(usage_log, "unknown event type '%s'", optarg);
            break;
        case 's':
            f.stream = optarg;
            break;
        case 'f':
            if (strcmp(optarg, "table") != 0 && strcmp(optarg, "jsonl") != 0)
                return acr__usage(usage_log, "--format must be jsonl or table");
            f.table = strcmp(optarg, "table") == 0;
            break;
        default:
            if ((rc = acr__common_opt(cli, c, argv, usage_log)) >= 0)
                return rc;
        }
    }
    if (optind < argc)
        return acr__usage(usage_log, "unexpected argument '%s'", argv[optind]);
    if (f.to != 0 && f.to < f.from)
        return ACR_EXIT_OK;
    acr_ledger_t *ledger;
    if ((rc = acr__open_ledger(cli, &ledger)) != 0)
        return rc;
    rc = log_run(ledger, &f);
    acr_ledger_close(ledger);
    return rc;
}

/* ---- verify, rebuild, stats, backup ---------------------------------------- */

static const char usage_verify[] =
    "usage: accrue verify [--deep | --fast]\n"
    "\n"
    "Recomputes the XXH3-128 hash chain from the stored bytes and compares every\n"
    "projection with a fresh replay. Prints `ok: N events, head <hash>` (exit 0), or\n"
    "names the first bad seq or projection row (exit 5). XXH3 detects corruption and\n"
    "accidental edits; it is not a cryptographic signature.\n"
    "\n"
    "  --deep   the above (the default), said explicitly; it also checks each\n"
    "           projection table against the digest its writes kept\n"
    "  --fast   no replay: the chain, each projection table against the digest its\n"
    "           writes kept (a row changed outside the write path), the stored\n"
    "           statements. It does not re-derive the tables from the log.\n";

static const char usage_rebuild[] =
    "usage: accrue rebuild\n"
    "\n"
    "Rebuilds every projection and state table from the log in one transaction.\n";

static const char usage_stats[] =
    "usage: accrue stats\n"
    "\n"
    "Prints the ledger id, payout period and UTC offset fixed at init, the event\n"
    "count, per-type counts, the head seq and hash, the data file size and the LMDB\n"
    "map size and use.\n";

static const char usage_backup[] =
    "usage: accrue backup DEST\n"
    "\n"
    "Writes a consistent, compacted copy of the (possibly live) ledger into DEST,\n"
    "which is created if missing and must be empty. Appends may go on meanwhile.\n";

/* Parses a command with no options of its own and `nargs` operands. */
static int simple_opts(acr_cli_t *cli, int argc, char **argv, const char *usage, int nargs)
{
    static const struct option opts[] = {ACR_CLI_COMMON_OPTS, {NULL, 0, NULL, 0}};
    int c, rc;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1)
        if ((rc = acr__common_opt(cli, c, argv, usage)) >= 0)
            return rc;
    if (argc - optind != nargs)
        return acr__usage(usage, nargs == 0 ? "no arguments expected" : "%d argument(s) expected",
                          nargs);
    return -1;
}

static int verify_report(int rc, const acr_verify_result_t *res, const acr_err_t *err)
{
    char hex[33];
    if (rc == 0) {
        acr_hash_hex(res->head_hash, hex);
        printf("ok: %" PRIu64 " events, head %s\n", res->events, hex);
        if (res->period_index_stale)
            fprintf(stderr, "accrue: note: the period index of payout runs is not built for "
                            "this ledger (written by an older release): runs read the whole "
                            "log until `accrue rebuild` builds it once\n");
        return ACR_EXIT_OK;
    }
    const char *msg = err->msg[0] != '\0' ? err->msg : "does not match";
    if (res->bad_seq != 0) {
        acr__diag(rc, "seq %" PRIu64 ": %s", res->bad_seq, msg);
    } else if (res->bad_table[0] != '\0') {
        acr__diag(rc, "table %s: row %s: %s", res->bad_table, res->bad_key, msg);
    } else {
        return acr__fail(rc, err);
    }
    return acr_err_exit_code(rc);
}

int acr__cmd_verify(acr_cli_t *cli, int argc, char **argv)
{
    static const struct option opts[] = {ACR_CLI_COMMON_OPTS, {"fast", no_argument, NULL, 'F'},
                                         {"deep", no_argument, NULL, 'D'}, {NULL, 0, NULL, 0}};
    int c, rc;
    bool fast = false, deep = false;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == 'F')
            fast = true;
        else if (c == 'D')
            deep = true;
        else if ((rc = acr__common_opt(cli, c, argv, usage_verify)) >= 0)
            return rc;
    }
    if (fast && deep)
        return acr__usage(usage_verify, "--deep and --fast exclude each other");
    if (argc - optind != 0)
        return acr__usage(usage_verify, "no arguments expected");
    acr_ledger_t *ledger;
    if ((rc = acr__open_ledger(cli, &ledger)) != 0)
        return rc;
    acr_verify_result_t res;
    acr_err_t err;
    memset(&res, 0, sizeof res);
    acr_err_clear(&err);
    acr__progress_begin(cli, "verify");
    rc = fast ? acr_ledger_verify_fast(ledger, &res, acr__progress_update, &err)
              : acr_ledger_verify(ledger, &res, acr__progress_update, &err);
    acr__progress_end();
    acr_ledger_close(ledger);
    return verify_report(rc, &res, &err);
}

int acr__cmd_rebuild(acr_cli_t *cli, int argc, char **argv)
{
    int rc = simple_opts(cli, argc, argv, usage_rebuild, 0);
    if (rc >= 0)
        return rc;
    acr_ledger_t *ledger;
    if ((rc = acr__open_ledger(cli, &ledger)) != 0)
        return rc;
    acr_err_t err;
    acr_err_clear(&err);
    acr__progress_begin(cli, "rebuild");
    rc = acr_ledger_rebuild(ledger, acr__progress_update, &err);
    acr__progress_end();
    acr_stats_t st;
    if (rc == 0 && acr_ledger_stats(ledger, &st, &err) == 0 && !cli->quiet)
        printf("rebuilt: projections from %" PRIu64 " events\n", st.events);
    acr_ledger_close(ledger);
    return rc != 0 ? acr__fail(rc, &err) : ACR_EXIT_OK;
}

int acr__cmd_stats(acr_cli_t *cli, int argc, char **argv)
{
    int rc = simple_opts(cli, argc, argv, usage_stats, 0);
    if (rc >= 0)
        return rc;
    acr_ledger_t *ledger;
    if ((rc = acr__open_ledger(cli, &ledger)) != 0)
        return rc;
    acr_stats_t st;
    acr_err_t err;
    memset(&st, 0, sizeof st);
    acr_err_clear(&err);
    rc = acr_ledger_stats(ledger, &st, &err);
    /* the calendar fixed at init: what a replay into a fresh ledger must repeat */
    const acr_config_t cfg = *acr_ledger_config(ledger);
    acr_replica_info_t ri;
    int replica = rc == 0 ? acr_replica_get(ledger, &ri, &err) : 0;
    uint64_t behind = 0;
    int64_t lag_ms = -1, seen_age_ms = -1;
    if (replica == 1)
        replica = acr_replica_lag(ledger, &behind, &lag_ms, &seen_age_ms, &err);
    acr_ledger_close(ledger);
    if (rc != 0 || replica < 0)
        return acr__fail(rc ? rc : replica, &err);
    char hex[33], off[7];
    acr_hash_hex(cfg.ledger_id, hex);
    acr_offset_format(cfg.utc_offset_min, off);
    printf("ledger id   %s\n", hex);
    printf("period      %s\n", cfg.period_kind == ACR_PERIOD_QUARTER ? "quarter" : "month");
    printf("utc offset  %s\n", off);
    acr_hash_hex(st.head_hash, hex);
    printf("events      %" PRIu64 "\n", st.events);
    printf("head seq    %" PRIu64 "\n", st.head_seq);
    printf("head hash   %s\n", hex);
    printf("file bytes  %" PRIu64 "\n", st.file_bytes);
    printf("map bytes   %" PRIu64 "\n", st.map_bytes);
    printf("used bytes  %" PRIu64 "\n", st.used_bytes);
    printf("by type:\n");
    for (int t = 1; t < ACR_EV__COUNT; t++)
        printf("  %-24s %" PRIu64 "\n", acr_event_type_name(t), st.by_type[t]);
    if (replica == 1) /* a read replica (reporting.md): where it stands against its primary */
        acr__replica_stats(&ri, behind, lag_ms, seen_age_ms);
    return ACR_EXIT_OK;
}

int acr__cmd_backup(acr_cli_t *cli, int argc, char **argv)
{
    int rc = simple_opts(cli, argc, argv, usage_backup, 1);
    if (rc >= 0)
        return rc;
    const char *dest = argv[optind];
    acr_ledger_t *ledger;
    if ((rc = acr__open_ledger(cli, &ledger)) != 0)
        return rc;
    acr_err_t err;
    acr_err_clear(&err);
    rc = acr_ledger_backup(ledger, dest, &err);
    acr_ledger_close(ledger);
    if (rc != 0)
        return acr__fail(rc, &err);
    if (!cli->quiet)
        printf("backup written to %s\n", dest);
    return ACR_EXIT_OK;
}
