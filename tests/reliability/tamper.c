/* tamper.c - acr-tamper: locate and rewrite stored events below the engine, for the tamper tests.
 *
 *   acr-tamper offsets DIR        one line per log record: `seq offset length`, the byte
 *                                 offset of its value (16-byte hash + record) in DIR/data.mdb
 *   acr-tamper swap DIR A B       exchanges the stored values of seqs A and B with mdb_put
 *                                 (a reordering done at the LMDB level: every byte of both
 *                                 values is intact, only their positions change)
 *
 * It opens the environment with LMDB directly (not through the engine), read-only for offsets.
 * The value offsets are relative to the start of the memory map, found in /proc/self/maps
 * (LMDB maps data.mdb from offset 0), so they are file offsets. Exit 0, or 1 with a message.
 */
#define _GNU_SOURCE
#include <lmdb.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int die(const char *what, int rc)
{
    fprintf(stderr, "acr-tamper: %s: %s\n", what, rc ? mdb_strerror(rc) : "failed");
    return 1;
}

static uint64_t be64(const void *p)
{
    const uint8_t *b = p;
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | b[i];
    return v;
}

static void put_be64(uint64_t v, uint8_t out[8])
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        out[i] = (uint8_t)v;
}

/* The lowest address of the mapping of a file named data.mdb in this process. */
static uintptr_t map_base(void)
{
    FILE *f = fopen("/proc/self/maps", "r");
    char line[4096];
    uintptr_t base = 0;
    while (f != NULL && fgets(line, sizeof line, f) != NULL) {
        if (strstr(line, "/data.mdb") == NULL)
            continue;
        unsigned long lo, hi, off;
        char perms[8];
        if (sscanf(line, "%lx-%lx %7s %lx", &lo, &hi, perms, &off) == 4 && off == 0 &&
            (base == 0 || lo < base))
            base = lo;
    }
    if (f != NULL)
        fclose(f);
    return base;
}

static int open_env(const char *dir, unsigned flags, MDB_env **env, MDB_txn **txn, MDB_dbi *dbi)
{
    int rc = mdb_env_create(env);
    if (rc == 0)
        rc = mdb_env_set_maxdbs(*env, 64);
    if (rc == 0)
        rc = mdb_env_open(*env, dir, flags, 0644);
    if (rc == 0)
        rc = mdb_txn_begin(*env, NULL, flags & MDB_RDONLY, txn);
    if (rc == 0)
        rc = mdb_dbi_open(*txn, "log", 0, dbi);
    return rc;
}

static int cmd_offsets(const char *dir)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    MDB_cursor *cur;
    int rc = open_env(dir, MDB_RDONLY, &env, &txn, &dbi);
    if (rc == 0)
        rc = mdb_cursor_open(txn, dbi, &cur);
    if (rc != 0)
        return die(dir, rc);
    uintptr_t base = map_base();
    if (base == 0)
        return die("no mapping of data.mdb in /proc/self/maps", 0);
    MDB_val k, v;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT))
        printf("%llu %llu %zu\n", (unsigned long long)be64(k.mv_data),
               (unsigned long long)((uintptr_t)v.mv_data - base), v.mv_size);
    mdb_cursor_close(cur);
    mdb_txn_abort(txn);
    mdb_env_close(env);
    return rc == MDB_NOTFOUND ? 0 : die("reading the log", rc);
}

static int cmd_swap(const char *dir, uint64_t a, uint64_t b)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    int rc = open_env(dir, 0, &env, &txn, &dbi);
    if (rc != 0)
        return die(dir, rc);
    uint8_t ka[8], kb[8];
    put_be64(a, ka);
    put_be64(b, kb);
    MDB_val k1 = {8, ka}, k2 = {8, kb}, v1, v2;
    if ((rc = mdb_get(txn, dbi, &k1, &v1)) != 0 || (rc = mdb_get(txn, dbi, &k2, &v2)) != 0)
        return die("reading the two seqs", rc);
    void *c1 = malloc(v1.mv_size), *c2 = malloc(v2.mv_size);
    if (c1 == NULL || c2 == NULL)
        return die("out of memory", 0);
    memcpy(c1, v1.mv_data, v1.mv_size);
    memcpy(c2, v2.mv_data, v2.mv_size);
    MDB_val n1 = {v2.mv_size, c2}, n2 = {v1.mv_size, c1};
    if ((rc = mdb_put(txn, dbi, &k1, &n1, 0)) != 0 || (rc = mdb_put(txn, dbi, &k2, &n2, 0)) != 0 ||
        (rc = mdb_txn_commit(txn)) != 0)
        return die("rewriting", rc);
    free(c1);
    free(c2);
    mdb_env_close(env);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "offsets") == 0)
        return cmd_offsets(argv[2]);
    if (argc == 5 && strcmp(argv[1], "swap") == 0)
        return cmd_swap(argv[2], strtoull(argv[3], NULL, 10), strtoull(argv[4], NULL, 10));
    fprintf(stderr, "usage: acr-tamper offsets DIR | swap DIR SEQ_A SEQ_B\n");
    return 2;
}
