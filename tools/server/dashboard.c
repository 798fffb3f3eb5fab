/* dashboard.c - the dashboard of `accrue serve` (spec: dashboard.md).
 *
 * GET / and GET /assets/<file> answer the page and its scripts and styles
 * from the bytes embedded at build time (tools/dashboard/, turned into
 * $(BUILD)/gen/dashboard_assets.c by tools/dashboard/embed.c): no file on
 * disk, no network. Every answer carries the security headers of the spec
 * (a strict Content-Security-Policy: no inline script, nothing from another
 * origin) and a strong ETag, so a reload costs a 304.
 *
 * Two small read endpoints exist for the page, answered from the snapshot's
 * head and the projections (never a replay):
 *   GET /v1/status  who the token is (role, partner), the ledger's business
 *                   offset and period kind, today's local date, the head seq
 *                   and chain hash, events of the last 24 h, the closed
 *                   periods (ids only, for every role), and which
 *                   optional endpoints this server has (program.md's).
 *   GET /v1/deals   the open deals, filtered by ?partner= and ?stage=, at most
 *                   ?limit= rows (default 200, at most 1000); partner tokens
 *                   see their own only (another partner is 404).
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "accrue/date.h"
#include "accrue/projection.h"
#include "assets.h"
#include "internal.h"

/* Headers of every page and asset answer (dashboard.md, "Delivery"). */
static const char security_headers[] =
    "Content-Security-Policy: default-src 'self'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'\r\n"
    "X-Content-Type-Options: nosniff\r\n"
    "Referrer-Policy: no-referrer\r\n"
    "X-Frame-Options: DENY\r\n"
    "Cache-Control: no-cache\r\n";

#define DEALS_LIMIT_DEFAULT 200
#define DEALS_LIMIT_MAX 1000
#define DEALS_OFFSET_MAX 100000000ULL /* far past any pipeline; keeps offset + n exact */
#define DAY_MS (24 * 3600 * 1000LL)
/* Events read back from the head to count those of the last 24 h. */
#define RECENT_WINDOW 20000

bool acr_srv_dashboard_path(const char *path)
{
    return strcmp(path, "/") == 0 || strncmp(path, "/assets/", 8) == 0;
}

void acr_srv_dashboard_answer(acr_srv_req_t *req)
{
    req->route = "dashboard";
    req->static_headers = security_headers;
    if (!acr_srv_is_get(req)) {
        acr_srv_set_error(req, 405, "method_not_allowed", "use GET for %s", req->path);
        snprintf(req->extra_headers, sizeof req->extra_headers, "Allow: GET, HEAD\r\n");
        return;
    }
    if (acr_srv_query_refused(req, "")) /* the page and its assets take no parameters */
        return;
    const acr_srv_asset_t *a = NULL;
    for (size_t i = 0; i < acr_srv_dash_asset_count && a == NULL; i++)
        if (strcmp(acr_srv_dash_assets[i].path, req->path) == 0)
            a = &acr_srv_dash_assets[i];
    if (a == NULL) {
        acr_srv_set_error(req, 404, "not_found", "no such asset: %s", req->path);
        return;
    }
    snprintf(req->extra_headers, sizeof req->extra_headers, "ETag: %s\r\n", a->etag);
    req->ctype = a->ctype;
    if (req->if_none_match[0] != '\0' && strstr(req->if_none_match, a->etag) != NULL) {
        req->status = 304;
        return;
    }
    req->status = 200;
    if (acr_srv_is_get(req) &&
        acr_buf_append(&req->resp, (const char *)a->data, a->len) != 0)
        acr_srv_set_error(req, 503, "unavailable", "out of memory");
}

/* ---- GET /v1/status ---------------------------------------------------------------- */

static bool has_route(const char *pattern)
{
    for (size_t i = 0; i < ACR_SRV_R__COUNT; i++)
        if (acr_srv_routes[i].pattern != NULL && strcmp(acr_srv_routes[i].pattern, pattern) == 0)
            return true;
    return false;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The ledger's part of GET /v1/status: the closed period ids (a partner's portal offers
 * their statements) and, for every role but partner (the log's head is not a partner's
 * business), the head and the events of the last 24 h among the last RECENT_WINDOW. */
