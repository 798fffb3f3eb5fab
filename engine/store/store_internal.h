/* store_internal.h - what engine/store offers the engine parts above it (log, state,
 * projection, query, payout, token): the LMDB tables and the ledger handle, opening an
 * environment, the write transaction with its row cache, the kv row encoding, and the
 * read transaction of a snapshot. Nothing outside engine/ includes it (docs/architecture.md). */
#ifndef ACCRUE_ENGINE_STORE_INTERNAL_H
#define ACCRUE_ENGINE_STORE_INTERNAL_H

#include <lmdb.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#ifndef XXH_STATIC_LINKING_ONLY
#define XXH_STATIC_LINKING_ONLY /* XXH3_state_t on the stack (acr__chain_ok) */
#endif
#include <xxhash.h>

#include "accrue/buf.h"
#include "accrue/error.h"
#include "accrue/event.h"
#include "accrue/limits.h"
#include "accrue/log.h"

/* XX(NAME, "lmdb name", derived) - derived tables are recomputed from the
 * log by rebuild and compared by verify; the others are primary data.
 *
 * A ledger is two LMDB environments in its folder (docs/architecture.md, "Storage"):
 *   - data.mdb, the log's: the tables up to and including IDEM (ACR__DB_LOG_LAST), the
 *     primary data, written durably (no NOSYNC, WRITEMAP or MAPASYNC) and first;
 *   - state.mdb (MDB_NOSUBDIR), the derived state's: APPLIED and every derived table,
 *     committed after the log with MDB_NOMETASYNC (its last commit may be undone by a
 *     system crash: the APPLIED marker then trails the log, and the next open re-applies
 *     the missing events from the log).
 * So a scan of the log maps only log pages, laid out in seq order. The log env's config
 * table is named "ledger" (an earlier release's "meta"): an older release finds no "meta"
 * in an upgraded ledger and refuses it ("no ledger") instead of writing to it. */
#define ACR_DB_MAP(XX)                                                                             \
    XX(LOG, "log", false)             /* seq (u64 BE) -> hash[16] || record */                    \
    XX(META, "ledger", false)         /* "config" -> config bytes; "layout" -> u8 */               \
    XX(CLOSES, "closes", false)       /* period id -> statement CSV bytes of its close */         \
    XX(TOKENS, "tokens", false)       /* token name -> role, partner, BLAKE2b hash of the secret */ \
    XX(IDEM, "idem", false)           /* scope \0 Idempotency-Key -> request hash, answer (idem.h) */ \
    XX(APPLIED, "applied", false)     /* "through" -> seq (u64 BE) || its chain hash (below) */    \
    XX(IDS, "ids", true)              /* event id -> seq (u64 BE) */                              \
    XX(STREAMS, "streams", true)      /* stream name -> version (u64 BE) */                       \
    XX(PARTNERS, "partners", true)    /* partner_id -> partner state (kv) */                      \
    XX(REPS, "reps", true)            /* partner_id \0 rep_id -> rep name */                      \
    XX(DEALS, "deals", true)          /* deal_id -> deal state (kv) */                            \
    XX(CUSTOMERS, "customers", true)  /* customer_id -> holder of open deals (kv) */              \
    XX(SALES, "sales", true)          /* sale_id -> sale state (kv) */                            \
    XX(PLANS, "plans", true)          /* plan_id -> latest version, currency (kv) */              \
    XX(PLAN_PARTNERS, "plan_partners", true) /* plan_id \0 partner_id -> currency */             \
    XX(PIPELINE, "pipeline", true)    /* "stages" -> stage list JSON */                           \
    XX(PROGRAM, "program", true)      /* the partner program's rows (engine/program.c) */         \
    XX(PERIOD_SEQS, "period_seqs", true) /* period (u32 BE) || seq (u64 BE) -> type (below) */    \
    ACR_PROJ_DB_MAP(XX)

