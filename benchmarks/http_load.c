/* http_load.c - the load client of the HTTP rows: POST /v1/events over keep-alive connections.
 *
 *   accrue-http-load URL TOKEN single CONNS SECONDS PARTNER_ID
 *   accrue-http-load URL TOKEN batch  CONNS EVENTS  PARTNER_ID [PER_REQUEST]
 *
 * `single`: CONNS connections, one sale per request, for SECONDS. `batch`: CONNS connections,
 * PER_REQUEST (default 1000) sales per request, EVENTS in all. Every event is a new sale of
 * PARTNER_ID (which must exist, with currency JPY) with a unique id, so requests are
 * independent of each other. Only loopback URLs are accepted. Prints the line of
 * benchmarks/http_load.mjs, `HTTP requests=R events=E seconds=S p50_ms=A p99_ms=B errors=N`,
 * then `CLIENT cpu_s=C us_per_request=U` (this process's own user + system CPU).
 *
 * Why C and not Node or wrk: on the 2-core reference machine the client shares the CPUs with
 * the server, so every microsecond it spends is one the server does not get. http_load.mjs
 * costs ~50 us of CPU per request; this client, one thread with epoll, raw sockets, one
 * request in flight per connection, the request bytes built once and only the sale's counter
 * rewritten in place (the body keeps its length, so Content-Length is fixed), costs a few
 * us. wrk can only make a unique body per request from a Lua request() callback, which
 * rebuilds the request in Lua each time, and has no notion of "N events in all" for the
 * batch row; this client does both rows with one measuring method.
 *
 * Latencies (request written to response complete) are kept exactly (one uint32 of
 * microseconds per request) and sorted at the end. The run stops after 100 errors.
 */
#define _GNU_SOURCE /* memmem */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

#define ERRORS_MAX 100
#define RBUF_BYTES (64 * 1024)

typedef struct conn {
    int fd;
    char *req;        /* the whole request: head and body (fixed length) */
    size_t req_len;   /* its bytes */
    size_t sent;      /* bytes of req written so far */
    char *rbuf;       /* response bytes not yet consumed */
    size_t rlen;      /* bytes in rbuf */
    uint64_t t0_ns;   /* when the request's first byte was written */
    int events;       /* sales in the request in flight */
    bool busy;        /* a request is in flight */
    bool want_out;    /* EPOLLOUT is asked for (the request is not all written) */
    bool closed;
} conn_t;

static uint64_t now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static void die(const char *what)
{
    fprintf(stderr, "accrue-http-load: %s: %s\n", what, strerror(errno));
    exit(1);
}

/* One sale line; COUNTER is replaced in place by a fixed-width decimal counter, so the line's
 * length never changes. The fields that vary with the counter in http_load.mjs (customer,
 * amount) vary here too, at fixed width. */
static const char LINE_FMT[] =
    "{\"id\":\"h%s-%010llu\",\"type\":\"sale.recorded\",\"at\":\"2026-06-15T12:00:00Z\","
    "\"data\":{\"sale_id\":\"H%s-%010llu\",\"partner_id\":\"%s\",\"customer_id\":\"HC%04u\","
    "\"product\":\"cloud\",\"amount_minor\":%06u,\"currency\":\"JPY\"}}\n";

static char g_run[48];        /* run id: pid and start time */
static const char *g_partner;
static uint64_t g_next_event; /* next sale counter */

/* The run (one thread: plain statics). */
static int g_ep;                     /* the epoll instance */
static uint64_t g_total_events;      /* stop once this many sales were sent */
static uint64_t g_deadline_ns;       /* or at this time (single) */
static uint64_t g_requests, g_errors, g_events_sent;
static int g_active;                 /* connections still open */
static int g_per_request;            /* sales per request */
static size_t g_line_len;            /* bytes of one sale line */
static size_t g_off_id, g_off_sale, g_off_cust, g_off_amount; /* counters in a line */
static char g_host[64];
static unsigned g_port;
static const char *g_token;

