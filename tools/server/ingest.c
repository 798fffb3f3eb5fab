/* ingest.c - the write routes: request bodies into batches.
 *
 * Runs on the thread pool, so parsing a 64 MiB body never stalls the loop;
 * an append whose body is at most ACR_SRV_LOOP_BODY_MAX bytes and whose token
 * the loop already knows is parsed on the loop instead (no pool round trip:
 * the parsing is stateless, it never touches LMDB).
 * POST /v1/events takes a JSON array, JSON Lines (application/x-ndjson) or
 * msgpack (application/msgpack: an array of event maps, or maps back to
 * back); every event is checked statelessly as it is added to the batch
 * (acr_batch_add_json / acr_batch_add_msgpack) and every error is kept (up
 * to 100, with index or line, id, field and code), so a rejected request
 * reports all of its problems at once. The deal routes build one event from
 * a small JSON body (jansson: the bodies are tiny and need editing) and
 * fill what the server owns: the event id and deal id when absent, `at` =
 * now, and, for a partner token, its own partner_id. The batch then goes to
 * the writer thread; acr_srv_answer_job turns the writer's result into the
 * response on the loop.
 */
#include <inttypes.h>
#include <jansson.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "accrue/date.h"
#include "accrue/jsonmem.h"
#include "accrue/projection.h"
#include "internal.h"

enum body_format { FMT_JSON, FMT_NDJSON, FMT_MSGPACK, FMT_UNKNOWN };

static int body_format(const char *ct)
{
    if (ct[0] == '\0' || strcmp(ct, "application/json") == 0 || strcmp(ct, "text/json") == 0)
        return FMT_JSON;
    if (strcmp(ct, "application/x-ndjson") == 0 || strcmp(ct, "application/jsonl") == 0 ||
        strcmp(ct, "application/json-lines") == 0 || strcmp(ct, "application/jsonlines") == 0 ||
        strcmp(ct, "application/x-jsonlines") == 0)
        return FMT_NDJSON;
    if (strcmp(ct, "application/msgpack") == 0 || strcmp(ct, "application/x-msgpack") == 0 ||
        strcmp(ct, "application/vnd.msgpack") == 0)
        return FMT_MSGPACK;
    return FMT_UNKNOWN;
}

static void add_err(acr_errlist_t *errs, acr_err_t *e, uint64_t line)
{
    e->line = line;
    acr_errlist_add(errs, e);
}

/* A body past the batch limit is refused for its size alone (413 too_large): its other
 * errors are dropped. True when e was that refusal (then the only error in errs). */
static bool over_limit(const acr_batch_t *b, acr_errlist_t *errs, acr_err_t *e, uint64_t line)
{
    if (!b->over_limit)
        return false;
    acr_errlist_clear(errs);
    acr_err_set(e, ACR_ETOO_LARGE, "the body holds more than %d events, the most one atomic "
                "batch may hold", ACR_BATCH_EVENTS_MAX);
    add_err(errs, e, line);
    return true;
}

static bool is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static void parse_ndjson(const acr_config_t *cfg, const char *p, size_t n, acr_batch_t *b,
                         acr_errlist_t *errs)
{
    uint64_t line = 0;
    for (size_t i = 0; i < n;) {
        const char *nl = memchr(p + i, '\n', n - i);
        size_t len = nl ? (size_t)(nl - (p + i)) : n - i;
        const char *s = p + i;
        i += len + 1;
        line++;
        size_t a = 0, z = len;
        while (a < z && is_ws(s[a]))
            a++;
        while (z > a && is_ws(s[z - 1]))
            z--;
        if (a == z)
            continue;
        acr_err_t e;
        acr_err_clear(&e);
        if (acr_batch_add_json(b, cfg, line, s + a, z - a, &e) != 0 &&
            !over_limit(b, errs, &e, line))
            add_err(errs, &e, line);
        if (b->over_limit)
            return;
    }
}

/* The end of the JSON value starting at s[i] (not whitespace): strings and
 * nesting are skipped; the value itself is checked by the event parser. */
