/* log.h - the ledger: an append-only, hash-chained event log in LMDB.
 *
 * One LMDB environment (a directory) per ledger. Events are stored under
 * 8-byte big-endian seq keys, gapless from 1, as [16-byte chain hash][record]
 * (event.h). hash(n) = XXH3_128(hash(n-1) BE || record n), hash(0) =
 * XXH3_128(ledger id). The state that validation needs (partners, deals,
 * sales, customers with open deals, plans, pipeline, streams, ids) lives in
 * LMDB tables updated in the same write transaction as the append, so a
 * batch is atomic: every event or none.
 *
 * Threads: one acr_ledger_t may be shared by threads. Appends serialise on
 * LMDB's writer lock and must begin and commit on one thread (they do: each
 * append call is one transaction). Readers (acr_reader_t) use MDB_NOTLS
 * read transactions and run concurrently with the writer.
 */
#ifndef ACCRUE_LOG_H
#define ACCRUE_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "accrue/buf.h"
#include "accrue/date.h"
#include "accrue/error.h"
#include "accrue/event.h"

/* Fixed at init. */
typedef struct acr_config {
    uint8_t ledger_id[16];         /* random at init; seeds the chain */
    acr_period_kind_t period_kind; /* month or quarter */
    int32_t utc_offset_min;        /* business day offset */
} acr_config_t;

typedef struct acr_ledger acr_ledger_t;

/* Creates a new ledger in dir (created if missing; must not hold a ledger: ACR_EEXISTS;
 * the files of a create cut short, acr_ledger_unfinished, are replaced). map_size_bytes 0 =
 * ACR_MAP_SIZE_DEFAULT. Writes the config and the default pipeline (events.md) in one
 * transaction. */
int acr_ledger_create(const char *dir, const acr_config_t *cfg, uint64_t map_size_bytes,
                      acr_err_t *err);

/* 1 when dir's data.mdb is what a create cut short left (a process killed during `init`
 * or the first step of `follow`): no config and no event. acr_ledger_create then replaces
 * those files instead of refusing them. 0 when it is anything else, else an error. */
int acr_ledger_unfinished(const char *dir, acr_err_t *err);

/* Opens an existing ledger (ACR_ENO_LEDGER when dir holds none). */
int acr_ledger_open(const char *dir, acr_ledger_t **out, acr_err_t *err);
void acr_ledger_close(acr_ledger_t *ledger);
const acr_config_t *acr_ledger_config(const acr_ledger_t *ledger);
/* The id of the last write transaction committed to the ledger by any process (LMDB's
 * me_last_txnid, read from the shared meta pages: no I/O, no lock wait). It changes
 * whenever anything commits, so a server notices appends made by other processes (an
 * `accrue append` beside `accrue serve`). 0 when it cannot be read right now (the map is
 * being resized): ask again later. */
uint64_t acr_ledger_last_txnid(acr_ledger_t *ledger);
const char *acr_ledger_path(const acr_ledger_t *ledger);

/* ---- Batches ------------------------------------------------------------ */

/* Events parsed and checked statelessly, waiting to be appended as one
 * atomic batch. The caller owns it (init/destroy). */
typedef struct acr_batch {
    acr_buf_t records;   /* encoded records, back to back */
    struct acr_batch_item *items; /* per event: offset, length, line, expected_version */
    size_t count;        /* events in the batch */
    size_t items_cap;
    size_t offered;      /* events offered to it, valid or not */
    bool over_limit;     /* one was offered past ACR_BATCH_EVENTS_MAX (too_large): the
                          * input is refused for its size, whatever else is wrong in it */
    char actor[ACR_ACTOR_MAX + 1]; /* who appends it (events.md `actor`); "" = "accrue" */
} acr_batch_t;

typedef struct acr_batch_item {
    size_t off;               /* offset of the record in records */
    uint32_t len;             /* record length */
    uint64_t line;            /* 1-based line (or array index + 1) in the input */
    int64_t expected_version; /* -1 when absent */
} acr_batch_item_t;