/* Writes the line of sale k at out (exactly line_len bytes, the NUL not kept). */
static void put_line(char *out, size_t line_len, uint64_t k)
{
    char tmp[1024];
    int n = snprintf(tmp, sizeof tmp, LINE_FMT, g_run, (unsigned long long)k, g_run,
                     (unsigned long long)k, g_partner, (unsigned)(k % 5000),
                     (unsigned)(100000 + (k % 997) * 100));
    if (n < 0 || (size_t)n != line_len) {
        fprintf(stderr, "accrue-http-load: line length %d != %zu\n", n, line_len);
        exit(1);
    }
    memcpy(out, tmp, line_len);
}

/* Rewrites the counters of a line in place: the cheap path of `single` (no snprintf). */
static void patch_line(char *line, size_t off_id, size_t off_sale, size_t off_cust,
                       size_t off_amount, uint64_t k)
{
    char d[10];
    uint64_t v = k;
    for (int i = 9; i >= 0; i--) {
        d[i] = (char)('0' + v % 10);
        v /= 10;
    }
    memcpy(line + off_id, d, 10);
    memcpy(line + off_sale, d, 10);
    unsigned c = (unsigned)(k % 5000), a = (unsigned)(100000 + (k % 997) * 100);
    for (int i = 3; i >= 0; i--, c /= 10)
        line[off_cust + (size_t)i] = (char)('0' + c % 10);
    for (int i = 5; i >= 0; i--, a /= 10)
        line[off_amount + (size_t)i] = (char)('0' + a % 10);
}

/* Writes the head of a request of body_len bytes to out; returns its length. */
static size_t put_head(char *out, size_t cap, size_t body_len)
{
    int n = snprintf(out, cap,
                     "POST /v1/events HTTP/1.1\r\nHost: %s:%u\r\n"
                     "Authorization: Bearer %s\r\nContent-Type: application/x-ndjson\r\n"
                     "Content-Length: %zu\r\n\r\n",
                     g_host, g_port, g_token, body_len);
    if (n < 0 || (size_t)n >= cap) {
        fprintf(stderr, "accrue-http-load: token too long\n");
        exit(2);
    }
    return (size_t)n;
}

static void conn_close(conn_t *c)
{
    close(c->fd);
    c->closed = true;
    g_active--;
}

/* Writes what is left of c's request; waits for EPOLLOUT while the socket is full. */
static int flush(conn_t *c)
{
    while (c->sent < c->req_len) {
        ssize_t w = send(c->fd, c->req + c->sent, c->req_len - c->sent, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && errno == EAGAIN) {
            if (c->want_out)
                return 0;
            c->want_out = true;
            struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
            return epoll_ctl(g_ep, EPOLL_CTL_MOD, c->fd, &ev);
        }
        if (w < 0)
            return -1;
        c->sent += (size_t)w;
    }
    if (!c->want_out)
        return 0;
    c->want_out = false;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    return epoll_ctl(g_ep, EPOLL_CTL_MOD, c->fd, &ev);
}

