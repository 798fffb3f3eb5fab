/* commission.h - the commission processor (commissions.md), a pure function.
 *
 * It consumes decoded events in seq order (only seq <= through_seq), the
 * statements of closed runs, and for a what-if run extra plan documents, and
 * yields the statement of the run of one period: forward-only restatement of
 * every origin period <= the run's period. No LMDB, no libuv, no clock, no
 * files. Integer money only; int64 overflow is reported (ACR_EOVERFLOW naming
 * partner and period), never wrapped.
 *
 * Usage:
 *   acr_comm_t *c = acr_comm_new(&cfg);
 *   for each event e with seq <= X, in seq order: acr_comm_feed(c, &e, &err);
 *       (when e is a period.closed, also acr_comm_add_closed(c, csv, len, &err)
 *        with the statement stored at that close)
 *   acr_comm_add_whatif_plan(c, json, len, &err)  (optional, in order)
 *   acr_comm_finish(c, &stmt, &err);  ... acr_statement_destroy(&stmt);
 *   acr_comm_free(c);
 */
#ifndef ACCRUE_COMMISSION_H
#define ACCRUE_COMMISSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "accrue/date.h"
#include "accrue/error.h"
#include "accrue/money.h"
#include "accrue/schema.h"

/* Line kinds in statement order (commissions.md, Statement CSV). */
#define ACR_LINE_KIND_MAP(XX)                                                                      \
    XX(SALE, "sale")                                                                               \
    XX(CLAWBACK, "clawback")                                                                       \
    XX(NEW_CUSTOMER_BONUS, "new_customer_bonus")                                                   \
    XX(PROMOTION, "promotion")                                                                     \
    XX(TARGET_BONUS, "target_bonus")                                                               \
    XX(ADJUSTMENT, "adjustment")                                                                   \
    XX(CAP, "cap")

typedef enum {
#define XX(name, wire) ACR_LINE_##name,
    ACR_LINE_KIND_MAP(XX)
#undef XX
    ACR_LINE__COUNT
} acr_line_kind_t;

const char *acr_line_kind_name(int kind);

/* A sink for the statement CSV: called with consecutive chunks of the exact bytes, in
 * order; nonzero return aborts the run with that error code (e.g. ACR_EIO). */
typedef int (*acr_csv_write_fn)(void *arg, const void *p, size_t n);

typedef struct acr_comm_config {
    acr_period_kind_t period_kind; /* the ledger's payout period */
    int32_t utc_offset_min;        /* the ledger's business-day offset */
    int32_t run_period;            /* U, as acr_period_of_day() index */
    uint64_t through_seq;          /* X: only events with seq <= X are fed */
} acr_comm_config_t;

/* Optional output controls (acr_comm_set_output); the zero value, the default, keeps the
 * lines and the CSV in the statement. For a 10 M-line statement those are ~0.8 GB of
 * acr_line_t and ~1 GB of CSV: a caller that writes the CSV to a file streams it instead. */
typedef struct acr_comm_output {
    acr_csv_write_fn csv_write;    /* set: the CSV goes here in chunks during finish and the
                                      statement keeps csv == NULL (csv_len = bytes written);
                                      the fingerprint covers the same bytes */
    void *csv_arg;
    bool omit_lines;               /* true: statement.lines stays NULL (line_count is set;
                                      partners, totals, unplanned, plans_used as always) */
    bool omit_csv;                 /* true: no CSV is formatted (csv NULL, csv_len 0, an
                                      empty fingerprint): a caller that wants sums only */
    bool window;                   /* true: each partner total's window_minor sums its lines */
    int32_t window_lo;             /* of origin_period >= window_lo (the KPI of a quarter) */
    bool window_only;              /* with window: lines of origin before window_lo are not
                                      computed (nor output), but for the sales a clawback in
                                      the window needs: only window_minor, and the lines of
                                      origin >= window_lo, are then the run's */
    unsigned threads;              /* the finish's threads (0 or 1: the caller's alone): the
                                      lines of groups of partners are computed on up to this
                                      many threads and output in partner order, so the
                                      statement is the same whatever the count */
    uint32_t chunk_sales;          /* the sales a group of partners holds at least (0: a
                                      default; tests set 1, a group per partner) */
    bool promotions_only;          /* true: only statement.promotions is computed (each
                                      promotion's lines, total, used_minor, last_day), from
                                      the promotions' pass over every partner; no line,
                                      partner total or CSV (a payout summary's count of
                                      later periods, `promotion list`) */
} acr_comm_output_t;

