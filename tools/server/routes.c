/* routes.c - the endpoints of http.md: authentication, roles, partner
 * scoping and the read routes.
 *
 * /healthz and / are answered at once (no token). For the rest the token is
 * checked on the request's head, before any body byte is read
 * (acr_srv_authorize): the loop hashes it and looks it up among the --token-file
 * entries and the cache of verified ledger tokens (token.h: no LMDB
 * transaction, no disk); an uncached token is checked against the tokens
 * table on the libuv thread pool (then cached). A refusal (401, 403, 404,
 * 405) is answered then, without reading the body. Once the body is in, a
 * small append (POST /v1/events, body up to ACR_SRV_LOOP_BODY_MAX) is parsed on
 * the loop and goes straight to the writer thread; everything else runs on
 * the pool with its own read snapshots, so the loop never waits on the
 * disk. Write routes (ingest.c) leave a job for the writer thread.
 * Slow routes (those that replay or scan the whole log: KPI, verify, payout
 * runs, audits, a staff statement, promotions) run on the slow lane's own
 * threads instead of the pool (lane.c), so a replay of tens of seconds never
 * holds a pool thread that a projection read is waiting for; at most
 * lim.slow_queue_max of them wait for a lane thread (503 + Retry-After beyond).
 *
 * Order of checks: a missing or unknown token is 401 for every path; then
 * an unknown path is 404 and a known path with another method 405; then a
 * role without the right is 403 (a partner token 404, http.md); then unknown
 * or malformed query parameters are 400 and, on a read replica, a write is
 * 403 read_only, all on the head. A partner token is scoped inside the
 * handlers: any record of another partner is answered 404 with the same
 * body as a record that does not exist, so a partner cannot probe for the
 * existence of other partners' deals or partners.
 */
#include <inttypes.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "accrue/date.h"
#include "accrue/projection.h"
#include "accrue/replica.h"
#include "internal.h"

#define EVENTS_LIMIT_MAX 10000
#define EVENTS_LIMIT_DEFAULT 1000

typedef void (*handler_fn)(acr_srv_t *s, acr_srv_req_t *req, char **params);

static void h_metrics(acr_srv_t *s, acr_srv_req_t *req, char **params);
static void h_events(acr_srv_t *s, acr_srv_req_t *req, char **params);
static void h_feed(acr_srv_t *s, acr_srv_req_t *req, char **params);
static void h_partners(acr_srv_t *s, acr_srv_req_t *req, char **params);
static void h_partner(acr_srv_t *s, acr_srv_req_t *req, char **params);
static void h_deal(acr_srv_t *s, acr_srv_req_t *req, char **params);
static void h_pipeline(acr_srv_t *s, acr_srv_req_t *req, char **params);
static void h_kpi(acr_srv_t *s, acr_srv_req_t *req, char **params);
static void h_run(acr_srv_t *s, acr_srv_req_t *req, char **params);
static void h_statement(acr_srv_t *s, acr_srv_req_t *req, char **params);
static void h_payouts(acr_srv_t *s, acr_srv_req_t *req, char **params);
static void h_audit(acr_srv_t *s, acr_srv_req_t *req, char **params);
static void h_verify(acr_srv_t *s, acr_srv_req_t *req, char **params);

static const handler_fn handlers[ACR_SRV_R__COUNT] = {
    [ACR_SRV_R_METRICS] = h_metrics,
    [ACR_SRV_R_EVENTS_APPEND] = acr_srv_h_append,
    [ACR_SRV_R_EVENTS_READ] = h_events,
    [ACR_SRV_R_FEED] = h_feed,
    [ACR_SRV_R_PARTNERS] = h_partners,
    [ACR_SRV_R_PARTNER] = h_partner,
    [ACR_SRV_R_DEAL] = h_deal,
    [ACR_SRV_R_DEAL_REGISTER] = acr_srv_h_deal_register,
    [ACR_SRV_R_DEAL_STAGE] = acr_srv_h_deal_stage,
    [ACR_SRV_R_PIPELINE] = h_pipeline,
    [ACR_SRV_R_KPI] = h_kpi,
    [ACR_SRV_R_RUN] = h_run,
    [ACR_SRV_R_STATEMENT] = h_statement,
    [ACR_SRV_R_CLOSE] = acr_srv_h_close,
    [ACR_SRV_R_PAYOUTS] = h_payouts,
    [ACR_SRV_R_AUDIT] = h_audit,
    [ACR_SRV_R_VERIFY] = h_verify,
    [ACR_SRV_R_ONBOARDING] = acr_srv_h_onboarding,
    [ACR_SRV_R_ANNOUNCEMENTS] = acr_srv_h_announcements,
    [ACR_SRV_R_ANNOUNCEMENT_ACK] = acr_srv_h_announcement_ack,
    [ACR_SRV_R_PROMOTIONS] = acr_srv_h_promotions,
    [ACR_SRV_R_STATUS] = acr_srv_h_status,
    [ACR_SRV_R_DEALS_LIST] = acr_srv_h_deals_list,
};

/* ---- answers ----------------------------------------------------------------------- */

static void not_found(acr_srv_req_t *req)
{
    acr_srv_set_error(req, 404, "not_found", "no such record");
}

/* Answers a failed engine call (404 for a missing record, else its error);
 * true when it failed, so the handler returns. */
static bool answered_failure(acr_srv_req_t *req, int rc, const acr_err_t *err)
{
    if (rc == ACR_ENOT_FOUND)
        not_found(req);
    else if (rc != 0)
        acr_srv_set_acr_error(req, rc, err);
    return rc != 0;
}

static void set_json(acr_srv_req_t *req, int status)
{
    req->status = status;
    req->ctype = "application/json";
}

/* ---- authentication and routing ------------------------------------------------------ */

enum auth_state { AUTH_UNKNOWN = 0, AUTH_OK, AUTH_NONE };

/* Without LMDB: the --token-file entries, then the cache. AUTH_NONE when
 * there is no usable bearer token, AUTH_UNKNOWN when the table must tell. */
