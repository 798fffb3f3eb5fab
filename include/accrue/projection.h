/* projection.h - read models derived from the log: partners, deals,
 * pipeline, KPIs (issue: projections). Kept in LMDB tables updated in the
 * same write transaction as every append, rebuilt byte-identically by
 * acr_ledger_rebuild and checked by acr_ledger_verify.
 *
 * Queries answer in JSON (the machine form of cli.md / http.md); the CLI
 * renders tables and CSV from it. Each query reads one snapshot.
 */
#ifndef ACCRUE_PROJECTION_H
#define ACCRUE_PROJECTION_H

#include <stdbool.h>
#include <stdint.h>

#include "accrue/buf.h"
#include "accrue/error.h"
#include "accrue/log.h"

/* Every query reads one snapshot, appends its JSON (no trailing newline) to
 * out (the caller's buffer; on error out is left as it was) and returns 0 or
 * a negative ACR_E* with err set: ACR_ENOT_FOUND (unknown id), ACR_EUSAGE (bad
 * period id), ACR_EOVERFLOW (a sum beyond int64), ACR_ECORRUPT (a damaged
 * row), ACR_ENOMEM, or a store error. Field semantics: docs/pipeline-and-kpis.md. */

/* Partner objects, keys in this order: partner_id, name, kind, tier, status,
 * plan_id, currency, region (null when none), source (null when none), reps
 * [{rep_id, name}] by rep_id, training [{module, rep_id (null), date}] in log
 * order. NULL partner_id: a JSON array sorted by partner_id bytewise; else the
 * single object, or ACR_ENOT_FOUND. */
int acr_query_partners(acr_ledger_t *ledger, const char *partner_id, acr_buf_t *out,
                       acr_err_t *err);

/* One deal object: deal_id, partner_id, customer_id, name, currency,
 * amount_minor, expected_close (YYYY-MM-DD), rep_id (each null when unknown),
 * stage, outcome (null | "won" | "lost"), registered_at, closed_at (null while
 * open), reason, history [{stage, at}] (registration, then every stage
 * change). ACR_ENOT_FOUND for an unknown deal. */
int acr_query_deal(acr_ledger_t *ledger, const char *deal_id, acr_buf_t *out, acr_err_t *err);

/* `accrue pipeline --format json`: array of {partner_id, stage, deals,
 * amount_minor, currency, oldest_days} for each (partner, stage) holding open
 * deals, sorted by partner_id then the current pipeline's stage order; stages
 * a later pipeline.defined removed follow, by name. Ages are counted to
 * today_day (a local day number). partner_id may be NULL (all partners); an
 * unknown one is ACR_ENOT_FOUND. */
int acr_query_pipeline(acr_ledger_t *ledger, const char *partner_id, int32_t today_day,
                       acr_buf_t *out, acr_err_t *err);

/* `accrue kpi --format json` (cli.md), per partner or, with by_rep, per
 * (partner, rep). period_id is a month or a quarter id whatever the ledger's
 * period kind (else ACR_EUSAGE). partner_id may be NULL; an unknown one is
 * ACR_ENOT_FOUND. commission_minor runs the commission processor over the
 * whole snapshot (seconds per million events), unless this ledger handle
 * already did for the same window and no event since reaches it (the KPI memo,
 * engine/query/kpi_memo.c; not used with by_rep); the rest reads counters. */
int acr_query_kpi(acr_ledger_t *ledger, const char *period_id, const char *partner_id,
                  bool by_rep, acr_buf_t *out, acr_err_t *err);
/* KPI commission sums answered from the memo, and computed, since ledger was opened. */
void acr_query_kpi_memo_stats(acr_ledger_t *ledger, uint64_t *hits, uint64_t *misses);

/* The open deals (engine's proj_open_deals), for lists: {"stages":[{name,
 * exit_requires}] (the current pipeline, in order), "deals":[{deal_id,
 * partner_id, customer_id, name, currency, amount_minor, expected_close,
 * rep_id, stage, registered_at, entered_stage_on}], "matched", "offset", "truncated"}
 * ordered by partner_id, stage name, deal_id: the matching rows from the offset-th (0-based)
 * on, at most limit of them (matched counts them all; truncated says rows follow the page).
 * partner_id and stage may be NULL (every partner, every stage); an unknown partner is
 * ACR_ENOT_FOUND. Reads the open-deal index only: bounded by the open deals, never by the
 * log. */
int acr_query_open_deals(acr_ledger_t *ledger, const char *partner_id, const char *stage,
                         uint64_t offset, uint64_t limit, acr_buf_t *out, acr_err_t *err);

#endif
