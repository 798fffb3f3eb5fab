/* error.c - names, classes, exit codes, HTTP statuses and records of the ACR_E* codes.
 *
 * Everything is generated from ACR_ERRNO_MAP and ACR_ERROR_CLASS_MAP so the C
 * constant, the wire name of events.md, the exit code of cli.md and the HTTP
 * status of http.md cannot drift apart.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "accrue/error.h"

typedef struct {
    const char *wire;
    acr_err_class_t cls;
} err_info_t;

static const err_info_t err_table[] = {
#define XX(name, wire, class) {wire, ACR_CLASS_##class},
    ACR_ERRNO_MAP(XX)
#undef XX
};

typedef struct {
    int exit_code;
    int http_status;
    bool rejects;
} class_info_t;

static const class_info_t class_table[ACR_CLASS__COUNT] = {
#define XX(name, exit_code, http_status, rejects) {exit_code, http_status, rejects},
    ACR_ERROR_CLASS_MAP(XX)
#undef XX
};

static const err_info_t *err_info(int code)
{
    int index = code - (ACR_E__FIRST_MINUS_ONE + 1);
    if (code >= 0 || index < 0 || index >= (int)(sizeof err_table / sizeof err_table[0]))
        return NULL;
    return &err_table[index];
}

const char *acr_err_name(int code)
{
    const err_info_t *info = err_info(code);
    return info ? info->wire : (code == 0 ? "ok" : "unknown_error");
}

acr_err_class_t acr_err_class(int code)
{
    const err_info_t *info = err_info(code);
    return info ? info->cls : ACR_CLASS_FAILURE;
}

int acr_err_exit_code(int code)
{
    return code == 0 ? 0 : class_table[acr_err_class(code)].exit_code;
}

int acr_err_http_status(int code)
{
    return code == 0 ? 200 : class_table[acr_err_class(code)].http_status;
}

bool acr_err_rejects_input(int code)
{
    return code != 0 && class_table[acr_err_class(code)].rejects;
}

int acr_err_from_name(const char *name)
{
    for (size_t i = 0; i < sizeof err_table / sizeof err_table[0]; i++)
        if (strcmp(err_table[i].wire, name) == 0)
            return ACR_E__FIRST_MINUS_ONE + 1 + (int)i;
    return 0;
}

int acr_err_set(acr_err_t *err, int code, const char *fmt, ...)
{
    if (err == NULL)
        return code;
    err->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    return code;
}

void acr_err_clear(acr_err_t *err)
{
    if (err != NULL)
        memset(err, 0, sizeof *err);
}

void acr_errlist_clear(acr_errlist_t *list)
{
    list->count = 0;
    list->total = 0;
}

void acr_errlist_add(acr_errlist_t *list, const acr_err_t *err)
{
    if (list->count < ACR_ERRLIST_MAX)
        list->items[list->count++] = *err;
    list->total++;
}

int acr_errlist_code(const acr_errlist_t *list)
{
    if (list->count == 0)
        return 0;
    for (size_t i = 0; i < list->count; i++)
        if (acr_err_class(list->items[i].code) == ACR_CLASS_CONFLICT)
            return list->items[i].code;
    return list->items[0].code;
}

int acr_errlist_exit_code(const acr_errlist_t *list)
{
    return acr_err_exit_code(acr_errlist_code(list));
}

static _Thread_local const atomic_bool *cancel_flag;

void acr_cancel_watch(const atomic_bool *flag)
{
    cancel_flag = flag;
}

bool acr_cancel_requested(void)
{
    return cancel_flag != NULL && atomic_load_explicit(cancel_flag, memory_order_relaxed);
}

int acr_cancel_error(acr_err_t *err)
{
    return acr_err_set(err, ACR_EUNAVAILABLE, "cancelled: whoever asked for this work is gone");
}