static bool value_end(const char *s, size_t n, size_t i, size_t *end)
{
    int depth = 0;
    bool in_str = false;
    for (; i < n; i++) {
        char c = s[i];
        if (in_str) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_str = false;
            if (!in_str && depth == 0) {
                *end = i + 1;
                return true;
            }
            continue;
        }
        if (c == '"') {
            in_str = true;
        } else if (c == '{' || c == '[') {
            depth++;
        } else if (c == '}' || c == ']') {
            if (depth == 0) {
                *end = i;
                return true;
            }
            if (--depth == 0) {
                *end = i + 1;
                return true;
            }
        } else if (depth == 0 && (c == ',' || is_ws(c))) {
            *end = i;
            return true;
        }
    }
    *end = n;
    return depth == 0 && !in_str;
}

static void malformed(acr_errlist_t *errs, uint64_t line, const char *msg)
{
    acr_err_t e;
    acr_err_clear(&e);
    acr_err_set(&e, ACR_EMALFORMED_JSON, "%s", msg);
    add_err(errs, &e, line);
}

static void parse_json_array(const acr_config_t *cfg, const char *s, size_t n, acr_batch_t *b,
                             acr_errlist_t *errs)
{
    size_t i = 0;
    while (i < n && is_ws(s[i]))
        i++;
    if (i < n && s[i] == '{') { /* http.md: a JSON array; one event is [ {...} ] */
        malformed(errs, 1, "the body is one JSON object, not an array of events: send "
                           "[{...}], or JSON Lines with Content-Type: application/x-ndjson");
        return;
    }
    if (i >= n || s[i] != '[') {
        malformed(errs, 1, "the body is not a JSON array of events");
        return;
    }
    i++;
    for (uint64_t idx = 0;; idx++) {
        while (i < n && is_ws(s[i]))
            i++;
        if (idx == 0 && i < n && s[i] == ']') {
            i++;
            break;
        }
        size_t end;
        if (i >= n || !value_end(s, n, i, &end) || end == i) {
            malformed(errs, idx + 1, "the array is cut short or malformed");
            return;
        }
        acr_err_t e;
        acr_err_clear(&e);
        if (acr_batch_add_json(b, cfg, idx + 1, s + i, end - i, &e) != 0 &&
            !over_limit(b, errs, &e, idx + 1))
            add_err(errs, &e, idx + 1);
        if (b->over_limit)
            return;
        i = end;
        while (i < n && is_ws(s[i]))
            i++;
        if (i < n && s[i] == ',') {
            i++;
            continue;
        }
        if (i < n && s[i] == ']') {
            i++;
            break;
        }
        {
            malformed(errs, idx + 1, "expected ',' or ']' after an array element");
            return;
        }
    }
    while (i < n && is_ws(s[i]))
        i++;
    if (i != n)
        malformed(errs, 1, "text after the closing ']'");
}

static void parse_msgpack(const acr_config_t *cfg, const uint8_t *p, size_t n, acr_batch_t *b,
                          acr_errlist_t *errs)
{
    size_t i = 0;
    uint64_t count = UINT64_MAX; /* maps back to back unless an array header says */
    if (n > 0 && (p[0] & 0xf0) == 0x90) {
        count = p[0] & 0x0f;
        i = 1;
    } else if (n >= 3 && p[0] == 0xdc) {
        count = ((uint64_t)p[1] << 8) | p[2];
        i = 3;
    } else if (n >= 5 && p[0] == 0xdd) {
        count = ((uint64_t)p[1] << 24) | ((uint64_t)p[2] << 16) | ((uint64_t)p[3] << 8) | p[4];
        i = 5;
    }
    uint64_t idx = 0;
    for (; i < n && idx < count; idx++) {
        size_t used = 0;
        acr_err_t e;
        acr_err_clear(&e);
        if (acr_batch_add_msgpack(b, cfg, idx + 1, p + i, n - i, &used, &e) != 0 &&
            !over_limit(b, errs, &e, idx + 1))
            add_err(errs, &e, idx + 1);
        if (b->over_limit || used == 0)
            return; /* refused for its size, or the framing is lost */
        i += used;
    }
    acr_err_t e;
    acr_err_clear(&e);
    if (count != UINT64_MAX && idx < count) {
        acr_err_set(&e, ACR_EMALFORMED_MSGPACK,
                    "the array declares %" PRIu64 " events, the body holds %" PRIu64, count, idx);
        add_err(errs, &e, idx + 1);
    } else if (i < n) {
        acr_err_set(&e, ACR_EMALFORMED_MSGPACK, "bytes after the declared array");
        add_err(errs, &e, idx + 1);
    }
}