static int auth_fast(acr_srv_t *s, acr_srv_req_t *req, uint8_t hash[ACR_TOKEN_HASH_LEN])
{
    const char *tok;
    size_t n;
    if (!acr_srv_bearer((const char *)req->auth.data, req->auth.len, &tok, &n) ||
        acr_token_hash(tok, n, hash) != 0)
        return AUTH_NONE;
    memcpy(req->token_hash, hash, sizeof req->token_hash); /* which token (idempotency keys) */
    bool boot = false;
    for (size_t i = 0; i < s->boot_count; i++) {
        if (sodium_memcmp(hash, s->boot[i].hash, ACR_TOKEN_HASH_LEN) == 0 && !boot) {
            req->role = s->boot[i].role;
            memcpy(req->partner, s->boot[i].partner, sizeof req->partner);
            snprintf(req->token_name, sizeof req->token_name, "%s", s->boot[i].name);
            boot = true;
        }
    }
    if (boot)
        return AUTH_OK;
    req->token_stored = true;
    int role;
    if (acr_token_cache_get(s->tokens, hash, &role, req->partner, req->token_name) == 0) {
        req->role = role;
        return AUTH_OK;
    }
    return AUTH_UNKNOWN;
}

/* Answers a refused request (401, 403, 404, 405); true when refused. */
static bool refuse(acr_srv_req_t *req, int status, const acr_srv_decision_t *d)
{
    switch (status) {
    case 0:
        return false;
    case 401:
        req->role = ACR_ROLE_NONE;
        acr_srv_set_error(req, 401, "unauthorized",
                          "a valid `Authorization: Bearer <token>` is required");
        snprintf(req->extra_headers, sizeof req->extra_headers,
                 "WWW-Authenticate: Bearer realm=\"accrue\"\r\n");
        return true;
    case 405:
        req->route = "-";
        acr_srv_set_error(req, 405, "method_not_allowed", "use %s for %s", d->allow, req->path);
        snprintf(req->extra_headers, sizeof req->extra_headers, "Allow: %s\r\n", d->allow);
        return true;
    case 404:
        acr_srv_set_error(req, 404, "not_found", "no such endpoint: %s", req->path);
        return true;
    default:
        req->route = d->route->label;
        if (req->role == ACR_ROLE_PARTNER) /* http.md: "403 (partners: 404 as above)" */
            acr_srv_set_error(req, 404, "not_found", "no such record");
        else
            acr_srv_set_error(req, 403, "forbidden", "the %s role may not use %s",
                              acr_role_name(req->role), d->route->label);
        return true;
    }
}

/* The query parameters each route reads (http.md: unknown ones are 400, never ignored),
 * space-separated; NULL: none. */
static const char *const route_params[ACR_SRV_R__COUNT] = {
    [ACR_SRV_R_EVENTS_READ] = "from limit type stream",
    [ACR_SRV_R_FEED] = "from",
    [ACR_SRV_R_PIPELINE] = "partner today",
    [ACR_SRV_R_KPI] = "period partner by",
    [ACR_SRV_R_RUN] = "as_of",
    [ACR_SRV_R_STATEMENT] = "partner as_of",
    [ACR_SRV_R_PARTNERS] = "limit after",
    [ACR_SRV_R_PAYOUTS] = "limit after",
    [ACR_SRV_R_ONBOARDING] = "partner",
    [ACR_SRV_R_ANNOUNCEMENTS] = "partner today",
    [ACR_SRV_R_DEALS_LIST] = "partner stage limit offset",
};

/* On a read replica every write is 403 read_only (http.md), before its body is read for
 * errors: the engine refuses it anyway, but a malformed body would be answered 422 first. */
static bool replica_refused(const acr_srv_t *s, acr_srv_req_t *req, int route)
{
    switch (route) {
    case ACR_SRV_R_EVENTS_APPEND:
    case ACR_SRV_R_DEAL_REGISTER:
    case ACR_SRV_R_DEAL_STAGE:
    case ACR_SRV_R_CLOSE:
    case ACR_SRV_R_ANNOUNCEMENT_ACK:
        if (!s->replica)
            return false;
        acr_srv_set_error(req, 403, "read_only", ACR_READ_ONLY_MSG);
        return true;
    default:
        return false;
    }
}

/* The checks of a route's request that need no body: its query parameters (unknown or
 * malformed: 400) and, on a read replica, a write (403 read_only). Made on the head
 * (decide_head); a request not decided there (req->authed false) has them where it runs.
 * True when refused. */
static bool route_refused(const acr_srv_t *s, acr_srv_req_t *req, int route)
{
    return acr_srv_query_refused(req, route_params[route] ? route_params[route] : "") ||
           replica_refused(s, req, route);
}

/* Pool or lane thread: runs the handler (and checks the token first for a
 * request not authorized on its head). */
static void route_run(acr_srv_t *s, acr_srv_req_t *req)
{
    if (atomic_load(&req->gone)) { /* the client hung up before the work began */
        acr_srv_set_error(req, 503, "unavailable", "the client went away");
        return;
    }
    if (!req->authed && req->role == ACR_ROLE_NONE) {
        uint8_t hash[ACR_TOKEN_HASH_LEN];
        int a = auth_fast(s, req, hash), role = ACR_ROLE_NONE;
        if (a == AUTH_UNKNOWN)
            acr_srv_metrics_path(false);
        if (a == AUTH_UNKNOWN &&
            acr_token_check_hash(s->ledger, s->tokens, hash, &role, req->partner,
                                 req->token_name) == 0)
            req->role = role;
        else if (a != AUTH_OK)
            req->role = ACR_ROLE_NONE;
    }
    acr_srv_decision_t d;
    int status = acr_srv_route_decide(req, req->role, &d);
    if (refuse(req, status, &d))
        return;
    req->route = d.route->label;
    if (!req->authed && route_refused(s, req, d.route->id))
        return;
    acr_cancel_watch(&req->gone); /* a client gone mid-way stops the engine's long loops */
    handlers[d.route->id](s, req, d.params);
    acr_cancel_watch(NULL);
}

