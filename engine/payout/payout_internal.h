/* payout_internal.h - what engine/payout offers the parts above it: the payout driver's
 * run of the commission processor over a snapshot, for the KPI query (engine/query), so
 * the log is replayed into the processor in one place only. Nothing outside engine/
 * includes it (docs/architecture.md). */
#ifndef ACCRUE_ENGINE_PAYOUT_INTERNAL_H
#define ACCRUE_ENGINE_PAYOUT_INTERNAL_H

#include <stdint.h>

#include "accrue/commission.h"
#include "../store/store_internal.h"

/* The commission processor's statement for run period `period` over events
 * 1..through_seq of r's snapshot, fed through the payout driver's pipeline
 * without the statements of closes: for every origin period up to `period`,
 * the lines as of through_seq as if nothing had been paid. o (NULL: the
 * default) says what the statement keeps (the KPI asks for sums only). Moves
 * r's position. 0 with *out filled (acr_statement_destroy it), or
 * ACR_ECHAIN_BROKEN, ACR_EOVERFLOW, ACR_ENOMEM, an LMDB error. */
int acr__payout_lines_ignoring_closes(const acr_ledger_t *l, acr_reader_t *r, int32_t period,
                                      uint64_t through_seq, const acr_comm_output_t *o,
                                      acr_statement_t *out, acr_err_t *err);

#endif