/* Hands a parsed batch to the writer (or answers its errors). A batch with stateless
 * errors goes too when some of its events parsed, to be checked against the ledger's rules
 * (nothing written): a rejected batch reports every error (events.md, Batches), as the
 * command line does. Its answer is a refusal made before any write: not kept for its key. */
static void submit(acr_srv_req_t *req, acr_srv_wjob_t *job, bool by_line)
{
    if (job->errs->total > 0 && job->batch.count > 0 && !job->batch.over_limit) {
        acr_srv_wjob_forget_key(job);
        job->kind = ACR_SRV_JOB_CHECK;
        req->wjob = job;
        req->next = ACR_SRV_NEXT_WRITE;
        return;
    }
    if (job->errs->total > 0) {
        acr_srv_set_errlist(req, job->errs, by_line);
        acr_srv_wjob_free(job);
        return;
    }
    if (job->batch.count == 0) {
        acr_srv_wjob_free(job);
        acr_srv_set_error(req, 422, "invalid_value", "the batch holds no event");
        return;
    }
    if (acr_srv_wjob_seqs(job, job->batch.count) != 0) {
        acr_srv_wjob_free(job);
        acr_srv_set_error(req, 500, "out_of_memory", "out of memory");
        return;
    }
    acr_srv_metrics_batch(job->batch.count);
    req->wjob = job;
    req->next = ACR_SRV_NEXT_WRITE;
}

void acr_srv_h_append(acr_srv_t *s, acr_srv_req_t *req, char **params)
{
    (void)params;
    if (acr_srv_idem_refused(s, req))
        return;
    int fmt = body_format(req->content_type);
    if (fmt == FMT_UNKNOWN) {
        /* http.md: "a malformed request gets 400", with bad_request (events.md) */
        acr_srv_set_error(req, 400, "bad_request",
                          "Content-Type must be application/json, application/x-ndjson or "
                          "application/msgpack");
        return;
    }
    acr_srv_wjob_t *job = acr_srv_wjob_new(req, ACR_SRV_JOB_APPEND);
    if (job == NULL) {
        acr_srv_set_error(req, 500, "out_of_memory", "out of memory");
        return;
    }
    const acr_config_t *cfg = acr_ledger_config(s->ledger);
    const char *body = (const char *)req->body.data;
    if (fmt == FMT_NDJSON)
        parse_ndjson(cfg, body, req->body.len, &job->batch, job->errs);
    else if (fmt == FMT_MSGPACK)
        parse_msgpack(cfg, req->body.data, req->body.len, &job->batch, job->errs);
    else
        parse_json_array(cfg, body, req->body.len, &job->batch, job->errs);
    job->kind_detail = fmt == FMT_NDJSON ? ACR_SRV_ANSWER_NDJSON : ACR_SRV_ANSWER_EVENTS;
    submit(req, job, fmt == FMT_NDJSON);
}

/* ---- deals --------------------------------------------------------------------------- */

static void random_id(const char *prefix, char *out, size_t cap)
{
    uint8_t rnd[12];
    char hex[25];
    randombytes_buf(rnd, sizeof rnd);
    for (size_t i = 0; i < sizeof rnd; i++)
        snprintf(hex + 2 * i, 3, "%02x", rnd[i]);
    snprintf(out, cap, "%s%s", prefix, hex);
}

static void now_ts(char out[ACR_TS_BUF])
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    acr_ts_format((int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000, out);
}

#define ENVELOPE_KEYS 4
static const char *const envelope_keys[ENVELOPE_KEYS] = {"id", "at", "type", "expected_version"};

/* Splits a body into an event envelope and its data: {"data":{...}, "id"...}
 * or the data members themselves beside optional envelope keys. */
