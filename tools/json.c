/* json.c - a small zero-copy JSON reader for the CLI's renderers.
 *
 * The engine answers queries in JSON (projection.h, payout.h); the CLI turns
 * that into tables and CSV. A full JSON library would hand numbers back as
 * doubles, and money must never pass through floating point, so this reader
 * keeps every value as a span of its text: numbers are printed as written
 * (a median of 12.5 days stays "12.5"), integers are converted exactly. It
 * checks structure as it goes but is meant for well-formed engine output and
 * for finding a few keys in a plan document the engine validates anyway.
 */
#include <string.h>

#include "cli.h"

static void skip_ws(const char *s, size_t len, size_t *pos)
{
    while (*pos < len && (s[*pos] == ' ' || s[*pos] == '\t' || s[*pos] == '\n' || s[*pos] == '\r'))
        (*pos)++;
}

static int scan_string(const char *s, size_t len, size_t *pos)
{
    for ((*pos)++; *pos < len; (*pos)++) {
        if (s[*pos] == '\\')
            (*pos)++;
        else if (s[*pos] == '"')
            return 0;
    }
    return -1;
}

/* Skips a nested object or array, counting brackets outside strings. */
static int scan_nested(const char *s, size_t len, size_t *pos)
{
    int depth = 0;
    for (; *pos < len; (*pos)++) {
        char c = s[*pos];
        if (c == '"') {
            if (scan_string(s, len, pos) != 0)
                return -1;
        } else if (c == '{' || c == '[') {
            depth++;
        } else if (c == '}' || c == ']') {
            if (--depth == 0)
                return 0;
        }
    }
    return -1;
}

int acr__json_value(const char *s, size_t len, size_t *pos, acr_jv_t *out)
{
    skip_ws(s, len, pos);
    if (*pos >= len)
        return -1;
    size_t start = *pos;
    char c = s[start];
    if (c == '"') {
        if (scan_string(s, len, pos) != 0)
            return -1;
        *out = (acr_jv_t){'s', s + start + 1, *pos - start - 1};
        (*pos)++;
        return 0;
    }
    if (c == '{' || c == '[') {
        if (scan_nested(s, len, pos) != 0)
            return -1;
        (*pos)++;
        *out = (acr_jv_t){c == '{' ? 'o' : 'a', s + start, *pos - start};
        return 0;
    }
    while (*pos < len && strchr(",]} \t\r\n", s[*pos]) == NULL)
        (*pos)++;
    size_t n = *pos - start;
    if (n == 0)
        return -1;
    char kind = 'n';
    if (n == 4 && memcmp(s + start, "true", 4) == 0)
        kind = 't';
    else if (n == 5 && memcmp(s + start, "false", 5) == 0)
        kind = 'f';
    else if (n == 4 && memcmp(s + start, "null", 4) == 0)
        kind = 'z';
    else if (c != '-' && (c < '0' || c > '9'))
        return -1;
    *out = (acr_jv_t){kind, s + start, n};
    return 0;
}

/* Shared iteration over the inside of an object or array. */
static int container_next(const acr_jv_t *v, size_t *pos, acr_jv_t *key, acr_jv_t *val)
{
    const char *s = v->ptr;
    size_t len = v->len - 1; /* stop before the closing bracket */
    if (*pos == 0)
        *pos = 1;
    skip_ws(s, len, pos);
    if (*pos >= len)
        return 0;
    if (s[*pos] == ',') {
        (*pos)++;
        skip_ws(s, len, pos);
    }
    if (key != NULL) {
        if (acr__json_value(s, len, pos, key) != 0 || key->kind != 's')
            return -1;
        skip_ws(s, len, pos);
        if (*pos >= len || s[*pos] != ':')
            return -1;
        (*pos)++;
    }
    return acr__json_value(s, len, pos, val) == 0 ? 1 : -1;
}

int acr__json_obj_next(const acr_jv_t *obj, size_t *pos, acr_jv_t *key, acr_jv_t *val)
{
    if (obj->kind != 'o')
        return -1;
    return container_next(obj, pos, key, val);
}

int acr__json_arr_next(const acr_jv_t *arr, size_t *pos, acr_jv_t *val)
{
    if (arr->kind != 'a')
        return -1;
    return container_next(arr, pos, NULL, val);
}

bool acr__json_get(const acr_jv_t *obj, const char *key, acr_jv_t *out)
{
    size_t pos = 0, klen = strlen(key);
    acr_jv_t k, v;
    while (acr__json_obj_next(obj, &pos, &k, &v) == 1) {
        if (k.len == klen && memcmp(k.ptr, key, klen) == 0) {
            *out = v;
            return true;
        }
    }
    return false;
}

static size_t put_utf8(unsigned cp, char *buf, size_t n, size_t cap)
{
    char tmp[4];
    size_t k;
    if (cp < 0x80) {
        tmp[0] = (char)cp;
        k = 1;
    } else if (cp < 0x800) {
        tmp[0] = (char)(0xc0 | (cp >> 6));
        tmp[1] = (char)(0x80 | (cp & 0x3f));
        k = 2;
    } else {
        tmp[0] = (char)(0xe0 | (cp >> 12));
        tmp[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        tmp[2] = (char)(0x80 | (cp & 0x3f));
        k = 3;
    }
    for (size_t i = 0; i < k && n + 1 < cap; i++)
        buf[n++] = tmp[i];
    return n;
}

static unsigned hex4(const char *p)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (unsigned)(c - 'A' + 10);
    }
    return v;
}

size_t acr__json_text(const acr_jv_t *v, char *buf, size_t cap)
{
    size_t n = 0;
    if (cap == 0)
        return 0;
    for (size_t i = 0; i < v->len && n + 1 < cap; i++) {
        char c = v->ptr[i];
        if (v->kind != 's' || c != '\\' || i + 1 >= v->len) {
            buf[n++] = c;
            continue;
        }
        c = v->ptr[++i];
        if (c == 'u' && i + 4 < v->len) {
            n = put_utf8(hex4(v->ptr + i + 1), buf, n, cap); /* pairs: rare, left as is */
            i += 4;
            continue;
        }
        buf[n++] = c == 'n'   ? '\n'
                   : c == 't' ? '\t'
                   : c == 'r' ? '\r'
                   : c == 'b' ? '\b'
                   : c == 'f' ? '\f'
                              : c;
    }
    buf[n] = '\0';
    return n;
}

bool acr__json_i64(const acr_jv_t *v, int64_t *out)
{
    if (v->kind != 'n' || v->len == 0 || v->len > 20)
        return false;
    size_t i = 0;
    bool neg = v->ptr[0] == '-';
    if (neg)
        i = 1;
    if (i == v->len)
        return false;
    uint64_t mag = 0;
    for (; i < v->len; i++) {
        char c = v->ptr[i];
        if (c < '0' || c > '9')
            return false;
        if (mag > (UINT64_MAX - 9) / 10)
            return false;
        mag = mag * 10 + (uint64_t)(c - '0');
    }
    if (mag > (uint64_t)INT64_MAX + (neg ? 1u : 0u))
        return false;
    *out = neg ? (int64_t)(0 - mag) : (int64_t)mag;
    return true;
}
