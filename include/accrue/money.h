/* money.h - integer money: minor units, basis points, one rounding function.
 *
 * Amounts are int64 minor units; products use 128-bit intermediates; every
 * sum is checked. There is no floating point anywhere money passes.
 */
#ifndef ACCRUE_MONEY_H
#define ACCRUE_MONEY_H

#include <stdbool.h>
#include <stdint.h>

__extension__ typedef __int128 acr_i128_t; /* __extension__: -Wpedantic */

/* round_half_even(n / d) of commissions.md, for n >= 0, d > 0.
 * Returns false when the result does not fit int64 (or n < 0, d <= 0). */
bool acr_round_half_even(acr_i128_t n, acr_i128_t d, int64_t *out);

/* floor(n / d) for n >= 0, d > 0; false when it does not fit int64. */
bool acr_floor_div(acr_i128_t n, acr_i128_t d, int64_t *out);

/* *acc += v; false (and *acc unchanged) on int64 overflow. */
bool acr_add_checked(int64_t *acc, int64_t v);

/* Formats amount_minor with the currency's decimals ("1234.50", "-0.05",
 * "1200" for 0 decimals) into buf; returns buf. */
char *acr_money_format(int64_t amount_minor, int decimals, char *buf, unsigned buf_len);

/* The amount as finance reads it: the currency's units grouped by thousands with a comma, the
 * minor digits after a point, and the currency code ("1,234.56 USD", "1,234 JPY",
 * "-1.234 KWD"; no code when currency is NULL or empty). For human tables only: machine
 * formats keep integer minor units. Truncates to buf_len - 1 bytes; returns buf. */
char *acr_money_display(int64_t amount_minor, int decimals, const char *currency, char *buf,
                        unsigned buf_len);

#endif
