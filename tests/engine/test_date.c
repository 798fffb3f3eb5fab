/* test_date.c - RFC 3339 parsing/formatting, civil dates, offsets and periods. */
#include "accrue/date.h"
#include "accrue/limits.h"
#include "test_util.h"

static bool ts(const char *s, int64_t *ms)
{
    return acr_ts_parse(s, strlen(s), ms);
}

static int64_t ts_ok(const char *s)
{
    int64_t ms = 0;
    cr_assert(ts(s, &ms), "should parse: %s", s);
    return ms;
}

Test(date, ts_parse_basic)
{
    ASSERT_EQ(ts_ok("1970-01-01T00:00:00Z"), 0);
    ASSERT_EQ(ts_ok("1970-01-01T00:00:00.001Z"), 1);
    ASSERT_EQ(ts_ok("1970-01-01T00:00:00.5Z"), 500);
    ASSERT_EQ(ts_ok("1970-01-01T00:00:00.05Z"), 50);
    ASSERT_EQ(ts_ok("2026-07-03T10:00:00Z"), 1783072800000LL);
    ASSERT_EQ(ts_ok("2026-07-03T19:00:00+09:00"), ts_ok("2026-07-03T10:00:00Z"));
    ASSERT_EQ(ts_ok("2026-07-03T04:30:00-05:30"), ts_ok("2026-07-03T10:00:00Z"));
    ASSERT_EQ(ts_ok("1969-12-31T23:59:59.999Z"), -1);
    ASSERT_EQ(ts_ok("2024-02-29T00:00:00Z"), 1709164800000LL);
    ASSERT_EQ(ts_ok("2000-02-29T00:00:00Z"), 951782400000LL);
    ASSERT_EQ(ts_ok("2026-01-01T00:00:00+23:59"), ts_ok("2025-12-31T00:01:00Z"));
    ASSERT_EQ(ts_ok("2026-01-01T00:00:00-00:00"), ts_ok("2026-01-01T00:00:00Z"));
    ASSERT_EQ(ts_ok("9999-12-31T23:59:59.999Z"), 253402300799999LL);
}

Test(date, ts_parse_rejects)
{
    static const char *bad[] = {
        "2026-07-03t10:00:00Z",      "2026-07-03T10:00:00z",      "2026-07-03T10:00Z",
        "2026-07-03T10:00:00.1234Z", "2026-07-03T10:00:00.Z",     "2026-13-03T10:00:00Z",
        "2026-00-03T10:00:00Z",      "2026-02-29T10:00:00Z",      "1900-02-29T10:00:00Z",
        "2026-04-31T10:00:00Z",      "2026-07-00T10:00:00Z",      "2026-07-03T24:00:00Z",
        "2026-07-03T10:60:00Z",      "2026-07-03T10:00:60Z",      "2026-07-03T10:00:00+24:00",
        "2026-07-03T10:00:00+23:60", "2026-07-03T10:00:00+0900",  "2026-07-03T10:00:00",
        "2026-07-03 10:00:00Z",      "2026-7-03T10:00:00Z",       "26-07-03T10:00:00Z",
        "2026-07-03T10:00:00ZZ",     "2026-07-03T10:00:00+09:00 ", " 2026-07-03T10:00:00Z",
        "2026-07-03T1a:00:00Z",      "",                          "+2026-07-03T10:00:00Z",
        "2026-07-03T10:00:00.12a3Z", "2026-07-03T10:00:00+9:00",  "2026-07-03T10:00:00.+09:00",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        int64_t ms;
        cr_assert(!ts(bad[i], &ms), "should reject: \"%s\"", bad[i]);
    }
    int64_t ms;
    cr_assert(!acr_ts_parse("2026-07-03T10:00:00Z", 19, &ms), "length is respected");
}

static void fmt_is(int64_t ms, const char *want)
{
    char buf[ACR_TS_BUF];
    size_t n = acr_ts_format(ms, buf);
    ASSERT_STR_EQ(buf, want);
    ASSERT_EQ(n, strlen(want));
}

Test(date, ts_format)
{
    fmt_is(0, "1970-01-01T00:00:00Z");
    fmt_is(1, "1970-01-01T00:00:00.001Z");
    fmt_is(-1, "1969-12-31T23:59:59.999Z");
    fmt_is(ts_ok("2026-07-03T19:00:00.5+09:00"), "2026-07-03T10:00:00.500Z");
    fmt_is(253402300799999LL, "9999-12-31T23:59:59.999Z");
    char buf[ACR_TS_BUF];
    cr_assert(acr_ts_format(INT64_MAX, buf) < ACR_TS_BUF);
    cr_assert(acr_ts_format(INT64_MIN, buf) < ACR_TS_BUF);
}

