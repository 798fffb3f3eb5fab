/* metrics.c - the counters behind GET /metrics (Prometheus text).
 *
 * Updated from the loop thread (requests, connections, subscribers) and the
 * writer thread (commits), read when /metrics renders on a pool thread: one
 * mutex guards them all, held for a few additions at a time.
 */
#include <inttypes.h>
#include <string.h>

#include "internal.h"

#define ROUTE_STATUS_MAX 256

static const uint64_t batch_bounds[] = {1, 2, 5, 10, 50, 100, 500, 1000, 10000, 100000, 1000000};
static const uint64_t group_bounds[] = {1, 2, 4, 8, 16, 32, 64, 128, 256, 1024};
static const uint64_t latency_bounds_us[] = {250,    500,     1000,    2500,    5000,
                                             10000,  25000,   50000,   100000,  250000,
                                             500000, 1000000, 2500000, 10000000};
#define NB(a) (sizeof(a) / sizeof(a[0]))

typedef struct histo {
    uint64_t bucket[16]; /* per bucket, +Inf last (cumulated on render) */
    uint64_t count;
    uint64_t sum;
} histo_t;

static struct {
    pthread_mutex_t mu;
    uint64_t events_appended;
    uint64_t commits;
    histo_t batch_events;   /* events per append request */
    histo_t group_batches;  /* batches per commit */
    histo_t commit_latency; /* us from commit start to durable */
    struct {
        const char *route; /* static label */
        int status;
        uint64_t n;
    } by_route[ROUTE_STATUS_MAX];
    size_t route_count;
    int64_t conns;
    int64_t subs;
    uint64_t feed_dropped;
    uint64_t on_loop;     /* requests decided without the thread pool */
    uint64_t token_table; /* token checks that read the tokens table */
} m = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void observe(histo_t *h, const uint64_t *bounds, size_t nb, uint64_t v)
{
    size_t i = 0;
    while (i < nb && v > bounds[i])
        i++;
    h->bucket[i]++;
    h->count++;
    h->sum += v;
}

void acr_srv_metrics_request(const char *route, int status)
{
    pthread_mutex_lock(&m.mu);
    size_t i = 0;
    while (i < m.route_count &&
           !(m.by_route[i].status == status && strcmp(m.by_route[i].route, route) == 0))
        i++;
    if (i == m.route_count && m.route_count < ROUTE_STATUS_MAX) {
        m.by_route[i].route = route;
        m.by_route[i].status = status;
        m.route_count++;
    }
    if (i < m.route_count)
        m.by_route[i].n++;
    pthread_mutex_unlock(&m.mu);
}

void acr_srv_metrics_commit(size_t batches, uint64_t events, uint64_t latency_us)
{
    pthread_mutex_lock(&m.mu);
    m.commits++;
    m.events_appended += events;
    observe(&m.group_batches, group_bounds, NB(group_bounds), batches);
    observe(&m.commit_latency, latency_bounds_us, NB(latency_bounds_us), latency_us);
    pthread_mutex_unlock(&m.mu);
}

void acr_srv_metrics_batch(uint64_t events)
{
    pthread_mutex_lock(&m.mu);
    observe(&m.batch_events, batch_bounds, NB(batch_bounds), events);
    pthread_mutex_unlock(&m.mu);
}

void acr_srv_metrics_gauge_conns(int64_t delta)
{
    pthread_mutex_lock(&m.mu);
    m.conns += delta;
    pthread_mutex_unlock(&m.mu);
}

void acr_srv_metrics_gauge_subs(int64_t delta)
{
    pthread_mutex_lock(&m.mu);
    m.subs += delta;
    pthread_mutex_unlock(&m.mu);
}

void acr_srv_metrics_feed_dropped(void)
{
    pthread_mutex_lock(&m.mu);
    m.feed_dropped++;
    pthread_mutex_unlock(&m.mu);
}

void acr_srv_metrics_path(bool on_loop)
{
    pthread_mutex_lock(&m.mu);
    if (on_loop)
        m.on_loop++;
    else
        m.token_table++;
    pthread_mutex_unlock(&m.mu);
}

static void render_histo(acr_buf_t *out, const char *name, const char *help, const histo_t *h,
                         const uint64_t *bounds, size_t nb)
{
    acr_buf_printf(out, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
    uint64_t cum = 0;
    for (size_t i = 0; i < nb; i++) {
        cum += h->bucket[i];
        acr_buf_printf(out, "%s_bucket{le=\"%" PRIu64 "\"} %" PRIu64 "\n", name, bounds[i], cum);
    }
    cum += h->bucket[nb];
    acr_buf_printf(out,
                   "%s_bucket{le=\"+Inf\"} %" PRIu64 "\n%s_sum %" PRIu64 "\n%s_count %" PRIu64 "\n",
                   name, cum, name, h->sum, name, h->count);
}

int acr_srv_metrics_render(acr_buf_t *out)
{
    pthread_mutex_lock(&m.mu);
    acr_buf_printf(out,
                   "# HELP accrue_events_appended_total Events appended (duplicates excluded).\n"
                   "# TYPE accrue_events_appended_total counter\n"
                   "accrue_events_appended_total %" PRIu64 "\n"
                   "# HELP accrue_commits_total Durable write transactions (group commits).\n"
                   "# TYPE accrue_commits_total counter\n"
                   "accrue_commits_total %" PRIu64 "\n",
                   m.events_appended, m.commits);
    render_histo(out, "accrue_append_batch_events", "Events per append request.", &m.batch_events,
                 batch_bounds, NB(batch_bounds));
    render_histo(out, "accrue_commit_batches", "Append requests committed together.",
                 &m.group_batches, group_bounds, NB(group_bounds));
    render_histo(out, "accrue_commit_latency_us", "Group commit latency, microseconds.",
                 &m.commit_latency, latency_bounds_us, NB(latency_bounds_us));
    acr_buf_printf(out, "# HELP accrue_http_requests_total Requests by route and status.\n"
                        "# TYPE accrue_http_requests_total counter\n");
    for (size_t i = 0; i < m.route_count; i++)
        acr_buf_printf(out, "accrue_http_requests_total{route=\"%s\",status=\"%d\"} %" PRIu64 "\n",
                       m.by_route[i].route, m.by_route[i].status, m.by_route[i].n);
    acr_buf_printf(
        out,
        "# HELP accrue_http_connections Open connections.\n"
        "# TYPE accrue_http_connections gauge\n"
        "accrue_http_connections %" PRId64 "\n"
        "# HELP accrue_feed_subscribers Open event streams.\n"
        "# TYPE accrue_feed_subscribers gauge\n"
        "accrue_feed_subscribers %" PRId64 "\n"
        "# HELP accrue_feed_dropped_total Subscribers disconnected for falling behind.\n"
        "# TYPE accrue_feed_dropped_total counter\n"
        "accrue_feed_dropped_total %" PRIu64 "\n"
        "# HELP accrue_http_loop_decided_total Requests authenticated on the event loop "
        "(--token-file or the token cache).\n"
        "# TYPE accrue_http_loop_decided_total counter\n"
        "accrue_http_loop_decided_total %" PRIu64 "\n"
        "# HELP accrue_token_table_checks_total Token checks that read the tokens table.\n"
        "# TYPE accrue_token_table_checks_total counter\n"
        "accrue_token_table_checks_total %" PRIu64 "\n",
        m.conns, m.subs, m.feed_dropped, m.on_loop, m.token_table);
    pthread_mutex_unlock(&m.mu);
    return 0;
}