/* Starts the next request on c, or closes c when the run is over. */
static void next_request(conn_t *c)
{
    if (g_errors >= ERRORS_MAX || g_next_event >= g_total_events || now_ns() >= g_deadline_ns) {
        conn_close(c);
        return;
    }
    int n = g_per_request;
    if ((uint64_t)n > g_total_events - g_next_event)
        n = (int)(g_total_events - g_next_event);
    if (n != g_per_request) { /* the last, short batch: a shorter body */
        size_t head_len = put_head(c->req, 1024, g_line_len * (size_t)n);
        for (int k = 0; k < n; k++)
            put_line(c->req + head_len + (size_t)k * g_line_len, g_line_len, 0);
        c->req_len = head_len + g_line_len * (size_t)n;
    }
    char *body = c->req + (c->req_len - g_line_len * (size_t)n);
    for (int k = 0; k < n; k++)
        patch_line(body + (size_t)k * g_line_len, g_off_id, g_off_sale, g_off_cust,
                   g_off_amount, g_next_event++);
    g_events_sent += (uint64_t)n;
    c->events = n;
    c->busy = true;
    c->sent = 0;
    c->t0_ns = now_ns();
    if (flush(c) != 0) {
        g_errors++;
        conn_close(c);
    }
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* Reads what c's socket has and consumes every complete response; false when c is lost. */
static bool on_readable(conn_t *c, uint32_t **lat_us, size_t *lat_n, size_t *lat_cap)
{
    ssize_t r = read(c->fd, c->rbuf + c->rlen, RBUF_BYTES - c->rlen);
    if (r < 0 && (errno == EAGAIN || errno == EINTR))
        return true;
    if (r <= 0)
        return false;
    c->rlen += (size_t)r;
    for (;;) {
        char *end = memmem(c->rbuf, c->rlen, "\r\n\r\n", 4);
        if (end == NULL)
            return c->rlen < RBUF_BYTES; /* a head larger than the buffer: lost */
        size_t head_bytes = (size_t)(end - c->rbuf) + 4, clen = 0;
        int status = c->rlen > 12 ? atoi(c->rbuf + 9) : 0;
        bool close_after = false;
        for (char *p = c->rbuf; p < end; p++) {
            if (p[0] != '\n')
                continue;
            if (strncasecmp(p + 1, "content-length:", 15) == 0)
                clen = strtoull(p + 16, NULL, 10);
            else if (strncasecmp(p + 1, "connection: close", 17) == 0)
                close_after = true;
        }
        if (head_bytes + clen > RBUF_BYTES)
            return false;
        if (c->rlen < head_bytes + clen)
            return true;
        memmove(c->rbuf, c->rbuf + head_bytes + clen, c->rlen - head_bytes - clen);
        c->rlen -= head_bytes + clen;
        if (status == 100)
            continue;
        if (!c->busy)
            return false; /* an answer to nothing */
        uint64_t us = (now_ns() - c->t0_ns) / 1000;
        if (*lat_n == *lat_cap) {
            *lat_cap *= 2;
            *lat_us = realloc(*lat_us, *lat_cap * sizeof **lat_us);
            if (*lat_us == NULL)
                die("realloc");
        }
        (*lat_us)[(*lat_n)++] = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
        g_requests++;
        c->busy = false;
        if (status != 200 && ++g_errors <= 3)
            fprintf(stderr, "accrue-http-load: status %d\n", status);
        if (close_after) {
            conn_close(c);
            return true;
        }
        next_request(c);
        return true; /* one request in flight: nothing more can be in rbuf */
    }
}

/* Parses URL (loopback only) into g_host, g_port and sa; exits on anything else. */
static void parse_url(const char *url, struct sockaddr_in *sa)
{
    g_port = 80;
    if (strncmp(url, "http://", 7) != 0 || sscanf(url + 7, "%63[^:/]:%u", g_host, &g_port) < 1) {
        fprintf(stderr, "accrue-http-load: URL must be http://127.0.0.1:PORT\n");
        exit(2);
    }
    if (strcmp(g_host, "localhost") == 0)
        strcpy(g_host, "127.0.0.1");
    memset(sa, 0, sizeof *sa);
    sa->sin_family = AF_INET;
    sa->sin_port = htons((uint16_t)g_port);
    if (inet_pton(AF_INET, g_host, &sa->sin_addr) != 1 ||
        (ntohl(sa->sin_addr.s_addr) >> 24) != 127) {
        fprintf(stderr, "accrue-http-load: only loopback targets\n");
        exit(2);
    }
}

/* Opens connection c to sa with its request template (per_request lines of counter 0). */
static void conn_open(conn_t *c, const struct sockaddr_in *sa)
{
    size_t body_len = g_line_len * (size_t)g_per_request;
    c->req = malloc(1024 + body_len);
    c->rbuf = malloc(RBUF_BYTES);
    if (c->req == NULL || c->rbuf == NULL)
        die("malloc");
    size_t head_len = put_head(c->req, 1024, body_len);
    for (int k = 0; k < g_per_request; k++)
        put_line(c->req + head_len + (size_t)k * g_line_len, g_line_len, 0);
    c->req_len = head_len + body_len;
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    if (c->fd < 0)
        die("socket");
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(c->fd, (const struct sockaddr *)sa, sizeof *sa) != 0)
        die("connect");
    if (fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK) != 0)
        die("fcntl");
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    if (epoll_ctl(g_ep, EPOLL_CTL_ADD, c->fd, &ev) != 0)
        die("epoll_ctl");
    g_active++;
}