static json_t *split_body(acr_srv_req_t *req, json_t **out_data)
{
    json_error_t je;
    acr_jsonmem_begin();
    json_t *root =
        json_loadb((const char *)req->body.data, req->body.len,
                   JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &je); /* a NUL: the field's error */
    if (acr_jsonmem_failed()) { /* jansson may return a damaged tree: never trust it */
        json_decref(root);
        acr_srv_set_error(req, 503, "out_of_memory", "the server ran out of memory; retry");
        return NULL;
    }
    if (root == NULL || !json_is_object(root)) {
        json_decref(root);
        acr_srv_set_error(req, 422, "malformed_json", "the body must be one JSON object (%s)",
                          root ? "not an object" : je.text);
        return NULL;
    }
    json_t *data = json_object_get(root, "data");
    if (data != NULL) {
        json_incref(data);
        json_object_del(root, "data");
    } else {
        data = json_object();
        const char *k;
        json_t *v;
        json_object_foreach(root, k, v)
        {
            bool env = false;
            for (size_t i = 0; i < ENVELOPE_KEYS; i++)
                env = env || strcmp(k, envelope_keys[i]) == 0;
            if (!env)
                json_object_set(data, k, v);
        }
        const char *key;
        void *tmp;
        json_t *val;
        json_object_foreach_safe(root, tmp, key, val)
        {
            bool env = false;
            for (size_t i = 0; i < ENVELOPE_KEYS; i++)
                env = env || strcmp(key, envelope_keys[i]) == 0;
            if (!env)
                json_object_del(root, key);
        }
    }
    *out_data = data;
    return root;
}

/* Completes the envelope (type, id, at, data), parses it into a one-event
 * batch and submits it. */
static void submit_event(acr_srv_t *s, acr_srv_req_t *req, json_t *env, const char *type,
                         json_t *data, int detail)
{
    json_t *t = json_object_get(env, "type");
    if (t != NULL && !(json_is_string(t) && strcmp(json_string_value(t), type) == 0)) {
        acr_srv_set_error(req, 422, "invalid_value", "this route only takes %s events", type);
        return;
    }
    if (acr_srv_partner_at_refused(req, json_object_get(env, "at") != NULL))
        return;
    json_object_set_new(env, "type", json_string(type));
    char id[ACR_ID_LEN_MAX + 1], at[ACR_TS_BUF];
    if (json_object_get(env, "id") == NULL) {
        random_id("ev-", id, sizeof id);
        json_object_set_new(env, "id", json_string(id));
    }
    if (json_object_get(env, "at") == NULL) {
        now_ts(at);
        json_object_set_new(env, "at", json_string(at));
    }
    json_object_set(env, "data", data);
    char *text = json_dumps(env, JSON_COMPACT);
    acr_srv_wjob_t *job = text ? acr_srv_wjob_new(req, ACR_SRV_JOB_APPEND) : NULL;
    if (job == NULL) {
        free(text);
        acr_srv_set_error(req, 500, "out_of_memory", "out of memory");
        return;
    }
    const char *eid = json_string_value(json_object_get(env, "id"));
    const char *did = json_string_value(json_object_get(data, "deal_id"));
    snprintf(job->event_id, sizeof job->event_id, "%s", eid ? eid : "");
    snprintf(job->deal_id, sizeof job->deal_id, "%s", did ? did : "");
    acr_err_t e;
    acr_err_clear(&e);
    if (acr_batch_add_json(&job->batch, acr_ledger_config(s->ledger), 1, text, strlen(text), &e))
        add_err(job->errs, &e, 1);
    free(text);
    job->kind_detail = detail;
    submit(req, job, false);
}

bool acr_srv_json_partner(const acr_buf_t *json, char *out, size_t cap)
{
    acr_jsonmem_begin();
    json_t *root = json_loadb((const char *)json->data, json->len, 0, NULL);
    json_t *v = json_is_object(root) ? json_object_get(root, "partner_id") : NULL;
    bool ok = !acr_jsonmem_failed() && json_is_string(v) && strlen(json_string_value(v)) < cap;
    if (ok)
        memcpy(out, json_string_value(v), strlen(json_string_value(v)) + 1);
    json_decref(root);
    return ok; /* not known: the caller treats the record as another partner's */
}

/* false when deal_id names a deal of another partner (a partner token must not
 * learn that it exists: answered 404 like a deal that does not exist), or the
 * lookup failed (then req holds the error). */
