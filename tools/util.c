/* util.c - helpers shared by the accrue commands.
 *
 * Diagnostics go to stderr in the single format of cli.md,
 * `accrue: <code>: <message>`, with `line N: id X: field F:` for event errors,
 * so scripts can grep for a code. The option handling common to every
 * command (--help, --ledger, --quiet and getopt errors) lives here so that
 * every command answers --help and bad usage the same way (exit 0 / exit 2).
 * Inputs are read whole: mmap for regular files (no copy of a large import),
 * a growing buffer for pipes and stdin.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "accrue/buf.h"
#include "accrue/replica.h"
#include "cli.h"

void acr__getopt_reset(void)
{
    optind = 0; /* glibc: a full re-initialisation, permutation state included */
    opterr = 0; /* we print our own usage errors */
}

static void print_synopsis(const char *usage, FILE *f)
{
    /* The synopsis is the usage text up to its first blank line. */
    const char *end = strstr(usage, "\n\n");
    size_t n = end ? (size_t)(end - usage) + 1 : strlen(usage);
    fwrite(usage, 1, n, f);
}

int acr__usage(const char *usage, const char *fmt, ...)
{
    va_list ap;
    fputs("accrue: usage: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    if (usage != NULL)
        print_synopsis(usage, stderr);
    return ACR_EXIT_USAGE;
}

int acr__common_opt(acr_cli_t *cli, int c, char **argv, const char *usage)
{
    switch (c) {
    case ACR_OPT_HELP:
        fputs(usage, stdout);
        return ACR_EXIT_OK;
    case ACR_OPT_LEDGER:
        cli->ledger_dir = optarg;
        return -1;
    case ACR_OPT_QUIET:
        cli->quiet = true;
        return -1;
    default:
        return acr__usage(usage, "unknown option or missing argument: %s",
                          optind > 0 ? argv[optind - 1] : "?");
    }
}

void acr__diag(int code, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "accrue: %s: ", acr_err_name(code));
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

void acr__diag_err(const acr_err_t *err)
{
    fprintf(stderr, "accrue: %s: ", acr_err_name(err->code));
    if (err->line != 0)
        fprintf(stderr, "line %" PRIu64 ": ", err->line);
    if (err->id[0] != '\0')
        fprintf(stderr, "id %s: ", err->id);
    if (err->field[0] != '\0')
        fprintf(stderr, "field %s: ", err->field);
    fprintf(stderr, "%s\n", err->msg[0] != '\0' ? err->msg : acr_err_name(err->code));
}

void acr__diag_errlist(const acr_errlist_t *list)
{
    for (size_t i = 0; i < list->count; i++)
        acr__diag_err(&list->items[i]);
    if (list->total > list->count)
        fprintf(stderr, "accrue: and %zu more errors not shown (cli.md: up to %zu are listed)\n",
                list->total - list->count, list->count);
}

int acr__fail(int rc, const acr_err_t *err)
{
    if (err != NULL && err->code != 0) {
        acr__diag_err(err);
        return acr_err_exit_code(err->code);
    }
    acr__diag(rc, "%s", "operation failed");
    return acr_err_exit_code(rc);
}

int acr__open_ledger(const acr_cli_t *cli, acr_ledger_t **out)
{
    acr_err_t err;
    acr_err_clear(&err);
    int rc = acr_ledger_open(cli->ledger_dir, out, &err);
    if (rc == 0)
        return 0;
    if (err.code == 0)
        err.code = rc;
    if (err.msg[0] == '\0' || rc == ACR_ENO_LEDGER)
        snprintf(err.msg, sizeof err.msg, "no ledger at %s (create one with `accrue init`)",
                 cli->ledger_dir);
    acr__diag_err(&err);
    return acr_err_exit_code(err.code);
}

int acr__refuse_on_replica(acr_ledger_t *ledger)
{
    acr_err_t err;
    acr_err_clear(&err);
    int rc = acr_replica_get(ledger, NULL, &err);
    if (rc == 0)
        return 0;
    if (rc < 0)
        return acr__fail(rc, &err);
    acr__diag(ACR_EREAD_ONLY, ACR_READ_ONLY_MSG);
    return acr_err_exit_code(ACR_EREAD_ONLY);
}

static int read_fd(int fd, acr_input_t *in, acr_err_t *err)
{
    acr_buf_t buf;
    acr_buf_init(&buf);
    for (;;) {
        if (acr_buf_reserve(&buf, 1 << 16) != 0) {
            acr_buf_destroy(&buf);
            return acr_err_set(err, ACR_ENOMEM, "out of memory reading the input");
        }
        ssize_t n = read(fd, buf.data + buf.len, buf.cap - buf.len);
        if (n == 0)
            break;
        if (n < 0) {
            if (errno == EINTR)
                continue;
            int e = errno;
            acr_buf_destroy(&buf);
            return acr_err_set(err, ACR_EIO, "read: %s", strerror(e));
        }
        buf.len += (size_t)n;
    }
    in->heap = buf.data;
    in->data = buf.data;
    in->len = buf.len;
    return 0;
}

int acr__input_read(const char *path, acr_input_t *in, acr_err_t *err)
{
    memset(in, 0, sizeof *in);
    if (path == NULL || strcmp(path, "-") == 0)
        return read_fd(STDIN_FILENO, in, err);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return acr_err_set(err, ACR_EIO, "%s: %s", path, strerror(errno));
    struct stat st;
    int rc = 0;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0) {
        void *map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (map != MAP_FAILED) {
            in->map = map;
            in->map_len = (size_t)st.st_size;
            in->data = map;
            in->len = (size_t)st.st_size;
            close(fd);
            return 0;
        }
    }
    rc = read_fd(fd, in, err);
    if (rc != 0)
        snprintf(err->msg, sizeof err->msg, "%s: cannot read", path);
    close(fd);
    return rc;
}

