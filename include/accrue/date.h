/* date.h - business time: RFC 3339 timestamps, local dates and payout periods.
 *
 * Timestamps are UTC milliseconds since 1970-01-01 (int64). A local date is a
 * day number (days since 1970-01-01) computed with the ledger's UTC offset
 * only (commissions.md, Time). Periods are months or calendar quarters.
 */
#ifndef ACCRUE_DATE_H
#define ACCRUE_DATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ACR_MS_PER_DAY 86400000LL
/* 10000-01-01T00:00:00Z: the first instant the canonical form (four-digit UTC years,
 * events.md) cannot write. An `at` from it on (a local 9999-12-31 on a ledger west of UTC) is
 * invalid_timestamp, so every stored instant prints and reads back as itself. */
#define ACR_TS_END_MS 253402300800000LL
#define ACR_TS_BUF 32 /* canonical timestamp with NUL */

typedef enum { ACR_PERIOD_MONTH = 0, ACR_PERIOD_QUARTER = 1 } acr_period_kind_t;

/* Parses RFC 3339 ("2026-07-03T10:00:00Z", "...T10:00:00.5+09:00"; fraction of
 * at most 3 digits; 'T' and 'Z' upper case; seconds required; hour <= 23, no
 * leap second 60; offset at most +-23:59; year 0000..9999) into UTC ms. false on
 * bad syntax or out-of-range fields. The 1970..9999 local-date rule is the
 * caller's (acr_local_day + acr_local_day_valid under the ledger offset). */
bool acr_ts_parse(const char *s, size_t len, int64_t *out_ms);
/* Canonical form YYYY-MM-DDTHH:MM:SSZ, or ...SS.mmmZ when ms != 0. Returns length. */
size_t acr_ts_format(int64_t ms, char out[ACR_TS_BUF]);

/* The same instant as local time under the offset, RFC 3339 with that offset
 * ("2026-07-02T10:00:00+09:00"): for human tables in the ledger's business time zone. */
size_t acr_ts_format_local(int64_t ms, int32_t offset_min, char out[ACR_TS_BUF]);

/* Parses "YYYY-MM-DD" into a day number. Strict: exactly 10 bytes, a real
 * calendar date, and within 1970-01-01 .. 9999-12-31 (acr_local_day_valid). */
bool acr_date_parse(const char *s, size_t len, int32_t *out_day);
/* Formats a day number as YYYY-MM-DD (11 bytes with NUL). */
void acr_date_format(int32_t day, char out[11]);
/* Civil date <-> day number. */
int32_t acr_days_from_civil(int32_t y, unsigned m, unsigned d);
void acr_civil_from_days(int32_t day, int32_t *y, unsigned *m, unsigned *d);

/* Parses "+09:00" / "-05:30" into minutes: sign, hh <= 23, mm <= 59 (so at most
 * +-23:59); "-00:00" is accepted and means 0. */
bool acr_offset_parse(const char *s, size_t len, int32_t *out_min);
void acr_offset_format(int32_t minutes, char out[7]);

/* Local day of a UTC instant under the offset: floor((ms + off) / day). */
int32_t acr_local_day(int64_t at_ms, int32_t offset_min);
/* true when the local date lies in 1970-01-01 .. 9999-12-31. */
bool acr_local_day_valid(int32_t day);

/* Period index: months since 1970-01 (month) or quarters since 1970-Q1. */
int32_t acr_period_of_day(acr_period_kind_t kind, int32_t day);
/* The period of a UTC instant's local day under the offset (an event's period). */
int32_t acr_period_of_ms(acr_period_kind_t kind, int32_t offset_min, int64_t at_ms);
/* Period id ("2026-07" / "2026-Q3") into out (ACR_PERIOD_ID_MAX bytes). */
void acr_period_format(acr_period_kind_t kind, int32_t period, char *out);
/* Parses a period id of the given kind ("2026-07" or "2026-Q3"; year >= 1970). */
bool acr_period_parse(acr_period_kind_t kind, const char *s, size_t len, int32_t *out);
/* First and one-past-last local day of a period. */
int32_t acr_period_first_day(acr_period_kind_t kind, int32_t period);
int32_t acr_period_end_day(acr_period_kind_t kind, int32_t period);
/* The UTC instant (ms) of the local midnight that starts the next period. */
int64_t acr_period_end_ms(acr_period_kind_t kind, int32_t period, int32_t offset_min);

#endif