static bool partner_may_use_deal(acr_srv_t *s, acr_srv_req_t *req, const char *deal_id)
{
    acr_buf_t deal;
    acr_buf_init(&deal);
    acr_err_t err;
    acr_err_clear(&err);
    int rc = acr_query_deal(s->ledger, deal_id, &deal, &err);
    bool ok = rc == ACR_ENOT_FOUND;
    if (rc == 0) {
        char owner[ACR_ID_LEN_MAX + 1];
        ok = acr_srv_json_partner(&deal, owner, sizeof owner) && strcmp(owner, req->partner) == 0;
    } else if (rc != ACR_ENOT_FOUND) {
        acr_srv_set_acr_error(req, rc, &err);
    }
    acr_buf_destroy(&deal);
    return ok;
}

void acr_srv_h_deal_register(acr_srv_t *s, acr_srv_req_t *req, char **params)
{
    (void)params;
    if (acr_srv_idem_refused(s, req))
        return;
    json_t *data, *env = split_body(req, &data);
    if (env == NULL)
        return;
    if (!json_is_object(data)) {
        acr_srv_set_error(req, 422, "wrong_type", "data must be an object");
    } else {
        json_t *pid = json_object_get(data, "partner_id");
        if (req->role == ACR_ROLE_PARTNER && pid == NULL)
            json_object_set_new(data, "partner_id", json_string(req->partner));
        else if (req->role == ACR_ROLE_PARTNER &&
                 !(json_is_string(pid) && strcmp(json_string_value(pid), req->partner) == 0))
            acr_srv_set_error(req, 404, "not_found", "no such record");
        json_t *given = json_object_get(data, "deal_id");
        if (req->status == 0 && req->role == ACR_ROLE_PARTNER && json_is_string(given) &&
            !partner_may_use_deal(s, req, json_string_value(given)))
            acr_srv_set_error(req, 404, "not_found", "no such record"); /* another partner's deal */
        if (req->status == 0) {
            json_t *did = json_object_get(data, "deal_id");
            char gen[ACR_ID_LEN_MAX + 1];
            if (did == NULL) {
                random_id("D-", gen, sizeof gen);
                json_object_set_new(data, "deal_id", json_string(gen));
                did = json_object_get(data, "deal_id");
            }
            if (json_object_get(env, "id") == NULL && json_is_string(did) &&
                strlen(json_string_value(did)) <= ACR_ID_LEN_MAX - 16) {
                snprintf(gen, sizeof gen, "deal.registered:%s", json_string_value(did));
                json_object_set_new(env, "id", json_string(gen));
            }
            submit_event(s, req, env, "deal.registered", data, ACR_SRV_ANSWER_DEAL_NEW);
        }
    }
    json_decref(data);
    json_decref(env);
}

void acr_srv_h_deal_stage(acr_srv_t *s, acr_srv_req_t *req, char **params)
{
    if (acr_srv_idem_refused(s, req))
        return;
    acr_buf_t deal;
    acr_buf_init(&deal);
    acr_err_t err;
    acr_err_clear(&err);
    int rc = acr_query_deal(s->ledger, params[0], &deal, &err);
    bool visible = rc == 0;
    if (rc == 0 && req->role == ACR_ROLE_PARTNER) {
        char owner[ACR_ID_LEN_MAX + 1];
        visible =
            acr_srv_json_partner(&deal, owner, sizeof owner) && strcmp(owner, req->partner) == 0;
    }
    acr_buf_destroy(&deal);
    if (rc != 0 && rc != ACR_ENOT_FOUND) {
        acr_srv_set_acr_error(req, rc, &err);
        return;
    }
    if (!visible) {
        acr_srv_set_error(req, 404, "not_found", "no such record");
        return;
    }
    json_t *data, *env = split_body(req, &data);
    if (env == NULL)
        return;
    bool stage = json_is_object(data) && json_object_get(data, "stage") != NULL;
    bool outcome = json_is_object(data) && json_object_get(data, "outcome") != NULL;
    json_t *did = json_is_object(data) ? json_object_get(data, "deal_id") : NULL;
    if (!json_is_object(data))
        acr_srv_set_error(req, 422, "wrong_type", "data must be an object");
    else if (stage == outcome)
        acr_srv_set_error(req, 422, stage ? "invalid_value" : "missing_field",
                          "give either {\"stage\":...} or {\"outcome\":\"won\"|\"lost\"}");
    else if (did != NULL &&
             !(json_is_string(did) && strcmp(json_string_value(did), params[0]) == 0))
        acr_srv_set_error(req, 422, "invalid_value", "data.deal_id differs from the path");
    else {
        json_object_set_new(data, "deal_id", json_string(params[0]));
        submit_event(s, req, env, stage ? "deal.stage_changed" : "deal.closed", data,
                     ACR_SRV_ANSWER_DEAL_MOVE);
    }
    json_decref(data);
    json_decref(env);
}

