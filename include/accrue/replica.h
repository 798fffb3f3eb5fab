/* replica.h - the engine side of replication: reading the committed log as
 * stored (for a publisher), and a read replica that appends those records
 * byte for byte (reporting.md, `replicate` / `follow`).
 *
 * A publisher reads stored records (seq, the 16-byte chain hash and the
 * record, exactly the bytes of the log table) from a read snapshot, so it
 * never holds the writer's lock. A replica is a ledger whose config (ledger
 * id, period kind, UTC offset) is the primary's and whose `meta` table holds
 * a replica marker; every client write on it (append, plan publish, payout
 * close, over the CLI or HTTP) is refused with ACR_EREAD_ONLY. It grows only
 * through acr_replica_apply, which checks each record's link in the chain
 * before applying it with the primary's own rules, so its log, every derived
 * table and every stored statement end up identical to the primary's.
 */
#ifndef ACCRUE_REPLICA_H
#define ACCRUE_REPLICA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "accrue/error.h"
#include "accrue/event.h"
#include "accrue/log.h"

/* One stored record: the value of the log table at seq. */
typedef struct acr_stored {
    uint64_t seq;
    const uint8_t *bytes; /* chain hash (ACR_HASH_LEN bytes) || record */
    size_t len;           /* > ACR_HASH_LEN */
} acr_stored_t;

/* The ledger id as 32 lowercase hex digits + NUL (names the NATS stream and
 * message ids; `accrue stats` prints it). */
void acr_ledger_id_hex(const acr_ledger_t *ledger, char out[33]);

/* Reads up to max stored records of the snapshot r from seq `from` on (at
 * most its head), checking each one's chain link (ACR_ECHAIN_BROKEN names the
 * first bad seq; the good records before it are returned). Slices stay valid
 * until r is closed. *n = 0 when from is past the head. */
int acr_log_read_stored(acr_reader_t *r, uint64_t from, acr_stored_t *out, size_t max,
                        size_t *n, acr_err_t *err);

/* ---- Replicas ------------------------------------------------------------ */

#define ACR_REPLICA_NAME_MAX 64

typedef struct acr_replica_info {
    char stream[ACR_REPLICA_NAME_MAX];   /* the JetStream stream followed */
    char consumer[ACR_REPLICA_NAME_MAX]; /* this replica's durable consumer */
    uint64_t source_head;   /* the primary's head as last seen (stream's last seq) */
    int64_t source_head_ms; /* when it was seen (replica wall clock, ms) */
    int64_t applied_ms;     /* when the last batch was committed here (ms) */
    int64_t last_lag_ms;    /* commit here minus commit on the primary (recorded_at),
                               for the last record applied; -1 before any */
} acr_replica_info_t;

/* Creates a replica ledger in dir (as acr_ledger_create: dir must not hold a
 * ledger) with cfg (the primary's, ledger id included) and the marker. */
int acr_replica_create(const char *dir, const acr_config_t *cfg, const acr_replica_info_t *info,
                       acr_err_t *err);

/* Marks an existing, still empty ledger as a replica (finishing a creation
 * cut short). ACR_EEXISTS when its log is not empty. */
int acr_replica_adopt(acr_ledger_t *ledger, const acr_replica_info_t *info, acr_err_t *err);

/* 1 with *out filled when the ledger is a replica, 0 when it is not (out may be NULL). */
int acr_replica_get(acr_ledger_t *ledger, acr_replica_info_t *out, acr_err_t *err);

/* On a replica: 1 with the events it is behind the primary's head as last
 * seen on the stream, its lag (ms: 0 when it is not behind, else the lag of the
 * last record applied; -1 before any), and how long ago the primary's head was
 * last seen (ms, -1 never: a follower that stopped shows here, not in the lag);
 * 0 on a primary. For /metrics and monitoring. */
int acr_replica_lag(acr_ledger_t *ledger, uint64_t *events_behind, int64_t *lag_ms,
                    int64_t *seen_age_ms, acr_err_t *err);

/* Applies records (consecutive seqs, head+1 on; a prefix already applied is
 * skipped after checking it equals what is stored) in as few durable write
 * transactions as the batch allows: each record's hash must equal
 * XXH3-128(previous hash || record) (else ACR_ECHAIN_BROKEN), its id must be
 * new and its stream version the next (else ACR_EMISMATCH), and it must pass
 * every rule of events.md against the replica's state (else ACR_EMISMATCH).
 * A period.closed is applied in its own transaction after the statement of
 * its period has been recomputed as of its through_seq on the replica and
 * found to have the recorded fingerprint and line count (else ACR_EMISMATCH);
 * the statement bytes are stored with it, as the primary's close did.
 * source_head / source_head_ms (0: unchanged) update the marker in the same
 * transactions. *out_head is the head after the call (also on error: the
 * records before the failing one stay applied). */
int acr_replica_apply(acr_ledger_t *ledger, const acr_stored_t *recs, size_t n,
                      uint64_t source_head, int64_t source_head_ms, uint64_t *out_head,
                      acr_err_t *err);

#endif