static int status_ledger(acr_srv_t *s, acr_buf_t *b, int role, int64_t now, acr_err_t *err)
{
    acr_close_info_t *list = NULL;
    size_t n = 0;
    int rc = acr_payout_list(s->ledger, &list, &n, err);
    if (rc != 0)
        return rc;
    acr_buf_append_str(b, ",\"closed_periods\":[");
    for (size_t i = 0; i < n; i++)
        acr_buf_printf(b, "%s\"%s\"", i ? "," : "", list[i].period_id);
    acr_buf_append_str(b, "]");
    free(list);
    if (role == ACR_ROLE_PARTNER)
        return 0;
    acr_reader_t *r;
    if ((rc = acr_reader_open(s->ledger, &r, err)) != 0)
        return rc;
    uint64_t head = acr_reader_head_seq(r);
    uint64_t from = head > RECENT_WINDOW ? head - RECENT_WINDOW + 1 : 1;
    uint8_t hash[ACR_HASH_LEN];
    char hex[33];
    acr_reader_head_hash(r, hash);
    acr_hash_hex(hash, hex);
    uint64_t recent = 0, scanned = 0;
    if (head > 0 && (rc = acr_reader_seek(r, from, err)) == 0) {
        acr_event_t ev;
        while ((rc = acr_reader_next(r, &ev, NULL, err)) == 1) {
            scanned++;
            recent += ev.at_ms >= now - DAY_MS && ev.at_ms <= now;
        }
    }
    acr_reader_close(r);
    if (rc < 0)
        return rc;
    acr_buf_printf(b,
                   ",\"head_seq\":%" PRIu64 ",\"head_hash\":\"%s\",\"events_24h\":%" PRIu64
                   ",\"events_24h_scanned\":%" PRIu64 ",\"events_24h_partial\":%s",
                   head, hex, recent, scanned, head > scanned ? "true" : "false");
    return 0;
}

void acr_srv_h_status(acr_srv_t *s, acr_srv_req_t *req, char **params)
{
    (void)params;
    const acr_config_t *cfg = acr_ledger_config(s->ledger);
    int64_t now = now_ms();
    char today[11], ts[ACR_TS_BUF];
    acr_date_format(acr_local_day(now, cfg->utc_offset_min), today);
    acr_ts_format(now, ts);
    acr_buf_t *b = &req->resp;
    acr_buf_append_str(b, "{\"role\":");
    const char *role = acr_role_name(req->role);
    acr_buf_append_json_str(b, role, strlen(role));
    acr_buf_append_str(b, ",\"partner_id\":");
    if (req->role == ACR_ROLE_PARTNER)
        acr_buf_append_json_str(b, req->partner, strlen(req->partner));
    else
        acr_buf_append_str(b, "null");
    acr_buf_printf(b,
                   ",\"utc_offset_min\":%d,\"period_kind\":\"%s\",\"today\":\"%s\",\"now\":\"%s\"",
                   (int)cfg->utc_offset_min,
                   cfg->period_kind == ACR_PERIOD_QUARTER ? "quarter" : "month", today, ts);
    static const char *const optional[][2] = {{"announcements", "/v1/announcements"},
                                              {"onboarding", "/v1/onboarding"},
                                              {"promotions", "/v1/promotions"}};
    acr_buf_append_str(b, ",\"features\":[");
    bool first = true;
    for (size_t i = 0; i < sizeof optional / sizeof optional[0]; i++) {
        if (has_route(optional[i][1])) {
            acr_buf_printf(b, "%s\"%s\"", first ? "" : ",", optional[i][0]);
            first = false;
        }
    }
    acr_buf_append_str(b, "]");
    /* What follows is the ledger's, not the token's: an ingest token (http.md: "append
     * events; nothing else") gets only who it is and the ledger's dates. */
    acr_err_t err;
    acr_err_clear(&err);
    int rc = req->role == ACR_ROLE_INGEST ? 0 : status_ledger(s, b, req->role, now, &err);
    if (rc != 0) {
        acr_buf_reset(b);
        acr_srv_set_acr_error(req, rc, &err);
        return;
    }
    acr_buf_append_str(b, "}\n");
    req->status = 200;
    req->ctype = "application/json";
}

/* ---- GET /v1/deals ----------------------------------------------------------------- */

void acr_srv_h_deals_list(acr_srv_t *s, acr_srv_req_t *req, char **params)
{
    (void)params;
    char partner[ACR_ID_LEN_MAX + 1], stage[ACR_STAGE_NAME_MAX + 1], num[24];
    const char *pid;
    if (!acr_srv_scoped_partner(req, partner, sizeof partner, &pid))
        return;
    const char *st =
        acr_srv_query_param(req->query, "stage", stage, sizeof stage) && stage[0] ? stage : NULL;
    uint64_t limit = DEALS_LIMIT_DEFAULT, offset = 0;
    if (acr_srv_query_param(req->query, "limit", num, sizeof num) &&
        (!acr_srv_parse_u64(num, &limit) || limit == 0 || limit > DEALS_LIMIT_MAX)) {
        acr_srv_set_error(req, 400, "bad_request", "limit must be 1..%d", DEALS_LIMIT_MAX);
        return;
    }
    if (acr_srv_query_param(req->query, "offset", num, sizeof num) &&
        (!acr_srv_parse_u64(num, &offset) || offset > DEALS_OFFSET_MAX)) {
        acr_srv_set_error(req, 400, "bad_request", "offset must be 0..%llu",
                          (unsigned long long)DEALS_OFFSET_MAX);
        return;
    }
    acr_err_t err;
    acr_err_clear(&err);
    int rc = acr_query_open_deals(s->ledger, pid, st, offset, limit, &req->resp, &err);
    if (rc == ACR_ENOT_FOUND) {
        acr_srv_set_error(req, 404, "not_found", "no such record");
        return;
    }
    if (rc != 0) {
        acr_srv_set_acr_error(req, rc, &err);
        return;
    }
    acr_buf_append_str(&req->resp, "\n");
    req->status = 200;
    req->ctype = "application/json";
}
