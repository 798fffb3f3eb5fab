/* faultshim.c - fault injection at the I/O boundary, for test builds only.
 *
 * Built to build/faultshim.so and loaded with LD_PRELOAD into the -O2
 * build of accrue (never an ASan build: this file interposes malloc). It
 * interposes, by symbol, the LMDB entry points the program calls through
 * the PLT (mdb_put, mdb_del, mdb_cursor_put, mdb_txn_commit), the libc
 * calls LMDB makes through libc's PLT (write, pwrite, pwrite64, writev,
 * fdatasync, fsync, msync) and the allocator (malloc, calloc, realloc).
 *
 *   ACR_FAULT=<site>:<N>[:persist][:<ERR>]
 *       the Nth call (1-based) of <site> fails, once, or with `persist`
 *       that call and every later one. <ERR> overrides the error:
 *       EIO, ENOSPC, EDQUOT, ENOMEM, MAP_FULL, TXN_FULL. Defaults: EIO for
 *       the I/O calls and mdb_txn_commit, ENOMEM for malloc/calloc/realloc
 *       and the mdb_put family. A failing call returns what the real one
 *       returns on that error (-1 + errno, NULL + ENOMEM, or the LMDB code);
 *       a failing mdb_txn_commit aborts the transaction first, as a real
 *       failed commit frees it.
 *   ACR_FAULT_AFTER=start|mdb_env_open  (default mdb_env_open)
 *       calls are counted only from this point: the first mdb_env_open
 *       call, so that the loader, libc and option parsing are not counted
 *       and every N lands inside the ledger work. `start` counts from the
 *       shim's constructor.
 *   ACR_FAULT_BT=1
 *       prints a backtrace (backtrace_symbols_fd) on stderr when the fault
 *       fires: where the failing call came from.
 *   ACR_FAULT_COUNTS=<file>
 *       at exit (exit(3) or return from main; not on a signal) writes one
 *       line `<site> <calls>` per site, counted as above, then `fired <0|1>`
 *       and `leaks <blocks> <bytes>`. A run with no ACR_FAULT tells the
 *       driver how many calls there are.
 *
 * Leak accounting (valgrind replaces malloc with its own, so it cannot see
 * malloc faults): every block allocated after the counting point is kept in
 * a fixed table with its caller; free and realloc remove it. At exit, blocks
 * still live whose caller is outside libc (stdio buffers, locale data) are
 * leaks: `leaks` counts them and one `leak <bytes> <caller>` line per block
 * (up to 20) names the allocating function (dladdr; build with -g and
 * addr2line for a line number). Allocations before the counting point and
 * frees of them are ignored.
 *
 * Calls made through libc's internal aliases (stdio's own write, for one)
 * and LMDB's internal calls to its own functions (mdb_cursor_put inside
 * mdb_put) do not go through a PLT and are not seen.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <execinfo.h>
#include <errno.h>
#include <lmdb.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);

enum {
    S_MDB_PUT, S_MDB_DEL, S_MDB_CURSOR_PUT, S_MDB_TXN_COMMIT, S_WRITE, S_PWRITE, S_PWRITE64,
    S_WRITEV, S_FDATASYNC, S_FSYNC, S_MSYNC, S_MALLOC, S_CALLOC, S_REALLOC, S__COUNT
};
static const char *const site_names[S__COUNT] = {
    "mdb_put", "mdb_del", "mdb_cursor_put", "mdb_txn_commit", "write", "pwrite", "pwrite64",
    "writev", "fdatasync", "fsync", "msync", "malloc", "calloc", "realloc"};

static unsigned long counts[S__COUNT];
static int fault_site = -1;
static unsigned long fault_n;
static bool fault_persist;
static int fault_err;   /* errno or LMDB code; 0 = the site's default */
static volatile int armed;
static volatile int fired;
static char counts_path[4096];
static bool want_bt;

static int site_of(const char *name, size_t len)
{
    for (int i = 0; i < S__COUNT; i++)
        if (strlen(site_names[i]) == len && memcmp(site_names[i], name, len) == 0)
            return i;
    return -1;
}

static int err_of(const char *s)
{
    if (strcmp(s, "EIO") == 0)
        return EIO;
    if (strcmp(s, "ENOSPC") == 0)
        return ENOSPC;
    if (strcmp(s, "EDQUOT") == 0)
        return EDQUOT;
    if (strcmp(s, "ENOMEM") == 0)
        return ENOMEM;
    if (strcmp(s, "MAP_FULL") == 0)
        return MDB_MAP_FULL;
    if (strcmp(s, "TXN_FULL") == 0)
        return MDB_TXN_FULL;
    return 0;
}

