/* date.c - business time: RFC 3339 instants, civil dates, offsets and periods.
 *
 * Everything here is integer arithmetic over UTC milliseconds and day numbers
 * (days since 1970-01-01), so replays are bit-for-bit reproducible and there is
 * no dependency on the C library's time zone machinery. The civil calendar
 * conversions are Howard Hinnant's days_from_civil / civil_from_days, which are
 * exact for negative day numbers too. Parsers are strict (commissions.md, Time;
 * events.md): one spelling per field, no lenient normalisation, so that an input
 * either means exactly one instant or is rejected.
 */
#include "accrue/date.h"

#include "accrue/limits.h"

#include <stdio.h>

#define MS_PER_MIN 60000LL
#define DAY_MIN ACR_DAY_MIN
#define DAY_MAX ACR_DAY_MAX
#define OFFSET_MIN_MAX ACR_UTC_OFFSET_MIN_MAX

/* Floor division for a positive divisor (C's '/' truncates toward zero). */
static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    if ((a % b != 0) && (a < 0))
        q--;
    return q;
}

static int64_t days_from_civil64(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static void civil_from_days64(int64_t z, int64_t *out_y, unsigned *out_m, unsigned *out_d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    unsigned d = (unsigned)(doy - (153 * mp + 2) / 5 + 1);
    unsigned m = (unsigned)(mp < 10 ? mp + 3 : mp - 9);
    *out_y = yoe + era * 400 + (m <= 2);
    *out_m = m;
    *out_d = d;
}

int32_t acr_days_from_civil(int32_t y, unsigned m, unsigned d)
{
    return (int32_t)days_from_civil64(y, m, d);
}

void acr_civil_from_days(int32_t day, int32_t *y, unsigned *m, unsigned *d)
{
    int64_t y64;
    civil_from_days64(day, &y64, m, d);
    *y = (int32_t)y64;
}

static bool is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static unsigned days_in_month(int64_t y, unsigned m)
{
    static const unsigned char dim[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29u : dim[m - 1];
}

/* Reads exactly n ASCII digits at s into *out. */
static bool digits(const char *s, size_t n, int *out)
{
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

/* "YYYY-MM-DD" at s (10 bytes, caller checked) with a valid month and day. */
static bool parse_ymd(const char *s, int *y, int *m, int *d)
{
    if (s[4] != '-' || s[7] != '-')
        return false;
    if (!digits(s, 4, y) || !digits(s + 5, 2, m) || !digits(s + 8, 2, d))
        return false;
    if (*m < 1 || *m > 12 || *d < 1)
        return false;
    return (unsigned)*d <= days_in_month(*y, (unsigned)*m);
}

bool acr_offset_parse(const char *s, size_t len, int32_t *out_min)
{
    int hh, mm;
    if (len != 6 || (s[0] != '+' && s[0] != '-') || s[3] != ':')
        return false;
    if (!digits(s + 1, 2, &hh) || !digits(s + 4, 2, &mm) || hh > 23 || mm > 59)
        return false;
    int32_t v = hh * 60 + mm;
    *out_min = s[0] == '-' ? -v : v;
    return true;
}

void acr_offset_format(int32_t minutes, char out[7])
{
    char sign = minutes < 0 ? '-' : '+';
    int32_t a = minutes < 0 ? -minutes : minutes;
    if (a > OFFSET_MIN_MAX)
        a = OFFSET_MIN_MAX; /* out of contract; keep the output well-formed */
    snprintf(out, 7, "%c%02d:%02d", sign, (int)(a / 60), (int)(a % 60));
}

/* Parses the "HH:MM:SS[.f{1,3}]" part; returns the bytes consumed or 0. */
static size_t parse_hms(const char *s, size_t len, int64_t *out_ms)
{
    int hh, mi, ss, frac = 0;
    if (len < 8 || s[2] != ':' || s[5] != ':')
        return 0;
    if (!digits(s, 2, &hh) || !digits(s + 3, 2, &mi) || !digits(s + 6, 2, &ss))
        return 0;
    if (hh > 23 || mi > 59 || ss > 59) /* no hour 24, no leap second */
        return 0;
    size_t i = 8;
    if (i < len && s[i] == '.') {
        size_t n = 0;
        i++;
        while (i + n < len && s[i + n] >= '0' && s[i + n] <= '9')
            n++;
        if (n < 1 || n > 3)
            return 0;
        (void)digits(s + i, n, &frac);
        for (size_t k = n; k < 3; k++)
            frac *= 10;
        i += n;
    }
    *out_ms = ((int64_t)hh * 3600 + mi * 60 + ss) * 1000 + frac;
    return i;
}

bool acr_ts_parse(const char *s, size_t len, int64_t *out_ms)
{
    int y, m, d;
    int64_t tod_ms;
    int32_t off = 0;
    if (s == NULL || len < 20 || s[10] != 'T' || !parse_ymd(s, &y, &m, &d))
        return false;
    size_t n = parse_hms(s + 11, len - 11, &tod_ms);
    if (n == 0)
        return false;
    const char *z = s + 11 + n;
    size_t zlen = len - 11 - n;
    if (zlen == 1 && z[0] == 'Z')
        off = 0;
    else if (!acr_offset_parse(z, zlen, &off))
        return false;
    int64_t day = days_from_civil64(y, (unsigned)m, (unsigned)d);
    *out_ms = day * ACR_MS_PER_DAY + tod_ms - (int64_t)off * MS_PER_MIN;
    return true;
}

size_t acr_ts_format(int64_t ms, char out[ACR_TS_BUF])
{
    int64_t day = floor_div(ms, ACR_MS_PER_DAY);
    int64_t rem = ms % ACR_MS_PER_DAY; /* 0 .. day-1, without overflowing at INT64_MIN */
    if (rem < 0)
        rem += ACR_MS_PER_DAY;
    int64_t y;
    unsigned m, d;
    civil_from_days64(day, &y, &m, &d);
    int hh = (int)(rem / 3600000), mi = (int)(rem / 60000 % 60), ss = (int)(rem / 1000 % 60);
    int frac = (int)(rem % 1000);
    int n;
    if (frac != 0)
        n = snprintf(out, ACR_TS_BUF, "%04lld-%02u-%02uT%02d:%02d:%02d.%03dZ", (long long)y, m,
                     d, hh, mi, ss, frac);
    else
        n = snprintf(out, ACR_TS_BUF, "%04lld-%02u-%02uT%02d:%02d:%02dZ", (long long)y, m, d,
                     hh, mi, ss);
    return n < 0 ? 0 : (size_t)n;
}

size_t acr_ts_format_local(int64_t ms, int32_t offset_min, char out[ACR_TS_BUF])
{
    char utc[ACR_TS_BUF], off[7];
    size_t n = acr_ts_format(ms + (int64_t)offset_min * 60000, utc); /* |ms| < 2^48 */
    if (n == 0)
        return 0;
    acr_offset_format(offset_min, off);
    utc[n - 1] = '\0'; /* drop the Z */
    int w = snprintf(out, ACR_TS_BUF, "%s%s", utc, off);
    return w < 0 ? 0 : (size_t)w;
}

bool acr_date_parse(const char *s, size_t len, int32_t *out_day)
{
    int y, m, d;
    if (s == NULL || len != 10 || !parse_ymd(s, &y, &m, &d))
        return false;
    int64_t day = days_from_civil64(y, (unsigned)m, (unsigned)d);
    if (day < DAY_MIN || day > DAY_MAX)
        return false;
    *out_day = (int32_t)day;
    return true;
}

void acr_date_format(int32_t day, char out[11])
{
    int64_t y;
    unsigned m, d;
    civil_from_days64(day, &y, &m, &d);
    if (y < 0 || y > 9999) { /* out of contract; keep the output 10 bytes */
        snprintf(out, 11, "%s", y < 0 ? "0000-01-01" : "9999-12-31");
        return;
    }
    snprintf(out, 11, "%04d-%02u-%02u", (int)y, m, d);
}

int32_t acr_local_day(int64_t at_ms, int32_t offset_min)
{
    /* Saturate instead of overflowing: such instants are far outside 1970..9999
     * and acr_local_day_valid() rejects the result either way. */
    int64_t off_ms = (int64_t)offset_min * MS_PER_MIN;
    int64_t local;
    if (__builtin_add_overflow(at_ms, off_ms, &local))
        local = at_ms < 0 ? INT64_MIN : INT64_MAX;
    int64_t day = floor_div(local, ACR_MS_PER_DAY);
    if (day < INT32_MIN)
        return INT32_MIN;
    if (day > INT32_MAX)
        return INT32_MAX;
    return (int32_t)day;
}

bool acr_local_day_valid(int32_t day)
{
    return day >= DAY_MIN && day <= DAY_MAX;
}

int32_t acr_period_of_day(acr_period_kind_t kind, int32_t day)
{
    int64_t y;
    unsigned m, d;
    civil_from_days64(day, &y, &m, &d);
    int64_t month = (y - 1970) * 12 + (int64_t)(m - 1);
    return (int32_t)(kind == ACR_PERIOD_QUARTER ? floor_div(month, 3) : month);
}

int32_t acr_period_of_ms(acr_period_kind_t kind, int32_t offset_min, int64_t at_ms)
{
    return acr_period_of_day(kind, acr_local_day(at_ms, offset_min));
}

/* First month index (months since 1970-01) of a period. */
static int64_t period_first_month(acr_period_kind_t kind, int32_t period)
{
    return kind == ACR_PERIOD_QUARTER ? (int64_t)period * 3 : (int64_t)period;
}

static int64_t day_of_month_index(int64_t month)
{
    int64_t y = 1970 + floor_div(month, 12);
    unsigned m = (unsigned)(month - floor_div(month, 12) * 12) + 1;
    return days_from_civil64(y, m, 1);
}

/* Writes v (0 <= v < 10^n) as exactly n digits. */
static void put_digits(char *out, unsigned v, size_t n)
{
    for (size_t i = n; i-- > 0; v /= 10)
        out[i] = (char)('0' + v % 10);
}

void acr_period_format(acr_period_kind_t kind, int32_t period, char *out)
{
    int64_t month = period_first_month(kind, period);
    int64_t y = 1970 + floor_div(month, 12);
    unsigned m = (unsigned)(month - floor_div(month, 12) * 12) + 1;
    if (y < 0 || y > 9999) /* out of contract */
        y = y < 0 ? 0 : 9999;
    put_digits(out, (unsigned)y, 4);
    out[4] = '-';
    if (kind == ACR_PERIOD_QUARTER) {
        out[5] = 'Q';
        out[6] = (char)('1' + (m - 1) / 3);
    } else {
        put_digits(out + 5, m, 2);
    }
    out[7] = '\0';
}

bool acr_period_parse(acr_period_kind_t kind, const char *s, size_t len, int32_t *out)
{
    int y, v;
    if (s == NULL || len != 7 || s[4] != '-' || !digits(s, 4, &y) || y < 1970)
        return false;
    if (kind == ACR_PERIOD_QUARTER) {
        if (s[5] != 'Q' || !digits(s + 6, 1, &v) || v < 1 || v > 4)
            return false;
        *out = (y - 1970) * 4 + (v - 1);
    } else {
        if (!digits(s + 5, 2, &v) || v < 1 || v > 12)
            return false;
        *out = (y - 1970) * 12 + (v - 1);
    }
    return true;
}

int32_t acr_period_first_day(acr_period_kind_t kind, int32_t period)
{
    return (int32_t)day_of_month_index(period_first_month(kind, period));
}

int32_t acr_period_end_day(acr_period_kind_t kind, int32_t period)
{
    int64_t months = kind == ACR_PERIOD_QUARTER ? 3 : 1;
    return (int32_t)day_of_month_index(period_first_month(kind, period) + months);
}

int64_t acr_period_end_ms(acr_period_kind_t kind, int32_t period, int32_t offset_min)
{
    return (int64_t)acr_period_end_day(kind, period) * ACR_MS_PER_DAY -
           (int64_t)offset_min * MS_PER_MIN;
}