/* Projection tables (engine/projection applies them, engine/query reads them;
 * row layouts in projection/projection_internal.h). "\0" separates key parts. */
#ifndef ACR_PROJ_DB_MAP
#define ACR_PROJ_DB_MAP(XX)                                                                        \
    XX(PROJ_PARTNERS, "proj_partners", true)     /* partner_id -> partner row */                   \
    XX(PROJ_TRAINING, "proj_training", true)     /* partner_id \0 u32 BE n -> training row */      \
    XX(PROJ_DEALS, "proj_deals", true)           /* deal_id -> deal row */                         \
    XX(PROJ_DEAL_MOVES, "proj_deal_moves", true) /* deal_id \0 u32 BE n -> stage, at_ms */         \
    XX(PROJ_OPEN_DEALS, "proj_open_deals", true) /* partner \0 stage \0 deal -> open deal row */   \
    XX(PROJ_SALES, "proj_sales", true)           /* sale_id -> partner_id, rep_id */               \
    XX(PROJ_FIRST_SALE, "proj_first_sale", true) /* customer_id -> first sale by (at, seq) */      \
    XX(PROJ_KPI, "proj_kpi", true)               /* partner \0 month -> KPI counters */            \
    XX(PROJ_KPI_WINS, "proj_kpi_wins", true)     /* partner \0 month \0 deal -> days to win */     \
    XX(PROJ_REP_KPI, "proj_rep_kpi", true)       /* partner \0 month \0 rep -> rep counters */
#endif

typedef enum {
#define XX(name, str, derived) ACR_DB_##name,
    ACR_DB_MAP(XX)
#undef XX
    ACR_DB__COUNT
} acr_db_t;

/* The last table of the log's environment; APPLIED and every later one are the state's. */
#define ACR__DB_LOG_LAST ACR_DB_IDEM

static inline bool acr__db_in_log(int db)
{
    return db <= ACR__DB_LOG_LAST;
}

struct acr_ledger {
    MDB_env *env;  /* the log's environment: data.mdb */
    MDB_env *senv; /* the derived state's: state.mdb */
    MDB_dbi dbi[ACR_DB__COUNT]; /* each in its table's environment */
    acr_config_t cfg;
    char *path;
    pthread_rwlock_t map_lock; /* readers and writers hold it shared; growing the map exclusive */
    uint8_t idem_prune_key[ACR_ROW_KEY_MAX]; /* idem.c: where the next prune scan starts */
    size_t idem_prune_len;                   /* its bytes (0: the table's first key) */
    struct acr__kpi_memo *kpi_memo;          /* engine/query/kpi_memo.c's, made on first use */
    void (*kpi_memo_free)(struct acr__kpi_memo *m); /* set with it; called at close */
};

const char *acr__db_name(int db);
bool acr__db_derived(int db);

/* Maps an LMDB / errno code to an ACR_E* code with a message. */
int acr__mdb_err(int rc, acr_err_t *err, const char *what);

/* Maps a failed commit, naming a full disk ledger_full. */
int acr__commit_err(const acr_ledger_t *l, int rc, acr_err_t *err);

/* Which tables an environment holds. */
typedef enum {
    ACR__ENV_LOG,   /* a ledger's data.mdb: LOG .. ACR__DB_LOG_LAST */
    ACR__ENV_STATE, /* a ledger's state.mdb: APPLIED and the derived tables */
    ACR__ENV_ALL,   /* a scratch replay's: every table in one environment */
} acr__env_kind_t;

/* Opens the LMDB environment of kind at path (a folder; for ACR__ENV_STATE the file) with
 * its tables, creating them when asked; dbi[] gets the handles of its tables only. A log
 * environment without its tables is ACR_ENO_LEDGER; one whose "ledger" table is missing
 * but "meta" is there is an earlier release's (*out_old set, when not NULL, with the
 * environment open and no handle taken). flags: extra mdb_env_open flags, only for a
 * scratch environment (verify), never for a ledger's log, opened without NOSYNC/WRITEMAP. */