static void route_work(uv_work_t *w)
{
    route_run(w->loop->data, w->data);
}

/* Loop thread (the writer's hook): a finished write job answers its request. */
void acr_srv_job_done(acr_srv_t *s, acr_srv_req_t *req, acr_srv_wjob_t *job)
{
    (void)s;
    acr_srv_answer_job(req, job);
    acr_srv_respond(req);
}

/* Loop thread: a parsed request goes to the writer, the feed or the client. */
static void route_next(acr_srv_t *s, acr_srv_req_t *req)
{
    if (req->next == ACR_SRV_NEXT_WRITE && !acr_srv_conn_closing(req->conn) && req->status == 0) {
        req->wjob->req = req;
        acr_srv_writer_submit(s, req->wjob);
    } else if (req->next == ACR_SRV_NEXT_FEED && req->status == 0) {
        acr_srv_feed_start(s, req);
    } else {
        acr_srv_respond(req);
    }
}

static void route_after(uv_work_t *w, int status)
{
    acr_srv_req_t *req = w->data;
    acr_srv_t *s = w->loop->data;
    s->pool_jobs--;
    req->in_pool = false;
    if (status != 0 && req->status == 0)
        acr_srv_set_error(req, 503, "unavailable", "the request was cancelled");
    route_next(s, req);
    acr_srv_maybe_finish(s);
}

/* Loop thread: a slow request's lane job is done (the lane calls maybe_finish). */
static void route_lane_after(acr_srv_t *s, acr_srv_req_t *req)
{
    route_next(s, req);
}

/* ---- the head: authentication and authorization before the body ---------------------- */

/* Sets the refusal of req's head for role (a status, or nothing when allowed): the token,
 * the route, its query parameters and, on a read replica, a write, all before a byte of the
 * body is read. */
static void decide_head(acr_srv_t *s, acr_srv_req_t *req, int role)
{
    acr_srv_decision_t d;
    req->role = role;
    int status = acr_srv_route_decide(req, role, &d);
    if (refuse(req, status, &d))
        return;
    req->route = d.route->label;
    (void)route_refused(s, req, d.route->id);
}

static void auth_work(uv_work_t *w)
{
    acr_srv_req_t *req = w->data;
    acr_srv_t *s = w->loop->data;
    const char *tok;
    size_t n;
    uint8_t hash[ACR_TOKEN_HASH_LEN];
    int role = ACR_ROLE_NONE;
    req->role = ACR_ROLE_NONE;
    if (!atomic_load(&req->gone) &&
        acr_srv_bearer((const char *)req->auth.data, req->auth.len, &tok, &n) &&
        acr_token_hash(tok, n, hash) == 0 &&
        acr_token_check_hash(s->ledger, s->tokens, hash, &role, req->partner,
                             req->token_name) == 0) {
        req->role = role;
        memcpy(req->token_hash, hash, sizeof req->token_hash);
    }
}

static void auth_after(uv_work_t *w, int status)
{
    acr_srv_req_t *req = w->data;
    acr_srv_t *s = w->loop->data;
    acr_srv_conn_t *c = req->conn;
    s->pool_jobs--;
    req->in_pool = false;
    decide_head(s, req, status == 0 ? req->role : ACR_ROLE_NONE);
    acr_srv_head_decided(req);
    acr_srv_conn_unref(c);
    acr_srv_maybe_finish(s);
}

void acr_srv_authorize(acr_srv_t *s, acr_srv_req_t *req)
{
    req->authed = true;
    if (!acr_srv_split_target(req)) {
        req->route = "http";
        acr_srv_set_error(req, 400, "bad_request", "the request target is not a valid path");
        acr_srv_head_decided(req);
        return;
    }
    bool health = strcmp(req->path, "/healthz") == 0;
    if (health || acr_srv_dashboard_path(req->path)) {
        if (!acr_srv_is_get(req) && !health) /* refused on the head: no tokenless body */
            acr_srv_dashboard_answer(req);         /* 405 with the page's headers */
        else if (!acr_srv_is_get(req)) {
            req->route = "healthz";
            acr_srv_set_error(req, 405, "method_not_allowed", "use GET for %s", req->path);
            snprintf(req->extra_headers, sizeof req->extra_headers, "Allow: GET, HEAD\r\n");
        }
        acr_srv_head_decided(req); /* no token needed: answered once complete */
        return;
    }
    uint8_t hash[ACR_TOKEN_HASH_LEN];
    int a = auth_fast(s, req, hash);
    if (a != AUTH_UNKNOWN) { /* decided without the disk */
        if (a == AUTH_OK)
            acr_srv_metrics_path(true);
        decide_head(s, req, a == AUTH_OK ? req->role : ACR_ROLE_NONE);
        acr_srv_head_decided(req);
        return;
    }
    acr_srv_metrics_path(false);
    req->work.data = req;
    acr_srv_conn_t *c = req->conn;
    acr_srv_conn_ref(c);
    s->pool_jobs++;
    req->in_pool = true;
    if (uv_queue_work(s->loop, &req->work, auth_work, auth_after) != 0) {
        s->pool_jobs--;
        req->in_pool = false;
        acr_srv_set_error(req, 503, "unavailable", "cannot schedule the request");
        acr_srv_head_decided(req);
        acr_srv_conn_unref(c);
    }
}

/* Requests that replay or scan the whole log, seconds to tens of seconds on a
 * large ledger: a verify reads every event, a payout run, an audit and a staff
 * statement of an open period replay up to a period, a KPI replays for
 * commission_minor, the promotions replay for their budget use. They go to the
 * slow lane (a staff statement too: whether its period is closed, and so the
 * stored bytes, is known once the handler reads). (A partner's statement is the
 * stored bytes; onboarding and the other reads are projection lookups; GET
 * /v1/events scans a bounded page.) */
