/* log_internal.h - what engine/log (the ledger's lifecycle and its write path) offers the
 * parts above it: the one engine-written append, a period's close. Nothing outside engine/
 * includes it (docs/architecture.md). */
#ifndef ACCRUE_ENGINE_LOG_INTERNAL_H
#define ACCRUE_ENGINE_LOG_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../store/store_internal.h"

struct acr_idem;

/* Appends one engine-written event (period.closed, with the closer's actor; NULL =
 * "accrue") plus the statement bytes of its close in one durable write transaction,
 * checking first that the head is still expect_head (else ACR_EVERSION_CONFLICT: the
 * caller recomputes and retries). */
int acr__append_close(acr_ledger_t *ledger, uint64_t expect_head, const acr_event_t *ev,
                      const char *actor, const char *period_id, const char *csv,
                      size_t csv_len, struct acr_idem *idem, uint64_t *out_seq,
                      acr_err_t *err);

/* ---- the program's promotions, for the payout driver (promo_reach.c) ------------------ */

/* The promotions of the program table in stxn (every promotion of the snapshot: a superset
 * of those with seq <= X) as seen from run period `period`: *out_to, the last period any
 * may reach (its `to`, an upper bound of its last day whatever promotion.ended says;
 * INT32_MIN when there is none), and *out_spans, whether one runs both within or before
 * `period` and after it (a run's summary then wants the later periods' sales for its
 * budget). 0 or an error (err set). */
int acr__promo_reach(const acr_ledger_t *l, MDB_txn *stxn, int32_t period, int32_t *out_to,
                     bool *out_spans, acr_err_t *err);

/* ---- idempotency keys (idem.c; the records of idem.h) -------------------------------- */

/* Looks idem's key up in txn: state NEW (absent or expired), REPLAY (answer copied) or
 * CONFLICT. MDB codes (MDB_CORRUPTED for a row that does not decode). */
int acr__idem_get(MDB_txn *txn, MDB_dbi dbi, struct acr_idem *idem, int64_t now_ms);
/* true when idem's answer may be stored (size, status and content type in bounds). */
bool acr__idem_fits(const struct acr_idem *idem);
/* Writes idem's row (its answer) made at now_ms. MDB codes. */
int acr__idem_put(MDB_txn *txn, MDB_dbi dbi, const struct acr_idem *idem, int64_t now_ms);
/* Deletes the expired rows among the next few after the last scan's position. MDB codes. */
int acr__idem_prune(acr_ledger_t *ledger, MDB_txn *txn, int64_t now_ms);

/* ---- the two environments kept in step (layout.c) ----------------------------------- */

/* Applies the stored event ev (its seq, version and engine fields as logged) to the state of
 * tx as its append did: the id claimed, the stream's version the next, every rule. A rule it
 * no longer passes is ACR_EMISMATCH. */
int acr__apply_stored(acr__txn_t *tx, const acr_event_t *ev, const uint8_t prev[ACR_HASH_LEN],
                      const uint8_t *entry, size_t len, acr_err_t *err);
/* Applies the log records of tx->ltxn after `applied` through `head` to tx's state and
 * moves the APPLIED marker to head (nothing when they are equal; a marker the log does not
 * hold is ACR_ECORRUPT). */
int acr__catch_up(acr__txn_t *tx, const acr__head_t *applied, const acr__head_t *head,
                  acr_err_t *err);
/* At open: when the marker trails the log, catches up in a write transaction of its own. */
int acr__catch_up_open(acr_ledger_t *l, acr_err_t *err);
/* acr_ledger_create with extra(txn, dbi, arg), when not NULL, run in the transaction that
 * writes the config (the log environment's first): what it writes exists exactly when the
 * ledger does (a replica's marker). An LMDB code from extra aborts the create. */
int acr__ledger_create(const char *dir, const acr_config_t *cfg, uint64_t map_size_bytes,
                       int (*extra)(MDB_txn *txn, const MDB_dbi *dbi, void *arg), void *arg,
                       acr_err_t *err);
/* Upgrades the single environment `old` of an earlier release at dir to the two-environment
 * layout (layout.c); cfg gets its config. 0 also when another process did it first. */
int acr__upgrade(const char *dir, MDB_env *old, acr_config_t *cfg, acr_err_t *err);
/* The config record: 24 bytes (format, period kind, UTC offset, ledger id); decoding
 * answers ACR_ECORRUPT when it is not one. */
void acr__config_encode(const acr_config_t *cfg, uint8_t out[24]);
int acr__config_decode(const MDB_val *v, acr_config_t *cfg);

/* Re-applies every stored event with seq <= head into the derived tables of
 * tx (which must be empty), used by rebuild and verify (maintain.c). */
int acr__replay_into(acr_ledger_t *ledger, MDB_txn *read_txn, acr__txn_t *tx,
                     void (*progress)(uint64_t done, uint64_t total), acr_err_t *err);

#endif
