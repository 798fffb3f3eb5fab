/* stack.c - what the stack alone does over a ledger's log: the peer rows of
 * docs/benchmarks.md ("What bounds each path"), measured on the same ledger and in the same
 * run as accrue's own rows, so a ratio compares like with like.
 *
 *   accrue-stack scan  LEDGER_DIR   LMDB: a read transaction and one cursor over the log
 *                                   table in key order, touching every value's last byte
 *   accrue-stack chain LEDGER_DIR   the same, plus XXH3-128 of each stored value (the
 *                                   work of accrue's chain check: hash(prev ‖ record))
 *
 * Prints `STACK mode=<m> n=<values> seconds=<s> per_s=<rate> bytes=<sum of value sizes>`.
 * Uses LMDB and xxHash only (no accrue code), opens the environment read-only and never
 * writes. The first pass in a fresh process is what a payout run sees: the ledger's pages
 * are in the page cache (the run before warmed them) but not yet mapped. */
#include <lmdb.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <xxhash.h>

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int fail(const char *what, int rc)
{
    fprintf(stderr, "accrue-stack: %s: %s\n", what, mdb_strerror(rc));
    return 1;
}

int main(int argc, char **argv)
{
    if (argc != 3 || (strcmp(argv[1], "scan") != 0 && strcmp(argv[1], "chain") != 0)) {
        fprintf(stderr, "usage: accrue-stack scan|chain LEDGER_DIR\n");
        return 2;
    }
    int chain = strcmp(argv[1], "chain") == 0;
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    MDB_cursor *cur;
    int rc = mdb_env_create(&env);
    if (rc == 0)
        rc = mdb_env_set_maxdbs(env, 64);
    if (rc == 0)
        rc = mdb_env_open(env, argv[2], MDB_RDONLY | MDB_NOTLS, 0600);
    if (rc != 0)
        return fail(argv[2], rc);
    double t0 = now_s();
    if ((rc = mdb_txn_begin(env, NULL, MDB_RDONLY, &txn)) != 0 ||
        (rc = mdb_dbi_open(txn, "log", 0, &dbi)) != 0 ||
        (rc = mdb_cursor_open(txn, dbi, &cur)) != 0)
        return fail("log", rc);
    MDB_val k, v;
    uint64_t n = 0, bytes = 0, sink = 0;
    XXH128_hash_t h = {0, 0};
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        n++;
        bytes += v.mv_size;
        if (chain) {
            h = XXH3_128bits_withSeed(v.mv_data, v.mv_size, h.low64);
            sink += h.high64;
        } else if (v.mv_size > 0) {
            sink += ((const uint8_t *)v.mv_data)[v.mv_size - 1];
        }
    }
    if (rc != MDB_NOTFOUND)
        return fail("cursor", rc);
    double s = now_s() - t0;
    mdb_cursor_close(cur);
    mdb_txn_abort(txn);
    mdb_env_close(env);
    printf("STACK mode=%s n=%llu seconds=%.3f per_s=%.0f bytes=%llu check=%llu\n", argv[1],
           (unsigned long long)n, s, s > 0 ? (double)n / s : 0.0, (unsigned long long)bytes,
           (unsigned long long)(sink & 0xff));
    return 0;
}