static bool is_slow(const acr_srv_req_t *req, int route_id)
{
    switch (route_id) {
    case ACR_SRV_R_VERIFY:
    case ACR_SRV_R_RUN:
    case ACR_SRV_R_AUDIT:
    case ACR_SRV_R_KPI:
    case ACR_SRV_R_PROMOTIONS:
        return true;
    case ACR_SRV_R_STATEMENT:
        return req->role != ACR_ROLE_PARTNER;
    default:
        return false;
    }
}

/* Loop thread: hands a slow request to the lane, or answers 503 when its queue is full. */
static void dispatch_slow(acr_srv_t *s, acr_srv_req_t *req, const acr_srv_route_t *route)
{
    req->lane.run = route_run;
    req->lane.done = route_lane_after;
    if (acr_srv_lane_submit(s, req))
        return;
    req->route = route->label;
    acr_srv_set_error(req, 503, "too_large", /* a limit breached: events.md's code for it */
                      "too many slow requests (%s) waiting; retry shortly", route->label);
    snprintf(req->extra_headers, sizeof req->extra_headers, "Retry-After: 1\r\n");
    acr_srv_respond(req);
}

void acr_srv_dispatch(acr_srv_t *s, acr_srv_req_t *req)
{
    if (!acr_srv_split_target(req)) {
        req->route = "http";
        acr_srv_set_error(req, 400, "bad_request", "the request target is not a valid path");
        acr_srv_respond(req);
        return;
    }
    if (acr_srv_dashboard_path(req->path)) { /* the page and its assets: no token */
        acr_srv_dashboard_answer(req);
        acr_srv_respond(req);
        return;
    }
    bool health = strcmp(req->path, "/healthz") == 0;
    if (health && !acr_srv_is_get(req)) {
        req->route = "healthz";
        acr_srv_set_error(req, 405, "method_not_allowed", "use GET for %s", req->path);
        snprintf(req->extra_headers, sizeof req->extra_headers, "Allow: GET, HEAD\r\n");
        acr_srv_respond(req);
        return;
    }
    if (health) {
        req->route = "healthz";
        if (acr_srv_query_refused(req, "")) {
            acr_srv_respond(req);
            return;
        }
        req->status = 200;
        req->ctype = "text/plain";
        acr_buf_append_str(&req->resp, "ok\n");
        acr_srv_respond(req);
        return;
    }
    uint8_t hash[ACR_TOKEN_HASH_LEN];
    int a =
        req->authed ? (req->role != ACR_ROLE_NONE ? AUTH_OK : AUTH_NONE) : auth_fast(s, req, hash);
    acr_srv_decision_t d;
    memset(&d, 0, sizeof d);
    if (a != AUTH_UNKNOWN) { /* decided without the disk (on the head, as a rule) */
        if (a == AUTH_OK && !req->authed)
            acr_srv_metrics_path(true);
        int status = acr_srv_route_decide(req, a == AUTH_OK ? req->role : ACR_ROLE_NONE, &d);
        if (refuse(req, status, &d)) {
            acr_srv_respond(req);
            return;
        }
        if (d.route->id == ACR_SRV_R_EVENTS_APPEND && req->body.len <= ACR_SRV_LOOP_BODY_MAX) {
            req->route = d.route->label;
            if (req->authed || !route_refused(s, req, d.route->id))
                acr_srv_h_append(s, req, d.params); /* parsing only: no LMDB */
            route_next(s, req);
            return;
        }
        if (is_slow(req, d.route->id)) {
            dispatch_slow(s, req, d.route);
            return;
        }
    }
    req->work.data = req;
    s->pool_jobs++;
    req->in_pool = true;
    if (uv_queue_work(s->loop, &req->work, route_work, route_after) != 0) {
        s->pool_jobs--;
        req->in_pool = false;
        acr_srv_set_error(req, 503, "unavailable", "cannot schedule the request");
        acr_srv_respond(req);
    }
}

/* ---- read handlers (pool thread) ------------------------------------------------------ */

static bool is_partner(const acr_srv_req_t *req)
{
    return req->role == ACR_ROLE_PARTNER;
}

static void h_metrics(acr_srv_t *s, acr_srv_req_t *req, char **params)
{
    (void)params;
    acr_srv_metrics_render(&req->resp);
    uint64_t behind; /* on a read replica (reporting.md): how far behind its primary */
    int64_t lag_ms, seen_ms;
    if (acr_replica_lag(s->ledger, &behind, &lag_ms, &seen_ms, NULL) == 1)
        acr_buf_printf(&req->resp, "# TYPE accrue_replica_lag_events gauge\n"
                       "accrue_replica_lag_events %" PRIu64 "\n# TYPE accrue_replica_lag_ms gauge\n"
                       "accrue_replica_lag_ms %" PRId64 "\n"
                       "# HELP accrue_replica_primary_seen_age_ms Since follow last saw the "
                       "primary's head (refreshed every 0.5 s while it runs).\n"
                       "# TYPE accrue_replica_primary_seen_age_ms gauge\n"
                       "accrue_replica_primary_seen_age_ms %" PRId64 "\n",
                       behind, lag_ms, seen_ms);
    uint64_t hits, runs; /* the KPI memo (engine/query/kpi_memo.c) */
    acr_query_kpi_memo_stats(s->ledger, &hits, &runs);
    acr_buf_printf(&req->resp,
                   "# HELP accrue_kpi_commission_total KPI commission sums, from the memo or "
                   "from a run of the processor.\n# TYPE accrue_kpi_commission_total counter\n"
                   "accrue_kpi_commission_total{from=\"memo\"} %" PRIu64 "\n"
                   "accrue_kpi_commission_total{from=\"run\"} %" PRIu64 "\n", hits, runs);
    req->status = 200;
    req->ctype = "text/plain; version=0.0.4";
}

static bool param_u64(acr_srv_req_t *req, const char *key, uint64_t *out, bool *present)
{
    char v[32];
    *present = acr_srv_query_param(req->query, key, v, sizeof v);
    if (*present && !acr_srv_parse_u64(v, out)) {
        acr_srv_set_error(req, 400, "bad_request",
                          "query parameter %s wants a non-negative integer", key);
        return false;
    }
    return true;
}