void acr__input_free(acr_input_t *in)
{
    if (in->map != NULL)
        munmap(in->map, in->map_len);
    free(in->heap);
    memset(in, 0, sizeof *in);
}

void acr__input_skip_bom(acr_input_t *in)
{
    if (in->len >= 3 && memcmp(in->data, "\xEF\xBB\xBF", 3) == 0) {
        in->data += 3;
        in->len -= 3;
    }
}

int acr__mkdir_p(const char *dir, acr_err_t *err)
{
    char path[4096];
    size_t n = strlen(dir);
    if (n == 0 || n >= sizeof path)
        return acr_err_set(err, ACR_EIO, "bad directory name");
    memcpy(path, dir, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (path[i] != '/' && path[i] != '\0')
            continue;
        char saved = path[i];
        path[i] = '\0';
        if (mkdir(path, 0777) != 0 && errno != EEXIST)
            return acr_err_set(err, ACR_EIO, "mkdir %s: %s", path, strerror(errno));
        path[i] = saved;
    }
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return acr_err_set(err, ACR_EIO, "%s is not a directory", dir);
    return 0;
}

int acr__write_file(const char *path, const void *p, size_t n, acr_err_t *err)
{
    FILE *f = fopen(path, "wb");
    if (f == NULL)
        return acr_err_set(err, ACR_EIO, "%s: %s", path, strerror(errno));
    bool ok = fwrite(p, 1, n, f) == n;
    ok = (fclose(f) == 0) && ok;
    if (!ok)
        return acr_err_set(err, ACR_EIO, "%s: write failed", path);
    return 0;
}

bool acr__parse_u64(const char *s, uint64_t *out)
{
    uint64_t v = 0;
    if (s == NULL || *s == '\0')
        return false;
    for (; *s != '\0'; s++) {
        if (*s < '0' || *s > '9')
            return false;
        unsigned d = (unsigned)(*s - '0');
        if (v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

bool acr__out(const void *p, size_t n)
{
    return fwrite(p, 1, n, stdout) == n;
}

int64_t acr__wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The name /etc/passwd gives uid, into out (cap bytes): true when found. Read with open(2)
 * and read(2) into a fixed buffer: no NSS modules, no allocation, so it cannot be what
 * breaks an append under memory pressure (tests/reliability/faults.py fails malloc). A
 * user known only to a directory service (LDAP) is not found: the uid is used then. */
static bool passwd_name(uid_t uid, char *out, size_t cap)
{
    static char buf[256 * 1024];
    int fd = open("/etc/passwd", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    size_t len = 0;
    for (ssize_t n; len < sizeof buf - 1 && (n = read(fd, buf + len, sizeof buf - 1 - len)) != 0;) {
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            break;
        len += (size_t)n;
    }
    close(fd);
    buf[len] = '\0';
    for (char *line = buf; line < buf + len;) {
        char *end = strchr(line, '\n');
        if (end == NULL)
            end = buf + len;
        *end = '\0';
        char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (c1 != NULL && c2 != NULL && c1 > line) {
            char *num_end;
            unsigned long v = strtoul(c2 + 1, &num_end, 10);
            if (num_end != c2 + 1 && *num_end == ':' && v == (unsigned long)uid &&
                (size_t)(c1 - line) < cap) {
                memcpy(out, line, (size_t)(c1 - line));
                out[c1 - line] = '\0';
                return true;
            }
        }
        line = end + 1;
    }
    return false;
}

const char *acr__cli_actor(void)
{
    static char actor[96];
    if (actor[0] != '\0')
        return actor;
    /* events.md: `cli:<user>`. $USER, else $LOGNAME, else the account name of the effective
     * uid in /etc/passwd (containers, cron and CI often set neither variable), else the uid. */
    const char *user = getenv("USER");
    if (user == NULL || user[0] == '\0')
        user = getenv("LOGNAME");
    char name[65];
    if ((user == NULL || user[0] == '\0') && passwd_name(geteuid(), name, sizeof name))
        user = name;
    if (user != NULL && user[0] != '\0')
        snprintf(actor, sizeof actor, "cli:%.64s", user);
    else
        snprintf(actor, sizeof actor, "cli:uid%lu", (unsigned long)geteuid());
    return actor;
}
