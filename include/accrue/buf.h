/* buf.h - a growable byte buffer (the caller owns it: init/destroy). */
#ifndef ACCRUE_BUF_H
#define ACCRUE_BUF_H

#include <stddef.h>
#include <stdint.h>

typedef struct acr_buf {
    uint8_t *data; /* heap, NULL until the first append */
    size_t len;    /* bytes used */
    size_t cap;    /* bytes allocated */
} acr_buf_t;

void acr_buf_init(acr_buf_t *b);
void acr_buf_destroy(acr_buf_t *b);
/* Ensures room for `extra` more bytes. 0 or ACR_ENOMEM. */
int acr_buf_reserve(acr_buf_t *b, size_t extra);
int acr_buf_append(acr_buf_t *b, const void *p, size_t n);
int acr_buf_append_str(acr_buf_t *b, const char *s);
int acr_buf_printf(acr_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends s as a JSON string literal with quotes and escapes. */
int acr_buf_append_json_str(acr_buf_t *b, const char *s, size_t n);
void acr_buf_reset(acr_buf_t *b); /* len = 0, keeps the memory */

#endif
