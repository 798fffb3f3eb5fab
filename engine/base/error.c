/* error.c - names, exit codes and records of the ACR_E* error codes.
 *
 * Everything is generated from ACR_ERRNO_MAP so the C constant, the wire name
 * of events.md and the exit code of cli.md cannot drift apart.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "accrue/error.h"

typedef struct {
    const char *wire;
    int exit_code;
} err_info_t;

static const err_info_t err_table[] = {
#define XX(name, wire, exit_code) {wire, exit_code},
    ACR_ERRNO_MAP(XX)
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

int acr_err_exit_code(int code)
{
    const err_info_t *info = err_info(code);
    if (code == 0)
        return 0;
    return info ? info->exit_code : 1;
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

int acr_errlist_exit_code(const acr_errlist_t *list)
{
    if (list->count == 0)
        return 0;
    for (size_t i = 0; i < list->count; i++)
        if (acr_err_exit_code(list->items[i].code) == 4)
            return 4;
    return acr_err_exit_code(list->items[0].code);
}