int main(int argc, char **argv)
{
    if (argc < 7 || (strcmp(argv[3], "single") != 0 && strcmp(argv[3], "batch") != 0)) {
        fprintf(stderr, "usage: accrue-http-load URL TOKEN single|batch CONNS SECONDS|EVENTS "
                        "PARTNER_ID [PER_REQUEST]\n");
        return 2;
    }
    bool single = strcmp(argv[3], "single") == 0;
    int conns_n = atoi(argv[4]);
    double amount = atof(argv[5]);
    g_token = argv[2];
    g_partner = argv[6];
    g_per_request = single ? 1 : (argc > 7 ? atoi(argv[7]) : 1000);
    if (conns_n < 1 || conns_n > 4096 || g_per_request < 1 || g_per_request > 100000 ||
        amount <= 0 || strlen(g_partner) > 64 || strlen(g_token) > 512) {
        fprintf(stderr, "accrue-http-load: bad arguments\n");
        return 2;
    }
    struct sockaddr_in sa;
    parse_url(argv[1], &sa);
    g_total_events = single ? 50000000u : (uint64_t)amount;
    uint64_t t_start = now_ns();
    g_deadline_ns = single ? t_start + (uint64_t)(amount * 1e9) : UINT64_MAX;
    snprintf(g_run, sizeof g_run, "%ld-%llu", (long)getpid(),
             (unsigned long long)(t_start / 1000000u % 1000000000u));

    /* the line's layout: its length and the offsets of the counters */
    char probe[1024];
    g_line_len = (size_t)snprintf(probe, sizeof probe, LINE_FMT, g_run, 0ull, g_run, 0ull,
                                  g_partner, 0u, 100000u);
    g_off_id = (size_t)(strstr(probe, "\"id\":\"h") - probe) + 7 + strlen(g_run) + 1;
    g_off_sale = (size_t)(strstr(probe, "\"sale_id\":\"H") - probe) + 12 + strlen(g_run) + 1;
    g_off_cust = (size_t)(strstr(probe, "\"customer_id\":\"HC") - probe) + 17;
    g_off_amount = (size_t)(strstr(probe, "\"amount_minor\":") - probe) + 15;

    g_ep = epoll_create1(0);
    if (g_ep < 0)
        die("epoll_create1");
    conn_t *conns = calloc((size_t)conns_n, sizeof *conns);
    size_t lat_cap = 1u << 20, lat_n = 0;
    uint32_t *lat_us = malloc(lat_cap * sizeof *lat_us);
    if (conns == NULL || lat_us == NULL)
        die("malloc");
    for (int i = 0; i < conns_n; i++)
        conn_open(&conns[i], &sa);
    for (int i = 0; i < conns_n; i++)
        next_request(&conns[i]);

    struct epoll_event evs[256];
    while (g_active > 0) {
        int n = epoll_wait(g_ep, evs, 256, 1000);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            die("epoll_wait");
        for (int e = 0; e < n; e++) {
            conn_t *c = evs[e].data.ptr;
            bool ok = true;
            if (!c->closed && (evs[e].events & EPOLLOUT))
                ok = flush(c) == 0;
            if (ok && !c->closed && (evs[e].events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
                ok = on_readable(c, &lat_us, &lat_n, &lat_cap);
            if (!ok && !c->closed) { /* the socket failed or the server broke the protocol */
                g_errors += c->busy;
                conn_close(c);
            }
        }
    }
    double seconds = (double)(now_ns() - t_start) / 1e9;
    qsort(lat_us, lat_n, sizeof *lat_us, cmp_u32);
    double p50 = lat_n ? lat_us[lat_n / 2] / 1000.0 : 0;
    double p99 = lat_n ? lat_us[(size_t)(0.99 * (double)lat_n)] / 1000.0 : 0;
    printf("HTTP requests=%llu events=%llu seconds=%.3f p50_ms=%.2f p99_ms=%.2f errors=%llu\n",
           (unsigned long long)g_requests, (unsigned long long)g_events_sent, seconds, p50, p99,
           (unsigned long long)g_errors);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
                 (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
    printf("CLIENT cpu_s=%.3f us_per_request=%.1f\n", cpu,
           g_requests ? cpu * 1e6 / (double)g_requests : 0.0);
    for (int i = 0; i < conns_n; i++) {
        free(conns[i].req);
        free(conns[i].rbuf);
    }
    free(conns);
    free(lat_us);
    return g_errors ? 1 : 0;
}