__attribute__((constructor)) static void shim_init(void)
{
    const char *spec = getenv("ACR_FAULT");
    if (spec != NULL && *spec != '\0') {
        /* site:N[:persist][:ERR] parsed without allocating */
        const char *c1 = strchr(spec, ':');
        if (c1 != NULL) {
            fault_site = site_of(spec, (size_t)(c1 - spec));
            fault_n = strtoul(c1 + 1, NULL, 10);
            for (const char *p = strchr(c1 + 1, ':'); p != NULL; p = strchr(p + 1, ':')) {
                char tok[32];
                size_t n = strcspn(p + 1, ":");
                if (n >= sizeof tok)
                    n = sizeof tok - 1;
                memcpy(tok, p + 1, n);
                tok[n] = '\0';
                if (strcmp(tok, "persist") == 0)
                    fault_persist = true;
                else
                    fault_err = err_of(tok);
            }
        }
        if (fault_site < 0 || fault_n == 0) {
            fputs("faultshim: bad ACR_FAULT (site:N[:persist][:ERR])\n", stderr);
            _exit(99);
        }
    }
    const char *after = getenv("ACR_FAULT_AFTER");
    if (after != NULL && strcmp(after, "start") == 0)
        armed = 1;
    if (getenv("ACR_FAULT_BT") != NULL) {
        void *frames[2];
        backtrace(frames, 2); /* loads libgcc_s now, not inside a failing malloc */
        want_bt = true;
    }
    const char *cp = getenv("ACR_FAULT_COUNTS");
    if (cp != NULL)
        snprintf(counts_path, sizeof counts_path, "%s", cp);
}

static void report_leaks(FILE *f);

__attribute__((destructor)) static void shim_fini(void)
{
    if (counts_path[0] == '\0')
        return;
    armed = 0; /* stdio below allocates */
    FILE *f = fopen(counts_path, "w");
    if (f == NULL)
        return;
    for (int i = 0; i < S__COUNT; i++)
        fprintf(f, "%s %lu\n", site_names[i], counts[i]);
    fprintf(f, "fired %d\n", fired);
    report_leaks(f);
    fclose(f);
}

/* true when this call of site must fail */
static bool hit(int site)
{
    if (!armed)
        return false;
    unsigned long n = __atomic_add_fetch(&counts[site], 1, __ATOMIC_RELAXED);
    if (site != fault_site)
        return false;
    if (n == fault_n || (fault_persist && n > fault_n)) {
        if (want_bt && !fired) {
            void *frames[32];
            int k = backtrace(frames, 32);
            fprintf(stderr, "faultshim: %s call %lu fails here:\n", site_names[site], n);
            backtrace_symbols_fd(frames, k, 2);
        }
        fired = 1;
        return true;
    }
    return false;
}

static int io_err(void)
{
    return fault_err ? fault_err : EIO;
}

#define REAL(name)                                                                                \
    static __typeof__(&name) real_##name;                                                          \
    if (real_##name == NULL)                                                                       \
        real_##name = (__typeof__(&name))dlsym(RTLD_NEXT, #name);

/* ---- LMDB ---- */

int mdb_env_open(MDB_env *env, const char *path, unsigned int flags, mdb_mode_t mode)
{
    REAL(mdb_env_open);
    armed = 1;
    return real_mdb_env_open(env, path, flags, mode);
}

static int mdb_err(void)
{
    if (fault_err == 0)
        return ENOMEM;
    return fault_err;
}

int mdb_put(MDB_txn *txn, MDB_dbi dbi, MDB_val *key, MDB_val *data, unsigned int flags)
{
    REAL(mdb_put);
    if (hit(S_MDB_PUT))
        return mdb_err();
    return real_mdb_put(txn, dbi, key, data, flags);
}

int mdb_del(MDB_txn *txn, MDB_dbi dbi, MDB_val *key, MDB_val *data)
{
    REAL(mdb_del);
    if (hit(S_MDB_DEL))
        return mdb_err();
    return real_mdb_del(txn, dbi, key, data);
}

int mdb_cursor_put(MDB_cursor *cursor, MDB_val *key, MDB_val *data, unsigned int flags)
{
    REAL(mdb_cursor_put);
    if (hit(S_MDB_CURSOR_PUT))
        return mdb_err();
    return real_mdb_cursor_put(cursor, key, data, flags);
}

int mdb_txn_commit(MDB_txn *txn)
{
    REAL(mdb_txn_commit);
    if (hit(S_MDB_TXN_COMMIT)) {
        mdb_txn_abort(txn); /* a failed commit frees the transaction */
        return io_err();
    }
    return real_mdb_txn_commit(txn);
}

/* ---- libc I/O ---- */

ssize_t write(int fd, const void *buf, size_t n)
{
    REAL(write);
    if (hit(S_WRITE)) {
        errno = io_err();
        return -1;
    }
    return real_write(fd, buf, n);
}

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off)
{
    REAL(pwrite);
    if (hit(S_PWRITE)) {
        errno = io_err();
        return -1;
    }
    return real_pwrite(fd, buf, n, off);
}

ssize_t pwrite64(int fd, const void *buf, size_t n, off_t off)
{
    REAL(pwrite64);
    if (hit(S_PWRITE64)) {
        errno = io_err();
        return -1;
    }
    return real_pwrite64(fd, buf, n, off);
}

