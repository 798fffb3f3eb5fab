/* state_internal.h - what engine/state (validation) offers the parts above it: the state
 * machine of events.md applied inside a write transaction, and the stage list it checks
 * deal moves against. Nothing outside engine/ includes it (docs/architecture.md). */
#ifndef ACCRUE_ENGINE_STATE_INTERNAL_H
#define ACCRUE_ENGINE_STATE_INTERNAL_H

#include <stddef.h>

#include "../store/store_internal.h"

/* Parses a stored stage list JSON into p (0 or ACR_ECORRUPT). */
int acr__pipeline_parse(const char *json, size_t len, acr__pipeline_t *p);
/* The default pipeline of events.md, as stage list JSON. */
extern const char ACR__DEFAULT_PIPELINE_JSON[];

/* Checks every stateful rule of events.md for ev against the state in tx and,
 * when valid, applies it to the state and projection tables. On a rule
 * violation returns its code with err set (field, message) and changes
 * nothing. Other codes (ACR_ESTORE, map full...) abort the transaction. */
int acr__state_apply(acr__txn_t *tx, const acr_event_t *ev, acr_err_t *err);

/* The event acr__state_apply accepted last is in the log as `entry` (its chain hash, then
 * its record: the log's value, len bytes), after the chain hash `prev` of seq - 1: writes
 * the state's rows that hold a copy of it (period_seqs, store_internal.h). Every caller of
 * acr__state_apply calls it once the event is logged (append: after writing the record;
 * replay, catch-up, a replica: with the stored value). 0 or ACR_ENOMEM / a store error. */
int acr__state_logged(acr__txn_t *tx, uint64_t seq, const uint8_t prev[ACR_HASH_LEN],
                      const uint8_t *entry, size_t len, acr_err_t *err);
/* Or: the event acr__state_apply accepted last will not be logged (its batch is refused):
 * forgets what acr__state_logged would have written. */
void acr__state_not_logged(acr__txn_t *tx);

/* A replay into an empty scratch environment (rebuild, verify) collects the period_seqs
 * rows in memory instead of inserting each one: acr__pseq_bulk_begin before the first
 * event, acr__pseq_bulk_end after the last (writes them in key order, appended where the
 * table allows, and ends the collection), acr__pseq_bulk_abort on any failure. Each row
 * of a period comes in seq order, so the lists need no sort. 0 or ACR_ENOMEM / a store
 * error (err set). */
int acr__pseq_bulk_begin(acr__txn_t *tx, acr_err_t *err);
int acr__pseq_bulk_end(acr__txn_t *tx, acr_err_t *err);
void acr__pseq_bulk_abort(acr__txn_t *tx);

#endif