/* GET /v1/events: like `accrue log`, with type and stream filters. A filtered read scans at
 * most EVENTS_SCAN_MAX events per request, so a rare type costs bounded work per page;
 * Accrue-Next-From is always the seq to continue from and Accrue-More says whether the log
 * goes on past it (an empty page with More: true is a scan that found nothing yet). */
#define EVENTS_SCAN_MAX 100000

static void h_events(acr_srv_t *s, acr_srv_req_t *req, char **params)
{
    (void)params;
    uint64_t from = 1, limit = EVENTS_LIMIT_DEFAULT;
    bool has;
    char type_s[64] = "", stream[ACR_STRING_LEN_MAX + 16] = "";
    if (!param_u64(req, "from", &from, &has) || !param_u64(req, "limit", &limit, &has))
        return;
    if (limit == 0 || limit > EVENTS_LIMIT_MAX) {
        acr_srv_set_error(req, 400, "bad_request", "limit must be 1..%d", EVENTS_LIMIT_MAX);
        return;
    }
    int type = ACR_EV_NONE;
    if (acr_srv_query_param(req->query, "type", type_s, sizeof type_s) &&
        (type = acr_event_type_from_name(type_s, strlen(type_s))) == ACR_EV_NONE) {
        acr_srv_set_error(req, 400, "bad_request", "unknown event type '%s'", type_s);
        return;
    }
    bool by_stream = acr_srv_query_param(req->query, "stream", stream, sizeof stream);
    if (from == 0)
        from = 1;
    acr_reader_t *r;
    acr_err_t err;
    acr_err_clear(&err);
    int rc = acr_reader_open(s->ledger, &r, &err);
    if (rc != 0) {
        acr_srv_set_acr_error(req, rc, &err);
        return;
    }
    uint64_t head = acr_reader_head_seq(r), next = from;
    if (from <= head && (rc = acr_reader_seek(r, from, &err)) == 0) {
        acr_event_t ev;
        uint8_t hash[ACR_HASH_LEN];
        char evs[ACR_STRING_LEN_MAX + 16];
        for (uint64_t n = 0, scanned = 0; n < limit && scanned < EVENTS_SCAN_MAX &&
                                          (rc = acr_reader_next(r, &ev, hash, &err)) == 1;
             scanned++) {
            next = ev.seq + 1;
            if (type != ACR_EV_NONE && ev.type != type)
                continue;
            if (by_stream) {
                acr_event_stream(&ev, evs, sizeof evs);
                if (strcmp(evs, stream) != 0)
                    continue;
            }
            acr_event_to_json(&ev, hash, true, &req->resp);
            acr_buf_append(&req->resp, "\n", 1);
            n++;
        }
        rc = rc < 0 ? rc : 0;
    }
    acr_reader_close(r);
    if (rc < 0) {
        acr_srv_set_acr_error(req, rc, &err);
        return;
    }
    snprintf(req->extra_headers, sizeof req->extra_headers,
             "Accrue-Next-From: %" PRIu64 "\r\nAccrue-More: %s\r\n", next,
             next <= head ? "true" : "false");
    req->status = 200;
    req->ctype = "application/x-ndjson";
}

static void h_feed(acr_srv_t *s, acr_srv_req_t *req, char **params)
{
    (void)s;
    (void)params;
    uint64_t from = 1, last;
    bool has;
    if (!param_u64(req, "from", &from, &has))
        return;
    if (req->last_event_id[0] != '\0') {
        if (!acr_srv_parse_u64(req->last_event_id, &last) || last == UINT64_MAX) {
            acr_srv_set_error(req, 400, "bad_request", "Last-Event-ID wants a seq");
            return;
        }
        from = last + 1;
    }
    req->feed_from = from == 0 ? 1 : from;
    req->next = ACR_SRV_NEXT_FEED;
}

/* List endpoints page their JSON array (sorted by key, bytewise): `after=K` starts past the
 * element whose key is K, `limit=N` (1..LIST_LIMIT_MAX; without it, the rest of the list)
 * caps it; Accrue-More says whether elements remain and Accrue-Next-After is the key to ask
 * after. The array is the engine's own compact JSON of flat-keyed objects, walked in place
 * (the element bytes are answered as they are). False when the parameters were bad
 * (answered 400). */
#define LIST_LIMIT_MAX 10000

static size_t skip_ws(const char *t, size_t n, size_t i)
{
    while (i < n && (t[i] == ' ' || t[i] == '\n' || t[i] == '\r' || t[i] == '\t'))
        i++;
    return i;
}

/* The end (one past) of the JSON value starting at t[i]. */
static size_t value_end(const char *t, size_t n, size_t i)
{
    int depth = 0;
    bool str = false;
    for (; i < n; i++) {
        char c = t[i];
        if (str) {
            if (c == '\\')
                i++;
            else if (c == '"' && (str = false, depth == 0))
                return i + 1;
            continue;
        }
        if (c == '"')
            str = true;
        else if (c == '{' || c == '[')
            depth++;
        else if (c == '}' || c == ']') {
            if (depth == 0)
                return i; /* a scalar ends at its container's end */
            if (--depth == 0)
                return i + 1;
        } else if (depth == 0 && c == ',')
            return i;
    }
    return n;
}

/* The string value of the top-level key of the object t[i..end) into out ("" when absent). */
static void object_key(const char *t, size_t end, size_t i, const char *key, char *out,
                       size_t cap)
{
    size_t klen = strlen(key);
    out[0] = '\0';
    i = skip_ws(t, end, i + 1);
    while (i < end && t[i] == '"') {
        size_t kend = value_end(t, end, i);
        size_t v = skip_ws(t, end, kend);
        v = skip_ws(t, end, v < end && t[v] == ':' ? v + 1 : v);
        size_t vend = value_end(t, end, v);
        if (kend - i == klen + 2 && memcmp(t + i + 1, key, klen) == 0 && v < end &&
            t[v] == '"' && vend >= v + 2) {
            size_t len = vend - v - 2 < cap - 1 ? vend - v - 2 : cap - 1;
            memcpy(out, t + v + 1, len);
            out[len] = '\0';
            return;
        }
        i = skip_ws(t, end, vend);
        i = skip_ws(t, end, i < end && t[i] == ',' ? i + 1 : i);
    }
}