ssize_t writev(int fd, const struct iovec *iov, int cnt)
{
    REAL(writev);
    if (hit(S_WRITEV)) {
        errno = io_err();
        return -1;
    }
    return real_writev(fd, iov, cnt);
}

int fdatasync(int fd)
{
    REAL(fdatasync);
    if (hit(S_FDATASYNC)) {
        errno = io_err();
        return -1;
    }
    return real_fdatasync(fd);
}

int fsync(int fd)
{
    REAL(fsync);
    if (hit(S_FSYNC)) {
        errno = io_err();
        return -1;
    }
    return real_fsync(fd);
}

int msync(void *addr, size_t len, int flags)
{
    REAL(msync);
    if (hit(S_MSYNC)) {
        errno = io_err();
        return -1;
    }
    return real_msync(addr, len, flags);
}

/* ---- the allocator (glibc's __libc_* entry points: no dlsym recursion) ---- */

extern void __libc_free(void *);

#define TRACK_SLOTS (1u << 21) /* open addressing, power of two */
typedef struct {
    void *p;       /* NULL = empty, TOMB = deleted */
    void *caller;
    size_t size;
} track_t;
static track_t track[TRACK_SLOTS];
static volatile int track_lock;
#define TOMB ((void *)1)

static size_t slot_of(const void *p)
{
    uintptr_t x = (uintptr_t)p;
    x ^= x >> 17;
    x *= 0x9E3779B97F4A7C15ULL;
    return (size_t)(x >> 11) & (TRACK_SLOTS - 1);
}

static void lock(void)
{
    while (__atomic_exchange_n(&track_lock, 1, __ATOMIC_ACQUIRE))
        ;
}

static void unlock(void)
{
    __atomic_store_n(&track_lock, 0, __ATOMIC_RELEASE);
}

static void track_add(void *p, size_t size, void *caller)
{
    if (p == NULL || !armed)
        return;
    lock();
    for (size_t i = slot_of(p), n = 0; n < TRACK_SLOTS; i = (i + 1) & (TRACK_SLOTS - 1), n++)
        if (track[i].p == NULL || track[i].p == TOMB) {
            track[i] = (track_t){p, caller, size};
            break;
        }
    unlock();
}

static void track_del(void *p)
{
    if (p == NULL)
        return;
    lock();
    for (size_t i = slot_of(p), n = 0; n < TRACK_SLOTS; i = (i + 1) & (TRACK_SLOTS - 1), n++) {
        if (track[i].p == NULL)
            break;
        if (track[i].p == p) {
            track[i].p = TOMB;
            break;
        }
    }
    unlock();
}

static bool caller_in_libc(void *caller)
{
    Dl_info info;
    if (caller == NULL || dladdr(caller, &info) == 0 || info.dli_fname == NULL)
        return false;
    return strstr(info.dli_fname, "/libc.so") != NULL ||
           strstr(info.dli_fname, "/ld-linux") != NULL;
}

static void report_leaks(FILE *f)
{
    unsigned long blocks = 0, bytes = 0;
    for (size_t i = 0; i < TRACK_SLOTS; i++) {
        if (track[i].p == NULL || track[i].p == TOMB || caller_in_libc(track[i].caller))
            continue;
        blocks++;
        bytes += track[i].size;
    }
    fprintf(f, "leaks %lu %lu\n", blocks, bytes);
    int shown = 0;
    for (size_t i = 0; i < TRACK_SLOTS && shown < 20; i++) {
        if (track[i].p == NULL || track[i].p == TOMB || caller_in_libc(track[i].caller))
            continue;
        Dl_info info;
        const char *fn = "?", *obj = "?";
        uintptr_t off = 0;
        if (dladdr(track[i].caller, &info) != 0) {
            fn = info.dli_sname ? info.dli_sname : "?";
            obj = info.dli_fname ? info.dli_fname : "?";
            off = (uintptr_t)track[i].caller - (uintptr_t)info.dli_fbase;
        }
        fprintf(f, "leak %zu %s %s+0x%lx\n", track[i].size, fn, obj, (unsigned long)off);
        shown++;
    }
}

void free(void *p)
{
    track_del(p);
    __libc_free(p);
}

void *malloc(size_t n)
{
    if (hit(S_MALLOC)) {
        errno = ENOMEM;
        return NULL;
    }
    void *p = __libc_malloc(n);
    track_add(p, n, __builtin_return_address(0));
    return p;
}

void *calloc(size_t a, size_t b)
{
    if (hit(S_CALLOC)) {
        errno = ENOMEM;
        return NULL;
    }
    void *p = __libc_calloc(a, b);
    track_add(p, a * b, __builtin_return_address(0));
    return p;
}

void *realloc(void *p, size_t n)
{
    if (hit(S_REALLOC)) {
        errno = ENOMEM;
        return NULL;
    }
    void *q = __libc_realloc(p, n);
    if (q != NULL || n == 0) {
        track_del(p);
        track_add(q, n, __builtin_return_address(0));
    }
    return q;
}
