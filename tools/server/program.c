/* program.c - the partner program's endpoints (program.md, http.md):
 *
 *   GET  /v1/onboarding[?partner=P]       reading roles; a partner token: its own
 *   GET  /v1/announcements[?partner=P&today=YYYY-MM-DD]
 *                                         reading roles; a partner token: the announcements
 *                                         whose audience holds it, with its state
 *   POST /v1/announcements/{id}/ack       finance, admin (naming partner_id), partner (itself
 *                                         only: partner_id comes from the token)
 *   GET  /v1/promotions                   admin, finance, auditor
 *
 * The program's events themselves go through POST /v1/events like every other event.
 * Partner scoping follows http.md: another partner's record, or an announcement outside the
 * partner's audience, is 404 - the answer for one that does not exist. Handlers run on the
 * pool like serve_routes.c's; the ack leaves an append job for the writer thread.
 */
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "accrue/date.h"
#include "accrue/jsonmem.h"
#include "accrue/program.h"
#include "accrue/program_query.h"
#include "internal.h"

static void json_ok(acr_srv_req_t *req)
{
    acr_buf_append_str(&req->resp, "\n");
    req->status = 200;
    req->ctype = "application/json";
}

static void not_found(acr_srv_req_t *req)
{
    acr_srv_set_error(req, 404, "not_found", "no such record");
}

static bool is_partner(const acr_srv_req_t *req)
{
    return req->role == ACR_ROLE_PARTNER;
}

static void answer(acr_srv_req_t *req, int rc, const acr_err_t *err)
{
    if (rc == ACR_ENOT_FOUND)
        not_found(req);
    else if (rc != 0)
        acr_srv_set_acr_error(req, rc, err);
    else
        json_ok(req);
}

void acr_srv_h_onboarding(acr_srv_t *s, acr_srv_req_t *req, char **params)
{
    (void)params;
    char buf[ACR_ID_LEN_MAX + 1];
    const char *pid;
    if (!acr_srv_scoped_partner(req, buf, sizeof buf, &pid))
        return;
    acr_err_t err;
    acr_err_clear(&err);
    answer(req, acr_query_onboarding(s->ledger, pid, &req->resp, &err), &err);
}

