/* stack.c - what the stack alone does over a ledger's log: the peer rows of
 * docs/benchmarks.md ("What bounds each path"), measured on the same ledger and in the same
 * run as accrue's own rows, so a ratio compares like with like.
 *
 *   accrue-stack scan  LEDGER_DIR   LMDB: a read transaction and one cursor over the log
 *                                   table in key order, touching every value's last byte
 *   accrue-stack chain LEDGER_DIR   the same, plus XXH3-128 of each stored value (the
 *                                   work of accrue's chain check: hash(prev ‖ record))
 *
 *   accrue-stack commit DIR [SECONDS] [PER_TXN]
 *                                   the floor of a durable group commit: into a new scratch
 *                                   environment DIR (created; on the ledger's file system),
 *                                   write transactions of PER_TXN (64) 200-byte values
 *                                   appended in key order, each committed with LMDB's default
 *                                   durability (fsync), for SECONDS (5): what one group of
 *                                   HTTP appends costs before any of accrue's own work
 *
 *   accrue-stack serve PORT         the floor of an HTTP request on this machine: a libuv
 *                                   server on 127.0.0.1:PORT that finds each request's end
 *                                   (head, Content-Length) and answers every one at once with
 *                                   a fixed response the size of an append's 200, one write
 *                                   per response, until SIGTERM; no parsing, no token, no
 *                                   commit. Prints `STACK mode=serve n=<requests>` at the end.
 *
 * Prints `STACK mode=<m> n=<values> seconds=<s> per_s=<rate> bytes=<sum of value sizes>`
 * (commit: `n=<transactions>`, plus `values=`, `p50_ms=` and `p99_ms=` of one commit).
 * Uses LMDB and xxHash only (no accrue code); scan and chain open the environment read-only
 * and never write. The first pass in a fresh process is what a payout run sees: the ledger's pages
 * are in the page cache (the run before warmed them) but not yet mapped. */
#include <lmdb.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <uv.h>
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

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The commit mode: durable transactions of per_txn appended values for seconds. */
static int commit_floor(const char *dir, double seconds, int per_txn)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    if (mkdir(dir, 0700) != 0) {
        fprintf(stderr, "accrue-stack: %s: cannot create (it must not exist)\n", dir);
        return 1;
    }
    int rc = mdb_env_create(&env);
    if (rc == 0)
        rc = mdb_env_set_maxdbs(env, 4);
    if (rc == 0)
        rc = mdb_env_set_mapsize(env, (size_t)1 << 32);
    if (rc == 0)
        rc = mdb_env_open(env, dir, 0, 0600); /* default durability: no NOSYNC, no WRITEMAP */
    if (rc != 0)
        return fail(dir, rc);
    size_t cap = 1 << 16, n = 0;
    double *lat = malloc(cap * sizeof *lat);
    uint8_t val[200];
    memset(val, 'v', sizeof val);
    uint64_t key = 0;
    double t0 = now_s(), end = t0 + seconds;
    while (now_s() < end && lat != NULL) {
        double c0 = now_s();
        if ((rc = mdb_txn_begin(env, NULL, 0, &txn)) != 0 ||
            (rc = mdb_dbi_open(txn, "log", MDB_CREATE, &dbi)) != 0)
            return fail("begin", rc);
        for (int i = 0; i < per_txn; i++) {
            uint8_t kb[8];
            key++;
            for (int b = 0; b < 8; b++)
                kb[b] = (uint8_t)(key >> (56 - 8 * b));
            MDB_val k = {sizeof kb, kb}, v = {sizeof val, val};
            if ((rc = mdb_put(txn, dbi, &k, &v, MDB_APPEND)) != 0)
                return fail("put", rc);
        }
        if ((rc = mdb_txn_commit(txn)) != 0)
            return fail("commit", rc);
        if (n == cap && (lat = realloc(lat, (cap *= 2) * sizeof *lat)) == NULL)
            break;
        lat[n++] = (now_s() - c0) * 1e3;
    }
    double s = now_s() - t0;
    mdb_env_close(env);
    if (lat == NULL || n == 0)
        return 1;
    qsort(lat, n, sizeof *lat, cmp_double);
    printf("STACK mode=commit n=%zu seconds=%.3f per_s=%.0f values=%d p50_ms=%.3f p99_ms=%.3f\n",
           n, s, (double)n / s, per_txn, lat[n / 2], lat[(size_t)(0.99 * (double)n)]);
    free(lat);
    return 0;
}

/* ---- serve: the loopback HTTP floor ------------------------------------------------------ */

typedef struct peer_conn {
    uv_tcp_t tcp;
    char buf[65536]; /* received bytes not yet consumed */
    size_t len;
} peer_conn_t;