void acr_batch_init(acr_batch_t *b);
void acr_batch_destroy(acr_batch_t *b);
/* Empties the batch for reuse; keeps its actor. */
void acr_batch_reset(acr_batch_t *b);
/* Sets who appends the batch: "cli:<user>", "token:<name>" (events.md). Stored with
 * every event it commits, covered by the chain. Truncated to ACR_ACTOR_MAX bytes; a
 * byte outside printable ASCII becomes '?'. NULL or "" stands for "accrue" (the engine). */
void acr_batch_set_actor(acr_batch_t *b, const char *actor);

/* Parses one JSON event (stateless rules) and adds it. On error the batch is
 * unchanged and err has code, line, id and field. too_large past
 * ACR_BATCH_EVENTS_MAX events. */
int acr_batch_add_json(acr_batch_t *b, const acr_config_t *cfg, uint64_t line, const char *text,
                       size_t len, acr_err_t *err);
/* The same for one msgpack map at p (sets *consumed). */
int acr_batch_add_msgpack(acr_batch_t *b, const acr_config_t *cfg, uint64_t line,
                          const uint8_t *p, size_t len, size_t *consumed, acr_err_t *err);

typedef struct acr_append_result {
    uint64_t first_seq;  /* first new seq (0 when nothing new) */
    uint64_t last_seq;   /* last new seq (0 when nothing new) */
    uint64_t appended;   /* new events written */
    uint64_t duplicates; /* idempotent resubmissions (no-ops) */
    uint64_t *seqs;      /* optional, caller-provided array of count entries: the seq of
                            each event (the original seq for a duplicate); NULL to skip */
} acr_append_result_t;

/* Appends the batch as one durable (fsync'd) write transaction, applying
 * every stateful rule of events.md in order (events may depend on earlier
 * events of the batch). On any error nothing is written, errs holds every
 * invalid event (up to 100, with line, id, field, code) and the first code is
 * returned. A full map is grown and the transaction retried; ACR_ELEDGER_FULL
 * only when the disk is full. */
int acr_ledger_append(acr_ledger_t *ledger, const acr_batch_t *batch, acr_append_result_t *out,
                      acr_errlist_t *errs);

/* Checks every stateful rule of the batch exactly as acr_ledger_append would, in a
 * write transaction that is always aborted: nothing is written. 0 when the batch would
 * be accepted, else the first code with errs filled as by acr_ledger_append. Used to
 * report the rule errors of the events that parsed when others of the same input did
 * not (a rejected batch reports every error: events.md, Batches). */
int acr_ledger_check(acr_ledger_t *ledger, const acr_batch_t *batch, acr_errlist_t *errs);
/* An input whose stateless errors are in errs (in line order) and whose events that did
 * parse are in batch: adds those events' rule errors (acr_ledger_check: nothing is written),
 * merged in line order, so one answer reports every error; an event that depends on a
 * rejected one (a sale of a partner whose registration did not parse) is reported too. The
 * command line's append and the server's POST /v1/events both answer this way. errs is
 * left as it was when the check fails for another reason. */
void acr_ledger_add_rule_errors(acr_ledger_t *ledger, const acr_batch_t *batch,
                                acr_errlist_t *errs);

/* Group commit: applies each batch as its own atomic unit (a nested
 * transaction) inside one write transaction committed once. results[i] and
 * errs[i] describe batch i; rcs[i] is its code (0 = committed). Returns 0
 * when the commit succeeded (even if some batches were rejected), else the
 * commit's error (then nothing was written: every rcs[i] is set to it). */
int acr_ledger_append_group(acr_ledger_t *ledger, const acr_batch_t *const *batches, size_t n,
                            acr_append_result_t *results, acr_errlist_t *errs, int *rcs);

/* Appends one engine-written event (period.closed) together with extra table
 * writes done by the callback inside the same transaction. Internal to the
 * engine's payout module; see payout.h. */

/* ---- Reading ------------------------------------------------------------ */

typedef struct acr_reader acr_reader_t;

/* A read snapshot (MDB_NOTLS read transaction): sees the log and every table
 * as of one commit. Slices returned by reads stay valid until close. */
int acr_reader_open(acr_ledger_t *ledger, acr_reader_t **out, acr_err_t *err);
void acr_reader_close(acr_reader_t *r);

/* Head of the snapshot: last seq (0 for an empty log) and its chain hash. */
uint64_t acr_reader_head_seq(const acr_reader_t *r);
void acr_reader_head_hash(const acr_reader_t *r, uint8_t out[ACR_HASH_LEN]);