int acr__env_open(const char *path, acr__env_kind_t kind, bool create, uint64_t map_size_bytes,
                  unsigned int flags, MDB_env **out_env, MDB_dbi dbi[ACR_DB__COUNT],
                  bool *out_old, acr_err_t *err);

/* ---- The APPLIED marker: how far the derived state reflects the log ---------
 *
 * One row of state.mdb, written by every state commit: the seq through which the derived
 * tables reflect the log and that seq's chain hash (the genesis hash for 0). A reader's
 * snapshot is the log through that seq, so it never sees state that disagrees with the
 * log it reads; a writer first re-applies the log records after it (a process that died
 * between its two commits). */
typedef struct acr__head {
    uint64_t seq;
    uint8_t hash[ACR_HASH_LEN];
} acr__head_t;

/* The genesis hash of l's chain: XXH3-128 of the ledger id. */
void acr__genesis(const acr_ledger_t *l, uint8_t out[ACR_HASH_LEN]);
/* One link of the chain: true when the stored value v (hash || record, size > ACR_HASH_LEN)
 * carries XXH3-128(prev || record). Every check of the chain (a reader, verify, the
 * catch-up, a replica's apply, the head before an append) goes through here. */
static inline bool acr__chain_ok(const uint8_t prev[ACR_HASH_LEN], const uint8_t *v, size_t size)
{
    XXH128_hash_t h;
    size_t len = size - ACR_HASH_LEN;
    uint8_t buf[ACR_HASH_LEN + 240]; /* XXH3's one-shot paths end at 240 bytes */
    if (len <= sizeof buf - ACR_HASH_LEN) {
        memcpy(buf, prev, ACR_HASH_LEN);
        memcpy(buf + ACR_HASH_LEN, v + ACR_HASH_LEN, len);
        h = XXH3_128bits(buf, ACR_HASH_LEN + len);
    } else {
        XXH3_state_t st;
        XXH3_128bits_reset(&st);
        XXH3_128bits_update(&st, prev, ACR_HASH_LEN);
        XXH3_128bits_update(&st, v + ACR_HASH_LEN, len);
        h = XXH3_128bits_digest(&st);
    }
    uint64_t hi, lo; /* canonical form: high64 then low64, big-endian */
    memcpy(&hi, v, 8);
    memcpy(&lo, v + 8, 8);
    return h.high64 == __builtin_bswap64(hi) && h.low64 == __builtin_bswap64(lo);
}
/* The last record of the log in ltxn (seq 0 and the genesis hash when empty). MDB codes. */
int acr__log_head(const acr_ledger_t *l, MDB_txn *ltxn, acr__head_t *out);
/* The marker in stxn. MDB codes (MDB_NOTFOUND when absent, MDB_CORRUPTED when bad). */
int acr__applied_get(const acr_ledger_t *l, MDB_txn *stxn, acr__head_t *out);
int acr__applied_put(const acr_ledger_t *l, MDB_txn *stxn, const acr__head_t *h);
/* 0 when the marker h names a seq the log of ltxn holds with that hash (or 0 = genesis),
 * else ACR_ECORRUPT with err naming `accrue rebuild` (the state belongs to another log). */
int acr__applied_check(const acr_ledger_t *l, MDB_txn *ltxn, const acr__head_t *h,
                       acr_err_t *err);

/* ---- Table digests: each derived table's content, kept on every write -------------
 *
 * A table's digest is the sum (mod 2^64, per half) of XXH3-128(value, seed = XXH3-64(key,
 * seed = table)) over its rows: independent of the order rows were written in, so every put
 * and delete moves it by the old row's hash out and the new one's in. The transaction sums the
 * moves (acr__txn_t.dg) and its commit adds them to the stored digests (the APPLIED table's
 * "digests" row, one 16-byte pair per table; absent = every table empty). `verify` rescans each
 * table and compares: a row changed, lost or added by anything but the write path is found
 * without replaying the log (`verify --fast`), and the deep verify checks them too. */