/* One statement line. Strings are owned by the statement. */
typedef struct acr_line {
    const char *partner_id;
    int32_t origin_period;  /* period index */
    uint8_t kind;           /* acr_line_kind_t */
    const char *source_id;  /* sale id, refund/adjustment event id, or period id */
    uint64_t source_seq;    /* 0 = empty (target_bonus, cap) */
    int64_t at_ms;          /* meaningful only when source_seq != 0 */
    const char *rule;       /* "plan@v#i", "plan@v" or "" */
    int64_t basis_minor;
    int64_t amount_minor;
    char currency[4];
    uint32_t line_no;       /* 1-based within the partner */
} acr_line_t;

typedef struct acr_partner_total {
    const char *partner_id;
    char currency[4];
    int64_t by_kind_minor[ACR_LINE__COUNT];
    int64_t prior_period_minor; /* lines whose origin_period != the run's period */
    int64_t total_minor;
    acr_i128_t window_minor;    /* with acr_comm_output_t.window: lines whose origin_period
                                   is >= window_lo (else 0) */
    uint32_t line_count;
} acr_partner_total_t;

typedef struct acr_unplanned {
    const char *sale_id;
    const char *partner_id;
    int32_t origin_period;
} acr_unplanned_t;

typedef struct acr_currency_total {
    char currency[4];
    int64_t total_minor;
} acr_currency_total_t;

/* A promotion with lines in the run (program.md: summary.json per promotion). */
typedef struct acr_promo_total {
    const char *promo_id;
    const char *title;       /* "" when the document has none */
    const char *plan_id;
    uint32_t lines;          /* promotion lines of this statement */
    int64_t total_minor;     /* their sum */
    bool has_budget;
    int64_t budget_minor;
    int64_t used_minor;      /* paid by the sales with origin <= the run's period, as of X;
                                a payout's summary: by every sale of the log, as of X */
    int32_t last_day;        /* local day: `to`, lowered by promotion.ended, as of X */
} acr_promo_total_t;

typedef struct acr_statement {
    int32_t period;          /* the run's period index */
    acr_line_t *lines;       /* in statement order; NULL with omit_lines */
    size_t line_count;
    char *csv;               /* the exact statement bytes (header included); NULL when
                                streamed to a csv_write sink (csv_len is still the byte count) */
    size_t csv_len;
    char fingerprint[33];    /* XXH3-128 of csv, lowercase hex, canonical */
    acr_partner_total_t *partners; /* sorted by partner_id, only partners with lines */
    size_t partner_count;
    acr_unplanned_t *unplanned;    /* unplanned sales with origin <= run period */
    size_t unplanned_count;
    char **plans_used;       /* "plan_id@version" strings that produced lines, sorted */
    size_t plans_used_count;
    acr_currency_total_t *currency_totals; /* sorted by currency */
    size_t currency_count;
    acr_promo_total_t *promotions; /* every promotion fed, in publishing order */
    size_t promotion_count;
    void *arena;             /* private: owns the strings */
} acr_statement_t;

typedef struct acr_comm acr_comm_t;

/* NULL on out of memory. */
acr_comm_t *acr_comm_new(const acr_comm_config_t *cfg);
void acr_comm_free(acr_comm_t *c);
/* Sets the output controls (before acr_comm_finish). */
void acr_comm_set_output(acr_comm_t *c, const acr_comm_output_t *o);
/* Sizes the sale-id and customer tables for about `sales` sales and `customers` customers
 * before the first event (a caller that knows them, such as the ledger's own counts): the
 * feed then neither doubles nor rehashes them on the way. A hint only: wrong or 0 changes
 * no result, a table that fills up still grows, and a failed allocation is left to it. */