/* Positions the cursor so the next acr_reader_next returns seq (>= 1). */
int acr_reader_seek(acr_reader_t *r, uint64_t seq, acr_err_t *err);
/* Reads the next event in seq order, checking its chain hash against its
 * predecessor's and its record's well-formedness. Returns 1 with *out filled
 * (zero-copy; out_hash may be NULL), 0 at the end, ACR_ECHAIN_BROKEN or
 * ACR_ECORRUPT (err names the seq). */
int acr_reader_next(acr_reader_t *r, acr_event_t *out, uint8_t out_hash[ACR_HASH_LEN],
                    acr_err_t *err);
/* The chain hash stored at seq (hash(0) for seq 0). */
int acr_reader_hash_at(acr_reader_t *r, uint64_t seq, uint8_t out[ACR_HASH_LEN], acr_err_t *err);
/* The stored statement CSV of a period closed in the snapshot (by period id), checked
 * against the fingerprint its period.closed recorded (copied to out_fingerprint, 32 hex
 * digits + NUL, unless NULL): ACR_ENOT_FOUND when not closed, ACR_EMISMATCH when the bytes
 * were damaged (`accrue verify` names them). */
int acr_reader_statement(acr_reader_t *r, const char *period_id, const char **out_csv,
                         size_t *out_len, char *out_fingerprint, acr_err_t *err);

/* Formats 16 hash bytes as 32 lowercase hex digits + NUL. */
void acr_hash_hex(const uint8_t hash[ACR_HASH_LEN], char out[33]);

/* ---- Whole-ledger operations -------------------------------------------- */

typedef struct acr_verify_result {
    uint64_t events;                /* events checked */
    uint8_t head_hash[ACR_HASH_LEN];
    uint64_t bad_seq;               /* first bad seq, 0 when the chain is intact */
    char bad_table[32];             /* first projection table that differs, "" when none */
    char bad_key[128];              /* its first differing row key (printable) */
    uint64_t statements;            /* stored closed statements checked */
    bool period_index_stale;        /* period_seqs not built for this log (a ledger of an older
                                       release): not compared; runs scan the log until
                                       `accrue rebuild` builds it */
} acr_verify_result_t;

/* Recomputes the chain from the stored bytes, compares every state / projection
 * table with a fresh replay, and checks that each stored closed statement hashes to
 * the fingerprint its period.closed recorded (bad_table "closes", bad_key the period).
 * 0 when all is well; ACR_ECHAIN_BROKEN (bad_seq set) or ACR_EMISMATCH
 * (bad_table/bad_key set). progress may be NULL. */
int acr_ledger_verify(acr_ledger_t *ledger, acr_verify_result_t *out,
                      void (*progress)(uint64_t done, uint64_t total), acr_err_t *err);

/* The same without the replay: the chain, each derived table against the digest its writes
 * kept (a row changed, added or lost by anything but the write path: bad_table set, bad_key
 * "-"), and the stored statements. It does not re-derive the tables from the log: a wrong
 * rule, or a table written consistently wrong, needs acr_ledger_verify. (acr_ledger_verify
 * checks the digests too.) */
int acr_ledger_verify_fast(acr_ledger_t *ledger, acr_verify_result_t *out,
                           void (*progress)(uint64_t done, uint64_t total), acr_err_t *err);

/* Recomputes every state / projection table from the log in one transaction. */
int acr_ledger_rebuild(acr_ledger_t *ledger, void (*progress)(uint64_t done, uint64_t total),
                       acr_err_t *err);

typedef struct acr_stats {
    uint64_t events;
    uint64_t by_type[ACR_EV__COUNT];
    uint64_t head_seq;
    uint8_t head_hash[ACR_HASH_LEN];
    uint64_t file_bytes;   /* data.mdb size on disk */
    uint64_t map_bytes;    /* current map size */
    uint64_t used_bytes;   /* pages in use * page size */
} acr_stats_t;

int acr_ledger_stats(acr_ledger_t *ledger, acr_stats_t *out, acr_err_t *err);

/* Consistent compacted copy into dest_dir (created if missing, must be empty). */
int acr_ledger_backup(acr_ledger_t *ledger, const char *dest_dir, acr_err_t *err);

#endif