typedef struct acr__digest {
    uint64_t lo, hi;
} acr__digest_t;

/* The hash of one row of table db. */
acr__digest_t acr__dg_row(int db, const void *key, size_t klen, const void *val, size_t vlen);
/* The stored digests of stxn (zeros when none are stored). MDB codes. */
int acr__dg_load(const acr_ledger_t *l, MDB_txn *stxn, acr__digest_t out[ACR_DB__COUNT]);
int acr__dg_store(const acr_ledger_t *l, MDB_txn *stxn, const acr__digest_t d[ACR_DB__COUNT]);
/* The digest of table db of txn, by a scan. MDB codes. */
int acr__dg_scan(MDB_txn *txn, MDB_dbi dbi, int db, acr__digest_t *out);
/* Stores the digests of every derived table of stxn, scanned (a state written whole: init,
 * rebuild, upgrade). MDB codes. */
int acr__dg_rescan(const acr_ledger_t *l, MDB_txn *stxn);

/* Begins a transaction of env (flags: 0 or MDB_RDONLY), the map size re-read when another
 * process grew it (MDB_MAP_RESIZED). MDB codes. */
int acr__env_begin(MDB_env *env, unsigned flags, MDB_txn **txn);

static inline int acr__read_begin(MDB_env *env, MDB_txn **txn)
{
    return acr__env_begin(env, MDB_RDONLY, txn);
}

/* ---- period_seqs: the seqs a payout run reads ---------------------------------
 *
 * engine/state writes, for each event it accepts, the rows a payout run of period U needs
 * to find it without reading the whole log (engine/payout reads them):
 *   - a sale, refund or adjustment under its own local period (the period index of its
 *     `at`, as the commission processor computes it);
 *   - a refund also under its sale's period when that differs (so the periods <= U list
 *     every refund of every sale of a period <= U);
 *   - every other event the processor uses (ACR_COMM_TYPE_MASK: partners, plans, the
 *     program's events, period.closed) under ACR__PSEQ_EVERY_RUN;
 *   - one marker row (ACR__PSEQ_MARKER_PERIOD, ACR__PSEQ_MARKER_SEQ: the last key, so a
 *     replay's write-back of it appends): ACR__PSEQ_FORMAT, the first and the last seq
 *     indexed (u64 BE each). The index covers a snapshot when first is 1 and last
 *     is the snapshot's head: a ledger from before the table (created empty when opened,
 *     filled by `accrue rebuild`) or one an older release appended to is not covered, and
 *     its runs read the whole log.
 * A row's value is the event type (1 byte). The rows of the records a run of an early
 * period would otherwise find scattered over the whole log -- the "every run" rows, and a
 * refund's row under its sale's period -- carry a copy of the record as the log holds it
 * (format 2): type, the chain hash of seq - 1, then the log's value (hash[16] || record), so
 * a run checks the chain's link on the copy and reads them from a few contiguous pages
 * instead of faulting in a page of the log for each (docs/benchmarks.md). Keys sort by
 * period, then seq: the "every run" list first, then the periods (period index + 1), then the
 * marker. So the list that grows with every sale, the latest period's, ends next to the
 * one-row marker, never next to the copies: a B-tree page holding the end of a growing list
 * of 1-byte rows and a run of copies after it would split on nearly every insert (LMDB
 * splits a page at the middle of its rows, stranding the small ones). */
