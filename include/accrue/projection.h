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

/* JSON array of partner objects sorted by partner_id: partner_id, name, kind,
 * tier, status, plan_id, currency, region, source, reps [{rep_id,name}],
 * training [{module, rep_id, date}]. With partner_id: a single object, or
 * ACR_ENOT_FOUND. */
int acr_query_partners(acr_ledger_t *ledger, const char *partner_id, acr_buf_t *out,
                       acr_err_t *err);

/* One deal object with its stage history, or ACR_ENOT_FOUND. */
int acr_query_deal(acr_ledger_t *ledger, const char *deal_id, acr_buf_t *out, acr_err_t *err);

/* `accrue pipeline --format json`: array of {partner_id, stage, deals,
 * amount_minor, currency, oldest_days} sorted by partner_id then stage order;
 * ages counted to today_day (a local day number). partner_id may be NULL. */
int acr_query_pipeline(acr_ledger_t *ledger, const char *partner_id, int32_t today_day,
                       acr_buf_t *out, acr_err_t *err);

/* `accrue kpi --format json` (cli.md), per partner or, with by_rep, per
 * (partner, rep). period_id is a month or a quarter id whatever the ledger's
 * period kind. partner_id may be NULL. */
int acr_query_kpi(acr_ledger_t *ledger, const char *period_id, const char *partner_id,
                  bool by_rep, acr_buf_t *out, acr_err_t *err);

#endif
