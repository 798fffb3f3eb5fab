/* test_currency.c - the ISO 4217 minor-unit table. */
#include "accrue/event.h"
#include "test_util.h"

static int dp(const char *c)
{
    return acr_currency_decimals(c, strlen(c));
}

Test(currency, known_codes)
{
    static const struct {
        const char *code;
        int dp;
    } want[] = {
        {"JPY", 0}, {"USD", 2}, {"KWD", 3}, {"BHD", 3}, {"JOD", 3}, {"OMR", 3}, {"TND", 3},
        {"IQD", 3}, {"LYD", 3}, {"CLF", 4}, {"UYW", 4}, {"KRW", 0}, {"VND", 0}, {"ISK", 0},
        {"CLP", 0}, {"PYG", 0}, {"UGX", 0}, {"XAF", 0}, {"XOF", 0}, {"XPF", 0}, {"BIF", 0},
        {"DJF", 0}, {"GNF", 0}, {"KMF", 0}, {"RWF", 0}, {"VUV", 0}, {"EUR", 2}, {"GBP", 2},
        {"CHF", 2}, {"CNY", 2}, {"INR", 2}, {"AUD", 2}, {"CAD", 2}, {"AED", 2}, {"ZWG", 2},
        {"ZAR", 2}, {"UYI", 0}, {"MXN", 2}, {"BRL", 2},
    };
    for (size_t i = 0; i < sizeof want / sizeof *want; i++)
        ASSERT_EQ_MSG(dp(want[i].code), want[i].dp, "%s: got %d want %d", want[i].code,
                     dp(want[i].code), want[i].dp);
}

Test(currency, unknown_codes)
{
    static const char *bad[] = {"jpy", "JP", "JPYY", "", "XXX", "XAU", "XDR", "AAA", "ZZZ",
                                "HRK", "usd", "US$"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        ASSERT_EQ_MSG(dp(bad[i]), -1, "%s", bad[i]);
    ASSERT_EQ(acr_currency_decimals(NULL, 3), -1);
    ASSERT_EQ_MSG(acr_currency_decimals("USDX", 3), 2, "length, not NUL, bounds the code");
}