#define ACR__PSEQ_KEY_LEN 12
#define ACR__PSEQ_EVERY_RUN 0u              /* the "every run" list (before every period) */
#define ACR__PSEQ_MARKER_PERIOD 0xFFFFFFFFu /* the marker's period part (after every period) */
#define ACR__PSEQ_MARKER_SEQ UINT64_MAX     /* the marker's seq part (no event has it) */
#define ACR__PSEQ_FORMAT 2              /* the marker's first byte: what the rows mean */
#define ACR__PSEQ_COPY_OFF (1 + ACR_HASH_LEN) /* where a copy row's log value starts */
#define ACR__PSEQ_MARKER_LEN 17         /* format, first seq, last seq */

/* The key part of period index `period` (local dates are >= 1970: never negative), after
 * the "every run" list's. */
static inline uint32_t acr__pseq_period_key(int32_t period)
{
    return (uint32_t)period + 1;
}

static inline void acr__pseq_key(uint32_t period_key, uint64_t seq,
                                 uint8_t out[ACR__PSEQ_KEY_LEN])
{
    for (int i = 3; i >= 0; i--) {
        out[i] = (uint8_t)(period_key & 0xff);
        period_key >>= 8;
    }
    for (int i = 11; i >= 4; i--) {
        out[i] = (uint8_t)(seq & 0xff);
        seq >>= 8;
    }
}

/* The period part of a period_seqs key (acr__pseq_key's first argument). */
static inline uint32_t acr__pseq_key_period(const uint8_t key[ACR__PSEQ_KEY_LEN])
{
    return (uint32_t)key[0] << 24 | (uint32_t)key[1] << 16 | (uint32_t)key[2] << 8 | key[3];
}

/* 1 when txn's period_seqs marker says seqs 1..head were indexed (runs may use it), 0 when
 * the index is absent or stale (a ledger of an older release, or appended to by one since:
 * runs scan the log, `accrue rebuild` builds it), else an LMDB error. */
int acr__pseq_marker_covers(MDB_txn *txn, MDB_dbi dbi, uint64_t head, acr_err_t *err);

/* ---- The stage list a transaction caches ---------------------------------- */

/* Cached pipeline, loaded lazily per transaction by engine/state (which parses it,
 * state_internal.h); kept here because the transaction holds it. */
typedef struct acr__pipeline {
    uint32_t count;
    char names[ACR_STAGES_MAX][ACR_STAGE_NAME_MAX + 1];
    uint8_t exit_mask[ACR_STAGES_MAX]; /* ACR__EXIT_* bits */
} acr__pipeline_t;

enum { ACR__EXIT_AMOUNT = 1, ACR__EXIT_EXPECTED_CLOSE = 2, ACR__EXIT_REP = 4 };

/* ---- Per-transaction row cache -------------------------------------------
 *
 * An acr__cached_row_t is one entry of this cache: a table row (db, key) and its
 * value as the transaction sees it. A write transaction keeps the small, hot
 * rows it touches in memory: the KPI counter rows (write-back: dirty entries
 * are put once by acr__tx_flush, before the batch's transaction commits) and
 * the partner / rep validation rows (write-through: every put also updates
 * the entry). Since a row's
 * bytes depend only on the deltas applied to it, writing the sum back once
 * stores exactly what one put per event would have. Entries live in chunks
 * that never move, so a slice into an entry's value stays valid until the
 * cache is cleared (or that entry rewritten). */

enum { ACR__ROW_ABSENT = 0, ACR__ROW_PRESENT = 1 };

typedef struct acr__cached_row {
    uint64_t hash;  /* of db and key */
    uint8_t *key;   /* the row's key, in the cache's arena */
    uint8_t *val;   /* the row's value, in the arena (vcap bytes) */
    uint16_t klen;  /* key bytes */
    uint16_t vlen;  /* value bytes, when present */
    uint16_t vcap;  /* bytes at val */
    uint8_t db;     /* acr_db_t */
    uint8_t state;  /* ACR__ROW_* (absent + dirty: to be deleted) */
    bool dirty;     /* to be written by acr__tx_flush */
} acr__cached_row_t;

