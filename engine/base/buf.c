/* buf.c - a growable byte buffer, doubling on growth. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "accrue/buf.h"
#include "accrue/error.h"

void acr_buf_init(acr_buf_t *b)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

void acr_buf_destroy(acr_buf_t *b)
{
    free(b->data);
    acr_buf_init(b);
}

void acr_buf_reset(acr_buf_t *b)
{
    b->len = 0;
}

int acr_buf_reserve(acr_buf_t *b, size_t extra)
{
    if (extra <= b->cap - b->len)
        return 0;
    size_t need = b->len + extra;
    if (need < b->len)
        return ACR_ENOMEM; /* size_t overflow */
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap = cap * 2 > cap ? cap * 2 : need;
    uint8_t *p = realloc(b->data, cap);
    if (p == NULL)
        return ACR_ENOMEM;
    b->data = p;
    b->cap = cap;
    return 0;
}

int acr_buf_append(acr_buf_t *b, const void *p, size_t n)
{
    if (n == 0)
        return 0;
    int rc = acr_buf_reserve(b, n);
    if (rc != 0)
        return rc;
    memcpy(b->data + b->len, p, n);
    b->len += n;
    return 0;
}

int acr_buf_append_str(acr_buf_t *b, const char *s)
{
    return acr_buf_append(b, s, strlen(s));
}

int acr_buf_printf(acr_buf_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char small[256];
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0)
        return ACR_ENOMEM;
    if ((size_t)n < sizeof small)
        return acr_buf_append(b, small, (size_t)n);
    int rc = acr_buf_reserve(b, (size_t)n + 1);
    if (rc != 0)
        return rc;
    va_start(ap, fmt);
    vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

int acr_buf_append_json_str(acr_buf_t *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    int rc = acr_buf_reserve(b, n + 2);
    if (rc != 0)
        return rc;
    b->data[b->len++] = '"';
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[6] = {'\\', 0, 0, 0, 0, 0};
        size_t esc_len = 2;
        switch (c) {
        case '"': esc[1] = '"'; break;
        case '\\': esc[1] = '\\'; break;
        case '\n': esc[1] = 'n'; break;
        case '\r': esc[1] = 'r'; break;
        case '\t': esc[1] = 't'; break;
        case '\b': esc[1] = 'b'; break;
        case '\f': esc[1] = 'f'; break;
        default:
            if (c >= 0x20) {
                esc_len = 0;
                break;
            }
            esc[1] = 'u';
            esc[2] = '0';
            esc[3] = '0';
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            esc_len = 6;
        }
        rc = esc_len ? acr_buf_append(b, esc, esc_len) : acr_buf_append(b, &s[i], 1);
        if (rc != 0)
            return rc;
    }
    return acr_buf_append(b, "\"", 1);
}
