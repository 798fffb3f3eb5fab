/* money.c - integer money: the one rounding function, checked sums, display.
 *
 * Every commission, clawback and bonus of commissions.md is rounded by
 * acr_round_half_even; the cap's limit alone is a floor (acr_floor_div). The
 * numerators are 128-bit so that amount x rate products never wrap, and every
 * int64 sum goes through acr_add_checked so an overflow is reported, never
 * silently wrapped. There is no floating point here, by design.
 */
#include <stdint.h>
#include <string.h>

#include "accrue/money.h"

bool acr_round_half_even(acr_i128_t n, acr_i128_t d, int64_t *out)
{
    if (n < 0 || d <= 0)
        return false;
    acr_i128_t q = n / d;
    acr_i128_t r = n % d;
    /* 2r vs d, written as r vs d - r so that 2r cannot overflow. */
    if (r > d - r)
        q += 1;
    else if (r == d - r)
        q += q & 1;
    if (q > INT64_MAX)
        return false;
    *out = (int64_t)q;
    return true;
}

bool acr_floor_div(acr_i128_t n, acr_i128_t d, int64_t *out)
{
    if (n < 0 || d <= 0)
        return false;
    acr_i128_t q = n / d;
    if (q > INT64_MAX)
        return false;
    *out = (int64_t)q;
    return true;
}

bool acr_add_checked(int64_t *acc, int64_t v)
{
    int64_t sum;
    if (__builtin_add_overflow(*acc, v, &sum))
        return false;
    *acc = sum;
    return true;
}

char *acr_money_format(int64_t amount_minor, int decimals, char *buf, unsigned buf_len)
{
    char tmp[48];
    size_t n = 0;
    /* Magnitude as unsigned so INT64_MIN has a well-defined absolute value. */
    uint64_t mag = amount_minor < 0 ? 0 - (uint64_t)amount_minor : (uint64_t)amount_minor;
    if (decimals < 0)
        decimals = 0;
    if (decimals > 18)
        decimals = 18;
    int digits = 0;
    do {
        tmp[n++] = (char)('0' + mag % 10);
        mag /= 10;
        digits++;
        if (digits == decimals)
            tmp[n++] = '.';
    } while (mag != 0 || digits <= decimals);
    if (amount_minor < 0)
        tmp[n++] = '-';
    if (buf_len == 0)
        return buf;
    size_t i = 0;
    for (; i < n && i + 1 < buf_len; i++)
        buf[i] = tmp[n - 1 - i];
    buf[i] = '\0';
    return buf;
}

char *acr_money_display(int64_t amount_minor, int decimals, const char *currency, char *buf,
                        unsigned buf_len)
{
    char tmp[64];
    size_t n = 0;
    uint64_t mag = amount_minor < 0 ? 0 - (uint64_t)amount_minor : (uint64_t)amount_minor;
    if (decimals < 0)
        decimals = 0;
    if (decimals > 18)
        decimals = 18;
    /* Built backwards: the minor digits, the point, then the units in groups of three. */
    int digits = 0;
    for (; digits < decimals; digits++) {
        tmp[n++] = (char)('0' + mag % 10);
        mag /= 10;
    }
    if (decimals > 0)
        tmp[n++] = '.';
    int units = 0;
    do {
        if (units > 0 && units % 3 == 0)
            tmp[n++] = ',';
        tmp[n++] = (char)('0' + mag % 10);
        mag /= 10;
        units++;
    } while (mag != 0);
    if (amount_minor < 0)
        tmp[n++] = '-';
    if (buf_len == 0)
        return buf;
    size_t i = 0;
    for (; i < n && i + 1 < buf_len; i++)
        buf[i] = tmp[n - 1 - i];
    if (currency != NULL && currency[0] != '\0') {
        if (i + 1 < buf_len)
            buf[i++] = ' ';
        for (const char *c = currency; *c != '\0' && i + 1 < buf_len; c++)
            buf[i++] = *c;
    }
    buf[i] = '\0';
    return buf;
}
