/* respond.c - the response helpers of the server: status lines, error bodies
 * and the map from accrue's error codes to HTTP statuses.
 *
 * A leaf: it fills a request's response fields and calls nothing else of
 * the module, so every layer may use it (http.c for framing errors, feed.c,
 * ingest.c and routes.c for handler answers).
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

int acr_srv_buf_u64(acr_buf_t *b, uint64_t v)
{
    char tmp[20];
    size_t n = 0;
    do {
        tmp[sizeof tmp - 1 - n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    return acr_buf_append(b, tmp + sizeof tmp - n, n);
}

const char *acr_srv_reason_of(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 304:
        return "Not Modified";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 409:
        return "Conflict";
    case 413:
        return "Content Too Large";
    case 415:
        return "Unsupported Media Type";
    case 422:
        return "Unprocessable Content";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 503:
        return "Service Unavailable";
    case 507:
        return "Insufficient Storage";
    default:
        return "Unknown";
    }
}

const char *acr_srv_code_of_status(int status)
{
    switch (status) {
    case 408:
        return "timeout";
    case 413:
        return "too_large";
    case 431:
        return "headers_too_large";
    case 503:
        return "unavailable";
    default:
        return "bad_request";
    }
}

void acr_srv_set_error(acr_srv_req_t *req, int status, const char *code, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    req->status = status;
    req->ctype = "application/json";
    acr_buf_reset(&req->resp);
    acr_buf_append_str(&req->resp, "{\"error\":{\"code\":");
    acr_buf_append_json_str(&req->resp, code, strlen(code));
    acr_buf_append_str(&req->resp, ",\"message\":");
    acr_buf_append_json_str(&req->resp, msg, strlen(msg));
    acr_buf_append_str(&req->resp, ",\"details\":[]}}\n");
}

bool acr_srv_partner_at_refused(acr_srv_req_t *req, bool has_at)
{
    if (req->role != ACR_ROLE_PARTNER || !has_at)
        return false;
    acr_srv_set_error(req, 422, "invalid_value",
                      "at: a partner token cannot set it; the server dates the event now");
    return true;
}

/* The HTTP status of an engine code: the class column of error.h's one table. */
int acr_srv_status_of(int code)
{
    return acr_err_http_status(code);
}

static void err_item(acr_buf_t *b, const acr_err_t *e, bool by_line)
{
    if (by_line)
        acr_buf_printf(b, "{\"line\":%" PRIu64, e->line);
    else
        acr_buf_printf(b, "{\"index\":%" PRIu64, e->line ? e->line - 1 : 0);
    acr_buf_append_str(b, ",\"id\":");
    acr_buf_append_json_str(b, e->id, strlen(e->id));
    acr_buf_append_str(b, ",\"field\":");
    acr_buf_append_json_str(b, e->field, strlen(e->field));
    acr_buf_append_str(b, ",\"code\":");
    const char *code = acr_err_name(e->code);
    acr_buf_append_json_str(b, code, strlen(code));
    acr_buf_append_str(b, ",\"message\":");
    acr_buf_append_json_str(b, e->msg, strlen(e->msg));
    acr_buf_append_str(b, "}");
}

void acr_srv_set_errlist(acr_srv_req_t *req, const acr_errlist_t *errs, bool by_line)
{
    /* the list's code, as the command line's exit status takes it (a conflict anywhere: 409
     * with that conflict's code, so status and code agree; else the first error's class:
     * 422 input, 413 too large, 403 read_only, 500 a store failure) */
    int first = errs->count ? acr_errlist_code(errs) : ACR_EINVALID_VALUE;
    req->status = acr_err_http_status(first);
    req->ctype = "application/json";
    acr_buf_t *b = &req->resp;
    acr_buf_reset(b);
    acr_buf_append_str(b, "{\"error\":{\"code\":");
    const char *code = acr_err_name(first);
    acr_buf_append_json_str(b, code, strlen(code));
    char msg[128];
    snprintf(msg, sizeof msg, "the batch was rejected: %zu error%s, nothing was written",
             errs->total, errs->total == 1 ? "" : "s");
    acr_buf_append_str(b, ",\"message\":");
    acr_buf_append_json_str(b, msg, strlen(msg));
    acr_buf_append_str(b, ",\"details\":[");
    for (size_t i = 0; i < errs->count; i++) {
        if (i)
            acr_buf_append_str(b, ",");
        err_item(b, &errs->items[i], by_line);
    }
    acr_buf_printf(b, "],\"total\":%zu}}\n", errs->total);
}

void acr_srv_set_acr_error(acr_srv_req_t *req, int rc, const acr_err_t *err)
{
    int code = err != NULL && err->code != 0 ? err->code : rc;
    const char *msg = err != NULL && err->msg[0] ? err->msg : acr_err_name(code);
    int status = acr_srv_status_of(code);
    const char *name = acr_err_name(code);
    if (code == ACR_EUSAGE)
        name = "bad_request";
    acr_srv_set_error(req, status, name, "%s", msg);
}

bool acr_srv_answer_idem(acr_srv_req_t *req, const acr_idem_t *idem)
{
    if (idem == NULL || idem->state == ACR_IDEM_NEW)
        return false;
    if (idem->state == ACR_IDEM_CONFLICT) {
        /* a code of events.md's list (http.md): the same id (the key), other content */
        acr_srv_set_error(req, 409, "id_conflict",
                          "this Idempotency-Key was used for another request (method, path or "
                          "body differ); use a new key for a new request");
        return true;
    }
    static const char *const ctypes[] = {"application/json", "text/csv", "text/plain"};
    req->ctype = "application/json";
    for (size_t i = 0; i < sizeof ctypes / sizeof ctypes[0]; i++)
        if (strcmp(idem->ctype, ctypes[i]) == 0)
            req->ctype = ctypes[i];
    req->status = idem->status;
    acr_buf_reset(&req->resp);
    acr_buf_append(&req->resp, idem->body.data, idem->body.len);
    if (idem->state == ACR_IDEM_REPLAY)
        snprintf(req->extra_headers, sizeof req->extra_headers, "Idempotent-Replayed: true\r\n");
    return true;
}
