/* test_money.c - round_half_even, floor, checked sums and display of money. */
#include <stdint.h>

#include "accrue/money.h"
#include "test_util.h"

static int64_t rhe(acr_i128_t n, acr_i128_t d)
{
    int64_t out = -1;
    cr_assert(acr_round_half_even(n, d, &out), "rhe(%lld/%lld) failed", (long long)n,
              (long long)d);
    return out;
}

Test(money, half_even_ties)
{
    ASSERT_EQ(rhe(1, 2), 0);  /* 0.5 -> 0 */
    ASSERT_EQ(rhe(3, 2), 2);  /* 1.5 -> 2 */
    ASSERT_EQ(rhe(5, 2), 2);  /* 2.5 -> 2 */
    ASSERT_EQ(rhe(7, 2), 4);  /* 3.5 -> 4 */
    ASSERT_EQ(rhe(5000, 10000), 0);
    ASSERT_EQ(rhe(15000, 10000), 2);
    ASSERT_EQ(rhe(25000, 10000), 2);
}

Test(money, below_and_above_half)
{
    ASSERT_EQ(rhe(4999, 10000), 0);
    ASSERT_EQ(rhe(5001, 10000), 1);
    ASSERT_EQ(rhe(14999, 10000), 1);
    ASSERT_EQ(rhe(0, 7), 0);
    ASSERT_EQ(rhe(10, 5), 2);  /* exact */
    ASSERT_EQ(rhe(2, 3), 1);   /* 0.666 */
    ASSERT_EQ(rhe(1, 3), 0);   /* 0.333 */
    ASSERT_EQ(rhe(1, 1), 1);
}

Test(money, odd_divisor_never_ties)
{
    /* d odd: 2r = d is impossible, so plain nearest */
    ASSERT_EQ(rhe(4, 3), 1);
    ASSERT_EQ(rhe(5, 3), 2);
}

Test(money, large_128_bit)
{
    /* 10^15 x 10000 bp / 10000 = 10^15: the product needs more than 32 bits */
    acr_i128_t n = (acr_i128_t)1000000000000000LL * 10000;
    ASSERT_EQ(rhe(n, 10000), 1000000000000000LL);
    /* INT64_MAX exactly fits, INT64_MAX + 1 does not */
    int64_t out;
    cr_assert(acr_round_half_even((acr_i128_t)INT64_MAX * 2, 2, &out));
    ASSERT_EQ(out, INT64_MAX);
    cr_assert_not(acr_round_half_even(((acr_i128_t)INT64_MAX + 1) * 2, 2, &out));
    /* the tie test cannot overflow with a huge divisor */
    acr_i128_t big = (acr_i128_t)1 << 125;
    cr_assert(acr_round_half_even(big + big / 2, big, &out));
    ASSERT_EQ(out, 2); /* 1.5 -> 2 */
}

Test(money, bad_arguments)
{
    int64_t out;
    cr_assert_not(acr_round_half_even(-1, 2, &out));
    cr_assert_not(acr_round_half_even(1, 0, &out));
    cr_assert_not(acr_round_half_even(1, -2, &out));
    cr_assert_not(acr_floor_div(-1, 2, &out));
    cr_assert_not(acr_floor_div(1, 0, &out));
}

Test(money, floor_div)
{
    int64_t out;
    cr_assert(acr_floor_div(19999, 10000, &out));
    ASSERT_EQ(out, 1);
    cr_assert(acr_floor_div(360000000, 10000, &out));
    ASSERT_EQ(out, 36000);
    cr_assert(acr_floor_div(0, 3, &out));
    ASSERT_EQ(out, 0);
}

Test(money, add_checked)
{
    int64_t acc = INT64_MAX - 1;
    cr_assert(acr_add_checked(&acc, 1));
    ASSERT_EQ(acc, INT64_MAX);
    cr_assert_not(acr_add_checked(&acc, 1));
    ASSERT_EQ(acc, INT64_MAX); /* unchanged on overflow */
    acc = INT64_MIN;
    cr_assert_not(acr_add_checked(&acc, -1));
    ASSERT_EQ(acc, INT64_MIN);
    cr_assert(acr_add_checked(&acc, INT64_MAX));
    ASSERT_EQ(acc, -1);
}

Test(money, format)
{
    char buf[32];
    ASSERT_STR_EQ(acr_money_format(123450, 2, buf, sizeof buf), "1234.50");
    ASSERT_STR_EQ(acr_money_format(-5, 2, buf, sizeof buf), "-0.05");
    ASSERT_STR_EQ(acr_money_format(1200, 0, buf, sizeof buf), "1200");
    ASSERT_STR_EQ(acr_money_format(0, 0, buf, sizeof buf), "0");
    ASSERT_STR_EQ(acr_money_format(0, 2, buf, sizeof buf), "0.00");
    ASSERT_STR_EQ(acr_money_format(1, 3, buf, sizeof buf), "0.001");
    ASSERT_STR_EQ(acr_money_format(-1234567, 3, buf, sizeof buf), "-1234.567");
    ASSERT_STR_EQ(acr_money_format(INT64_MIN, 0, buf, sizeof buf), "-9223372036854775808");
    ASSERT_STR_EQ(acr_money_format(INT64_MAX, 2, buf, sizeof buf), "92233720368547758.07");
}

/* Human display: units grouped by thousands, the currency's minor digits, the code. */
Test(money, display_for_finance)
{
    char buf[64];
    ASSERT_STR_EQ(acr_money_display(123456, 2, "USD", buf, sizeof buf), "1,234.56 USD");
    ASSERT_STR_EQ(acr_money_display(1234, 0, "JPY", buf, sizeof buf), "1,234 JPY");
    ASSERT_STR_EQ(acr_money_display(1234, 3, "KWD", buf, sizeof buf), "1.234 KWD");
    ASSERT_STR_EQ(acr_money_display(-123456789, 2, "USD", buf, sizeof buf), "-1,234,567.89 USD");
    ASSERT_STR_EQ(acr_money_display(-5, 2, "EUR", buf, sizeof buf), "-0.05 EUR");
    ASSERT_STR_EQ(acr_money_display(0, 3, "KWD", buf, sizeof buf), "0.000 KWD");
    ASSERT_STR_EQ(acr_money_display(999, 0, NULL, buf, sizeof buf), "999");
    ASSERT_STR_EQ(acr_money_display(1000, 0, "", buf, sizeof buf), "1,000");
    ASSERT_STR_EQ(acr_money_display(100000000, 2, "USD", buf, sizeof buf), "1,000,000.00 USD");
    ASSERT_STR_EQ(acr_money_display(INT64_MIN, 0, "JPY", buf, sizeof buf),
                  "-9,223,372,036,854,775,808 JPY");
    ASSERT_STR_EQ(acr_money_display(INT64_MAX, 2, "USD", buf, sizeof buf),
                  "92,233,720,368,547,758.07 USD");
    ASSERT_STR_EQ(acr_money_display(123456, 2, "USD", buf, 6), "1,234");
}