typedef struct acr__cache {
    uint64_t *slots;            /* open addressing: hash >> 32 << 32 | entry + 1; 0 = empty */
    uint32_t cap;               /* slots, a power of two (0 before first use) */
    uint32_t count;             /* entries in use */
    acr__cached_row_t **chunks; /* entries, ACR__CACHE_CHUNK per chunk (never moved) */
    uint32_t nchunks;           /* chunks allocated */
    uint8_t **blocks;           /* arena of keys and values (never moved) */
    uint32_t nblocks;           /* blocks allocated */
    uint32_t block;             /* the block being filled */
    size_t block_used;          /* bytes used in it */
    bool empty;                 /* a replay's cached tables are empty in LMDB: a miss is absent */
} acr__cache_t;

#define ACR__CACHE_CHUNK 4096u
#define ACR__CACHE_BLOCK (1u << 20) /* bytes per arena block (> any row) */

/* One write transaction's context: a transaction of each environment (of a scratch
 * replay's single environment, both the same), begun state first, committed log first. */
typedef struct acr__txn {
    acr_ledger_t *ledger;
    MDB_txn *txn;              /* the derived state's (state.mdb) */
    MDB_txn *ltxn;             /* the log's (data.mdb) */
    MDB_dbi *dbi;              /* the tables (of the ledger, or of a scratch env) */
    int32_t utc_offset_min;
    bool pipeline_loaded;
    acr__pipeline_t pipeline;
    acr_buf_t scratch;         /* reusable encoding buffer */
    acr_buf_t scratch2;        /* a second one, for keys built while scratch is in use */
    int mdb_rc;                /* the last LMDB failure (MDB_MAP_FULL triggers a retry) */
    acr__cache_t cache;        /* hot rows of this transaction (zeroed = empty) */
    acr__digest_t dg[ACR_DB__COUNT]; /* the digests' moves of this transaction's writes */
    acr__cached_row_t *cache_last; /* the entry the last cached look-up found */
    struct acr__pseq_bulk *pseq_bulk; /* a replay's period_seqs rows, in memory (or NULL) */
    /* the copy rows of the event being applied (period_seqs.c), written once its log value
     * is known: acr__state_logged */
    uint32_t pseq_copy_key[2];
    uint8_t pseq_copy_type;
    uint8_t pseq_copies;
    /* a partner.updated's partner: the `at` of its registration, INT64_MIN when unknown (set
     * by state.c before the projection applies the update; program.md ranks the
     * registration's attributes below every update, whatever the update's `at`) */
    int64_t partner_registered_at_ms;
} acr__txn_t;

/* The transaction of tx that holds table db. */
static inline MDB_txn *acr__tx_txn(const acr__txn_t *tx, int db)
{
    return acr__db_in_log(db) ? tx->ltxn : tx->txn;
}

/* Put and delete of a derived row of tx, moving tx's digest of the table (above): every
 * write of a derived table goes through them. acr__dput takes 0, MDB_NOOVERWRITE (whose
 * MDB_KEYEXIST answers the stored value in *v, as mdb_put does) or MDB_APPEND (a key known to
 * be new); an overwrite or a delete takes one descent (the cursor that reads the old row
 * writes it). acr__ddel answers MDB_NOTFOUND when absent.
 * MDB codes. */
int acr__dput(acr__txn_t *tx, int db, MDB_val *k, MDB_val *v, unsigned flags);
int acr__ddel(acr__txn_t *tx, int db, MDB_val *k);
/* Moves tx's digest of db by one row in (remove false) or out. */
void acr__dg_move(acr__txn_t *tx, int db, const void *key, size_t klen, const void *val,
                  size_t vlen, bool remove);
/* Writes the APPLIED marker at head and adds tx's digest moves to the stored digests (then
 * zeroes them): every commit of the state does it last. MDB codes. */
int acr__tx_seal(acr__txn_t *tx, const acr__head_t *head);

