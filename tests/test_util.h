/* test_util.h - shared helpers for the Criterion unit tests. */
#ifndef ACCRUE_TEST_UTIL_H
#define ACCRUE_TEST_UTIL_H

#include <criterion/criterion.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "accrue/money.h" /* acr_i128_t */

/* Asserts two byte strings are equal, printing both. */
#define ASSERT_BYTES_EQ(got, got_len, want, want_len)                                              \
    cr_assert((got_len) == (want_len) && memcmp((got), (want), (want_len)) == 0,                   \
              "bytes differ:\n--- got (%zu)\n%.*s\n--- want (%zu)\n%.*s", (size_t)(got_len),       \
              (int)(got_len), (const char *)(got), (size_t)(want_len), (int)(want_len),            \
              (const char *)(want))

#define ASSERT_STR_EQ(got, want)                                                                   \
    cr_assert(strcmp((got), (want)) == 0, "got \"%s\", want \"%s\"", (got), (want))

/* ---- ASSERT_EQ: equality that prints both values --------------------------------------
 *
 * ASSERT_EQ(got, want) and ASSERT_EQ_MSG(got, want, fmt, ...) assert got == want (integers,
 * bools, pointers, 128-bit integers, doubles) and on failure print both expressions and
 * both values, then the message: "n == 3: got 2, want 3". Each operand is evaluated once. */

static inline void tu_fmt_i(char out[48], long long v)
{
    snprintf(out, 48, "%lld", v);
}
static inline void tu_fmt_u(char out[48], unsigned long long v)
{
    snprintf(out, 48, "%llu (0x%llx)", v, v);
}
static inline void tu_fmt_b(char out[48], bool v)
{
    snprintf(out, 48, "%s", v ? "true" : "false");
}
static inline void tu_fmt_d(char out[48], double v)
{
    snprintf(out, 48, "%.17g", v);
}
static inline void tu_fmt_p(char out[48], const volatile void *v)
{
    snprintf(out, 48, "%p", (const void *)v);
}
static inline void tu_fmt_i128(char out[48], acr_i128_t v)
{
    char tmp[48];
    size_t n = 0;
    bool neg = v < 0;
    do { /* digits from the end, of |v| taken digit by digit (no overflow at the minimum) */
        int d = (int)(v % 10);
        tmp[n++] = (char)('0' + (d < 0 ? -d : d));
        v /= 10;
    } while (v != 0 && n < sizeof tmp - 1);
    size_t o = 0;
    if (neg)
        out[o++] = '-';
    while (n > 0)
        out[o++] = tmp[--n];
    out[o] = '\0';
}
__extension__ typedef unsigned __int128 tu_u128_t;
static inline void tu_fmt_u128(char out[48], tu_u128_t v)
{
    snprintf(out, 48, "0x%016" PRIx64 "%016" PRIx64, (uint64_t)(v >> 64), (uint64_t)v);
}

#define TU_FMT(x)                                                                                  \
    _Generic((x),                                                                                  \
        bool: tu_fmt_b,                                                                            \
        char: tu_fmt_i,                                                                            \
        signed char: tu_fmt_i,                                                                     \
        short: tu_fmt_i,                                                                           \
        int: tu_fmt_i,                                                                             \
        long: tu_fmt_i,                                                                            \
        long long: tu_fmt_i,                                                                       \
        unsigned char: tu_fmt_u,                                                                   \
        unsigned short: tu_fmt_u,                                                                  \
        unsigned int: tu_fmt_u,                                                                    \
        unsigned long: tu_fmt_u,                                                                   \
        unsigned long long: tu_fmt_u,                                                              \
        acr_i128_t: tu_fmt_i128,                                                                   \
        tu_u128_t: tu_fmt_u128,                                                                    \
        float: tu_fmt_d,                                                                           \
        double: tu_fmt_d,                                                                          \
        default: tu_fmt_p)

#define ASSERT_EQ_MSG(got, want, ...)                                                              \
    do {                                                                                           \
        __typeof__(got) tu_got_ = (got);                                                           \
        __typeof__(want) tu_want_ = (want);                                                        \
        _Pragma("GCC diagnostic push");                                                            \
        _Pragma("GCC diagnostic ignored \"-Wsign-compare\"");                                      \
        bool tu_eq_ = tu_got_ == tu_want_;                                                         \
        _Pragma("GCC diagnostic pop");                                                             \
        if (!tu_eq_) {                                                                             \
            char tu_g_[48], tu_w_[48], tu_m_[512];                                                 \
            TU_FMT(tu_got_)(tu_g_, tu_got_);                                                       \
            TU_FMT(tu_want_)(tu_w_, tu_want_);                                                     \
            snprintf(tu_m_, sizeof tu_m_, __VA_ARGS__);                                            \
            cr_assert_fail("%s == %s: got %s, want %s%s%s", #got, #want, tu_g_, tu_w_,             \
                           tu_m_[0] ? "\n  " : "", tu_m_);                                         \
        }                                                                                          \
    } while (0)

#define ASSERT_EQ(got, want) ASSERT_EQ_MSG(got, want, "%s", "")

#endif