Test(date, ts_roundtrip_sweep)
{
    /* Every 7919th minute plus a wandering millisecond over ~60 years. */
    for (int64_t ms = -86400000LL * 365; ms < 86400000LL * 365 * 60; ms += 7919LL * 60000 + 13) {
        char buf[ACR_TS_BUF];
        size_t n = acr_ts_format(ms, buf);
        int64_t back;
        cr_assert(acr_ts_parse(buf, n, &back), "reparse %s", buf);
        ASSERT_EQ_MSG(back, ms, "%s", buf);
    }
}

Test(date, civil)
{
    ASSERT_EQ(acr_days_from_civil(1970, 1, 1), 0);
    ASSERT_EQ(acr_days_from_civil(1969, 12, 31), -1);
    ASSERT_EQ(acr_days_from_civil(2000, 3, 1), 11017);
    ASSERT_EQ(acr_days_from_civil(9999, 12, 31), 2932896);
    ASSERT_EQ(acr_days_from_civil(0, 3, 1), -719468);
    for (int32_t day = -800000; day < 3000000; day += 17) {
        int32_t y;
        unsigned m, d;
        acr_civil_from_days(day, &y, &m, &d);
        ASSERT_EQ(acr_days_from_civil(y, m, d), day);
        cr_assert(m >= 1 && m <= 12 && d >= 1 && d <= 31);
    }
    int32_t y;
    unsigned m, d;
    acr_civil_from_days(-1, &y, &m, &d);
    cr_assert(y == 1969 && m == 12 && d == 31);
}

Test(date, date_parse_format)
{
    int32_t day;
    cr_assert(acr_date_parse("2026-07-03", 10, &day));
    ASSERT_EQ(day, acr_days_from_civil(2026, 7, 3));
    char out[11];
    acr_date_format(day, out);
    ASSERT_STR_EQ(out, "2026-07-03");
    cr_assert(acr_date_parse("1970-01-01", 10, &day) && day == 0);
    cr_assert(acr_date_parse("9999-12-31", 10, &day) && day == 2932896);
    cr_assert(!acr_date_parse("1969-12-31", 10, &day));
    cr_assert(!acr_date_parse("2026-02-29", 10, &day));
    cr_assert(acr_date_parse("2024-02-29", 10, &day));
    cr_assert(!acr_date_parse("2026-7-03", 9, &day));
    cr_assert(!acr_date_parse("2026/07/03", 10, &day));
    cr_assert(!acr_date_parse("2026-07-03T", 11, &day));
    cr_assert(!acr_date_parse("2026-07-32", 10, &day));
}

Test(date, offsets)
{
    int32_t off;
    cr_assert(acr_offset_parse("+09:00", 6, &off) && off == 540);
    cr_assert(acr_offset_parse("-05:30", 6, &off) && off == -330);
    cr_assert(acr_offset_parse("+00:00", 6, &off) && off == 0);
    cr_assert(acr_offset_parse("-23:59", 6, &off) && off == -1439);
    cr_assert(!acr_offset_parse("+24:00", 6, &off));
    cr_assert(!acr_offset_parse("09:00", 5, &off));
    cr_assert(!acr_offset_parse("+09:0", 5, &off));
    cr_assert(!acr_offset_parse("Z", 1, &off));
    char out[7];
    acr_offset_format(540, out);
    ASSERT_STR_EQ(out, "+09:00");
    acr_offset_format(-330, out);
    ASSERT_STR_EQ(out, "-05:30");
    acr_offset_format(0, out);
    ASSERT_STR_EQ(out, "+00:00");
}

Test(date, local_day)
{
    /* 2026-06-30T15:00:00Z is 2026-07-01 00:00 in Tokyo. */
    int64_t at = ts_ok("2026-06-30T15:00:00Z");
    ASSERT_EQ(acr_local_day(at, 540), acr_days_from_civil(2026, 7, 1));
    ASSERT_EQ(acr_local_day(at - 1, 540), acr_days_from_civil(2026, 6, 30));
    ASSERT_EQ(acr_local_day(at, 0), acr_days_from_civil(2026, 6, 30));
    ASSERT_EQ(acr_local_day(ts_ok("2026-07-01T04:59:59.999Z"), -300),
                 acr_days_from_civil(2026, 6, 30));
    ASSERT_EQ(acr_local_day(-1, 0), -1);
    ASSERT_EQ(acr_local_day(-86400000, 0), -1);
    ASSERT_EQ(acr_local_day(-86400001, 0), -2);
    ASSERT_EQ(acr_local_day(0, -1), -1);
    cr_assert(!acr_local_day_valid(acr_local_day(0, -1)));
    cr_assert(acr_local_day_valid(acr_local_day(0, 0)));
    cr_assert(acr_local_day_valid(acr_local_day(253402300799999LL, 0)));
    cr_assert(!acr_local_day_valid(acr_local_day(253402300799999LL, 1)));
    cr_assert(!acr_local_day_valid(acr_local_day(INT64_MAX, 1439)));
    cr_assert(!acr_local_day_valid(acr_local_day(INT64_MIN, -1439)));
}