#define PEER_BODY "{\"first_seq\":1234567,\"last_seq\":1234567,\"appended\":1,\"duplicates\":0}\n"
static const char PEER_ANSWER[] =
    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 69\r\n"
    "Accrue-Request-Id: 6932a1b0-1234567\r\n\r\n" PEER_BODY;
_Static_assert(sizeof PEER_BODY - 1 == 69, "Content-Length of PEER_ANSWER");
static uint64_t peer_requests;
static uv_tcp_t peer_listener;
static uv_signal_t peer_sigterm;

static void peer_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    (void)hint;
    peer_conn_t *c = h->data;
    *buf = uv_buf_init(c->buf + c->len, (unsigned)(sizeof c->buf - c->len));
}

static void peer_closed(uv_handle_t *h)
{
    free(h->data);
}

/* Consumes every whole request in c->buf, answering each with one write. */
static void peer_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *b)
{
    (void)b;
    peer_conn_t *c = st->data;
    if (nread < 0 || (nread == 0 && c->len == sizeof c->buf)) {
        uv_close((uv_handle_t *)st, peer_closed);
        return;
    }
    c->len += (size_t)nread;
    for (;;) {
        char *end = NULL;
        for (size_t i = 0; i + 3 < c->len && end == NULL; i++)
            if (memcmp(c->buf + i, "\r\n\r\n", 4) == 0)
                end = c->buf + i;
        if (end == NULL)
            return;
        size_t head = (size_t)(end - c->buf) + 4, body = 0;
        for (char *p = c->buf; p < end; p++)
            if (*p == '\n' && strncasecmp(p + 1, "content-length:", 15) == 0)
                body = strtoull(p + 16, NULL, 10);
        if (head + body > sizeof c->buf) {
            uv_close((uv_handle_t *)st, peer_closed);
            return;
        }
        if (c->len < head + body)
            return;
        memmove(c->buf, c->buf + head + body, c->len - head - body);
        c->len -= head + body;
        uv_buf_t out = uv_buf_init((char *)PEER_ANSWER, sizeof PEER_ANSWER - 1);
        if (uv_try_write(st, &out, 1) != (int)(sizeof PEER_ANSWER - 1)) {
            uv_close((uv_handle_t *)st, peer_closed); /* a floor, not a server: no queueing */
            return;
        }
        peer_requests++;
    }
}

static void peer_accept(uv_stream_t *server, int status)
{
    peer_conn_t *c = status == 0 ? calloc(1, sizeof *c) : NULL;
    if (c == NULL)
        return;
    uv_tcp_init(server->loop, &c->tcp);
    c->tcp.data = c;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
        uv_close((uv_handle_t *)&c->tcp, peer_closed);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    uv_read_start((uv_stream_t *)&c->tcp, peer_alloc, peer_read);
}

static void peer_close_walk(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, h->data != NULL && h != (uv_handle_t *)&peer_listener &&
                            h != (uv_handle_t *)&peer_sigterm ? peer_closed : NULL);
}

static void peer_stop(uv_signal_t *sig, int signum)
{
    (void)signum;
    uv_walk(sig->loop, peer_close_walk, NULL);
}

static int serve_floor(int port)
{
    uv_loop_t *loop = uv_default_loop();
    struct sockaddr_in addr;
    uv_ip4_addr("127.0.0.1", port, &addr);
    uv_tcp_init(loop, &peer_listener);
    int rc = uv_tcp_bind(&peer_listener, (const struct sockaddr *)&addr, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&peer_listener, 511, peer_accept);
    if (rc != 0) {
        fprintf(stderr, "accrue-stack: listen: %s\n", uv_strerror(rc));
        return 1;
    }
    uv_signal_init(loop, &peer_sigterm);
    uv_signal_start(&peer_sigterm, peer_stop, SIGTERM);
    uv_run(loop, UV_RUN_DEFAULT);
    printf("STACK mode=serve n=%llu\n", (unsigned long long)peer_requests);
    return uv_loop_close(loop) == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "serve") == 0)
        return serve_floor(atoi(argv[2]));
    if (argc >= 3 && strcmp(argv[1], "commit") == 0)
        return commit_floor(argv[2], argc > 3 ? atof(argv[3]) : 5.0,
                            argc > 4 ? atoi(argv[4]) : 64);
    if (argc != 3 || (strcmp(argv[1], "scan") != 0 && strcmp(argv[1], "chain") != 0)) {
        fprintf(stderr, "usage: accrue-stack scan|chain LEDGER_DIR\n"
                        "       accrue-stack commit NEW_DIR [SECONDS] [PER_TXN]\n"
                        "       accrue-stack serve PORT\n");
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