static bool page_array(acr_srv_req_t *req, const char *key)
{
    uint64_t limit = UINT64_MAX;
    bool has;
    char after[ACR_STRING_LEN_MAX + 1] = "";
    if (!param_u64(req, "limit", &limit, &has))
        return false;
    if (has && (limit == 0 || limit > LIST_LIMIT_MAX)) {
        acr_srv_set_error(req, 400, "bad_request", "limit must be 1..%d", LIST_LIMIT_MAX);
        return false;
    }
    bool by_after = acr_srv_query_param(req->query, "after", after, sizeof after);
    const char *t = (const char *)req->resp.data;
    size_t n = req->resp.len, i = skip_ws(t, n, 0), taken = 0;
    char kv[ACR_STRING_LEN_MAX + 1], last[ACR_STRING_LEN_MAX + 1] = "";
    bool more = false;
    if (i >= n || t[i] != '[')
        return true; /* not an array: left as it is */
    acr_buf_t out;
    acr_buf_init(&out);
    acr_buf_append_str(&out, "[");
    for (i = skip_ws(t, n, i + 1); i < n && t[i] != ']';) {
        size_t end = value_end(t, n, i);
        if (t[i] == '{')
            object_key(t, end, i, key, kv, sizeof kv);
        else
            kv[0] = '\0';
        if (!by_after || strcmp(kv, after) > 0) {
            if (taken == limit) {
                more = true;
                break;
            }
            acr_buf_append_str(&out, taken ? "," : "");
            acr_buf_append(&out, t + i, end - i);
            snprintf(last, sizeof last, "%s", kv);
            taken++;
        }
        i = skip_ws(t, n, end);
        i = skip_ws(t, n, i < n && t[i] == ',' ? i + 1 : i);
    }
    acr_buf_append_str(&out, "]\n");
    acr_buf_destroy(&req->resp);
    req->resp = out;
    int w = snprintf(req->extra_headers, sizeof req->extra_headers, "Accrue-More: %s\r\n",
                     more ? "true" : "false");
    if (more && w > 0) /* keys are ids (<= 64 bytes) or period ids */
        snprintf(req->extra_headers + w, sizeof req->extra_headers - (size_t)w,
                 "Accrue-Next-After: %.64s\r\n", last);
    return true;
}

static void h_partners(acr_srv_t *s, acr_srv_req_t *req, char **params)
{
    (void)params;
    acr_err_t err;
    acr_err_clear(&err);
    int rc;
    if (is_partner(req)) {
        acr_buf_append_str(&req->resp, "[");
        rc = acr_query_partners(s->ledger, req->partner, &req->resp, &err);
        if (rc == ACR_ENOT_FOUND) {
            rc = 0;
            acr_buf_reset(&req->resp);
            acr_buf_append_str(&req->resp, "[");
        }
        acr_buf_append_str(&req->resp, "]");
    } else {
        rc = acr_query_partners(s->ledger, NULL, &req->resp, &err);
    }
    if (rc != 0) {
        acr_srv_set_acr_error(req, rc, &err);
        return;
    }
    if (page_array(req, "partner_id"))
        set_json(req, 200);
}

static void h_partner(acr_srv_t *s, acr_srv_req_t *req, char **params)
{
    if (is_partner(req) && strcmp(params[0], req->partner) != 0) {
        not_found(req);
        return;
    }
    acr_err_t err;
    acr_err_clear(&err);
    int rc = acr_query_partners(s->ledger, params[0], &req->resp, &err);
    if (answered_failure(req, rc, &err))
        return;
    acr_buf_append_str(&req->resp, "\n");
    set_json(req, 200);
}