void acr_srv_h_close(acr_srv_t *s, acr_srv_req_t *req, char **params)
{
    (void)s;
    if (acr_srv_idem_refused(s, req))
        return;
    if (strlen(params[0]) >= ACR_PERIOD_ID_MAX) {
        acr_srv_set_error(req, 400, "bad_request", "'%s' is not a period id", params[0]);
        return;
    }
    acr_srv_wjob_t *job = acr_srv_wjob_new(req, ACR_SRV_JOB_CLOSE);
    if (job == NULL) {
        acr_srv_set_error(req, 500, "out_of_memory", "out of memory");
        return;
    }
    snprintf(job->period, sizeof job->period, "%s", params[0]);
    req->wjob = job;
    req->next = ACR_SRV_NEXT_WRITE;
}

/* ---- answers (loop thread) --------------------------------------------------------- */

/* What a partner token may read of a rejected write: the engine's messages name
 * other partners, other records' ids, seqs and stream versions ("partner P2
 * already holds an open deal for this customer", "stream deal:D2 is at version
 * 2, not 5", "event id already used (seq 6)"), so for a partner each message is
 * replaced by a fixed text per code; the code, the field and the event's own id
 * (the partner's input) stay. */
static const char *partner_text(int code)
{
    switch (code) {
    case ACR_ECHANNEL_CONFLICT:
        return "the customer is already registered by another partner";
    case ACR_EID_CONFLICT:
        return "the event id is already used by another event; use a new id";
    case ACR_EVERSION_CONFLICT:
        return "the stream is not at the expected_version given";
    case ACR_EDUPLICATE:
        return "a record with this id is already registered";
    case ACR_EUNKNOWN_DEAL:
    case ACR_EUNKNOWN_PARTNER:
    case ACR_EUNKNOWN_REP:
    case ACR_EUNKNOWN_SALE:
        return "no such record";
    default:
        return NULL;
    }
}

static void scrub_for_partner(acr_errlist_t *errs)
{
    for (size_t i = 0; i < errs->count; i++) {
        acr_err_t *e = &errs->items[i];
        const char *t = partner_text(e->code);
        char field[sizeof e->field];
        snprintf(field, sizeof field, "%s", e->field);
        if (t != NULL)
            snprintf(e->msg, sizeof e->msg, "%s", t);
        else if (field[0] != '\0')
            snprintf(e->msg, sizeof e->msg, "%s (field %s)", acr_err_name(e->code), field);
        else
            snprintf(e->msg, sizeof e->msg, "%s", acr_err_name(e->code));
    }
}

static void answer_append(acr_srv_req_t *req, acr_srv_wjob_t *job)
{
    const acr_append_result_t *r = &job->result;
    uint64_t first = r->first_seq, last = r->last_seq;
    if (r->appended == 0 && r->seqs != NULL && job->batch.count > 0) {
        first = UINT64_MAX; /* all duplicates: the original seqs */
        last = 0;
        for (size_t i = 0; i < job->batch.count; i++) {
            first = r->seqs[i] < first ? r->seqs[i] : first;
            last = r->seqs[i] > last ? r->seqs[i] : last;
        }
    }
    acr_buf_t *b = &req->resp;
    if (job->kind_detail == ACR_SRV_ANSWER_DEAL_NEW ||
        job->kind_detail == ACR_SRV_ANSWER_DEAL_MOVE) {
        req->status = job->kind_detail == ACR_SRV_ANSWER_DEAL_NEW && r->appended ? 201 : 200;
        acr_buf_append_str(b, "{\"deal_id\":");
        acr_buf_append_json_str(b, job->deal_id, strlen(job->deal_id));
        acr_buf_append_str(b, ",\"id\":");
        acr_buf_append_json_str(b, job->event_id, strlen(job->event_id));
        acr_buf_printf(b, ",\"seq\":%" PRIu64 ",\"appended\":%s}\n", first,
                       r->appended ? "true" : "false");
    } else {
        req->status = 200;
        acr_buf_append_str(b, "{\"first_seq\":");
        acr_srv_buf_u64(b, first);
        acr_buf_append_str(b, ",\"last_seq\":");
        acr_srv_buf_u64(b, last);
        acr_buf_append_str(b, ",\"appended\":");
        acr_srv_buf_u64(b, r->appended);
        acr_buf_append_str(b, ",\"duplicates\":");
        acr_srv_buf_u64(b, r->duplicates);
        acr_buf_append_str(b, "}\n");
    }
    req->ctype = "application/json";
}