void acr_comm_reserve(acr_comm_t *c, size_t sales, size_t customers);
/* Feeds the sales dated after the run's period up to the end of `period` too, for the
 * promotions' budgets alone (program.md: a budget is spent over the whole log, in (at, seq)
 * order, and a summary gives each promotion's use as of X): they get no line, are neither a
 * customer's first sale nor a refund's sale (no table holds them), and come after every
 * sale of the run in that order, so the run's lines are what they would be without them,
 * while each promotion's used_minor counts them. A caller that reads them anyway (a full
 * scan) spares a second run over the log. Before the first event; a period <= the run's
 * changes nothing. */
void acr_comm_budgets_through(acr_comm_t *c, int32_t period);

/* Feeds the next event (seq order, seq <= through_seq). Events the processor
 * does not need are ignored. Errors: ACR_ENOMEM, ACR_ECORRUPT (a stored plan
 * that no longer parses), ACR_EOVERFLOW. */
int acr_comm_feed(acr_comm_t *c, const acr_event_t *ev, acr_err_t *err);

/* The event types acr_comm_feed uses (bit 1u << type); a caller may skip feeding the
 * others (they are ignored). period.closed is included: its statement follows it. */
#define ACR_COMM_TYPE_MASK                                                                         \
    ((1u << ACR_EV_PARTNER_REGISTERED) | (1u << ACR_EV_PARTNER_UPDATED) |                         \
     (1u << ACR_EV_SALE_RECORDED) | (1u << ACR_EV_SALE_REFUNDED) |                                 \
     (1u << ACR_EV_PLAN_PUBLISHED) | (1u << ACR_EV_ADJUSTMENT_RECORDED) |                          \
     (1u << ACR_EV_PERIOD_CLOSED) | (1u << ACR_EV_TRAINING_COMPLETED) |                            \
     (1u << ACR_EV_ONBOARDING_DEFINED) | (1u << ACR_EV_PROMOTION_PUBLISHED) |                      \
     (1u << ACR_EV_PROMOTION_ENDED))

/* Feeds evs[0..n) in order, exactly like n acr_comm_feed calls, but hashes the ids of the
 * whole batch first and prefetches their table slots (a replay's cache misses overlap).
 * Stops at the first error. A period.closed must be the last event of its batch, so that
 * its acr_comm_add_closed comes before the next event. */
int acr_comm_feed_batch(acr_comm_t *c, const acr_event_t *evs, size_t n, acr_err_t *err);

/* Adds the statement CSV stored by a close (the one whose period.closed was
 * just fed). Its lines count as paid. The bytes are read where they lie, each
 * partner's lines when the finish computes that partner: they must stay valid
 * and unchanged until acr_comm_finish returns. ACR_ECORRUPT when a line has no
 * newline, no partner_id or one out of order (here), or does not parse (then
 * from acr_comm_finish). */
int acr_comm_add_closed(acr_comm_t *c, const char *csv, size_t len, acr_err_t *err);

/* Adds an unpublished plan version for a what-if run, taken as published
 * after every fed event, in call order. Validated like plan.published:
 * invalid_plan, above_ceiling, stale_version, currency_mismatch. */
int acr_comm_add_whatif_plan(acr_comm_t *c, const char *json, size_t len, acr_err_t *err);

/* Computes the statement. ACR_EOVERFLOW (partner and period in err), ACR_ENOMEM. */
int acr_comm_finish(acr_comm_t *c, acr_statement_t *out, acr_err_t *err);

void acr_statement_destroy(acr_statement_t *s);

/* The statement CSV header line, with its newline. */
extern const char ACR_STATEMENT_HEADER[];

#endif