static void h_deal(acr_srv_t *s, acr_srv_req_t *req, char **params)
{
    acr_err_t err;
    acr_err_clear(&err);
    int rc = acr_query_deal(s->ledger, params[0], &req->resp, &err);
    if (answered_failure(req, rc, &err))
        return;
    char owner[ACR_ID_LEN_MAX + 1];
    if (is_partner(req) && (!acr_srv_json_partner(&req->resp, owner, sizeof owner) ||
                            strcmp(owner, req->partner) != 0)) {
        acr_buf_reset(&req->resp);
        not_found(req);
        return;
    }
    acr_buf_append_str(&req->resp, "\n");
    set_json(req, 200);
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void h_pipeline(acr_srv_t *s, acr_srv_req_t *req, char **params)
{
    (void)params;
    char buf[ACR_ID_LEN_MAX + 1], today_s[16];
    const char *pid;
    if (!acr_srv_scoped_partner(req, buf, sizeof buf, &pid))
        return;
    int32_t today = acr_local_day(wall_ms(), acr_ledger_config(s->ledger)->utc_offset_min);
    if (acr_srv_query_param(req->query, "today", today_s, sizeof today_s) &&
        !acr_date_parse(today_s, strlen(today_s), &today)) {
        acr_srv_set_error(req, 400, "bad_request", "today wants YYYY-MM-DD");
        return;
    }
    acr_err_t err;
    acr_err_clear(&err);
    int rc = acr_query_pipeline(s->ledger, pid, today, &req->resp, &err);
    if (rc != 0) {
        acr_srv_set_acr_error(req, rc, &err);
        return;
    }
    acr_buf_append_str(&req->resp, "\n");
    set_json(req, 200);
}

static void h_kpi(acr_srv_t *s, acr_srv_req_t *req, char **params)
{
    (void)params;
    char buf[ACR_ID_LEN_MAX + 1], period[16], by_s[8];
    const char *pid;
    if (!acr_srv_scoped_partner(req, buf, sizeof buf, &pid))
        return;
    if (!acr_srv_query_param(req->query, "period", period, sizeof period) || period[0] == '\0') {
        acr_srv_set_error(req, 400, "bad_request", "kpi wants ?period=YYYY-MM or YYYY-Qn");
        return;
    }
    bool by = acr_srv_query_param(req->query, "by", by_s, sizeof by_s);
    bool by_rep = by && strcmp(by_s, "rep") == 0;
    if (by && !by_rep) {
        acr_srv_set_error(req, 400, "bad_request", "by takes one value: rep");
        return;
    }
    acr_err_t err;
    acr_err_clear(&err);
    int rc = acr_query_kpi(s->ledger, period, pid, by_rep, &req->resp, &err);
    if (rc != 0) {
        acr_srv_set_acr_error(req, rc, &err);
        return;
    }
    acr_buf_append_str(&req->resp, "\n");
    set_json(req, 200);
}

static void h_run(acr_srv_t *s, acr_srv_req_t *req, char **params)
{
    uint64_t as_of = 0;
    bool has;
    if (!param_u64(req, "as_of", &as_of, &has))
        return;
    acr_payout_request_t pr = {params[0], as_of, NULL, NULL, 0};
    acr_payout_t p;
    memset(&p, 0, sizeof p);
    acr_err_t err;
    acr_err_clear(&err);
    int rc = acr_payout_run(s->ledger, &pr, &p, &err);
    if (rc == 0)
        rc = acr_payout_summary_json(&p, &req->resp);
    acr_payout_destroy(&p);
    if (rc != 0) {
        acr_srv_set_acr_error(req, rc, &err);
        return;
    }
    set_json(req, 200);
}

/* Keeps the header and the lines of one partner (column 2). */
static void csv_filter(const char *csv, size_t len, const char *pid, acr_buf_t *out)
{
    size_t plen = strlen(pid);
    bool header = true;
    for (size_t i = 0; i < len;) {
        const char *line = csv + i, *nl = memchr(line, '\n', len - i);
        size_t n = nl ? (size_t)(nl - line) + 1 : len - i;
        const char *c1 = memchr(line, ',', n);
        bool keep = header || (c1 != NULL && (size_t)(line + n - c1) > plen + 1 &&
                               memcmp(c1 + 1, pid, plen) == 0 && c1[1 + plen] == ',');
        if (keep)
            acr_buf_append(out, line, n);
        header = false;
        i += n;
    }
}

/* Statement CSV to {"period","fingerprint"?,"lines":[{column: value}]}. */
static void csv_to_json(const char *csv, size_t len, const char *period, const char *fp,
                        acr_buf_t *out)
{
    static const char *const cols[] = {"period", "partner_id",  "line",         "origin_period",
                                       "kind",   "source_id",   "source_seq",   "at",
                                       "rule",   "basis_minor", "amount_minor", "currency"};
    static const bool is_num[12] = {false, false, true,  false, false, false,
                                    true,  false, false, true,  true,  false};
    acr_buf_append_str(out, "{\"period\":");
    acr_buf_append_json_str(out, period, strlen(period));
    if (fp != NULL) {
        acr_buf_append_str(out, ",\"fingerprint\":");
        acr_buf_append_json_str(out, fp, strlen(fp));
    }
    acr_buf_append_str(out, ",\"lines\":[");
    const char *nl = memchr(csv, '\n', len);
    size_t i = nl ? (size_t)(nl - csv) + 1 : len;
    bool first = true;
    while (i < len) {
        const char *line = csv + i, *end = memchr(line, '\n', len - i);
        size_t n = end ? (size_t)(end - line) : len - i;
        acr_buf_append_str(out, first ? "{" : ",{");
        first = false;
        size_t col = 0, start = 0;
        for (size_t k = 0; k <= n && col < 12; k++) {
            if (k < n && line[k] != ',')
                continue;
            acr_buf_printf(out, "%s\"%s\":", col ? "," : "", cols[col]);
            if (is_num[col] && k > start)
                acr_buf_append(out, line + start, k - start);
            else if (is_num[col])
                acr_buf_append_str(out, "null");
            else
                acr_buf_append_json_str(out, line + start, k - start);
            col++;
            start = k + 1;
        }
        acr_buf_append_str(out, "}");
        i += n + 1;
    }
    acr_buf_append_str(out, "]}\n");
}

static void send_statement(acr_srv_req_t *req, const char *period, const char *csv, size_t len,
                           const char *pid, const char *fp)
{
    acr_buf_t filtered;
    acr_buf_init(&filtered);
    if (pid != NULL) {
        csv_filter(csv, len, pid, &filtered);
        csv = (const char *)filtered.data;
        len = filtered.len;
        fp = NULL;
    }
    /* http.md: CSV, or JSON by Accept; CSV unless JSON is preferred (a tie is CSV) */
    bool json = acr_srv_accept_q(req->accept, "application/json") >
                acr_srv_accept_q(req->accept, "text/csv");
    if (json) {
        csv_to_json(csv, len, period, fp, &req->resp);
        set_json(req, 200);
    } else {
        acr_buf_append(&req->resp, csv, len);
        req->status = 200;
        req->ctype = "text/csv; charset=utf-8";
        if (fp != NULL)
            snprintf(req->extra_headers, sizeof req->extra_headers, "X-Accrue-Fingerprint: %s\r\n",
                     fp);
    }
    acr_buf_destroy(&filtered);
}

/* A closed period's statement is the bytes its close stored (checked against the recorded
 * fingerprint): a partner sees nothing else; staff get them too unless as_of asks for the run
 * as of a given seq. An open period's, for staff, is the draft run as of the head or as_of. */
static void h_statement(acr_srv_t *s, acr_srv_req_t *req, char **params)
{
    char buf[ACR_ID_LEN_MAX + 1];
    const char *pid;
    acr_err_t err;
    acr_err_clear(&err);
    if (!acr_srv_scoped_partner(req, buf, sizeof buf, &pid))
        return;
    uint64_t as_of = 0;
    bool has = false;
    if (!is_partner(req) && !param_u64(req, "as_of", &as_of, &has))
        return;
    if (!is_partner(req) && pid != NULL) { /* a partner that does not exist is 404 */
        acr_buf_t one;
        acr_buf_init(&one);
        int qrc = acr_query_partners(s->ledger, pid, &one, &err);
        acr_buf_destroy(&one);
        if (answered_failure(req, qrc, &err))
            return;
    }
    if (!has) {
        acr_reader_t *r;
        const char *csv;
        size_t len;
        int rc = acr_reader_open(s->ledger, &r, &err);
        if (rc != 0) {
            acr_srv_set_acr_error(req, rc, &err);
            return;
        }
        char fp[33];
        rc = acr_reader_statement(r, params[0], &csv, &len, fp, &err);
        if (rc == 0)
            send_statement(req, params[0], csv, len, pid, fp);
        acr_reader_close(r);
        if (rc != ACR_ENOT_FOUND || is_partner(req)) {
            answered_failure(req, rc, &err);
            return;
        }
        acr_err_clear(&err);
    }
    acr_payout_request_t pr = {params[0], as_of, NULL, NULL, 0};
    acr_payout_t p;
    memset(&p, 0, sizeof p);
    int rc = acr_payout_run(s->ledger, &pr, &p, &err);
    if (rc == 0)
        send_statement(req, p.period_id, p.stmt.csv, p.stmt.csv_len, pid, p.stmt.fingerprint);
    acr_payout_destroy(&p);
    if (rc != 0)
        acr_srv_set_acr_error(req, rc, &err);
}

static void h_payouts(acr_srv_t *s, acr_srv_req_t *req, char **params)
{
    (void)params;
    acr_close_info_t *list = NULL;
    size_t n = 0;
    acr_err_t err;
    acr_err_clear(&err);
    int rc = acr_payout_list(s->ledger, &list, &n, &err);
    if (rc != 0) {
        acr_srv_set_acr_error(req, rc, &err);
        return;
    }
    acr_buf_t *b = &req->resp;
    acr_buf_append_str(b, "[");
    for (size_t i = 0; i < n; i++) {
        acr_buf_printf(b,
                       "%s{\"period\":\"%s\",\"seq\":%" PRIu64 ",\"through_seq\":%" PRIu64
                       ",\"lines\":%" PRIu64 ",\"fingerprint\":\"%s\",\"totals\":%s}",
                       i ? "," : "", list[i].period_id, list[i].seq, list[i].through_seq,
                       list[i].lines, list[i].fingerprint,
                       list[i].totals_json[0] ? list[i].totals_json : "{}");
    }
    acr_buf_append_str(b, "]\n");
    free(list);
    if (page_array(req, "period"))
        set_json(req, 200);
}

static void h_audit(acr_srv_t *s, acr_srv_req_t *req, char **params)
{
    acr_payout_t p;
    acr_audit_t au;
    memset(&p, 0, sizeof p);
    memset(&au, 0, sizeof au);
    acr_err_t err;
    acr_err_clear(&err);
    int rc = acr_payout_audit(s->ledger, params[0], &p, &au, &err);
    if (rc == ACR_ENOT_FOUND) {
        acr_payout_destroy(&p);
        acr_srv_set_error(req, 404, "not_found", "period %s is not closed", params[0]);
        return;
    }
    if (rc != 0) {
        acr_payout_destroy(&p);
        acr_srv_set_acr_error(req, rc, &err);
        return;
    }
    acr_buf_t *b = &req->resp;
    acr_buf_printf(b,
                   "{\"period\":\"%s\",\"match\":%s,\"recorded_fingerprint\":\"%s\","
                   "\"fingerprint\":\"%s\",\"through_seq\":%" PRIu64,
                   p.period_id, au.match ? "true" : "false", au.recorded_fingerprint,
                   p.stmt.fingerprint, p.through_seq);
    if (!au.match) {
        acr_buf_printf(b,
                       ",\"first_diff_line\":%" PRIu64 ",\"recorded_line\":", au.first_diff_line);
        acr_buf_append_json_str(b, au.recorded_line, strlen(au.recorded_line));
        acr_buf_append_str(b, ",\"computed_line\":");
        acr_buf_append_json_str(b, au.computed_line, strlen(au.computed_line));
    }
    acr_buf_append_str(b, "}\n");
    acr_payout_destroy(&p);
    set_json(req, 200);
}

static void h_verify(acr_srv_t *s, acr_srv_req_t *req, char **params)
{
    (void)params;
    acr_verify_result_t res;
    memset(&res, 0, sizeof res);
    acr_err_t err;
    acr_err_clear(&err);
    int rc = acr_ledger_verify(s->ledger, &res, NULL, &err);
    char hex[33];
    acr_hash_hex(res.head_hash, hex);
    acr_buf_t *b = &req->resp;
    if (rc == 0) {
        acr_buf_printf(b, "{\"ok\":true,\"events\":%" PRIu64 ",\"head\":\"%s\"}\n", res.events,
                       hex);
    } else if (rc == ACR_ECHAIN_BROKEN || rc == ACR_EMISMATCH) {
        acr_buf_printf(b,
                       "{\"ok\":false,\"code\":\"%s\",\"events\":%" PRIu64 ",\"bad_seq\":%" PRIu64
                       ",\"table\":",
                       acr_err_name(rc), res.events, res.bad_seq);
        acr_buf_append_json_str(b, res.bad_table, strlen(res.bad_table));
        acr_buf_append_str(b, ",\"key\":");
        acr_buf_append_json_str(b, res.bad_key, strlen(res.bad_key));
        acr_buf_append_str(b, ",\"message\":");
        acr_buf_append_json_str(b, err.msg, strlen(err.msg));
        acr_buf_append_str(b, "}\n");
    } else {
        acr_srv_set_acr_error(req, rc, &err);
        return;
    }
    set_json(req, 200);
}