Test(date, periods_month)
{
    int32_t day = acr_days_from_civil(2026, 7, 15);
    int32_t p = acr_period_of_day(ACR_PERIOD_MONTH, day);
    ASSERT_EQ(p, (2026 - 1970) * 12 + 6);
    char id[ACR_PERIOD_ID_MAX];
    acr_period_format(ACR_PERIOD_MONTH, p, id);
    ASSERT_STR_EQ(id, "2026-07");
    int32_t q;
    cr_assert(acr_period_parse(ACR_PERIOD_MONTH, "2026-07", 7, &q) && q == p);
    cr_assert(!acr_period_parse(ACR_PERIOD_MONTH, "2026-13", 7, &q));
    cr_assert(!acr_period_parse(ACR_PERIOD_MONTH, "2026-Q3", 7, &q));
    cr_assert(!acr_period_parse(ACR_PERIOD_MONTH, "1969-12", 7, &q));
    ASSERT_EQ(acr_period_first_day(ACR_PERIOD_MONTH, p), acr_days_from_civil(2026, 7, 1));
    ASSERT_EQ(acr_period_end_day(ACR_PERIOD_MONTH, p), acr_days_from_civil(2026, 8, 1));
    ASSERT_EQ(acr_period_end_ms(ACR_PERIOD_MONTH, p, 540), ts_ok("2026-07-31T15:00:00Z"));
    ASSERT_EQ(acr_period_end_ms(ACR_PERIOD_MONTH, p, -300), ts_ok("2026-08-01T05:00:00Z"));
    /* an instant's period is its local day's: the end of June UTC is July in Tokyo */
    ASSERT_EQ(acr_period_of_ms(ACR_PERIOD_MONTH, 540, ts_ok("2026-06-30T15:00:00Z")), p);
    ASSERT_EQ(acr_period_of_ms(ACR_PERIOD_MONTH, 540, ts_ok("2026-06-30T14:59:59.999Z")), p - 1);
    ASSERT_EQ(acr_period_of_ms(ACR_PERIOD_QUARTER, -300, ts_ok("2026-07-01T04:59:59.999Z")),
              acr_period_of_day(ACR_PERIOD_QUARTER, acr_days_from_civil(2026, 6, 30)));
    int32_t dec = acr_period_of_day(ACR_PERIOD_MONTH, acr_days_from_civil(2026, 12, 31));
    ASSERT_EQ(acr_period_end_day(ACR_PERIOD_MONTH, dec), acr_days_from_civil(2027, 1, 1));
    acr_period_format(ACR_PERIOD_MONTH, 0, id);
    ASSERT_STR_EQ(id, "1970-01");
}

Test(date, periods_quarter)
{
    int32_t p = acr_period_of_day(ACR_PERIOD_QUARTER, acr_days_from_civil(2026, 9, 30));
    ASSERT_EQ(p, (2026 - 1970) * 4 + 2);
    char id[ACR_PERIOD_ID_MAX];
    acr_period_format(ACR_PERIOD_QUARTER, p, id);
    ASSERT_STR_EQ(id, "2026-Q3");
    int32_t q;
    cr_assert(acr_period_parse(ACR_PERIOD_QUARTER, "2026-Q3", 7, &q) && q == p);
    cr_assert(!acr_period_parse(ACR_PERIOD_QUARTER, "2026-Q5", 7, &q));
    cr_assert(!acr_period_parse(ACR_PERIOD_QUARTER, "2026-q3", 7, &q));
    cr_assert(!acr_period_parse(ACR_PERIOD_QUARTER, "2026-07", 7, &q));
    ASSERT_EQ(acr_period_first_day(ACR_PERIOD_QUARTER, p), acr_days_from_civil(2026, 7, 1));
    ASSERT_EQ(acr_period_end_day(ACR_PERIOD_QUARTER, p), acr_days_from_civil(2026, 10, 1));
    int32_t q4 = acr_period_of_day(ACR_PERIOD_QUARTER, acr_days_from_civil(2026, 11, 1));
    acr_period_format(ACR_PERIOD_QUARTER, q4, id);
    ASSERT_STR_EQ(id, "2026-Q4");
    ASSERT_EQ(acr_period_end_day(ACR_PERIOD_QUARTER, q4), acr_days_from_civil(2027, 1, 1));
    ASSERT_EQ(acr_period_end_ms(ACR_PERIOD_QUARTER, q4, 0), ts_ok("2027-01-01T00:00:00Z"));
    /* Byte order of ids is chronological. */
    char a[ACR_PERIOD_ID_MAX], b[ACR_PERIOD_ID_MAX];
    acr_period_format(ACR_PERIOD_MONTH, 119, a);
    acr_period_format(ACR_PERIOD_MONTH, 120, b);
    cr_assert(strcmp(a, b) < 0);
}