/* Begins tx's pair of write transactions on ledger l (state first: every writer takes the
 * two writer locks in that order), re-reading maps grown by another process. MDB codes. */
int acr__wtxn_begin(acr_ledger_t *l, acr__txn_t *tx);
/* Commits tx's pair, the log first (durable), then the state; *log_done tells whether the
 * log's commit went through (its events are then durable whatever the state's commit
 * did). MDB codes. */
int acr__wtxn_commit(acr__txn_t *tx, bool *log_done);
void acr__wtxn_abort(acr__txn_t *tx);
/* The end of a writer's turn on tx, begun with l's map lock held for reading and its scratch
 * buffers initialised: aborts what is still open, releases the lock, frees the scratch
 * buffers and the row cache. */
void acr__wtxn_end(acr__txn_t *tx);
/* Doubles the map of both environments (after MDB_MAP_FULL in either). Called with no
 * transaction of l open in this thread. */
int acr__grow_maps(acr_ledger_t *l, acr_err_t *err);

/* The entry of (db, key) in tx's cache, created (state ACR__ROW_ABSENT,
 * vlen 0, *out_new true) when missing; NULL when out of memory. */
acr__cached_row_t *acr__cache_get(acr__txn_t *tx, int db, const void *key, size_t klen,
                                  bool *out_new);
/* The value bytes of an entry (e->vlen of them). */
static inline uint8_t *acr__cached_row_val(acr__cached_row_t *e)
{
    return e->val;
}
/* Stores n bytes as the entry's value (state present); 0 or ACR_ENOMEM.
 * Slices into the entry's previous value are invalid afterwards. */
int acr__cached_row_set(acr__txn_t *tx, acr__cached_row_t *e, const void *p, size_t n);
/* Puts every dirty entry (in key order per table) and empties the cache:
 * call before the transaction (or a group's child) commits. 0 or ACR_E*. */
int acr__tx_flush(acr__txn_t *tx, acr_err_t *err);
/* Forgets every entry without writing (a batch starts, or was aborted). */
void acr__cache_clear(acr__cache_t *c);
void acr__cache_free(acr__cache_t *c);

/* Records an LMDB failure in tx and maps it to an ACR_E* code. */
int acr__tx_fail(acr__txn_t *tx, int rc, acr_err_t *err, const char *what);

/* The read transaction of a snapshot (reader.c) that holds table db, for engine-side
 * reads. */
MDB_txn *acr__reader_txn(acr_reader_t *r, int db);

/* For the payout driver: reads on from the reader's position through seq `through`
 * (at most the head), checking the chain hash and the record header of every record.
 * Records whose type is in type_mask are returned undecoded (recs[i]: the record bytes
 * after the stored hash, valid while the reader is open; seqs[i]: its seq), up to max,
 * stopping after a period.closed. *max_at_ms is raised to the at of every record read
 * but period.closed. 0, or ACR_ECHAIN_BROKEN / an LMDB error naming the first bad seq
 * (the records before it are in recs). */
int acr__reader_next_raw(acr_reader_t *r, uint64_t through, uint32_t type_mask, acr_str_t *recs,
                         uint64_t *seqs, size_t max, size_t *n_out, int64_t *max_at_ms,
                         acr_err_t *err);

/* For the payout driver's indexed run: the record at seq (1..head), fetched by seq and
 * checked against its predecessor's stored hash (XXH3-128(stored hash of seq - 1 || record)
 * = stored hash of seq) and its header. Fetches in ascending seq order walk the cursor
 * forward over short gaps. *out_rec: the record bytes after the stored hash, valid while r
 * is open; *out_type: its event type. 0, or ACR_ECHAIN_BROKEN / an LMDB error naming seq.
 * Moves the position of acr_reader_next (seek before reading sequentially again). */
int acr__reader_fetch_raw(acr_reader_t *r, uint64_t seq, acr_str_t *out_rec, int *out_type,
                          acr_err_t *err);