void acr_srv_h_announcements(acr_srv_t *s, acr_srv_req_t *req, char **params)
{
    (void)params;
    char buf[ACR_ID_LEN_MAX + 1], today_s[16];
    const char *pid;
    if (!acr_srv_scoped_partner(req, buf, sizeof buf, &pid))
        return;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int32_t today = acr_local_day((int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000,
                                  acr_ledger_config(s->ledger)->utc_offset_min);
    if (acr_srv_query_param(req->query, "today", today_s, sizeof today_s) &&
        !acr_date_parse(today_s, strlen(today_s), &today)) {
        acr_srv_set_error(req, 400, "bad_request", "today wants YYYY-MM-DD");
        return;
    }
    acr_err_t err;
    acr_err_clear(&err);
    answer(req, acr_query_announcements(s->ledger, pid, today, true, &req->resp, &err), &err);
}

void acr_srv_h_promotions(acr_srv_t *s, acr_srv_req_t *req, char **params)
{
    (void)params;
    acr_err_t err;
    acr_err_clear(&err);
    answer(req, acr_query_promotions(s->ledger, &req->resp, &err), &err);
}

/* The body: {} or {"rep_id": ...} (and, for finance and admin, "partner_id"); optional "id"
 * and "at" envelope keys. */
void acr_srv_h_announcement_ack(acr_srv_t *s, acr_srv_req_t *req, char **params)
{
    if (acr_srv_idem_refused(s, req))
        return;
    const char *ann = params[0];
    json_error_t je;
    acr_jsonmem_begin();
    json_t *body = req->body.len ? json_loadb((const char *)req->body.data, req->body.len,
                                              JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &je)
                                 : json_object();
    if (acr_jsonmem_failed() || body == NULL || !json_is_object(body)) {
        json_decref(body);
        acr_srv_set_error(req, 422, "malformed_json", "the body must be one JSON object");
        return;
    }
    const char *key;
    json_t *v;
    json_object_foreach(body, key, v) {
        if (strcmp(key, "rep_id") != 0 && strcmp(key, "partner_id") != 0 &&
            strcmp(key, "id") != 0 && strcmp(key, "at") != 0) {
            acr_srv_set_error(req, 422, "unknown_field", "an acknowledgement has no field \"%s\"",
                          key);
            json_decref(body);
            return;
        }
    }
    json_t *pid = json_object_get(body, "partner_id");
    if (acr_srv_partner_at_refused(req, json_object_get(body, "at") != NULL)) {
        json_decref(body);
        return;
    }
    if (is_partner(req)) { /* for itself only: any other partner is 404 */
        if (pid != NULL && !(json_is_string(pid) && strcmp(json_string_value(pid), req->partner) == 0)) {
            json_decref(body);
            not_found(req);
            return;
        }
        json_object_set_new(body, "partner_id", json_string(req->partner));
        pid = json_object_get(body, "partner_id");
    }
    bool exists = false, visible = false;
    acr_err_t err;
    acr_err_clear(&err);
    int rc = acr_query_announcement_visible(s->ledger, ann, is_partner(req) ? req->partner : NULL,
                                            &exists, &visible, &err);
    if (rc != 0 || !exists || !visible) {
        json_decref(body);
        if (rc != 0)
            acr_srv_set_acr_error(req, rc, &err);
        else
            not_found(req);
        return;
    }
    /* the event: the client's id, else one of this request (program.md: one acknowledgement
     * per announcement, partner and rep, so a second request is `duplicate`; a retry that
     * must answer the first result sends an Idempotency-Key, http.md) */
    json_t *data = json_object();
    json_object_set_new(data, "announcement_id", json_string(ann));
    if (pid != NULL)
        json_object_set(data, "partner_id", pid);
    if (json_object_get(body, "rep_id") != NULL)
        json_object_set(data, "rep_id", json_object_get(body, "rep_id"));
    json_t *env = json_object();
    json_object_set_new(env, "type", json_string("announcement.acknowledged"));
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    int64_t now_ms = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
    json_t *id = json_object_get(body, "id");
    char gen[200];
    if (id != NULL) {
        json_object_set(env, "id", id);
    } else {
        json_t *rep = json_object_get(body, "rep_id");
        snprintf(gen, sizeof gen, "ack:%s:%s%s%s:%lld", ann,
                 json_is_string(pid) ? json_string_value(pid) : "",
                 json_is_string(rep) ? ":" : "", json_is_string(rep) ? json_string_value(rep) : "",
                 (long long)now_ms);
        if (strlen(gen) > ACR_ID_LEN_MAX) /* too long for an id: the instant alone */
            snprintf(gen, sizeof gen, "ack-%llx-%lx", (unsigned long long)now.tv_sec,
                     (unsigned long)now.tv_nsec);
        json_object_set_new(env, "id", json_string(gen));
    }
    json_t *at = json_object_get(body, "at");
    char ts_s[ACR_TS_BUF];
    if (at != NULL) {
        json_object_set(env, "at", at);
    } else {
        acr_ts_format(now_ms, ts_s);
        json_object_set_new(env, "at", json_string(ts_s));
    }
    json_object_set_new(env, "data", data);
    json_decref(body);
    char *text = json_dumps(env, JSON_COMPACT);
    json_decref(env);
    acr_srv_wjob_t *job = text ? acr_srv_wjob_new(req, ACR_SRV_JOB_APPEND) : NULL;
    if (job == NULL) {
        free(text);
        acr_srv_set_error(req, 500, "out_of_memory", "out of memory");
        return;
    }
    rc = acr_batch_add_json(&job->batch, acr_ledger_config(s->ledger), 1, text, strlen(text),
                            &err);
    free(text);
    if (rc != 0 || job->batch.count != 1 ||
        acr_srv_wjob_seqs(job, 1) != 0) {
        acr_srv_wjob_free(job);
        if (rc != 0)
            acr_srv_set_acr_error(req, rc, &err);
        else
            acr_srv_set_error(req, 500, "out_of_memory", "out of memory");
        return;
    }
    job->kind_detail = ACR_SRV_ANSWER_EVENTS;
    acr_srv_metrics_batch(1);
    req->wjob = job;
    req->next = ACR_SRV_NEXT_WRITE;
}
