/* payout.h - payout runs over a ledger: run, close, audit, list.
 *
 * The glue between the log and the pure commission processor: reads a
 * snapshot, feeds the events with seq <= through_seq and the statements of
 * the closes before it, and, for a close, appends period.closed and stores
 * the statement bytes in the same write transaction (commissions.md).
 */
#ifndef ACCRUE_PAYOUT_H
#define ACCRUE_PAYOUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "accrue/buf.h"
#include "accrue/commission.h"
#include "accrue/error.h"
#include "accrue/limits.h"
#include "accrue/log.h"

typedef struct acr_payout_request {
    const char *period_id;             /* "2026-07" / "2026-Q3", the ledger's kind */
    uint64_t as_of_seq;                /* 0 = the head */
    const char *const *whatif_plans;   /* plan documents (JSON text) for a what-if run */
    const size_t *whatif_plan_lens;
    size_t whatif_plan_count;
} acr_payout_request_t;

#define ACR_WHATIF_LABELS_MAX 16 /* what-if plan labels kept for the output (all are used) */

typedef struct acr_payout {
    acr_statement_t stmt;          /* lines, csv, fingerprint, totals, unplanned */
    char period_id[ACR_PERIOD_ID_MAX];
    uint64_t through_seq;          /* X */
    uint8_t chain_hash[ACR_HASH_LEN]; /* hash(X) */
    bool reproduces_close;         /* the period was closed as of the request: this is its close */
    acr_period_kind_t period_kind;
    int32_t utc_offset_min;
    size_t whatif_count;           /* unpublished plan versions this run took (0: not a what-if) */
    char whatif_plans[ACR_WHATIF_LABELS_MAX][80]; /* their "plan_id@version", in order */
} acr_payout_t;

/* Computes the run of a period (a draft; writes nothing). For a period
 * closed as of the request, the reproduction of that close. Errors:
 * ACR_EUSAGE (bad period id or as-of beyond head), ACR_ECHAIN_BROKEN,
 * ACR_EOVERFLOW, what-if plan errors (invalid_plan, stale_version, ...). */
int acr_payout_run(acr_ledger_t *ledger, const acr_payout_request_t *req, acr_payout_t *out,
                   acr_err_t *err);

/* acr_payout_run with output controls (o may be NULL: the default). With o->csv_write the
 * statement CSV is streamed to it during the run (out->stmt.csv stays NULL, csv_len and the
 * fingerprint describe the bytes written; on an error the sink may have received part of
 * them); with o->omit_lines out->stmt.lines stays NULL. Totals, partners, unplanned and
 * plans_used are kept either way, so acr_payout_summary_json works; acr_payout_table
 * needs the lines. */
int acr_payout_run_with_output(acr_ledger_t *ledger, const acr_payout_request_t *req,
                               const acr_comm_output_t *o, acr_payout_t *out, acr_err_t *err);

/* What a close needs besides the ledger. The engine never reads a clock: the
 * command that closes passes its wall clock in now_ms (commissions.md, Closing). */
typedef struct acr_close_request {
    const char *period_id; /* "2026-07" / "2026-Q3", the ledger's kind */
    int64_t now_ms;        /* the caller's wall clock, UTC ms */
    bool force;            /* close even though the period has not ended by now_ms */
    const char *actor;     /* who closes (events.md `actor`), NULL = "accrue" */
    bool omit_lines;       /* out->stmt.lines stays NULL (the CSV is always kept: it is
                              stored by the close) */
    struct acr_idem *idem; /* optional Idempotency-Key (idem.h): its answer is stored in the
                              close's transaction (formatted with out filled); NULL = none */
} acr_close_request_t;

/* Closes a period as of the head: refuses ACR_EPERIOD_OPEN (the period's end, its
 * local midnight, is after req->now_ms and !req->force; err names the end),
 * ACR_EPERIOD_CLOSED, ACR_EPERIOD_ORDER, ACR_EUNPLANNED_SALES (exit 4) and a chain
 * that does not verify (ACR_ECHAIN_BROKEN, exit 5); appends period.closed
 * (*out_close_seq) and stores the statement bytes in one write transaction. */
int acr_payout_close(acr_ledger_t *ledger, const acr_close_request_t *req, acr_payout_t *out,
                     uint64_t *out_close_seq, acr_err_t *err);

typedef struct acr_audit {
    char recorded_fingerprint[33];
    bool match;                    /* identical bytes and fingerprint */
    uint64_t first_diff_line;      /* 1-based CSV line (header = 1) of the first difference */
    char recorded_line[512];       /* that line in the stored statement ("" past its end) */
    char computed_line[512];       /* that line as recomputed ("" past its end) */
} acr_audit_t;

/* Recomputes a closed period as of its recorded through_seq and compares with
 * the stored statement. 0 with audit->match set either way; ACR_ENOT_FOUND
 * when the period is not closed. */
int acr_payout_audit(acr_ledger_t *ledger, const char *period_id, acr_payout_t *out,
                     acr_audit_t *audit, acr_err_t *err);

typedef struct acr_close_info {
    char period_id[ACR_PERIOD_ID_MAX];
    uint64_t seq;          /* seq of the period.closed event */
    uint64_t through_seq;
    uint64_t lines;
    char fingerprint[33];
    char totals_json[512]; /* {"JPY":12345,...} */
} acr_close_info_t;

/* Closed periods in close order (malloc'd array, free() it). */
int acr_payout_list(acr_ledger_t *ledger, acr_close_info_t **out, size_t *out_count,
                    acr_err_t *err);

void acr_payout_destroy(acr_payout_t *p);

/* summary.json of commissions.md / cli.md. A what-if run adds "what_if": true and
 * "what_if_plans": ["plan_id@version", ...] (the unpublished versions it took). */
int acr_payout_summary_json(const acr_payout_t *p, acr_buf_t *out);

/* A partner's display name for human tables (NULL or "" when unknown). */
typedef const char *(*acr_partner_name_fn)(void *arg, const char *partner_id);

/* The human table: one block per partner (its name beside its id when name_of gives
 * one; times in the ledger's business time zone), then the fingerprint. A what-if run
 * says so in its first line. name_of may be NULL. */
int acr_payout_table(const acr_payout_t *p, acr_partner_name_fn name_of, void *arg,
                     acr_buf_t *out);
/* Per-partner totals only (partner, name, currency, lines, prior-period, total), one row
 * each, then the totals per currency and the fingerprint: the view of a large run. Works
 * on a run made with omit_lines. */
int acr_payout_totals_table(const acr_payout_t *p, acr_partner_name_fn name_of, void *arg,
                            acr_buf_t *out);

#endif