/* The same for the record of a period_seqs copy (the chain hash of seq - 1, then the log's
 * value of seq; len > 2 * ACR_HASH_LEN): checked the same way, on the copy's own bytes.
 * 0, or ACR_ECORRUPT (the copy does not match its hash: a damaged index). */
int acr__reader_copy_raw(uint64_t seq, const uint8_t *copy, size_t len, acr_str_t *out_rec,
                         int *out_type, acr_err_t *err);

/* The period.closed event of period (len bytes) in a snapshot whose state and log
 * transactions are stxn and ltxn: 1 with *out decoded (slices valid while ltxn is open;
 * out->seq set), 0 when the period is not closed in it, 2 when the record its id names is
 * not a readable period.closed (nothing set in err: each caller says what that means), or
 * an error of the ids or log table. */
int acr__close_record(const acr_ledger_t *l, MDB_txn *stxn, MDB_txn *ltxn, const char *period,
                      size_t len, acr_event_t *out, acr_err_t *err);
/* The check of acr_reader_statement: a period's statement bytes against the fingerprint its
 * close recorded. 0, or ACR_EMISMATCH naming both, hint appended to the message (""; or
 * ACR_STATEMENT_HINT where `verify` is the way on). */
int acr__statement_check(const char *period, const char *csv, size_t len, acr_str_t recorded,
                         const char *hint, acr_err_t *err);
#define ACR_STATEMENT_HINT ": run `accrue verify`"
/* acr_reader_statement without that check: for `payout audit`, which reports where stored
 * bytes differ, and for a run, which checks against the close it already read. */
int acr__reader_statement_raw(acr_reader_t *r, const char *period_id, const char **out_csv,
                              size_t *out_len, acr_err_t *err);

/* ---- Small record encoding for state tables ------------------------------ */

int acr__kv_put_str(acr_buf_t *b, const char *p, size_t len);
int acr__kv_put_i64(acr_buf_t *b, int64_t v);

typedef struct acr__kv_reader {
    const uint8_t *p;
    const uint8_t *end;
    bool bad; /* set when a read ran past the end */
} acr__kv_reader_t;

void acr__kv_reader_init(acr__kv_reader_t *r, const void *p, size_t len);
acr_str_t acr__kv_get_str(acr__kv_reader_t *r);
int64_t acr__kv_get_i64(acr__kv_reader_t *r);

/* Builds "a\0b" keys into buf; returns an MDB_val over it. */
MDB_val acr__key2(acr_buf_t *buf, acr_str_t a, acr_str_t b);

static inline MDB_val acr__val(const void *p, size_t len)
{
    MDB_val v = {len, (void *)p};
    return v;
}

static inline void acr__u64_be(uint64_t v, uint8_t out[8])
{
    for (int i = 7; i >= 0; i--) {
        out[i] = (uint8_t)(v & 0xff);
        v >>= 8;
    }
}

/* The bytes of env's file that its last commit uses (pages up to the last one written), and
 * its map size when map is not NULL. */
static inline uint64_t acr__env_used_bytes(MDB_env *env, uint64_t *map)
{
    MDB_envinfo info;
    MDB_stat st;
    if (mdb_env_info(env, &info) != 0 || mdb_env_stat(env, &st) != 0)
        return 0;
    if (map != NULL)
        *map = info.me_mapsize;
    return ((uint64_t)info.me_last_pgno + 1) * st.ms_psize;
}

static inline uint64_t acr__be_u64(const uint8_t in[8])
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | in[i];
    return v;
}

/* True when the ledger of txn carries the read-replica marker (replica.c):
 * every write but a replica's own apply is then refused with read_only. */
bool acr__replica_marked(MDB_txn *txn, const MDB_dbi *dbi);
#define ACR__REPLICA_MARKER_KEY "replica" /* meta key of the marker (engine/replica) */

#endif