bool acr_srv_idem_format(acr_idem_t *idem, int rc, const acr_append_result_t *res,
                         const acr_errlist_t *errs)
{
    acr_srv_wjob_t *job = idem->answer_arg;
    if (job->kind == ACR_SRV_JOB_CLOSE && rc != 0 && res != NULL)
        return false; /* its period.closed refused inside the transaction: not decided */
    job->rc = rc;
    if (job->kind == ACR_SRV_JOB_CLOSE && res != NULL) {
        job->close_seq = res->last_seq;
    } else if (res != NULL) {
        uint64_t *seqs = job->result.seqs;
        job->result = *res;
        job->result.seqs = seqs; /* the same array (writer.c hands it to the engine) */
    }
    if (rc != 0 && errs != NULL && job->errs != NULL && errs != job->errs) {
        memcpy(job->errs->items, errs->items, errs->count * sizeof errs->items[0]);
        job->errs->count = errs->count;
        job->errs->total = errs->total;
    }
    acr_srv_req_t tmp; /* a scratch request: only the answer's fields are used */
    memset(&tmp, 0, sizeof tmp);
    acr_buf_init(&tmp.resp);
    tmp.role = job->role;
    acr_idem_t *keep = job->idem;
    job->idem = NULL; /* format from the outcome, not from the key */
    acr_srv_answer_job(&tmp, job);
    job->idem = keep;
    bool decided = (tmp.status >= 200 && tmp.status < 300) || tmp.status == 409 ||
                   tmp.status == 422;
    idem->status = tmp.status;
    snprintf(idem->ctype, sizeof idem->ctype, "%s", tmp.ctype ? tmp.ctype : "application/json");
    acr_buf_reset(&idem->body);
    bool ok = acr_buf_append(&idem->body, tmp.resp.data, tmp.resp.len) == 0;
    acr_buf_destroy(&tmp.resp);
    return decided && ok;
}

void acr_srv_answer_job(acr_srv_req_t *req, acr_srv_wjob_t *job)
{
    if (acr_srv_answer_idem(req, job->idem))
        return;
    if (job->kind == ACR_SRV_JOB_APPEND && job->rc == 0) {
        answer_append(req, job);
        return;
    }
    if (job->kind != ACR_SRV_JOB_CLOSE && job->errs->count > 0) {
        if (req->role == ACR_ROLE_PARTNER)
            scrub_for_partner(job->errs);
        acr_srv_set_errlist(req, job->errs, job->kind_detail == ACR_SRV_ANSWER_NDJSON);
        return;
    }
    if (job->kind == ACR_SRV_JOB_APPEND) {
        acr_srv_set_acr_error(req, job->rc, NULL);
        return;
    }
    if (job->rc != 0) {
        acr_srv_set_acr_error(req, job->rc, &job->err);
        return;
    }
    acr_buf_t summary;
    acr_buf_init(&summary);
    acr_payout_summary_json(&job->payout, &summary);
    acr_buf_printf(&req->resp, "{\"close_seq\":%" PRIu64 ",", job->close_seq);
    if (summary.len > 1)
        acr_buf_append(&req->resp, summary.data + 1, summary.len - 1);
    else
        acr_buf_append_str(&req->resp, "}");
    acr_buf_destroy(&summary);
    req->status = 200;
    req->ctype = "application/json";
}
